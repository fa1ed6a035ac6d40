"""Convolution on the GPU: numba.cuda kernels for im2col / col2im / direct loops, GEMM
through CuPy (cuBLAS). Same signatures as the CPU algorithms.

The arithmetic is that of ``im2col.py`` and ``direct.py``; two things change.

**The column matrix is laid out for one big GEMM.** On the CPU each image has its own
column matrix ``(C*kh*kw, oh*ow)``. Here a chunk of ``nb`` images shares one,
``col[r, n, p]`` of shape ``(C*kh*kw, nb*oh*ow)``, with ``r = (c*kh + i)*kw + j`` and
``p = oy*ow + ox``. Then the forward pass of a group is a single GEMM with a long side,
``(Co/G, R) @ (R, nb*P)``, instead of ``nb`` small ones, and the weight gradient is
``gy_T @ col^T`` with cuBLAS reading ``col`` transposed in place (no copy, no sum over
images). The price is one transposition of the *output* (``(Co, nb, P)`` to
``(nb, Co, P)``, fused with the bias) and of ``gy`` in the backward passes; both are
``R/Co`` times smaller than the column matrix (9x for a 3x3 kernel at ``C = Co``).

**The unit of parallel work.** The column kernels run on a 3-D grid
(``cuda_support.launch_planes``) whose y and z are the image and the channel, so a thread
recovers only its pixel from its index, and each thread handles all the taps of its
pixel. (Measured on an H200: the 3-D grid is no faster than one flat index with four
integer divisions per thread, 0.30 vs 0.28 ms for the first benchmark shape's im2col;
the divisions are not what limits it. The taps loop is what made im2col 4x faster.)

* ``im2col``: one thread per ``(c, n, p)`` (input channel, image, output pixel); it
  writes the ``kh*kw`` entries ``col[(c*kh + i)*kw + j, n, p] =
  x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]`` (0 in the padding).
* ``col2im`` (input gradient): one thread per *input* pixel ``(n, c, h, w)`` that gathers
  the column entries copied from it. Tap ``i`` read row ``h`` from output row ``oy`` when
  ``oy*sh = h + ph - i*dh``, so only taps with ``(h + ph - i*dh) % sh == 0`` and
  ``0 <= oy < oh`` contribute. The gather adds in a fixed order: the same bits every run,
  and no atomics.
* ``col2im`` atomic variant (``ATOMIC`` below, ``impl='cuda_atomic'``): one thread per
  ``(c, n, p)``, as im2col, adds its ``kh*kw`` entries into their input pixels with
  ``cuda.atomic.add``. No divisibility tests, but **non-deterministic**: the float
  additions into one pixel land in whatever order the threads run.
* direct (grouped/depthwise, ``Cin/groups <= 4``): one thread per output pixel summing
  its ``Cg*kh*kw`` products for the forward pass; one thread per input pixel gathering
  ``w * gy`` over the outputs that read it for the input gradient.

**Arguments.** Every kernel takes the geometry of the call as the ten fields of a
``ConvGeometry`` (``kh, kw, sh, sw, ph, pw, dh, dw, oh, ow``, in that order), built once
by ``conv_geometry`` and passed as ``*geom``: unlike the CPU kernels, which take the
NamedTuple itself, these are launched by ``cuda_support``, whose CuPy launcher passes
arrays and scalars only.

Chunks of images keep the column matrix under the same workspace limit as on the CPU
(``im2col.column_chunk``). Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) these
kernels run on NumPy arrays (``get_array_module`` gives numpy, the GEMM is numpy's),
which is how CI tests them without a GPU. Accumulators are float64 in every dtype
(cheap next to the loads).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.conv._common import ConvGeometry, conv_geometry, conv_output_size
from scratchvision.kernels.conv.im2col import column_chunk
from scratchvision.kernels.cuda_support import launch, launch_planes


@cuda.jit
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, col):
    """col (C*kh*kw, nb, oh*ow): one thread per (c, n, p) writes its kh*kw entries.
    Grid (p blocks, n, c): ``launch_planes``."""
    nb, C, H, Wd = x.shape
    p = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x     # p = oy*ow + ox
    if p >= oh * ow:                             # guard: the last block runs past the end
        return
    oy = p // ow
    y0 = oy * sh - ph                            # the input pixel of tap (0, 0)
    x0 = (p - oy * ow) * sw - pw
    for n in range(cuda.blockIdx.y, nb, cuda.gridDim.y):
        for c in range(cuda.blockIdx.z, C, cuda.gridDim.z):
            r = c * kh * kw
            for i in range(kh):
                iy = y0 + i * dh
                for j in range(kw):
                    ix = x0 + j * dw
                    if 0 <= iy < H and 0 <= ix < Wd:
                        col[r, n, p] = x[n, c, iy, ix]
                    else:
                        col[r, n, p] = 0         # zero padding
                    r += 1


@cuda.jit
def _col2im_kernel(col, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    """gx (nb, C, H, W): one thread per input pixel gathers the entries copied from it.
    Grid (pixel blocks, n, c): ``launch_planes``."""
    nb, C, H, Wd = gx.shape
    q = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x     # q = h*W + w
    if q >= H * Wd:
        return
    h = q // Wd
    w = q - h * Wd
    for n in range(cuda.blockIdx.y, nb, cuda.gridDim.y):
        for c in range(cuda.blockIdx.z, C, cuda.gridDim.z):
            acc = 0.0
            for i in range(kh):
                ty = h + ph - i * dh             # = oy*sh if tap i of output row oy read h
                if ty < 0:
                    break                        # ty only falls as i grows
                oy = ty
                if sh > 1:                       # (the same branch in every thread)
                    if ty % sh != 0:
                        continue
                    oy = ty // sh
                if oy >= oh:
                    continue
                for j in range(kw):
                    tx = w + pw - j * dw
                    if tx < 0:
                        break
                    ox = tx
                    if sw > 1:
                        if tx % sw != 0:
                            continue
                        ox = tx // sw
                    if ox < ow:
                        acc += col[(c * kh + i) * kw + j, n, oy * ow + ox]
            gx[n, c, h, w] = acc


@cuda.jit
def _col2im_atomic_kernel(col, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    """gx (nb, C, H, W), zeroed: one thread per (c, n, p) adds its kh*kw entries (atomic).
    Grid (p blocks, n, c), as im2col."""
    nb, C, H, Wd = gx.shape
    p = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if p >= oh * ow:
        return
    oy = p // ow                                 # the taps' input pixels, as in im2col
    y0 = oy * sh - ph
    x0 = (p - oy * ow) * sw - pw
    for n in range(cuda.blockIdx.y, nb, cuda.gridDim.y):
        for c in range(cuda.blockIdx.z, C, cuda.gridDim.z):
            r = c * kh * kw
            for i in range(kh):
                h = y0 + i * dh
                for j in range(kw):
                    w = x0 + j * dw
                    if 0 <= h < H and 0 <= w < Wd:   # entries read from padding go nowhere
                        cuda.atomic.add(gx, (n, c, h, w), col[r, n, p])  # any order
                    r += 1


@cuda.jit
def _direct_forward_kernel(x, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, groups, y):
    """y (N, Co, oh, ow) without bias: one thread per output pixel."""
    idx = cuda.grid(1)
    N, C, H, Wd = x.shape
    Co, Cg = W.shape[0], W.shape[1]
    if idx >= N * Co * oh * ow:
        return
    # idx -> (n, o, oy, ox)
    ox = idx % ow
    oy = (idx // ow) % oh
    o = (idx // (ow * oh)) % Co
    n = idx // (ow * oh * Co)
    grp = o // (Co // groups)
    acc = 0.0
    for cl in range(Cg):
        c = grp * Cg + cl
        for i in range(kh):
            iy = oy * sh - ph + i * dh
            if iy < 0 or iy >= H:
                continue
            for j in range(kw):
                ix = ox * sw - pw + j * dw
                if 0 <= ix < Wd:
                    acc += W[o, cl, i, j] * x[n, c, iy, ix]
    y[n, o, oy, ox] = acc


@cuda.jit
def _direct_backward_input_kernel(gy, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, groups, gx):
    """gx (N, C, H, W): one thread per input pixel gathers w * gy over the outputs it fed."""
    idx = cuda.grid(1)
    N, C, H, Wd = gx.shape
    Co, Cg = W.shape[0], W.shape[1]
    if idx >= N * C * H * Wd:
        return
    # idx -> (n, c, h, w)
    w = idx % Wd
    h = (idx // Wd) % H
    c = (idx // (Wd * H)) % C
    n = idx // (Wd * H * C)
    Cog = Co // groups
    grp = c // Cg
    cl = c % Cg
    acc = 0.0
    for ol in range(Cog):
        o = grp * Cog + ol
        for i in range(kh):
            ty = h + ph - i * dh
            if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                continue
            for j in range(kw):
                tx = w + pw - j * dw
                if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                    continue
                acc += W[o, cl, i, j] * gy[n, o, ty // sh, tx // sw]
    gx[n, c, h, w] = acc


def _use_direct(W_shape, groups) -> bool:
    """Grouped with at most 4 input channels per group (depthwise): the direct kernels."""
    return groups > 1 and W_shape[1] <= 4


class _Workspace:
    """The column matrix (and a matrix of the output's size) for chunks of ``chunk`` of
    the ``n_images`` images: ``rows`` x ``nb*P`` views of flat buffers, so that every view
    is contiguous."""

    def __init__(self, xp, dtype, rows, out_rows, P, n_images):
        self.chunk = column_chunk(rows, P, np.dtype(dtype).itemsize, n_images)
        self.rows, self.out_rows, self.P, self.n_images = rows, out_rows, P, n_images
        self.col = xp.empty(rows * self.chunk * P, dtype)
        self.out = xp.empty(out_rows * self.chunk * P, dtype)

    def chunks(self):
        """(n0, nb, col (rows, nb*P), out (out_rows, nb*P)) per chunk of images."""
        for n0 in range(0, self.n_images, self.chunk):
            nb = min(self.chunk, self.n_images - n0)
            yield (n0, nb, self.col[:self.rows * nb * self.P].reshape(self.rows, nb * self.P),
                   self.out[:self.out_rows * nb * self.P].reshape(self.out_rows, nb * self.P))


def _im2col(x, g: ConvGeometry, col):
    """Fill col (C*kh*kw, nb*oh*ow) from the images x (nb, C, H, W)."""
    nb, C = x.shape[0], x.shape[1]
    launch_planes(_im2col_kernel, g.oh * g.ow, nb, C, x, *g,
                  col.reshape(col.shape[0], nb, g.oh * g.ow))


def _transpose_gy(gy, n0, nb, gy_t):
    """gy_t (Co, nb*P) = gy[n0:n0+nb] (nb, Co, oh, ow) with its first two axes swapped."""
    Co, P = gy.shape[1], gy.shape[2] * gy.shape[3]
    gy_t.reshape(Co, nb, P)[...] = gy[n0:n0 + nb].reshape(nb, Co, P).transpose(1, 0, 2)


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b on the GPU (im2col + one cuBLAS GEMM per group and chunk, or
    direct for depthwise)."""
    xp = get_array_module(x)
    N, C = x.shape[0], x.shape[1]
    Co, Cg, kh, kw = W.shape
    oh = conv_output_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    ow = conv_output_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
    geom = conv_geometry((kh, kw), stride, padding, dilation, (oh, ow))
    y = xp.empty((N, Co, oh, ow), x.dtype)
    if _use_direct(W.shape, groups):
        launch(_direct_forward_kernel, y.size, x, W, *geom, groups, y)
        if b is not None:
            y += b.reshape(1, Co, 1, 1)
        return y
    G, Cog, R, P = groups, Co // groups, Cg * kh * kw, oh * ow
    Wm = W.reshape(G, Cog, R)
    ws = _Workspace(xp, x.dtype, C * kh * kw, Co, P, N)
    for n0, nb, col, out in ws.chunks():
        _im2col(x[n0:n0 + nb], geom, col)
        for g in range(G):       # (Cog, R) @ (R, nb*P): rows g*Cog.. of the output
            xp.matmul(Wm[g], col[g * R:(g + 1) * R], out=out[g * Cog:(g + 1) * Cog])
        y_chunk = out.reshape(Co, nb, oh, ow).transpose(1, 0, 2, 3)   # (nb, Co, oh, ow)
        if b is None:
            y[n0:n0 + nb] = y_chunk
        else:                    # the bias rides on the transposition
            xp.add(y_chunk, b.reshape(1, Co, 1, 1), out=y[n0:n0 + nb])
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx on the GPU: col2im(W^T gy) as a gather, or the direct gather for depthwise."""
    return _backward_input(gy, W, x_shape, stride, padding, dilation, groups, atomic=False)


def conv2d_backward_input_atomic(gy, W, x_shape, stride, padding, dilation, groups):
    """gx on the GPU with the atomic (non-deterministic) col2im scatter."""
    return _backward_input(gy, W, x_shape, stride, padding, dilation, groups, atomic=True)


def _backward_input(gy, W, x_shape, stride, padding, dilation, groups, atomic):
    xp = get_array_module(gy)
    N, C = x_shape[0], x_shape[1]
    Co, Cg, kh, kw = W.shape
    oh, ow = gy.shape[2], gy.shape[3]
    geom = conv_geometry((kh, kw), stride, padding, dilation, (oh, ow))
    if _use_direct(W.shape, groups):
        gx = xp.empty(x_shape, gy.dtype)
        launch(_direct_backward_input_kernel, gx.size, gy, W, *geom, groups, gx)
        return gx
    gx = (xp.zeros if atomic else xp.empty)(x_shape, gy.dtype)
    G, Cog, R, P = groups, Co // groups, Cg * kh * kw, oh * ow
    Wm = W.reshape(G, Cog, R)
    ws = _Workspace(xp, gy.dtype, C * kh * kw, Co, P, N)
    for n0, nb, gcol, gy_t in ws.chunks():
        _transpose_gy(gy, n0, nb, gy_t)
        for g in range(G):       # (R, Cog) @ (Cog, nb*P): the column gradient of group g
            xp.matmul(Wm[g].T, gy_t[g * Cog:(g + 1) * Cog], out=gcol[g * R:(g + 1) * R])
        gcol3 = gcol.reshape(C * kh * kw, nb, P)
        if atomic:
            launch_planes(_col2im_atomic_kernel, P, nb, C, gcol3, *geom, gx[n0:n0 + nb])
        else:
            launch_planes(_col2im_kernel, x_shape[2] * x_shape[3], nb, C, gcol3, *geom,
                          gx[n0:n0 + nb])
    return gx


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW on the GPU: gy_T @ im2col(x)^T per group, summed over chunks (cuBLAS)."""
    xp = get_array_module(x)
    N, C = x.shape[0], x.shape[1]
    Co, Cg, kh, kw = W_shape
    oh, ow = gy.shape[2], gy.shape[3]
    G, Cog, R, P = groups, Co // groups, Cg * kh * kw, oh * ow
    geom = conv_geometry((kh, kw), stride, padding, dilation, (oh, ow))
    gW = xp.empty((Co, R), x.dtype)
    ws = _Workspace(xp, x.dtype, C * kh * kw, Co, P, N)
    for n0, nb, col, gy_t in ws.chunks():
        _im2col(x[n0:n0 + nb], geom, col)
        _transpose_gy(gy, n0, nb, gy_t)
        for g in range(G):       # (Cog, nb*P) @ (nb*P, R); cuBLAS reads col^T in place
            rows = slice(g * Cog, (g + 1) * Cog)
            part = xp.matmul(gy_t[rows], col[g * R:(g + 1) * R].T,
                             out=gW[rows] if n0 == 0 else None)
            if n0 > 0:
                gW[rows] += part
    return gW.reshape(W_shape)


# ``impl='cuda_atomic'``: the same forward and weight gradient, the atomic col2im scatter
ATOMIC = SimpleNamespace(conv2d_forward=conv2d_forward,
                         conv2d_backward_input=conv2d_backward_input_atomic,
                         conv2d_backward_weight=conv2d_backward_weight)
