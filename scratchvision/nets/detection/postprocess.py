"""From per-class scores and boxes to an image's detections (every detector's last stage).

For one image, with ``K`` candidate boxes (windows, proposals, grid cells, default boxes)
and ``C`` foreground classes (labels ``1..C``; background is never reported)::

    scores (K, C)   boxes (K, C, 4) one box per class (or (K, 4) shared by all classes)

1. clip every box to the image ``[0, w] x [0, h]``;
2. flatten to ``K * C`` (box, score, label) triples, label = class column + 1;
3. drop triples with score <= ``score_thresh`` and boxes narrower or lower than
   ``min_size`` pixels;
4. non-maximum suppression *per class* (``batched_nms``: a box only suppresses boxes of
   its own label) at IoU > ``nms_thresh``;
5. keep the ``detections_per_img`` best by score.

As torchvision's ``RoIHeads.postprocess_detections`` (R-CNN uses NMS 0.3, Fast R-CNN's
code 0.3, torchvision 0.5). The result is a dict of Tensors, ``boxes`` (D, 4) float32,
``scores`` (D,) float32, ``labels`` (D,) int64, sorted by decreasing score.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd import Tensor
from scratchvision.ops import batched_nms
from scratchvision.validation import to_numpy


def empty_detections() -> dict:
    """An image's detections when there are none."""
    return {"boxes": Tensor(np.zeros((0, 4), np.float32)),
            "scores": Tensor(np.zeros((0,), np.float32)),
            "labels": Tensor(np.zeros((0,), np.int64))}


def select_detections(boxes, scores, image_size, score_thresh: float = 0.05,
                      nms_thresh: float = 0.5, detections_per_img: int = 100,
                      min_size: float = 1e-2) -> dict:
    """One image's detections from (K, C) scores and (K, C, 4) or (K, 4) boxes.

    See the module docstring for the steps. ``image_size`` is (height, width).
    """
    s = to_numpy(scores).astype(np.float32)
    b = to_numpy(boxes).astype(np.float32)
    if s.ndim != 2:
        raise ValueError(f"scores must be (K, C), got {s.shape}")
    k, c = s.shape
    if b.shape == (k, 4):
        b = np.broadcast_to(b[:, None, :], (k, c, 4))
    if b.shape != (k, c, 4):
        raise ValueError(f"boxes must be (K, C, 4) or (K, 4) for scores {s.shape}, got "
                         f"{b.shape}")
    if not 0.0 <= nms_thresh <= 1.0:
        raise ValueError(f"nms_thresh must be in [0, 1], got {nms_thresh}")
    if detections_per_img < 0:
        raise ValueError(f"detections_per_img must be >= 0, got {detections_per_img}")
    h, w = image_size
    b = b.copy()
    b[..., 0::2] = b[..., 0::2].clip(0, w)
    b[..., 1::2] = b[..., 1::2].clip(0, h)
    labels = np.broadcast_to(np.arange(1, c + 1, dtype=np.int64), (k, c))
    b, s, labels = b.reshape(-1, 4), s.reshape(-1), labels.reshape(-1)
    keep = (s > score_thresh) & np.isfinite(s) & np.isfinite(b).all(axis=1) \
        & (b[:, 2] - b[:, 0] >= min_size) & (b[:, 3] - b[:, 1] >= min_size)
    b, s, labels = b[keep], s[keep], labels[keep]
    if len(s) == 0:
        return empty_detections()
    keep = np.asarray(batched_nms(b, s, labels, nms_thresh))[:detections_per_img]
    return {"boxes": Tensor(np.ascontiguousarray(b[keep])),
            "scores": Tensor(np.ascontiguousarray(s[keep])),
            "labels": Tensor(np.ascontiguousarray(labels[keep]))}
