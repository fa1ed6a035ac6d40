"""Convolution as matrix multiplication: im2col + GEMM (the default CPU algorithm).

**Forward.** ``im2col`` copies, for every image, each input pixel that a kernel tap reads
into a column matrix ``col`` of shape ``(C*kh*kw, oh*ow)``: row ``r = (c*kh + i)*kw + j``
holds, for every output pixel ``p = oy*ow + ox``, the input value
``x[c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]`` (0 in the padding). The convolution of one
group is then one matrix product::

    y[n, g] (Cout/G, oh*ow) = W[g] (Cout/G, Cg*kh*kw) @ col[n, g] (Cg*kh*kw, oh*ow)

Rows of ``col`` are ordered channel-major, so the rows of group ``g`` are the contiguous
block ``[g*Cg*kh*kw, (g+1)*Cg*kh*kw)`` and the product writes straight into ``y``'s NCHW
memory: ``np.matmul`` over a batch of ``(N, G)`` matrices, each one BLAS SGEMM/DGEMM call.

**Backward.** The input gradient is the same product transposed, ``gcol = W[g]^T @ gy``,
followed by ``col2im``, the adjoint of ``im2col``: each column entry is added back onto the
input pixel it was copied from. ``col2im`` is parallel over ``(n, c)`` input planes; each
plane is owned by one thread that sums its taps in a fixed order, so the result has the
same bits on every run (no atomics, no races). The weight gradient is
``gW[g] = sum_n gy[n, g] @ col[n, g]^T``, summed over the batch in order.

**Cost.** Arithmetic: ``2 * N * Cout * Cg*kh*kw * oh*ow`` FLOPs, all inside BLAS, which runs
near the machine's GEMM peak when ``Cout``, ``Cg*kh*kw`` and ``oh*ow`` are all large.
Memory traffic: ``im2col`` writes ``kh*kw`` times the (strided) input, ``C*kh*kw*oh*ow``
values per image, and the GEMM reads it back, so for 3x3 layers the column matrix is 9x
the input; it is wasteful for depthwise layers (``Cg = 1``: a 9x copy to feed GEMMs whose
inner dimension is only ``kh*kw``), where ``direct.py`` is used instead. A 1x1, stride-1,
unpadded convolution needs no ``col`` at all: the input already is its column matrix.

**Workspace.** The column buffer is capped at ``workspace_limit()`` bytes (default
256 MiB, ``set_workspace_limit``): the batch is processed in chunks of as many images as
fit (at least one), so memory stays bounded on large inputs. One image's column matrix
must itself stay within ``validation.LIMITS["max_elements"]`` (``column_chunk`` raises a
``LimitError`` before allocating it). The buffer is kept between
calls (one per thread, dtype and slot; ``release_workspace()`` frees them): a fresh
``np.empty`` of tens of MiB costs a page fault per 4 KiB on first touch, about 8% of a
56x56x64 convolution.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange, uint64

from scratchvision.kernels import gemm
from scratchvision.kernels.conv._common import (ConvGeometry, conv_geometry, conv_output_size,
                                               valid_range)
from scratchvision.validation import check_limit

_WORKSPACE_LIMIT = 256 * 2 ** 20


def workspace_limit() -> int:
    """Bytes the im2col (and Winograd) scratch buffers may use per call."""
    return _WORKSPACE_LIMIT


def set_workspace_limit(nbytes: int) -> int:
    """Cap the scratch buffers at ``nbytes`` (the batch is chunked to fit); returns the old cap."""
    global _WORKSPACE_LIMIT
    if int(nbytes) < 1:
        raise ValueError(f"workspace limit must be a positive number of bytes, got {nbytes}")
    old, _WORKSPACE_LIMIT = _WORKSPACE_LIMIT, int(nbytes)
    return old


_SCRATCH = threading.local()


def scratch(shape, dtype, slot: int = 0) -> np.ndarray:
    """A reusable C-contiguous array of ``shape`` (contents undefined) from this thread's cache.

    Callers never return it (results are fresh arrays) and use distinct ``slot`` numbers for
    buffers alive at the same time.
    """
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    buf = bufs.get((slot, dtype))
    if buf is None or buf.size < n:
        buf = bufs[(slot, dtype)] = np.empty(n, dtype)
    return buf[:n].reshape(shape)


def release_workspace() -> None:
    """Free this thread's cached scratch buffers."""
    _SCRATCH.bufs = {}


def batch_chunk(bytes_per_image: int, n: int) -> int:
    """Images per chunk so that the scratch buffer stays under the workspace limit (>= 1)."""
    if bytes_per_image <= 0:
        return max(n, 1)
    return int(max(1, min(n, _WORKSPACE_LIMIT // bytes_per_image)))


def column_chunk(rows: int, P: int, itemsize: int, n: int) -> int:
    """Images per chunk for a ``rows x P`` column matrix per image (``batch_chunk``), after
    checking that one image's matrix is within ``LIMITS["max_elements"]``."""
    check_limit(rows * P, "conv2d's im2col column matrix for one image")
    return batch_chunk(rows * P * itemsize, n)


@njit(parallel=True, cache=True)
def im2col(x, g: ConvGeometry, col):
    """Fill ``col`` (nb, C*kh*kw, oh*ow) with the input pixels each tap reads from ``x``."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    nb, C, H, Wd = x.shape
    K = kh * kw
    xf = x.reshape(nb * C, H * Wd)              # planes as flat rows
    for t in prange(nb * C * K):
        # t -> (n, r) with r = (c*kh + i)*kw + j, one row of one image's column matrix
        n = t // (C * K)
        r = t % (C * K)
        c = r // K
        i = (r % K) // kw
        j = r % kw
        row = col[n, r]
        src = xf[n * C + c]
        oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
        ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
        m = uint64(ox_hi - ox_lo)
        for oy in range(oh):
            base = oy * ow
            if oy < oy_lo or oy >= oy_hi:       # the whole output row reads padding
                for ox in range(ow):
                    row[base + ox] = 0
                continue
            for ox in range(ox_lo):
                row[base + ox] = 0
            # flat offsets of col entry (oy, ox_lo) and of the input pixel it copies,
            # (oy*sh - ph + i*dh, ox_lo*sw - pw + j*dw); unsigned, so Numba adds no
            # negative-index check and the unit-stride copy vectorises
            db = uint64(base + ox_lo)
            sb = uint64((oy * sh - ph + i * dh) * Wd + ox_lo * sw + j * dw - pw)
            if sw == 1:
                for q in range(m):
                    row[db + q] = src[sb + q]
            else:
                ss = uint64(sw)
                for q in range(m):
                    row[db + q] = src[sb + q * ss]
            for ox in range(ox_hi, ow):
                row[base + ox] = 0
    return col


@njit(parallel=True, cache=True)
def col2im(col, g: ConvGeometry, gx):
    """Adjoint of ``im2col``: sum each column entry back onto its input pixel of ``gx``."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    nb, C, H, Wd = gx.shape
    gxf = gx.reshape(nb * C, H * Wd)
    for t in prange(nb * C):
        # t -> (n, c): one thread owns one input plane, so the sums need no atomics
        n = t // C
        c = t % C
        plane = gxf[t]
        plane[:] = 0
        for i in range(kh):
            oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
            for j in range(kw):
                ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
                row = col[n, (c * kh + i) * kw + j]
                m = uint64(ox_hi - ox_lo)
                for oy in range(oy_lo, oy_hi):
                    # col entry (oy, ox) goes back to input pixel (oy*sh - ph + i*dh, ...)
                    sb = uint64(oy * ow + ox_lo)
                    db = uint64((oy * sh - ph + i * dh) * Wd + ox_lo * sw + j * dw - pw)
                    if sw == 1:
                        for q in range(m):
                            plane[db + q] += row[sb + q]
                    else:
                        ss = uint64(sw)
                        for q in range(m):
                            plane[db + q * ss] += row[sb + q]
    return gx


def _geometry(x_shape, W_shape, gy_hw, stride, padding, dilation):
    """Shared sizes: (N, C, Co, Cg, the ConvGeometry, pointwise)."""
    N, C = x_shape[0], x_shape[1]
    Co, Cg, kh, kw = W_shape
    oh, ow = gy_hw
    g = conv_geometry((kh, kw), stride, padding, dilation, (oh, ow))
    # A 1x1 kernel at stride 1 without padding reads every pixel once, in order: col == x.
    # (Not when x is larger than the output: conv_transpose2d's output_padding adds rows
    # and columns to the "x" of its col2im that no tap reads.)
    pointwise = kh == 1 and kw == 1 and tuple(stride) == (1, 1) and tuple(padding) == (0, 0) \
        and tuple(x_shape[2:]) == (oh, ow)
    return N, C, Co, Cg, g, pointwise


def _column_products(x, W_shape, out_hw, stride, padding, dilation, groups, W=None,
                     gy=None):
    """The loop over batch chunks that reads ``im2col(x)``: ``y = W @ col`` when ``W`` is
    given, ``gW = sum_n gy[n] @ col[n]^T`` when ``gy`` is given (``out_hw`` the output's
    size); both from one column matrix per chunk when both are. Returns (y, gW), None where
    not asked."""
    N, C, Co, Cg, g, pointwise = _geometry(x.shape, W_shape, out_hw, stride, padding,
                                           dilation)
    G, P, R = groups, g.oh * g.ow, Cg * g.kh * g.kw
    chunk = max(N, 1) if pointwise else column_chunk(C * g.kh * g.kw, P, x.itemsize, N)
    y = None if W is None else np.empty((N, Co, g.oh, g.ow), x.dtype)
    Wm = None if W is None else W.reshape(G, Co // G, R)           # (G, Cog, Cg*kh*kw)
    gW = None if gy is None else np.zeros((G, Co // G, R), x.dtype)
    col = None if pointwise else scratch((chunk, C * g.kh * g.kw, P), x.dtype)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        if pointwise:
            c = x[n0:n0 + nb].reshape(nb, G, R, P)
        else:
            c = im2col(x[n0:n0 + nb], g, col[:nb])
            c = c.reshape(nb, G, R, P)                             # (nb, G, Cg*kh*kw, oh*ow)
        if W is not None:
            gemm.matmul(Wm, c, y[n0:n0 + nb].reshape(nb, G, Co // G, P))
        if gy is not None:
            gyc = gy[n0:n0 + nb].reshape(nb, G, Co // G, P)
            # (nb, G, Cog, P) @ (nb, G, P, R) -> (nb, G, Cog, R), summed over the images in
            # order
            part = gemm.matmul(gyc, c.transpose(0, 1, 3, 2),
                               np.empty((nb, G, Co // G, R), x.dtype))
            gW += part.sum(axis=0)
    return y, None if gW is None else gW.reshape(W_shape)


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by im2col + batched GEMM, chunked over the batch."""
    oh = conv_output_size(x.shape[2], W.shape[2], stride[0], padding[0], dilation[0])
    ow = conv_output_size(x.shape[3], W.shape[3], stride[1], padding[1], dilation[1])
    y, _ = _column_products(x, W.shape, (oh, ow), stride, padding, dilation, groups, W=W)
    if b is not None:
        y += b.reshape(1, W.shape[0], 1, 1)
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx = col2im(W^T @ gy), chunked over the batch."""
    N, C, Co, Cg, g, pointwise = _geometry(x_shape, W.shape, gy.shape[2:], stride, padding,
                                           dilation)
    G, P, R = groups, g.oh * g.ow, Cg * g.kh * g.kw
    chunk = max(N, 1) if pointwise else column_chunk(C * g.kh * g.kw, P, gy.itemsize, N)
    gx = np.empty(x_shape, gy.dtype)
    WmT = W.reshape(G, Co // G, R).transpose(0, 2, 1)             # (G, Cg*kh*kw, Cog)
    gcol = None if pointwise else scratch((chunk, C * g.kh * g.kw, P), gy.dtype)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        gyc = gy[n0:n0 + nb].reshape(nb, G, Co // G, P)
        if pointwise:
            gemm.matmul(WmT, gyc, gx[n0:n0 + nb].reshape(nb, G, R, P))
        else:
            gemm.matmul(WmT, gyc, gcol[:nb].reshape(nb, G, R, P))
            col2im(gcol[:nb], g, gx[n0:n0 + nb])
    return gx


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW = sum_n gy[n] @ im2col(x[n])^T per group, chunked over the batch."""
    return _column_products(x, W_shape, gy.shape[2:], stride, padding, dilation, groups,
                            gy=gy)[1]


def conv2d_forward_and_weight_grad(x, W, gy, stride, padding, dilation, groups):
    """``(conv2d_forward(x, W), conv2d_backward_weight(gy, x, W.shape))`` with one ``im2col``
    of ``x`` per chunk serving both products (``gy`` has the forward's output shape).

    This is conv_transpose2d's backward, where ``x`` is the transposed conv's output gradient
    and ``gy`` its input: its input gradient is conv2d of that gradient and its weight
    gradient conv2d's weight gradient with the same column matrix, so building it once saves
    a copy of ``kh*kw`` times the gradient. The same loop as the two functions above
    (``_column_products``): the same bits.
    """
    return _column_products(x, W.shape, gy.shape[2:], stride, padding, dilation, groups,
                            W=W, gy=gy)
