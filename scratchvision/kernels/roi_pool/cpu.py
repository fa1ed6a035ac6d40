"""RoI max pooling, Numba CPU version (same results as ``reference.py``).

* Forward: ``prange`` over the ``R * C`` pairs ``(r, c)``; the bin ranges of a RoI are
  computed once per pair into two small tables (rows and columns), then each bin is a
  max over a rectangle of one contiguous plane.
* Backward: ``prange`` over the ``N * C`` planes ``(n, c)`` of the gradient; each thread
  adds the routed gradients of the RoIs of image n in increasing ``r`` order. No races,
  no atomics, the reference's sum order: the same bits on every run.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from scratchvision.kernels.roi_pool import scalar

_geometry = njit(cache=True)(scalar.roi_pool_geometry)
_bin = njit(cache=True)(scalar.roi_pool_bin)


@njit(parallel=True, cache=True)
def _forward(x, rois, out_h, out_w, spatial_scale, y, argmax):
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    for k in prange(rois.shape[0] * channels):
        r = k // channels                    # (r, c) indexes one output plane
        c = k % channels
        n = int(rois[r, 0])
        start_h, start_w, roi_h, roi_w = _geometry(rois[r, 1], rois[r, 2], rois[r, 3],
                                                   rois[r, 4], spatial_scale)
        for ph in range(out_h):
            h0, h1 = _bin(ph, roi_h, out_h, start_h, height)
            for pw in range(out_w):
                w0, w1 = _bin(pw, roi_w, out_w, start_w, width)
                if h1 <= h0 or w1 <= w0:
                    y[r, c, ph, pw] = 0.0        # empty bin
                    argmax[r, c, ph, pw] = -1
                    continue
                best = -np.inf
                best_i = -1
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = x[n, c, h, w]
                        if v > best:             # '>': the first maximum wins
                            best = v
                            best_i = h * width + w
                y[r, c, ph, pw] = best
                argmax[r, c, ph, pw] = best_i


@njit(parallel=True, cache=True)
def _backward(gy, argmax, rois, gxf):
    batch, channels = gxf.shape[0], gxf.shape[1]
    out_h, out_w = gy.shape[2], gy.shape[3]
    for k in prange(batch * channels):
        n = k // channels                    # (n, c) indexes one plane of the gradient
        c = k % channels
        for r in range(rois.shape[0]):       # increasing r: the reference's order
            if int(rois[r, 0]) != n:
                continue
            for ph in range(out_h):
                for pw in range(out_w):
                    a = argmax[r, c, ph, pw]
                    if a >= 0:
                        gxf[n, c, a] += gy[r, c, ph, pw]


def roi_pool_forward(x, rois, out_h, out_w, spatial_scale):
    """x (N, C, H, W), rois (R, 5) float64 -> (y (R, C, out_h, out_w), argmax int64)."""
    y = np.empty((rois.shape[0], x.shape[1], out_h, out_w), x.dtype)
    argmax = np.empty(y.shape, np.int64)
    _forward(x, rois, out_h, out_w, float(spatial_scale), y, argmax)
    return y, argmax


def roi_pool_backward(gy, argmax, rois, x_shape):
    """gy, argmax (R, C, out_h, out_w) -> gx of shape x_shape (N, C, H, W)."""
    batch, channels, height, width = x_shape
    gxf = np.zeros((batch, channels, height * width), gy.dtype)
    _backward(gy, argmax, rois, gxf)
    return gxf.reshape(x_shape)
