"""RoI Align (He et al., Mask R-CNN 2017), textbook version.

Forward, for output ``y[r, c, ph, pw]`` (the flat output index splits as
``k -> (r, c, ph, pw)``, the order the Numba version parallelises over ``(r, c)``)::

    n = rois[r, 0]; geometry of rois[r, 1:] (see scalar.py)
    y[r, c, ph, pw] = 1/count * sum_{iy < grid_h, ix < grid_w} bilinear(x[n, c], ys, xs)
        ys = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
        xs = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w

Backward: the same sum read backwards: each sample scatters ``gy[r, c, ph, pw] / count``
times its 4 bilinear weights into ``gx[n, c]`` at the 4 neighbouring pixels. There is no
gradient for the box coordinates (as in torchvision).

Sums are float64; outputs have the input's dtype.
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.roi_align.scalar import bilinear_weights, roi_align_geometry


def _samples(roi, height, width, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """Yield (ph, pw, count, [(pixel_y, pixel_x, weight) x 4]) for every sample of a RoI."""
    start_h, start_w, bin_h, bin_w, grid_h, grid_w = roi_align_geometry(
        *[float(v) for v in roi[1:]], spatial_scale, out_h, out_w, sampling_ratio, aligned)
    count = max(grid_h * grid_w, 1)
    for ph in range(out_h):
        for pw in range(out_w):
            for iy in range(grid_h):
                ys = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    xs = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights(ys, xs, height, width)
                    yield ph, pw, count, ((yl, xl, w1), (yl, xh, w2), (yh, xl, w3),
                                          (yh, xh, w4))


def roi_align_forward(x, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """x (N, C, H, W), rois (R, 5) float64 -> y (R, C, out_h, out_w)."""
    _, channels, height, width = x.shape
    acc = np.zeros((rois.shape[0], channels, out_h, out_w))
    counts = np.ones((rois.shape[0], 1, out_h, out_w))
    for r in range(rois.shape[0]):
        n = int(rois[r, 0])
        for c in range(channels):
            for ph, pw, count, corners in _samples(rois[r], height, width, out_h, out_w,
                                                   spatial_scale, sampling_ratio, aligned):
                counts[r, 0, ph, pw] = count
                for py, px, wgt in corners:
                    acc[r, c, ph, pw] += wgt * float(x[n, c, py, px])
    return (acc / counts).astype(x.dtype)


def roi_align_backward(gy, rois, x_shape, spatial_scale, sampling_ratio, aligned):
    """gy (R, C, out_h, out_w) -> gx of shape x_shape (N, C, H, W)."""
    _, channels, height, width = x_shape
    out_h, out_w = gy.shape[2], gy.shape[3]
    gx = np.zeros(x_shape, gy.dtype)
    for r in range(rois.shape[0]):
        n = int(rois[r, 0])
        for c in range(channels):
            for ph, pw, count, corners in _samples(rois[r], height, width, out_h, out_w,
                                                   spatial_scale, sampling_ratio, aligned):
                g = float(gy[r, c, ph, pw]) / count
                for py, px, wgt in corners:
                    gx[n, c, py, px] += g * wgt
    return gx
