"""Interpolation kernels: bilinear (``align_corners`` True/False) and nearest resizing of
NCHW arrays, forward and backward, with torch's pixel conventions (see ``weights.py``).

Versions, all with the signatures below minus ``impl``:

* ``reference`` (``reference.py``): plain loops, the specification.
* ``cpu`` (``cpu.py``): Numba, parallel over output rows (forward) and planes (backward,
  deterministic: no atomics).
* ``cuda`` (``cuda.py``): numba.cuda kernels for CuPy arrays, deterministic gather
  backwards; ``cuda_atomic``: the same forwards with atomic-scatter backwards (faster,
  non-deterministic summation order).

``resolve_output_size`` turns torch's ``size`` / ``scale_factor`` /
``recompute_scale_factor`` arguments into the output size and the ``scales`` the kernels
take, exactly as ``torch.nn.functional.interpolate`` does.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from scratchvision.backend import is_cupy_array
from scratchvision.kernels.versions import IMPLS, contiguous, load_version  # noqa: F401

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

__all__ = ["IMPLS", "bilinear_backward", "bilinear_forward", "nearest_backward",
           "nearest_forward", "resolve_output_size"]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_seq(v) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str)


def resolve_output_size(in_hw, size=None, scale_factor=None, recompute_scale_factor=None):
    """torch's size logic: returns ``((out_h, out_w), (scale_h, scale_w))``.

    Exactly one of ``size`` (int or pair of ints) and ``scale_factor`` (number or pair)
    must be given. With a scale factor the output is ``floor(in * scale_factor)`` and the
    factor itself is passed on to the kernel (which then uses ``1/scale_factor`` as the
    source step instead of ``in/out``), unless ``recompute_scale_factor=True``, which passes
    ``None`` so the step is recomputed from the integer sizes. ``scales`` entries are None
    when no factor is passed on.
    """
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if size is not None:
        if _is_seq(size):
            if len(size) != 2:
                raise ValueError(f"size must have 2 elements for a 4-D input of spatial size "
                                 f"{tuple(in_hw)}, got {size!r}")
            if not all(_is_int(v) for v in size):
                raise TypeError(f"size must be an int or a pair of ints, got {size!r}")
            out = (int(size[0]), int(size[1]))
        elif _is_int(size):
            out = (int(size), int(size))
        else:
            raise TypeError(f"size must be an int or a pair of ints, got {size!r}")
        if min(out) < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        return out, (None, None)
    if _is_seq(scale_factor):
        if len(scale_factor) != 2:
            raise ValueError(f"scale_factor must have 2 elements for a 4-D input, got "
                             f"{scale_factor!r}")
        factors = tuple(scale_factor)
    else:
        factors = (scale_factor, scale_factor)
    if not all(isinstance(f, (int, float, np.integer, np.floating)) and not isinstance(f, bool)
               for f in factors):
        raise TypeError(f"scale_factor must be a number or a pair of numbers, got "
                        f"{scale_factor!r}")
    factors = tuple(float(f) for f in factors)
    if not all(math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(f"scale_factor must be positive and finite, got {scale_factor!r}")
    out = tuple(int(math.floor(in_hw[i] * factors[i])) for i in range(2))
    if min(out) < 1:
        raise ValueError(f"input of spatial size {tuple(in_hw)} with scale_factor "
                         f"{scale_factor!r} gives an empty output {out}")
    return out, ((None, None) if recompute_scale_factor else factors)


def _check_input(x, name: str = "input"):
    if not (isinstance(x, np.ndarray) or is_cupy_array(x)):
        raise TypeError(f"{name} must be a numpy or cupy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if np.dtype(x.dtype) not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} must have non-empty spatial dims, got shape {tuple(x.shape)}")


def _check_size(size, name: str = "size") -> tuple[int, int]:
    if not (_is_seq(size) and len(size) == 2 and all(_is_int(v) for v in size)) \
            or min(size) < 1:
        raise ValueError(f"{name} must be a pair of positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _check_scales(scales) -> tuple:
    if scales is None:
        return (None, None)
    if not (_is_seq(scales) and len(scales) == 2):
        raise ValueError(f"scales must be a pair (scale_h, scale_w), got {scales!r}")
    return tuple(None if s is None or s <= 0 else float(s) for s in scales)


def _check_backward(gy, x_shape):
    _check_input(gy, "grad_output")
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or min(x_shape) < 0 or min(x_shape[2:]) < 1 \
            or tuple(gy.shape[:2]) != x_shape[:2]:
        raise ValueError(f"grad_output of shape {tuple(gy.shape)} does not match x_shape "
                         f"{x_shape}")
    return x_shape


def _version(impl, *arrays):
    return load_version("interpolate", impl, *arrays)


_contig = contiguous


def bilinear_forward(x, size, align_corners=False, scales=(None, None), impl=None):
    """Bilinear resize of x (N, C, H, W) to (N, C, *size).

    ``align_corners``: corner centres aligned (True) or half-pixel centres (False).
    ``scales``: (scale_h, scale_w) user scale factors passed on by ``resolve_output_size``
    (None entries: step = in/out).
    """
    _check_input(x)
    size, scales = _check_size(size), _check_scales(scales)
    return _version(impl, x).bilinear_forward(_contig(x), size, bool(align_corners), scales)


def bilinear_backward(gy, x_shape, align_corners=False, scales=(None, None), impl=None):
    """Gradient of ``bilinear_forward`` w.r.t. x (deterministic on the CPU)."""
    x_shape = _check_backward(gy, x_shape)
    scales = _check_scales(scales)
    return _version(impl, gy).bilinear_backward(_contig(gy), x_shape, bool(align_corners),
                                                scales)


def nearest_forward(x, size, scales=(None, None), impl=None):
    """Nearest-neighbour resize (torch's legacy 'nearest': src = floor(dst * scale))."""
    _check_input(x)
    size, scales = _check_size(size), _check_scales(scales)
    return _version(impl, x).nearest_forward(_contig(x), size, scales)


def nearest_backward(gy, x_shape, scales=(None, None), impl=None):
    """Gradient of ``nearest_forward`` w.r.t. x: each gy added to the pixel it copied."""
    x_shape = _check_backward(gy, x_shape)
    scales = _check_scales(scales)
    return _version(impl, gy).nearest_backward(_contig(gy), x_shape, scales)
