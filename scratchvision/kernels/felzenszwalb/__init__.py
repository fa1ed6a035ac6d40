"""Felzenszwalb–Huttenlocher graph segmentation kernels (the algorithm: ``reference.py``).

Two steps, so that a caller segmenting one image at several scales ``k`` builds the graph
once: ``build_graph(img, sigma) -> (a, b, w)`` (smoothing, 8-connected edges, stable sort by
weight) and ``segment_graph(height, width, a, b, w, k, min_size) -> labels`` (union–find
with the ``k / |C|`` merge test, the ``min_size`` pass, canonical numbering).

Versions (``impl=``): ``reference`` (plain Python, the specification) and ``cpu`` (Numba,
the default); CPU only, NumPy arrays only. This module validates the arguments -- dtypes,
shapes, edge indices inside the image, finite pixels and parameters, the image size against
``LIMITS['max_image_pixels']`` -- before any version runs, so no bad value reaches a
compiled loop (which does not check its indices).
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.felzenszwalb.reference import gaussian_mask
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_array, check_int, check_limit, check_number

__all__ = ["VERSIONS", "build_graph", "gaussian_mask", "segment_graph"]

VERSIONS = KernelFamily("felzenszwalb", gpu=())


def _check_numpy(x, name: str) -> None:
    """The versions run on NumPy arrays only (CPU kernels)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"felzenszwalb: {name} must be a numpy array, got {type(x).__name__}")


def check_pixels(height: int, width: int, what: str = "felzenszwalb") -> int:
    """``height * width`` if within ``LIMITS['max_image_pixels']`` and int32 pixel indices."""
    n = check_limit(height * width, f"{what} on a {height}x{width} image", "max_image_pixels")
    if n >= 2 ** 31:                          # edges hold int32 flat pixel indices
        raise ValueError(f"{what}: a {height}x{width} image is too large for int32 pixel "
                         f"indices")
    return n


def build_graph(img: np.ndarray, sigma: float,
                impl: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The smoothed 8-connected grid graph of an image, edges sorted stably by weight.

    Parameters
    ----------
    img : (H, W, C) or (H, W) float32 image, finite values.
    sigma : width (>= 0) of the Gaussian pre-smoothing; 0 disables it.
    impl : None (``cpu``), ``'cpu'`` or ``'reference'``.

    Returns
    -------
    a, b : (E,) int32 flat pixel indices ``y * W + x`` of both ends of each edge,
        ``E = 4 H W - 3 (H + W) + 2``.
    w : (E,) float32 colour distances, ascending (ties in the canonical enumeration order).
    """
    _check_numpy(img, "img")
    check_array(img, "felzenszwalb: img", ndim=(2, 3), dtypes=(np.float32,),
                layout="(H, W, C)")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[0] < 1 or img.shape[1] < 1 or img.shape[2] < 1:
        raise ValueError(f"felzenszwalb: img must have H, W, C >= 1, got shape {img.shape}")
    check_pixels(img.shape[0], img.shape[1])
    sigma = check_number(sigma, "felzenszwalb: sigma", minimum=0.0)
    if not np.isfinite(img).all():
        raise ValueError("felzenszwalb: img contains NaN or infinite values")
    version = VERSIONS.module(impl, img)
    return version.build_graph(np.ascontiguousarray(img), gaussian_mask(sigma))


def segment_graph(height: int, width: int, a: np.ndarray, b: np.ndarray, w: np.ndarray,
                  k: float, min_size: int, impl: str | None = None) -> np.ndarray:
    """Union–find segmentation of a sorted graph from ``build_graph``.

    Parameters
    ----------
    height, width : the image size (>= 1) the graph was built on.
    a, b, w : the graph from ``build_graph``: (E,) int32 ends in ``[0, height * width)``,
        (E,) float32 weights sorted ascending.
    k : scale of observation (finite, >= 0): larger ``k``, larger regions.
    min_size : int >= 0; smaller components are merged into a neighbour at the end.
    impl : None (``cpu``), ``'cpu'`` or ``'reference'``.

    Returns
    -------
    labels : (height, width) int64 region ids 0..n-1, numbered in raster order of first
        appearance.
    """
    height = check_int(height, "felzenszwalb: height", minimum=1)
    width = check_int(width, "felzenszwalb: width", minimum=1)
    n = check_pixels(height, width)
    for name, arr, dtype in (("a", a, np.int32), ("b", b, np.int32), ("w", w, np.float32)):
        _check_numpy(arr, name)
        check_array(arr, f"felzenszwalb: {name}", ndim=1, dtypes=(dtype,), layout="(E,)")
    if not a.shape == b.shape == w.shape:
        raise ValueError(f"felzenszwalb: a, b, w must have one shape (E,), got {a.shape}, "
                         f"{b.shape}, {w.shape}")
    if a.size and (min(int(a.min()), int(b.min())) < 0
                   or max(int(a.max()), int(b.max())) >= n):
        raise ValueError(f"felzenszwalb: edge ends a, b must lie in [0, {n}) for a "
                         f"{height}x{width} image")
    k = check_number(k, "felzenszwalb: k", minimum=0.0)
    min_size = check_int(min_size, "felzenszwalb: min_size", minimum=0)
    version = VERSIONS.module(impl, a)
    labels = version.segment_graph(n, np.ascontiguousarray(a), np.ascontiguousarray(b),
                                   np.ascontiguousarray(w), k, min_size)
    return labels.reshape(height, width)
