"""Activation kernels as NumPy/CuPy array expressions (see the family's ``__init__``)."""
from __future__ import annotations

from scratchvision.backend import get_array_module


def leaky_relu_forward(x, slope: float):
    return get_array_module(x).where(x > 0, x, x * slope)


def leaky_relu_backward(gy, x, slope: float):
    return get_array_module(x).where(x > 0, gy, gy * slope)


def relu_backward(gy, y):
    return gy * (y > 0)
