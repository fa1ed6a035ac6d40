"""Bilinear and nearest resizing on the CPU: Numba, parallel, deterministic backward.

Same arithmetic as ``reference.py`` (the scalar helpers of ``weights.py`` are compiled here
with ``numba.njit``); what differs is the loop layout:

* The column taps and weights depend only on ``ow``, so they are computed once into four
  arrays of length ``out_w`` before the parallel loop; the row taps once per row. The
  inner loop is then two gathers and a few multiply-adds per pixel, in the input's dtype
  (float32 SIMD for float32 input), as torch does.
* Bilinear is separable, so the forward blends the two source rows vertically first
  (``tmp = a0 * x[h0, :] + a1 * x[h1, :]``, a contiguous loop that vectorises) and then
  horizontally (``y[ow] = b0 * tmp[w0] + b1 * tmp[w1]``): two gathers per output instead of
  four. The products are associated differently from the reference's
  ``a0 * (b0 * x00 + b1 * x01) + ...``, hence float32 rounding differences of an ulp or two.
* Forward: ``prange`` over blocks of 16 output rows of one plane (bilinear; each block owns
  a row buffer) or over output rows ``r = (n*C + c) * out_h + oh`` (nearest); every output
  is written by one thread, and a single image with few channels still uses every core.
* Backward (a scatter: one source pixel receives from several outputs): ``prange`` over
  ``(n, c)`` planes, serial inside a plane, so no two threads touch the same ``gx`` element
  and the summation order is fixed: the result is bit-identical from run to run.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from scratchvision.kernels.interpolate import weights

_JIT = dict(parallel=True, cache=True, fastmath=False, nogil=True)
_ROWS = 16          # output rows per parallel task of the bilinear forward
_linear_scale = njit(cache=True)(weights.linear_scale)
_linear_taps = njit(cache=True)(weights.linear_taps)
_nearest_source = njit(cache=True)(weights.nearest_source)


@njit(cache=True)
def _axis_taps(in_size, out_size, align_corners, scale, dtype_like):  # pragma: no cover
    # (i0, i1, l0, l1) for every destination index of one axis: (out_size,) arrays each
    ratio = _linear_scale(in_size, out_size, align_corners, scale)
    i0 = np.empty(out_size, np.int64)
    i1 = np.empty(out_size, np.int64)
    l0 = np.empty(out_size, dtype_like.dtype)
    l1 = np.empty(out_size, dtype_like.dtype)
    for o in range(out_size):
        a, b, wa, wb = _linear_taps(o, in_size, ratio, align_corners)
        i0[o], i1[o], l0[o], l1[o] = a, b, wa, wb
    return i0, i1, l0, l1


@njit(**_JIT)
def _bilinear_fwd(x, y, align_corners, scale_h, scale_w):  # pragma: no cover (jit)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    hi0, hi1, hl0, hl1 = _axis_taps(h, out_h, align_corners, scale_h, x)
    wi0, wi1, wl0, wl1 = _axis_taps(w, out_w, align_corners, scale_w, x)
    n_blocks = (out_h + _ROWS - 1) // _ROWS
    for blk in prange(planes * n_blocks):
        p = blk // n_blocks                  # blk = p * n_blocks + b: rows b*_ROWS ... of p
        row0 = (blk - p * n_blocks) * _ROWS
        tmp = np.empty(w, x.dtype)           # one blended input row, reused by the block
        for oh in range(row0, min(row0 + _ROWS, out_h)):
            h0, h1, a0, a1 = hi0[oh], hi1[oh], hl0[oh], hl1[oh]
            for j in range(w):               # vertical blend: contiguous, vectorises
                tmp[j] = a0 * x[p, h0, j] + a1 * x[p, h1, j]
            for ow in range(out_w):          # horizontal blend: two gathers per output
                y[p, oh, ow] = wl0[ow] * tmp[wi0[ow]] + wl1[ow] * tmp[wi1[ow]]


@njit(**_JIT)
def _bilinear_bwd(gy, gx, align_corners, scale_h, scale_w):  # pragma: no cover (jit)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    hi0, hi1, hl0, hl1 = _axis_taps(h, out_h, align_corners, scale_h, gx)
    wi0, wi1, wl0, wl1 = _axis_taps(w, out_w, align_corners, scale_w, gx)
    for p in prange(planes):                 # one thread owns plane p of gx: no race
        for oh in range(out_h):
            h0, h1, a0, a1 = hi0[oh], hi1[oh], hl0[oh], hl1[oh]
            for ow in range(out_w):
                w0, w1 = wi0[ow], wi1[ow]
                g = gy[p, oh, ow]
                gx[p, h0, w0] += a0 * wl0[ow] * g
                gx[p, h0, w1] += a0 * wl1[ow] * g
                gx[p, h1, w0] += a1 * wl0[ow] * g
                gx[p, h1, w1] += a1 * wl1[ow] * g


@njit(cache=True)
def _nearest_index(in_size, out_size, scale):  # pragma: no cover (jit)
    src = np.empty(out_size, np.int64)       # (out_size,) source index per destination
    for o in range(out_size):
        src[o] = _nearest_source(o, in_size, out_size, scale)
    return src


@njit(**_JIT)
def _nearest_fwd(x, y, scale_h, scale_w):  # pragma: no cover (jit)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    src_h = _nearest_index(h, out_h, scale_h)
    src_w = _nearest_index(w, out_w, scale_w)
    for r in prange(planes * out_h):
        p = r // out_h
        oh = r - p * out_h
        hh = src_h[oh]
        for ow in range(out_w):
            y[p, oh, ow] = x[p, hh, src_w[ow]]


@njit(**_JIT)
def _nearest_bwd(gy, gx, scale_h, scale_w):  # pragma: no cover (jit)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    src_h = _nearest_index(h, out_h, scale_h)
    src_w = _nearest_index(w, out_w, scale_w)
    for p in prange(planes):                 # one thread owns plane p of gx: no race
        for oh in range(out_h):
            hh = src_h[oh]
            for ow in range(out_w):
                gx[p, hh, src_w[ow]] += gy[p, oh, ow]


def _scale_or_zero(s):
    return 0.0 if s is None else float(s)


def bilinear_forward(x, size, align_corners, scales):
    """(N, C, H, W) -> (N, C, out_h, out_w) bilinear resize."""
    n, c, h, w = x.shape
    out_h, out_w = size
    y = np.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        _bilinear_fwd(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                      bool(align_corners), _scale_or_zero(scales[0]), _scale_or_zero(scales[1]))
    return y


def bilinear_backward(gy, x_shape, align_corners, scales):
    """gx (x_shape): each gy spread over its four source pixels with the forward weights."""
    n, c, h, w = x_shape
    gx = np.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        _bilinear_bwd(gy.reshape(n * c, gy.shape[2], gy.shape[3]), gx, bool(align_corners),
                      _scale_or_zero(scales[0]), _scale_or_zero(scales[1]))
    return gx.reshape(x_shape)


def nearest_forward(x, size, scales):
    """(N, C, H, W) -> (N, C, out_h, out_w): each output copies its nearest source pixel."""
    n, c, h, w = x.shape
    out_h, out_w = size
    y = np.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        _nearest_fwd(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                     _scale_or_zero(scales[0]), _scale_or_zero(scales[1]))
    return y


def nearest_backward(gy, x_shape, scales):
    """gx (x_shape): each gy added to the source pixel it copied."""
    n, c, h, w = x_shape
    gx = np.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        _nearest_bwd(gy.reshape(n * c, gy.shape[2], gy.shape[3]), gx,
                     _scale_or_zero(scales[0]), _scale_or_zero(scales[1]))
    return gx.reshape(x_shape)
