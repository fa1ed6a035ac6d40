"""Box kernels: ``box_area``, ``box_iou``, ``generalized_box_iou`` on (N, 4) xyxy arrays.

Dispatch: ``impl='cpu'`` (Numba, default for NumPy arrays), ``'reference'`` (plain loops),
``'cuda'`` (numba.cuda, default for CuPy arrays). This module validates shapes and dtypes,
returns early on empty input and passes C-contiguous float32/float64 arrays to the versions.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.versions import NO_SCATTER_IMPLS, load_version

IMPLS = NO_SCATTER_IMPLS


def check_boxes(boxes, name: str = "boxes"):
    """Validate an (N, 4) floating box array; returns it C-contiguous (ints become float32)."""
    xp = get_array_module(boxes)
    boxes = xp.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) [x1, y1, x2, y2], got "
                         f"{tuple(boxes.shape)}")
    if boxes.dtype.kind != "f":
        boxes = boxes.astype(np.float32)
    elif boxes.dtype not in (np.float32, np.float64):
        boxes = boxes.astype(np.float32)
    return xp.ascontiguousarray(boxes)


def _module(impl, x):
    return load_version("boxes", impl, x, impls=IMPLS)


def box_area(boxes, impl: str | None = None):
    """(N, 4) -> (N,) areas ``(x2 - x1) * (y2 - y1)``."""
    boxes = check_boxes(boxes)
    if boxes.shape[0] == 0:
        return get_array_module(boxes).zeros(0, boxes.dtype)
    return _module(impl, boxes).box_area(boxes)


def _pair(name: str, boxes1, boxes2, impl):
    check_same_device(name, boxes1=boxes1, boxes2=boxes2)
    boxes1, boxes2 = check_boxes(boxes1, "boxes1"), check_boxes(boxes2, "boxes2")
    if boxes1.dtype != boxes2.dtype:
        dtype = np.promote_types(boxes1.dtype, boxes2.dtype)
        boxes1, boxes2 = boxes1.astype(dtype), boxes2.astype(dtype)
    if boxes1.shape[0] == 0 or boxes2.shape[0] == 0:
        xp = get_array_module(boxes1)
        return xp.zeros((boxes1.shape[0], boxes2.shape[0]), boxes1.dtype)
    return getattr(_module(impl, boxes1), name)(boxes1, boxes2)


def box_iou(boxes1, boxes2, impl: str | None = None):
    """(N, 4), (M, 4) -> (N, M) IoU (0 where the union is empty)."""
    return _pair("box_iou", boxes1, boxes2, impl)


def generalized_box_iou(boxes1, boxes2, impl: str | None = None):
    """(N, 4), (M, 4) -> (N, M) generalised IoU."""
    return _pair("generalized_box_iou", boxes1, boxes2, impl)
