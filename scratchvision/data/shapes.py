"""Shapes: a built-in synthetic detection / segmentation dataset (no download).

Each image shows 1..max_objects filled shapes -- circles (label 1), rectangles/squares
(label 2) and triangles (label 3), rotated, in random colours, 12-64 px across at
``image_size=128`` (scaled with the image size) -- over a noisy, textured background,
drawn with OpenCV without anti-aliasing, so that masks and pixels agree exactly.

How an image is made (all randomness from one ``numpy.random.Generator`` seeded by
``(seed, split, index)``, so any sample can be regenerated on its own, in any order, in any
worker process):

1. Background: a smooth colour field (a 4x4 grid of colours near one base colour,
   resized bicubically),
   plus a band of random stripes (texture) and per-pixel Gaussian noise.
2. Objects are placed one after the other; a later object is drawn *over* earlier ones.
   Each object's *visible* mask is its own full mask minus the full masks of all later
   objects. A candidate placement is rejected (and re-drawn, a few tries) when it would
   leave an earlier object, or itself, with a tiny visible part: less than
   ``MIN_VISIBLE_FRACTION`` of its full area or fewer than ``MIN_VISIBLE_PIXELS`` pixels
   (scaled with the image). So the objects kept are always clearly visible, and no pixel
   of a dropped object remains in the image.
3. Each box is the tight box of the visible mask in pixel-edge coordinates:
   ``x1 = min column, x2 = max column + 1`` (likewise y), i.e. a box covers the pixels
   ``x1 <= x < x2``.
4. Colours: an object colour differs from the mean background colour under it by at least
   ``MIN_CONTRAST`` (L1 over RGB), so objects never vanish into the background.
"""
from __future__ import annotations

import cv2
import numpy as np

from scratchvision.validation import check_int, check_limit

CLASSES = ("background", "circle", "rectangle", "triangle")
SPLITS = {"train": 0, "val": 1, "test": 2}
MIN_VISIBLE_FRACTION = 0.35
MIN_VISIBLE_PIXELS = 40          # at image_size 128; scaled by (size / 128) ** 2
MIN_CONTRAST = 120
PLACEMENT_TRIES = 8


def _check_args(op: str, split: str, image_size, max_objects, seed) -> None:
    """Shapes' sizes: ints (not bools or floats), image_size >= 32 and max_objects >= 1,
    with the (max_objects, size, size) masks within ``LIMITS['max_elements']``."""
    if split not in SPLITS:
        raise ValueError(f"{op}: split must be one of {tuple(SPLITS)}, got {split!r}")
    check_int(seed, f"{op}: seed", minimum=0)
    size = check_int(image_size, f"{op}: image_size", minimum=32)
    check_limit(size * size, f"{op}: image_size {size}", limit="max_image_pixels")
    k = check_int(max_objects, f"{op}: max_objects", minimum=1)
    check_limit((k, size, size), f"{op}: masks of {k} objects at image_size {size}")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured, noisy RGB background (uint8 size x size x 3)."""
    # a muted colour field: one base colour plus moderate per-cell variation
    base = rng.uniform(50, 205, 3)
    grid = np.clip(base + rng.uniform(-45, 45, (4, 4, 3)), 0, 255).astype(np.float32)
    img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    # stripes at a random angle and period: texture that is not an object
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(6, 24) * size / 128
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / period)
    img += (rng.uniform(5, 20) * np.sin(phase))[..., None]
    img += rng.normal(0, rng.uniform(3, 12), img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def _shape_mask(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """The full mask (uint8 0/1) of one randomly placed, rotated shape of class ``label``."""
    scale = size / 128
    extent = rng.uniform(12, 64) * scale                     # size across, in pixels
    cx, cy = rng.uniform(extent / 2, size - extent / 2, 2)
    mask = np.zeros((size, size), np.uint8)
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if label == 1:                                           # circle
        cv2.circle(mask, (int(round(cx)), int(round(cy))), int(round(extent / 2)), 1, -1,
                   lineType=cv2.LINE_8)
        return mask
    if label == 2:                                           # rectangle / square
        aspect = 1.0 if rng.random() < 0.4 else rng.uniform(0.5, 1.0)
        half = np.array([1.0, aspect]) * extent / 2
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    else:                                                    # triangle
        base = rng.uniform(0, 2 * np.pi / 3)
        angles = base + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-.35, .35, 3)
        corners = np.stack([np.cos(angles), np.sin(angles)], 1) * extent / 2
    pts = corners @ rot.T + [cx, cy]                         # rotate, then move to centre
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8)
    return mask


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight pixel-edge boxes (K, 4) float32 of (K, H, W) masks: x2 = last column + 1."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys = np.flatnonzero(m.any(axis=1))
        xs = np.flatnonzero(m.any(axis=0))
        if xs.size:
            boxes[k] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def generate(seed: int, split: str, index: int, image_size: int = 128,
             max_objects: int = 4, full_masks: bool = False) -> dict:
    """One Shapes sample, a pure function of its arguments (see the module doc).

    ``full_masks=True`` adds ``full_masks`` (K, H, W): each shape's whole (amodal) mask,
    before occlusion by the shapes drawn after it.
    """
    _check_args("generate", split, image_size, max_objects, seed)
    check_int(index, "generate: index", minimum=0)
    rng = np.random.default_rng([seed, SPLITS[split], index, image_size, max_objects])
    size = image_size
    bg = _background(rng, size)
    n_obj = int(rng.integers(1, max_objects + 1))
    min_px = MIN_VISIBLE_PIXELS * (size / 128) ** 2
    full: list[np.ndarray] = []
    labels: list[int] = []
    for _ in range(n_obj):
        label = int(rng.integers(1, 4))
        for _try in range(PLACEMENT_TRIES):
            cand = _shape_mask(rng, label, size)
            area = int(cand.sum())
            if area < min_px:
                continue
            # earlier objects lose what the candidate covers; each must stay visible enough
            ok = True
            cover = cand.astype(bool)
            for prev in range(len(full)):
                vis = full[prev].astype(bool)
                for later in full[prev + 1:]:
                    vis &= ~later.astype(bool)
                tot = int(full[prev].sum())
                left = int((vis & ~cover).sum())
                if left < MIN_VISIBLE_FRACTION * tot or left < min_px:
                    ok = False
                    break
            if ok:
                full.append(cand)
                labels.append(label)
                break
    k = len(full)
    masks = np.zeros((k, size, size), np.uint8)
    covered = np.zeros((size, size), bool)
    for i in range(k - 1, -1, -1):                           # the last drawn is on top
        vis = full[i].astype(bool) & ~covered
        masks[i] = vis
        covered |= full[i].astype(bool)
    image = bg.copy()
    semantic = np.zeros((size, size), np.uint8)
    for i in range(k):                                       # paint in drawing order
        region = full[i].astype(bool)
        under = bg[region].mean(axis=0)
        for _try in range(16):
            colour = rng.uniform(0, 255, 3)
            if np.abs(colour - under).sum() >= MIN_CONTRAST:
                break
        else:
            colour = np.where(under > 127, 0.0, 255.0)
        shade = rng.normal(0, 6, (size, size, 1))            # a little texture on the object
        image[region] = np.clip(colour + shade[region], 0, 255)
        semantic[region] = labels[i]
    out = {"image": image.round().astype(np.uint8),
           "boxes": masks_to_boxes(masks),
           "labels": np.asarray(labels, np.int64),
           "masks": masks,
           "semantic": semantic}
    if full_masks:
        out["full_masks"] = np.stack(full) if k else np.zeros((0, size, size), np.uint8)
    return out


class Shapes:
    """Synthetic shapes for detection and segmentation (see the module docstring).

    Parameters
    ----------
    split : ``'train'``, ``'val'`` (or ``'test'``): independent streams of images.
    num_images : dataset length.
    image_size : square image side in pixels (shape sizes scale with it).
    seed : base seed; sample ``i`` is a function of (seed, split, i) (and of image_size and
        max_objects: changing those draws a different set of images).
    max_objects : at most this many objects per image (at least one is always tried).
    transforms : optional callable ``(image, target) -> (image, target)``.

    ``ds[i]`` returns ``(image, target)`` with ``image`` uint8 (H, W, 3) RGB and ``target``
    a dict: ``boxes`` float32 (K, 4) x1y1x2y2, ``labels`` int64 (K,) in 1..3, ``masks``
    uint8 (K, H, W) visible instance masks, ``semantic`` uint8 (H, W), ``image_id`` int.
    """

    classes = CLASSES
    num_classes = len(CLASSES)          # including background (0)

    def __init__(self, split: str = "train", num_images: int = 1000, image_size: int = 128,
                 seed: int = 0, max_objects: int = 4, transforms=None) -> None:
        _check_args("Shapes", split, image_size, max_objects, seed)
        check_int(num_images, "Shapes: num_images", minimum=0)
        if transforms is not None and not callable(transforms):
            raise TypeError(f"Shapes: transforms must be callable or None, got "
                            f"{type(transforms).__name__}")
        self.split, self.num_images, self.image_size = split, int(num_images), int(image_size)
        self.seed, self.max_objects, self.transforms = int(seed), int(max_objects), transforms

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int):
        index = check_int(index, "Shapes: index")
        if index < 0:
            index += self.num_images
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        s = generate(self.seed, self.split, index, self.image_size, self.max_objects)
        image = s.pop("image")
        s["image_id"] = index
        if self.transforms is not None:
            image, s = self.transforms(image, s)
        return image, s

    def __repr__(self) -> str:
        return (f"Shapes(split={self.split!r}, num_images={self.num_images}, "
                f"image_size={self.image_size}, seed={self.seed}, "
                f"max_objects={self.max_objects})")
