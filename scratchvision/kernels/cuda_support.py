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

``launch`` does three things a bare ``kernel[blocks, threads, stream](*args)`` does not:

* **Same stream, no hidden synchronisation.** The kernel runs on CuPy's *current* stream
  (wrapped once per stream with ``cuda.external_stream``), so it is ordered with CuPy's own
  work. Each CuPy array is handed to Numba as ``cuda.as_cuda_array(a, sync=False)``: left
  to itself, Numba imports a ``__cuda_array_interface__`` with ``sync=True`` and calls
  ``synchronize()`` on the stream the array was made on, once per array argument of every
  launch, which would make every kernel wait for all the GPU work queued before it.
  Skipping that is safe because producer and kernel share the stream.
  The library itself reads from the GPU only where it cannot avoid it, each marked where
  it happens: one flag per call when validating values that would send a kernel out of
  bounds (RoI batch indices and finiteness, unpooling and max-pool-backward index ranges,
  NaN boxes in NMS), and the kept count of ``nms`` (its output size depends on the data).
  Soft-NMS is sequential and runs on host copies.
* **No silent copies.** Numba quietly copies a NumPy argument to the device and back
  after the kernel (a host round trip and a full synchronisation). A launch that mixes
  host and device arrays is refused with a TypeError naming the kernel and the argument.
  (A launch on NumPy arrays only, ``impl='cuda'`` forced on host arrays as some tests do,
  is left to Numba's copies.)
* **The simulator.** Under ``NUMBA_ENABLE_CUDASIM=1`` there is no device memory: an object
  exposing ``__cuda_array_interface__`` (the protocol CuPy implements) lives in host memory,
  and is passed to the simulated kernel as the simulator's device-array wrapper around a
  NumPy view of that memory (strided views included), so the kernel's writes land in it.
"""
from __future__ import annotations

import ctypes

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
    from numba import cuda  # noqa: PLC0415
    args = tuple(cuda.as_cuda_array(a, sync=False) if dev else a
                 for a, dev in zip(args, on_device))
    kernel[blocks, threads, _current_stream()](*args)


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
