"""RoI max pooling (Girshick, Fast R-CNN 2015), textbook version.

Forward, output ``y[r, c, ph, pw]`` (flat index ``k -> (r, c, ph, pw)``)::

    n = rois[r, 0]; quantised geometry (scalar.py)
    y[r, c, ph, pw] = max over pixels (h, w) of bin (ph, pw) of x[n, c, h, w]
    argmax[r, c, ph, pw] = h * W + w of the first maximum in row-major scan (-1 if empty)

Empty bins output 0. Backward routes ``gy[r, c, ph, pw]`` to ``gx[n, c]`` at the argmax
(bins with argmax -1 route nothing).
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.roi_pool.scalar import roi_pool_bin, roi_pool_geometry


def roi_pool_forward(x, rois, out_h, out_w, spatial_scale):
    """x (N, C, H, W), rois (R, 5) float64 -> (y (R, C, out_h, out_w), argmax int64)."""
    _, channels, height, width = x.shape
    y = np.zeros((rois.shape[0], channels, out_h, out_w), x.dtype)
    argmax = np.full(y.shape, -1, np.int64)
    for r in range(rois.shape[0]):
        n = int(rois[r, 0])
        start_h, start_w, roi_h, roi_w = roi_pool_geometry(
            *[float(v) for v in rois[r, 1:]], spatial_scale)
        for c in range(channels):
            for ph in range(out_h):
                h0, h1 = roi_pool_bin(ph, roi_h, out_h, start_h, height)
                for pw in range(out_w):
                    w0, w1 = roi_pool_bin(pw, roi_w, out_w, start_w, width)
                    if h1 <= h0 or w1 <= w0:
                        continue                 # empty bin: 0, argmax -1
                    best, best_i = -np.inf, -1
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            if x[n, c, h, w] > best:     # '>': the first maximum wins
                                best, best_i = x[n, c, h, w], h * width + w
                    y[r, c, ph, pw] = best
                    argmax[r, c, ph, pw] = best_i
    return y, argmax


def roi_pool_backward(gy, argmax, rois, x_shape):
    """gy, argmax (R, C, out_h, out_w) -> gx of shape x_shape (N, C, H, W)."""
    batch, channels, height, width = x_shape
    gx = np.zeros((batch, channels, height * width), gy.dtype)
    for r in range(rois.shape[0]):
        n = int(rois[r, 0])
        for c in range(channels):
            for ph in range(gy.shape[2]):
                for pw in range(gy.shape[3]):
                    if argmax[r, c, ph, pw] >= 0:
                        gx[n, c, argmax[r, c, ph, pw]] += gy[r, c, ph, pw]
    return gx.reshape(x_shape)
