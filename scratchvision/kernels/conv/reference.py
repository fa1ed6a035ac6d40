"""Convolution, the textbook version: a sum over kernel taps. The specification and oracle.

Forward (cross-correlation, as every deep-learning library defines "convolution")::

    y[n, o, oy, ox] = b[o] + sum_{c in group(o)} sum_{i < kh} sum_{j < kw}
                      W[o, c - g*Cg, i, j] * xpad[n, c, oy*sh + i*dh, ox*sw + j*dw]

with ``xpad`` the input padded by ``ph`` rows and ``pw`` columns of zeros on each side,
``G = groups``, ``Cg = C / G`` input and ``Cog = Cout / G`` output channels per group, and
``g = o // Cog`` the group of output channel ``o``. Output size per axis:
``(H + 2*ph - dh*(kh-1) - 1) // sh + 1``.

Here the sum over ``(i, j)`` is a Python loop. For one tap, the input pixels it reads for
all outputs form the strided slice ``xpad[..., i*dh : i*dh + sh*(oh-1) + 1 : sh, ...]``, an
``(N, Cg, oh, ow)`` block, and the channel sum is one ``einsum`` with ``W[..., i, j]``.

The two backward passes reverse the data flow of the same slices:

* input gradient: each tap scatters ``W[..., i, j]^T gy`` back onto the slice it read
  (``+=`` into a zero ``gxpad``), then the padding is cropped off;
* weight gradient: ``gW[o, c, i, j] = sum_{n, oy, ox} gy[n, o, oy, ox] * slice_ij[n, c, oy, ox]``.

``conv_transpose2d_forward`` is written here directly from its own definition (each input
pixel scatters a weighted copy of the kernel into the output, at ``stride`` spacing), so the
tests can check that the fast path, which computes it as conv2d's input gradient, agrees.
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.conv._common import conv_output_size, conv_transpose_output_size


def _tap_slice(i: int, j: int, oh: int, ow: int, stride, dilation) -> tuple:
    """Rows/columns of the padded input that tap (i, j) reads for all outputs."""
    sh, sw = stride
    dh, dw = dilation
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y (N, Cout, oh, ow) from x (N, C, H, W), W (Cout, C/groups, kh, kw), b (Cout,) or None."""
    N, C, H, Wd = x.shape
    Co, Cg, kh, kw = W.shape
    ph, pw = padding
    oh = conv_output_size(H, kh, stride[0], ph, dilation[0])
    ow = conv_output_size(Wd, kw, stride[1], pw, dilation[1])
    Cog = Co // groups
    xpad = np.zeros((N, C, H + 2 * ph, Wd + 2 * pw), x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + Wd] = x
    y = np.zeros((N, Co, oh, ow), x.dtype)
    for g in range(groups):
        cin, cout = slice(g * Cg, (g + 1) * Cg), slice(g * Cog, (g + 1) * Cog)
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap_slice(i, j, oh, ow, stride, dilation)
                patch = xpad[:, cin, rows, cols]                          # (N, Cg, oh, ow)
                y[:, cout] += np.einsum("nchw,oc->nohw", patch, W[cout, :, i, j])
    if b is not None:
        y += b.reshape(1, Co, 1, 1)
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx (x_shape) = d(sum(gy * y)) / dx: every tap scatters W^T gy onto the pixels it read."""
    N, C, H, Wd = x_shape
    Co, Cg, kh, kw = W.shape
    ph, pw = padding
    oh, ow = gy.shape[2], gy.shape[3]
    Cog = Co // groups
    gxpad = np.zeros((N, C, H + 2 * ph, Wd + 2 * pw), gy.dtype)
    for g in range(groups):
        cin, cout = slice(g * Cg, (g + 1) * Cg), slice(g * Cog, (g + 1) * Cog)
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap_slice(i, j, oh, ow, stride, dilation)
                gxpad[:, cin, rows, cols] += np.einsum("nohw,oc->nchw", gy[:, cout],
                                                       W[cout, :, i, j])
    return gxpad[:, :, ph:ph + H, pw:pw + Wd].copy()


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW (W_shape): correlation of the input slices each tap read with the output gradient."""
    N, C, H, Wd = x.shape
    Co, Cg, kh, kw = W_shape
    ph, pw = padding
    oh, ow = gy.shape[2], gy.shape[3]
    Cog = Co // groups
    xpad = np.zeros((N, C, H + 2 * ph, Wd + 2 * pw), x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + Wd] = x
    gW = np.zeros(W_shape, x.dtype)
    for g in range(groups):
        cin, cout = slice(g * Cg, (g + 1) * Cg), slice(g * Cog, (g + 1) * Cog)
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap_slice(i, j, oh, ow, stride, dilation)
                gW[cout, :, i, j] = np.einsum("nohw,nchw->oc", gy[:, cout],
                                              xpad[:, cin, rows, cols])
    return gW


def conv_transpose2d_forward(x, W, b, stride, padding, output_padding, groups, dilation):
    """y (N, Cout, Ho, Wo) from x (N, Cin, H, W), W (Cin, Cout/groups, kh, kw), by scattering.

    Input pixel ``(iy, ix)`` adds ``x[n, c, iy, ix] * W[c, o, i, j]`` to the full output at
    ``(iy*sh + i*dh, ix*sw + j*dw)``; the full output is then cropped by ``padding`` on both
    sides (``output_padding`` extra rows/columns stay at the end).
    """
    N, Ci, H, Wd = x.shape
    _, Cog, kh, kw = W.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho = conv_transpose_output_size(H, kh, sh, ph, output_padding[0], dh)
    Wo = conv_transpose_output_size(Wd, kw, sw, pw, output_padding[1], dw)
    Cg = Ci // groups
    full = np.zeros((N, Cog * groups, Ho + 2 * ph, Wo + 2 * pw), x.dtype)
    for g in range(groups):
        cin, cout = slice(g * Cg, (g + 1) * Cg), slice(g * Cog, (g + 1) * Cog)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (H - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (Wd - 1) + 1, sw)
                full[:, cout, rows, cols] += np.einsum("nchw,co->nohw", x[:, cin],
                                                       W[cin, :, i, j])
    y = full[:, :, ph:ph + Ho, pw:pw + Wo].copy()
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y
