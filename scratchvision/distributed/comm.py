"""The process group: ranks, collectives and faults, over MPI (mpi4py), NCCL for GPU arrays.

Every process of an ``mpiexec -n N`` job runs the same program; ``init()`` joins them into
one group of ``world_size()`` ranks numbered ``0 .. N-1``. The collectives follow
``torch.distributed``:

- ``all_reduce(x, op)`` replaces ``x`` on every rank by the elementwise reduction (sum,
  mean, max, min, product) of all ranks' ``x``, in place;
- ``broadcast(x, src)`` copies rank ``src``'s ``x`` into every rank's ``x``;
- ``barrier()`` returns once every rank has reached it;
- ``all_gather_object`` / ``broadcast_object`` move small picklable Python objects.

``async_op=True`` returns a ``Work`` at once (MPI's non-blocking ``Iallreduce``) whose
``wait()`` completes it: data-parallel training starts a bucket's all-reduce while the
backward pass goes on. MPICH makes progress on a non-blocking collective only inside MPI
calls (it has no progress thread unless ``MPIR_CVAR_ASYNC_PROGRESS=1``), so ``Work.test``
exists to push one along from a hook.

Arrays: NumPy arrays go through MPI directly (mpi4py's buffer interface, no pickling).
CuPy arrays go through NCCL (``cupy.cuda.nccl``) when CuPy has it: the group's NCCL
communicator is made on first use, rank 0's unique id broadcast over MPI, and the NCCL
call is queued on the current CUDA stream, so ``wait()`` only orders later work on that
stream after it, as torch's NCCL backend does. Without NCCL, a CuPy array is copied to
the host, reduced over MPI and copied back.

Faults. A collective waits for the slowest rank, so one rank that fails would leave the
others waiting for ever. Three guards bound that time:

1. ``init()`` installs an exception hook: a rank whose program raises prints its
   traceback and ``scratchvision.distributed: rank r of N failed ...; aborting the job``,
   then calls ``MPI_Abort``, which makes ``mpiexec`` end every rank.
2. A rank killed by a signal is noticed by ``mpiexec`` itself, which ends the others.
3. Every wait here polls its request with a deadline (``timeout``, default 1800 s as
   torch's, or ``SCRATCHVISION_DIST_TIMEOUT``): a rank still waiting after it reports
   what it waited for and aborts the job. Polling (2 ms of spinning, then naps of up to
   1 ms) also keeps a rank that waits long from spinning on a core another rank needs.

Threads. N ranks on one machine each start thread pools sized for the whole machine;
``init()`` divides Numba's threads (and, with threadpoolctl installed, the BLAS's) by the
number of ranks on the node, unless ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS`` was set.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

__all__ = ["ProcessGroup", "Work", "all_gather_object", "all_reduce", "barrier", "broadcast",
           "broadcast_object", "init", "init_if_launched", "is_active", "is_initialized",
           "launched_by_mpi", "local_rank", "local_size", "rank", "use_local_gpu", "world_size"]

DEFAULT_TIMEOUT = 1800.0          # torch.distributed's default process-group timeout
# environment variables that MPI launchers set in each process: (rank, size) names
_LAUNCHER_VARS = (("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                  ("PMIX_RANK", "PMIX_SIZE"), ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"))
_OPS = ("sum", "mean", "max", "min", "product")

_world: ProcessGroup | None = None


def _mpi():
    try:
        from mpi4py import MPI  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("scratchvision.distributed needs mpi4py and an MPI library: "
                          "pip install -e '.[dist]' brings both (mpi4py and the mpich "
                          f"wheel); a system MPI works too ({e})") from None
    return MPI


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher with more than one rank."""
    for _, size in _LAUNCHER_VARS:
        if int(os.environ.get(size, "1") or 1) > 1:
            return True
    return False


class Work:
    """A collective in flight (``async_op=True``): ``wait()`` completes it, ``test()``
    advances it and says whether it is done. ``then`` (optional) runs once, on completion
    (copying a host buffer back to the GPU, say)."""

    def __init__(self, group: ProcessGroup, request, what: str, then=None,
                 keep=()) -> None:
        self.group, self.request, self.what, self._then = group, request, what, then
        self._keep = keep            # buffers MPI reads or writes until completion
        self._done = request is None

    def test(self) -> bool:
        if not self._done and self.request.Test():
            self._finish()
        return self._done

    def wait(self) -> None:
        if not self._done:
            self.group.wait_request(self.request, self.what)
            self._finish()

    def is_completed(self) -> bool:
        return self.test()

    def _finish(self) -> None:
        self._done = True
        self._keep = ()
        if self._then is not None:
            then, self._then = self._then, None
            then()


class ProcessGroup:
    """A set of ranks with their own MPI communicator (collectives on different groups
    never get matched with each other: the gradient buckets and the synchronised batch
    norm each have one, so their orders can interleave differently on different ranks)."""

    def __init__(self, comm, timeout: float) -> None:
        self.comm, self.timeout = comm, float(timeout)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._nccl = None

    def new_group(self) -> ProcessGroup:
        """The same ranks over a fresh communicator (``MPI_Comm_dup``); collective."""
        return ProcessGroup(self.comm.Dup(), self.timeout)

    # ---------------------------------------------------------------- waiting, faults
    def wait_request(self, request, what: str, timeout: float | None = None) -> None:
        """Poll an MPI request until it completes, or abort the job after ``timeout``
        seconds (default: the group's)."""
        timeout = self.timeout if timeout is None else float(timeout)
        start = time.monotonic()
        deadline, nap = start + timeout, 5e-5
        while not request.Test():
            now = time.monotonic()
            if now - start > 2e-3:        # spin 2 ms (a step's collectives), then nap,
                time.sleep(nap)           # longer and longer, so a long wait (rank 0
                nap = min(2 * nap, 1e-3)  # evaluating) leaves the core to the others
                if now > deadline:
                    abort(f"rank {self.rank} of {self.size} waited {timeout:g} s for "
                          f"{what} without the other ranks joining (one of them is stuck or "
                          "was lost); aborting the job")

    # ---------------------------------------------------------------- collectives
    def all_reduce(self, x, op: str = "sum", async_op: bool = False):
        from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
        if op not in _OPS:
            raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
        arr = x.data if isinstance(x, Tensor) else x
        _check_buffer("all_reduce", arr)
        if _is_cupy(arr):
            work = self._all_reduce_gpu(arr, op)
        else:
            MPI = _mpi()
            mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN,
                      "product": MPI.PROD}[op]
            then = (lambda: np.divide(arr, self.size, out=arr, casting="unsafe")) \
                if op == "mean" else None
            req = self.comm.Iallreduce(MPI.IN_PLACE, arr, op=mpi_op) if self.size > 1 \
                else None
            work = Work(self, req, f"all_reduce of {arr.size} {arr.dtype} values", then)
            if req is None and then is not None:
                work._finish()
        if async_op:
            return work
        work.wait()
        return None

    def broadcast(self, x, src: int = 0, async_op: bool = False):
        from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
        arr = x.data if isinstance(x, Tensor) else x
        _check_buffer("broadcast", arr)
        if not 0 <= src < self.size:
            raise ValueError(f"broadcast: src must be a rank in [0, {self.size}), got {src}")
        if _is_cupy(arr):
            host = arr.get()
            work = Work(self, self.comm.Ibcast(host, root=src) if self.size > 1 else None,
                        f"broadcast of {arr.size} {arr.dtype} values", keep=(host,),
                        then=lambda: arr.set(host))
            if self.size == 1:
                work._finish()
        else:
            work = Work(self, self.comm.Ibcast(arr, root=src) if self.size > 1 else None,
                        f"broadcast of {arr.size} {arr.dtype} values")
        if async_op:
            return work
        work.wait()
        return None

    def barrier(self, timeout: float | None = None) -> None:
        """Wait for every rank (``timeout``: seconds before aborting; default the
        group's, longer where one rank is known to work alone for long)."""
        if self.size > 1:
            self.wait_request(self.comm.Ibarrier(), "a barrier", timeout)

    def all_gather_object(self, obj) -> list:
        """Every rank's ``obj``, in rank order (pickled; small objects only)."""
        if self.size == 1:
            return [obj]
        import pickle  # noqa: PLC0415
        data = np.frombuffer(pickle.dumps(obj), np.uint8)
        sizes = np.zeros(self.size, np.int64)
        sizes[self.rank] = data.size
        self.all_reduce(sizes)
        buf = np.zeros(int(sizes.sum()), np.uint8)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        buf[offsets[self.rank]:offsets[self.rank + 1]] = data
        self.all_reduce(buf)                    # each rank fills its own slice, zeros elsewhere
        return [pickle.loads(buf[offsets[r]:offsets[r + 1]].tobytes())
                for r in range(self.size)]

    def broadcast_object(self, obj, src: int = 0):
        """Rank ``src``'s ``obj`` on every rank."""
        return self.all_gather_object(obj if self.rank == src else None)[src]

    # ---------------------------------------------------------------- GPU arrays
    def _all_reduce_gpu(self, arr, op: str) -> Work:
        nccl = self._nccl_comm()
        if nccl is None:                          # no NCCL: through host memory and MPI
            host = arr.get()
            inner = self.all_reduce(host, op, async_op=True)
            return Work(self, inner.request, inner.what, keep=(host,),
                        then=lambda: (inner._finish(), arr.set(host)))
        import cupy  # noqa: PLC0415
        from cupy.cuda import nccl as nccl_mod  # noqa: PLC0415
        code = {"sum": nccl_mod.NCCL_SUM, "mean": nccl_mod.NCCL_SUM,
                "max": nccl_mod.NCCL_MAX, "min": nccl_mod.NCCL_MIN,
                "product": nccl_mod.NCCL_PROD}[op]
        dtype = _NCCL_DTYPES.get(np.dtype(arr.dtype).name)
        if dtype is None:
            raise TypeError(f"all_reduce: NCCL cannot reduce {arr.dtype} arrays")
        stream = cupy.cuda.get_current_stream()
        nccl.allReduce(arr.data.ptr, arr.data.ptr, arr.size, getattr(nccl_mod, dtype), code,
                       stream.ptr)
        if op == "mean":
            arr /= self.size                      # queued on the same stream, after it
        return Work(self, None, "an NCCL all_reduce")

    def _nccl_comm(self):
        if self._nccl is None:
            try:
                from cupy.cuda import nccl  # noqa: PLC0415
                nccl.get_unique_id  # noqa: B018  (the stand-in CuPy of the tests has none)
            except (ImportError, AttributeError):
                self._nccl = False
                return None
            uid = nccl.get_unique_id() if self.rank == 0 else None
            uid = self.comm.bcast(uid, root=0)
            self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        return self._nccl or None


_NCCL_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32",
                "float64": "NCCL_FLOAT64", "int32": "NCCL_INT32", "int64": "NCCL_INT64",
                "uint8": "NCCL_UINT8"}


def _is_cupy(a) -> bool:
    from scratchvision import backend  # noqa: PLC0415
    return backend.is_cupy_array(a)


def _check_buffer(name: str, arr) -> None:
    if not hasattr(arr, "dtype") or not hasattr(arr, "shape"):
        raise TypeError(f"{name}: expected a Tensor, a NumPy or a CuPy array, got "
                        f"{type(arr).__name__}")
    flags = getattr(arr, "flags", None)
    if flags is not None and not flags["C_CONTIGUOUS"]:
        raise ValueError(f"{name}: the array must be C-contiguous (shape {arr.shape}, "
                         f"strides {getattr(arr, 'strides', None)})")
    if flags is not None and not flags["WRITEABLE"]:
        raise ValueError(f"{name}: the array is read-only (shape {arr.shape})")


# ---------------------------------------------------------------------- the world group
def init(timeout: float | None = None, abort_on_error: bool = True,
         limit_threads: bool = True) -> ProcessGroup:
    """Join this process to the MPI job (``MPI.COMM_WORLD``); returns the world group.

    Calling it again returns the same group. Works in a process started without
    ``mpiexec`` too (a world of one). ``timeout``: seconds any wait may last before the
    job is aborted (default ``SCRATCHVISION_DIST_TIMEOUT`` or 1800). ``abort_on_error``:
    install the exception hook that aborts the job when this rank raises.
    ``limit_threads``: share the node's cores among its ranks (module docstring).
    """
    global _world
    if _world is not None:
        return _world
    MPI = _mpi()
    if timeout is None:
        timeout = float(os.environ.get("SCRATCHVISION_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    if not timeout > 0:
        raise ValueError(f"init: timeout must be > 0 seconds, got {timeout!r}")
    _world = ProcessGroup(MPI.COMM_WORLD.Dup(), timeout)
    if abort_on_error and _world.size > 1:
        sys.excepthook = _abort_on_exception
    if limit_threads and _world.size > 1:
        _share_cores()
    return _world


def _share_cores() -> None:
    per_node = _node()[1]
    if per_node <= 1:
        return
    cores = os.cpu_count() or 1
    threads = max(1, cores // per_node)
    if "NUMBA_NUM_THREADS" not in os.environ:
        import numba  # noqa: PLC0415
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if "OMP_NUM_THREADS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ:
        try:
            from threadpoolctl import threadpool_limits  # noqa: PLC0415
        except ImportError:
            return
        global _blas_limit
        _blas_limit = threadpool_limits(threads, user_api="blas")


_blas_limit = None


def _abort_on_exception(tp, value, tb) -> None:
    traceback.print_exception(tp, value, tb)
    abort(f"rank {_world.rank} of {_world.size} failed ({tp.__name__}: {value}); "
          "aborting the job")


def abort(message: str, code: int = 1) -> None:
    """Print ``message`` and end every rank of the job (``MPI_Abort``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, f"scratchvision.distributed: {message}\n".encode())
    # MPI_Abort kills every rank at once, this one included; mpiexec forwards a rank's
    # output asynchronously and was seen to drop the last line under load: give it time
    time.sleep(0.5)
    _mpi().COMM_WORLD.Abort(code)


def init_if_launched() -> tuple[int, int]:
    """``(rank, world_size)``: ``init()`` when an MPI launcher started this process with
    more than one rank (``launched_by_mpi``), else ``(0, 1)`` without touching MPI."""
    if not launched_by_mpi():
        return rank(), world_size()
    group = init()
    return group.rank, group.size


def is_initialized() -> bool:
    return _world is not None


def is_active() -> bool:
    """``init()`` was called and the world has more than one rank."""
    return _world is not None and _world.size > 1


def world() -> ProcessGroup:
    if _world is None:
        raise RuntimeError("scratchvision.distributed: call init() first")
    return _world


def rank() -> int:
    """This process's rank (0 before ``init()``)."""
    return 0 if _world is None else _world.rank


def world_size() -> int:
    """The number of ranks (1 before ``init()``)."""
    return 1 if _world is None else _world.size


def _node() -> tuple[int, int]:
    """(this rank's index on its node, the ranks on the node)."""
    MPI = _mpi()
    node = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    here = node.Get_rank(), node.Get_size()
    node.Free()
    return here


def local_size() -> int:
    """Ranks on this node."""
    return 1 if _world is None else _node()[1]


def local_rank() -> int:
    """This rank's index among the ranks on its node (its GPU, one GPU per rank)."""
    return 0 if _world is None else _node()[0]


def use_local_gpu() -> int:
    """Make GPU ``local_rank() % GPUs`` CuPy's current device (one GPU per rank, as
    ``torch.cuda.set_device(local_rank)``); returns its index."""
    import cupy  # noqa: PLC0415
    index = local_rank() % cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(index).use()
    return index


def barrier(timeout: float | None = None) -> None:
    if _world is not None:
        _world.barrier(timeout)


def all_reduce(x, op: str = "sum", async_op: bool = False, group: ProcessGroup | None = None):
    """Reduce ``x`` (a Tensor or array) over the ranks, in place (see the module
    docstring); before ``init()`` a world of one (``mean`` and the others leave x as it
    is)."""
    g = group or _world
    if g is None:
        return Work(None, None, "") if async_op else None
    return g.all_reduce(x, op, async_op)


def broadcast(x, src: int = 0, async_op: bool = False, group: ProcessGroup | None = None):
    """Copy rank ``src``'s ``x`` into every rank's ``x`` (in place)."""
    g = group or _world
    if g is None:
        return Work(None, None, "") if async_op else None
    return g.broadcast(x, src, async_op)


def all_gather_object(obj, group: ProcessGroup | None = None) -> list:
    g = group or _world
    return [obj] if g is None else g.all_gather_object(obj)


def broadcast_object(obj, src: int = 0, group: ProcessGroup | None = None):
    g = group or _world
    return obj if g is None else g.broadcast_object(obj, src)
