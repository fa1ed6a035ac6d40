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
    _forward(x, W, conv_geometry(W.shape[2:], stride, padding, dilation, (oh, ow)), groups, y)
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
