"""Convolution on the GPU: numba.cuda kernels for im2col / col2im / direct loops, GEMM
through CuPy (cuBLAS). Same signatures as the CPU algorithms.

The arithmetic is that of ``im2col.py`` and ``direct.py``; what changes is the unit of
parallel work, one thread per *output element* of each kernel, which keeps every kernel
free of atomics and therefore deterministic:

* ``im2col``: one thread per column entry ``(n, r, p)``, ``r = (c*kh + i)*kw + j`` and
  ``p = oy*ow + ox``; it copies ``x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]`` (or 0).
* ``col2im`` (input gradient): one thread per *input* pixel ``(n, c, h, w)`` that gathers
  the column entries copied from it. Tap ``i`` read row ``h`` from output row ``oy`` when
  ``oy*sh = h + ph - i*dh``, so only taps with ``(h + ph - i*dh) % sh == 0`` and
  ``0 <= oy < oh`` contribute. The gather adds in a fixed order: the same bits every run.
* ``col2im`` atomic variant (``ATOMIC`` below, ``impl='cuda_atomic'``): one thread per
  column entry adds it into its input pixel with ``cuda.atomic.add``. Simpler and with no
  divisibility tests, but **non-deterministic**: the float additions into one pixel land in
  whatever order the threads run.
* GEMMs: ``xp.matmul`` over the ``(images, groups)`` batch, as on the CPU (cuBLAS).
* direct (grouped/depthwise, ``Cin/groups <= 4``): one thread per output pixel summing
  its ``Cg*kh*kw`` products for the forward pass; one thread per input pixel gathering
  ``w * gy`` over the outputs that read it for the input gradient.
* weight gradient: ``sum_n gy[n] @ im2col(x[n])^T`` per group, as on the CPU.
* pointwise (1x1, stride 1, no padding): the column matrix *is* ``x`` viewed as
  ``(N, C, H*W)``, so no im2col/col2im kernel runs, only the GEMMs (as on the CPU).

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) these kernels run on NumPy
arrays (``get_array_module`` gives numpy, the GEMM is numpy's), which is how CI tests
them without a GPU. Accumulators are float64 in every dtype (cheap next to the loads).
"""
from __future__ import annotations

from types import SimpleNamespace

from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.conv._common import conv_output_size
from scratchvision.kernels.conv.im2col import batch_chunk
from scratchvision.kernels.cuda_support import launch


@cuda.jit
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, col):
    """col (nb, C*kh*kw, oh*ow): one thread per entry."""
    idx = cuda.grid(1)
    nb, C, H, Wd = x.shape
    P = oh * ow
    R = C * kh * kw
    if idx >= nb * R * P:                        # guard: the last block runs past the end
        return
    # idx -> (n, r, p), r = (c*kh + i)*kw + j, p = oy*ow + ox
    p = idx % P
    r = (idx // P) % R
    n = idx // (P * R)
    c = r // (kh * kw)
    i = (r // kw) % kh
    j = r % kw
    iy = (p // ow) * sh - ph + i * dh
    ix = (p % ow) * sw - pw + j * dw
    if 0 <= iy < H and 0 <= ix < Wd:
        col[n, r, p] = x[n, c, iy, ix]
    else:
        col[n, r, p] = 0                         # zero padding


@cuda.jit
def _col2im_kernel(col, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    """gx (nb, C, H, W): one thread per input pixel gathers the entries copied from it."""
    idx = cuda.grid(1)
    nb, C, H, Wd = gx.shape
    if idx >= nb * C * H * Wd:
        return
    # idx -> (n, c, h, w)
    w = idx % Wd
    h = (idx // Wd) % H
    c = (idx // (Wd * H)) % C
    n = idx // (Wd * H * C)
    acc = 0.0
    for i in range(kh):
        ty = h + ph - i * dh                     # = oy*sh if tap i of output row oy read h
        if ty < 0 or ty % sh != 0 or ty // sh >= oh:
            continue
        oy = ty // sh
        for j in range(kw):
            tx = w + pw - j * dw
            if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                continue
            acc += col[n, (c * kh + i) * kw + j, oy * ow + tx // sw]
    gx[n, c, h, w] = acc


@cuda.jit
def _col2im_atomic_kernel(col, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    """gx (nb, C, H, W), zeroed: one thread per column entry adds it to its pixel (atomic)."""
    idx = cuda.grid(1)
    nb, C, H, Wd = gx.shape
    P = oh * ow
    R = C * kh * kw
    if idx >= nb * R * P:
        return
    # idx -> (n, r, p) with r = (c*kh + i)*kw + j and p = oy*ow + ox, as in im2col
    p = idx % P
    r = (idx // P) % R
    n = idx // (P * R)
    c = r // (kh * kw)
    i = (r // kw) % kh
    j = r % kw
    h = (p // ow) * sh - ph + i * dh             # the input pixel this entry was copied from
    w = (p % ow) * sw - pw + j * dw
    if 0 <= h < H and 0 <= w < Wd:               # entries read from padding go nowhere
        cuda.atomic.add(gx, (n, c, h, w), col[n, r, p])  # non-deterministic order


@cuda.jit
def _direct_forward_kernel(x, W, sh, sw, ph, pw, dh, dw, groups, y):
    """y (N, Co, oh, ow) without bias: one thread per output pixel."""
    idx = cuda.grid(1)
    N, C, H, Wd = x.shape
    Co, Cg, kh, kw = W.shape
    oh, ow = y.shape[2], y.shape[3]
    if idx >= N * Co * oh * ow:
        return
    # idx -> (n, o, oy, ox)
    ox = idx % ow
    oy = (idx // ow) % oh
    o = (idx // (ow * oh)) % Co
    n = idx // (ow * oh * Co)
    g = o // (Co // groups)
    acc = 0.0
    for cl in range(Cg):
        c = g * Cg + cl
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
def _direct_backward_input_kernel(gy, W, sh, sw, ph, pw, dh, dw, groups, gx):
    """gx (N, C, H, W): one thread per input pixel gathers w * gy over the outputs it fed."""
    idx = cuda.grid(1)
    N, C, H, Wd = gx.shape
    Co, Cg, kh, kw = W.shape
    oh, ow = gy.shape[2], gy.shape[3]
    if idx >= N * C * H * Wd:
        return
    # idx -> (n, c, h, w)
    w = idx % Wd
    h = (idx // Wd) % H
    c = (idx // (Wd * H)) % C
    n = idx // (Wd * H * C)
    Cog = Co // groups
    g = c // Cg
    cl = c % Cg
    acc = 0.0
    for ol in range(Cog):
        o = g * Cog + ol
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


def _pointwise(x_shape, W_shape, out_hw, stride, padding) -> bool:
    """A 1x1 kernel at stride 1 without padding reads every pixel once, in order: col == x
    (unless x is larger than the output, as conv_transpose2d's output_padding makes it)."""
    return W_shape[2] == W_shape[3] == 1 and tuple(stride) == (1, 1) \
        and tuple(padding) == (0, 0) and tuple(x_shape[2:]) == tuple(out_hw)


def _use_direct(W_shape, groups) -> bool:
    """Grouped with at most 4 input channels per group (depthwise): the direct kernels."""
    return groups > 1 and W_shape[1] <= 4


def _im2col(x, kh, kw, stride, padding, dilation, oh, ow, col):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    launch(_im2col_kernel, col.size, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, col)
    return col


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b on the GPU (im2col + cuBLAS, or direct for depthwise)."""
    xp = get_array_module(x)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, C = x.shape[0], x.shape[1]
    Co, Cg, kh, kw = W.shape
    oh = conv_output_size(x.shape[2], kh, sh, ph, dh)
    ow = conv_output_size(x.shape[3], kw, sw, pw, dw)
    y = xp.empty((N, Co, oh, ow), x.dtype)
    if _use_direct(W.shape, groups):
        launch(_direct_forward_kernel, y.size, x, W, sh, sw, ph, pw, dh, dw, groups, y)
    else:
        G, P, R = groups, oh * ow, Cg * kh * kw
        Wm = W.reshape(G, Co // G, R)
        if _pointwise(x.shape, W.shape, (oh, ow), stride, padding):
            y[...] = xp.matmul(Wm, x.reshape(N, G, R, P)).reshape(N, Co, oh, ow)
        else:
            chunk = batch_chunk(C * kh * kw * P * x.itemsize, N)
            col = xp.empty((chunk, C * kh * kw, P), x.dtype)
            for n0 in range(0, N, chunk):
                nb = min(chunk, N - n0)
                c = _im2col(x[n0:n0 + nb], kh, kw, stride, padding, dilation, oh, ow,
                            col[:nb])
                y[n0:n0 + nb] = xp.matmul(Wm, c.reshape(nb, G, R, P)).reshape(nb, Co, oh, ow)
    if b is not None:
        y += b.reshape(1, Co, 1, 1)
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx on the GPU: col2im(W^T gy) as a gather, or the direct gather for depthwise."""
    return _backward_input(gy, W, x_shape, stride, padding, dilation, groups, atomic=False)


def conv2d_backward_input_atomic(gy, W, x_shape, stride, padding, dilation, groups):
    """gx on the GPU with the atomic (non-deterministic) col2im scatter."""
    return _backward_input(gy, W, x_shape, stride, padding, dilation, groups, atomic=True)


def _backward_input(gy, W, x_shape, stride, padding, dilation, groups, atomic):
    xp = get_array_module(gy)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, C = x_shape[0], x_shape[1]
    Co, Cg, kh, kw = W.shape
    oh, ow = gy.shape[2], gy.shape[3]
    gx = xp.empty(x_shape, gy.dtype)
    if _use_direct(W.shape, groups):
        launch(_direct_backward_input_kernel, gx.size, gy, W, sh, sw, ph, pw, dh, dw, groups,
               gx)
        return gx
    G, P, R = groups, oh * ow, Cg * kh * kw
    WmT = W.reshape(G, Co // G, R).transpose(0, 2, 1)
    if _pointwise(x_shape, W.shape, (oh, ow), stride, padding):  # the column gradient is gx
        gx[...] = xp.matmul(WmT, gy.reshape(N, G, Co // G, P)).reshape(x_shape)
        return gx
    chunk = batch_chunk(C * kh * kw * P * gy.itemsize, N)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        # (G, R, Cog) @ (nb, G, Cog, P) -> (nb, G, R, P) = the column matrix (nb, C*kh*kw, P)
        gcol = xp.matmul(WmT, gy[n0:n0 + nb].reshape(nb, G, Co // G, P))
        gcol = xp.ascontiguousarray(gcol).reshape(nb, C * kh * kw, P)
        if atomic:
            part = xp.zeros((nb,) + tuple(x_shape[1:]), gy.dtype)
            launch(_col2im_atomic_kernel, gcol.size, gcol, kh, kw, sh, sw, ph, pw, dh, dw, oh,
                   ow, part)
        else:
            part = xp.empty((nb,) + tuple(x_shape[1:]), gy.dtype)
            launch(_col2im_kernel, part.size, gcol, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                   part)
        gx[n0:n0 + nb] = part
    return gx


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW on the GPU: sum over images of gy @ im2col(x)^T per group (cuBLAS)."""
    xp = get_array_module(x)
    N, C = x.shape[0], x.shape[1]
    Co, Cg, kh, kw = W_shape
    oh, ow = gy.shape[2], gy.shape[3]
    G, P, R = groups, oh * ow, Cg * kh * kw
    gW = xp.zeros((G, Co // G, R), x.dtype)
    if _pointwise(x.shape, W_shape, (oh, ow), stride, padding):
        g = gy.reshape(N, G, Co // G, P)
        gW += xp.matmul(g, x.reshape(N, G, R, P).transpose(0, 1, 3, 2)).sum(axis=0)
        return gW.reshape(W_shape)
    chunk = batch_chunk(C * kh * kw * P * x.itemsize, N)
    col = xp.empty((chunk, C * kh * kw, P), x.dtype)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        c = _im2col(x[n0:n0 + nb], kh, kw, stride, padding, dilation, oh, ow, col[:nb])
        g = gy[n0:n0 + nb].reshape(nb, G, Co // G, P)
        gW += xp.matmul(g, c.reshape(nb, G, R, P).transpose(0, 1, 3, 2)).sum(axis=0)
    return gW.reshape(W_shape)


# ``impl='cuda_atomic'``: the same forward and weight gradient, the atomic col2im scatter
ATOMIC = SimpleNamespace(conv2d_forward=conv2d_forward,
                         conv2d_backward_input=conv2d_backward_input_atomic,
                         conv2d_backward_weight=conv2d_backward_weight)
