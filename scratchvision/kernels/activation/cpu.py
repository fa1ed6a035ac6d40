"""Activation kernels in Numba: one pass over contiguous data, parallel over elements
(see the family's ``__init__``). The slope is rounded to the arrays' dtype first, as NumPy
rounds a Python float that multiplies a float32 array, so the products match
``reference.py``'s bit for bit. Inputs that are not C-contiguous are copied once."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_JIT = dict(parallel=True, cache=True, nogil=True)


@njit(**_JIT)
def _leaky_forward(x, slope, y):  # pragma: no cover (compiled)
    for i in prange(x.shape[0]):
        v = x[i]
        y[i] = v if v > 0 else v * slope


@njit(**_JIT)
def _leaky_backward(gy, x, slope, gx):  # pragma: no cover (compiled)
    for i in prange(x.shape[0]):
        g = gy[i]
        gx[i] = g if x[i] > 0 else g * slope


@njit(**_JIT)
def _relu_backward(gy, y, gx):  # pragma: no cover (compiled)
    for i in prange(y.shape[0]):
        g = gy[i]
        gx[i] = g if y[i] > 0 else g * 0       # as gy * False: NaN * 0 stays NaN, -1 * 0 = -0


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def leaky_relu_forward(x, slope: float):
    y = np.empty(x.shape, x.dtype)
    _leaky_forward(_flat(x), x.dtype.type(slope), y.reshape(-1))
    return y


def leaky_relu_backward(gy, x, slope: float):
    gx = np.empty(gy.shape, gy.dtype)
    _leaky_backward(_flat(gy), _flat(x), gy.dtype.type(slope), gx.reshape(-1))
    return gx


def relu_backward(gy, y):
    gx = np.empty(gy.shape, gy.dtype)
    _relu_backward(_flat(gy), _flat(y), gx.reshape(-1))
    return gx
