"""Pooling kernels: max_pool2d (with argmax indices), avg_pool2d, adaptive_avg_pool2d and
max_unpool2d, forward and backward, on NCHW arrays (torch's semantics throughout).

Versions, all with the signatures below minus ``impl``:

* ``reference`` (``reference.py``): plain loops, the specification; read it first.
* ``cpu`` (``cpu.py``): Numba, parallel over output rows (forward) or planes (backward).
* ``cuda`` (``cuda.py``): numba.cuda kernels for CuPy arrays; deterministic gather
  backwards. ``cuda_atomic``: the same forwards with atomic-scatter backwards (faster,
  non-deterministic summation order).

This module normalises arguments (ints or pairs) and validates them with
``scratchvision.validation`` (errors that name the argument and the shapes; float32/float64
arrays only), bounds the output of adaptive_avg_pool2d and max_unpool2d (whose size is an
argument) by ``LIMITS["max_elements"]``, returns early on empty batches, makes inputs
C-contiguous and dispatches through ``VERSIONS`` (a ``kernels.versions.KernelFamily``):
``impl=None`` picks ``cuda`` for CuPy arrays (``cuda_atomic`` once deterministic algorithms
are switched off) and ``cpu`` otherwise; ``impl`` may name any of ``VERSIONS.impls``, and a
wrong name is a ValueError listing them. Pooling geometry (which input rows a window
covers, the ``ceil_mode`` rule) is in ``shapes.py``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from scratchvision.backend import check_same_device, get_array_module, is_cupy_array
from scratchvision.kernels.pool.shapes import (adaptive_end, adaptive_start,
                                               first_empty_window, pool_output_size)
from scratchvision.kernels.versions import KernelFamily, contiguous
from scratchvision.validation import check_array, check_images, check_int, check_limit, pair

VERSIONS = KernelFamily("pool")

__all__ = ["VERSIONS", "adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_end", "adaptive_output_size", "adaptive_start", "avg_pool2d_backward",
           "avg_pool2d_forward", "max_pool2d_backward", "max_pool2d_forward",
           "max_unpool2d_backward", "max_unpool2d_forward", "pool_output_size",
           "unpool_output_size"]


# ------------------------------------------------------------------------- validation
def _check_x_shape(x_shape, name: str = "x_shape") -> tuple[int, int, int, int]:
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or min(x_shape) < 0 or min(x_shape[2:]) == 0:
        raise ValueError(f"{name} must be (N, C, H, W) with H, W >= 1, got {x_shape}")
    return x_shape


def _check_grad(gy, expected):
    check_images(gy, "grad_output")
    if tuple(gy.shape) != tuple(expected):
        raise ValueError(f"grad_output has shape {tuple(gy.shape)}, expected {tuple(expected)}")


def _check_indices(indices, shape, name: str = "indices"):
    if not (isinstance(indices, np.ndarray) or is_cupy_array(indices)) \
            or np.dtype(indices.dtype).kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    if tuple(indices.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(indices.shape)}, expected {tuple(shape)}")


def _check_index_range(indices, size: int, what: str):
    """Flat plane indices must lie in [0, size): the kernels do not bounds-check."""
    if indices.size:
        xp = get_array_module(indices)
        # one device-to-host read per call on a GPU (the kernels would index out of bounds)
        lo, hi = (int(v) for v in xp.stack([xp.min(indices), xp.max(indices)]).tolist())
        if lo < 0 or hi >= size:
            raise ValueError(f"indices contain {lo if lo < 0 else hi}, outside [0, {size}) "
                             f"for {what}")


def _window_args(x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalise and check pooling geometry; returns pairs and the output (h, w)."""
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) \
        else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation", minimum=1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding should be at most half of kernel_size, got padding={p} "
                         f"and kernel_size={k}")
    h, w = x_shape[2], x_shape[3]
    out = (pool_output_size(h, k[0], s[0], p[0], d[0], bool(ceil_mode)),
           pool_output_size(w, k[1], s[1], p[1], d[1], bool(ceil_mode)))
    if min(out) < 1:
        raise ValueError(f"output size is too small: input of shape {tuple(x_shape)} with "
                         f"kernel_size={k}, stride={s}, padding={p}, dilation={d} gives "
                         f"{out[0]}x{out[1]} windows")
    for axis, size in enumerate((h, w)):
        o = first_empty_window(size, k[axis], s[axis], p[axis], d[axis], out[axis])
        if o >= 0:
            raise ValueError(f"pooling window {o} along {('height', 'width')[axis]} lies "
                             f"entirely in the padding: input of shape {tuple(x_shape)} with "
                             f"kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    return k, s, p, d, out


_version = VERSIONS.module
_contig = contiguous


# -------------------------------------------------------------------------- max_pool2d
def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                       impl=None):
    """Max over each window and its argmax.

    Parameters
    ----------
    x : (N, C, H, W) float32/float64 array.
    kernel_size, stride (default: kernel_size), padding, dilation : int or (int, int).
        ``padding`` at most half the kernel; padded cells never win (they are -inf).
    ceil_mode : round the window count up (the last window must start inside the input
        or its left padding).

    Returns
    -------
    y : (N, C, out_h, out_w), same dtype as x.
    indices : (N, C, out_h, out_w) int64, the argmax as a flat index ``h * W + w`` within
        its (n, c) plane, as torch's ``return_indices=True``.
    """
    check_images(x)
    k, s, p, d, out = _window_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    mod = _version(impl, x)
    return mod.max_pool2d_forward(_contig(x), k, s, p, d, bool(ceil_mode))


def max_pool2d_backward(gy, indices, x_shape, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, impl=None):
    """Gradient of ``max_pool2d_forward`` w.r.t. x: gy routed to (summed at) the argmax.

    ``gy`` and ``indices`` have the forward's output shape; returns gx of ``x_shape``.
    """
    x_shape = _check_x_shape(x_shape)
    k, s, p, d, out = _window_args(x_shape, kernel_size, stride, padding, dilation, ceil_mode)
    _check_grad(gy, x_shape[:2] + out)
    _check_indices(indices, gy.shape)
    check_same_device("max_pool2d backward", grad_output=gy, indices=indices)
    _check_index_range(indices, x_shape[2] * x_shape[3], f"input of shape {x_shape}")
    mod = _version(impl, gy)
    return mod.max_pool2d_backward(_contig(gy), _contig(indices).astype(np.int64, copy=False),
                                   x_shape, k, s, p, d, bool(ceil_mode))


# -------------------------------------------------------------------------- avg_pool2d
def _check_divisor(divisor_override):
    """None or a positive int (torch refuses 0 too)."""
    if divisor_override is None:
        return None
    return check_int(divisor_override, "divisor_override", minimum=1)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None, impl=None):
    """Mean over each window.

    Parameters
    ----------
    x : (N, C, H, W) float32/float64.
    kernel_size, stride (default: kernel_size), padding : int or (int, int).
    ceil_mode : as in ``max_pool2d_forward``.
    count_include_pad : divide by the window size clipped to the *padded* input (True) or
        by the number of real input cells in the window (False).
    divisor_override : if given, divide every window sum by this instead.

    Returns
    -------
    y : (N, C, out_h, out_w), same dtype as x.
    """
    check_images(x)
    k, s, p, _, _ = _window_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    div = _check_divisor(divisor_override)
    mod = _version(impl, x)
    return mod.avg_pool2d_forward(_contig(x), k, s, p, bool(ceil_mode), bool(count_include_pad),
                                  div)


def avg_pool2d_backward(gy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, impl=None):
    """Gradient of ``avg_pool2d_forward`` w.r.t. x (gy / divisor spread over each window)."""
    x_shape = _check_x_shape(x_shape)
    k, s, p, _, out = _window_args(x_shape, kernel_size, stride, padding, 1, ceil_mode)
    _check_grad(gy, x_shape[:2] + out)
    div = _check_divisor(divisor_override)
    mod = _version(impl, gy)
    return mod.avg_pool2d_backward(_contig(gy), x_shape, k, s, p, bool(ceil_mode),
                                   bool(count_include_pad), div)


# ------------------------------------------------------------------ adaptive_avg_pool2d
def adaptive_output_size(x_shape, output_size) -> tuple[int, int]:
    """Normalise ``output_size`` (int, pair, None entries keep the input size)."""
    if isinstance(output_size, Sequence) and not isinstance(output_size, str) \
            and len(output_size) == 2:
        output_size = tuple(x_shape[2 + i] if v is None else v
                            for i, v in enumerate(output_size))
    return pair(output_size, "output_size", minimum=0)


def adaptive_avg_pool2d_forward(x, output_size, impl=None):
    """Average pooling into a fixed ``output_size`` grid of bins.

    Bin ``(i, j)`` averages rows ``floor(i*H/oh) .. ceil((i+1)*H/oh)-1`` and the analogous
    columns (bins overlap when H is not a multiple of oh). ``output_size``: int or pair;
    a ``None`` entry keeps that input size. Returns (N, C, oh, ow).
    """
    check_images(x)
    out = adaptive_output_size(x.shape, output_size)
    check_limit(x.shape[:2] + out, f"adaptive_avg_pool2d's output (output_size {out})")
    mod = _version(impl, x)
    if min(out) == 0:
        return get_array_module(x).empty(x.shape[:2] + out, x.dtype)
    return mod.adaptive_avg_pool2d_forward(_contig(x), out)


def adaptive_avg_pool2d_backward(gy, x_shape, impl=None):
    """Gradient of ``adaptive_avg_pool2d_forward`` w.r.t. x; ``gy`` is (N, C, oh, ow)."""
    x_shape = _check_x_shape(x_shape)
    check_array(gy, "grad_output")
    if gy.ndim != 4 or tuple(gy.shape[:2]) != x_shape[:2]:
        raise ValueError(f"grad_output of shape {tuple(gy.shape)} does not match input "
                         f"{x_shape}")
    mod = _version(impl, gy)
    if gy.size == 0:
        return get_array_module(gy).zeros(x_shape, gy.dtype)
    return mod.adaptive_avg_pool2d_backward(_contig(gy), x_shape)


# -------------------------------------------------------------------------- max_unpool2d
def unpool_output_size(x_shape, kernel_size, stride=None, padding=0, output_size=None):
    """torch's ``_unpool_output_size``: default ``(H-1)*stride - 2*padding + kernel``; a given
    ``output_size`` ((h, w) or (N, C, h, w)) must lie strictly within ``default ± stride``."""
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p = pair(padding, "padding", minimum=0)
    default = tuple((x_shape[2 + i] - 1) * s[i] + k[i] - 2 * p[i] for i in range(2))
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, Sequence) or isinstance(output_size, str):
            raise TypeError(f"output_size must be (h, w) or (N, C, h, w), got "
                            f"{output_size!r}")
        size = tuple(check_int(v, "output_size") for v in output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"output_size must have 2 or 4 elements, got {output_size!r}")
        for i in range(2):
            if not default[i] - s[i] < size[i] < default[i] + s[i]:
                raise ValueError(
                    f"invalid output_size {tuple(output_size)} (dim {i} must be between "
                    f"{default[i] - s[i] + 1} and {default[i] + s[i] - 1} for input of shape "
                    f"{tuple(x_shape)}, kernel_size={k}, stride={s}, padding={p})")
        out = size
    if min(out) < 1:
        raise ValueError(f"max_unpool2d output size {out} is not positive for input of shape "
                         f"{tuple(x_shape)}")
    return out


def max_unpool2d_forward(x, indices, output_size, impl=None):
    """Place each x value at its flat index in a zero (N, C, *output_size) array.

    ``indices`` (same shape as x, int) index ``h * out_w + w`` within each plane, as
    returned by ``max_pool2d_forward``; out-of-range indices raise ValueError.
    """
    check_images(x)
    _check_indices(indices, x.shape)
    check_same_device("max_unpool2d", input=x, indices=indices)
    out = pair(output_size, "output_size", minimum=1)
    check_limit(x.shape[:2] + out, f"max_unpool2d's output (output_size {out})")
    _check_index_range(indices, out[0] * out[1], f"output_size {out}")
    mod = _version(impl, x)
    return mod.max_unpool2d_forward(_contig(x), _contig(indices).astype(np.int64, copy=False),
                                    out)


def max_unpool2d_backward(gy, indices, impl=None):
    """Gradient of ``max_unpool2d_forward`` w.r.t. x: ``gy[n, c].flat[indices]``."""
    check_images(gy, "grad_output")
    if not (isinstance(indices, np.ndarray) or is_cupy_array(indices)) or indices.ndim != 4:
        raise ValueError(f"indices must be a 4-D integer array, got "
                         f"{getattr(indices, 'shape', type(indices).__name__)}")
    _check_indices(indices, tuple(gy.shape[:2]) + tuple(indices.shape[2:]))
    check_same_device("max_unpool2d backward", grad_output=gy, indices=indices)
    _check_index_range(indices, gy.shape[2] * gy.shape[3], f"grad_output of shape "
                                                            f"{tuple(gy.shape)}")
    mod = _version(impl, gy)
    return mod.max_unpool2d_backward(_contig(gy),
                                     _contig(indices).astype(np.int64, copy=False))
