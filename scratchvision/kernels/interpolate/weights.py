"""Scalar source-coordinate helpers of interpolation, written once in plain Python.

``reference.py`` calls them as they are; ``cpu.py`` compiles them with ``numba.njit`` and
``cuda.py`` with ``numba.cuda.jit(device=True)``, so the three versions share one definition
of torch's pixel conventions (``aten/src/ATen/native/UpSample.h``).

Bilinear, one axis of ``in_size`` source and ``out_size`` destination pixels:

* ``align_corners=True``: the corner pixel *centres* coincide, ``src = dst * (in-1)/(out-1)``
  (scale 0 when out == 1, so the single output samples pixel 0).
* ``align_corners=False`` (half-pixel centres, like OpenCV's resize): pixel ``i`` covers
  ``[i, i+1)`` with centre ``i + 0.5``, so ``src + 0.5 = (dst + 0.5) * scale``, i.e.
  ``src = (dst + 0.5) * scale - 0.5``, clamped at 0 (the first half pixel repeats the edge).
  ``scale`` is ``in/out``, or ``1/scale_factor`` when the caller passed a scale factor
  (``scale > 0`` here means "given") and did not ask to recompute it.
* Taps: ``i0 = floor(src)`` (src >= 0, so int() truncation is floor), ``i1 = i0 + 1`` unless
  ``i0`` is the last pixel, ``l1 = src - i0``, ``l0 = 1 - l1``. Example: in 4, out 8,
  dst 3: src = 3.5 * 0.5 - 0.5 = 1.25 -> taps 1 and 2 with weights 0.75 and 0.25.

Nearest (torch's legacy ``'nearest'``, not ``'nearest-exact'``): ``src = floor(dst * scale)``
clipped to ``in-1``, with ``scale`` computed **in float32** as torch does
(``float(in)/float(out)`` or ``float(1/scale_factor)``), because a float64 product can land
on the other side of an integer: in 3, out 5 gives scale 0.6f and dst 4 -> 2.4 -> 2. Equal
sizes and exact doubling take torch's shortcuts (``dst`` and ``dst >> 1``).
"""
from __future__ import annotations

import math

import numpy as np


def linear_scale(in_size, out_size, align_corners, scale):
    """Source pixels per destination pixel (torch's ``area_pixel_compute_scale``)."""
    if align_corners:
        if out_size > 1:
            return (in_size - 1) / (out_size - 1)
        return 0.0
    if scale > 0.0:
        return 1.0 / scale
    return in_size / out_size


def linear_taps(dst, in_size, ratio, align_corners):
    """(i0, i1, l0, l1): the two source pixels of ``dst`` and their weights."""
    if align_corners:
        src = ratio * dst
    else:
        src = ratio * (dst + 0.5) - 0.5
        if src < 0.0:
            src = 0.0                  # the first half pixel repeats the edge value
    i0 = int(src)                      # src >= 0: truncation is floor
    if i0 > in_size - 1:
        i0 = in_size - 1
    l1 = src - i0
    if l1 > 1.0:
        l1 = 1.0
    i1 = i0 + 1 if i0 < in_size - 1 else i0
    return i0, i1, 1.0 - l1, l1


def nearest_source(dst, in_size, out_size, scale):
    """Source pixel of ``dst`` for torch's legacy 'nearest' (float32 arithmetic)."""
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    if scale > 0.0:
        ratio = np.float32(1.0 / scale)
    else:
        ratio = np.float32(in_size) / np.float32(out_size)
    src = int(math.floor(np.float32(dst) * ratio))
    return min(src, in_size - 1)
