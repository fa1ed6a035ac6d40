"""Selective Search kernels: feature bins, region features, hierarchical grouping.

The algorithm of each step is the module docstring of ``reference.py`` (read it first);
``cpu.py`` is the Numba version (same results, bit for bit) and ``heap.py`` the heap and
neighbour lists its grouping loop uses. The public API -- colour spaces, strategies,
ranking -- is ``scratchvision.proposals.selective_search``, on top of these:

* ``feature_bins(img) -> (colour_bins, texture_bins)`` of a (H, W, C) uint8 image;
* ``region_features(labels, colour_bins, texture_bins) -> RegionFeatures`` of the
  initial regions of an (H, W) label image;
* ``group_regions(features, similarity) -> (boxes, merged)``, the greedy merging, with a
  ``Similarity(colour, texture, size, fill, image_size)`` saying which measures it sums.

Versions (``impl=``): ``reference`` and ``cpu`` (the default); CPU only, NumPy arrays
only. This module validates every argument (dtypes, shapes, bins inside their ranges,
labels numbered 0..n-1 without gaps, neighbour pairs inside 0..n-1) before any version
runs, because the compiled loops index without bounds checks; and it bounds the work: the
image against ``LIMITS['max_image_pixels']``, the histogram tables the features and the
grouping allocate (n regions x C * 105 bins, 2n - 1 rows in the grouping) against
``LIMITS['max_elements']``, raising ``LimitError`` before allocating.
"""
from __future__ import annotations

import numpy as np

from scratchvision.kernels.selective_search.reference import (
    COLOR_BINS,
    ORIENTATIONS,
    TEXTURE_BINS,
    RegionFeatures,
    Similarity,
)
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_array, check_limit, check_number

__all__ = [
    "COLOR_BINS",
    "ORIENTATIONS",
    "TEXTURE_BINS",
    "VERSIONS",
    "RegionFeatures",
    "Similarity",
    "feature_bins",
    "group_regions",
    "region_features",
]

VERSIONS = KernelFamily("selective_search", gpu=())

_INTEGER_DTYPES = tuple(np.dtype(d) for d in (np.int8, np.int16, np.int32, np.int64,
                                              np.uint8, np.uint16, np.uint32, np.uint64))


def _array(x, name: str, ndim: int, dtypes, layout: str):
    """``x`` checked as a NumPy array (the versions are CPU kernels) of ndim and dtype."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"selective_search: {name} must be a numpy array, "
                        f"got {type(x).__name__}")
    return check_array(x, f"selective_search: {name}", ndim=ndim, dtypes=dtypes,
                       layout=layout)


def _check_shape(x, name: str, shape: tuple) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"selective_search: {name} must have shape {tuple(shape)}, "
                         f"got {tuple(x.shape)}")


def _check_bins(bins, name: str, rows: int, pixels: int, n_bins: int) -> None:
    """(rows, pixels) uint8 bin indices in 0..n_bins-1 (they index histogram columns)."""
    _array(bins, name, 2, (np.uint8,), f"({rows}, H*W)")
    _check_shape(bins, name, (rows, pixels))
    if bins.size and int(bins.max()) >= n_bins:
        raise ValueError(f"selective_search: {name} must hold bins 0..{n_bins - 1}, got "
                         f"{int(bins.max())}")


def feature_bins(img: np.ndarray, impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Colour and texture bins of every pixel (see ``reference.py``, step 1).

    Parameters
    ----------
    img : (H, W, C) uint8 image, H, W, C >= 1 (a colour space, every channel on 0..255).
    impl : None (``cpu``), ``'cpu'`` or ``'reference'``.

    Returns
    -------
    colour_bins : (C, H*W) uint8, values 0..24.
    texture_bins : (C*8, H*W) uint8, values 0..9; row ``ch * 8 + o`` is channel ch,
        orientation ``o * 45`` degrees.
    """
    _array(img, "img", 3, (np.uint8,), "(H, W, C)")
    h, w, c = img.shape
    if min(h, w, c) < 1:
        raise ValueError(f"selective_search: img must have H, W, C >= 1, got shape "
                         f"{img.shape}")
    check_limit(h * w, f"selective_search on a {h}x{w} image", "max_image_pixels")
    check_limit(4 * h * w * c, f"selective_search: Gaussian derivatives of a {h}x{w}x{c} "
                "image")                                   # row_d, row_g, gx, gy (float32)
    version = VERSIONS.module(impl, img)
    return version.feature_bins(np.ascontiguousarray(img))


def region_features(labels: np.ndarray, colour_bins: np.ndarray, texture_bins: np.ndarray,
                    impl: str | None = None) -> RegionFeatures:
    """Sizes, boxes, histograms and neighbour pairs of the initial regions (step 2).

    Parameters
    ----------
    labels : (H, W) integer region ids 0..n-1, every id used (e.g. from ``felzenszwalb``).
    colour_bins, texture_bins : (C, H*W) and (C*8, H*W) uint8 from ``feature_bins``.
    impl : None (``cpu``), ``'cpu'`` or ``'reference'``.

    Returns
    -------
    RegionFeatures(size (n,) int64, box (n, 4) int64 pixel-edge boxes, colour (n, C*25)
    float32, texture (n, C*80) float32 L1-normalised histograms, pairs (M, 2) int64
    sorted neighbour pairs (i < j)).
    """
    _array(labels, "labels", 2, _INTEGER_DTYPES, "(H, W)")
    h, w = labels.shape
    if h < 1 or w < 1:
        raise ValueError(f"selective_search: labels must have H, W >= 1, got shape "
                         f"{labels.shape}")
    pixels = check_limit(h * w, f"selective_search on a {h}x{w} image", "max_image_pixels")
    _array(colour_bins, "colour_bins", 2, (np.uint8,), "(C, H*W)")
    c = colour_bins.shape[0]
    _check_bins(colour_bins, "colour_bins", c, pixels, COLOR_BINS)
    _check_bins(texture_bins, "texture_bins", c * ORIENTATIONS, pixels, TEXTURE_BINS)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= pixels:             # n regions of >= 1 pixel each: n <= H*W
        raise ValueError(f"selective_search: labels must be region ids in 0..{pixels - 1} "
                         f"(0..n-1), got values {low}..{high}")
    n = high + 1
    if np.bincount(labels.reshape(-1), minlength=n).min() == 0:
        raise ValueError(f"selective_search: labels must use every id 0..{high} (number "
                         f"the regions without gaps), some ids have no pixel")
    check_limit(n * c * (COLOR_BINS + ORIENTATIONS * TEXTURE_BINS),
                f"selective_search: histograms of {n:,} regions")
    version = VERSIONS.module(impl, labels)
    return version.region_features(labels, np.ascontiguousarray(colour_bins),
                                   np.ascontiguousarray(texture_bins))


def group_regions(features: RegionFeatures, similarity: Similarity,
                  impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hierarchical grouping of the initial regions (step 3, the paper's Algorithm 1).

    Parameters
    ----------
    features : a ``RegionFeatures`` (or a tuple of its five arrays) from
        ``region_features``, with n >= 1 regions.
    similarity : a ``Similarity(colour, texture, size, fill, image_size)`` (or a tuple of
        four bools and a positive number): the measures to sum and the image size in pixels.
    impl : None (``cpu``), ``'cpu'`` or ``'reference'``.

    Returns
    -------
    boxes : (n + merges, 4) int64 pixel-edge boxes of every region in order of creation.
    merged : (n + merges, 2) int64 children of each merged region (-1 for initial ones).
    """
    features = _check_features(features)
    similarity = _check_similarity(similarity)
    n = features.size.shape[0]
    check_limit((2 * n - 1) * (features.colour.shape[1] + features.texture.shape[1]),
                f"selective_search: grouping {n:,} regions")
    version = VERSIONS.module(impl, features.size)
    return version.group_regions(features, similarity)


def _check_features(features) -> RegionFeatures:
    """``features`` as a ``RegionFeatures`` of consistent, C-contiguous arrays."""
    if not (isinstance(features, tuple) and len(features) == 5):
        raise TypeError(f"selective_search: features must be a RegionFeatures (size, box, "
                        f"colour, texture, pairs), got {type(features).__name__}")
    size, box, colour, texture, pairs = features
    _array(size, "features.size", 1, (np.int64,), "(n,)")
    n = size.shape[0]
    if n < 1:
        raise ValueError("selective_search: features must describe at least one region")
    _array(box, "features.box", 2, (np.int64,), "(n, 4)")
    _check_shape(box, "features.box", (n, 4))
    _array(colour, "features.colour", 2, (np.float32,), "(n, C*25)")
    _array(texture, "features.texture", 2, (np.float32,), "(n, C*80)")
    channels = colour.shape[1] // COLOR_BINS
    if colour.shape[1] % COLOR_BINS or channels < 1:
        raise ValueError(f"selective_search: features.colour must have C*{COLOR_BINS} "
                         f"columns, got shape {colour.shape}")
    _check_shape(colour, "features.colour", (n, channels * COLOR_BINS))
    _check_shape(texture, "features.texture", (n, channels * ORIENTATIONS * TEXTURE_BINS))
    _array(pairs, "features.pairs", 2, (np.int64,), "(M, 2)")
    if pairs.shape[1] != 2:
        raise ValueError(f"selective_search: features.pairs must have shape (M, 2), got "
                         f"{pairs.shape}")
    if size.min() < 1:
        raise ValueError(f"selective_search: features.size must be >= 1, got {size.min()}")
    if len(pairs) and not (pairs[:, 0].min() >= 0 and pairs[:, 1].max() < n
                           and (pairs[:, 0] < pairs[:, 1]).all()):
        raise ValueError(f"selective_search: features.pairs must be pairs (i, j) with "
                         f"0 <= i < j < {n}")
    return RegionFeatures(*(np.ascontiguousarray(a) for a in (size, box, colour, texture,
                                                              pairs)))


def _check_similarity(similarity) -> Similarity:
    """``similarity`` as a ``Similarity`` of four Python bools and a float image size."""
    if not (isinstance(similarity, tuple) and len(similarity) == 5):
        raise TypeError(f"selective_search: similarity must be a Similarity(colour, texture, "
                        f"size, fill, image_size), got {similarity!r}")
    *use, image_size = similarity
    for name, flag in zip(Similarity._fields, use):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"selective_search: similarity.{name} must be a bool, "
                            f"got {flag!r}")
    image_size = check_number(image_size, "selective_search: similarity.image_size",
                              minimum=0.0, strict_minimum=True)
    return Similarity(*(bool(u) for u in use), image_size)
