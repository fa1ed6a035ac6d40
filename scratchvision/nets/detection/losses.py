"""Fast R-CNN's multi-task loss (Girshick, ICCV 2015, eq. 1)::

    L(p, u, t^u, v) = L_cls(p, u) + lambda [u >= 1] L_loc(t^u, v)

over the sampled RoIs: ``p`` the softmax over K + 1 classes, ``u`` the RoI's true class (0
background), ``t^u`` the predicted box offsets *of class u* (the regressor has one per
class; only the true class's four numbers get a gradient), ``v`` the regression target
(the box coder's encoding of the matched ground truth against the RoI).
``L_cls = -log p_u`` (cross-entropy, averaged over the RoIs) and
``L_loc = sum_{i in x,y,w,h} smooth_L1(t^u_i - v_i)`` with
``smooth_L1(x) = 0.5 x² / beta if |x| < beta else |x| - 0.5 beta`` (the paper: beta = 1).
The box term is summed over the foreground RoIs and divided by the number of sampled RoIs
(torchvision's normalisation), and ``lambda = 1``: background RoIs carry no box loss
(the Iverson bracket) but count in the mean.
"""
from __future__ import annotations

import numpy as np

import scratchvision.functional as F


def fast_rcnn_loss(class_logits, box_regression, labels, regression_targets,
                   beta: float = 1.0, box_loss_weight: float = 1.0):
    """(R, K+1) logits, (R, 4(K+1)) offsets, (R,) labels, (R, 4) targets -> (L_cls, L_loc).

    ``labels`` and ``regression_targets`` are arrays (host or device) of the sampled RoIs.
    """
    labels = np.asarray(labels.get() if hasattr(labels, "get") else labels).astype(np.int64)
    r = class_logits.shape[0]
    if labels.shape != (r,):
        raise ValueError(f"labels must be ({r},) for class_logits {class_logits.shape}, got "
                         f"{labels.shape}")
    if box_regression.shape != (r, class_logits.shape[1] * 4):
        raise ValueError(f"box_regression must be ({r}, {class_logits.shape[1] * 4}), got "
                         f"{box_regression.shape}")
    cls_loss = F.cross_entropy(class_logits, labels)
    pos = np.flatnonzero(labels > 0)
    if pos.size == 0:
        return cls_loss, box_regression.sum() * 0.0
    # t^u: the 4 columns of each positive RoI's own class, gathered as (P, 4)
    cols = (4 * labels[pos])[:, None] + np.arange(4)
    pred = box_regression[pos[:, None], cols]
    tgt = regression_targets[pos]
    box_loss = F.smooth_l1_loss(pred, tgt, reduction="sum", beta=beta) * (box_loss_weight / r)
    return cls_loss, box_loss
