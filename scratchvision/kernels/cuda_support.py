"""What every ``cuda.py`` kernel file shares: how a kernel is launched on the arrays it is
given, on a real GPU (CuPy arrays) and under Numba's CUDA simulator (which is how CI,
without a GPU, executes the GPU kernels).

Usage inside a kernel file::

    from numba import cuda
    from scratchvision.kernels.cuda_support import launch

    @cuda.jit
    def _relu_kernel(x, y):
        i = cuda.grid(1)            # one thread per element
        if i < x.size:              # guard: the last block runs past the end
            y[i] = max(x[i], 0.0)

    def relu_forward(x):
        xp = get_array_module(x)    # cupy on a GPU (numpy, or a stand-in, in tests)
        y = xp.empty_like(x)
        launch(_relu_kernel, x.size, x.ravel(), y.ravel())   # x.size threads
        return y

``launch`` does four things a bare ``kernel[blocks, threads, stream](*args)`` does not:

* **Same stream, no hidden synchronisation.** The kernel runs on CuPy's *current* stream
  (wrapped once per stream with ``cuda.external_stream``), so it is ordered with CuPy's own
  work. Each CuPy array is handed to Numba as ``cuda.as_cuda_array(a, sync=False)``: left
  to itself, Numba imports a ``__cuda_array_interface__`` with ``sync=True`` and calls
  ``synchronize()`` on the stream the array was made on, once per array argument of every
  launch, which would make every kernel wait for all the GPU work queued before it.
  Skipping that is safe because producer and kernel share the stream.
  The library itself reads from the GPU only where it cannot avoid it, each marked where
  it happens: one flag per call when validating values that would send a kernel out of
  bounds (RoI batch indices and finiteness, unpooling, max-pool-backward and RoI-pool-
  backward index ranges, NaN boxes in NMS), one for the sample count of RoI Align with
  adaptive sampling (the work limit, ``validation.check_limit``), and the kept count of
  ``nms`` (its output size depends on the data).
  Soft-NMS is sequential and runs on host copies.
* **No silent copies.** Numba quietly copies a NumPy argument to the device and back
  after the kernel (a host round trip and a full synchronisation). A launch that mixes
  host and device arrays is refused with a TypeError naming the kernel and the argument.
  (A launch on NumPy arrays only, ``impl='cuda'`` forced on host arrays as some tests do,
  is left to Numba's copies.)
* **Cheap launches.** On a real GPU, Numba compiles each kernel once per argument
  signature and CuPy launches it (``_launch_through_cupy`` below): about 10 µs of Python
  instead of Numba's 90-140 µs, which matters for the hundreds of small kernels of a
  training step. ``SCRATCHVISION_CUDA_LAUNCH=numba`` goes back to Numba's launcher.
* **The simulator.** Under ``NUMBA_ENABLE_CUDASIM=1`` there is no device memory: an object
  exposing ``__cuda_array_interface__`` (the protocol CuPy implements) lives in host memory,
  and is passed to the simulated kernel as the simulator's device-array wrapper around a
  NumPy view of that memory (strided views included), so the kernel's writes land in it.
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from scratchvision.backend import cuda_simulator_enabled, is_cupy_array

THREADS = 256
SIMULATOR = cuda_simulator_enabled()   # fixed for the process: Numba reads it at import
_external_streams: dict[int, object] = {}   # CuPy stream pointer -> numba stream wrapping it


def launch_config(n: int, threads: int = THREADS) -> tuple[int, int]:
    """(blocks, threads) covering ``n`` items with one thread each (at least one block)."""
    return max(1, (n + threads - 1) // threads), threads


def launch(kernel, n_items: int, *args) -> None:
    """Run ``kernel`` with one thread per item (``n_items`` of them, in 1-D blocks)."""
    blocks, threads = launch_config(n_items)
    launch_grid(kernel, blocks, threads, *args)


MAX_GRID_YZ = 65535                  # CUDA's limit on gridDim.y and gridDim.z


def launch_planes(kernel, n_items: int, ny: int, nz: int, *args) -> None:
    """Run ``kernel`` on a 3-D grid: one thread per item along x (``n_items`` of them, in
    blocks of up to 256, a multiple of the warp size), one block row per y in ``range(ny)``
    and z in ``range(nz)``. The kernel reads y and z from ``cuda.blockIdx``, so the
    integer divisions that a flat index would need to recover them are gone; it should
    loop ``for y in range(cuda.blockIdx.y, ny, cuda.gridDim.y)`` (likewise z) because
    the grid is capped at 65535 along y and z."""
    bx, threads = launch_config(n_items, min(THREADS, max(32, (n_items + 31) // 32 * 32)))
    blocks = (bx, max(1, min(ny, MAX_GRID_YZ)), max(1, min(nz, MAX_GRID_YZ)))
    launch_grid(kernel, blocks, threads, *args)


def launch_grid(kernel, blocks, threads, *args) -> None:
    """Run ``kernel[blocks, threads]`` on the arrays' stream (see the module docstring)."""
    on_device = [is_cupy_array(a) for a in args]
    if any(on_device):
        for position, (a, dev) in enumerate(zip(args, on_device)):
            if isinstance(a, np.ndarray) and not dev:
                raise TypeError(
                    f"{_name(kernel)}: argument {position} is a host (numpy) array of shape "
                    f"{a.shape} while other arguments are device (cupy) arrays; move it "
                    "with xp.asarray first")
    if SIMULATOR:
        # the simulator's stand-in for device memory wraps the host view without a copy
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray  # noqa: PLC0415
        args = tuple(FakeCUDAArray(_host_view(a)) if dev else a
                     for a, dev in zip(args, on_device))
        kernel[blocks, threads](*args)
        return
    if not any(on_device):       # NumPy arrays only (impl='cuda' forced on host arrays)
        kernel[blocks, threads](*args)          # Numba copies them over and back
        return
    if _FAST_LAUNCH and _launch_through_cupy(kernel, blocks, threads, args):
        return
    from numba import cuda  # noqa: PLC0415
    args = tuple(cuda.as_cuda_array(a, sync=False) if dev else a
                 for a, dev in zip(args, on_device))
    kernel[blocks, threads, _current_stream()](*args)


# --- launching Numba-compiled kernels through CuPy -------------------------------------
# Numba's own launch costs 90-140 µs of Python per call with CuPy arguments (measured on an
# H200, benchmarks/_gpu_profile.py): it wraps every array in a DeviceNDArray (querying the
# driver about its pointer, making a stream object) and re-types the arguments. CuPy
# launches a kernel in about 7 µs. So Numba compiles each kernel once per signature, CuPy
# loads its PTX and launches it, with the arguments laid out as Numba's kernel ABI has
# them: an array is (meminfo, parent, size, itemsize, data pointer, *shape, *strides in
# bytes), a scalar is passed by value (int64, float64, or one byte for a bool).
_FAST_LAUNCH = os.environ.get("SCRATCHVISION_CUDA_LAUNCH", "cupy") != "numba"
_loaded: dict[tuple, object] = {}      # (kernel, argument kinds) -> CuPy function, or None


def _launch_through_cupy(kernel, blocks, threads, args) -> bool:
    """Launch on CuPy's current stream; False where this kernel must go through Numba."""
    kinds = tuple(_kind(a) for a in args)
    key = (kernel, kinds)
    function = _loaded.get(key, _MISSING)
    if function is _MISSING:
        function = _loaded[key] = _load_through_cupy(kernel, args, kinds)
    if function is None:
        return False
    flat = []
    for a, kind in zip(args, kinds):
        if kind[0] == "array":
            flat += [_ZERO, _ZERO, np.intp(a.size), np.intp(a.itemsize), np.intp(a.data.ptr)]
            flat += [np.intp(n) for n in a.shape]
            flat += [np.intp(s) for s in a.strides]
        else:
            flat.append(kind[1](a))
    function(_dims(blocks), _dims(threads), tuple(flat))
    return True


_MISSING = object()
_ZERO = np.intp(0)
_SCALARS = {bool: np.bool_, int: np.int64, float: np.float64}   # Numba's typeof of each


def _kind(a):
    """What the compiled kernel depends on: dtype, rank and layout, or the scalar type."""
    if is_cupy_array(a):
        layout = "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "A"
        return ("array", a.dtype, a.ndim, layout)
    if type(a) in _SCALARS:
        return ("scalar", _SCALARS[type(a)])
    if isinstance(a, np.generic):
        return ("scalar", type(a))
    raise TypeError(f"cannot pass {type(a).__name__} to a kernel")


def _dims(d):
    return d if isinstance(d, tuple) else (int(d),)


def _load_through_cupy(kernel, args, kinds):
    """Compile ``kernel`` for these arguments (of these ``_kind``s) with Numba, load its
    PTX into CuPy."""
    import warnings  # noqa: PLC0415

    import cupy  # noqa: PLC0415
    import numba  # noqa: PLC0415
    from numba import cuda  # noqa: PLC0415
    try:
        signature = tuple(
            numba.types.Array(numba.from_dtype(kind[1]), kind[2], kind[3])
            if kind[0] == "array" else numba.typeof(kind[1](a))
            for a, kind in zip(args, kinds))
        compiled = kernel.compile(signature)
        if getattr(compiled, "debug", False) or getattr(compiled, "cooperative", False):
            return None              # Numba's launch handles their extra machinery
        ptx = compiled.inspect_asm(cuda.get_current_device().compute_capability)
        module = cupy.cuda.function.Module()
        module.load(ptx.encode() if isinstance(ptx, str) else bytes(ptx))
        return module.get_function(compiled.entry_name)   # (it keeps the module loaded)
    except Exception as error:  # noqa: BLE001 (any failure: Numba's launch still works)
        warnings.warn(f"{_name(kernel)}: launching through Numba, not CuPy ({error!r})",
                      RuntimeWarning, stacklevel=4)
        return None


def launched_through_cupy(kernel) -> bool:
    """Whether some launch of ``kernel`` in this process went through CuPy (for tests)."""
    return any(k == kernel and f is not None for (k, _), f in _loaded.items())


def _current_stream():
    """The numba stream wrapping CuPy's current stream (made once per stream)."""
    import cupy  # noqa: PLC0415
    from numba import cuda  # noqa: PLC0415
    ptr = cupy.cuda.get_current_stream().ptr
    if ptr not in _external_streams:
        _external_streams[ptr] = cuda.external_stream(ptr) if ptr else cuda.default_stream()
    return _external_streams[ptr]


def _host_view(a) -> np.ndarray:
    """Simulator only: a NumPy view of the host memory behind ``__cuda_array_interface__``."""
    cai = a.__cuda_array_interface__
    dtype = np.dtype(cai["typestr"])
    shape = tuple(cai["shape"])
    if 0 in shape:
        return np.empty(shape, dtype)
    strides = cai.get("strides") or tuple(
        int(s) for s in np.cumprod((dtype.itemsize,) + shape[:0:-1])[::-1])
    # the bytes the view touches: from its lowest to its highest element
    low = sum(s * (n - 1) for s, n in zip(strides, shape) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(strides, shape) if s > 0) + dtype.itemsize
    buffer = (ctypes.c_byte * (high - low)).from_address(cai["data"][0] + low)
    flat = np.frombuffer(buffer, np.uint8)
    return np.lib.stride_tricks.as_strided(flat[-low:].view(dtype) if low else flat.view(dtype),
                                           shape, strides)


def _name(kernel) -> str:
    return getattr(getattr(kernel, "py_func", kernel), "__name__", repr(kernel))
