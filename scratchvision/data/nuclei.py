"""Nuclei: a real fluorescence-microscopy image of cell nuclei, with instance labels.

Data: the 2D example that the ``stardist`` package ships in its wheel (BSD-3-Clause
licence), fetched with ``wheel_file("stardist", "0.9.2", ...)`` (``pip download --no-deps``
once, then cached; ``WheelUnavailable`` when the registry cannot be reached):

- ``stardist/data/images/img2d.tif``  512 x 512 uint16 fluorescence image (values 0..235);
- ``stardist/data/images/mask2d.tif`` 512 x 512 uint16 instance labels: 0 background,
  125 nuclei with ids between 1 and 183 (not consecutive).

Both are read with ``cv2.imread(path, cv2.IMREAD_UNCHANGED)``. The image is normalised as
stardist's examples do (``normalize(x, 1, 99.8)``): ``(x - p1) / (p99.8 - p1)`` with the
1st and 99.8th percentiles of the whole image, clipped to [0, 1], times 255, rounded to
uint8, and replicated to three channels, so it is an ordinary (H, W, 3) RGB image for the
detectors and segmenters.

Split (by columns, rows 0..511 on both sides): ``train`` is x < 384 (384 wide),
``val`` is x >= 384 (128 wide). A nucleus crossing x = 384 is cut: each side keeps only
its own pixels. Measured: 102 nuclei have pixels in the train region, 30 in the val
region, 7 of them on both sides (102 + 30 - 7 = 125).

Tiling: square ``tile`` x ``tile`` crops at the origins ``0, stride, 2 * stride, ...`` along
each axis, plus one flush with the far edge when the stride does not land there, so the
whole region is always covered. ``stride`` defaults to ``tile // 2`` for train and ``tile``
(non-overlapping) for val. With ``tile=128``: train 5 x 7 = 35 tiles (x origins 0..256,
y origins 0..384, step 64), val 1 x 4 = 4 tiles.

Instances in a tile: each nucleus id present in the tile gives one target; a nucleus cut
by the tile border keeps its visible part, and one with fewer than ``MIN_PIXELS`` (8)
pixels in the tile is dropped from the instance targets (its pixels stay ``nucleus`` in
the semantic map, which is simply ``labels > 0``). Measured with ``tile=128``: the 35
train tiles hold 351 instances (overlapping tiles: 101 distinct nuclei; the 102nd has
only 2 pixels left of x = 384), the 4 val tiles 33 instances (all 30 val nuclei; 3 of them
are cut by a tile border at y = 128, 256 or 384 and appear in two tiles).

Targets follow ``data/shapes.py``: ``boxes`` float32 (K, 4) pixel-edge x1y1x2y2 (x2 = last
column + 1), ``labels`` int64 (K,) all 1, ``masks`` uint8 (K, tile, tile), ``semantic``
uint8 (tile, tile), ``image_id`` (the index), and ``instance_ids`` int64 (K,): the
nuclei's ids in ``mask2d.tif``. ``augment=True`` applies one of the 8 flips/rotations (D4)
to tile ``i``, drawn from a generator seeded by ``(seed, i)``.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from scratchvision.data.shapes import masks_to_boxes
from scratchvision.data.wheel_files import wheel_file
from scratchvision.validation import check_int

WHEEL = ("stardist", "0.9.2")
IMAGE_MEMBER = "stardist/data/images/img2d.tif"
MASK_MEMBER = "stardist/data/images/mask2d.tif"
CLASSES = ("background", "nucleus")
SPLIT_X = 384                    # train: columns x < SPLIT_X; val: x >= SPLIT_X
MIN_PIXELS = 8                   # an instance needs this many pixels inside a tile
PERCENTILES = (1.0, 99.8)


def percentile_uint8(x: np.ndarray, low: float = PERCENTILES[0],
                     high: float = PERCENTILES[1]) -> np.ndarray:
    """``(x - p_low) / (p_high - p_low)`` clipped to [0, 1], as uint8 0..255."""
    x = np.asarray(x, np.float64)
    lo, hi = np.percentile(x, [low, high])
    y = np.clip((x - lo) / max(hi - lo, 1e-20), 0.0, 1.0)
    return np.round(y * 255).astype(np.uint8)


@lru_cache(maxsize=1)
def load_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The whole image (512, 512, 3) uint8 RGB and instance labels (512, 512) int64.

    Raises ``WheelUnavailable`` when the stardist wheel cannot be downloaded."""
    raw = [cv2.imread(str(wheel_file(*WHEEL, m)), cv2.IMREAD_UNCHANGED)
           for m in (IMAGE_MEMBER, MASK_MEMBER)]
    for member, a in zip((IMAGE_MEMBER, MASK_MEMBER), raw):
        if a is None or a.ndim != 2:
            raise ValueError(f"{member}: expected a 2D image, got "
                             f"{None if a is None else a.shape}")
    image = np.repeat(percentile_uint8(raw[0])[..., None], 3, axis=2)
    labels = raw[1].astype(np.int64)
    image.flags.writeable = labels.flags.writeable = False     # shared by the cache
    return image, labels


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Origins 0, stride, ... of tiles covering ``[0, length)``; the last flush with the end."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def _d4(a: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` (0..7) of D4 on the first two axes: rotate k % 4 quarter turns, then
    flip left-right when k >= 4."""
    a = np.rot90(a, k % 4, axes=(0, 1))
    return np.ascontiguousarray(a[:, ::-1] if k >= 4 else a)


class Nuclei:
    """Tiles of the stardist nuclei image for detection and segmentation (module doc).

    Parameters
    ----------
    split : ``'train'`` (columns x < 384) or ``'val'`` (x >= 384).
    tile : side of the square tiles in pixels (at most the region's width: 384 / 128).
    stride : step between tile origins; default ``tile // 2`` (train), ``tile`` (val).
    seed : seeds the augmentation (tile ``i`` uses a generator seeded by (seed, i)).
    augment : apply one of the 8 flips/rotations (D4) to each tile.
    transforms : optional callable ``(image, target) -> (image, target)``.

    ``ds[i]`` returns ``(image, target)``: ``image`` uint8 (tile, tile, 3) RGB, ``target``
    as in ``Shapes`` (see the module doc). ``ds.semantic(i)`` is the (tile, tile) int64
    label map (0 background, 1 nucleus) for semantic segmentation.
    """

    classes = CLASSES
    num_classes = len(CLASSES)          # including background (0)

    def __init__(self, split: str = "train", tile: int = 128, stride: int | None = None,
                 seed: int = 0, augment: bool = False, transforms=None) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        tile = check_int(tile, "Nuclei: tile", minimum=1)
        if stride is None:
            stride = max(1, tile // 2) if split == "train" else tile
        stride = check_int(stride, "Nuclei: stride", minimum=1)
        check_int(seed, "Nuclei: seed", minimum=0)
        image, labels = load_nuclei()
        height, width = labels.shape
        x0, x1 = (0, SPLIT_X) if split == "train" else (SPLIT_X, width)
        if tile > min(x1 - x0, height):
            raise ValueError(f"tile {tile} is larger than the {split} region "
                             f"({x1 - x0} wide x {height} high)")
        self.split, self.tile, self.stride = split, int(tile), int(stride)
        self.seed, self.augment, self.transforms = int(seed), bool(augment), transforms
        self.region = (x0, x1)
        self._image, self._labels = image, labels
        self.origins = [(y, x0 + x) for y in tile_origins(height, tile, stride)
                        for x in tile_origins(x1 - x0, tile, stride)]   # (y, x), raster order

    def __len__(self) -> int:
        return len(self.origins)

    def _index(self, index: int) -> int:
        n = len(self.origins)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} {self.split} tiles")
        return index % n

    def _tile(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image (t, t, 3) uint8 and instance labels (t, t) int64 of tile ``index``."""
        y, x = self.origins[index]
        t = self.tile
        image, labels = self._image[y:y + t, x:x + t], self._labels[y:y + t, x:x + t]
        if self.augment:
            k = int(np.random.default_rng([self.seed, index]).integers(8))
            image, labels = _d4(image, k), _d4(labels, k)
        return np.array(image), np.array(labels)

    def semantic(self, index: int) -> np.ndarray:
        """(tile, tile) int64: 1 where a nucleus is, 0 elsewhere."""
        return (self._tile(self._index(index))[1] > 0).astype(np.int64)

    def __getitem__(self, index: int):
        index = self._index(index)
        image, labels = self._tile(index)
        return self._sample(image, labels, index)

    def variant(self, index: int, k: int):
        """Tile ``index`` under element ``k`` (0..7) of D4 (``k`` quarter turns, then a
        left-right flip when k >= 4), whatever ``augment`` says: the detector training's
        eight fixed copies of each tile."""
        k = check_int(k, "Nuclei.variant: k", minimum=0, maximum=7)
        index = self._index(index)
        y, x = self.origins[index]
        t = self.tile
        image = _d4(self._image[y:y + t, x:x + t], int(k))
        labels = _d4(self._labels[y:y + t, x:x + t], int(k))
        return self._sample(image, labels, index)

    def _sample(self, image: np.ndarray, labels: np.ndarray, index: int):
        ids, counts = np.unique(labels[labels > 0], return_counts=True)
        ids = ids[counts >= MIN_PIXELS]
        masks = (labels[None] == ids[:, None, None]).astype(np.uint8)
        target = {"boxes": masks_to_boxes(masks),
                  "labels": np.ones(len(ids), np.int64),
                  "masks": masks,
                  "semantic": (labels > 0).astype(np.uint8),
                  "image_id": index,
                  "instance_ids": ids.astype(np.int64)}
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
