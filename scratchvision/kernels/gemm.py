"""Matrix products for the CPU kernels, computed by Numba's threads: one thread pool.

**Why.** A convolution alternates Numba loops (im2col, the Winograd transforms, col2im)
with GEMMs. Through ``np.matmul`` those GEMMs run on NumPy's OpenBLAS, whose own thread pool
keeps spinning after each product for ``OPENBLAS_THREAD_TIMEOUT`` (2**28 cycles by
default, ~0.1 s) and so takes the cores the next Numba loop needs; and when another library
(PyTorch) loaded the OpenMP runtime first, Numba's threads spin in turn while BLAS works.
Both variables are read once, when their library loads, so setting them from ``import
scratchvision`` only helped if scratchvision came before NumPy and torch: with ``import
numpy`` first a conv took ~1.9x as long, with ``import torch`` first ~2.7x
(``benchmarks/results/conv.md``, import-order rows).

**What.** Here the products run *inside* a Numba parallel loop: each Numba thread calls
OpenBLAS's ``cblas_sgemm``/``cblas_dgemm`` (found in NumPy's own OpenBLAS through
``threadpoolctl``, called through ctypes from nopython code) on its own tasks. OpenBLAS is
set to one thread for the loop (``openblas_set_num_threads_local(1)``) and the previous
count is put back after it, so the user's own NumPy products keep all their threads.
Despite its name that setting is process-wide in NumPy's pthreads OpenBLAS (the variable
behind it is a plain global), so it is changed once per ``matmul``, from Python, under a
lock, never from inside the loop: when each task saved and restored it, two threads'
save/restore pairs interleaved, the count could be left at 1 afterwards and a task could
start its GEMM with the count already restored (a race the test suite caught on a busy
machine). OpenBLAS's pool never runs, nothing is left spinning, and Numba's threads are the
only ones working whatever was imported first.

**Tasks.** ``out[..., :, :] = a @ b`` over the broadcast leading dimensions; each product
is cut into column blocks of ``BLOCK_COLUMNS``, and the loop runs over (product, block)
pairs. When that gives fewer than ``MIN_TASKS`` tasks (one product with N <= 512: a conv's
weight gradient, a small layer's Winograd-free GEMM), the rows are cut too, into at most
``MIN_TASKS / tasks`` blocks of at least ``MIN_ROWS`` rows; without it such a product ran
on one thread while the others waited (a 576 x 128 x 512 product: 1.09 ms on one thread or
two). Every cut is a function of the shapes alone, never of the number of threads, so the
bits of the result do not depend on it. Each operand is passed as a base address plus a
leading dimension and a transpose flag read off its strides (row-major, or row-major of its
transpose, as ``W.T`` views are); anything else is copied to C order first. Every output
element is one BLAS dot product over the whole inner dimension, the same one ``np.matmul``
computes.
Products below ``SERIAL_MACS`` multiply-adds, which OpenBLAS keeps on the calling thread by
itself, go to ``np.matmul`` directly.

Without a usable OpenBLAS (NumPy built on Accelerate or MKL, an OpenBLAS older than 0.3.27
without the thread-local setting) ``matmul`` is ``np.matmul`` and ``AVAILABLE`` is False.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import threading

import numpy as np
from numba import njit, prange

BLOCK_COLUMNS = 512
MIN_TASKS = 8       # below this many (product, column block) tasks the rows are cut as well
MIN_ROWS = 32       # ... into blocks of at least this many rows
# OpenBLAS runs a product of fewer multiply-adds than this on the calling thread anyway
# (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD in its interface/gemm.c), so such products
# go straight to np.matmul: handing them to Numba's threads would only add ~60 us
SERIAL_MACS = 65536 * 4
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112          # CBLAS enum values


def _find_openblas():
    """(library, names of its cblas_sgemm / cblas_dgemm, their integer type, the core type
    whose kernels it runs) for NumPy's OpenBLAS, or None."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:
        return None
    for info in threadpool_info():
        if info.get("internal_api") != "openblas" or "numpy" not in info["filepath"]:
            continue
        lib = ctypes.CDLL(info["filepath"])
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", "")):
            names = (f"{prefix}cblas_sgemm{suffix}", f"{prefix}cblas_dgemm{suffix}")
            if (all(hasattr(lib, n) for n in names)
                    and hasattr(lib, "openblas_set_num_threads_local")):
                index = ctypes.c_int64 if suffix.startswith("64") else ctypes.c_int
                return lib, names, index, str(info.get("architecture") or "")
    return None


def _bind(found):
    lib, (sname, dname), index, _ = found
    enum, addr = ctypes.c_int, ctypes.c_uint64      # pointers passed as 64-bit addresses
    fns = []
    for name, real in ((sname, ctypes.c_float), (dname, ctypes.c_double)):
        f = getattr(lib, name)
        f.restype = None
        f.argtypes = [enum, enum, enum, index, index, index, real, addr, index, addr, index,
                      real, addr, index]
        fns.append(f)
    local = lib.openblas_set_num_threads_local
    local.restype, local.argtypes = ctypes.c_int, [ctypes.c_int]
    return fns[0], fns[1], local


_FOUND = _find_openblas() if ctypes.sizeof(ctypes.c_void_p) == 8 else None
AVAILABLE = _FOUND is not None
# The core type OpenBLAS picked its kernels for ('' when unknown), and whether those use
# 512-bit vectors. It is the processor's unless OPENBLAS_CORETYPE pins another: on this
# project's AVX-512 dev machine the image pins Haswell (AVX2), and single-precision GEMM runs
# at ~130 GFLOP/s on 2 cores instead of ~380 (kernels/conv/cpu.py chooses by it).
ARCHITECTURE = _FOUND[3] if AVAILABLE else ""
AVX512_KERNELS = ARCHITECTURE.lower() in ("skylakex", "cooperlake", "sapphirerapids")
if AVAILABLE:
    _sgemm, _dgemm, _set_blas_threads = _bind(_FOUND)   # sets the count, returns the old
    _BLAS_SETTING = threading.Lock()    # one set / loop / restore at a time in the process

    def _tasks_kernel(gemm):
        """The parallel loop over tasks for one of the two GEMMs (Numba compiles the ctypes
        function into the loop as a constant, so each dtype gets its own kernel)."""
        # tasks[t] = (address of A, of B, of C, columns of this block, rows of it); every
        # task shares K, the transpose flags and leading dimensions (one product cut into
        # blocks, or a batch of products with the same layout)
        @njit(parallel=True)
        def run(tasks, K, ta, lda, tb, ldb, ldc):  # pragma: no cover (compiled)
            for t in prange(tasks.shape[0]):
                gemm(ROW_MAJOR, ta, tb, tasks[t, 4], tasks[t, 3], K, 1.0, tasks[t, 0], lda,
                     tasks[t, 1], ldb, 0.0, tasks[t, 2], ldc)
        return run

    _sgemm_tasks, _dgemm_tasks = _tasks_kernel(_sgemm), _tasks_kernel(_dgemm)


def _layout(x: np.ndarray):
    """(transpose flag, leading dimension) of the 2-D trailing matrices of ``x`` as BLAS
    reads them, or None when neither x nor its transpose is row-major."""
    rows, cols = x.shape[-2:]
    s0, s1 = (s // x.itemsize for s in x.strides[-2:])
    if s1 == 1 and s0 >= max(cols, 1) and x.strides[-2] % x.itemsize == 0:
        return NO_TRANS, s0
    if s0 == 1 and s1 >= max(rows, 1) and x.strides[-1] % x.itemsize == 0:
        return TRANS, s1
    return None


def _addresses(x: np.ndarray, lead: tuple) -> np.ndarray:
    """Base address of each trailing matrix of ``x`` (broadcast to ``lead``), flattened."""
    offsets = np.zeros(lead, np.int64)
    for axis, stride in enumerate(x.strides[:len(lead)]):
        shape = [1] * len(lead)
        shape[axis] = lead[axis]
        offsets = offsets + np.arange(lead[axis], dtype=np.int64).reshape(shape) * stride
    return (np.uint64(x.ctypes.data) + offsets.reshape(-1).astype(np.uint64))


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = a @ b`` (NumPy's broadcasting over leading dimensions) on Numba's
    threads; float32/float64 NumPy arrays, ``out`` of the broadcast result shape."""
    dtype = out.dtype
    M, N = out.shape[-2:]
    K = a.shape[-1]
    usable = (AVAILABLE and dtype in (np.float32, np.float64) and a.dtype == dtype
              and b.dtype == dtype and isinstance(out, np.ndarray) and min(M, N, K) > 0
              and M * N * K >= SERIAL_MACS)
    if not usable:
        return np.matmul(a, b, out=out)
    lead = out.shape[:-2]
    a = np.broadcast_to(a, lead + a.shape[-2:])
    b = np.broadcast_to(b, lead + b.shape[-2:])
    la, lb = _layout(a), _layout(b)
    if la is None:
        a, la = np.ascontiguousarray(a), (NO_TRANS, K)
    if lb is None:
        b, lb = np.ascontiguousarray(b), (NO_TRANS, N)
    lo = _layout(out)
    if lo is not None and lo[0] == NO_TRANS:             # written in place
        target, lc = out, lo[1]
    else:                                                 # through a C-order temporary
        target, lc = np.empty(out.shape, dtype), N
    items = math.prod(lead)
    blocks = -(-N // BLOCK_COLUMNS)
    start = np.arange(blocks, dtype=np.uint64) * BLOCK_COLUMNS           # first column
    width = np.minimum(BLOCK_COLUMNS, N - start.astype(np.int64)).astype(np.uint64)
    item = np.uint64(dtype.itemsize)
    # column c0 of B starts c0 elements in (row-major B) or c0 rows in (B stored transposed)
    b_step = item if lb[0] == NO_TRANS else item * np.uint64(lb[1])
    # row blocks only where the products and column blocks leave threads idle
    row_blocks = 1 if items * blocks >= MIN_TASKS else max(1, min(
        -(-MIN_TASKS // (items * blocks)), M // MIN_ROWS))
    rows = -(-M // row_blocks)
    row_blocks = -(-M // rows)
    r0 = np.arange(row_blocks, dtype=np.uint64) * np.uint64(rows)              # first row
    height = np.minimum(rows, M - r0.astype(np.int64)).astype(np.uint64)
    # row r0 of A starts r0 rows in (row-major A) or r0 elements in (A stored transposed);
    # row r0 of C (row-major) r0 rows in
    a_step = item * np.uint64(la[1]) if la[0] == NO_TRANS else item
    c_step = item * np.uint64(lc)
    tasks = np.empty((items, row_blocks, blocks, 5), np.uint64)
    tasks[..., 0] = (_addresses(a, lead)[:, None] + r0[None] * a_step)[:, :, None]
    tasks[..., 1] = (_addresses(b, lead)[:, None] + start[None] * b_step)[:, None, :]
    tasks[..., 2] = (_addresses(target, lead)[:, None, None] + r0[None, :, None] * c_step
                     + start[None, None, :] * item)
    tasks[..., 3] = width[None, None, :]
    tasks[..., 4] = height[None, :, None]
    run = _sgemm_tasks if dtype == np.float32 else _dgemm_tasks
    with single_threaded_blas():                # every task's GEMM on its own thread
        run(tasks.reshape(-1, 5), K, la[0], la[1], lb[0], lb[1], lc)
    if target is not out:
        out[...] = target
    return out


def blas_gemm(dtype):
    """NumPy's OpenBLAS ``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64) as a ctypes
    function that nopython code can call (pointers as uint64 addresses), for kernels that
    interleave their own loops with GEMMs inside one Numba parallel loop
    (``conv.im2col``'s fused loops). Only when ``AVAILABLE``."""
    if not AVAILABLE:
        raise RuntimeError("no usable OpenBLAS: gemm.AVAILABLE is False")
    return _sgemm if np.dtype(dtype) == np.float32 else _dgemm


@contextlib.contextmanager
def single_threaded_blas():
    """OpenBLAS at one thread for the ``with`` body, the previous count put back after it,
    under the process-wide lock (the setting is process-wide: see the module docstring).
    Wrap every Numba parallel loop that calls ``blas_gemm``'s functions in it."""
    with _BLAS_SETTING:
        previous = _set_blas_threads(1)
        try:
            yield
        finally:
            _set_blas_threads(previous)


def product(a, b):
    """``a @ b`` as a new array: through ``matmul`` for float32/float64 NumPy operands of at
    least 2 dims and one dtype, else the operator itself (CuPy arrays, 1-D operands, ints)."""
    if (AVAILABLE and isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            and a.ndim >= 2 and b.ndim >= 2 and a.dtype == b.dtype
            and a.dtype in (np.float32, np.float64) and a.shape[-1] == b.shape[-2]):
        lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return matmul(a, b, np.empty(lead + (a.shape[-2], b.shape[-1]), a.dtype))
    return a @ b
