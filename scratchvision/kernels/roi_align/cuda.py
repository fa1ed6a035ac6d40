"""RoI Align on the GPU (numba.cuda), same values as ``reference.py`` up to rounding.

* Forward: one thread per output element ``k -> (r, c, ph, pw)``, summing its
  ``grid_h x grid_w`` bilinear samples (``scalar.bilinear_weights``) in float64.
* Backward, deterministic (the default): one thread per *pixel* ``(n, c, h, w)`` of the
  gradient gathers what every sample read from it. Bilinear weights are separable
  (``scalar.linear_weights_1d``): a sample at (ys, xs) gives pixel (h, w) the weight
  ``wy(h) * wx(w)``, the parts of its row and column interpolations that fall on h and
  w. A RoI's sample rows are evenly spaced, ``ys_t = start_h + (t + 0.5) * bin_h /
  grid_h`` for ``t = ph*grid_h + iy``, and only those within one pixel of h can touch it,
  so the thread computes that range of t directly (``_samples_near``), likewise for the
  columns, and adds ``gy[r, c, ph, pw] / count * wy * wx`` over the few (t, u) pairs.
  It walks image n's RoIs in increasing r, reading each RoI's geometry and the rows and
  columns its samples span from a table one small kernel computed first, and skips the
  RoIs that cannot reach it with four comparisons. Each gx element is written by one thread in a fixed
  order: the same bits on every run, no atomics, and 32 neighbouring pixels of a warp
  walk the same RoIs.
* ``roi_align_backward_atomic``: torchvision's scheme, one thread per ``gy`` element that
  scatters its samples' 4 corners with ``atomic.add``. The float sum order varies from
  run to run (non-deterministic); kept for comparison.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.cuda_support import launch
from scratchvision.kernels.roi_align import scalar

_geometry = cuda.jit(device=True)(scalar.roi_align_geometry)
_bilinear = cuda.jit(device=True)(scalar.bilinear_weights)
_interp = cuda.jit(device=True)(scalar.linear_weights_1d)


@cuda.jit
def _forward_kernel(x, rois, spatial_scale, sampling_ratio, aligned, y):
    k = cuda.grid(1)
    nroi, channels, out_h, out_w = y.shape
    if k >= nroi * channels * out_h * out_w:
        return
    pw = k % out_w                           # k -> (r, c, ph, pw)
    ph = (k // out_w) % out_h
    c = (k // (out_w * out_h)) % channels
    r = k // (out_w * out_h * channels)
    height, width = x.shape[2], x.shape[3]
    n = int(rois[r, 0])
    start_h, start_w, bin_h, bin_w, grid_h, grid_w = _geometry(
        rois[r, 1], rois[r, 2], rois[r, 3], rois[r, 4], spatial_scale, out_h, out_w,
        sampling_ratio, aligned)
    count = max(grid_h * grid_w, 1)
    acc = 0.0
    for iy in range(grid_h):
        ys = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            xs = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
            yl, xl, yh, xh, w1, w2, w3, w4 = _bilinear(ys, xs, height, width)
            acc += (w1 * x[n, c, yl, xl] + w2 * x[n, c, yl, xh] + w3 * x[n, c, yh, xl]
                    + w4 * x[n, c, yh, xh])
    y[r, c, ph, pw] = acc / count


@cuda.jit
def _geometry_kernel(rois, spatial_scale, sampling_ratio, aligned, out_h, out_w, geo):
    """geo[r] = (start_h, start_w, bin_h, bin_w, grid_h, grid_w, then the rows and columns
    its samples span, one pixel wider each side: top, bottom, left, right) of RoI r."""
    r = cuda.grid(1)
    if r >= rois.shape[0]:
        return
    start_h, start_w, bin_h, bin_w, grid_h, grid_w = _geometry(
        rois[r, 1], rois[r, 2], rois[r, 3], rois[r, 4], spatial_scale, out_h, out_w,
        sampling_ratio, aligned)
    geo[r, 0] = start_h
    geo[r, 1] = start_w
    geo[r, 2] = bin_h
    geo[r, 3] = bin_w
    geo[r, 4] = grid_h
    geo[r, 5] = grid_w
    end_h = start_h + out_h * bin_h          # (bins may be negative: inverted RoIs)
    end_w = start_w + out_w * bin_w
    geo[r, 6] = min(start_h, end_h) - 1.0
    geo[r, 7] = max(start_h, end_h) + 1.0
    geo[r, 8] = min(start_w, end_w) - 1.0
    geo[r, 9] = max(start_w, end_w) + 1.0


@cuda.jit(device=True)
def _samples_near(pixel, start, step, n_samples):
    """(first, last) sample index t whose coordinate ``start + (t + 0.5) * step`` can
    touch ``pixel``: within one pixel of it, widened by one sample for rounding. The step
    is 0 for an empty RoI and negative for an inverted one (aligned=True keeps both)."""
    if step == 0.0:                          # every sample sits at start + 0
        if abs(pixel - start) <= 1.0:
            return 0, n_samples - 1
        return 0, -1
    a = (pixel - 1.0 - start) / step - 0.5
    b = (pixel + 1.0 - start) / step - 0.5
    top = float(n_samples)                   # clamped in floats: no overflow in int()
    low = min(max(min(a, b), -1.0), top)
    high = min(max(max(a, b), -1.0), top)
    return max(int(math.floor(low)), 0), min(int(math.floor(high)) + 1, n_samples - 1)


@cuda.jit
def _backward_pixels_kernel(gy, rois, geo, gx):
    k = cuda.grid(1)
    batch, channels, height, width = gx.shape
    if k >= batch * channels * height * width:
        return
    w = k % width                            # k -> (n, c, h, w): one gradient pixel
    h = (k // width) % height
    c = (k // (width * height)) % channels
    n = k // (width * height * channels)
    out_h, out_w = gy.shape[2], gy.shape[3]
    acc = 0.0
    for r in range(rois.shape[0]):           # increasing r: a fixed sum order
        if int(rois[r, 0]) != n or h < geo[r, 6] or h > geo[r, 7] or w < geo[r, 8] \
                or w > geo[r, 9]:
            continue                         # the RoI's samples stay away from (h, w)
        start_h, start_w, bin_h, bin_w = geo[r, 0], geo[r, 1], geo[r, 2], geo[r, 3]
        grid_h, grid_w = int(geo[r, 4]), int(geo[r, 5])
        if grid_h <= 0 or grid_w <= 0:
            continue
        # sample rows t = ph*grid_h + iy lie at start_h + (t + 0.5) * bin_h / grid_h
        t0, t1 = _samples_near(h, start_h, bin_h / grid_h, out_h * grid_h)
        u0, u1 = _samples_near(w, start_w, bin_w / grid_w, out_w * grid_w)
        count = max(grid_h * grid_w, 1)
        ph = t0 // grid_h                    # t -> (ph, iy), then counted up: no division
        iy = t0 - ph * grid_h
        for _t in range(t0, t1 + 1):
            ys = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h   # as the forward
            lo, hi, w_lo, w_hi, ok = _interp(ys, height)
            wy = 0.0                         # the part of the sample row that lands on h
            if lo == h:
                wy += w_lo
            if hi == h:
                wy += w_hi
            if ok and wy != 0.0:
                pw = u0 // grid_w
                ix = u0 - pw * grid_w
                for _u in range(u0, u1 + 1):
                    xs = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    xl, xh, wx_l, wx_h, okx = _interp(xs, width)
                    wx = 0.0
                    if xl == w:
                        wx += wx_l
                    if xh == w:
                        wx += wx_h
                    if okx and wx != 0.0:
                        acc += gy[r, c, ph, pw] / count * wy * wx
                    ix += 1
                    if ix == grid_w:
                        ix = 0
                        pw += 1
            iy += 1
            if iy == grid_h:
                iy = 0
                ph += 1
    gx[n, c, h, w] = acc


@cuda.jit
def _backward_atomic_kernel(gy, rois, spatial_scale, sampling_ratio, aligned, gx):
    k = cuda.grid(1)
    nroi, channels, out_h, out_w = gy.shape
    if k >= nroi * channels * out_h * out_w:
        return
    pw = k % out_w                           # k -> (r, c, ph, pw)
    ph = (k // out_w) % out_h
    c = (k // (out_w * out_h)) % channels
    r = k // (out_w * out_h * channels)
    height, width = gx.shape[2], gx.shape[3]
    n = int(rois[r, 0])
    start_h, start_w, bin_h, bin_w, grid_h, grid_w = _geometry(
        rois[r, 1], rois[r, 2], rois[r, 3], rois[r, 4], spatial_scale, out_h, out_w,
        sampling_ratio, aligned)
    g = gy[r, c, ph, pw] / max(grid_h * grid_w, 1)
    for iy in range(grid_h):
        ys = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            xs = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
            yl, xl, yh, xh, w1, w2, w3, w4 = _bilinear(ys, xs, height, width)
            # atomics: several RoIs/bins hit one pixel; the sum order is not fixed
            cuda.atomic.add(gx, (n, c, yl, xl), g * w1)
            cuda.atomic.add(gx, (n, c, yl, xh), g * w2)
            cuda.atomic.add(gx, (n, c, yh, xl), g * w3)
            cuda.atomic.add(gx, (n, c, yh, xh), g * w4)


def roi_align_forward(x, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """x (N, C, H, W), rois (R, 5) float64 -> y (R, C, out_h, out_w)."""
    y = get_array_module(x).empty((rois.shape[0], x.shape[1], out_h, out_w), x.dtype)
    launch(_forward_kernel, y.size, x, rois, float(spatial_scale), int(sampling_ratio),
           bool(aligned), y)
    return y


def roi_align_backward(gy, rois, x_shape, spatial_scale, sampling_ratio, aligned):
    """Deterministic: gy (R, C, out_h, out_w) -> gx of shape x_shape."""
    xp = get_array_module(gy)
    geo = xp.empty((rois.shape[0], 10), xp.float64)
    launch(_geometry_kernel, rois.shape[0], rois, float(spatial_scale), int(sampling_ratio),
           bool(aligned), gy.shape[2], gy.shape[3], geo)
    gx = xp.empty(x_shape, gy.dtype)
    launch(_backward_pixels_kernel, gx.size, gy, rois, geo, gx)
    return gx


def roi_align_backward_atomic(gy, rois, x_shape, spatial_scale, sampling_ratio, aligned):
    """Non-deterministic (atomicAdd) version of ``roi_align_backward``."""
    gx = get_array_module(gy).zeros(x_shape, gy.dtype)
    launch(_backward_atomic_kernel, gy.size,
           gy, rois, float(spatial_scale), int(sampling_ratio), bool(aligned), gx)
    return gx


# ``impl='cuda_atomic'``: the same forward, the atomic (non-deterministic) backward
ATOMIC = SimpleNamespace(roi_align_forward=roi_align_forward,
                         roi_align_backward=roi_align_backward_atomic)
