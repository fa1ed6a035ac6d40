"""Selective Search (Uijlings, van de Sande, Gevers, Smeulders; IJCV 2013): the public API.

Object proposals by hierarchical grouping of an over-segmentation. For one *strategy*
(a colour space, a Felzenszwalb ``k`` and a set of similarity measures):

1. Convert the RGB image to the colour space (RGB, HSV, Lab, rgI, H, I: every channel on
   0..255) and segment it with Felzenszwalb–Huttenlocher (``sigma=0.8``, ``min_size=k``,
   as the authors' code) into initial regions R.
2. Describe every region by its size, box, a colour histogram (25 bins per channel) and a
   texture histogram (Gaussian derivatives in 8 orientations, 10 bins each), and find
   which regions touch.
3. Greedily merge the most similar neighbours (a sum of colour, texture, size and fill
   similarities, as the strategy says) until one region is left. Every region ever made
   is a proposal: the initial ones first, then the merged ones in order of creation
   (2n - 1 boxes).

Steps 2 and 3 are array kernels: ``scratchvision/kernels/selective_search/`` --
``reference.py`` states them exactly (the histograms, the four measures, the merge rule and
its tie order), ``cpu.py`` is the Numba version with its heap (``heap.py``); the
segmentation is ``scratchvision/kernels/felzenszwalb/``. This module holds what is
Selective Search's own: the colour spaces, the strategies, the ranking, the input checks.

Diversification: the paper's strategies combine colour spaces x k x similarity sets
(``CTSF`` = colour + texture + size + fill, ``TSF``, ``F``, ``S``):

- ``'single'``: HSV, k = 100, CTSF (1 strategy);
- ``'fast'``: HSV and Lab, k in {50, 100}, CTSF and TSF (8 strategies);
- ``'quality'``: HSV, Lab, rgI, H, I, k in {50, 100, 150, 300}, CTSF, TSF, F, S (80).

Ranking, as the authors' code: within a strategy the box created j-th of N gets the
position ``N - j`` (the whole image, created last, gets 1), multiplied by a uniform random
number in [0, 1) from a generator seeded with ``seed``; the boxes of all strategies are
sorted by that value, ascending, and exact duplicates are dropped (the first one is kept).

Boxes are float32 ``(x1, y1, x2, y2)`` on pixel edges: a region covering pixel columns
``xmin..xmax`` gives ``x1 = xmin, x2 = xmax + 1`` (so a one-pixel region is a 1x1 box).

Work is shared where the paper's strategies allow: the segmentation graph and the pixel
bins depend only on the colour space, the region features only on (colour space, k); only
the grouping runs per similarity set. Bounded work: the image is checked against
``LIMITS['max_image_pixels']`` before anything is converted, and the kernels check the
histogram tables of the initial regions against ``LIMITS['max_elements']`` before
allocating them (``scratchvision.validation``).

``impl=`` of the kernel-level functions here (``feature_bins``, ``region_features``,
``group_regions``, ``hierarchical_grouping``) takes the kernels' names: None or ``'cpu'``
(Numba) and ``'reference'`` (the specification, for small images); both return the same
bins, features, boxes and merge trees.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba
import numpy as np

from scratchvision.kernels import selective_search as kernels
from scratchvision.kernels.selective_search import (  # noqa: F401
    COLOR_BINS,
    ORIENTATIONS,
    TEXTURE_BINS,
    RegionFeatures,
    Similarity,
)
from scratchvision.validation import check_int, check_limit, check_number

from .felzenszwalb import build_graph, segment_graph

__all__ = [
    "COLOR_SPACES",
    "SIMILARITIES",
    "STRATEGIES",
    "SelectiveSearch",
    "convert_color",
    "feature_bins",
    "group_regions",
    "hierarchical_grouping",
    "region_features",
    "selective_search",
]

COLOR_SPACES = ("rgb", "hsv", "lab", "rgI", "H", "I")
# similarity set name -> (colour, texture, size, fill)
SIMILARITIES = {
    "CTSF": (True, True, True, True),
    "TSF": (False, True, True, True),
    "CSF": (True, False, True, True),
    "CTS": (True, True, True, False),
    "C": (True, False, False, False),
    "T": (False, True, False, False),
    "S": (False, False, True, False),
    "F": (False, False, False, True),
}
STRATEGIES = {
    "single": (("hsv",), (100,), ("CTSF",)),
    "fast": (("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": (("hsv", "lab", "rgI", "H", "I"), (50, 100, 150, 300),
                ("CTSF", "TSF", "F", "S")),
}


# --------------------------------------------------------------------------------------------
# colour spaces and the kernel steps by name
# --------------------------------------------------------------------------------------------

def convert_color(image: np.ndarray, space: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> uint8 (H, W, C) in ``space``, every channel on 0..255.

    'hsv' uses OpenCV's full-range hue (0..255 for 0..360 degrees); 'lab' OpenCV's 8-bit Lab
    (L * 255 / 100, a + 128, b + 128); 'rgI' = (255 R / S, 255 G / S, S / 3) with S = R+G+B
    (r = g = 0 on black); 'H' the hue channel; 'I' the intensity S / 3.
    """
    _check_choice(space, "colour space", COLOR_SPACES)
    _validate_image(image)
    if space == "rgb":
        return np.ascontiguousarray(image)
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    if space == "H":
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)[:, :, :1])
    s = image.astype(np.float32).sum(axis=2, keepdims=True)       # (H, W, 1)
    intensity = np.rint(s / 3.0).astype(np.uint8)
    if space == "I":
        return intensity
    rg = np.where(s > 0, 255.0 * image[:, :, :2] / np.maximum(s, 1.0), 0.0)   # 'rgI'
    return np.concatenate([np.rint(rg).astype(np.uint8), intensity], axis=2)


def feature_bins(img: np.ndarray, impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Colour bins (C, H*W) and texture bins (C*8, H*W), uint8, of a (H, W, C) uint8 image.

    Colour: ``value * 25 // 256``. Texture: Gaussian derivatives (sigma = 1) steered to 8
    orientations, rectified, 10 bins up to the image's maximum (``kernels.selective_search
    .reference``). ``impl``: None or 'cpu' (Numba), 'reference'.
    """
    return kernels.feature_bins(img, impl=impl)


def region_features(labels: np.ndarray, colour_bins: np.ndarray, texture_bins: np.ndarray,
                    impl: str | None = None) -> RegionFeatures:
    """Features of the initial regions of an (H, W) integer label image (ids 0..n-1).

    Returns ``RegionFeatures(size (n,), box (n, 4), colour (n, C*25), texture (n, C*80),
    pairs (M, 2))``: pixel counts, pixel-edge boxes, L1-normalised histograms and the
    sorted neighbour pairs (i < j). ``colour_bins`` (C, H*W) and ``texture_bins``
    (C*8, H*W) come from ``feature_bins``.
    """
    return kernels.region_features(labels, colour_bins, texture_bins, impl=impl)


def group_regions(features: RegionFeatures, im_size: float, similarity: str = "CTSF",
                  impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hierarchical grouping of regions described by ``region_features``.

    ``im_size`` is the image's pixel count, ``similarity`` a key of ``SIMILARITIES``;
    returns ``(boxes, merged)`` as ``hierarchical_grouping``.
    """
    _check_choice(similarity, "similarity set", SIMILARITIES)
    im_size = check_number(im_size, "selective_search: im_size", minimum=0.0,
                           strict_minimum=True)
    measures = Similarity(*SIMILARITIES[similarity], im_size)
    return kernels.group_regions(features, measures, impl=impl)


def hierarchical_grouping(labels: np.ndarray, colour_bins: np.ndarray,
                          texture_bins: np.ndarray, similarity: str = "CTSF",
                          impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run one grouping of an initial segmentation.

    Parameters
    ----------
    labels : (H, W) integer region ids 0..n-1 (e.g. from ``felzenszwalb``).
    colour_bins : (C, H*W) uint8 colour bin of each pixel and channel (0..24).
    texture_bins : (C*8, H*W) uint8 texture bin of each pixel, channel and orientation (0..9).
    similarity : a key of ``SIMILARITIES``.
    impl : None or 'cpu' (Numba), or 'reference' (both the features and the grouping).

    Returns
    -------
    boxes : (n + merges, 4) int64 pixel-edge boxes of every region in order of creation.
    merged : (n + merges, 2) int64 children of each merged region (-1 for initial ones).
    """
    _check_choice(similarity, "similarity set", SIMILARITIES)
    features = region_features(labels, colour_bins, texture_bins, impl)
    return group_regions(features, labels.shape[0] * labels.shape[1], similarity, impl)


def _check_choice(value, what: str, choices) -> None:
    """``value`` must be one of ``choices`` (a string): TypeError / ValueError otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"selective_search: the {what} must be a string, got {value!r}")
    if value not in choices:
        raise ValueError(f"selective_search: unknown {what} {value!r}; choose from "
                         f"{sorted(choices) if isinstance(choices, dict) else choices}")


# --------------------------------------------------------------------------------------------
# the public API
# --------------------------------------------------------------------------------------------

@dataclass
class SelectiveSearch:
    """Selective Search with a fixed strategy; call it on RGB uint8 images.

    Parameters
    ----------
    strategy : 'single', 'fast' or 'quality' (the paper's), used for every field left None.
    color_spaces, ks, similarities : override the strategy's lists (colour spaces from
        ``COLOR_SPACES``, Felzenszwalb k values, keys of ``SIMILARITIES``).
    sigma : Felzenszwalb smoothing (0.8 in the paper).
    min_size : Felzenszwalb min_size; None means ``min_size = k`` (the authors' code).
    seed : seed of the random ranking.
    num_threads : Numba threads for the call (None: Numba's current setting). The parallel
        loops here are short (about 16 per image for 'fast'), so on a busy machine, where
        each fork/join can cost milliseconds, ``num_threads=1`` is much faster; the
        setting is thread-local and restored after the call.

    After a call, ``segmentations`` holds the (colour space, k, labels) of the initial
    regions, for pictures.
    """

    strategy: str = "fast"
    color_spaces: tuple | None = None
    ks: tuple | None = None
    similarities: tuple | None = None
    sigma: float = 0.8
    min_size: int | None = None
    seed: int = 0
    num_threads: int | None = None

    def __post_init__(self):
        _check_choice(self.strategy, "strategy", STRATEGIES)
        spaces, ks, sims = STRATEGIES[self.strategy]
        self.color_spaces = _choices(self.color_spaces, spaces, "color_spaces")
        self.ks = _choices(self.ks, ks, "ks")
        self.similarities = _choices(self.similarities, sims, "similarities")
        for cs in self.color_spaces:
            _check_choice(cs, "colour space", COLOR_SPACES)
        for sim in self.similarities:
            _check_choice(sim, "similarity set", SIMILARITIES)
        for k in self.ks:
            check_number(k, "selective_search: every k (Felzenszwalb's scale)", minimum=0.0)
        check_number(self.sigma, "selective_search: sigma", minimum=0.0)
        if self.min_size is not None:
            check_int(self.min_size, "selective_search: min_size", minimum=0)
        check_int(self.seed, "selective_search: seed", minimum=0)
        if self.num_threads is not None:
            check_int(self.num_threads, "selective_search: num_threads", minimum=1)
        self.segmentations: list[tuple[str, float, np.ndarray]] = []

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB image -> (K, 4) float32 xyxy boxes, best ranked first."""
        _validate_image(image)
        if self.num_threads is None:
            return self._run(image)
        before = numba.get_num_threads()
        numba.set_num_threads(min(int(self.num_threads), numba.config.NUMBA_NUM_THREADS))
        try:
            return self._run(image)
        finally:
            numba.set_num_threads(before)

    def _run(self, image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        rng = np.random.default_rng(self.seed)
        all_boxes, all_rank = [], []
        self.segmentations = []
        for cs in self.color_spaces:
            img = convert_color(image, cs)                      # (H, W, C) uint8
            a, b, wt = build_graph(img.astype(np.float32), self.sigma)
            colour_bins, texture_bins = feature_bins(img)
            for k in self.ks:
                min_size = int(k) if self.min_size is None else int(self.min_size)
                labels = segment_graph(h, w, a, b, wt, float(k), min_size)
                self.segmentations.append((cs, k, labels))
                features = region_features(labels, colour_bins, texture_bins)
                for sim in self.similarities:
                    boxes, _ = group_regions(features, h * w, sim)
                    # position in the hierarchy: N for the first region ... 1 for the last
                    position = np.arange(len(boxes), 0, -1, dtype=np.float64)
                    all_rank.append(position * rng.random(len(boxes)))
                    all_boxes.append(boxes)
        boxes = np.concatenate(all_boxes)
        order = np.argsort(np.concatenate(all_rank), kind="stable")
        boxes = boxes[order]
        _, first = np.unique(boxes, axis=0, return_index=True)   # drop exact duplicates
        return boxes[np.sort(first)].astype(np.float32)


def _choices(given, default: tuple, name: str) -> tuple:
    """``given`` as a non-empty tuple (None: the strategy's ``default``)."""
    if given is None:
        return tuple(default)
    if isinstance(given, str) or not isinstance(given, (tuple, list)):
        raise TypeError(f"selective_search: {name} must be a tuple or list (or None), "
                        f"got {given!r}")
    if not given:
        raise ValueError(f"selective_search: {name} must not be empty (None: the "
                         f"strategy's {tuple(default)})")
    return tuple(given)


def _validate_image(image) -> None:
    """An (H, W, 3) uint8 RGB NumPy image of at most ``LIMITS['max_image_pixels']``."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"selective_search: image must be a numpy array, "
                        f"got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"selective_search: image must be uint8 RGB, got dtype {image.dtype} "
                        f"(convert it, e.g. with skimage.img_as_ubyte or .astype(np.uint8))")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"selective_search: image must have shape (H, W, 3) with H, W >= 1, "
                         f"got {image.shape}")
    h, w = image.shape[:2]
    check_limit(h * w, f"selective_search on a {h}x{w} image", "max_image_pixels")


def selective_search(image_rgb_uint8: np.ndarray, strategy: str = "fast", seed: int = 0,
                     **kwargs) -> np.ndarray:
    """Selective Search object proposals for one RGB image.

    Parameters
    ----------
    image_rgb_uint8 : (H, W, 3) uint8 RGB image.
    strategy : 'single', 'fast' (default) or 'quality', as in the paper.
    seed : seed of the random part of the ranking (same seed, same boxes).
    **kwargs : ``color_spaces``, ``ks``, ``similarities``, ``sigma``, ``min_size``,
        ``num_threads``: see ``SelectiveSearch``.

    Returns
    -------
    boxes : (K, 4) float32 ``(x1, y1, x2, y2)`` on pixel edges, best ranked first, no two
        equal.
    """
    return SelectiveSearch(strategy=strategy, seed=seed, **kwargs)(image_rgb_uint8)
