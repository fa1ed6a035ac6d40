"""Losses with torch.nn.functional's semantics and defaults.

``cross_entropy(x, t) = nll_loss(log_softmax(x, dim=1), t)``. With class ``weight`` w and
``reduction='mean'`` the sum of per-element losses ``-w[t_i] * logp[i, t_i]`` is divided by
``sum_i w[t_i]`` over the non-ignored elements (not by their count), exactly as PyTorch.
Inputs may be (N, C) or (N, C, d1, d2, ...) with targets (N,) or (N, d1, d2, ...): the
segmentation case (N, C, H, W) with (N, H, W) targets.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd.function import Function, unbroadcast, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor, _raw
from scratchvision.functional.activation import _as_tensor, log_softmax

REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class NLLLoss(Function):
    """Negative log-likelihood of integer targets; the class dim is 1."""

    def forward(self, logp, target, weight, ignore_index, reduction):
        xp = xp_of(logp)
        n_classes = logp.shape[1]
        valid = target != ignore_index                               # (N, d...)
        safe = xp.where(valid, target, 0)                            # an index that exists
        picked = xp.take_along_axis(logp, xp.expand_dims(safe, 1), axis=1)[:, 0]  # (N, d...)
        w = xp.ones(n_classes, dtype=logp.dtype) if weight is None else weight
        wt = w[safe] * valid                                         # (N, d...) weight per item
        losses = -picked * wt
        self.safe, self.wt, self.shape = safe, wt, logp.shape
        self.reduction = reduction
        if reduction == "none":
            return losses
        if reduction == "sum":
            return xp.asarray(losses.sum(), dtype=logp.dtype)
        self.denom = wt.sum()
        return xp.asarray(losses.sum() / self.denom, dtype=logp.dtype)

    def backward(self, gy):
        xp = xp_of(gy)
        g_item = -gy * self.wt                       # 'none' and 'sum'
        if self.reduction == "mean":
            g_item = g_item / self.denom
        glogp = xp.zeros(self.shape, dtype=gy.dtype)
        xp.put_along_axis(glogp, xp.expand_dims(self.safe, 1),
                          xp.expand_dims(g_item.astype(gy.dtype), 1), axis=1)
        return glogp, None, None, None, None


def _check_targets(input: Tensor, target, ignore_index: int, fn: str):
    t = target.data if isinstance(target, Tensor) else target
    xp = input.xp
    t = xp.asarray(t)
    if t.dtype.kind == "f":
        if xp.isnan(t).any():
            raise ValueError(f"{fn}: target contains NaN; class-index targets must be integers")
        raise TypeError(f"{fn}: expected integer class-index targets (int64), got dtype "
                        f"{t.dtype} with shape {t.shape}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: expected integer class-index targets, got dtype {t.dtype}")
    if input.ndim < 2 and not (input.ndim == 1 and t.ndim == 0):
        raise ValueError(f"{fn}: input must be (N, C) or (N, C, d1, ...), got {input.shape}")
    if input.ndim == 1:  # unbatched (C,) with a scalar target
        return t.reshape(1), True
    expected = (input.shape[0],) + input.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{fn}: target shape {t.shape} does not match input shape "
                         f"{input.shape}: expected {expected}")
    n_classes = input.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise ValueError(f"{fn}: target values must be in [0, {n_classes}) or equal "
                         f"ignore_index={ignore_index}; found {sorted(set(t[bad].tolist()))[:5]}")
    return t.astype(np.int64, copy=False), False


def nll_loss(input: Tensor, target, weight=None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: ``-weight[t] * input[n, t]``, reduced.

    Parameters
    ----------
    input : (N, C) or (N, C, d1, ...) log-probabilities
    target : (N,) or (N, d1, ...) int64 class indices in [0, C) or ``ignore_index``
    weight : (C,) optional class weights
    """
    _check_reduction(reduction)
    x = _as_tensor(input)
    t, unbatched = _check_targets(x, target, ignore_index, "nll_loss")
    if unbatched:
        x = x.reshape(1, -1)
    w = None
    if weight is not None:
        w = weight.data if isinstance(weight, Tensor) else x.xp.asarray(weight, dtype=x.dtype)
        if w.shape != (x.shape[1],):
            raise ValueError(f"nll_loss: weight shape {w.shape} must be ({x.shape[1]},)")
    out = NLLLoss.apply(x, t, w, ignore_index, reduction)
    return out.reshape(()) if unbatched and reduction == "none" else out


def cross_entropy(input: Tensor, target, weight=None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from raw scores (logits).

    Parameters
    ----------
    input : (N, C) or (N, C, d1, ...) logits (e.g. (N, C, H, W) for segmentation)
    target : (N,) or (N, d1, ...) int64 class indices, or class probabilities of the same
        shape as ``input`` (float)
    weight : (C,) optional per-class weights
    ignore_index : target value that contributes neither loss nor gradient
    reduction : 'mean' (weighted mean over non-ignored elements), 'sum' or 'none'
    label_smoothing : mix the target with the uniform distribution, as torch
    """
    _check_reduction(reduction)
    x = _as_tensor(input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    t_raw = target.data if isinstance(target, Tensor) else target
    if getattr(t_raw, "dtype", None) is not None and t_raw.dtype.kind == "f" \
            and tuple(t_raw.shape) == x.shape:
        return _soft_cross_entropy(x, target, weight, reduction, label_smoothing)
    logp = log_softmax(x, dim=1 if x.ndim > 1 else 0)
    loss = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return loss
    # torch: (1-eps) * nll + eps * (-sum_c w_c logp_c / C), with the same reduction
    t, unbatched = _check_targets(x, target, ignore_index, "cross_entropy")
    lp = logp.reshape(1, -1) if unbatched else logp
    valid = Tensor._make(x.xp.asarray(t != ignore_index, dtype=x.dtype), False)
    w = Tensor._make(x.xp.ones(lp.shape[1], dtype=x.dtype) if weight is None else
                     x.xp.asarray(_raw(weight), dtype=x.dtype), False)
    wshape = (1, -1) + (1,) * (lp.ndim - 2)
    smooth = -(lp * w.reshape(wshape)).sum(dim=1) * valid / lp.shape[1]
    if reduction == "none":
        smooth = smooth.reshape(()) if unbatched else smooth
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        wt = w.data[x.xp.where(t != ignore_index, t, 0)] * valid.data
        smooth = smooth.sum() / float(wt.sum())
    return loss * (1 - label_smoothing) + smooth * label_smoothing


def _soft_cross_entropy(x, target, weight, reduction, label_smoothing):
    probs = _as_tensor(target).detach()
    n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
    dim = 1 if x.ndim > 1 else 0
    logp = log_softmax(x, dim=dim)
    if weight is not None:
        w = Tensor._make(x.xp.asarray(_raw(weight), dtype=x.dtype), False)
        logp = logp * w.reshape((1, -1) + (1,) * (x.ndim - 2) if x.ndim > 1 else (-1,))
    loss = -(probs * logp).sum(dim=dim)
    return _reduce(loss, reduction)


class BCEWithLogits(Function):
    """loss = -w [p y log s(x) + (1 - y) log(1 - s(x))], s = sigmoid, p = pos_weight.

    Stable form: ``(1 - y) x + (1 + (p - 1) y) * softplus(-x)`` with
    ``softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)``.
    """

    def forward(self, x, y, weight, pos_weight):
        xp = xp_of(x)
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
        lw = 1 + (pos_weight - 1) * y if pos_weight is not None else 1
        loss = (1 - y) * x + lw * softplus_neg
        if weight is not None:
            loss = loss * weight
        self.saved = (x, y, weight, pos_weight)
        return loss.astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = xp_of(gy)
        x, y, weight, pos_weight = self.saved
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))               # sigmoid(x)
        if pos_weight is None:
            gx = s - y
        else:  # d/dx: (1 - y) - lw * (1 - s)
            lw = 1 + (pos_weight - 1) * y
            gx = (1 - y) - lw * (1 - s)
        if weight is not None:
            gx = gx * weight
        gx = unbroadcast(gy * gx, x.shape)
        gt = None
        if self.needs_input_grad[1]:  # d/dy = -x + (p - 1) softplus(-x) (times weight)
            sp = xp.log1p(e) + xp.maximum(-x, 0)
            gt = -x + ((pos_weight - 1) * sp if pos_weight is not None else 0)
            if weight is not None:
                gt = gt * weight
            gt = gy * gt
        return gx.astype(x.dtype, copy=False), gt, None, None


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable op.

    Parameters
    ----------
    input : (*) logits
    target : (*) same shape, values in [0, 1]
    weight : broadcastable to input, optional rescaling per element
    pos_weight : broadcastable to input (e.g. (C,) for the last dim), weight of positives
    """
    _check_reduction(reduction)
    x = _as_tensor(input)
    y = target if isinstance(target, Tensor) else Tensor(x.xp.asarray(target, dtype=x.dtype))
    if y.shape != x.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {y.shape} must equal "
                         f"input shape {x.shape}")
    w = None if weight is None else x.xp.asarray(_raw(weight), dtype=x.dtype)
    pw = None if pos_weight is None else x.xp.asarray(_raw(pos_weight),
                                                      dtype=x.dtype)
    loss = BCEWithLogits.apply(x, y.to(x.dtype), w, pw)
    return _reduce(loss, reduction)


def _check_same_shape(a: Tensor, b: Tensor, fn: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{fn}: input shape {a.shape} and target shape {b.shape} differ "
                         "(broadcasting in a loss is almost always a bug)")


def _target_like(input: Tensor, target) -> Tensor:
    return target if isinstance(target, Tensor) else Tensor(input.xp.asarray(target,
                                                                             dtype=input.dtype))


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """(x - y)^2, reduced."""
    x = _as_tensor(input)
    y = _target_like(x, target)
    _check_same_shape(x, y, "mse_loss")
    d = x - y
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """|x - y|, reduced."""
    x = _as_tensor(input)
    y = _target_like(x, target)
    _check_same_shape(x, y, "l1_loss")
    return _reduce((x - y).abs(), reduction)


class SmoothL1(Function):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - y); beta=0 is L1."""

    def forward(self, x, y, beta):
        xp = xp_of(x)
        d = x - y
        ad = xp.abs(d)
        self.d, self.beta = d, beta
        if beta == 0:
            return ad
        return xp.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta).astype(x.dtype)

    def backward(self, gy):
        xp = xp_of(gy)
        d, beta = self.d, self.beta
        g = xp.sign(d) if beta == 0 else xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))
        g = gy * g
        return (g if self.needs_input_grad[0] else None,
                -g if self.needs_input_grad[1] else None, None)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean",  # noqa: A002
                   beta: float = 1.0) -> Tensor:
    """Huber-like loss of Fast R-CNN's box regression (quadratic below ``beta``)."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    x = _as_tensor(input)
    y = _target_like(x, target)
    _check_same_shape(x, y, "smooth_l1_loss")
    return _reduce(SmoothL1.apply(x, y, beta), reduction)


# ---------------------------------------------------------------- gradient checks
@register_gradcheck("cross_entropy")
def _ce_case(rng):
    x2 = rng.standard_normal((5, 4))
    t2 = np.array([0, 3, 1, -100, 2])
    x4 = rng.standard_normal((2, 3, 4, 5))
    t4 = rng.integers(0, 3, (2, 4, 5))
    t4[0, 0, :2] = 255
    w = np.array([0.5, 2.0, 1.0, 1.5])
    return [((lambda x: cross_entropy(x, t2)), [x2]),
            ((lambda x: cross_entropy(x, t2, weight=w, reduction="sum")), [x2]),
            ((lambda x: cross_entropy(x, t4, ignore_index=255)), [x4]),
            ((lambda x: cross_entropy(x, t4, reduction="none", ignore_index=255,
                                       label_smoothing=0.1)), [x4]),
            ((lambda x: cross_entropy(x, t2, weight=w, label_smoothing=0.2)), [x2])]


@register_gradcheck("nll_loss")
def _nll_case(rng):
    x = rng.standard_normal((6, 3))
    t = rng.integers(0, 3, 6)
    return [((lambda x: nll_loss(x, t)), [x]),
            ((lambda x: nll_loss(x, t, weight=np.array([1.0, 2.0, 0.5]))), [x]),
            ((lambda x: nll_loss(x, t, reduction="none")), [x])]


@register_gradcheck("binary_cross_entropy_with_logits")
def _bce_case(rng):
    x, y = rng.standard_normal((4, 3)) * 3, rng.random((4, 3))
    pw = np.array([1.0, 3.0, 0.5])
    return [(binary_cross_entropy_with_logits, [x, y]),
            ((lambda a, b: binary_cross_entropy_with_logits(a, b, pos_weight=pw,
                                                            reduction="sum")), [x, y])]


@register_gradcheck("smooth_l1_loss")
def _smooth_l1_case(rng):
    x, y = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    keep_off_kinks = np.abs(np.abs(x - y) - 0.5) < 0.05
    x[keep_off_kinks] += 0.2
    return [((lambda a, b: smooth_l1_loss(a, b, beta=0.5)), [x, y]),
            ((lambda a, b: smooth_l1_loss(a, b, beta=0.0, reduction="sum")), [x, y])]


@register_gradcheck("mse_loss")
def _mse_case(rng):
    return mse_loss, [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]


@register_gradcheck("l1_loss")
def _l1_case(rng):
    return l1_loss, [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
