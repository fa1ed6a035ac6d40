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

This module validates the arguments with ``scratchvision.validation`` (float32/float64
``(N, C, H, W)`` arrays; the output, whose size is an argument, bounded by
``LIMITS["max_elements"]`` before anything is allocated), makes inputs C-contiguous and
dispatches through ``VERSIONS`` (a ``kernels.versions.KernelFamily``): ``impl=None`` picks
``cuda`` for CuPy arrays (``cuda_atomic`` once deterministic algorithms are switched off)
and ``cpu`` otherwise; a wrong ``impl`` is a ValueError listing ``VERSIONS.impls``.
"""
from __future__ import annotations

import math
from typing import Sequence

from scratchvision.kernels.versions import KernelFamily, contiguous
from scratchvision.validation import check_images, check_limit, check_number, pair

VERSIONS = KernelFamily("interpolate")

__all__ = ["VERSIONS", "bilinear_backward", "bilinear_forward", "nearest_backward",
           "nearest_forward", "resolve_output_size"]


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
        if _is_seq(size) and len(size) != 2:
            raise ValueError(f"size must have 2 elements for a 4-D input of spatial size "
                             f"{tuple(in_hw)}, got {size!r}")
        out = pair(size, "size")                    # TypeError for anything but ints
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
    factors = tuple(check_number(f, "scale_factor", finite=False) for f in factors)
    if not all(math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(f"scale_factor must be positive and finite, got {scale_factor!r}")
    out = tuple(int(math.floor(in_hw[i] * factors[i])) for i in range(2))
    if min(out) < 1:
        raise ValueError(f"input of spatial size {tuple(in_hw)} with scale_factor "
                         f"{scale_factor!r} gives an empty output {out}")
    return out, ((None, None) if recompute_scale_factor else factors)


def _check_output(x, size) -> tuple[int, int]:
    """The output size (a pair of ints >= 1), within ``LIMITS["max_elements"]`` for ``x``."""
    size = pair(size, "size", minimum=1)
    check_limit(tuple(x.shape[:2]) + size, f"interpolate's output (size {size})")
    return size


def _check_scales(scales) -> tuple:
    if scales is None:
        return (None, None)
    if not (_is_seq(scales) and len(scales) == 2):
        raise ValueError(f"scales must be a pair (scale_h, scale_w), got {scales!r}")
    return tuple(None if s is None or s <= 0 else float(s) for s in scales)


def _check_backward(gy, x_shape):
    check_images(gy, "grad_output")
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or min(x_shape) < 0 or min(x_shape[2:]) < 1 \
            or tuple(gy.shape[:2]) != x_shape[:2]:
        raise ValueError(f"grad_output of shape {tuple(gy.shape)} does not match x_shape "
                         f"{x_shape}")
    return x_shape


_version = VERSIONS.module
_contig = contiguous


def bilinear_forward(x, size, align_corners=False, scales=(None, None), impl=None):
    """Bilinear resize of x (N, C, H, W) to (N, C, *size).

    ``align_corners``: corner centres aligned (True) or half-pixel centres (False).
    ``scales``: (scale_h, scale_w) user scale factors passed on by ``resolve_output_size``
    (None entries: step = in/out).
    """
    check_images(x)
    size, scales = _check_output(x, size), _check_scales(scales)
    return _version(impl, x).bilinear_forward(_contig(x), size, bool(align_corners), scales)


def bilinear_backward(gy, x_shape, align_corners=False, scales=(None, None), impl=None):
    """Gradient of ``bilinear_forward`` w.r.t. x (deterministic on the CPU)."""
    x_shape = _check_backward(gy, x_shape)
    scales = _check_scales(scales)
    return _version(impl, gy).bilinear_backward(_contig(gy), x_shape, bool(align_corners),
                                                scales)


def nearest_forward(x, size, scales=(None, None), impl=None):
    """Nearest-neighbour resize (torch's legacy 'nearest': src = floor(dst * scale))."""
    check_images(x)
    size, scales = _check_output(x, size), _check_scales(scales)
    return _version(impl, x).nearest_forward(_contig(x), size, scales)


def nearest_backward(gy, x_shape, scales=(None, None), impl=None):
    """Gradient of ``nearest_forward`` w.r.t. x: each gy added to the pixel it copied."""
    x_shape = _check_backward(gy, x_shape)
    scales = _check_scales(scales)
    return _version(impl, gy).nearest_backward(_contig(gy), x_shape, scales)
