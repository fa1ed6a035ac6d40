"""Pooling and unpooling on the GPU: numba.cuda kernels, one thread per output element
(forward) or per *input* element (deterministic backward).

Same signatures as ``reference.py``. Arrays are CuPy arrays on a real GPU, or NumPy arrays
under Numba's CUDA simulator (how CI runs these kernels); launches go on CuPy's current
stream. The scalar window helpers of ``shapes.py`` are compiled here as device functions.

Backward passes, two formulations each:

* **gather** (the default, deterministic): one thread per input pixel ``(p, h, w)`` finds
  the outputs whose windows contain it and sums their contributions in a fixed order (rows
  then columns of the output), so the result has the same bits on every run. Window ``o``
  covers rows ``o*sy - ph + i*dy`` (i < kh), so input row ``h`` is tap ``i`` of output row
  ``o = (h + ph - i*dy) / sy`` whenever that division is exact and ``0 <= o < out_h``.
* **atomic** (``ATOMIC`` below, ``impl='cuda_atomic'``): one thread per output scatters its
  gradient with ``cuda.atomic.add``. Usually faster for non-overlapping windows, but
  **non-deterministic**: float additions land in whatever order the threads run.

max_unpool2d's forward is a scatter by ``indices``; with duplicate indices the last
writer wins in an unspecified order (as in torch's CUDA kernel); its backward is a gather.

The window kernels take the eight fields of a ``shapes.PoolWindow`` (``kh, kw, sy, sx, ph,
pw, dy, dx``, in that order; avg pooling's dilation is 1), passed as ``*pool_window(...)``:
unlike the CPU kernels, which take the NamedTuple itself, these are launched by
``cuda_support``, whose CuPy launcher passes arrays and scalars only.
"""
from __future__ import annotations

from types import SimpleNamespace

from numba import cuda

from scratchvision.backend import get_array_module
from scratchvision.kernels.cuda_support import launch
from scratchvision.kernels.pool import shapes
from scratchvision.kernels.pool.shapes import pool_output_hw, pool_window

_avg_window = cuda.jit(device=True)(shapes.avg_window)
_adaptive_start = cuda.jit(device=True)(shapes.adaptive_start)
_adaptive_end = cuda.jit(device=True)(shapes.adaptive_end)


# --------------------------------------------------------------------------- max_pool2d
@cuda.jit
def _max_pool_fwd(x, y, idx, kh, kw, sy, sx, ph, pw, dy, dx):  # pragma: no cover (device)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w                            # t = (p * out_h + oh) * out_w + ow
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    h0, w0 = oh * sy - ph, ow * sx - pw
    best = -float("inf")
    arg = -1
    for i in range(kh):
        hh = h0 + i * dy
        if hh < 0 or hh >= h:
            continue                          # padding row: never wins
        for j in range(kw):
            ww = w0 + j * dx
            if ww < 0 or ww >= w:
                continue
            v = x[p, hh, ww]
            if v > best or v != v or arg < 0:  # first max wins; NaN wins; first real tap
                best = v
                arg = hh * w + ww
    y[p, oh, ow] = best
    idx[p, oh, ow] = arg


@cuda.jit
def _max_pool_bwd_gather(gy, idx, gx, kh, kw, sy, sx, ph, pw, dy, dx):  # pragma: no cover
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    t = cuda.grid(1)
    if t >= planes * h * w:
        return
    ww = t % w                                # t = (p * h + hh) * w + ww: one input pixel
    hh = (t // w) % h
    p = t // (w * h)
    me = hh * w + ww
    acc = 0.0
    for i in range(kh):                       # output rows having hh as their tap i
        num = hh + ph - i * dy
        if num < 0 or num % sy != 0:
            continue
        oh = num // sy
        if oh >= out_h:
            continue
        for j in range(kw):
            num_w = ww + pw - j * dx
            if num_w < 0 or num_w % sx != 0:
                continue
            ow = num_w // sx
            if ow < out_w and idx[p, oh, ow] == me:
                acc += gy[p, oh, ow]
    gx[p, hh, ww] = acc


@cuda.jit
def _max_pool_bwd_atomic(gy, idx, gx):  # pragma: no cover (device)
    planes, n_out = gy.shape
    t = cuda.grid(1)
    if t >= planes * n_out:
        return
    p = t // n_out                            # t = p * n_out + k: one output
    k = t - p * n_out
    cuda.atomic.add(gx, (p, idx[p, k]), gy[p, k])     # non-deterministic order


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(N, C, H, W) -> y (N, C, out_h, out_w) and int64 argmax indices ``h * W + w``."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = pool_output_hw((h, w), kernel_size, stride, padding, dilation, ceil_mode)
    y = xp.empty((n, c, out_h, out_w), x.dtype)
    idx = xp.empty((n, c, out_h, out_w), xp.int64)
    if y.size:
        launch(_max_pool_fwd, y.size, x.reshape(n * c, h, w),
               y.reshape(n * c, out_h, out_w), idx.reshape(n * c, out_h, out_w),
               *pool_window(kernel_size, stride, padding, dilation))
    return y, idx


def max_pool2d_backward(gy, indices, x_shape, kernel_size, stride, padding, dilation,
                        ceil_mode):
    """gx (x_shape), deterministic gather: each input pixel sums the gy it won."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        oh, ow = gy.shape[2], gy.shape[3]
        launch(_max_pool_bwd_gather, gx.size, gy.reshape(n * c, oh, ow),
               indices.reshape(n * c, oh, ow), gx,
               *pool_window(kernel_size, stride, padding, dilation))
    return gx.reshape(x_shape)


def max_pool2d_backward_atomic(gy, indices, x_shape, kernel_size, stride, padding, dilation,
                               ceil_mode):
    """gx (x_shape) by atomic scatter from each output (non-deterministic summation order)."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h * w), gy.dtype)
    if gy.size:
        launch(_max_pool_bwd_atomic, gy.size, gy.reshape(n * c, -1),
               indices.reshape(n * c, -1), gx)
    return gx.reshape(x_shape)


# --------------------------------------------------------------------------- avg_pool2d
@cuda.jit
def _avg_pool_fwd(x, y, kh, kw, sy, sx, ph, pw, dy, dx, count_include_pad,
                  divisor):  # pragma: no cover (device)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w                            # t = (p * out_h + oh) * out_w + ow
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    h0, h1, len_h = _avg_window(oh, sy, ph, kh, h, count_include_pad)
    w0, w1, len_w = _avg_window(ow, sx, pw, kw, w, count_include_pad)
    total = 0.0
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            total += x[p, hh, ww]
    y[p, oh, ow] = total / (divisor if divisor > 0 else len_h * len_w)


@cuda.jit
def _avg_pool_bwd_gather(gy, gx, kh, kw, sy, sx, ph, pw, dy, dx, count_include_pad,
                         divisor):  # pragma: no cover (device)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    t = cuda.grid(1)
    if t >= planes * h * w:
        return
    ww = t % w                                # t = (p * h + hh) * w + ww: one input pixel
    hh = (t // w) % h
    p = t // (w * h)
    # windows containing hh: start = oh*sy - ph <= hh < start + kh
    oh_lo = max(0, (hh + ph - kh) // sy + 1)
    oh_hi = min(out_h - 1, (hh + ph) // sy)
    ow_lo = max(0, (ww + pw - kw) // sx + 1)
    ow_hi = min(out_w - 1, (ww + pw) // sx)
    acc = 0.0
    for oh in range(oh_lo, oh_hi + 1):
        h0, h1, len_h = _avg_window(oh, sy, ph, kh, h, count_include_pad)
        for ow in range(ow_lo, ow_hi + 1):
            w0, w1, len_w = _avg_window(ow, sx, pw, kw, w, count_include_pad)
            acc += gy[p, oh, ow] / (divisor if divisor > 0 else len_h * len_w)
    gx[p, hh, ww] = acc


@cuda.jit
def _avg_pool_bwd_atomic(gy, gx, kh, kw, sy, sx, ph, pw, dy, dx, count_include_pad,
                         divisor):  # pragma: no cover (device)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    ow = t % out_w
    oh = (t // out_w) % out_h
    p = t // (out_w * out_h)
    h0, h1, len_h = _avg_window(oh, sy, ph, kh, h, count_include_pad)
    w0, w1, len_w = _avg_window(ow, sx, pw, kw, w, count_include_pad)
    g = gy[p, oh, ow] / (divisor if divisor > 0 else len_h * len_w)
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            cuda.atomic.add(gx, (p, hh, ww), g)          # non-deterministic order


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    """(N, C, H, W) -> (N, C, out_h, out_w) window means (see ``reference.py``)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = pool_output_hw((h, w), kernel_size, stride, padding, (1, 1), ceil_mode)
    y = xp.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        launch(_avg_pool_fwd, y.size, x.reshape(n * c, h, w),
               y.reshape(n * c, out_h, out_w), *pool_window(kernel_size, stride, padding),
               bool(count_include_pad), int(divisor_override or 0))
    return y


def _avg_backward(kernel, n_threads_of, gy, x_shape, kernel_size, stride, padding,
                  count_include_pad, divisor_override):
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        g3 = gy.reshape(n * c, gy.shape[2], gy.shape[3])
        launch(kernel, n_threads_of(g3, gx), g3, gx,
               *pool_window(kernel_size, stride, padding), bool(count_include_pad),
               int(divisor_override or 0))
    return gx.reshape(x_shape)


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """gx (x_shape), deterministic gather over the windows containing each input pixel."""
    return _avg_backward(_avg_pool_bwd_gather, lambda g, gx: gx.size, gy, x_shape,
                         kernel_size, stride, padding, count_include_pad, divisor_override)


def avg_pool2d_backward_atomic(gy, x_shape, kernel_size, stride, padding, ceil_mode,
                               count_include_pad, divisor_override):
    """gx (x_shape) by atomic scatter from each output (non-deterministic order)."""
    return _avg_backward(_avg_pool_bwd_atomic, lambda g, gx: g.size, gy, x_shape,
                         kernel_size, stride, padding, count_include_pad, divisor_override)


# ------------------------------------------------------------------ adaptive_avg_pool2d
@cuda.jit
def _adaptive_fwd(x, y):  # pragma: no cover (device)
    planes, h, w = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    t = cuda.grid(1)
    if t >= planes * out_h * out_w:
        return
    j = t % out_w                             # t = (p * out_h + i) * out_w + j
    i = (t // out_w) % out_h
    p = t // (out_w * out_h)
    h0, h1 = _adaptive_start(i, out_h, h), _adaptive_end(i, out_h, h)
    w0, w1 = _adaptive_start(j, out_w, w), _adaptive_end(j, out_w, w)
    total = 0.0
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            total += x[p, hh, ww]
    y[p, i, j] = total / ((h1 - h0) * (w1 - w0))


@cuda.jit
def _adaptive_bwd_gather(gy, gx):  # pragma: no cover (device)
    planes, h, w = gx.shape
    out_h, out_w = gy.shape[1], gy.shape[2]
    t = cuda.grid(1)
    if t >= planes * h * w:
        return
    ww = t % w                                # t = (p * h + hh) * w + ww: one input pixel
    hh = (t // w) % h
    p = t // (w * h)
    acc = 0.0
    # bins are ordered and overlap by < 1 bin: start the scan one bin before floor(hh*oh/H)
    for i in range(max(0, (hh * out_h) // h - 1), out_h):
        h0, h1 = _adaptive_start(i, out_h, h), _adaptive_end(i, out_h, h)
        if h0 > hh:
            break
        if hh >= h1:
            continue
        for j in range(max(0, (ww * out_w) // w - 1), out_w):
            w0, w1 = _adaptive_start(j, out_w, w), _adaptive_end(j, out_w, w)
            if w0 > ww:
                break
            if ww < w1:
                acc += gy[p, i, j] / ((h1 - h0) * (w1 - w0))
    gx[p, hh, ww] = acc


def adaptive_avg_pool2d_forward(x, output_size):
    """(N, C, H, W) -> (N, C, oh, ow): bin (i, j) averages its rows x columns."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = output_size
    y = xp.empty((n, c, out_h, out_w), x.dtype)
    if y.size:
        launch(_adaptive_fwd, y.size, x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w))
    return y


def adaptive_avg_pool2d_backward(gy, x_shape):
    """gx (x_shape), deterministic gather over the bins containing each input pixel."""
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h, w), gy.dtype)
    if gy.size:
        launch(_adaptive_bwd_gather, gx.size,
               gy.reshape(n * c, gy.shape[2], gy.shape[3]), gx)
    return gx.reshape(x_shape)


# -------------------------------------------------------------------------- max_unpool2d
@cuda.jit
def _unpool_fwd(x, idx, y):  # pragma: no cover (device)
    planes, n_in = x.shape
    t = cuda.grid(1)
    if t < planes * n_in:
        p = t // n_in                         # t = p * n_in + k: one input value
        k = t - p * n_in
        y[p, idx[p, k]] = x[p, k]             # duplicates: an unspecified writer wins


@cuda.jit
def _unpool_bwd(gy, idx, gx):  # pragma: no cover (device)
    planes, n_in = gx.shape
    t = cuda.grid(1)
    if t < planes * n_in:
        p = t // n_in
        k = t - p * n_in
        gx[p, k] = gy[p, idx[p, k]]           # gather: deterministic


def max_unpool2d_forward(x, indices, output_size):
    """x, indices (N, C, H, W) -> y (N, C, out_h, out_w): zeros with x written at indices."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    out_h, out_w = output_size
    y = xp.zeros((n * c, out_h * out_w), x.dtype)
    if x.size:
        launch(_unpool_fwd, x.size, x.reshape(n * c, -1), indices.reshape(n * c, -1), y)
    return y.reshape(n, c, out_h, out_w)


def max_unpool2d_backward(gy, indices):
    """gx (indices.shape): gx[n, c, i, j] = gy[n, c].flat[indices[n, c, i, j]]."""
    xp = get_array_module(gy)
    n, c = gy.shape[:2]
    gx = xp.empty(indices.shape, gy.dtype)
    if gx.size:
        launch(_unpool_bwd, gx.size, gy.reshape(n * c, -1), indices.reshape(n * c, -1),
               gx.reshape(n * c, -1))
    return gx


# ``impl='cuda_atomic'``: the same forwards, atomic (non-deterministic) scatter backwards
ATOMIC = SimpleNamespace(
    max_pool2d_forward=max_pool2d_forward, max_pool2d_backward=max_pool2d_backward_atomic,
    avg_pool2d_forward=avg_pool2d_forward, avg_pool2d_backward=avg_pool2d_backward_atomic,
    adaptive_avg_pool2d_forward=adaptive_avg_pool2d_forward,
    adaptive_avg_pool2d_backward=adaptive_avg_pool2d_backward,
    max_unpool2d_forward=max_unpool2d_forward, max_unpool2d_backward=max_unpool2d_backward)
