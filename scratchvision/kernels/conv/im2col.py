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
same bits on every run (no atomics, no races). The weight gradient is computed transposed,
``gW[g]^T = sum_n col[n, g] @ gy[n, g]^T`` (OpenBLAS ran the 64-channel 56x56 layer's
product ~1.6x as fast this way round as ``gy @ col^T``), summed over the batch in order.

**Fused loops (the default).** Written whole, the column matrix of a batch is tens of MiB
(9x the input for 3x3 layers): im2col streams it out to memory and the GEMM streams it back
in, and col2im reads ``gcol`` back in the same way. Where NumPy's OpenBLAS can be called
from Numba (``gemm.AVAILABLE``; see ``gemm.py``) and the layer is not pointwise, each of
the three products instead runs in one Numba parallel loop whose tasks call
``cblas_?gemm`` on pieces small enough to stay in cache (``COLUMN_BLOCK_BYTES``, 2 MiB):

* forward and weight gradient: a task is one image's block of ``rows`` output rows; it
  fills that block's ``(C*kh*kw, rows*ow)`` column matrix into its thread's buffer, then
  multiplies ``y[n, :, block] = W @ block`` and/or the task's own partial
  ``gW^T = block @ gy[n, :, block]^T`` (the partials are summed in task order afterwards);
* input gradient: a task is one image's run of input planes; it multiplies their rows of
  ``W^T @ gy[n]`` into its buffer and scatters them onto those planes (col2im's per-plane
  sums, ``_scatter_plane``).

Tasks are cut by the shapes alone and the threads take equal runs of them, so the bits do
not depend on the number of threads. Measured 2026-12-03 against the unfused loops
(AVX-512 GEMMs, 2 threads, batch 8, paired rounds), fused / unfused time: forward
0.78-0.90 (0.99 pointwise, which has no column matrix), input gradient 0.70-0.96, weight
gradient 0.59-0.86, a 4x4 stride-2 transposed convolution's forward 0.61 and backward 0.71.
Without a usable OpenBLAS the unfused loops below run (``np.matmul``).

**Cost.** Arithmetic: ``2 * N * Cout * Cg*kh*kw * oh*ow`` FLOPs, all inside BLAS, which runs
near the machine's GEMM peak when ``Cout``, ``Cg*kh*kw`` and ``oh*ow`` are all large.
Memory traffic (unfused): ``im2col`` writes ``kh*kw`` times the (strided) input,
``C*kh*kw*oh*ow`` values per image, and the GEMM reads it back; it is wasteful for
depthwise layers (``Cg = 1``: a 9x copy to feed GEMMs whose inner dimension is only
``kh*kw``), where ``direct.py`` is used instead. A 1x1, stride-1, unpadded convolution needs
no ``col`` at all: the input already is its column matrix.

**Workspace.** The unfused column buffer is capped at ``workspace_limit()`` bytes (default
256 MiB, ``set_workspace_limit``): the batch is processed in chunks of as many images as
fit (at least one), so memory stays bounded on large inputs; the fused loops' per-task
partial weight gradients are chunked the same way. One image's column matrix (unfused) or
one task's block (fused) must itself stay within ``validation.LIMITS["max_elements"]`` (a
``LimitError`` before allocating it). The buffers are kept between
calls (one per thread, dtype and slot; ``release_workspace()`` frees them): a fresh
``np.empty`` of tens of MiB costs a page fault per 4 KiB on first touch, about 8% of a
56x56x64 convolution.
"""
from __future__ import annotations

import functools
import threading

import numba
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


@njit(cache=True)
def _fill_row(row, src, g: ConvGeometry, i, j, oy0, oy1, H, Wd):
    """Column-matrix row of tap ``(i, j)`` for output rows ``[oy0, oy1)``: ``row[(oy-oy0)*ow
    + ox]`` = input pixel ``(oy*sh - ph + i*dh, ox*sw - pw + j*dw)`` of the plane ``src``
    (flat), 0 in the padding."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
    ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
    m = uint64(ox_hi - ox_lo)
    for oy in range(oy0, oy1):
        base = (oy - oy0) * ow
        if oy < oy_lo or oy >= oy_hi:       # the whole output row reads padding
            for ox in range(ow):
                row[base + ox] = 0
            continue
        for ox in range(ox_lo):
            row[base + ox] = 0
        # flat offsets of the entry (oy, ox_lo) and of the input pixel it copies; unsigned,
        # so Numba adds no negative-index check and the unit-stride copy vectorises
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


@njit(parallel=True, cache=True)
def im2col(x, g: ConvGeometry, col):
    """Fill ``col`` (nb, C*kh*kw, oh*ow) with the input pixels each tap reads from ``x``."""
    kh, kw = g.kh, g.kw
    nb, C, H, Wd = x.shape
    K = kh * kw
    xf = x.reshape(nb * C, H * Wd)              # planes as flat rows
    for t in prange(nb * C * K):
        # t -> (n, r) with r = (c*kh + i)*kw + j, one row of one image's column matrix
        n = t // (C * K)
        r = t % (C * K)
        c = r // K
        _fill_row(col[n, r], xf[n * C + c], g, (r % K) // kw, r % kw, 0, g.oh, H, Wd)
    return col


# ------------------------------------------------------------ fused im2col + GEMM
# Bytes of one thread's column block: small enough to stay in the L2/L3 caches between
# being written and being read by the GEMM (measured, paired against the whole-chunk
# im2col forward: 0.5 MiB to 8 MiB blocks all won on the 64-channel 56x56 layer, 2-4 MiB
# did best on the 256-channel 14x14, stride-2 and 512-channel 7x7 ones)
COLUMN_BLOCK_BYTES = 2 * 2 ** 20


def _block_rows(col_rows: int, oh: int, ow: int, itemsize: int) -> int:
    """Output rows per task for a column matrix of ``col_rows`` rows: as many as fit
    ``COLUMN_BLOCK_BYTES`` (at least one), then evened out so that every task of an image
    has the same number (the last one at most fewer), since the threads take equal runs of
    tasks."""
    fit = COLUMN_BLOCK_BYTES // max(col_rows * ow * itemsize, 1)
    rows = int(max(1, min(oh, fit)))
    blocks = -(-oh // rows)
    return -(-oh // blocks)


@functools.lru_cache(maxsize=None)
def _fused_kernel(dtype_char: str):
    """The parallel loop of the fused products for one dtype (compiled per dtype: Numba
    bakes that dtype's ctypes GEMM function into the loop)."""
    gemm_fn, itemsize = gemm.blas_gemm(dtype_char), np.dtype(dtype_char).itemsize

    @njit(parallel=True)
    def run(x, g, rows, buf, Wm, y, gy, gWp, forward, weight):  # pragma: no cover
        # x (nb, C, H, W); Wm (G, Cog, R) and y (nb, Co, oh*ow) when `forward`; gy (nb, Co,
        # oh*ow) and gWp (nb*blocks, G, R, Cog) when `weight`; all C-contiguous. buf (T,
        # C*kh*kw, rows*ow): slot th owns buf[th]
        kh, kw, oh, ow = g.kh, g.kw, g.oh, g.ow
        nb, C, H, Wd = x.shape
        G, R, Cog = gWp.shape[1], gWp.shape[2], gWp.shape[3]
        K = kh * kw
        P = oh * ow
        T = buf.shape[0]
        ld = buf.shape[2]
        blocks = (oh + rows - 1) // rows
        ntask = nb * blocks
        item = uint64(itemsize)
        xf = x.reshape(nb * C, H * Wd)
        for th in prange(T):
            col = buf[th]
            # slot th takes an equal run of tasks; a task (image n, output rows [oy0, oy1))
            # is computed the same way whichever slot runs it, so the bits do not depend on
            # the number of threads
            for t in range(th * ntask // T, (th + 1) * ntask // T):
                n = t // blocks
                oy0 = (t % blocks) * rows
                oy1 = min(oh, oy0 + rows)
                width = (oy1 - oy0) * ow
                for r in range(C * K):
                    c = r // K
                    _fill_row(col[r], xf[n * C + c], g, (r % K) // kw, r % kw, oy0, oy1, H,
                              Wd)
                for grp in range(G):
                    rows_of_group = col.ctypes.data + uint64(grp * R * ld) * item
                    # the block's pixels of channels [grp*Cog, (grp+1)*Cog) of image n
                    out_block = uint64((n * G + grp) * Cog * P + oy0 * ow) * item
                    if forward:
                        # y[n, grp] (Cog, the block's pixels) = Wm[grp] @ col[grp's rows]
                        gemm_fn(gemm.ROW_MAJOR, gemm.NO_TRANS, gemm.NO_TRANS, Cog, width, R,
                                1.0, Wm.ctypes.data + uint64(grp * Cog * R) * item, R,
                                rows_of_group, ld, 0.0, y.ctypes.data + out_block, P)
                    if weight:
                        # gWp[t, grp] (R, Cog) = col[grp's rows] @ gy[n, grp, the block]^T
                        gemm_fn(gemm.ROW_MAJOR, gemm.NO_TRANS, gemm.TRANS, R, Cog, width,
                                1.0, rows_of_group, ld, gy.ctypes.data + out_block, P, 0.0,
                                gWp.ctypes.data + uint64((t * G + grp) * R * Cog) * item,
                                Cog)
    return run


def _fused(x, g: ConvGeometry, groups: int, Cog: int, Wm=None, gy=None):
    """The fused loop: ``y = conv(x, Wm)`` (N, G*Cog, oh, ow) when ``Wm`` (G, Cog, Cg*kh*kw)
    is given, ``gW = sum_n gy[n] @ col[n]^T`` (G, Cog, Cg*kh*kw) when ``gy`` is; (y, gW),
    None where not asked. Each task fills one block of output rows' column matrix into its
    thread's buffer and multiplies it while it is still in cache; the weight gradient's
    partial products, one per task, are summed in task order afterwards."""
    N, C, H, Wd = x.shape
    G, R = groups, (C // groups) * g.kh * g.kw
    rows = _block_rows(C * g.kh * g.kw, g.oh, g.ow, x.itemsize)
    check_limit(C * g.kh * g.kw * rows * g.ow,
                "conv2d's im2col column matrix block (one thread's output rows)")
    blocks = -(-g.oh // rows)
    buf = scratch((numba.get_num_threads(), C * g.kh * g.kw, rows * g.ow), x.dtype, slot=2)
    run = _fused_kernel(x.dtype.char)
    none = np.empty((1, 1, 1), x.dtype)
    y = None if Wm is None else np.empty((N, G * Cog, g.oh, g.ow), x.dtype)
    gW = None if gy is None else np.zeros((G, R, Cog), x.dtype)
    # the partial products, chunked over the images to stay within the workspace limit
    chunk = N if gy is None else batch_chunk(blocks * G * R * Cog * x.itemsize, N)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        gWp = (np.empty((1, G, R, Cog), x.dtype) if gy is None
               else scratch((nb * blocks, G, R, Cog), x.dtype, slot=3))
        with gemm.single_threaded_blas():
            run(x[n0:n0 + nb], g, rows, buf,
                none if Wm is None else Wm,
                none if y is None else y[n0:n0 + nb].reshape(nb, G * Cog, -1),
                none if gy is None else gy[n0:n0 + nb].reshape(nb, G * Cog, -1),
                gWp, Wm is not None, gy is not None)
        if gy is not None:
            gW += gWp.sum(axis=0)
    return y, None if gW is None else gW.transpose(0, 2, 1)


def _fusable(x, pointwise: bool) -> bool:
    """Whether the fused loop runs this call: NumPy's OpenBLAS callable from Numba, float32 or
    float64, and a column matrix to build (a pointwise layer's is the input itself)."""
    return not pointwise and gemm.AVAILABLE and x.dtype in (np.float32, np.float64)


@njit(cache=True)
def _scatter_plane(plane, rows, g: ConvGeometry, H, Wd):
    """One input plane of col2im: ``plane`` (flat, H*Wd) = the sum of its ``kh*kw`` column
    rows ``rows`` (kh*kw, oh*ow), each entry added onto the pixel it was copied from, taps in
    order (so every caller gets the same bits)."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    plane[:] = 0
    for i in range(kh):
        oy_lo, oy_hi = valid_range(oh, H, sh, ph, i * dh)
        for j in range(kw):
            ox_lo, ox_hi = valid_range(ow, Wd, sw, pw, j * dw)
            row = rows[i * kw + j]
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


@njit(parallel=True, cache=True)
def col2im(col, g: ConvGeometry, gx):
    """Adjoint of ``im2col``: sum each column entry back onto its input pixel of ``gx``."""
    nb, C, H, Wd = gx.shape
    K = g.kh * g.kw
    gxf = gx.reshape(nb * C, H * Wd)
    for t in prange(nb * C):
        # t -> (n, c): one thread owns one input plane, so the sums need no atomics
        n = t // C
        c = t % C
        _scatter_plane(gxf[t], col[n, c * K:(c + 1) * K], g, H, Wd)
    return gx


@functools.lru_cache(maxsize=None)
def _fused_col2im_kernel(dtype_char: str):
    """The parallel loop of the fused input gradient for one dtype (compiled per dtype)."""
    gemm_fn, itemsize = gemm.blas_gemm(dtype_char), np.dtype(dtype_char).itemsize

    @njit(parallel=True)
    def run(gy, Wm, g, planes, buf, gx):  # pragma: no cover (compiled)
        # gy (nb, Co, oh*ow), Wm (G, Cog, Cg*kh*kw), gx (nb, C, H, W), all C-contiguous; buf
        # (T, planes*kh*kw, oh*ow): slot th owns buf[th]
        nb, C, H, Wd = gx.shape
        G, Cog, R = Wm.shape
        Cg = C // G
        K = g.kh * g.kw
        P = g.oh * g.ow
        T = buf.shape[0]
        per_group = (Cg + planes - 1) // planes
        ntask = nb * G * per_group
        item = uint64(itemsize)
        gxf = gx.reshape(nb * C, H * Wd)
        for th in prange(T):
            gcol = buf[th]
            for t in range(th * ntask // T, (th + 1) * ntask // T):
                # task t -> image n, group grp, planes [c0, c1) of that group
                n = t // (G * per_group)
                grp = (t // per_group) % G
                c0 = (t % per_group) * planes
                c1 = min(Cg, c0 + planes)
                # gcol (rows of planes c0..c1, P) = Wm[grp][:, those rows]^T @ gy[n, grp]
                gemm_fn(gemm.ROW_MAJOR, gemm.TRANS, gemm.NO_TRANS, (c1 - c0) * K, P, Cog, 1.0,
                        Wm.ctypes.data + uint64(grp * Cog * R + c0 * K) * item, R,
                        gy.ctypes.data + uint64((n * G + grp) * Cog * P) * item, P, 0.0,
                        gcol.ctypes.data, P)
                for c in range(c0, c1):
                    rows = gcol[(c - c0) * K:(c - c0 + 1) * K]
                    _scatter_plane(gxf[n * C + grp * Cg + c], rows, g, H, Wd)
    return run


def _fused_backward_input(gy, Wm, g: ConvGeometry, x_shape) -> np.ndarray:
    """gx by the fused loop: each task multiplies the column rows of a run of input planes of
    one image into its thread's buffer and scatters them onto those planes at once, while
    they are in cache. The per-plane sums are col2im's (``_scatter_plane``)."""
    N, C, H, Wd = x_shape
    G, Cog, R = Wm.shape
    K, P = g.kh * g.kw, g.oh * g.ow
    fit = max(1, COLUMN_BLOCK_BYTES // max(K * P * gy.itemsize, 1))
    per_group = -(-(C // G) // fit)
    planes = -(-(C // G) // per_group)          # evened out over the group
    check_limit(planes * K * P,
                "conv2d's col2im column matrix block (one thread's input planes)")
    buf = scratch((numba.get_num_threads(), planes * K, P), gy.dtype, slot=2)
    run = _fused_col2im_kernel(gy.dtype.char)
    gx = np.empty(x_shape, gy.dtype)
    with gemm.single_threaded_blas():
        run(gy.reshape(N, G * Cog, P), Wm, g, planes, buf, gx)
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
    Wm = None if W is None else W.reshape(G, Co // G, R)           # (G, Cog, Cg*kh*kw)
    if _fusable(x, pointwise):
        y, gW = _fused(x, g, G, Co // G, Wm=Wm, gy=gy)
        return y, None if gW is None else gW.reshape(W_shape)
    chunk = max(N, 1) if pointwise else column_chunk(C * g.kh * g.kw, P, x.itemsize, N)
    y = None if W is None else np.empty((N, Co, g.oh, g.ow), x.dtype)
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
            # gW^T: (nb, G, R, P) @ (nb, G, P, Cog) -> (nb, G, R, Cog), summed over the
            # images in order. This way round OpenBLAS runs the 64-channel 56x56 layer's
            # product at ~1.6x the rate of gy @ col^T (its packing reads col's rows along
            # the inner dimension, contiguous)
            part = gemm.matmul(c, gyc.transpose(0, 1, 3, 2),
                               np.empty((nb, G, R, Co // G), x.dtype))
            gW += part.sum(axis=0).transpose(0, 2, 1)
    return y, None if gW is None else gW.reshape(W_shape)


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by im2col + GEMM (fused per block of output rows)."""
    oh = conv_output_size(x.shape[2], W.shape[2], stride[0], padding[0], dilation[0])
    ow = conv_output_size(x.shape[3], W.shape[3], stride[1], padding[1], dilation[1])
    y, _ = _column_products(x, W.shape, (oh, ow), stride, padding, dilation, groups, W=W)
    if b is not None:
        y += b.reshape(1, W.shape[0], 1, 1)
    return y


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx = col2im(W^T @ gy): fused per run of input planes, else chunked over the batch."""
    N, C, Co, Cg, g, pointwise = _geometry(x_shape, W.shape, gy.shape[2:], stride, padding,
                                           dilation)
    G, P, R = groups, g.oh * g.ow, Cg * g.kh * g.kw
    if _fusable(gy, pointwise):
        return _fused_backward_input(gy, W.reshape(G, Co // G, R), g, x_shape)
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
