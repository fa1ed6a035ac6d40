"""Pooling and unpooling, the textbook version: plain loops, the specification and test oracle.

Every function works on NCHW arrays and treats each ``(n, c)`` plane on its own; the loops
visit one output element ``(n, c, oh, ow)`` at a time, in the order the fast versions split
their flat output index. Input row of tap ``i`` of output row ``oh``::

    h = oh * sy - ph + i * dy          # padding rows (h < 0 or h >= height) are skipped

Conventions (all torch's):

* **max_pool2d** returns the maximum and its *flat index within the plane*, ``h * width + w``
  (what ``return_indices=True`` gives and ``max_unpool2d`` consumes). Ties keep the first
  tap in row-major window order (``>`` not ``>=``); a NaN always wins (``or v != v``), so NaN
  propagates like in torch. Padding never wins: it is -inf, i.e. skipped.
* **max_pool2d backward** routes each output gradient to its argmax:
  ``gx[n, c].flat[idx] += gy``. Overlapping windows can share an argmax, hence ``+=``.
* **avg_pool2d** divides the window sum by (``divisor_override`` when given, else)
  ``count_include_pad``: the window clipped to the *padded* input
  (``min(h0 + kh, height + ph) - h0``, so ceil-mode overhang past the padding is not
  counted); otherwise the window clipped to the real input.
* **adaptive_avg_pool2d** bin ``i`` averages rows ``floor(i*H/oh) .. ceil((i+1)*H/oh) - 1``.
* **max_unpool2d** writes ``y[n, c].flat[idx] = x`` into zeros (last write wins on duplicate
  indices, as in torch's serial CPU loop); its backward gathers ``gx = gy[n, c].flat[idx]``.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision.kernels.pool.shapes import (adaptive_end, adaptive_start, avg_window,
                                               pool_output_hw)


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(N, C, H, W) -> y (N, C, out_h, out_w) and int64 argmax indices ``h * W + w``."""
    n, c, h, w = x.shape
    (kh, kw), (sy, sx), (ph, pw), (dy, dx) = kernel_size, stride, padding, dilation
    out_h, out_w = pool_output_hw((h, w), kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, out_h, out_w), x.dtype)
    idx = np.empty((n, c, out_h, out_w), np.int64)
    for b in range(n):
        for ch in range(c):
            for oh in range(out_h):
                for ow in range(out_w):
                    best, arg = -math.inf, -1
                    for i in range(kh):
                        hh = oh * sy - ph + i * dy
                        if hh < 0 or hh >= h:
                            continue                      # padding row
                        for j in range(kw):
                            ww = ow * sx - pw + j * dx
                            if ww < 0 or ww >= w:
                                continue                  # padding column
                            v = x[b, ch, hh, ww]
                            if v > best or v != v or arg < 0:   # first max wins; NaN wins
                                best, arg = v, hh * w + ww
                    y[b, ch, oh, ow] = best
                    idx[b, ch, oh, ow] = arg
    return y, idx


def max_pool2d_backward(gy, indices, x_shape, kernel_size, stride, padding, dilation,
                        ceil_mode):
    """gx (x_shape): each gy element added at its argmax (window arguments unused here)."""
    n, c, h, w = x_shape
    gx = np.zeros((n, c, h * w), gy.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(gy.shape[2]):
                for ow in range(gy.shape[3]):
                    gx[b, ch, indices[b, ch, oh, ow]] += gy[b, ch, oh, ow]
    return gx.reshape(x_shape)


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    """(N, C, H, W) -> (N, C, out_h, out_w) window means (see the module docstring)."""
    n, c, h, w = x.shape
    (kh, kw), (sy, sx), (ph, pw) = kernel_size, stride, padding
    out_h, out_w = pool_output_hw((h, w), kernel_size, stride, padding, (1, 1), ceil_mode)
    y = np.empty((n, c, out_h, out_w), x.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(out_h):
                h0, h1, ch_len = avg_window(oh, sy, ph, kh, h, count_include_pad)
                for ow in range(out_w):
                    w0, w1, cw_len = avg_window(ow, sx, pw, kw, w, count_include_pad)
                    div = divisor_override if divisor_override else ch_len * cw_len
                    total = 0.0
                    for hh in range(h0, h1):
                        for ww in range(w0, w1):
                            total += float(x[b, ch, hh, ww])  # float64 accumulator
                    y[b, ch, oh, ow] = total / div
    return y


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """gx (x_shape): each gy / divisor spread over the real input cells of its window."""
    n, c, h, w = x_shape
    (kh, kw), (sy, sx), (ph, pw) = kernel_size, stride, padding
    gx = np.zeros(x_shape, gy.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(gy.shape[2]):
                h0, h1, ch_len = avg_window(oh, sy, ph, kh, h, count_include_pad)
                for ow in range(gy.shape[3]):
                    w0, w1, cw_len = avg_window(ow, sx, pw, kw, w, count_include_pad)
                    div = divisor_override if divisor_override else ch_len * cw_len
                    for hh in range(h0, h1):
                        for ww in range(w0, w1):
                            gx[b, ch, hh, ww] += gy[b, ch, oh, ow] / div
    return gx


def adaptive_avg_pool2d_forward(x, output_size):
    """(N, C, H, W) -> (N, C, oh, ow): bin (i, j) averages its rows x columns (see above)."""
    n, c, h, w = x.shape
    out_h, out_w = output_size
    y = np.empty((n, c, out_h, out_w), x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(out_h):
                h0, h1 = adaptive_start(i, out_h, h), adaptive_end(i, out_h, h)
                for j in range(out_w):
                    w0, w1 = adaptive_start(j, out_w, w), adaptive_end(j, out_w, w)
                    total = 0.0
                    for hh in range(h0, h1):
                        for ww in range(w0, w1):
                            total += float(x[b, ch, hh, ww])  # float64 accumulator
                    y[b, ch, i, j] = total / ((h1 - h0) * (w1 - w0))
    return y


def adaptive_avg_pool2d_backward(gy, x_shape):
    """gx (x_shape): each gy / bin area spread over its bin."""
    n, c, h, w = x_shape
    out_h, out_w = gy.shape[2], gy.shape[3]
    gx = np.zeros(x_shape, gy.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(out_h):
                h0, h1 = adaptive_start(i, out_h, h), adaptive_end(i, out_h, h)
                for j in range(out_w):
                    w0, w1 = adaptive_start(j, out_w, w), adaptive_end(j, out_w, w)
                    g = gy[b, ch, i, j] / ((h1 - h0) * (w1 - w0))
                    for hh in range(h0, h1):
                        for ww in range(w0, w1):
                            gx[b, ch, hh, ww] += g
    return gx


def max_unpool2d_forward(x, indices, output_size):
    """x, indices (N, C, H, W) -> y (N, C, out_h, out_w): zeros with x written at indices."""
    n, c = x.shape[:2]
    out_h, out_w = output_size
    y = np.zeros((n, c, out_h * out_w), x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    y[b, ch, indices[b, ch, i, j]] = x[b, ch, i, j]
    return y.reshape(n, c, out_h, out_w)


def max_unpool2d_backward(gy, indices):
    """gx (indices.shape): gx[n, c, i, j] = gy[n, c].flat[indices[n, c, i, j]]."""
    n, c = gy.shape[:2]
    flat = gy.reshape(n, c, gy.shape[2] * gy.shape[3])
    gx = np.empty(indices.shape, gy.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(indices.shape[2]):
                for j in range(indices.shape[3]):
                    gx[b, ch, i, j] = flat[b, ch, indices[b, ch, i, j]]
    return gx
