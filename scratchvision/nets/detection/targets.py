"""Checking detection targets before any kernel sees them.

A target is one image's dict ``{"boxes": (K, 4) float x1y1x2y2 in pixels, "labels": (K,)
int in 1..C}`` (``masks`` and other keys are passed through). The rules, as torchvision's
detection models apply them, so bad data fails here with the image index and the box,
never as a crash inside a compiled kernel or a silently wrong loss:

- ``boxes`` must be (K, 4) and finite, ``labels`` (K,) integers in ``1..num_classes - 1``
  (0 is background and never a ground truth);
- boxes are clipped to the image (a box that sticks out of the image is cut at its
  border, as augmentation pipelines do);
- a box with zero or negative width or height after clipping is refused (torchvision:
  "All bounding boxes should have positive height and width");
- K = 0 (an image without objects) is allowed: every proposal is background.

``check_proposals`` does the same for the per-image proposal lists of R-CNN and Fast
R-CNN: one (P_i, 4) finite array per image.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd import Tensor


def check_targets(targets, image_sizes, num_classes: int) -> list[dict]:
    """Validated copies of ``targets``: float32 boxes clipped to the image, int64 labels."""
    if targets is None:
        raise ValueError("targets are required for the loss (one dict per image)")
    if len(targets) != len(image_sizes):
        raise ValueError(f"got {len(targets)} targets for {len(image_sizes)} images")
    out = []
    for i, (t, (h, w)) in enumerate(zip(targets, image_sizes)):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        boxes = np.asarray(t["boxes"].get() if hasattr(t["boxes"], "get") else t["boxes"])
        labels = np.asarray(t["labels"].get() if hasattr(t["labels"], "get") else t["labels"])
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"targets[{i}]['boxes'] must be (K, 4), got {boxes.shape}")
        if labels.shape != (len(boxes),):
            raise ValueError(f"targets[{i}]['labels'] must be ({len(boxes)},) to match the "
                             f"boxes, got {labels.shape}")
        if labels.size and labels.dtype.kind not in "iu":
            raise ValueError(f"targets[{i}]['labels'] must be integers, got {labels.dtype}")
        if not np.isfinite(boxes).all():
            bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
            raise ValueError(f"targets[{i}]['boxes'][{bad}] is not finite: {boxes[bad]}")
        if labels.size and (labels.min() < 1 or labels.max() >= num_classes):
            bad = int(np.flatnonzero((labels < 1) | (labels >= num_classes))[0])
            raise ValueError(f"targets[{i}]['labels'][{bad}] = {labels[bad]} is out of range "
                             f"1..{num_classes - 1} (0 is background)")
        clipped = boxes.astype(np.float32).copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
        empty = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
        if empty.any():
            bad = int(np.flatnonzero(empty)[0])
            raise ValueError(f"targets[{i}]['boxes'][{bad}] = {boxes[bad].tolist()} has no "
                             f"area inside the {h}x{w} image: boxes need positive width "
                             "and height")
        t = dict(t)
        t["boxes"], t["labels"] = clipped, labels.astype(np.int64)
        out.append(t)
    return out


def check_proposals(proposals, n: int) -> list:
    """Per-image proposals as float32 (P_i, 4) host arrays, checked (one list per image)."""
    if len(proposals) != n:
        raise ValueError(f"got proposals for {len(proposals)} images, the batch has {n}")
    out = []
    for i, p in enumerate(proposals):
        p = p.numpy() if isinstance(p, Tensor) else np.asarray(p.get() if hasattr(p, "get") else p)
        p = p.reshape(-1, 4) if p.size == 0 else p
        if p.ndim != 2 or p.shape[1] != 4:
            raise ValueError(f"proposals[{i}] must be (P, 4) x1y1x2y2, got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError(f"proposals[{i}] has non-finite coordinates")
        out.append(p.astype(np.float32))
    return out
