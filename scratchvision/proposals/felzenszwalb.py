"""Felzenszwalb–Huttenlocher graph-based image segmentation (IJCV 2004): the public API.

``felzenszwalb(image, k, sigma, min_size)`` segments an image into regions: the pixels are
the vertices of an 8-connected grid graph weighted by colour distance, and Kruskal's
algorithm joins two components only while the joining edge is no heavier than each
component's internal difference plus ``k / |C|``. The algorithm, step by step, is the
module docstring of ``scratchvision/kernels/felzenszwalb/reference.py`` (the reference
version, the specification); ``cpu.py`` beside it is the Numba version, identical labels.

This module checks the user's image (any integer or float32/float64 dtype, (H, W) or
(H, W, C), finite values, at most ``LIMITS['max_image_pixels']`` pixels) and parameters,
converts the image to float32 and calls the kernels. ``build_graph`` and ``segment_graph``
are the two kernel steps, re-exported for Selective Search, which builds the graph once per
colour space and segments it for several ``k``.
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.felzenszwalb import (
    build_graph,
    check_pixels,
    gaussian_mask,
    segment_graph,
)
from scratchvision.validation import check_int, check_number

__all__ = ["build_graph", "felzenszwalb", "gaussian_mask", "segment_graph"]


def _validate(image: np.ndarray, k, sigma, min_size) -> np.ndarray:
    """The image as float32 (H, W, C) after checking it and the parameters."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"felzenszwalb: image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError("felzenszwalb: image must be (H, W) or (H, W, C) with H, W, C >= 1, "
                         f"got shape {image.shape}")
    if image.dtype.kind not in "uif" or image.dtype == np.float16:
        raise TypeError(f"felzenszwalb: image dtype must be an integer or float32/64 type, "
                        f"got {image.dtype}")
    check_pixels(image.shape[0], image.shape[1])          # before the float32 copy
    check_number(k, "felzenszwalb: k", minimum=0.0)
    check_number(sigma, "felzenszwalb: sigma", minimum=0.0)
    check_int(min_size, "felzenszwalb: min_size", minimum=0)
    img = np.ascontiguousarray(image, dtype=np.float32)
    if not np.isfinite(img).all():
        raise ValueError("felzenszwalb: image contains NaN or infinite values")
    return img


def felzenszwalb(image: np.ndarray, k: float = 100.0, sigma: float = 0.8, min_size: int = 20,
                 impl: str | None = None) -> np.ndarray:
    """Segment an image into regions with the Felzenszwalb–Huttenlocher algorithm.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array, any integer or float32/float64 dtype, values on the
        0..255 scale for the usual ``k`` to make sense (the paper's units).
    k : float
        Scale of observation (finite, >= 0): larger ``k`` gives larger (and fewer) regions.
    sigma : float
        Width of the Gaussian pre-smoothing (finite, >= 0; 0 disables it).
    min_size : int
        Components smaller than this (>= 0) are merged with a neighbour in a final pass.
    impl : {None, 'cpu', 'reference'}
        The kernel version: None runs ``cpu`` (Numba); ``reference`` is the plain-Python
        specification (slow, for small images).

    Returns
    -------
    labels : (H, W) int64 array of region ids 0..n-1, numbered in raster order of first
        appearance.
    """
    img = _validate(image, k, sigma, min_size)
    a, b, w = build_graph(img, sigma, impl=impl)
    return segment_graph(img.shape[0], img.shape[1], a, b, w, k, min_size, impl=impl)
