"""Activations and dropout: relu, leaky_relu, sigmoid, tanh, softmax, log_softmax.

softmax and log_softmax subtract the row maximum first (``x - max``), which changes
nothing mathematically but keeps ``exp`` from overflowing. The backward passes use the
saved outputs: for ``y = softmax(x)``, ``gx = y * (gy - sum(gy * y))``; for
``z = log_softmax(x)``, ``gx = gy - exp(z) * sum(gy)``.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd import ops
from scratchvision.autograd.factories import default_generator
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0) elementwise."""
    return ops.ReLU.apply(_as_tensor(input))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else negative_slope * x."""
    return ops.LeakyReLU.apply(_as_tensor(input), negative_slope=negative_slope)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)), computed without overflow in either tail."""
    return ops.Sigmoid.apply(_as_tensor(input))


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    return ops.Tanh.apply(_as_tensor(input))


class Softmax(Function):
    def forward(self, x, dim):
        xp = xp_of(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        y = e / e.sum(axis=dim, keepdims=True)
        self.y, self.dim = y, dim
        return y

    def backward(self, gy):
        y = self.y
        return (y * (gy - (gy * y).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Function):
    def forward(self, x, dim):
        xp = xp_of(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        z = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.z, self.dim = z, dim
        return z

    def backward(self, gy):
        xp = xp_of(gy)
        return (gy - xp.exp(self.z) * gy.sum(axis=self.dim, keepdims=True),)


def _softmax_dim(ndim: int, dim: int | None) -> int:
    if dim is None:  # torch's legacy implicit choice
        dim = 0 if ndim in (0, 1, 3) else 1
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % max(ndim, 1)


def softmax(input: Tensor, dim: int | None = None) -> Tensor:  # noqa: A002
    """exp(x) / sum(exp(x)) along ``dim``, numerically stable."""
    x = _as_tensor(input)
    return Softmax.apply(x, dim=_softmax_dim(x.ndim, dim))


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:  # noqa: A002
    """log(softmax(x)) along ``dim`` via the log-sum-exp trick."""
    x = _as_tensor(input)
    return LogSoftmax.apply(x, dim=_softmax_dim(x.ndim, dim))


class Dropout(Function):
    def forward(self, x, p, channelwise=False):
        # channelwise (dropout2d): one draw per (n, c) plane, broadcast over H and W
        shape = x.shape[:2] + (1,) * (x.ndim - 2) if channelwise else x.shape
        keep = default_generator().random(shape) >= p
        self.mask = xp_of(x).asarray(keep, dtype=x.dtype) / (1 - p)
        return x * self.mask

    def backward(self, gy):
        return (gy * self.mask,)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _as_tensor(input)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    return Dropout.apply(x, p=p)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input with probability ``p`` (training)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _as_tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected (N, C, H, W) or (C, H, W) input, got {x.shape}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    return Dropout.apply(x, p=p, channelwise=True)


# ---------------------------------------------------------------- gradient checks
@register_gradcheck("relu")
def _relu_case(rng):
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 0.05] = 0.5  # keep away from the kink
    return relu, [x]


@register_gradcheck("leaky_relu")
def _leaky_case(rng):
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 0.05] = 0.5
    return (lambda t: leaky_relu(t, 0.2)), [x]


@register_gradcheck("sigmoid")
def _sigmoid_case(rng):
    return sigmoid, [rng.standard_normal((3, 4)) * 3]


@register_gradcheck("tanh")
def _tanh_case(rng):
    return tanh, [rng.standard_normal((3, 4))]


@register_gradcheck("softmax")
def _softmax_case(rng):
    return [((lambda t: softmax(t, dim=1)), [rng.standard_normal((2, 5, 3))]),
            ((lambda t: softmax(t, dim=-1)), [rng.standard_normal((4, 3)) * 10])]


@register_gradcheck("log_softmax")
def _log_softmax_case(rng):
    return [((lambda t: log_softmax(t, dim=1)), [rng.standard_normal((2, 5, 3))]),
            ((lambda t: log_softmax(t, dim=0)), [rng.standard_normal((4, 3)) * 10])]


@register_gradcheck("dropout")
def _dropout_case(rng):
    from scratchvision.autograd.factories import manual_seed  # noqa: PLC0415

    def fn(t):
        manual_seed(7)  # the same mask on every evaluation
        return dropout(t, 0.3)
    def fn2d(t):
        manual_seed(7)
        return dropout2d(t, 0.5)
    return [(fn, [rng.standard_normal((4, 5))]), (fn2d, [rng.standard_normal((2, 3, 2, 2))])]
