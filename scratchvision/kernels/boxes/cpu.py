"""Box kernels, Numba CPU version.

Same arithmetic as ``reference.py`` (the scalar helpers of ``scalar.py`` compiled with
``numba.njit``); the rows ``i`` of the (N, M) output are independent, so ``prange`` splits
them over threads. Each thread reads box ``i`` once and streams over ``boxes2``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from scratchvision.kernels.boxes import scalar

_area = njit(cache=True)(scalar.box_area_scalar)
_iou = njit(cache=True)(scalar.box_iou_scalar)
_giou = njit(cache=True)(scalar.box_giou_scalar)


@njit(parallel=True, cache=True)
def box_area(boxes):
    """(N, 4) -> (N,) areas."""
    out = np.empty(boxes.shape[0], boxes.dtype)
    for i in prange(boxes.shape[0]):
        out[i] = _area(float(boxes[i, 0]), float(boxes[i, 1]),
                       float(boxes[i, 2]), float(boxes[i, 3]))
    return out


@njit(parallel=True, cache=True)
def _pairwise(boxes1, boxes2, generalized):
    """(N, 4), (M, 4) -> (N, M) IoU or generalised IoU; one thread per row i."""
    n, m = boxes1.shape[0], boxes2.shape[0]
    out = np.empty((n, m), boxes1.dtype)
    for i in prange(n):
        ax1, ay1 = float(boxes1[i, 0]), float(boxes1[i, 1])
        ax2, ay2 = float(boxes1[i, 2]), float(boxes1[i, 3])
        for j in range(m):
            bx1, by1 = float(boxes2[j, 0]), float(boxes2[j, 1])
            bx2, by2 = float(boxes2[j, 2]), float(boxes2[j, 3])
            if generalized:
                out[i, j] = _giou(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2)
            else:
                out[i, j] = _iou(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2)
    return out


def box_iou(boxes1, boxes2):
    """(N, 4), (M, 4) -> (N, M) IoU."""
    return _pairwise(boxes1, boxes2, False)


def generalized_box_iou(boxes1, boxes2):
    """(N, 4), (M, 4) -> (N, M) generalised IoU."""
    return _pairwise(boxes1, boxes2, True)
