"""Activations and dropout: relu, leaky_relu, sigmoid, tanh, gelu, silu, softplus,
logsigmoid, elu, hardtanh, relu6, mish, softmax, log_softmax.

gelu is ``x * Phi(x)`` with Phi the standard normal CDF, ``Phi(x) = (1 + erf(x/sqrt 2)) / 2``
(``approximate='tanh'``: ``Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2``), and
its derivative is ``Phi(x) + x phi(x)``, ``phi`` the normal density. NumPy has no erf, so
a small Numba loop over ``math.erf`` computes it (CuPy arrays use ``cupyx.scipy.special``).
silu is ``x * sigmoid(x)``, with derivative ``s (1 + x (1 - s))``.

softplus is ``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``
(torch's switch to the linear branch, which also stops ``exp`` from overflowing); its
derivative is ``sigmoid(beta x)`` (1 on the linear branch). elu is ``x`` for ``x > 0`` and
``alpha (exp(x) - 1)`` (``expm1``, as torch) otherwise, with derivative ``alpha exp(x)``
there. hardtanh clamps to ``[min_val, max_val]`` and, as torch, passes the gradient only
strictly inside (0 at the bounds: relu6 = hardtanh(0, 6) has gradient 0 at 0 and at 6).
mish is ``x tanh(softplus(x))``, with derivative ``t + x sigmoid(x) (1 - t^2)``,
``t = tanh(softplus(x))``. logsigmoid is ``min(x, 0) - log1p(exp(-|x|))``, derivative
``sigmoid(-x)``.

softmax and log_softmax subtract the row maximum first (``x - max``), which changes
nothing mathematically but keeps ``exp`` from overflowing. The backward passes use the
saved outputs: for ``y = softmax(x)``, ``gx = y * (gy - sum(gy * y))``; for
``z = log_softmax(x)``, ``gx = gy - exp(z) * sum(gy)``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from scratchvision import backend
from scratchvision.autograd import ops
from scratchvision.autograd.factories import default_generator
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.autograd.factories import where as sv_where


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _apply(x: Tensor, fn, inplace: bool) -> Tensor:
    """``fn(x)``, or with ``inplace=True`` written into ``x`` and ``x`` returned (through
    ``Tensor._modify``: version counter bumped, history rebased in the graph, a leaf that
    requires grad refused, as torch)."""
    return x._modify(fn) if inplace else fn(x)


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0) elementwise.

    ``inplace=True`` writes the result into ``input`` and returns it, as torch.
    """
    return _apply(_as_tensor(input), ops.ReLU.apply, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else negative_slope * x."""
    return _apply(_as_tensor(input),
                  lambda v: ops.LeakyReLU.apply(v, negative_slope=negative_slope), inplace)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)), computed without overflow in either tail."""
    return ops.Sigmoid.apply(_as_tensor(input))


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    return ops.Tanh.apply(_as_tensor(input))


@numba.njit(cache=True, parallel=True)
def _erf_loop(x, out):  # pragma: no cover  (compiled)
    for i in numba.prange(x.size):   # elementwise: each i written by one thread
        out[i] = math.erf(np.float64(x[i]))


@numba.njit(cache=True, parallel=True)
def _erf32_loop(x, out):  # pragma: no cover  (compiled)
    # float32 erf as the rational minimax fit of Eigen/XLA: erf(v) = v P(v^2) / Q(v^2) on
    # [-4, 4] (|erf| rounds to 1 beyond), max abs error 4e-7; no libm call, so the loop
    # vectorises (~30x the float64 math.erf loop). NaN propagates through min/max.
    for i in numba.prange(x.size):
        v = min(max(x[i], np.float32(-4.0)), np.float32(4.0))
        v2 = v * v
        p = np.float32(-2.72614225801306e-10)
        p = p * v2 + np.float32(2.77068142495902e-08)
        p = p * v2 + np.float32(-2.10102402082508e-06)
        p = p * v2 + np.float32(-5.69250639462346e-05)
        p = p * v2 + np.float32(-7.34990630326855e-04)
        p = p * v2 + np.float32(-2.95459980854025e-03)
        p = p * v2 + np.float32(-1.60960333262415e-02)
        q = np.float32(-1.45660718464996e-05)
        q = q * v2 + np.float32(-2.13374055278905e-04)
        q = q * v2 + np.float32(-1.68282697438203e-03)
        q = q * v2 + np.float32(-7.37332916720468e-03)
        q = q * v2 + np.float32(-1.42647390514189e-02)
        out[i] = v * p / q


def _erf(x):
    """erf elementwise, in x's dtype (float32: a rational fit, error < 4e-7; others:
    computed in float64 on the CPU)."""
    if backend.is_cupy_array(x):
        try:
            from cupyx.scipy.special import erf  # noqa: PLC0415
        except ImportError:  # a CuPy without cupyx.scipy: compute on the host
            return backend.to_device(_erf(backend.to_device(x, "cpu")), "cuda")
        return erf(x)
    if x.dtype == np.float32:
        out = np.empty(x.shape, np.float32)
        _erf32_loop(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
        return out
    out = np.empty(x.shape, np.float64)
    _erf_loop(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out.astype(x.dtype, copy=False)


def _floating(x: Tensor, fn: str) -> Tensor:
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype} (as "
                        f"torch, integer tensors are refused)")
    return x


_SQRT1_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_BETA = math.sqrt(2 / math.pi)   # torch's kBeta = M_SQRT2 * M_2_SQRTPI * 0.5
_TANH_KAPPA = 0.044715


class GELU(Function):
    def forward(self, x, approximate):
        xp = xp_of(x)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = xp.tanh(_TANH_BETA * (x + _TANH_KAPPA * x * x * x))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(x * _SQRT1_2))           # Phi(x)
        return x * self.cdf

    def backward(self, gy):
        xp = xp_of(gy)
        x = self.x
        if self.approximate == "tanh":  # torch's GeluBackward, tanh branch
            t = self.t
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _TANH_BETA * (
                1 + 3 * _TANH_KAPPA * x * x)
        else:                           # Phi(x) + x phi(x)
            d = self.cdf + x * _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return gy * d, None


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """Gaussian error linear unit (Hendrycks & Gimpel 2016): ``x * Phi(x)``.

    Parameters
    ----------
    input : Tensor of any shape
    approximate : 'none' (exact, with erf) or 'tanh' (the tanh approximation), as torch
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate argument must be either 'none' or 'tanh', got "
                         f"{approximate!r}")
    return GELU.apply(_floating(_as_tensor(input), "gelu"), approximate)


class SiLU(Function):
    def forward(self, x):
        xp = xp_of(x)
        e = xp.exp(-xp.abs(x))  # the stable sigmoid of ops.Sigmoid
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        self.x, self.s = x, s
        return x * s

    def backward(self, gy):
        s = self.s
        return (gy * s * (1 + self.x * (1 - s)),)


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``; ``inplace`` as in ``relu``."""
    x = _floating(_as_tensor(input), "silu")
    return _apply(x, SiLU.apply, inplace)


def _stable_sigmoid(x):
    """sigmoid(x) without overflow in either tail (the form of ops.Sigmoid)."""
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Softplus(Function):
    def forward(self, x, beta, threshold):
        xp = xp_of(x)
        bx = x * beta
        self.x, self.beta, self.threshold = x, beta, threshold
        # exp of min(bx, threshold): the linear branch's exp is never needed (nor overflows)
        with np.errstate(over="ignore"):
            soft = xp.log1p(xp.exp(xp.minimum(bx, threshold))) / beta
        return xp.where(bx > threshold, x, soft).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = xp_of(gy)
        bx = self.x * self.beta
        with np.errstate(over="ignore", invalid="ignore"):
            z = xp.exp(xp.minimum(bx, self.threshold))
            d = z / (z + 1)                              # torch's form of sigmoid(bx)
        return xp.where(bx > self.threshold, gy, gy * d).astype(gy.dtype, copy=False), \
            None, None


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > threshold``, as torch.

    Parameters
    ----------
    input : Tensor of any shape (floating point)
    beta : the sharpness; ``softplus -> relu`` as ``beta -> inf``
    threshold : above ``beta * x > threshold`` the result is ``x`` (linear branch)
    """
    return Softplus.apply(_floating(_as_tensor(input), "softplus"), beta, threshold)


class LogSigmoid(Function):
    def forward(self, x):
        xp = xp_of(x)
        self.x = x
        return (xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)

    def backward(self, gy):
        return (gy * _stable_sigmoid(-self.x),)


def logsigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, finite in both tails."""
    return LogSigmoid.apply(_floating(_as_tensor(input), "logsigmoid"))


class ELU(Function):
    def forward(self, x, alpha, from_result=False):
        xp = xp_of(x)
        neg = alpha * xp.expm1(xp.minimum(x, 0))
        y = xp.where(x > 0, x, neg).astype(x.dtype, copy=False)
        self.x, self.y, self.alpha, self.from_result = x, y, alpha, from_result
        return y

    def backward(self, gy):
        xp = xp_of(gy)
        x = self.x
        if self.from_result:   # in place, torch differentiates from the output: y + alpha
            d = self.y + self.alpha
        else:                  # alpha exp(x) where x <= 0
            d = self.alpha * xp.exp(xp.minimum(x, 0))
        return xp.where(x > 0, gy, gy * d).astype(gy.dtype, copy=False), None, None


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """Exponential linear unit (Clevert et al. 2015): ``x`` if ``x > 0`` else
    ``alpha * (exp(x) - 1)``; ``inplace`` as in ``relu``."""
    x = _floating(_as_tensor(input), "elu")
    return _apply(x, lambda v: ELU.apply(v, alpha, inplace), inplace)


class Hardtanh(Function):
    def forward(self, x, min_val, max_val):
        xp = xp_of(x)
        self.x, self.bounds = x, (min_val, max_val)
        return xp.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    def backward(self, gy):
        lo, hi = self.bounds
        inside = (self.x > lo) & (self.x < hi)                # torch: 0 at the bounds
        return gy * inside, None, None


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,  # noqa: A002
             inplace: bool = False) -> Tensor:
    """Clamp to ``[min_val, max_val]``; the gradient is 1 strictly inside, else 0 (torch).

    Integer inputs are clamped too (and keep their dtype), as torch.
    """
    if min_val > max_val:
        raise ValueError(f"min_val cannot be greater than max_val (hardtanh got "
                         f"min_val={min_val}, max_val={max_val})")
    return _apply(_as_tensor(input), lambda v: Hardtanh.apply(v, min_val, max_val), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``min(max(x, 0), 6)`` = ``hardtanh(x, 0, 6)`` (gradient 0 at 0 and at 6, as torch)."""
    return hardtanh(input, 0.0, 6.0, inplace)


class Mish(Function):
    def forward(self, x):
        xp = xp_of(x)
        sp = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0)    # stable softplus(x)
        self.x, self.t = x, xp.tanh(sp).astype(x.dtype, copy=False)
        return x * self.t

    def backward(self, gy):
        t = self.t
        return (gy * (t + self.x * _stable_sigmoid(self.x) * (1 - t * t)),)


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """Mish (Misra 2019): ``x * tanh(softplus(x))``; ``inplace`` as in ``relu``."""
    x = _floating(_as_tensor(input), "mish")
    return _apply(x, Mish.apply, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between (gradient 1/6 strictly
    inside, 0 outside, as torch)."""
    def fn(x):
        inside = (x > -3) & (x < 3)
        return sv_where(inside, x / 6 + 0.5, (x >= 3).to(x.dtype))
    return _apply(_floating(_as_tensor(input), "hardsigmoid"), fn, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * hardsigmoid(x) (MobileNetV3's swish without the exp)."""
    return _apply(_floating(_as_tensor(input), "hardswish"), lambda x: x * hardsigmoid(x),
                  inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    """x where x >= 0, else weight * x; ``weight`` has one slope (shared) or one per channel
    (dim 1 of the input), as torch.nn.functional.prelu. Differentiable in both."""
    x = _as_tensor(input)
    w = _as_tensor(weight)
    if w.numel() != 1 and (x.ndim < 2 or w.numel() != x.shape[1]):
        raise ValueError(f"prelu: weight has {w.numel()} slopes but the input of shape "
                         f"{x.shape} has {x.shape[1] if x.ndim >= 2 else 1} channels")
    if w.numel() != 1:        # (C,) -> (1, C, 1, ...): one slope per channel
        w = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    else:
        w = w.reshape(())
    return sv_where(x >= 0, x, w * x)


class Softmax(Function):
    def forward(self, x, dim):
        xp = xp_of(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        y = e / e.sum(axis=dim, keepdims=True)
        self.save_for_backward(y)
        self.dim = dim
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (y * (gy - (gy * y).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Function):
    def forward(self, x, dim):
        xp = xp_of(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        z = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.save_for_backward(z)
        self.dim = dim
        return z

    def backward(self, gy):
        xp = xp_of(gy)
        (z,) = self.saved_tensors
        return (gy - xp.exp(z) * gy.sum(axis=self.dim, keepdims=True),)


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
@register_gradcheck("prelu_hardswish")
def _prelu_case(rng):
    x = rng.standard_normal((2, 3, 4))
    x[np.abs(x) < 0.05] = 0.3
    y = rng.standard_normal((2, 3)) * 4
    y[np.minimum(np.abs(np.abs(y) - 3), np.abs(y)) < 0.05] = 1.0   # off the kinks at 0, ±3
    return [((lambda t, w: prelu(t, w)), [x, rng.random(3)]),
            ((lambda t, w: prelu(t, w)), [x, np.array([0.25])]),
            ((lambda t: hardswish(t)), [y]), ((lambda t: hardsigmoid(t)), [y])]


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


@register_gradcheck("gelu")
def _gelu_case(rng):
    x = rng.standard_normal((3, 5)) * 2
    return [((lambda t: gelu(t)), [x]), ((lambda t: gelu(t, approximate="tanh")), [x])]


@register_gradcheck("silu")
def _silu_case(rng):
    return silu, [rng.standard_normal((3, 5)) * 3]


@register_gradcheck("softplus")
def _softplus_case(rng):
    x = rng.standard_normal((3, 5)) * 4
    x[0, :3] = [12.0, 8.0, -30.0]     # beta=2: 12 is on the linear branch, 8 below it
    return [(softplus, [x]), ((lambda t: softplus(t, beta=2.0, threshold=20.0)), [x]),
            ((lambda t: softplus(t, beta=0.5, threshold=1.0)), [x])]


@register_gradcheck("logsigmoid")
def _logsigmoid_case(rng):
    return logsigmoid, [rng.standard_normal((3, 5)) * 4]


@register_gradcheck("elu")
def _elu_case(rng):
    x = rng.standard_normal((3, 5)) * 2
    x[np.abs(x) < 0.05] = 0.5
    return [(elu, [x]), ((lambda t: elu(t, alpha=0.3)), [x]),
            ((lambda t: elu(t * 1, alpha=1.7, inplace=True)), [x])]


@register_gradcheck("hardtanh")
def _hardtanh_case(rng):
    x = rng.standard_normal((3, 5)) * 2
    for b in (-1.0, 1.0, -0.5, 2.0):
        x[np.abs(x - b) < 0.05] = 0.25  # keep away from the kinks
    return [(hardtanh, [x]), ((lambda t: hardtanh(t, -0.5, 2.0)), [x])]


@register_gradcheck("relu6")
def _relu6_case(rng):
    x = rng.standard_normal((3, 5)) * 5
    x[(np.abs(x) < 0.05) | (np.abs(x - 6) < 0.05)] = 3.0
    return [(relu6, [x]), ((lambda t: relu6(t * 1, inplace=True)), [x])]


@register_gradcheck("mish")
def _mish_case(rng):
    return mish, [rng.standard_normal((3, 5)) * 3]


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
