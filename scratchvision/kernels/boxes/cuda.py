"""Box kernels on the GPU (numba.cuda): one thread per output element.

The scalar helpers of ``scalar.py`` are compiled as device functions, so the IoU of every
pair is computed with the same float64 arithmetic as ``reference.py`` and ``cpu.py``.
Output index ``k -> (i, j) = (k // M, k % M)``. Runs on CuPy arrays, or on NumPy arrays
under Numba's CUDA simulator.
"""
from __future__ import annotations

from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.boxes import scalar
from scratchvision.kernels.cuda_support import launch

_area = cuda.jit(device=True)(scalar.box_area_scalar)
_iou = cuda.jit(device=True)(scalar.box_iou_scalar)
_giou = cuda.jit(device=True)(scalar.box_giou_scalar)


@cuda.jit
def _area_kernel(boxes, out):
    i = cuda.grid(1)
    if i < boxes.shape[0]:                   # guard: the last block runs past the end
        out[i] = _area(float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2]),
                       float(boxes[i, 3]))


@cuda.jit
def _pair_kernel(boxes1, boxes2, generalized, out):
    k = cuda.grid(1)
    m = boxes2.shape[0]
    if k >= boxes1.shape[0] * m:
        return
    i = k // m                               # k -> (i, j)
    j = k % m
    ax1, ay1 = float(boxes1[i, 0]), float(boxes1[i, 1])
    ax2, ay2 = float(boxes1[i, 2]), float(boxes1[i, 3])
    bx1, by1 = float(boxes2[j, 0]), float(boxes2[j, 1])
    bx2, by2 = float(boxes2[j, 2]), float(boxes2[j, 3])
    if generalized:
        out[i, j] = _giou(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2)
    else:
        out[i, j] = _iou(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2)


def box_area(boxes):
    """(N, 4) -> (N,) areas."""
    out = get_array_module(boxes).empty(boxes.shape[0], boxes.dtype)
    launch(_area_kernel, boxes.shape[0], boxes, out)
    return out


def _pair(boxes1, boxes2, generalized):
    out = get_array_module(boxes1).empty((boxes1.shape[0], boxes2.shape[0]), boxes1.dtype)
    launch(_pair_kernel, out.size, boxes1, boxes2, generalized, out)
    return out


def box_iou(boxes1, boxes2):
    """(N, 4), (M, 4) -> (N, M) IoU."""
    return _pair(boxes1, boxes2, False)


def generalized_box_iou(boxes1, boxes2):
    """(N, 4), (M, 4) -> (N, M) generalised IoU."""
    return _pair(boxes1, boxes2, True)
