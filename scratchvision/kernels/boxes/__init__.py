"""Box kernels: ``box_area``, ``box_iou``, ``generalized_box_iou`` on (N, 4) xyxy arrays.

Dispatch: ``VERSIONS``, the family's ``KernelFamily`` (``kernels/versions.py``), with one
GPU version because nothing here scatters (``gpu=("cuda",)``): ``impl=None`` runs ``cpu``
(Numba) on NumPy arrays and ``cuda`` (numba.cuda) on CuPy arrays; ``impl="reference"``
(plain loops), ``"cpu"`` or ``"cuda"`` forces one.

This module validates shapes and dtypes, returns early on empty input and passes
C-contiguous float32/float64 arrays to the versions.

* **dtypes.** Boxes are coordinates: float32 and float64 stay as they are, other real
  dtypes (ints, float16) become float32; bool and non-numeric arrays are a ``TypeError``.
  Two box sets of different float dtypes are promoted to the wider one.
* **Bounded memory.** The pairwise ops allocate an (N, M) result; ``N * M`` is checked
  against ``validation.LIMITS["max_elements"]`` before anything runs.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_limit

VERSIONS = KernelFamily("boxes", gpu=("cuda",))


def check_boxes(boxes, name: str = "boxes"):
    """Validate an (N, 4) real box array; return it C-contiguous float32/float64."""
    xp = get_array_module(boxes)
    boxes = xp.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) [x1, y1, x2, y2], got "
                         f"{tuple(boxes.shape)}")
    if boxes.dtype.kind not in "iuf":
        raise TypeError(f"{name} must have a real (float or integer) dtype, got {boxes.dtype}")
    if boxes.dtype not in (np.float32, np.float64):
        boxes = boxes.astype(np.float32)
    return xp.ascontiguousarray(boxes)


def box_area(boxes, impl: str | None = None):
    """(N, 4) -> (N,) areas ``(x2 - x1) * (y2 - y1)``."""
    boxes = check_boxes(boxes)
    module = VERSIONS.module(impl, boxes)    # a wrong impl fails before any work
    if boxes.shape[0] == 0:
        return get_array_module(boxes).zeros(0, boxes.dtype)
    return module.box_area(boxes)


def _pairwise(name: str, boxes1, boxes2, impl):
    """Validate, promote and dispatch one pairwise op: (N, 4), (M, 4) -> (N, M)."""
    check_same_device(name, boxes1=boxes1, boxes2=boxes2)
    boxes1, boxes2 = check_boxes(boxes1, "boxes1"), check_boxes(boxes2, "boxes2")
    if boxes1.dtype != boxes2.dtype:
        dtype = np.promote_types(boxes1.dtype, boxes2.dtype)
        boxes1, boxes2 = boxes1.astype(dtype), boxes2.astype(dtype)
    module = VERSIONS.module(impl, boxes1)
    check_limit((boxes1.shape[0], boxes2.shape[0]), f"{name} output (N x M)")
    if boxes1.shape[0] == 0 or boxes2.shape[0] == 0:
        xp = get_array_module(boxes1)
        return xp.zeros((boxes1.shape[0], boxes2.shape[0]), boxes1.dtype)
    return getattr(module, name)(boxes1, boxes2)


def box_iou(boxes1, boxes2, impl: str | None = None):
    """(N, 4), (M, 4) -> (N, M) IoU (0 where the union is empty)."""
    return _pairwise("box_iou", boxes1, boxes2, impl)


def generalized_box_iou(boxes1, boxes2, impl: str | None = None):
    """(N, 4), (M, 4) -> (N, M) generalised IoU."""
    return _pairwise("generalized_box_iou", boxes1, boxes2, impl)
