"""Pooling and unpooling on the CPU: Numba kernels, parallel over output rows or planes.

Same arithmetic and signatures as ``reference.py``; what differs is the loop layout:

* The forward kernels run ``prange`` over output rows ``r = (n*C + c) * out_h + oh`` (for
  avg_pool2d over blocks of 8 rows of one plane, each owning a buffer): every row is
  written by exactly one thread, and rows rather than planes keep all cores busy even for
  a single image with few channels.
* max_pool2d clips each window to the real input once (no padding test per tap) and
  updates its running max/argmax branch-free: on real data ``v > best`` is unpredictable,
  and a mispredicted branch costs more than two selects.
* The 2x2, stride-2 max pool without padding (VGG's, U-Net's, YOLO's: most max pools)
  has a kernel of its own, ``_max_pool_2x2_fwd``, with the four taps written out: the
  general kernel's loops of two trips each, around a data-dependent select, ran ~15x
  slower per output (4.5 ms against 0.3 ms for 128 planes of 64 x 64 on one thread).
* avg_pool2d is separable: per output row it first sums the window's input rows into a
  float64 column-sum buffer (a contiguous loop over the row), then adds ``kw`` column sums
  per output: ``kh + kw`` additions per output instead of ``kh * kw``.
* Backward passes that *scatter* (max_pool2d, avg_pool2d, adaptive_avg_pool2d: one output
  feeds several inputs, windows overlap) run ``prange`` over ``(n, c)`` planes and scatter
  serially inside a plane: a plane's gradient is owned by one thread, so there is no race
  and the summation order is fixed: the same bits on every run, whatever the thread count.
* max_unpool2d's backward is a pure gather (one read per output), parallel over rows.

Arrays arrive C-contiguous (the package ``__init__`` makes them so) and are viewed as
``(planes, H, W)``; only float32 and float64 specialisations get compiled.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from scratchvision.kernels.pool import shapes
from scratchvision.kernels.pool.shapes import PoolWindow, pool_output_hw, pool_window

_JIT = dict(parallel=True, cache=True, fastmath=False, nogil=True)
_ROWS = 8           # output rows per parallel task of avg_pool2d's forward
_avg_window = njit(cache=True)(shapes.avg_window)          # the scalar helpers of shapes.py,
_adaptive_start = njit(cache=True)(shapes.adaptive_start)  # compiled for the CPU
_adaptive_end = njit(cache=True)(shapes.adaptive_end)


# --------------------------------------------------------------------------- max_pool2d
@njit(**_JIT)
def _max_pool_fwd(x, y, idx, win: PoolWindow):  # pragma: no cover (jit)
    kh, kw, sy, sx, ph, pw, dy, dx = win
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for r in prange(planes * out_h):
        p = r // out_h                      # r = p * out_h + oh indexes one output row
        oh = r - p * out_h
        h0 = oh * sy - ph                   # first tap row (may lie in the top padding)
        i0 = 0
        while h0 + i0 * dy < 0:             # skip the taps that fall in the top padding
            i0 += 1
        i1 = kh
        while i1 > i0 and h0 + (i1 - 1) * dy >= h:   # ... and those in the bottom padding
            i1 -= 1
        for ow in range(out_w):
            w0 = ow * sx - pw
            j0 = 0
            while w0 + j0 * dx < 0:
                j0 += 1
            j1 = kw
            while j1 > j0 and w0 + (j1 - 1) * dx >= w:
                j1 -= 1
            best = -np.inf
            arg = (h0 + i0 * dy) * w + (w0 + j0 * dx)   # the first real tap, as in torch
            for i in range(i0, i1):
                hh = h0 + i * dy
                for j in range(j0, j1):
                    ww = w0 + j * dx
                    v = x[p, hh, ww]
                    # first max wins; a NaN wins (propagates). Bitwise | and two selects,
                    # not `if ... or ...`: branch-free, since on real data the comparison
                    # is unpredictable and a mispredicted branch costs more than the select
                    take = (v > best) | (v != v)
                    best = v if take else best
                    arg = hh * w + ww if take else arg
            y[p, oh, ow] = best
            idx[p, oh, ow] = arg


@njit(**_JIT)
def _scatter_add_planes(gy, idx, gx):  # pragma: no cover (jit)
    # gx[p].flat[idx[p, k]] += gy[p, k]: one thread owns a plane, serial inside (no race)
    for p in prange(gy.shape[0]):
        for k in range(gy.shape[1]):
            gx[p, idx[p, k]] += gy[p, k]


@njit(**_JIT)
def _max_pool_2x2_fwd(x, y, idx):  # pragma: no cover (jit)
    # windows [2 oh, 2 oh + 2) x [2 ow, 2 ow + 2), all inside the input; the taps in the
    # general kernel's order (a b / c d), the same first-max-wins and NaN rules
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for r in prange(planes * out_h):
        p = r // out_h
        oh = r - p * out_h
        top, bottom = x[p, 2 * oh], x[p, 2 * oh + 1]
        y_row, idx_row = y[p, oh], idx[p, oh]
        for ow in range(out_w):
            best, arg = top[2 * ow], 0
            for v, offset in ((top[2 * ow + 1], 1), (bottom[2 * ow], w),
                              (bottom[2 * ow + 1], w + 1)):
                take = (v > best) | (v != v)
                best = v if take else best
                arg = offset if take else arg
            y_row[ow] = best
            idx_row[ow] = 2 * oh * w + 2 * ow + arg


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(N, C, H, W) -> y (N, C, out_h, out_w) and int64 argmax indices ``h * W + w``."""
    n, c, h, w = x.shape
    out_h, out_w = pool_output_hw((h, w), kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, out_h, out_w), x.dtype)
    idx = np.empty((n, c, out_h, out_w), np.int64)
    whole_2x2 = (tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2)
                 and tuple(padding) == (0, 0) and tuple(dilation) == (1, 1)
                 and 2 * out_h <= h and 2 * out_w <= w)     # ceil_mode may add a half window
    if y.size and whole_2x2:
        _max_pool_2x2_fwd(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                          idx.reshape(n * c, out_h, out_w))
    elif y.size:
        _max_pool_fwd(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                      idx.reshape(n * c, out_h, out_w),
                      pool_window(kernel_size, stride, padding, dilation))
    return y, idx


def max_pool2d_backward(gy, indices, x_shape, kernel_size, stride, padding, dilation,
                        ceil_mode):
    """gx (x_shape): each gy element added at its argmax (window arguments unused here)."""
    n, c, h, w = x_shape
    gx = np.zeros((n * c, h * w), gy.dtype)
    if gy.size:
        _scatter_add_planes(gy.reshape(n * c, -1), indices.reshape(n * c, -1), gx)
    return gx.reshape(x_shape)


# --------------------------------------------------------------------------- avg_pool2d
@njit(**_JIT)
def _avg_pool_fwd(x, y, win: PoolWindow, count_include_pad, divisor):  # pragma: no cover
    kh, kw, sy, sx, ph, pw, _, _ = win          # avg pooling has no dilation
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    n_blocks = (out_h + _ROWS - 1) // _ROWS
    for blk in prange(planes * n_blocks):
        p = blk // n_blocks                 # blk = p * n_blocks + b: rows b*_ROWS ... of p
        row0 = (blk - p * n_blocks) * _ROWS
        col = np.empty(w, np.float64)       # column sums of the window's rows (float64)
        for oh in range(row0, min(row0 + _ROWS, out_h)):
            h0, h1, len_h = _avg_window(oh, sy, ph, kh, h, count_include_pad)
            col[:] = 0.0
            for hh in range(h0, h1):        # separable: sum the rows first (contiguous) ...
                for ww in range(w):
                    col[ww] += x[p, hh, ww]
            for ow in range(out_w):         # ... then each window's columns
                w0, w1, len_w = _avg_window(ow, sx, pw, kw, w, count_include_pad)
                total = 0.0
                for ww in range(w0, w1):
                    total += col[ww]
                y[p, oh, ow] = total / (divisor if divisor > 0 else len_h * len_w)


@njit(**_JIT)
def _avg_pool_bwd(gy, gx, win: PoolWindow, count_include_pad, divisor):  # pragma: no cover
    kh, kw, sy, sx, ph, pw, _, _ = win          # avg pooling has no dilation
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    for p in prange(planes):                # one thread owns plane p of gx: no race
        for oh in range(out_h):
            h0, h1, len_h = _avg_window(oh, sy, ph, kh, h, count_include_pad)
            for ow in range(out_w):
                w0, w1, len_w = _avg_window(ow, sx, pw, kw, w, count_include_pad)
                g = gy[p, oh, ow] / (divisor if divisor > 0 else len_h * len_w)
                for hh in range(h0, h1):
                    for ww in range(w0, w1):
                        gx[p, hh, ww] += g


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    """(N, C, H, W) -> (N, C, out_h, out_w) window means (see ``reference.py``)."""
    n, c, h, w = x.shape
    out_h, out_w = pool_output_hw((h, w), kernel_size, stride, padding, (1, 1), ceil_mode)
    y = np.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        _avg_pool_fwd(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                      pool_window(kernel_size, stride, padding), bool(count_include_pad),
                      int(divisor_override or 0))
    return y


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """gx (x_shape): each gy / divisor spread over the real input cells of its window."""
    n, c, h, w = x_shape
    gx = np.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        _avg_pool_bwd(gy.reshape(n * c, gy.shape[2], gy.shape[3]), gx,
                      pool_window(kernel_size, stride, padding), bool(count_include_pad),
                      int(divisor_override or 0))
    return gx.reshape(x_shape)


# ------------------------------------------------------------------ adaptive_avg_pool2d
@njit(**_JIT)
def _adaptive_fwd(x, y):  # pragma: no cover (jit)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for r in prange(planes * out_h):
        p = r // out_h                      # r = p * out_h + i indexes one output row
        i = r - p * out_h
        h0 = _adaptive_start(i, out_h, h)   # floor(i * H / out_h)
        h1 = _adaptive_end(i, out_h, h)     # ceil((i + 1) * H / out_h)
        for j in range(out_w):
            w0 = _adaptive_start(j, out_w, w)
            w1 = _adaptive_end(j, out_w, w)
            total = 0.0
            for hh in range(h0, h1):
                for ww in range(w0, w1):
                    total += x[p, hh, ww]
            y[p, i, j] = total / ((h1 - h0) * (w1 - w0))


@njit(**_JIT)
def _adaptive_bwd(gy, gx):  # pragma: no cover (jit)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    for p in prange(planes):                # one thread owns plane p of gx (bins overlap)
        for i in range(out_h):
            h0 = _adaptive_start(i, out_h, h)
            h1 = _adaptive_end(i, out_h, h)
            for j in range(out_w):
                w0 = _adaptive_start(j, out_w, w)
                w1 = _adaptive_end(j, out_w, w)
                g = gy[p, i, j] / ((h1 - h0) * (w1 - w0))
                for hh in range(h0, h1):
                    for ww in range(w0, w1):
                        gx[p, hh, ww] += g


def adaptive_avg_pool2d_forward(x, output_size):
    """(N, C, H, W) -> (N, C, oh, ow): bin (i, j) averages its rows x columns."""
    n, c, h, w = x.shape
    out_h, out_w = output_size
    y = np.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        _adaptive_fwd(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w))
    return y


def adaptive_avg_pool2d_backward(gy, x_shape):
    """gx (x_shape): each gy / bin area spread over its bin."""
    n, c, h, w = x_shape
    gx = np.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        _adaptive_bwd(gy.reshape(n * c, gy.shape[2], gy.shape[3]), gx)
    return gx.reshape(x_shape)


# -------------------------------------------------------------------------- max_unpool2d
@njit(**_JIT)
def _unpool_fwd(x, idx, y):  # pragma: no cover (jit)
    # y[p].flat[idx[p, k]] = x[p, k]; serial inside a plane so duplicates: last write wins
    for p in prange(x.shape[0]):
        for k in range(x.shape[1]):
            y[p, idx[p, k]] = x[p, k]


@njit(**_JIT)
def _gather_planes(gy, idx, gx):  # pragma: no cover (jit)
    # gx[p, k] = gy[p].flat[idx[p, k]]: a pure gather, each output written once
    for p in prange(gx.shape[0]):
        for k in range(gx.shape[1]):
            gx[p, k] = gy[p, idx[p, k]]


def max_unpool2d_forward(x, indices, output_size):
    """x, indices (N, C, H, W) -> y (N, C, out_h, out_w): zeros with x written at indices."""
    n, c = x.shape[:2]
    out_h, out_w = output_size
    y = np.zeros((n * c, out_h * out_w), x.dtype)
    if x.size:
        _unpool_fwd(x.reshape(n * c, -1), indices.reshape(n * c, -1), y)
    return y.reshape(n, c, out_h, out_w)


def max_unpool2d_backward(gy, indices):
    """gx (indices.shape): gx[n, c, i, j] = gy[n, c].flat[indices[n, c, i, j]]."""
    n, c = gy.shape[:2]
    gx = np.empty(indices.shape, gy.dtype)
    if gx.size:
        _gather_planes(gy.reshape(n * c, -1), indices.reshape(n * c, -1), gx.reshape(n * c, -1))
    return gx
