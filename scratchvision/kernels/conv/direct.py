"""Direct convolution in Numba: loops over taps, no column matrix (for grouped/depthwise).

The forward pass is the reference formula executed as compiled loops, one output plane
``(n, o)`` per parallel task::

    for each input channel c of o's group, each tap (i, j), the weight w = W[o, c, i, j]:
        y[n, o, oy, ox] += w * x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
        over the range of (oy, ox) whose input pixel is inside the image

The valid range per tap is computed once (``valid_range``), so the innermost loop over
``ox`` is branch-free (and vectorisable at stride 1) and reads one input row.

**Cost.** The same ``2 * N * Cout * Cg*kh*kw * oh*ow`` FLOPs as im2col, but as
multiply-adds on planes rather than a GEMM, so it runs at memory speed, not at BLAS peak.
That is the right trade when ``Cg`` is tiny: a depthwise layer (``Cg = 1``) does only
``kh*kw`` multiply-adds per output, and im2col would first write ``kh*kw`` copies of the
input (9x for 3x3) just to feed a GEMM whose inner dimension is 9. Memory traffic here: each
output plane is read and written ``Cg*kh*kw`` times from cache and the input is read
``Cog*kh*kw`` times, with no scratch buffer at all.

**3x3, stride 1** (the depthwise layers of MobileNet-style blocks, most grouped layers) has a
forward kernel of its own, ``_forward_3x3``: per output plane the input plane is copied
once into a zero-padded buffer, and each output is the nine products summed in registers
(``y[oy, ox] = sum w[i, j] * pad[oy + i*dh, ox + j*dw]``) in one vectorised pass over the
row, instead of nine read-modify-write passes over the output plane.

**Backward.** The input gradient is parallel over input planes ``(n, c)`` (each thread
scatters ``w * gy`` onto its own plane through the same index map, so the sums are
deterministic); the weight gradient is parallel over weights ``(o, c)``: each thread owns
its ``kh*kw`` sums over the batch and the output pixels, kept as one float64 partial sum
per output column (so the row products vectorise without reassociating anything) and
reduced in a fixed order at the end.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from scratchvision.kernels.conv._common import ConvGeometry, conv_geometry, conv_output_size, \
    valid_range


@njit(parallel=True, cache=True)
def _forward(x, W, g: ConvGeometry, groups, y):
    """y (N, Co, oh, ow) = direct convolution of x with W (no bias)."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    N, C, H, Wd = x.shape
    Co, Cg = W.shape[0], W.shape[1]
    Cog = Co // groups
    xf = x.reshape(N * C, H * Wd)               # planes as flat rows: no per-row views
    yf = y.reshape(N * Co, oh * ow)
    for t in prange(N * Co):
        # t -> (n, o): one output plane
        n = t // Co
        o = t % Co
        grp = o // Cog
        out = yf[t]
        out[:] = 0
        for cl in range(Cg):
            src = xf[n * C + grp * Cg + cl]      # input channel: local index cl in group grp
            for i in range(kh):
                oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
                for j in range(kw):
                    ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
                    w = W[o, cl, i, j]
                    m = uint64(ox_hi - ox_lo)
                    for oy in range(oy_lo, oy_hi):
                        # flat offsets of output (oy, ox_lo) and of the input pixel it reads,
                        # (oy*sh - ph + i*dh, ox_lo*sw - pw + j*dw); unsigned, so Numba adds
                        # no negative-index check and the unit-stride loop vectorises
                        db = uint64(oy * ow + ox_lo)
                        sb = uint64((oy * sh - ph + i * dh) * Wd + ox_lo * sw + j * dw - pw)
                        if sw == 1:
                            for q in range(m):
                                out[db + q] += w * src[sb + q]
                        else:
                            ss = uint64(sw)
                            for q in range(m):
                                out[db + q] += w * src[sb + q * ss]
    return y


@njit(parallel=True, cache=True)
def _forward_3x3(x, W, ph, pw, dh, dw, groups, y):
    """y (N, Co, oh, ow) = 3x3 stride-1 convolution of x with W (no bias): the nine taps
    summed in registers, one output row at a time, from a zero-padded copy of the plane."""
    N, C, H, Wd = x.shape
    Co, Cg = W.shape[0], W.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    Cog = Co // groups
    for t in prange(N * Co):
        n = t // Co
        o = t % Co
        grp = o // Cog
        # the input plane inside a border of ph rows and pw columns of zeros: output (oy, ox)
        # reads padded rows oy, oy + dh, oy + 2 dh at columns ox, ox + dw, ox + 2 dw, all
        # inside it (oh = H + 2 ph - 2 dh), so the row loop has no bounds test and vectorises
        pad = np.zeros((H + 2 * ph, Wd + 2 * pw), x.dtype)
        out = y[n, o]
        for cl in range(Cg):
            pad[ph:ph + H, pw:pw + Wd] = x[n, grp * Cg + cl]
            k = W[o, cl]
            w0, w1, w2 = k[0, 0], k[0, 1], k[0, 2]
            w3, w4, w5 = k[1, 0], k[1, 1], k[1, 2]
            w6, w7, w8 = k[2, 0], k[2, 1], k[2, 2]
            d1, d2 = uint64(dw), uint64(2 * dw)
            for oy in range(oh):
                r0, r1, r2 = pad[oy], pad[oy + dh], pad[oy + 2 * dh]
                row = out[oy]
                for q in range(uint64(ow)):
                    # the taps in the reference's order (row i, then column j)
                    acc = (w0 * r0[q] + w1 * r0[q + d1] + w2 * r0[q + d2]
                           + w3 * r1[q] + w4 * r1[q + d1] + w5 * r1[q + d2]
                           + w6 * r2[q] + w7 * r2[q + d1] + w8 * r2[q + d2])
                    row[q] = acc if cl == 0 else row[q] + acc
    return y


@njit(parallel=True, cache=True)
def _backward_input(gy, W, g: ConvGeometry, groups, gx):
    """gx (N, C, H, W): each input plane gathers w * gy from every output it fed."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    N, C, H, Wd = gx.shape
    Co, Cg = W.shape[0], W.shape[1]
    Cog = Co // groups
    gyf = gy.reshape(N * Co, oh * ow)
    gxf = gx.reshape(N * C, H * Wd)
    for t in prange(N * C):
        # t -> (n, c): one input plane, owned by one thread
        n = t // C
        c = t % C
        grp = c // Cg
        cl = c % Cg
        plane = gxf[t]
        plane[:] = 0
        for ol in range(Cog):
            o = grp * Cog + ol                  # every output channel of c's group read c
            src = gyf[n * Co + o]
            for i in range(kh):
                oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
                for j in range(kw):
                    ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
                    w = W[o, cl, i, j]
                    m = uint64(ox_hi - ox_lo)
                    for oy in range(oy_lo, oy_hi):
                        # output (oy, ox) sends w * gy back to the input pixel it read
                        sb = uint64(oy * ow + ox_lo)
                        db = uint64((oy * sh - ph + i * dh) * Wd + ox_lo * sw + j * dw - pw)
                        if sw == 1:
                            for q in range(m):
                                plane[db + q] += w * src[sb + q]
                        else:
                            ss = uint64(sw)
                            for q in range(m):
                                plane[db + q * ss] += w * src[sb + q]
    return gx


@njit(parallel=True, cache=True)
def _backward_weight(gy, x, g: ConvGeometry, groups, gW):
    """gW (Co, Cg, kh, kw): each weight sums gy * x over the batch and the output pixels."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    N, C, H, Wd = x.shape
    Co, Cg = gW.shape[0], gW.shape[1]
    Cog = Co // groups
    xf = x.reshape(N * C, H * Wd)
    gyf = gy.reshape(N * Co, oh * ow)
    for t in prange(Co * Cg):
        # t -> (o, cl): the kh*kw weights linking output channel o and input channel cl
        o = t // Cg
        cl = t % Cg
        c = (o // Cog) * Cg + cl
        # one partial sum per output column: the row products add elementwise (vectorised,
        # no reassociation), and the lanes are summed once at the end in a fixed order
        lanes = np.empty(ow, np.float64)
        for i in range(kh):
            oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
            for j in range(kw):
                ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
                m = uint64(ox_hi - ox_lo)
                lanes[:] = 0.0
                for n in range(N):
                    src = xf[n * C + c]
                    gyo = gyf[n * Co + o]
                    for oy in range(oy_lo, oy_hi):
                        gb = uint64(oy * ow + ox_lo)
                        sb = uint64((oy * sh - ph + i * dh) * Wd + ox_lo * sw + j * dw - pw)
                        if sw == 1:
                            for q in range(m):
                                lanes[q] += gyo[gb + q] * src[sb + q]
                        else:
                            ss = uint64(sw)
                            for q in range(m):
                                lanes[q] += gyo[gb + q] * src[sb + q * ss]
                acc = 0.0
                for q in range(m):
                    acc += lanes[q]
                gW[o, cl, i, j] = acc
    return gW


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by direct loops, parallel over output planes."""
    oh = conv_output_size(x.shape[2], W.shape[2], stride[0], padding[0], dilation[0])
    ow = conv_output_size(x.shape[3], W.shape[3], stride[1], padding[1], dilation[1])
    y = np.empty((x.shape[0], W.shape[0], oh, ow), x.dtype)
    if tuple(W.shape[2:]) == (3, 3) and tuple(stride) == (1, 1):
        _forward_3x3(x, W, padding[0], padding[1], dilation[0], dilation[1], groups, y)
    else:
        _forward(x, W, conv_geometry(W.shape[2:], stride, padding, dilation, (oh, ow)),
                 groups, y)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx by direct loops, parallel over input planes."""
    gx = np.empty(x_shape, gy.dtype)
    g = conv_geometry(W.shape[2:], stride, padding, dilation, gy.shape[2:])
    return _backward_input(gy, W, g, groups, gx)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW by direct loops, parallel over weights."""
    gW = np.empty(W_shape, x.dtype)
    g = conv_geometry(W_shape[2:], stride, padding, dilation, gy.shape[2:])
    return _backward_weight(gy, x, g, groups, gW)
