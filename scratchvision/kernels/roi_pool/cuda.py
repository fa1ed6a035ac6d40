"""RoI max pooling on the GPU (numba.cuda), same results as ``reference.py``.

* Forward: one thread per output element ``k -> (r, c, ph, pw)``: the bin's max over a
  rectangle of one plane, and its argmax (first maximum in row-major order).
* Backward, deterministic (the default): one thread per *row* ``(n, c, h)`` of the
  gradient. It walks the bins of image n's RoIs in increasing (r, ph, pw) and adds
  ``gy`` where the argmax lies in row h. Each gx element is written
  by one thread, in a fixed order: the same bits on every run.
* ``roi_pool_backward_atomic``: one thread per ``gy`` element, ``atomic.add`` into gx at
  its argmax. Simpler and usually faster, but the float sum order varies from run to run
  (non-deterministic); kept for comparison in the benchmarks.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.cuda_support import launch
from scratchvision.kernels.roi_pool import scalar

_geometry = cuda.jit(device=True)(scalar.roi_pool_geometry)
_bin = cuda.jit(device=True)(scalar.roi_pool_bin)


@cuda.jit
def _forward_kernel(x, rois, spatial_scale, y, argmax):
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
    start_h, start_w, roi_h, roi_w = _geometry(rois[r, 1], rois[r, 2], rois[r, 3],
                                               rois[r, 4], spatial_scale)
    h0, h1 = _bin(ph, roi_h, out_h, start_h, height)
    w0, w1 = _bin(pw, roi_w, out_w, start_w, width)
    if h1 <= h0 or w1 <= w0:
        y[r, c, ph, pw] = 0.0                # empty bin
        argmax[r, c, ph, pw] = -1
        return
    best = -math.inf
    best_i = -1
    for h in range(h0, h1):
        for w in range(w0, w1):
            if x[n, c, h, w] > best:         # '>': the first maximum wins
                best = x[n, c, h, w]
                best_i = h * width + w
    y[r, c, ph, pw] = best
    argmax[r, c, ph, pw] = best_i


@cuda.jit
def _backward_atomic_kernel(gy, argmax, rois, gx):
    k = cuda.grid(1)
    nroi, channels, out_h, out_w = gy.shape
    if k >= nroi * channels * out_h * out_w:
        return
    pw = k % out_w
    ph = (k // out_w) % out_h
    c = (k // (out_w * out_h)) % channels
    r = k // (out_w * out_h * channels)
    a = argmax[r, c, ph, pw]
    if a >= 0:                               # atomic: non-deterministic sum order
        cuda.atomic.add(gx, (int(rois[r, 0]), c, a // gx.shape[3], a % gx.shape[3]),
                        gy[r, c, ph, pw])


def roi_pool_forward(x, rois, out_h, out_w, spatial_scale):
    """x (N, C, H, W), rois (R, 5) float64 -> (y (R, C, out_h, out_w), argmax int64)."""
    xp = get_array_module(x)
    y = xp.empty((rois.shape[0], x.shape[1], out_h, out_w), x.dtype)
    argmax = xp.empty(y.shape, np.int64)
    launch(_forward_kernel, y.size, x, rois, float(spatial_scale), y, argmax)
    return y, argmax


@cuda.jit
def _backward_rows_kernel(gy, argmax, rois, gx):
    k = cuda.grid(1)
    batch, channels, height, width = gx.shape
    if k >= batch * channels * height:
        return
    h = k % height                           # k -> (n, c, h): one row of the gradient
    c = (k // height) % channels
    n = k // (height * channels)
    for r in range(rois.shape[0]):           # increasing r, then ph, pw: a fixed order
        if int(rois[r, 0]) != n:
            continue
        for ph in range(gy.shape[2]):
            for pw in range(gy.shape[3]):
                a = argmax[r, c, ph, pw]
                if a >= 0 and a // width == h:
                    gx[n, c, h, a % width] += gy[r, c, ph, pw]


def roi_pool_backward(gy, argmax, rois, x_shape):
    """Deterministic: gy, argmax (R, C, out_h, out_w) -> gx of shape x_shape."""
    xp = get_array_module(gy)
    gx = xp.zeros(x_shape, gy.dtype)
    launch(_backward_rows_kernel, x_shape[0] * x_shape[1] * x_shape[2], gy, argmax, rois, gx)
    return gx


def roi_pool_backward_atomic(gy, argmax, rois, x_shape):
    """Non-deterministic (atomicAdd) version of ``roi_pool_backward``."""
    xp = get_array_module(gy)
    gx = xp.zeros(x_shape, gy.dtype)
    launch(_backward_atomic_kernel, gy.size, gy, argmax, rois, gx)
    return gx


# ``impl='cuda_atomic'``: the same forward, the atomic (non-deterministic) backward
ATOMIC = SimpleNamespace(roi_pool_forward=roi_pool_forward,
                         roi_pool_backward=roi_pool_backward_atomic)
