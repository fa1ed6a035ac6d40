"""Scalar helpers on boxes, written once as plain Python.

``reference.py`` calls them as Python; ``cpu.py`` compiles them with ``numba.njit`` and the
GPU kernels with ``numba.cuda.jit(device=True)``, so every version computes IoU with the
very same arithmetic (float64, the same operation order) and decisions such as
"IoU > threshold" come out identical on every device.

Boxes are ``(x1, y1, x2, y2)`` in continuous coordinates: the area of ``(0, 0, 2, 1)`` is
2 (no ``+1`` of the old pixel-inclusive convention, as in torchvision).
"""


def box_area_scalar(x1, y1, x2, y2):
    """Area ``(x2 - x1) * (y2 - y1)`` (negative for an inverted box, as in torchvision)."""
    return (x2 - x1) * (y2 - y1)


def box_inter_scalar(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2):
    """Area of the intersection of two boxes (0 when they do not overlap)."""
    iw = min(ax2, bx2) - max(ax1, bx1)   # overlap width, negative when apart
    ih = min(ay2, by2) - max(ay1, by1)
    if iw <= 0.0 or ih <= 0.0:
        return 0.0
    return iw * ih


def box_iou_scalar(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2):
    """IoU = inter / (area_a + area_b - inter); 0 where the union is not positive.

    torchvision returns NaN (0/0) for two zero-area boxes; here it is 0: such boxes share
    no area, so they neither suppress each other in NMS nor match in a Matcher.
    """
    iw = min(ax2, bx2) - max(ax1, bx1)   # intersection, repeated inline: each helper stands
    ih = min(ay2, by2) - max(ay1, by1)   # alone, so it compiles without globals
    inter = iw * ih if (iw > 0.0 and ih > 0.0) else 0.0
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    if union <= 0.0:
        return 0.0
    return inter / union


def box_giou_scalar(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2):
    """Generalised IoU (Rezatofighi et al. 2019): IoU - (C - union) / C.

    C is the area of the smallest box enclosing both. 0 where C is not positive.
    """
    iw = min(ax2, bx2) - max(ax1, bx1)   # intersection, repeated inline: each helper stands
    ih = min(ay2, by2) - max(ay1, by1)   # alone, so it compiles without globals
    inter = iw * ih if (iw > 0.0 and ih > 0.0) else 0.0
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    cw = max(ax2, bx2) - min(ax1, bx1)   # enclosing box width
    ch = max(ay2, by2) - min(ay1, by1)
    hull = cw * ch
    if hull <= 0.0:
        return 0.0
    iou = inter / union if union > 0.0 else 0.0
    return iou - (hull - union) / hull
