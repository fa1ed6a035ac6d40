"""Pooling kernels: max_pool2d (with argmax indices), avg_pool2d, adaptive_avg_pool2d and
max_unpool2d, forward and backward, on NCHW arrays (torch's semantics throughout).

Versions, all with the signatures below minus ``impl``:

* ``reference`` (``reference.py``): plain loops, the specification; read it first.
* ``cpu`` (``cpu.py``): Numba, parallel over output rows (forward) or planes (backward).
* ``cuda`` (``cuda.py``): numba.cuda kernels for CuPy arrays; deterministic gather
  backwards. ``cuda_atomic``: the same forwards with atomic-scatter backwards (faster,
  non-deterministic summation order).

This module normalises arguments (ints or pairs), validates them with errors that name the
argument and the shapes, returns early on empty batches, makes inputs C-contiguous and
dispatches: ``impl=None`` picks ``cuda`` for CuPy arrays and ``cpu`` otherwise. Pooling
geometry (which input rows a window covers, the ``ceil_mode`` rule) is in ``shapes.py``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from scratchvision.backend import check_same_device, get_array_module, is_cupy_array
from scratchvision.kernels.versions import IMPLS, contiguous, load_version  # noqa: F401
from scratchvision.kernels.pool.shapes import (adaptive_end, adaptive_start,
                                               first_empty_window, pool_output_size)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

__all__ = ["IMPLS", "adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_end", "adaptive_start", "avg_pool2d_backward", "avg_pool2d_forward",
           "max_pool2d_backward", "max_pool2d_forward", "max_unpool2d_backward",
           "max_unpool2d_forward", "pair", "pool_output_size", "unpool_output_size"]


# ------------------------------------------------------------------------- validation
def pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """``v`` -> ``(v, v)``; a pair stays a pair; ints >= ``minimum`` or ValueError/TypeError."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 \
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                    for v in value):
        out = (int(value[0]), int(value[1]))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 1:
        return pair(value[0], name, minimum)
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def _check_input(x, name: str = "input"):
    if not (isinstance(x, np.ndarray) or is_cupy_array(x)):
        raise TypeError(f"{name} must be a numpy or cupy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if np.dtype(x.dtype) not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} must have non-empty spatial dims, got shape {tuple(x.shape)}")


def _check_x_shape(x_shape, name: str = "x_shape") -> tuple[int, int, int, int]:
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or min(x_shape) < 0 or min(x_shape[2:]) == 0:
        raise ValueError(f"{name} must be (N, C, H, W) with H, W >= 1, got {x_shape}")
    return x_shape


def _check_grad(gy, expected, dtype=None):
    _check_input(gy, "grad_output")
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
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) \
        else pair(stride, "stride")
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation")
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


def _version(impl, *arrays):
    return load_version("pool", impl, *arrays)


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
    _check_input(x)
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
    if divisor_override is None:
        return None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override,
                                                            (int, np.integer)):
        raise TypeError(f"divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override must be non-zero")
    if divisor_override < 0:
        raise ValueError(f"divisor_override must be positive, got {divisor_override}")
    return int(divisor_override)


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
    _check_input(x)
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
    _check_input(x)
    out = adaptive_output_size(x.shape, output_size)
    mod = _version(impl, x)
    if min(out) == 0:
        return get_array_module(x).empty(x.shape[:2] + out, x.dtype)
    return mod.adaptive_avg_pool2d_forward(_contig(x), out)


def adaptive_avg_pool2d_backward(gy, x_shape, impl=None):
    """Gradient of ``adaptive_avg_pool2d_forward`` w.r.t. x; ``gy`` is (N, C, oh, ow)."""
    x_shape = _check_x_shape(x_shape)
    if gy.ndim != 4 or tuple(gy.shape[:2]) != x_shape[:2]:
        raise ValueError(f"grad_output of shape {tuple(gy.shape)} does not match input "
                         f"{x_shape}")
    if np.dtype(gy.dtype) not in _FLOATS:
        raise TypeError(f"grad_output must be float32 or float64, got {gy.dtype}")
    mod = _version(impl, gy)
    if gy.size == 0:
        return get_array_module(gy).zeros(x_shape, gy.dtype)
    return mod.adaptive_avg_pool2d_backward(_contig(gy), x_shape)


# -------------------------------------------------------------------------- max_unpool2d
def unpool_output_size(x_shape, kernel_size, stride=None, padding=0, output_size=None):
    """torch's ``_unpool_output_size``: default ``(H-1)*stride - 2*padding + kernel``; a given
    ``output_size`` ((h, w) or (N, C, h, w)) must lie strictly within ``default ± stride``."""
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding", minimum=0)
    default = tuple((x_shape[2 + i] - 1) * s[i] + k[i] - 2 * p[i] for i in range(2))
    if output_size is None:
        out = default
    else:
        size = tuple(int(v) for v in output_size)
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
    _check_input(x)
    _check_indices(indices, x.shape)
    check_same_device("max_unpool2d", input=x, indices=indices)
    out = pair(output_size, "output_size")
    _check_index_range(indices, out[0] * out[1], f"output_size {out}")
    mod = _version(impl, x)
    return mod.max_unpool2d_forward(_contig(x), _contig(indices).astype(np.int64, copy=False),
                                    out)


def max_unpool2d_backward(gy, indices, impl=None):
    """Gradient of ``max_unpool2d_forward`` w.r.t. x: ``gy[n, c].flat[indices]``."""
    _check_input(gy, "grad_output")
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
