"""What every ``cuda.py`` kernel file shares: the stream to launch on, grid sizes, and
the way the same code runs on CuPy arrays (real GPU) and on NumPy arrays (Numba's CUDA
simulator, which is how CI, without a GPU, executes the GPU kernels).

Usage inside a kernel file::

    from numba import cuda
    from scratchvision.kernels.cuda_support import launch_config, stream_for

    @cuda.jit
    def _relu_kernel(x, y):
        i = cuda.grid(1)            # one thread per element
        if i < x.size:              # guard: the last block runs past the end
            y[i] = max(x[i], 0.0)

    def relu_forward(x):
        xp = get_array_module(x)    # cupy on a GPU, numpy under the simulator
        y = xp.empty_like(x)
        blocks, threads = launch_config(x.size)
        _relu_kernel[blocks, threads, stream_for(x)](x.ravel(), y.ravel())
        return y

Kernels launch on CuPy's *current* stream (``cuda.external_stream``), so they order
correctly with CuPy's own work and no hidden synchronisation is added.
"""
from __future__ import annotations

from scratchvision.backend import is_cupy_array

THREADS = 256


def launch_config(n: int, threads: int = THREADS) -> tuple[int, int]:
    """(blocks, threads) covering ``n`` items with one thread each (at least one block)."""
    return max(1, (n + threads - 1) // threads), threads


def stream_for(x):
    """The numba stream wrapping CuPy's current stream, or 0 (default) under the simulator."""
    if not is_cupy_array(x):
        return 0
    import cupy  # noqa: PLC0415
    from numba import cuda  # noqa: PLC0415
    return cuda.external_stream(cupy.cuda.get_current_stream().ptr)
