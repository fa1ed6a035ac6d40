"""Scalar helpers of RoI Align, written once as plain Python.

``reference.py`` calls them directly; ``cpu.py`` compiles them with ``numba.njit`` and the
GPU version with ``numba.cuda.jit(device=True)``: one definition of the pixel conventions.

Conventions (exactly torchvision's / Detectron's):

* A RoI ``(x1, y1, x2, y2)`` in image coordinates maps to feature coordinates by
  ``spatial_scale``. With ``aligned=True`` the box is also shifted by -0.5: pixel ``i``
  of the feature map has its centre at ``i + 0.5`` in continuous coordinates, so the
  continuous point ``x`` sits at index position ``x - 0.5`` (the half-pixel model).
  With ``aligned=False`` (legacy) there is no shift, and a RoI is made at least 1x1.
* The RoI is cut into ``out_h x out_w`` bins; each bin is sampled on a regular
  ``grid_h x grid_w`` grid at the sub-cell centres, ``grid = sampling_ratio`` when it is
  positive, else ``ceil(roi_size / out_size)`` (adaptive). The bin value is the mean of
  its samples (``count = max(grid_h * grid_w, 1)``).
* A sample at ``(y, x)`` is bilinearly interpolated from the 4 surrounding pixels.
  Samples with ``y < -1`` or ``y > H`` (same for x) are 0 (outside the map by more than
  one pixel); otherwise coordinates below 0 are clamped to 0 and those at or past the
  last pixel read the last pixel.
"""
import math


def roi_align_geometry(x1, y1, x2, y2, spatial_scale, out_h, out_w, sampling_ratio, aligned):
    """-> (start_h, start_w, bin_h, bin_w, grid_h, grid_w) of one RoI in feature coords."""
    offset = 0.5 if aligned else 0.0
    start_w = x1 * spatial_scale - offset
    start_h = y1 * spatial_scale - offset
    roi_w = x2 * spatial_scale - offset - start_w
    roi_h = y2 * spatial_scale - offset - start_h
    if not aligned:                          # legacy: force malformed RoIs to be 1x1
        roi_w = max(roi_w, 1.0)
        roi_h = max(roi_h, 1.0)
    bin_h = roi_h / out_h
    bin_w = roi_w / out_w
    if sampling_ratio > 0:
        grid_h = sampling_ratio
        grid_w = sampling_ratio
    else:                                    # adaptive: about one sample per pixel
        grid_h = int(math.ceil(roi_h / out_h))
        grid_w = int(math.ceil(roi_w / out_w))
    return start_h, start_w, bin_h, bin_w, grid_h, grid_w


def bilinear_weights(y, x, height, width):
    """-> (y_low, x_low, y_high, x_high, w1, w2, w3, w4) for a sample at (y, x).

    The value is ``w1 * v[y_low, x_low] + w2 * v[y_low, x_high] + w3 * v[y_high, x_low]
    + w4 * v[y_high, x_high]``; all weights are 0 for a sample outside the map.
    """
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0
    if y <= 0.0:
        y = 0.0
    if x <= 0.0:
        x = 0.0
    y_low = int(y)                           # floor, y >= 0
    x_low = int(x)
    if y_low >= height - 1:                  # at/past the last row: read the last row
        y_low = height - 1
        y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = width - 1
        x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly = y - y_low                           # e.g. y = 2.25: rows 2 and 3, ly = 0.25
    lx = x - x_low
    hy = 1.0 - ly
    hx = 1.0 - lx
    return y_low, x_low, y_high, x_high, hy * hx, hy * lx, ly * hx, ly * lx


def linear_weights_1d(v, size):
    """-> (low, high, w_low, w_high, valid): ``bilinear_weights`` along one axis.

    Bilinear interpolation on a product grid of samples is separable: the weight of pixel
    (py, px) in a bin is ``(sum over sample rows of its row weight) * (sum over sample
    columns of its column weight)``, and a sample is outside the map exactly when its row
    or its column is (``valid`` False). The fast CPU version builds bins from this.
    """
    if v < -1.0 or v > size:
        return 0, 0, 0.0, 0.0, False
    if v <= 0.0:
        v = 0.0
    low = int(v)
    if low >= size - 1:
        low = size - 1
        high = size - 1
        v = float(low)
    else:
        high = low + 1
    frac = v - low
    return low, high, 1.0 - frac, frac, True
