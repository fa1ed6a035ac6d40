"""Winograd convolution F(2x2, 3x3) for 3x3, stride-1 layers, dilated ones too (Lavin & Gray
2016).

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

**Dilation** ``d`` (atrous convolution) splits the outputs into ``dh * dw`` interleaved
*phases*: output row ``y = a + dh*i`` (phase ``a < dh``) reads padded input rows
``y + dh*k = a + dh*(i + k)``, k < 3, i.e. row ``i + k`` of the phase's own sub-grid
``xpad[a::dh]``. On its sub-grid each phase is an ordinary 3x3 stride-1 convolution, so the
same tiles apply with their rows and columns ``d`` apart: tile ``(ty, tx)`` of phase
``(a, b)`` reads padded rows ``a + dh*(2ty + r)`` and columns ``b + dw*(2tx + s)``, r, s < 4,
and writes outputs ``a + dh*(2ty + i)``, ``b + dw*(2tx + j)``, i, j < 2. The phases' tiles
are just more columns of V and M (``T = dh*dw * th*tw`` with ``th = ceil(ceil(oh/dh)/2)``),
so the cost per output is that of the undilated layer. (It is the "space-to-batch" view of
atrous convolution, done inside the transforms instead of by copying the input.)

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
same Winograd forward (dilated by ``d``: padded by ``2d - padding``). The weight gradient
would need F(3x3, 2x2) transforms of ``gy``; it is taken from ``im2col`` instead.
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
def _input_transform(x, ph, pw, dh, dw, th, tw, V):
    """V[xi, c, n*T + t] = (B^T d B)[xi] for the 4x4 input tile d of tile t of image n.

    Tile t = ((a*dw + b)*th + ty)*tw + tx of phase (a, b) reads padded rows
    a + dh*(2ty + r) and columns b + dw*(2tx + s), r, s < 4 (dilation 1: one phase).
    A row of tiles at a time: B^T d along the rows for every padded column at once, then
    the column combinations for every tile of the row, the innermost loop over tx (so
    each of the 16 rows of V is written contiguously)."""
    N, C, H, Wd = x.shape
    T = dh * dw * th * tw
    hp, wp = dh * (2 * th + 2), dw * (2 * tw + 2)
    for task in prange(N * C):
        # task -> (n, c): one input plane, all its tiles
        n = task // C
        c = task % C
        # the zero-padded plane, large enough for every tile of every phase (input row =
        # padded row - ph)
        pad = np.zeros((hp, wp), x.dtype)
        for iy in range(min(H, hp - ph)):
            for ix in range(min(Wd, wp - pw)):
                pad[iy + ph, ix + pw] = x[n, c, iy, ix]
        t = np.empty((4, wp), x.dtype)
        for a in range(dh):
            for ty in range(th):
                r0 = a + dh * 2 * ty               # padded row of the tiles' row 0
                for j in range(wp):                # t = B^T d: combine rows, per column
                    d0 = pad[r0, j]
                    d1 = pad[r0 + dh, j]
                    d2 = pad[r0 + 2 * dh, j]
                    d3 = pad[r0 + 3 * dh, j]
                    t[0, j] = d0 - d2
                    t[1, j] = d1 + d2
                    t[2, j] = d2 - d1
                    t[3, j] = d1 - d3
                for b in range(dw):
                    col0 = n * T + ((a * dw + b) * th + ty) * tw
                    for r in range(4):             # (B^T d) B: combine columns, per row
                        for tx in range(tw):
                            j = b + dw * 2 * tx
                            e0 = t[r, j]
                            e1 = t[r, j + dw]
                            e2 = t[r, j + 2 * dw]
                            e3 = t[r, j + 3 * dw]
                            V[4 * r + 0, c, col0 + tx] = e0 - e2
                            V[4 * r + 1, c, col0 + tx] = e1 + e2
                            V[4 * r + 2, c, col0 + tx] = e2 - e1
                            V[4 * r + 3, c, col0 + tx] = e1 - e3
    return V


@njit(parallel=True, cache=True)
def _output_transform(M, dh, dw, th, tw, y):
    """y[n, o, a + dh*(2ty + i), b + dw*(2tx + j)] (i, j < 2) = A^T m A for the 4x4
    transformed tile m of (n, o, t), tile t numbered as in ``_input_transform``; a row of
    tiles at a time, the innermost loops over tx."""
    N, Co, oh, ow = y.shape
    T = dh * dw * th * tw
    for task in prange(N * Co):
        # task -> (n, o): one output plane, all its tiles
        n = task // Co
        o = task % Co
        q = np.empty((2, 4, tw), M.dtype)          # A^T m of every tile of the row
        for a in range(dh):
            for b in range(dw):
                # tiles whose second column is inside the image (the others hang past it)
                full = 0
                while full < tw and b + dw * (2 * full + 1) < ow:
                    full += 1
                for ty in range(th):
                    oy = a + dh * 2 * ty
                    if oy >= oh:                   # a phase with fewer rows
                        break
                    col0 = n * T + ((a * dw + b) * th + ty) * tw
                    for s in range(4):             # A^T m (m0+m1+m2, m1-m2-m3), column s
                        for tx in range(tw):
                            m1 = M[4 + s, o, col0 + tx]
                            m2 = M[8 + s, o, col0 + tx]
                            q[0, s, tx] = M[s, o, col0 + tx] + m1 + m2
                            q[1, s, tx] = m1 - m2 - M[12 + s, o, col0 + tx]
                    for i in range(2):             # (A^T m) A: the same along the row
                        if oy + dh * i >= oh:
                            break
                        row = oy + dh * i
                        for tx in range(full):
                            ox = b + dw * 2 * tx
                            y[n, o, row, ox] = q[i, 0, tx] + q[i, 1, tx] + q[i, 2, tx]
                            y[n, o, row, ox + dw] = q[i, 1, tx] - q[i, 2, tx] - q[i, 3, tx]
                        for tx in range(full, tw):  # at most one tile, half outside
                            ox = b + dw * 2 * tx
                            if ox < ow:
                                y[n, o, row, ox] = q[i, 0, tx] + q[i, 1, tx] + q[i, 2, tx]
    return y


_G4 = np.array([[1 / 4, 0.0, 0.0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0.0, 0.0, 1.0]])


@njit(inline="always")
def _bt6(d0, d1, d2, d3, d4, d5):
    """The six rows of B^T d for F(4x4,3x3) (B^T in the module docstring)."""
    return (4 * d0 - 5 * d2 + d4, -4 * (d1 + d2) + d3 + d4, 4 * (d1 - d2) - d3 + d4,
            2 * (d3 - d1) - d2 + d4, 2 * (d1 - d3) - d2 + d4, 4 * d1 - 5 * d3 + d5)


@njit(inline="always")
def _at6(m0, m1, m2, m3, m4, m5):
    """The four rows of A^T m for F(4x4,3x3)."""
    return (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 * (m3 - m4), m1 + m2 + 4 * (m3 + m4),
            m1 - m2 + 8 * (m3 - m4) + m5)


@njit(parallel=True, cache=True)
def _input_transform_f4(x, ph, pw, dh, dw, th, tw, V):
    """F(4x4,3x3): V[xi, c, n*T + t] = (B^T d B)[xi] for the 6x6 input tile d of tile t;
    tile t = ((a*dw + b)*th + ty)*tw + tx of phase (a, b) reads padded rows
    a + dh*(4ty + r) and columns b + dw*(4tx + s), r, s < 6 (laid out as
    ``_input_transform``: a row of tiles at a time)."""
    N, C, H, Wd = x.shape
    T = dh * dw * th * tw
    hp, wp = dh * (4 * th + 2), dw * (4 * tw + 2)
    for task in prange(N * C):
        n = task // C
        c = task % C
        pad = np.zeros((hp, wp), x.dtype)
        for iy in range(min(H, hp - ph)):
            for ix in range(min(Wd, wp - pw)):
                pad[iy + ph, ix + pw] = x[n, c, iy, ix]
        t = np.empty((6, wp), x.dtype)
        for a in range(dh):
            for ty in range(th):
                r0 = a + dh * 4 * ty
                for j in range(wp):                # B^T d, every padded column
                    t0, t1, t2, t3, t4, t5 = _bt6(
                        pad[r0, j], pad[r0 + dh, j], pad[r0 + 2 * dh, j],
                        pad[r0 + 3 * dh, j], pad[r0 + 4 * dh, j], pad[r0 + 5 * dh, j])
                    t[0, j] = t0
                    t[1, j] = t1
                    t[2, j] = t2
                    t[3, j] = t3
                    t[4, j] = t4
                    t[5, j] = t5
                for b in range(dw):
                    col0 = n * T + ((a * dw + b) * th + ty) * tw
                    for r in range(6):             # (B^T d) B, row r, every tile
                        for tx in range(tw):
                            j = b + dw * 4 * tx
                            u0, u1, u2, u3, u4, u5 = _bt6(
                                t[r, j], t[r, j + dw], t[r, j + 2 * dw], t[r, j + 3 * dw],
                                t[r, j + 4 * dw], t[r, j + 5 * dw])
                            V[6 * r + 0, c, col0 + tx] = u0
                            V[6 * r + 1, c, col0 + tx] = u1
                            V[6 * r + 2, c, col0 + tx] = u2
                            V[6 * r + 3, c, col0 + tx] = u3
                            V[6 * r + 4, c, col0 + tx] = u4
                            V[6 * r + 5, c, col0 + tx] = u5
    return V


@njit(parallel=True, cache=True)
def _output_transform_f4(M, dh, dw, th, tw, y):
    """F(4x4,3x3): y[n, o, a + dh*(4ty + i), b + dw*(4tx + j)] (i, j < 4) = A^T m A for the
    6x6 transformed tile m of (n, o, t), tile t numbered as in ``_input_transform_f4``."""
    N, Co, oh, ow = y.shape
    T = dh * dw * th * tw
    for task in prange(N * Co):
        n = task // Co
        o = task % Co
        q = np.empty((4, 6, tw), M.dtype)          # A^T m of every tile of the row
        for a in range(dh):
            for b in range(dw):
                full = 0                           # tiles whose 4 columns are all inside
                while full < tw and b + dw * (4 * full + 3) < ow:
                    full += 1
                for ty in range(th):
                    oy = a + dh * 4 * ty
                    if oy >= oh:
                        break
                    col0 = n * T + ((a * dw + b) * th + ty) * tw
                    for s in range(6):             # A^T m, column s
                        for tx in range(tw):
                            c0 = col0 + tx
                            q0, q1, q2, q3 = _at6(M[s, o, c0], M[6 + s, o, c0],
                                                  M[12 + s, o, c0], M[18 + s, o, c0],
                                                  M[24 + s, o, c0], M[30 + s, o, c0])
                            q[0, s, tx] = q0
                            q[1, s, tx] = q1
                            q[2, s, tx] = q2
                            q[3, s, tx] = q3
                    for i in range(4):             # (A^T m) A, row i; rows past the edge
                        row = oy + dh * i          # are dropped
                        if row >= oh:
                            break
                        for tx in range(full):
                            ox = b + dw * 4 * tx
                            w0, w1, w2, w3 = _at6(q[i, 0, tx], q[i, 1, tx], q[i, 2, tx],
                                                  q[i, 3, tx], q[i, 4, tx], q[i, 5, tx])
                            y[n, o, row, ox] = w0
                            y[n, o, row, ox + dw] = w1
                            y[n, o, row, ox + 2 * dw] = w2
                            y[n, o, row, ox + 3 * dw] = w3
                        for tx in range(full, tw):  # at most one tile, partly outside
                            ox = b + dw * 4 * tx
                            if ox >= ow:
                                break
                            w0, w1, w2, w3 = _at6(q[i, 0, tx], q[i, 1, tx], q[i, 2, tx],
                                                  q[i, 3, tx], q[i, 4, tx], q[i, 5, tx])
                            y[n, o, row, ox] = w0
                            if ox + dw < ow:
                                y[n, o, row, ox + dw] = w1
                            if ox + 2 * dw < ow:
                                y[n, o, row, ox + 2 * dw] = w2
                            if ox + 3 * dw < ow:
                                y[n, o, row, ox + 3 * dw] = w3
    return y


# the two tile sizes: m -> (G, input transform, output transform)
_VARIANTS = {2: (_G, _input_transform, _output_transform),
             4: (_G4, _input_transform_f4, _output_transform_f4)}


def winograd_applicable(W_shape, stride, dilation) -> bool:
    """True for 3x3 kernels at stride 1, any dilation (what F(2x2,3x3) computes, phase by
    phase when dilated)."""
    return tuple(W_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)


def check_applicable(W_shape, stride, dilation, name: str = "winograd F(2x2,3x3)") -> None:
    """ValueError naming the kernel and stride unless ``winograd_applicable``."""
    if not winograd_applicable(W_shape, stride, dilation):
        raise ValueError(f"{name} needs a 3x3 kernel and stride 1; "
                         f"got kernel {tuple(W_shape[2:])}, stride {tuple(stride)}, "
                         f"dilation {tuple(dilation)}")


def winograd_forward(x, W, b, padding, dilation, groups, m: int = 2):
    """y = conv2d(x, W) + b (3x3, stride 1) by Winograd F(m x m, 3x3), m = 2 or 4, chunked
    over the batch."""
    N, C, H, Wd = x.shape
    Co, Cg = W.shape[0], W.shape[1]
    ph, pw = padding
    dh, dw = dilation
    Gm, input_transform, output_transform = _VARIANTS[m]
    a = m + 2                                      # input tile side; a*a transformed points
    oh, ow = conv_output_size(H, 3, 1, ph, dh), conv_output_size(Wd, 3, 1, pw, dw)
    # tiles of m x m outputs per phase: phase a holds the ceil((oh - a) / dh) output rows
    # a, a + dh, ...; every phase gets as many tiles as the largest needs
    th, tw = (-(-oh // dh) + m - 1) // m, (-(-ow // dw) + m - 1) // m
    T, G, Cog = dh * dw * th * tw, groups, Co // groups
    # U = G g G^T for every filter. Row-major vec(G g G^T) = (G kron G) vec(g), so all
    # filters are one (a*a, 9) @ (9, Co*Cg) product -> (a*a, G, Cog, Cg), position first
    GG = np.kron(Gm, Gm).astype(x.dtype)
    U = gemm.matmul(GG, W.reshape(Co * Cg, 9).T, np.empty((a * a, Co * Cg), x.dtype))
    U = U.reshape(a * a, G, Cog, Cg)
    y = np.empty((N, Co, oh, ow), x.dtype)
    check_limit(a * a * (C + Co) * T, "conv2d's Winograd transforms for one image")
    chunk = _im2col.batch_chunk(a * a * (C + Co) * T * x.itemsize, N)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        v = _im2col.scratch((a * a, C, nb * T), x.dtype, slot=1)  # cached between calls
        mm = _im2col.scratch((a * a, Co, nb * T), x.dtype, slot=2)
        input_transform(x[n0:n0 + nb], ph, pw, dh, dw, th, tw, v)
        gemm.matmul(U, v.reshape(a * a, G, Cg, nb * T), mm.reshape(a * a, G, Cog, nb * T))
        output_transform(mm, dh, dw, th, tw, y[n0:n0 + nb])
    if b is not None:
        y += b.reshape(1, Co, 1, 1)
    return y


def winograd_backward_input(gy, W, padding, dilation, groups, m: int = 2):
    """gx = Winograd F(m x m, 3x3) convolution of gy with the flipped, channel-swapped
    filters."""
    Co, Cg = W.shape[0], W.shape[1]
    G, Cog = groups, Co // groups
    # Wt[g*Cg + c, o] = W[g*Cog + o, c] flipped: (Cin, Cog, 3, 3), a conv from Co to Cin chans
    Wt = W.reshape(G, Cog, Cg, 3, 3).transpose(0, 2, 1, 3, 4).reshape(G * Cg, Cog, 3, 3)
    Wt = np.ascontiguousarray(Wt[:, :, ::-1, ::-1])
    pads = []
    for axis, (p, d) in enumerate(zip(padding, dilation)):
        if p > 2 * d:   # negative padding 2d - p: drop p - 2d rows of gy at each end instead
            crop = p - 2 * d
            gy = gy[:, :, crop:gy.shape[2] - crop] if axis == 0 else gy[..., crop:-crop]
            p = 2 * d
        pads.append(2 * d - p)
    # output size: (H + 2p - 2d) + 2(2d - p) - 2d = H, exactly the input's
    return winograd_forward(np.ascontiguousarray(gy), Wt, None, tuple(pads), tuple(dilation),
                            G, m)


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by Winograd F(2x2,3x3)."""
    check_applicable(W.shape, stride, dilation)
    return winograd_forward(x, W, b, padding, dilation, groups, 2)


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx = Winograd F(2x2,3x3) convolution of gy with the flipped, channel-swapped filters."""
    check_applicable(W.shape, stride, dilation)
    return winograd_backward_input(gy, W, padding, dilation, groups, 2)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW from im2col (Winograd's weight gradient would need F(3x3, 2x2) transforms)."""
    check_applicable(W_shape, stride, dilation)
    return _im2col.conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups)
