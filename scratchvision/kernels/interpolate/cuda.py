"""Bilinear and nearest resizing on the GPU: numba.cuda kernels, one thread per output
pixel (forward) or per input pixel (deterministic backward).

Same signatures as ``reference.py``; the scalar coordinate helpers of ``weights.py`` are
compiled here with ``cuda.jit(device=True)``, so the GPU uses torch's exact conventions.
Arrays are CuPy arrays on a GPU or NumPy arrays under Numba's CUDA simulator.

Backward, two formulations:

* **gather** (default, deterministic): one thread per input pixel ``(p, h, w)`` visits the
  outputs that read it and adds the weight they give it. Which outputs those are is not
  re-derived by inverting the float coordinate map (error-prone at the edges). A small
  kernel first builds ``readers``: for every source row (then column) the first and last
  output that reads it (outputs read sources in order, so they form a range). It scans a
  slightly widened candidate range, ``oh`` with source coordinate within ``(h - 1, h +
  1]``, i.e. about ``h / ratio`` ± ``1 / ratio`` plus a margin of 2 (the whole axis when
  ``h`` is the last pixel, which absorbs clamped coordinates), recomputing each
  candidate's taps with the forward's own helper. The per-pixel threads then loop over
  those exact ranges only (about 4 x 4 outputs at x2, not the 9 x 9 candidates). The
  summation order is fixed, so every run gives the same bits.
* **atomic** (``ATOMIC``, ``impl='cuda_atomic'``): one thread per output adds its four
  weighted contributions with ``cuda.atomic.add``: simpler, **non-deterministic** order.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.cuda_support import launch
from scratchvision.kernels.interpolate import weights

_linear_scale = cuda.jit(device=True)(weights.linear_scale)
_linear_taps = cuda.jit(device=True)(weights.linear_taps)
_nearest_source = cuda.jit(device=True)(weights.nearest_source)


@cuda.jit(device=True)
def _candidates(i, in_size, out_size, ratio, align_corners):  # pragma: no cover (device)
    # destination indices whose source coordinate may lie in (i - 1, i + 1]: a superset
    if ratio <= 0.0:
        return 0, out_size - 1
    if align_corners:                         # src = ratio * dst
        lo = math.floor((i - 1) / ratio) - 2
        hi = math.ceil((i + 1) / ratio) + 2
    else:                                     # src = ratio * (dst + 0.5) - 0.5
        lo = math.floor((i - 0.5) / ratio - 0.5) - 2
        hi = math.ceil((i + 1.5) / ratio - 0.5) + 2
    if i == 0:
        lo = 0                                # clamped sources all read pixel 0
    if i == in_size - 1:
        hi = out_size - 1                     # ... and the last pixel
    return max(lo, 0), min(hi, out_size - 1)


@cuda.jit
def _bilinear_readers(in_h, out_h, rh, in_w, out_w, rw, align_corners, readers):
    """readers[i] = (first, last) output index whose taps include source index i: rows
    i < in_h, then columns. Outputs read sources in order, so these are ranges."""
    i = cuda.grid(1)
    if i >= in_h + in_w:
        return
    size, out, ratio, src = in_h, out_h, rh, i
    if i >= in_h:
        size, out, ratio, src = in_w, out_w, rw, i - in_h
    lo, hi = _candidates(src, size, out, ratio, align_corners)   # a superset to scan
    first, last = 0, -1
    for o in range(lo, hi + 1):
        i0, i1, l0, l1 = _linear_taps(o, size, ratio, align_corners)
        if i0 == src or i1 == src:
            if last < 0:
                first = o
            last = o
    readers[i, 0] = first
    readers[i, 1] = last


@cuda.jit
def _nearest_readers(in_h, out_h, scale_h, rh, in_w, out_w, scale_w, rw, readers):
    """As ``_bilinear_readers`` for 'nearest': the outputs that copy source index i."""
    i = cuda.grid(1)
    if i >= in_h + in_w:
        return
    size, out, scale, ratio, src = in_h, out_h, scale_h, rh, i
    if i >= in_h:
        size, out, scale, ratio, src = in_w, out_w, scale_w, rw, i - in_h
    lo, hi = _candidates(src, size, out, ratio, True)
    first, last = 0, -1
    for o in range(lo, hi + 1):
        if _nearest_source(o, size, out, scale) == src:
            if last < 0:
                first = o
            last = o
    readers[i, 0] = first
    readers[i, 1] = last


@cuda.jit
def _bilinear_fwd(x, y, align_corners, rh, rw):  # pragma: no cover (device)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w                            # t = (p * out_h + oh) * out_w + ow
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    h0, h1, a0, a1 = _linear_taps(oh, h, rh, align_corners)
    w0, w1, b0, b1 = _linear_taps(ow, w, rw, align_corners)
    y[p, oh, ow] = (a0 * (b0 * x[p, h0, w0] + b1 * x[p, h0, w1])
                    + a1 * (b0 * x[p, h1, w0] + b1 * x[p, h1, w1]))


@cuda.jit
def _bilinear_bwd_gather(gy, gx, align_corners, rh, rw, readers):  # pragma: no cover
    planes, h, w = gx.shape
    t = cuda.grid(1)
    if t >= planes * h * w:
        return
    ww = t % w                                # t = (p * h + hh) * w + ww: one input pixel
    hh = (t // w) % h
    p = t // (w * h)
    oh_lo, oh_hi = readers[hh, 0], readers[hh, 1]
    ow_lo, ow_hi = readers[h + ww, 0], readers[h + ww, 1]
    acc = 0.0
    for oh in range(oh_lo, oh_hi + 1):
        h0, h1, a0, a1 = _linear_taps(oh, h, rh, align_corners)
        if h0 != hh and h1 != hh:
            continue                          # not a source row of output row oh
        a = (a0 if h0 == hh else 0.0) + (a1 if h1 == hh else 0.0)   # h0 == h1: both
        for ow in range(ow_lo, ow_hi + 1):
            w0, w1, b0, b1 = _linear_taps(ow, w, rw, align_corners)
            if w0 != ww and w1 != ww:
                continue
            b = (b0 if w0 == ww else 0.0) + (b1 if w1 == ww else 0.0)
            acc += a * b * gy[p, oh, ow]
    gx[p, hh, ww] = acc


@cuda.jit
def _bilinear_bwd_atomic(gy, gx, align_corners, rh, rw):  # pragma: no cover (device)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    h0, h1, a0, a1 = _linear_taps(oh, h, rh, align_corners)
    w0, w1, b0, b1 = _linear_taps(ow, w, rw, align_corners)
    g = gy[p, oh, ow]
    cuda.atomic.add(gx, (p, h0, w0), a0 * b0 * g)       # non-deterministic order
    cuda.atomic.add(gx, (p, h0, w1), a0 * b1 * g)
    cuda.atomic.add(gx, (p, h1, w0), a1 * b0 * g)
    cuda.atomic.add(gx, (p, h1, w1), a1 * b1 * g)


@cuda.jit
def _nearest_fwd(x, y, scale_h, scale_w):  # pragma: no cover (device)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    y[p, oh, ow] = x[p, _nearest_source(oh, h, out_h, scale_h),
                     _nearest_source(ow, w, out_w, scale_w)]


@cuda.jit
def _nearest_bwd_gather(gy, gx, readers):  # pragma: no cover (device)
    planes, h, w = gx.shape
    t = cuda.grid(1)
    if t >= planes * h * w:
        return
    ww = t % w                                # t = (p * h + hh) * w + ww: one input pixel
    hh = (t // w) % h
    p = t // (w * h)
    acc = 0.0                                 # every output in the ranges copied (hh, ww)
    for oh in range(readers[hh, 0], readers[hh, 1] + 1):
        for ow in range(readers[h + ww, 0], readers[h + ww, 1] + 1):
            acc += gy[p, oh, ow]
    gx[p, hh, ww] = acc


@cuda.jit
def _nearest_bwd_atomic(gy, gx, scale_h, scale_w):  # pragma: no cover (device)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    cuda.atomic.add(gx, (p, _nearest_source(oh, h, out_h, scale_h),
                         _nearest_source(ow, w, out_w, scale_w)), gy[p, oh, ow])


def _scale_or_zero(s):
    return 0.0 if s is None else float(s)


def _ratios(x_hw, out_hw, align_corners, scales):
    return tuple(weights.linear_scale(x_hw[i], out_hw[i], align_corners,
                                      _scale_or_zero(scales[i])) for i in range(2))


def bilinear_forward(x, size, align_corners, scales):
    """(N, C, H, W) -> (N, C, out_h, out_w) bilinear resize."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = size
    y = xp.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        rh, rw = _ratios((h, w), size, align_corners, scales)
        launch(_bilinear_fwd, y.size, x.reshape(n * c, h, w),
               y.reshape(n * c, out_h, out_w), bool(align_corners), rh, rw)
    return y


def bilinear_backward(gy, x_shape, align_corners, scales):
    """gx (x_shape): deterministic gather of the forward weights (see module docstring)."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    out_h, out_w = gy.shape[2], gy.shape[3]
    gx = xp.zeros((n * c, h, w), gy.dtype) if gy.size == 0 else xp.empty((n * c, h, w),
                                                                          gy.dtype)
    if gy.size and gx.size:
        rh, rw = _ratios((h, w), (out_h, out_w), align_corners, scales)
        readers = xp.empty((h + w, 2), xp.int64)
        launch(_bilinear_readers, h + w, h, out_h, rh, w, out_w, rw, bool(align_corners),
               readers)
        launch(_bilinear_bwd_gather, gx.size, gy.reshape(n * c, out_h, out_w), gx,
               bool(align_corners), rh, rw, readers)
    return gx.reshape(x_shape)


def bilinear_backward_atomic(gy, x_shape, align_corners, scales):
    """gx (x_shape) by atomic scatter from each output (non-deterministic order)."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        rh, rw = _ratios((h, w), gy.shape[2:], align_corners, scales)
        launch(_bilinear_bwd_atomic, gy.size, gy.reshape(n * c, gy.shape[2], gy.shape[3]),
               gx, bool(align_corners), rh, rw)
    return gx.reshape(x_shape)


def nearest_forward(x, size, scales):
    """(N, C, H, W) -> (N, C, out_h, out_w): each output copies its nearest source pixel."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = size
    y = xp.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        launch(_nearest_fwd, y.size, x.reshape(n * c, h, w),
               y.reshape(n * c, out_h, out_w), _scale_or_zero(scales[0]),
               _scale_or_zero(scales[1]))
    return y


def nearest_backward(gy, x_shape, scales):
    """gx (x_shape): deterministic gather of the outputs that copied each pixel."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    out_h, out_w = gy.shape[2], gy.shape[3]
    gx = xp.zeros((n * c, h, w), gy.dtype) if gy.size == 0 else xp.empty((n * c, h, w),
                                                                          gy.dtype)
    if gy.size and gx.size:
        sh, sw = _scale_or_zero(scales[0]), _scale_or_zero(scales[1])
        rh = 1.0 / sh if sh > 0 else h / out_h      # for the candidates the table scans
        rw = 1.0 / sw if sw > 0 else w / out_w
        readers = xp.empty((h + w, 2), xp.int64)
        launch(_nearest_readers, h + w, h, out_h, sh, rh, w, out_w, sw, rw, readers)
        launch(_nearest_bwd_gather, gx.size, gy.reshape(n * c, out_h, out_w), gx, readers)
    return gx.reshape(x_shape)


def nearest_backward_atomic(gy, x_shape, scales):
    """gx (x_shape) by atomic scatter from each output (non-deterministic order)."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        launch(_nearest_bwd_atomic, gy.size, gy.reshape(n * c, gy.shape[2], gy.shape[3]),
               gx, _scale_or_zero(scales[0]), _scale_or_zero(scales[1]))
    return gx.reshape(x_shape)


# ``impl='cuda_atomic'``: the same forwards, atomic (non-deterministic) scatter backwards
ATOMIC = SimpleNamespace(bilinear_forward=bilinear_forward,
                         bilinear_backward=bilinear_backward_atomic,
                         nearest_forward=nearest_forward, nearest_backward=nearest_backward_atomic)
