"""Normalisation layers as Functions: batch norm (Ioffe & Szegedy 2015), layer norm
(Ba et al. 2016), group norm (Wu & He 2018), and ``normalize`` (divide by the p-norm).

Training: statistics over every dim but the channel dim 1, ``x_hat = (x - mean) /
sqrt(var + eps)`` with the biased variance, ``y = gamma x_hat + beta``; the running stats
are updated in place with the *unbiased* variance, ``r = (1 - momentum) r + momentum s``
(PyTorch's convention). Evaluation: the running stats are used instead. The backward of
training mode is the compact form

    gx = gamma / sqrt(var + eps) * (gy - mean(gy) - x_hat * mean(gy * x_hat))

(means over the reduced dims), which follows from differentiating through mean and var.

Layer norm and group norm normalise other sets of elements with the same arithmetic:
layer norm over the trailing ``normalized_shape`` dims of each sample (an elementwise
affine of that shape after it), group norm over each group of ``C / G`` channels (and all
their spatial positions) of each sample (a per-channel affine after it). Both use the
biased variance, no running statistics, and the same backward with ``gamma * gy`` in
place of ``gy``: ``gx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision import backend
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor, _norm_dims, _raw
from scratchvision.functional.activation import _as_tensor
from scratchvision.kernels import batch_norm as KB


def update_running_stats(running_mean, running_var, mean, var, count: int,
                         momentum: float) -> None:
    """``r = (1 - momentum) r + momentum s`` in place, with the unbiased variance
    ``var * count / (count - 1)`` (PyTorch's convention); either may be None."""
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean.astype(running_mean.dtype)
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += momentum * (var * count / (count - 1)).astype(running_var.dtype)


class BatchNorm(Function):
    """The arithmetic is in ``kernels/batch_norm`` (array version and fused Numba version)."""

    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps,
                impl=None):
        if training:
            count = x.size // x.shape[1]
            if count <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                                 f"training, got input of shape {x.shape}")
            y, x_hat, mean, var, inv_std = KB.batch_norm_forward(x, gamma, beta, eps=eps,
                                                                 impl=impl)
            update_running_stats(running_mean, running_var, mean, var, count, momentum)
        else:
            y, x_hat, _, _, inv_std = KB.batch_norm_forward(x, gamma, beta, running_mean,
                                                            running_var, eps, impl=impl)
        self.saved = (x_hat, inv_std, gamma, training, impl)
        return y

    def backward(self, gy):
        x_hat, inv_std, gamma, training, impl = self.saved
        need_x, need_gamma, need_beta = self.needs_input_grad[:3]
        scale = inv_std if gamma is None else inv_std * gamma
        gx, gy_sum, gyx_sum = KB.batch_norm_backward(gy, x_hat, scale, training, impl=impl)
        return (gx if need_x else None, gyx_sum if need_gamma else None,
                gy_sum if need_beta else None, None, None, None, None, None)


def batch_norm(input: Tensor, running_mean=None, running_var=None, weight=None,  # noqa: A002
               bias=None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5, *, impl: str | None = None) -> Tensor:
    """Normalise each channel (dim 1) of an (N, C, ...) input.

    Parameters
    ----------
    input : (N, C) or (N, C, H, W) ...
    running_mean, running_var : (C,) Tensors/arrays updated in place when ``training``;
        used for normalisation when not training
    weight, bias : (C,) learnable scale gamma and shift beta, optional
    impl : kernel version, forward and backward: None (``cpu`` for NumPy, ``reference`` for
        CuPy data), ``"reference"`` (array expressions) or ``"cpu"`` (fused Numba passes);
        see ``kernels/batch_norm``
    """
    x = _as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    rm = _raw(running_mean)
    rv = _raw(running_var)
    for name, v in (("running_mean", rm), ("running_var", rv), ("weight", weight),
                    ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(v.shape)}, expected ({c},) "
                             f"for input of shape {x.shape}")
    if not training and rm is not None and rv is not None:
        # evaluation only reads the running stats: a copy on the input's device will do
        rm, rv = backend.to_device(rm, x.device), backend.to_device(rv, x.device)
    for name, v in (("running_mean", rm), ("running_var", rv), ("weight", weight),
                    ("bias", bias)):
        if v is not None and backend.device_of(_raw(v)) != x.device:
            raise ValueError(f"batch_norm: {name} is on {backend.device_of(_raw(v))} but the "
                             f"input is on {x.device}: move it with .to('{x.device}')")
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: running_mean and running_var are needed when not "
                         "training")
    return BatchNorm.apply(x, weight, bias, rm, rv, training, momentum, eps, impl=impl)


def _standardise(x2):
    """Rows of a (M, K) array -> (x_hat, inv_std (M, 1)), biased variance, no eps yet."""
    mean = x2.mean(axis=1, keepdims=True)                     # (M, 1)
    centred = x2 - mean
    return centred, (centred * centred).mean(axis=1, keepdims=True)


def _standardise_backward(g2, x_hat2, inv_std):
    """gx of x_hat = (x - mean) * inv_std for rows of (M, K), given g = dL/dx_hat."""
    return inv_std * (g2 - g2.mean(axis=1, keepdims=True)
                      - x_hat2 * (g2 * x_hat2).mean(axis=1, keepdims=True))


class LayerNorm(Function):
    """Normalise the last ``k`` dims of x (as one row of K elements per sample)."""

    def forward(self, x, gamma, beta, k, eps):
        xp = xp_of(x)
        m = math.prod(x.shape[:x.ndim - k])
        x2 = x.reshape(m, math.prod(x.shape[x.ndim - k:]))        # (M, K)
        centred, var = _standardise(x2)
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)   # (M, 1)
        x_hat = centred * inv_std
        self.saved = (x_hat, inv_std, gamma, x.shape)
        self.norm_shape = x.shape[x.ndim - k:]
        y = x_hat if gamma is None else x_hat * gamma.reshape(1, -1)
        if beta is not None:
            y = y + beta.reshape(1, -1)
        return y.reshape(x.shape)

    def backward(self, gy):
        x_hat, inv_std, gamma, shape = self.saved
        need_x, need_gamma, need_beta = self.needs_input_grad[:3]
        gy2 = gy.reshape(x_hat.shape)
        gx = ggamma = gbeta = None
        if need_x:
            g2 = gy2 if gamma is None else gy2 * gamma.reshape(1, -1)
            gx = _standardise_backward(g2, x_hat, inv_std).reshape(shape)
        if need_gamma:
            ggamma = (gy2 * x_hat).sum(axis=0).reshape(self.norm_shape)
        if need_beta:
            gbeta = gy2.sum(axis=0).reshape(self.norm_shape)
        return gx, ggamma, gbeta, None, None


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None,  # noqa: A002
               eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the trailing ``normalized_shape`` dims, as torch.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, the mean and (biased) variance
    taken over the last ``len(normalized_shape)`` dims of each sample.

    Parameters
    ----------
    input : (*, *normalized_shape) Tensor
    normalized_shape : int or tuple of ints, the trailing shape to normalise over
    weight, bias : normalized_shape-shaped scale and shift, optional
    eps : added to the variance
    """
    x = _as_tensor(input)
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(int(d) for d in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(f"layer_norm: given normalized_shape={list(shape)}, expected input "
                         f"with shape [*, {', '.join(map(str, shape))}], but got input of "
                         f"size {list(x.shape)}")
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(v.shape)}, expected "
                             f"normalized_shape {shape}")
    return LayerNorm.apply(x, weight, bias, k, eps)


class GroupNorm(Function):
    """Normalise each group of C/G channels of each sample of an (N, C, *) x."""

    def forward(self, x, gamma, beta, groups, eps):
        xp = xp_of(x)
        n, c, s = x.shape[0], x.shape[1], math.prod(x.shape[2:])
        x2 = x.reshape(n * groups, c // groups * s)               # (N*G, C/G * spatial)
        centred, var = _standardise(x2)
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)   # (N*G, 1)
        x_hat = centred * inv_std
        self.saved = (x_hat, inv_std, gamma, x.shape)
        y = x_hat.reshape(n, c, s)                                # (N, C, spatial)
        if gamma is not None:
            y = y * gamma.reshape(1, c, 1)
        if beta is not None:
            y = y + beta.reshape(1, c, 1)
        return y.reshape(x.shape)

    def backward(self, gy):
        x_hat, inv_std, gamma, shape = self.saved
        need_x, need_gamma, need_beta = self.needs_input_grad[:3]
        n, c, s = shape[0], shape[1], math.prod(shape[2:])
        gy3 = gy.reshape(n, c, s)                                 # (N, C, spatial)
        gx = ggamma = gbeta = None
        if need_x:
            g3 = gy3 if gamma is None else gy3 * gamma.reshape(1, c, 1)
            gx = _standardise_backward(g3.reshape(x_hat.shape), x_hat, inv_std).reshape(shape)
        if need_gamma:
            ggamma = (gy3 * x_hat.reshape(n, c, s)).sum(axis=2).sum(axis=0)
        if need_beta:
            gbeta = gy3.sum(axis=2).sum(axis=0)
        return gx, ggamma, gbeta, None, None


def group_norm(input: Tensor, num_groups: int, weight=None, bias=None,  # noqa: A002
               eps: float = 1e-5) -> Tensor:
    """Group normalisation (Wu & He 2018), as torch.

    The C channels of each sample are split into ``num_groups`` groups of C / num_groups
    consecutive channels; each group (over its channels and all spatial positions) is
    normalised with its own mean and biased variance, then ``weight``/``bias`` (C,) scale
    and shift each channel. ``num_groups=1`` normalises each whole sample (layer norm over
    (C, H, W) with a per-channel affine); ``num_groups=C`` is instance norm.

    Parameters
    ----------
    input : (N, C, *) Tensor
    num_groups : divides C
    weight, bias : (C,), optional
    eps : added to the variance
    """
    x = _as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected at least 2 dimensions for input tensor "
                         f"(N, C, *), but received shape {x.shape}")
    c = x.shape[1]
    if not isinstance(num_groups, (int, np.integer)) or num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: expected number of channels in input to be divisible "
                         f"by num_groups, but got input of shape {list(x.shape)} and "
                         f"num_groups={num_groups}")
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            raise ValueError(f"group_norm: {name} has shape {tuple(v.shape)}, expected ({c},) "
                             f"for input of shape {x.shape}")
    return GroupNorm.apply(x, weight, bias, int(num_groups), eps)


def _p_norm(x, p: float, axis):
    """The p-norm along ``axis`` (keepdims), as torch.linalg.vector_norm."""
    xp = xp_of(x)
    a = xp.abs(x)
    if p == math.inf:
        return a.max(axis=axis, keepdims=True)
    if p == -math.inf:
        return a.min(axis=axis, keepdims=True)
    if p == 0:
        return (x != 0).sum(axis=axis, keepdims=True).astype(x.dtype)
    if p == 1:
        return a.sum(axis=axis, keepdims=True)
    if p == 2:
        return xp.sqrt((x * x).sum(axis=axis, keepdims=True))
    return (a ** p).sum(axis=axis, keepdims=True) ** (1 / p)


def _p_norm_backward(gn, x, norm, p: float, axis):
    """dL/dx of norm = ||x||_p given gn = dL/dnorm, with torch's rules at zeros and ties
    (``norm_backward`` in torch's FunctionsManual.cpp)."""
    xp = xp_of(x)
    if p == 0:
        return xp.zeros_like(x)
    if p == 1:
        return xp.sign(x) * gn
    if math.isinf(p):  # the largest (smallest) |x|: the gradient split among ties
        mask = (xp.abs(x) == norm).astype(x.dtype)
        return xp.sign(x) * mask * (gn / mask.sum(axis=axis, keepdims=True))
    if p == 2:
        safe = xp.where(norm == 0, 1, norm)
        return x * xp.where(norm == 0, 0, gn / safe)
    a = xp.abs(x)
    if p < 1:  # |x|^(p-1) is infinite at 0: torch takes the gradient there as 0
        scaled = xp.sign(x) * xp.where(x == 0, 0, xp.where(x == 0, 1, a) ** (p - 1))
        return scaled * gn * norm ** (1 - p)
    safe = xp.where(norm == 0, 1, norm)
    return xp.sign(x) * a ** (p - 1) * xp.where(norm == 0, 0, gn / safe ** (p - 1))


class Normalize(Function):
    """y = x / max(||x||_p, eps) along ``axis``."""

    def forward(self, x, p, axis, eps):
        xp = xp_of(x)
        norm = _p_norm(x, p, axis)
        denom = xp.maximum(norm, eps).astype(x.dtype, copy=False)
        self.saved = (x, norm, denom, p, axis, eps)
        return x / denom

    def backward(self, gy):
        x, norm, denom, p, axis, eps = self.saved
        gx = gy / denom
        # through the denominator: d(x / d)/dd = -x / d^2, and clamp_min passes the
        # gradient to the norm where norm >= eps (torch's clamp_min backward)
        gd = -(gy * x).sum(axis=axis, keepdims=True) / (denom * denom)
        gn = gd * (norm >= eps)
        return gx + _p_norm_backward(gn, x, norm, p, axis), None, None, None


def normalize(input: Tensor, p: float = 2.0, dim=1, eps: float = 1e-12) -> Tensor:  # noqa: A002
    """``x / max(||x||_p, eps)`` along ``dim``, as torch.nn.functional.normalize.

    Parameters
    ----------
    input : Tensor of any shape
    p : the norm's exponent (``inf`` and ``-inf`` too; 2: unit Euclidean length)
    dim : int or tuple of ints to take the norm over
    eps : the smallest denominator, so that all-zero slices stay zero
    """
    x = _as_tensor(input)
    axis = _norm_dims(dim, x.ndim)
    return Normalize.apply(x, float(p), axis, eps)


@register_gradcheck("batch_norm")
def _bn_case(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    g, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5

    def train(x, g, b):
        return batch_norm(x, None, None, g, b, training=True)

    def evaluate(x, g, b):
        return batch_norm(x, rm, rv, g, b, training=False)
    return [(train, [x, g, b]), (evaluate, [x, g, b]),
            ((lambda x: batch_norm(x, None, None, training=True)), [x[:, :, 0, 0]])]


@register_gradcheck("layer_norm")
def _ln_case(rng):
    x = rng.standard_normal((2, 3, 4))
    g, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    return [((lambda x, g, b: layer_norm(x, (3, 4), g, b)), [x, g, b]),
            ((lambda x, g: layer_norm(x, 4, g[0], None, eps=1e-3)), [x, g]),
            ((lambda x: layer_norm(x, [4])), [x])]


@register_gradcheck("group_norm")
def _gn_case(rng):
    x = rng.standard_normal((2, 6, 2, 3))
    g, b = rng.standard_normal(6), rng.standard_normal(6)
    return [((lambda x, g, b: group_norm(x, 3, g, b)), [x, g, b]),
            ((lambda x, g: group_norm(x, 6, g, None)), [x, g]),
            ((lambda x: group_norm(x, 1)), [x[:, :, 0]]),
            ((lambda x, b: group_norm(x, 2, None, b, eps=1e-2)), [x, b])]


@register_gradcheck("normalize")
def _normalize_case(rng):
    x = rng.standard_normal((3, 4, 2))
    distinct = rng.permutation(24).reshape(3, 4, 2) - 11.5   # no ties for the inf-norm
    return [((lambda t: normalize(t)), [x]),
            ((lambda t: normalize(t, p=1.0, dim=-1)), [x + 3.0]),
            ((lambda t: normalize(t, p=3.0, dim=(1, 2))), [x]),
            ((lambda t: normalize(t, p=1.5, dim=0)), [x + 3.0]),
            ((lambda t: normalize(t, p=0.5, dim=1)), [x + 3.0]),
            ((lambda t: normalize(t, p=math.inf, dim=1)), [distinct]),
            # norms on both sides of eps = 0.9: the clamped branch (the denominator
            # constant) and the other
            ((lambda t: normalize(t, p=2.0, dim=1, eps=0.9)), [x * 0.4])]
