"""Winograd convolution F(2x2, 3x3) for 3x3, stride-1, dilation-1 layers (Lavin & Gray 2016).

A 2x2 block of outputs of a 3x3 convolution depends on a 4x4 tile ``d`` of the padded
input. Winograd's minimal filtering algorithm computes it with 16 multiplications instead
of 36, in transformed coordinates::

    Y (2x2) = A^T [ (G g G^T) * (B^T d B) ] A          (* is elementwise)

    B^T = [[1, 0,-1, 0],   G = [[1,   0,   0 ],   A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],        [1/2, 1/2, 1/2],          [0, 1,-1,-1]]
           [0,-1, 1, 0],        [1/2,-1/2, 1/2],
           [0, 1, 0,-1]]        [0,   0,   1 ]]

Summed over the input channels, the elementwise product at each of the 16 transformed
positions ``xi`` becomes a matrix product over channels, so the whole layer is 16 GEMMs
(per group)::

    U[xi] (Cout/G, Cg)  = filter transform G g G^T, position xi, of every (o, c) filter
    V[xi] (Cg, N*T)     = input transform B^T d B, position xi, of every (c, tile)
    M[xi]               = U[xi] @ V[xi]                 (Cout/G, N*T)
    y tile              = A^T M[., o, tile] A           (the output transform)

with ``T = ceil(oh/2) * ceil(ow/2)`` tiles per image (tiles past the image edge read the
zero padding and their extra outputs are dropped).

**Cost.** GEMM FLOPs ``2 * 16 * Cout * Cg * N*T`` ~= ``2 * 4 * Cout*Cg * N*oh*ow``, i.e.
2.25x fewer than direct/im2col (``2 * 9 * ...``). The transforms add about
``(C + Cout) * N*T * 40`` additions, which is small when channels are many. Memory
traffic: ``V`` holds ``16/4 = 4`` values per input pixel (vs 9 for im2col's column matrix)
and ``M`` 4 per output pixel; both are written once and read once. The GEMMs have inner
dimension ``Cg`` (not ``9*Cg`` as in im2col), so they run further from BLAS peak when
channels are few: Winograd pays off for wide layers (see the dispatch rule in
``cpu.py``). Scratch buffers are chunked over the batch under the im2col workspace cap.

**Backward.** The input gradient of a 3x3 stride-1 convolution is itself a 3x3 stride-1
convolution of ``gy`` with the filters flipped and their in/out channels swapped, padded
by ``2 - padding`` (cropping ``gy`` instead when that is negative), so it runs through the
same Winograd forward. The weight gradient would need F(3x3, 2x2) transforms of ``gy``;
it is taken from ``im2col`` instead.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from scratchvision.kernels import gemm
from scratchvision.kernels.conv import im2col as _im2col
from scratchvision.kernels.conv._common import conv_output_size
from scratchvision.validation import check_limit

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


@njit(parallel=True, cache=True)
def _input_transform(x, ph, pw, th, tw, V):
    """V[xi, c, n*T + t] = (B^T d B)[xi] for the 4x4 input tile d of tile t of image n."""
    N, C, H, Wd = x.shape
    T = th * tw
    for task in prange(N * C):
        # task -> (n, c): one input plane, all its tiles
        n = task // C
        c = task % C
        # the zero-padded plane, large enough for every tile: tile (ty, tx) covers padded
        # rows 2ty .. 2ty+3 and columns 2tx .. 2tx+3 (input row = padded row - ph)
        pad = np.zeros((2 * th + 2, 2 * tw + 2), x.dtype)
        for iy in range(min(H, 2 * th + 2 - ph)):
            for ix in range(min(Wd, 2 * tw + 2 - pw)):
                pad[iy + ph, ix + pw] = x[n, c, iy, ix]
        t = np.empty((4, 4), x.dtype)
        v = np.empty((16, T), x.dtype)             # this plane's 16 transformed rows
        for ty in range(th):
            for tx in range(tw):
                col = ty * tw + tx
                for s in range(4):                 # t = B^T d: combine rows, per column
                    d0 = pad[2 * ty, 2 * tx + s]
                    d1 = pad[2 * ty + 1, 2 * tx + s]
                    d2 = pad[2 * ty + 2, 2 * tx + s]
                    d3 = pad[2 * ty + 3, 2 * tx + s]
                    t[0, s] = d0 - d2
                    t[1, s] = d1 + d2
                    t[2, s] = d2 - d1
                    t[3, s] = d1 - d3
                for r in range(4):                 # (B^T d) B: combine columns, per row
                    v[4 * r + 0, col] = t[r, 0] - t[r, 2]
                    v[4 * r + 1, col] = t[r, 1] + t[r, 2]
                    v[4 * r + 2, col] = t[r, 2] - t[r, 1]
                    v[4 * r + 3, col] = t[r, 1] - t[r, 3]
        for xi in range(16):                       # tiles of image n are columns n*T ...
            V[xi, c, n * T:(n + 1) * T] = v[xi]
    return V


@njit(parallel=True, cache=True)
def _output_transform(M, th, tw, y):
    """y[n, o, 2ty:2ty+2, 2tx:2tx+2] = A^T m A for the 4x4 transformed tile m of (n, o, t)."""
    N, Co, oh, ow = y.shape
    T = th * tw
    for task in prange(N * Co):
        # task -> (n, o): one output plane, all its tiles
        n = task // Co
        o = task % Co
        m = np.empty((16, T), M.dtype)             # this plane's 16 rows, gathered once
        for xi in range(16):
            m[xi] = M[xi, o, n * T:(n + 1) * T]
        for ty in range(th):
            for tx in range(tw):
                col = ty * tw + tx
                # A^T m (rows: m0+m1+m2 and m1-m2-m3), column s of the tile is m[4r + s]
                a00 = m[0, col] + m[4, col] + m[8, col]
                a01 = m[1, col] + m[5, col] + m[9, col]
                a02 = m[2, col] + m[6, col] + m[10, col]
                a03 = m[3, col] + m[7, col] + m[11, col]
                a10 = m[4, col] - m[8, col] - m[12, col]
                a11 = m[5, col] - m[9, col] - m[13, col]
                a12 = m[6, col] - m[10, col] - m[14, col]
                a13 = m[7, col] - m[11, col] - m[15, col]
                oy, ox = 2 * ty, 2 * tx
                # (A^T m) A: the same two combinations along the row
                y[n, o, oy, ox] = a00 + a01 + a02
                if ox + 1 < ow:                  # the last tile column may hang past the edge
                    y[n, o, oy, ox + 1] = a01 - a02 - a03
                if oy + 1 < oh:
                    y[n, o, oy + 1, ox] = a10 + a11 + a12
                    if ox + 1 < ow:
                        y[n, o, oy + 1, ox + 1] = a11 - a12 - a13
    return y


def winograd_applicable(W_shape, stride, dilation) -> bool:
    """True for 3x3 kernels at stride 1 and dilation 1 (what F(2x2,3x3) computes)."""
    return (tuple(W_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1))


def check_applicable(W_shape, stride, dilation) -> None:
    """ValueError naming the kernel, stride and dilation unless ``winograd_applicable``."""
    if not winograd_applicable(W_shape, stride, dilation):
        raise ValueError(f"winograd F(2x2,3x3) needs a 3x3 kernel, stride 1 and dilation 1; "
                         f"got kernel {tuple(W_shape[2:])}, stride {tuple(stride)}, "
                         f"dilation {tuple(dilation)}")


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by Winograd F(2x2,3x3), chunked over the batch."""
    check_applicable(W.shape, stride, dilation)
    N, C, H, Wd = x.shape
    Co, Cg = W.shape[0], W.shape[1]
    ph, pw = padding
    oh, ow = conv_output_size(H, 3, 1, ph, 1), conv_output_size(Wd, 3, 1, pw, 1)
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    T, G, Cog = th * tw, groups, Co // groups
    # U = G g G^T for every filter. Row-major vec(G g G^T) = (G kron G) vec(g), so all
    # filters are one (16, 9) @ (9, Co*Cg) product -> (16, G, Cog, Cg), position first
    GG = np.kron(_G, _G).astype(x.dtype)
    U = gemm.matmul(GG, W.reshape(Co * Cg, 9).T, np.empty((16, Co * Cg), x.dtype))
    U = U.reshape(16, G, Cog, Cg)
    y = np.empty((N, Co, oh, ow), x.dtype)
    check_limit(16 * (C + Co) * T, "conv2d's Winograd transforms for one image")
    chunk = _im2col.batch_chunk(16 * (C + Co) * T * x.itemsize, N)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        v = _im2col.scratch((16, C, nb * T), x.dtype, slot=1)     # cached between calls
        m = _im2col.scratch((16, Co, nb * T), x.dtype, slot=2)
        _input_transform(x[n0:n0 + nb], ph, pw, th, tw, v)
        gemm.matmul(U, v.reshape(16, G, Cg, nb * T), m.reshape(16, G, Cog, nb * T))
        _output_transform(m, th, tw, y[n0:n0 + nb])
    if b is not None:
        y += b.reshape(1, Co, 1, 1)
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx = Winograd convolution of gy with the flipped, channel-swapped filters."""
    check_applicable(W.shape, stride, dilation)
    Co, Cg = W.shape[0], W.shape[1]
    G, Cog = groups, Co // groups
    # Wt[g*Cg + c, o] = W[g*Cog + o, c] flipped: (Cin, Cog, 3, 3), a conv from Co to Cin chans
    Wt = W.reshape(G, Cog, Cg, 3, 3).transpose(0, 2, 1, 3, 4).reshape(G * Cg, Cog, 3, 3)
    Wt = np.ascontiguousarray(Wt[:, :, ::-1, ::-1])
    pads = []
    for axis, p in enumerate(padding):
        if p > 2:   # negative padding 2 - p: drop p - 2 rows of gy at each end instead
            crop = p - 2
            gy = gy[:, :, crop:gy.shape[2] - crop] if axis == 0 else gy[..., crop:-crop]
            p = 2
        pads.append(2 - p)
    # output size: (H + 2p - 2) + 2(2 - p) - 2 = H, exactly the input's
    return conv2d_forward(np.ascontiguousarray(gy), Wt, None, (1, 1), tuple(pads), (1, 1), G)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW from im2col (Winograd's weight gradient would need F(3x3, 2x2) transforms)."""
    check_applicable(W_shape, stride, dilation)
    return _im2col.conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups)
