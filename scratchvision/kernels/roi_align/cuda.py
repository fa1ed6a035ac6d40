"""RoI Align on the GPU (numba.cuda), same values as ``reference.py`` up to rounding.

* Forward: one thread per output element ``k -> (r, c, ph, pw)``, summing its
  ``grid_h x grid_w`` bilinear samples (``scalar.bilinear_weights``) in float64.
* Backward, deterministic (the default): one thread per *pixel* ``(n, c, h, w)`` of the
  gradient gathers what every sample read from it. Bilinear weights are separable
  (``scalar.linear_weights_1d``): a sample at (ys, xs) gives pixel (h, w) the weight
  ``wy(h) * wx(w)``, the parts of its row and column interpolations that fall on h and
  w. Two small kernels first tabulate, per RoI, its geometry and, for every feature row
  and column, the range of its sample rows ``t = ph*grid_h + iy`` (columns ``u``) whose
  interpolation reads it (sample coordinates are monotonic in t, so these are ranges;
  the candidates come from ``ys_t = start_h + (t + 0.5) * bin_h / grid_h`` by arithmetic,
  ``_samples_near``, and each is checked with the forward's own helper). A pixel thread
  walks image n's RoIs in increasing r, skips those whose row or column range is empty,
  and adds ``gy[r, c, ph, pw] / count * wy * wx`` over the few (t, u) pairs left. Each
  gx element is written by one thread in a fixed order: the same bits on every run, no
  atomics, and the 32 neighbouring pixels of a warp walk the same RoIs.
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
    """geo[r] = (start_h, start_w, bin_h, bin_w, grid_h, grid_w) of RoI r: one thread each."""
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
def _sample_ranges_kernel(geo, height, width, out_h, out_w, ranges):
    """ranges[r, i] = (first, last) sample row t of RoI r whose interpolation reads
    feature row i (i < height), or sample column u reading column i - height; (0, -1)
    where none does. Sample coordinates are monotonic in t, so the readers of one row
    are a range. One thread per (r, i)."""
    k = cuda.grid(1)
    lines = height + width
    if k >= geo.shape[0] * lines:
        return
    r = k // lines                           # k -> (r, i)
    i = k - r * lines
    start, bin_size, grid, bins, size, pixel = geo[r, 0], geo[r, 2], int(geo[r, 4]), \
        out_h, height, i
    if i >= height:
        start, bin_size, grid, bins, size, pixel = geo[r, 1], geo[r, 3], int(geo[r, 5]), \
            out_w, width, i - height
    first, last = 0, -1
    if grid > 0:
        # candidates by arithmetic, then each checked with the forward's own helper
        t0, t1 = _samples_near(pixel, start, bin_size / grid, bins * grid)
        b = t0 // grid                       # t -> (bin, sample in bin), counted up
        s = t0 - b * grid
        for t in range(t0, t1 + 1):
            v = start + b * bin_size + (s + 0.5) * bin_size / grid   # as the forward
            lo, hi, w_lo, w_hi, ok = _interp(v, size)
            if ok and (lo == pixel or hi == pixel):
                if last < 0:
                    first = t
                last = t
            s += 1
            if s == grid:
                s = 0
                b += 1
    ranges[r, i, 0] = first
    ranges[r, i, 1] = last


@cuda.jit
def _backward_pixels_kernel(gy, rois, geo, ranges, gx):
    k = cuda.grid(1)
    batch, channels, height, width = gx.shape
    if k >= batch * channels * height * width:
        return
    w = k % width                            # k -> (n, c, h, w): one gradient pixel
    h = (k // width) % height
    c = (k // (width * height)) % channels
    n = k // (width * height * channels)
    acc = 0.0
    for r in range(rois.shape[0]):           # increasing r: a fixed sum order
        if int(rois[r, 0]) != n:
            continue
        t0, t1 = ranges[r, h, 0], ranges[r, h, 1]
        if t1 < t0:
            continue                         # no sample row of RoI r reads row h
        u0, u1 = ranges[r, height + w, 0], ranges[r, height + w, 1]
        if u1 < u0:
            continue
        start_h, start_w, bin_h, bin_w = geo[r, 0], geo[r, 1], geo[r, 2], geo[r, 3]
        grid_h, grid_w = int(geo[r, 4]), int(geo[r, 5])
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
    n_rois, height, width = rois.shape[0], x_shape[2], x_shape[3]
    geo = xp.empty((n_rois, 6), xp.float64)
    launch(_geometry_kernel, n_rois, rois, float(spatial_scale), int(sampling_ratio),
           bool(aligned), gy.shape[2], gy.shape[3], geo)
    ranges = xp.empty((n_rois, height + width, 2), xp.int64)
    launch(_sample_ranges_kernel, n_rois * (height + width), geo, height, width,
           gy.shape[2], gy.shape[3], ranges)
    gx = xp.empty(x_shape, gy.dtype)
    launch(_backward_pixels_kernel, gx.size, gy, rois, geo, ranges, gx)
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
