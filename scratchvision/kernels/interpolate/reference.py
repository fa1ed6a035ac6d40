"""Bilinear and nearest resizing, the textbook version: plain loops, the test oracle.

Each output pixel ``(n, c, oh, ow)`` reads its source pixels from the same ``(n, c)``
plane; the coordinate rules (``align_corners``, half-pixel centres, torch's float32
nearest) live in ``weights.py`` and are shared with the fast versions.

Bilinear output = the two-by-two blend of the row taps ``h0, h1`` (weights ``a0, a1``) and
the column taps ``w0, w1`` (weights ``b0, b1``)::

    y = a0 * (b0 * x[h0, w0] + b1 * x[h0, w1]) + a1 * (b0 * x[h1, w0] + b1 * x[h1, w1])

so its backward adds ``a_i * b_j * gy`` to ``gx[h_i, w_j]``: a scatter, since one source
pixel feeds many outputs when upsampling. Here (and in ``cpu.py``) the scatter runs
serially inside a plane, which fixes the summation order and makes it deterministic.

Nearest copies ``x[src(oh), src(ow)]``; its backward adds ``gy`` to that source pixel.

``scales`` is ``(scale_h, scale_w)``: the user's scale factors as torch passes them to its
kernels (``None`` or 0 when the size was given or ``recompute_scale_factor=True``).
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.interpolate.weights import linear_scale, linear_taps, nearest_source


def _scale_or_zero(s):
    return 0.0 if s is None else float(s)


def bilinear_forward(x, size, align_corners, scales):
    """(N, C, H, W) -> (N, C, out_h, out_w) bilinear resize."""
    n, c, h, w = x.shape
    out_h, out_w = size
    rh = linear_scale(h, out_h, align_corners, _scale_or_zero(scales[0]))
    rw = linear_scale(w, out_w, align_corners, _scale_or_zero(scales[1]))
    y = np.empty((n, c, out_h, out_w), x.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(out_h):
                h0, h1, a0, a1 = linear_taps(oh, h, rh, align_corners)
                for ow in range(out_w):
                    w0, w1, b0, b1 = linear_taps(ow, w, rw, align_corners)
                    y[b, ch, oh, ow] = (a0 * (b0 * x[b, ch, h0, w0] + b1 * x[b, ch, h0, w1])
                                        + a1 * (b0 * x[b, ch, h1, w0] + b1 * x[b, ch, h1, w1]))
    return y


def bilinear_backward(gy, x_shape, align_corners, scales):
    """gx (x_shape): each gy spread over its four source pixels with the forward weights."""
    n, c, h, w = x_shape
    out_h, out_w = gy.shape[2], gy.shape[3]
    rh = linear_scale(h, out_h, align_corners, _scale_or_zero(scales[0]))
    rw = linear_scale(w, out_w, align_corners, _scale_or_zero(scales[1]))
    gx = np.zeros(x_shape, gy.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(out_h):
                h0, h1, a0, a1 = linear_taps(oh, h, rh, align_corners)
                for ow in range(out_w):
                    w0, w1, b0, b1 = linear_taps(ow, w, rw, align_corners)
                    g = float(gy[b, ch, oh, ow])
                    gx[b, ch, h0, w0] += a0 * b0 * g      # h1 == h0 at the last row: both
                    gx[b, ch, h0, w1] += a0 * b1 * g      # terms land on the same pixel
                    gx[b, ch, h1, w0] += a1 * b0 * g
                    gx[b, ch, h1, w1] += a1 * b1 * g
    return gx


def nearest_forward(x, size, scales):
    """(N, C, H, W) -> (N, C, out_h, out_w): each output copies its nearest source pixel."""
    n, c, h, w = x.shape
    out_h, out_w = size
    sh, sw = _scale_or_zero(scales[0]), _scale_or_zero(scales[1])
    y = np.empty((n, c, out_h, out_w), x.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(out_h):
                hh = nearest_source(oh, h, out_h, sh)
                for ow in range(out_w):
                    y[b, ch, oh, ow] = x[b, ch, hh, nearest_source(ow, w, out_w, sw)]
    return y


def nearest_backward(gy, x_shape, scales):
    """gx (x_shape): each gy added to the source pixel it copied."""
    n, c, h, w = x_shape
    out_h, out_w = gy.shape[2], gy.shape[3]
    sh, sw = _scale_or_zero(scales[0]), _scale_or_zero(scales[1])
    gx = np.zeros(x_shape, gy.dtype)
    for b in range(n):
        for ch in range(c):
            for oh in range(out_h):
                hh = nearest_source(oh, h, out_h, sh)
                for ow in range(out_w):
                    gx[b, ch, hh, nearest_source(ow, w, out_w, sw)] += gy[b, ch, oh, ow]
    return gx
