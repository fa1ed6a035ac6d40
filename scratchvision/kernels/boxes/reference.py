"""Box kernels, textbook version: one Python loop per output element.

``box_iou(a, b)[i, j]`` is the IoU of box ``a[i]`` with box ``b[j]``; the flat output index
splits as ``k -> (i, j) = (k // M, k % M)``, the order the Numba version parallelises over
rows ``i``. All arithmetic is float64 (see ``scalar.py``); results are cast to the boxes'
dtype.
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.boxes.scalar import box_area_scalar, box_giou_scalar, box_iou_scalar


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) -> (N,) areas."""
    out = np.empty(boxes.shape[0], boxes.dtype)
    for i in range(boxes.shape[0]):
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        out[i] = box_area_scalar(x1, y1, x2, y2)
    return out


def _pairwise(fn, boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    n, m = boxes1.shape[0], boxes2.shape[0]
    out = np.empty((n, m), boxes1.dtype)                   # (N, M)
    for i in range(n):
        a = [float(v) for v in boxes1[i]]
        for j in range(m):
            b = [float(v) for v in boxes2[j]]
            out[i, j] = fn(*a, *b)
    return out


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) IoU."""
    return _pairwise(box_iou_scalar, boxes1, boxes2)


def generalized_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) generalised IoU in [-1, 1]."""
    return _pairwise(box_giou_scalar, boxes1, boxes2)
