"""Box utilities on (N, 4) arrays or Tensors, named and defined as in ``torchvision.ops``.

Formats (``box_convert``):

* ``xyxy``   corners ``(x1, y1, x2, y2)`` — what every other op here takes;
* ``xywh``   top-left corner and size ``(x1, y1, w, h)``, ``x2 = x1 + w``;
* ``cxcywh`` centre and size ``(cx, cy, w, h)``, ``x1 = cx - w / 2``, ``x2 = cx + w / 2``.

``box_area = (x2 - x1) * (y2 - y1)``; ``box_iou(a, b) = |a ∩ b| / |a ∪ b|`` (0 where the
union is empty, where torchvision gives NaN); ``generalized_box_iou = IoU - |C \\ (a ∪ b)| / |C|``
with C the smallest enclosing box (Rezatofighi et al., CVPR 2019).

Arrays give arrays, Tensors give Tensors (these ops carry no gradient: they serve target
assignment and post-processing). The pairwise kernels live in ``kernels/boxes``.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.kernels import boxes as K
from scratchvision.ops._utils import unwrap, wrap

FORMATS = ("xyxy", "xywh", "cxcywh")


def box_area(boxes, *, impl: str | None = None):
    """Areas of (N, 4) xyxy boxes -> (N,).

    ``impl`` (here and in ``box_iou``/``generalized_box_iou``) picks the kernel version:
    None (``cpu`` for NumPy, ``cuda`` for CuPy data) or one of
    ``kernels.boxes.VERSIONS.impls`` (``"reference"``, ``"cpu"``, ``"cuda"``).
    """
    b, t = unwrap(boxes)
    return wrap(K.box_area(b, impl=impl), t)


def box_iou(boxes1, boxes2, *, impl: str | None = None):
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M) (``impl``: see ``box_area``)."""
    a, t = unwrap(boxes1)
    b, _ = unwrap(boxes2)
    return wrap(K.box_iou(a, b, impl=impl), t)


def generalized_box_iou(boxes1, boxes2, *, impl: str | None = None):
    """Pairwise generalised IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M), in [-1, 1]
    (``impl``: see ``box_area``)."""
    a, t = unwrap(boxes1)
    b, _ = unwrap(boxes2)
    a, b = K.check_boxes(a, "boxes1"), K.check_boxes(b, "boxes2")
    for name, arr in (("boxes1", a), ("boxes2", b)):
        if arr.size and bool(((arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])).any()):
            raise ValueError(f"{name} must have x2 >= x1 and y2 >= y1 (xyxy format)")
    return wrap(K.generalized_box_iou(a, b, impl=impl), t)


def _check_last4(b, name="boxes"):
    if b.ndim < 1 or b.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got {tuple(b.shape)}")


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert (..., 4) boxes between 'xyxy', 'xywh' and 'cxcywh' (see module docstring)."""
    for name, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if fmt not in FORMATS:
            raise ValueError(f"{name} must be one of {FORMATS}, got {fmt!r}")
    b, t = unwrap(boxes)
    xp = get_array_module(b)
    b = xp.asarray(b)
    _check_last4(b)
    if in_fmt == out_fmt:
        return wrap(b.copy(), t)
    p, q, r, s = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if in_fmt == "xywh":                     # -> xyxy
        p, q, r, s = p, q, p + r, q + s
    elif in_fmt == "cxcywh":
        p, q, r, s = p - 0.5 * r, q - 0.5 * s, p + 0.5 * r, q + 0.5 * s
    if out_fmt == "xywh":                    # xyxy ->
        p, q, r, s = p, q, r - p, s - q
    elif out_fmt == "cxcywh":
        p, q, r, s = (p + r) / 2, (q + s) / 2, r - p, s - q
    return wrap(xp.stack([p, q, r, s], axis=-1).astype(b.dtype, copy=False), t)


def clip_boxes_to_image(boxes, size):
    """Clip (..., 4) xyxy boxes to an image of ``size = (height, width)``."""
    b, t = unwrap(boxes)
    xp = get_array_module(b)
    b = xp.asarray(b)
    _check_last4(b)
    height, width = size
    out = b.copy()
    out[..., 0::2] = xp.clip(b[..., 0::2], 0, width)
    out[..., 1::2] = xp.clip(b[..., 1::2], 0, height)
    return wrap(out, t)


def remove_small_boxes(boxes, min_size: float):
    """int64 indices of the (N, 4) xyxy boxes whose width and height are both >= min_size."""
    b, t = unwrap(boxes)
    xp = get_array_module(b)
    b = xp.asarray(b)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(b.shape)}")
    ws, hs = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    keep = xp.nonzero((ws >= min_size) & (hs >= min_size))[0].astype(np.int64)
    return wrap(keep, t)
