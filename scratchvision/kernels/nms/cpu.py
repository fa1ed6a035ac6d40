"""Non-maximum suppression, Numba CPU version (same results as ``reference.py``).

Greedy NMS is sequential along the score order (whether box r survives depends on all
boxes ranked above it), so the speed comes from doing less work, not from threads:

* sort once by ``(-score, index)`` (NumPy's stable argsort of ``-scores``);
* **spatial pruning**: boxes are also sorted by x1. A box j can overlap box r only if
  ``x1_j < x2_r`` and ``x2_j > x1_r``; with ``wmax`` the widest box, the second condition
  implies ``x1_j > x1_r - wmax``. So when r is kept, only the x-sorted slice
  ``x1_j in (x1_r - wmax, x2_r)`` (two binary searches) is scanned, instead of every box
  ranked below r. This is exact for ``iou_threshold >= 0``: outside the slice IoU is 0,
  which never exceeds the threshold. (For a negative threshold the whole range is scanned.)
* the scan reads the boxes in x-sorted, contiguous arrays, with the score rank beside
  them; a candidate is tested only when it is ranked below r and not yet suppressed.

The IoU is the shared float64 helper of ``kernels/boxes/scalar.py``: every decision is
bit-identical to the reference.

Soft-NMS re-picks the best box after every decay, O(N^2) like the reference; compiled,
with a flat ``alive`` mask.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from scratchvision.kernels.boxes import scalar

_iou = njit(cache=True)(scalar.box_iou_scalar)

LINEAR, GAUSSIAN = 1, 2


@njit(cache=True)
def _lower_bound(a, value):
    """First index t with a[t] >= value (a sorted ascending)."""
    lo, hi = 0, a.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _nms_sorted(boxes, order, iou_threshold):
    """Greedy NMS given the score order; boxes (N, 4) float64."""
    n = order.shape[0]
    rank = np.empty(n, np.int64)            # rank[i]: position of box i in score order
    for r in range(n):
        rank[order[r]] = r
    xorder = np.argsort(boxes[:, 0], kind="mergesort")   # boxes by x1
    bx = np.empty((n, 4), np.float64)       # (N, 4) boxes in x1 order
    xrank = np.empty(n, np.int64)           # score rank of the box at x position t
    pos = np.empty(n, np.int64)             # pos[r]: x position of the box of rank r
    wmax = 0.0
    for t in range(n):
        i = xorder[t]
        for k in range(4):
            bx[t, k] = boxes[i, k]
        xrank[t] = rank[i]
        pos[rank[i]] = t
        wmax = max(wmax, boxes[i, 2] - boxes[i, 0])
    x1s = bx[:, 0].copy()
    prune = iou_threshold >= 0.0
    suppressed = np.zeros(n, np.bool_)      # indexed by x position
    keep = np.empty(n, np.int64)
    nk = 0
    for r in range(n):
        t = pos[r]
        if suppressed[t]:
            continue
        keep[nk] = order[r]
        nk += 1
        ax1, ay1, ax2, ay2 = bx[t, 0], bx[t, 1], bx[t, 2], bx[t, 3]
        lo, hi = 0, n
        if prune:
            # overlap needs x1_j > x1_r - wmax and x1_j < x2_r; the slack keeps the slice
            # a superset despite the rounding of x1_r - wmax.
            slack = 1e-9 * (abs(ax1) + wmax) + 1e-300
            lo = _lower_bound(x1s, ax1 - wmax - slack)
            hi = _lower_bound(x1s, ax2)
        for u in range(lo, hi):
            if xrank[u] > r and not suppressed[u]:
                if _iou(ax1, ay1, ax2, ay2, bx[u, 0], bx[u, 1], bx[u, 2], bx[u, 3]) \
                        > iou_threshold:    # '>' : IoU == threshold is kept
                    suppressed[u] = True
    return keep[:nk].copy()


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(N, 4) float64 boxes, (N,) float64 scores -> int64 kept indices, best first."""
    order = np.argsort(-scores, kind="stable")    # (-score, index): ties to lower index
    return _nms_sorted(boxes, order.astype(np.int64), float(iou_threshold))


@njit(cache=True)
def _soft_nms(boxes, scores, sigma, iou_threshold, score_threshold, method):
    n = scores.shape[0]
    s = scores.copy()
    alive = np.empty(n, np.bool_)
    for i in range(n):
        alive[i] = s[i] >= score_threshold
    keep = np.empty(n, np.int64)
    kept_scores = np.empty(n, np.float64)
    nk = 0
    for _ in range(n):
        best = -1
        for i in range(n):                  # highest current score, ties to lower index
            if alive[i] and (best < 0 or s[i] > s[best]):
                best = i
        if best < 0:
            break
        alive[best] = False
        keep[nk] = best
        kept_scores[nk] = s[best]
        nk += 1
        bx1, by1, bx2, by2 = boxes[best, 0], boxes[best, 1], boxes[best, 2], boxes[best, 3]
        for j in range(n):
            if not alive[j]:
                continue
            iou = _iou(bx1, by1, bx2, by2, boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3])
            if method == LINEAR:
                weight = 1.0 - iou if iou > iou_threshold else 1.0
            else:
                weight = math.exp(-(iou * iou) / sigma)
            s[j] *= weight
            if s[j] < score_threshold:
                alive[j] = False
    return keep[:nk].copy(), kept_scores[:nk].copy()


def soft_nms(boxes: np.ndarray, scores: np.ndarray, sigma: float, iou_threshold: float,
             score_threshold: float, method: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (method LINEAR or GAUSSIAN) -> (kept indices int64, decayed scores float64)."""
    return _soft_nms(boxes, scores, float(sigma), float(iou_threshold),
                     float(score_threshold), int(method))
