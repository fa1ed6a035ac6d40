"""Element-wise activation kernels of the autograd ops: leaky ReLU forward and backward,
ReLU backward.

    leaky_relu(x) = x if x > 0 else slope x,      d/dx = 1 if x > 0 else slope
    relu backward: gx = gy if y > 0 else 0        (y = relu(x), saved by the forward)

Versions (``impl=``): ``reference`` (NumPy/CuPy array expressions, ``reference.py``: a
comparison, a product and a select, each a pass over the data writing a temporary; CuPy
arrays take it by default) and ``cpu`` (Numba, ``cpu.py``: one pass, parallel over
elements). Both compute the same products in the arrays' dtype, so they agree bit for bit
(NaN included: ``NaN > 0`` is false, so a NaN input takes the slope branch in both).
"""
from __future__ import annotations

from scratchvision.kernels.versions import KernelFamily

VERSIONS = KernelFamily("activation", gpu=(), on_cupy=("reference",))


def _version(impl, *arrays):
    # the Numba loops take float32 / float64 arrays of one dtype and one shape; anything
    # else (float16, mixed dtypes, broadcasting) stays on the array expressions
    if impl is None and (any(a.dtype.kind != "f" or a.dtype.itemsize < 4 for a in arrays)
                         or len({a.dtype for a in arrays}) > 1
                         or len({a.shape for a in arrays}) > 1):
        impl = "reference"
    return VERSIONS.module(impl, *arrays)


def leaky_relu_forward(x, negative_slope: float, impl=None):
    """``x if x > 0 else negative_slope * x``, a new array of x's shape and dtype."""
    return _version(impl, x).leaky_relu_forward(x, float(negative_slope))


def leaky_relu_backward(gy, x, negative_slope: float, impl=None):
    """``gy if x > 0 else negative_slope * gy`` (x: the forward's input)."""
    return _version(impl, gy, x).leaky_relu_backward(gy, x, float(negative_slope))


def relu_backward(gy, y, impl=None):
    """``gy if y > 0 else 0`` (y: the forward's output)."""
    return _version(impl, gy, y).relu_backward(gy, y)
