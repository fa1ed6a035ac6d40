"""Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017),
exactly as ``torchvision.ops.sigmoid_focal_loss`` (itself fvcore's)::

    p   = sigmoid(x)
    ce  = BCE_with_logits(x, t)            = -t log p - (1 - t) log(1 - p), computed stably
    p_t = p t + (1 - p)(1 - t)             the probability given to the true label
    FL  = alpha_t (1 - p_t)^gamma ce,      alpha_t = alpha t + (1 - alpha)(1 - t)

``(1 - p_t)^gamma`` shrinks the loss of well-classified examples (p_t near 1), so the
many easy negatives of a dense detector do not swamp the few positives; ``alpha`` balances
positives against negatives (``alpha < 0``: no weighting). It is built from differentiable
ops (sigmoid, the stable ``binary_cross_entropy_with_logits``, products and a power), so
the gradient reaches both inputs and (soft) targets.
"""
from __future__ import annotations

from scratchvision import functional as F
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor, _lift


def sigmoid_focal_loss(inputs: Tensor, targets, alpha: float = 0.25, gamma: float = 2,
                       reduction: str = "none") -> Tensor:
    """The focal loss of logits ``inputs`` against binary ``targets``.

    Parameters
    ----------
    inputs : (*) float Tensor of logits (any shape)
    targets : (*) the same shape, 1 for the positive class and 0 for the negative (soft
        labels in [0, 1] work too); a Tensor or an array
    alpha : weight of the positives in [0, 1] (negatives get 1 - alpha); -1 (any negative
        value) for no weighting
    gamma : exponent of the modulating factor ``(1 - p_t)``; 0 gives alpha-weighted BCE
    reduction : 'none' (the per-element loss), 'mean' or 'sum'

    Returns
    -------
    Tensor: the loss with ``reduction`` applied ((*) for 'none', a scalar otherwise).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"Invalid Value for arg 'reduction': '{reduction} \n Supported "
                         f"reduction modes: 'none', 'mean', 'sum'")
    x = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
    t = _lift(targets, x)
    if t.shape != x.shape:
        raise ValueError(f"sigmoid_focal_loss: targets shape {t.shape} must equal inputs "
                         f"shape {x.shape}")
    if t.dtype != x.dtype:
        t = t.to(x.dtype)
    p = F.sigmoid(x)
    ce_loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        loss = alpha_t * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


@register_gradcheck("sigmoid_focal_loss")
def _focal_case(rng):
    x = rng.standard_normal((4, 3)) * 3
    hard = (rng.random((4, 3)) > 0.6).astype(float)
    soft = rng.random((4, 3))
    return [((lambda x: sigmoid_focal_loss(x, hard)), [x]),
            ((lambda x: sigmoid_focal_loss(x, hard, alpha=-1, gamma=1.5, reduction="mean")),
             [x]),
            ((lambda x, t: sigmoid_focal_loss(x, t, 0.7, 2, "sum")), [x, soft])]
