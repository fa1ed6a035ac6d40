"""Non-maximum suppression, textbook version.

Greedy NMS (the R-CNN/Fast R-CNN post-processing):

1. order the boxes by decreasing score; equal scores by increasing index, so there is
   one total order ``(-score, index)`` and the result never depends on a sort's whims;
2. walk that order: a box not yet suppressed is kept, and every later box whose IoU with
   it is **greater than** ``iou_threshold`` is suppressed (IoU exactly at the threshold
   survives, as in torchvision).

The kept indices come out in the walking order, i.e. by decreasing score.

Soft-NMS (Bodla et al., ICCV 2017) does not delete overlapping boxes but decays their
scores and re-picks the best remaining box each step:

* linear:   s_j <- s_j * (1 - IoU(M, b_j))   if IoU(M, b_j) > N_t, else unchanged;
* gaussian: s_j <- s_j * exp(-IoU(M, b_j)^2 / sigma)   for every remaining box;

a box whose score falls below ``score_threshold`` is dropped (here also at the start, so
a box scored below the threshold is never returned). The pick of each step is the highest
current score, ties to the lower index. Returns kept indices in picking order and their
decayed scores (non-increasing).

All coordinates and scores are float64 here (the dispatcher converts), the IoU helper is
shared with the fast versions (``kernels/boxes/scalar.py``): identical decisions everywhere.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision.kernels.boxes.scalar import box_iou_scalar

LINEAR, GAUSSIAN = 1, 2


def score_order(scores: np.ndarray) -> list[int]:
    """Indices sorted by (-score, index): the one total order every version uses."""
    return sorted(range(scores.shape[0]), key=lambda i: (-scores[i], i))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(N, 4) float64 boxes, (N,) float64 scores -> int64 kept indices, best first."""
    order = score_order(scores)
    suppressed = [False] * len(order)
    keep = []
    for r, i in enumerate(order):           # r: rank of box i in score order
        if suppressed[r]:
            continue
        keep.append(i)
        for s in range(r + 1, len(order)):  # only lower-ranked boxes can be suppressed
            j = order[s]
            if not suppressed[s] and box_iou_scalar(*boxes[i], *boxes[j]) > iou_threshold:
                suppressed[s] = True        # '>' : IoU == threshold is kept
    return np.array(keep, dtype=np.int64)


def soft_nms(boxes: np.ndarray, scores: np.ndarray, sigma: float, iou_threshold: float,
             score_threshold: float, method: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (method LINEAR or GAUSSIAN) -> (kept indices int64, decayed scores float64)."""
    n = scores.shape[0]
    s = [float(v) for v in scores]
    alive = [v >= score_threshold for v in s]
    keep, kept_scores = [], []
    for _ in range(n):
        best = -1
        for i in range(n):                  # highest current score, ties to lower index
            if alive[i] and (best < 0 or s[i] > s[best]):
                best = i
        if best < 0:
            break
        alive[best] = False
        keep.append(best)
        kept_scores.append(s[best])
        for j in range(n):                  # decay every remaining box by its overlap
            if not alive[j]:
                continue
            iou = box_iou_scalar(*boxes[best], *boxes[j])
            if method == LINEAR:
                weight = 1.0 - iou if iou > iou_threshold else 1.0
            else:
                weight = math.exp(-(iou * iou) / sigma)
            s[j] *= weight
            if s[j] < score_threshold:
                alive[j] = False
    return np.array(keep, dtype=np.int64), np.array(kept_scores, dtype=np.float64)
