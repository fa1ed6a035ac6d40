"""Scalar helpers of RoI pooling (Fast R-CNN), written once as plain Python.

Quantised geometry, exactly torchvision's: the RoI corners are scaled and **rounded**
(half away from zero, C's ``round``), the RoI is at least 1x1 *pixels inclusive*
(``end - start + 1``), and bin ``p`` of a RoI of ``size`` pixels covers pixels
``[floor(p * size / out), ceil((p + 1) * size / out))`` shifted by the RoI start and
clipped to the map. Bins that end up empty output 0.
"""
import math


def round_half_away(v):
    """C's round(): 2.5 -> 3, -2.5 -> -3 (NumPy's round would give 2)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_pool_geometry(x1, y1, x2, y2, spatial_scale):
    """-> (start_h, start_w, roi_h, roi_w) in whole feature pixels."""
    # round_half_away, inlined so the helper compiles on its own: |v| rounded, sign back
    start_w = int(math.copysign(math.floor(abs(x1 * spatial_scale) + 0.5), x1))
    start_h = int(math.copysign(math.floor(abs(y1 * spatial_scale) + 0.5), y1))
    end_w = int(math.copysign(math.floor(abs(x2 * spatial_scale) + 0.5), x2))
    end_h = int(math.copysign(math.floor(abs(y2 * spatial_scale) + 0.5), y2))
    roi_w = max(end_w - start_w + 1, 1)      # inclusive pixel count, at least 1
    roi_h = max(end_h - start_h + 1, 1)
    return start_h, start_w, roi_h, roi_w


def roi_pool_bin(p, roi_size, out_size, start, limit):
    """-> [lo, hi) pixel range of bin p along one axis, clipped to [0, limit)."""
    bin_size = roi_size / out_size
    lo = int(math.floor(p * bin_size)) + start
    hi = int(math.ceil((p + 1) * bin_size)) + start
    lo = min(max(lo, 0), limit)
    hi = min(max(hi, 0), limit)
    return lo, hi
