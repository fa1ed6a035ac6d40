"""Losses with torch.nn.functional's semantics and defaults.

``cross_entropy(x, t) = nll_loss(log_softmax(x, dim=1), t)``. With class ``weight`` w and
``reduction='mean'`` the sum of per-element losses ``-w[t_i] * logp[i, t_i]`` is divided by
``sum_i w[t_i]`` over the non-ignored elements (not by their count), exactly as PyTorch.
Inputs may be (N, C) or (N, C, d1, d2, ...) with targets (N,) or (N, d1, d2, ...): the
segmentation case (N, C, H, W) with (N, H, W) targets.

binary_cross_entropy works on probabilities, as torch: each log is clamped at -100 (so
``x = 0`` or ``1`` gives a loss of at most 100, not inf), and the gradient
``(x - y) / max(x (1 - x), 1e-12)`` is bounded the same way (1e-12 rounded to float32, as
torch's constant, also in float64). kl_div takes log-probabilities
as ``input`` (and probabilities, or log-probabilities with ``log_target=True``, as
``target``): pointwise ``y (log y - x)`` with ``0 log 0 = 0``; 'batchmean' divides the sum
by the batch size (the true KL divergence per sample), 'mean' by the number of elements.
cosine_similarity follows torch 2.x: each vector is divided by its own norm clamped at
``eps`` before the dot product, ``sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps))``.

The deprecated ``size_average`` / ``reduce`` arguments of torch's losses are not accepted;
every other argument has torch's name, position after them, and default.
"""
from __future__ import annotations

import warnings

import numpy as np

from scratchvision.autograd.function import Function, unbroadcast, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor, _raw
from scratchvision.functional.activation import _as_tensor, _floating, log_softmax

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
        w = x.xp.asarray(_raw(weight), dtype=x.dtype)   # a float64 weight keeps float32 out
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


class BinaryCrossEntropy(Function):
    """loss = -w [y max(log x, -100) + (1 - y) max(log(1 - x), -100)], as torch."""

    def forward(self, x, y, weight):
        xp = xp_of(x)
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        loss = (y - 1) * log_1mx - y * log_x
        if weight is not None:
            loss = loss * weight
        self.saved = (x, y, weight)
        return loss.astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = xp_of(gy)
        x, y, weight = self.saved
        g = gy if weight is None else gy * weight
        # torch's EPSILON is the float 1e-12 (9.99999996e-13 in float64)
        gx = g * (x - y) / xp.maximum((1 - x) * x, x.dtype.type(np.float32(1e-12)))
        gt = None
        if self.needs_input_grad[1]:  # d/dy = log(1 - x) - log(x), unclamped as torch
            with np.errstate(divide="ignore"):
                gt = g * (xp.log1p(-x) - xp.log(x))
            gt = gt.astype(x.dtype, copy=False)
        return gx.astype(x.dtype, copy=False), gt, None


def _in_unit_interval(a) -> bool:
    return bool(((a >= 0) & (a <= 1)).all())   # False for NaN, as torch


def binary_cross_entropy(input: Tensor, target, weight=None,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """Binary cross-entropy between probabilities ``input`` and ``target``, as torch.

    ``loss = -weight * (y log(x) + (1 - y) log(1 - x))`` elementwise, each log clamped
    at -100; then reduced ('mean' over all elements, also with a weight).

    Parameters
    ----------
    input : (*) probabilities in [0, 1] (e.g. the output of a sigmoid)
    target : (*) same shape, values in [0, 1]
    weight : optional, broadcastable to the target's shape, a rescaling per element
    reduction : 'mean', 'sum' or 'none'
    """
    _check_reduction(reduction)
    x = _floating(_as_tensor(input), "binary_cross_entropy")
    y = _target_like(x, target)
    if y.shape != x.shape:
        raise ValueError(f"binary_cross_entropy: using a target size ({y.shape}) that is "
                         f"different to the input size ({x.shape}) is deprecated. Please "
                         "ensure they have the same size.")
    if not _in_unit_interval(x.data):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 "
                         "and 1 (probabilities; for logits use "
                         "binary_cross_entropy_with_logits)")
    if not _in_unit_interval(y.data):
        raise ValueError("binary_cross_entropy: all elements of target should be between 0 "
                         "and 1")
    w = None
    if weight is not None:
        w = x.xp.asarray(_raw(weight), dtype=x.dtype)
        try:
            full = np.broadcast_shapes(y.shape, w.shape)
        except ValueError:
            full = None
        if full != y.shape:
            raise ValueError(f"binary_cross_entropy: weight of shape {w.shape} does not "
                             f"broadcast to the target's shape {y.shape}")
    return _reduce(BinaryCrossEntropy.apply(x, y.to(x.dtype), w), reduction)


class Huber(Function):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (d = x - y), as torch."""

    def forward(self, x, y, delta):
        xp = xp_of(x)
        d = x - y
        ad = xp.abs(d)
        self.d, self.delta = d, delta
        return xp.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta)).astype(x.dtype)

    def backward(self, gy):
        xp = xp_of(gy)
        g = gy * xp.clip(self.d, -self.delta, self.delta)     # d inside, +-delta outside
        return (g if self.needs_input_grad[0] else None,
                -g if self.needs_input_grad[1] else None, None)


def huber_loss(input: Tensor, target, reduction: str = "mean",  # noqa: A002
               delta: float = 1.0, weight=None) -> Tensor:
    """Huber loss: quadratic ``0.5 d^2`` for ``|d| < delta``, linear
    ``delta (|d| - 0.5 delta)`` beyond (``d = input - target``); ``delta`` times
    ``smooth_l1_loss(beta=delta)``.

    Parameters
    ----------
    input, target : (*) same shape
    reduction : 'mean', 'sum' or 'none'
    delta : > 0, where the loss turns from quadratic to linear
    weight : optional, the input's shape: each element's loss is multiplied by it before
        the reduction ('mean' still divides by the number of elements), as torch
    """
    _check_reduction(reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got "
                         f"{delta}")
    x = _as_tensor(input)
    y = _target_like(x, target)
    _check_same_shape(x, y, "huber_loss")
    loss = Huber.apply(x, y, delta)
    if weight is not None:
        w = _target_like(x, weight)
        if w.shape != x.shape:
            raise ValueError(f"huber_loss: weights and input must have the same size, got "
                             f"weight {w.shape} and input {x.shape}")
        loss = loss * w
    return _reduce(loss, reduction)


class KLDiv(Function):
    """Pointwise KL term: ``xlogy(y, y) - y x``, or ``exp(y) (y - x)`` with log targets."""

    def forward(self, x, y, log_target):
        xp = xp_of(x, y)
        self.x, self.y, self.log_target = x, y, log_target
        if log_target:
            out = xp.exp(y) * (y - x)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = xp.where(y == 0, 0, y * xp.log(y)) - y * x     # 0 log 0 = 0
        return out.astype(xp.result_type(x, y), copy=False)

    def backward(self, gy):
        xp = xp_of(gy)
        x, y = self.x, self.y
        e = xp.exp(y) if self.log_target else None
        gx = gy * (-e if self.log_target else -y)
        gt = None
        if self.needs_input_grad[1]:
            if self.log_target:
                gt = gy * (e * (y - x) + e)
            else:  # torch's xlogy backward: log(y) + y / y - x, NaN where y == 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    gt = gy * (xp.where(y == 0, 0, xp.log(y)) + y / y - x)
            gt = unbroadcast(gt, y.shape).astype(y.dtype, copy=False)
        return unbroadcast(gx, x.shape).astype(x.dtype, copy=False), gt, None


KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def kl_div(input: Tensor, target, reduction: str = "mean",  # noqa: A002
           log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence ``KL(target || exp(input))``, torch's semantics.

    Pointwise ``target * (log(target) - input)`` (``0`` where ``target == 0``); with
    ``log_target=True`` the target is given as log-probabilities:
    ``exp(target) * (target - input)``. Input and target broadcast, as torch.

    Parameters
    ----------
    input : (N, *) log-probabilities (e.g. ``log_softmax``)
    target : broadcastable to input, probabilities (log-probabilities if ``log_target``)
    reduction : 'batchmean' (sum / N: the KL divergence per sample), 'sum', 'none', or
        'mean' (sum / number of elements; torch warns that it is not the KL divergence
        and so does this)
    log_target : whether ``target`` is in log space
    """
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction (one of "
                         f"{KL_REDUCTIONS})")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size.'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    x = _floating(_as_tensor(input), "kl_div")
    y = _target_like(x, target)
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"kl_div: input of shape {x.shape} and target of shape {y.shape} "
                         "do not broadcast") from None
    loss = KLDiv.apply(x, y, log_target)
    if reduction == "batchmean":
        total = loss.sum()
        return total / x.shape[0] if x.ndim else total
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- distances
class CosineSimilarity(Function):
    """sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) over ``dim``, torch 2.x's formula.

    The backward is torch's too: the clamped norms are divided by as constants where the
    clamp bites, and the norm's own gradient ``x / |x|`` (0 at a zero vector) is used.
    """

    def forward(self, x1, x2, dim, eps):
        xp = xp_of(x1, x2)
        self.shapes = (x1.shape, x2.shape)
        x1, x2 = xp.broadcast_arrays(x1, x2)
        n1 = xp.sqrt((x1 * x1).sum(axis=dim, keepdims=True))      # |x1| (.., 1, ..)
        n2 = xp.sqrt((x2 * x2).sum(axis=dim, keepdims=True))
        c1, c2 = xp.maximum(n1, eps), xp.maximum(n2, eps)        # torch's clamp_min_(eps)
        u, v = x1 / c1, x2 / c2
        self.saved = (x1, x2, n1, n2, c1, c2, u, v)
        self.dim = dim
        return (u * v).sum(axis=dim)

    def backward(self, gy):
        xp = xp_of(gy)
        x1, x2, n1, n2, c1, c2, u, v = self.saved
        g = xp.expand_dims(gy, self.dim)

        def through(gu, x, n, c):
            gn = -(gu * x).sum(axis=self.dim, keepdims=True) / (c * c)   # d/d(clamped norm)
            safe = xp.where(n == 0, 1, n)
            return gu / c + x * xp.where(n == 0, 0, gn / safe)         # + norm's backward

        out = []
        for k, (gu, x, n, c) in enumerate(((g * v, x1, n1, c1), (g * u, x2, n2, c2))):
            out.append(unbroadcast(through(gu, x, n, c), self.shapes[k])
                       if self.needs_input_grad[k] else None)
        return out[0], out[1], None, None


def _promote_pair(x1, x2, fn: str):
    a, b = _as_tensor(x1), _as_tensor(x2)
    dtype = np.result_type(a.dtype, b.dtype)
    if dtype.kind != "f":
        raise TypeError(f"{fn}: expected floating-point inputs, got dtypes {a.dtype} and "
                        f"{b.dtype}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{fn}: x1 of shape {a.shape} and x2 of shape {b.shape} do not "
                         "broadcast") from None
    return a.to(dtype), b.to(dtype), shape


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``, as torch 2.x:
    ``sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps), dim)``.

    Parameters
    ----------
    x1, x2 : Tensors that broadcast to a common shape (floating point)
    dim : the dimension of the vectors, in the broadcast shape
    eps : lower bound of each norm (a zero vector gives similarity 0)

    Returns
    -------
    Tensor of the broadcast shape without ``dim``.
    """
    a, b, shape = _promote_pair(x1, x2, "cosine_similarity")
    nd = len(shape)
    if not -max(nd, 1) <= dim < max(nd, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-max(nd, 1)}, {max(nd, 1) - 1}], but got {dim})")
    return CosineSimilarity.apply(a, b, dim % max(nd, 1), eps)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last dimension of the broadcast shape, as torch.

    Parameters
    ----------
    x1, x2 : (N, D) or (D,) Tensors that broadcast (floating point)
    p : the norm degree
    eps : added to the difference, so that equal vectors have a gradient
    keepdim : keep the reduced dimension (of size 1)
    """
    a, b, _ = _promote_pair(x1, x2, "pairwise_distance")
    return (a - b + eps).norm(p, dim=-1, keepdim=keepdim)


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


@register_gradcheck("binary_cross_entropy")
def _bce_probs_case(rng):
    x = rng.uniform(0.05, 0.95, (4, 3))
    y = rng.random((4, 3))
    w = np.array([0.5, 2.0, 1.0])
    return [(binary_cross_entropy, [x, y]),
            ((lambda a, b: binary_cross_entropy(a, b, weight=w, reduction="sum")), [x, y]),
            ((lambda a: binary_cross_entropy(a, y, reduction="none")), [x])]


@register_gradcheck("huber_loss")
def _huber_case(rng):
    x, y = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    x[np.abs(np.abs(x - y) - 0.5) < 0.05] += 0.2     # keep off the kinks at |d| = delta
    w = rng.random((4, 3))
    return [((lambda a, b: huber_loss(a, b, delta=0.5)), [x, y]),
            ((lambda a, b: huber_loss(a, b, "sum", 0.5, weight=w)), [x, y])]


@register_gradcheck("kl_div")
def _kl_div_case(rng):
    x = np.log(rng.dirichlet(np.ones(4), 3))
    t = rng.dirichlet(np.ones(4), 3)
    return [((lambda a, b: kl_div(a, b, reduction="batchmean")), [x, t]),
            ((lambda a, b: kl_div(a, b, reduction="sum", log_target=True)), [x, np.log(t)]),
            ((lambda a: kl_div(a, t[0], reduction="none")), [x])]


@register_gradcheck("cosine_similarity")
def _cosine_case(rng):
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    # away from the clamp: where a norm is below eps torch's gradient (kept here) treats
    # the clamped norm as the norm, so it is not the derivative of the forward
    return [((lambda u, v: cosine_similarity(u, v)), [a, b]),
            ((lambda u, v: cosine_similarity(u, v, dim=0)), [a, b[:1]]),
            ((lambda u, v: cosine_similarity(u, v, dim=-1, eps=1e-3)), [a * 0.1, b[0]])]


@register_gradcheck("pairwise_distance")
def _pairwise_case(rng):
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    return [(pairwise_distance, [a, b]),
            ((lambda u, v: pairwise_distance(u, v, p=3.0, keepdim=True)), [a, b[0]])]
