"""RoI Align on the GPU (numba.cuda), same values as ``reference.py`` up to rounding.

* Forward: one thread per output element ``k -> (r, c, ph, pw)``, summing its
  ``grid_h x grid_w`` bilinear samples (``scalar.bilinear_weights``) in float64.
* Backward, deterministic (the default): one thread per *row* ``(n, c, h)`` of the
  gradient. Bilinear weights are separable (``scalar.linear_weights_1d``): a sample at
  (ys, xs) gives row h the weight ``wy(h)`` (the part of its row interpolation that falls
  on h) times its column weights. The thread walks image n's RoIs in increasing r, their
  bin rows and sample rows (skipping RoIs whose rows cannot reach h); where a sample row
  touches h it adds
  ``gy / count * wy(h) * wx`` at the two columns of every sample column. Each gx element
  is written by one thread in a fixed order: the same bits on every run, no atomics.
* ``roi_align_backward_atomic``: torchvision's scheme, one thread per ``gy`` element that
  scatters its samples' 4 corners with ``atomic.add``. The float sum order varies from
  run to run (non-deterministic); kept for comparison.
"""
from __future__ import annotations

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
def _backward_rows_kernel(gy, rois, spatial_scale, sampling_ratio, aligned, gx):
    k = cuda.grid(1)
    batch, channels, height, width = gx.shape
    if k >= batch * channels * height:
        return
    h = k % height                           # k -> (n, c, h): one row of the gradient
    c = (k // height) % channels
    n = k // (height * channels)
    out_h, out_w = gy.shape[2], gy.shape[3]
    for r in range(rois.shape[0]):           # increasing r: a fixed sum order
        if int(rois[r, 0]) != n:
            continue
        start_h, start_w, bin_h, bin_w, grid_h, grid_w = _geometry(
            rois[r, 1], rois[r, 2], rois[r, 3], rois[r, 4], spatial_scale, out_h, out_w,
            sampling_ratio, aligned)
        # samples lie in [start_h, start_h + out_h * bin_h]; after clamping they touch
        # rows int(max(y, 0)) .. that + 1 only: skip RoIs that cannot reach row h (one
        # more row each side absorbs rounding of the sample coordinates)
        top = int(max(start_h, 0.0)) - 1
        bottom = int(max(start_h + out_h * bin_h, 0.0)) + 2
        if h < top or h > bottom:
            continue
        count = max(grid_h * grid_w, 1)
        for ph in range(out_h):
            for iy in range(grid_h):
                ys = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                lo, hi, w_lo, w_hi, ok = _interp(ys, height)
                if not ok or (lo != h and hi != h):
                    continue                 # this sample row does not touch row h
                wy = 0.0
                if lo == h:
                    wy += w_lo
                if hi == h:
                    wy += w_hi
                for pw in range(out_w):
                    g = gy[r, c, ph, pw] / count * wy
                    for ix in range(grid_w):
                        xs = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        xl, xh, wx_l, wx_h, okx = _interp(xs, width)
                        if okx:
                            gx[n, c, h, xl] += g * wx_l
                            gx[n, c, h, xh] += g * wx_h


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
    gx = get_array_module(gy).zeros(x_shape, gy.dtype)
    launch(_backward_rows_kernel, x_shape[0] * x_shape[1] * x_shape[2],
           gy, rois, float(spatial_scale), int(sampling_ratio), bool(aligned), gx)
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
