"""Transforms that carry boxes, labels and masks together with the image.

Every transform is a callable ``(image, target=None) -> (image, target)``. ``target`` may
be ``None`` (an image-only pipeline, as torchvision's v2 transforms allow): ``None`` then
comes back as the target.

Images
------
Before ``ToTensor`` an image is a NumPy array (H, W, C), H, W, C >= 1, of one of:

- ``uint8``, values 0..255 (what the datasets return, RGB);
- ``float32`` or ``float64``, values in [0, 1] (torchvision v2's convention for float
  images).

Every transform returns the dtype it was given. Geometric transforms (``Resize``,
``RandomHorizontalFlip``, ``RandomExpand``, ``RandomIoUCrop``, ``RandomScaleTranslate``)
take any number of channels (``RandomScaleTranslate`` at most 4, OpenCV's border value);
their ``fill`` is in the image's own scale (0..255 for uint8, [0, 1] for floats) and is
checked against it. Colour transforms (``PhotometricDistort``,
``RandomExposureSaturation``) need RGB (C = 3) and refuse float values outside [0, 1] (a
float image on the 0..255 scale would be clipped to white); they compute in float32 on the
0..255 scale (float images are multiplied by 255 and divided back, so ``brightness=32``
shifts a float image by 32 / 255), and round back to uint8 for uint8 images. Everything
else -- int64, uint16, bool or float16 arrays, lists, CuPy arrays, Tensors (apply these
before ``ToTensor``) -- is refused with a ``TypeError`` naming the transform, the argument
and the dtype: nothing is cast silently.

``ToTensor`` makes a ``scratchvision.Tensor`` (C, H, W): uint8 / 255 as float32, float32
as is, float64 stays float64 (as torchvision's ``ToTensor`` keeps a float64 array's
dtype). ``Normalize`` then works on that float tensor.

Targets
-------
``target`` is ``None`` or a dict, possibly with ``boxes`` float32 (K, 4) x1y1x2y2 in
pixel-edge coordinates (a box covers ``x1 <= x < x2``, so an image is the box (0, 0, W,
H)), per-object arrays of length K (``labels``, ``masks`` (K, H, W), ``difficult``,
``iscrowd``, ``area``, ``truncated``) and ``semantic`` (H, W) label map. Missing keys are
simply not transformed; the input dict is never modified (a new one is returned). Boxes
must be finite with ``x1 <= x2``, ``y1 <= y2``; masks and semantic maps must have the
image's (H, W); per-object entries must agree on K -- otherwise a ``ValueError`` names the
transform and the entry.

Geometric transforms move boxes and masks with the pixels. With the pixel-edge
convention the arithmetic is exact: flipping maps ``x -> W - x`` (so ``x1' = W - x2``,
``x2' = W - x1``; flipping twice is the identity), resizing by ``s`` maps ``x -> s x``,
padding by ``left`` maps ``x -> x + left``, cropping at ``left`` maps ``x -> x - left``.
A stale ``boxes_inclusive`` (VOC) is dropped by geometric transforms.

Randomness and arguments
------------------------
Random transforms take a ``generator`` (``numpy.random.Generator``); by default they draw
from ``scratchvision.autograd.default_generator()`` at call time, which
``scratchvision.manual_seed`` seeds (and which ``DataLoader`` workers re-seed per batch).
With ``p=0`` a random transform returns its input image itself (same object, dtype and
values). Every constructor argument is checked when the transform is built
(probabilities in [0, 1], sizes positive ints, ranges ordered and finite), so a bad
pipeline fails where it is written, not in the middle of an epoch; output sizes that
depend on random draws (``RandomExpand``'s canvas) or on the input (``Resize``) are
checked against ``scratchvision.validation.LIMITS['max_elements']`` before allocating.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from scratchvision.autograd import Tensor, default_generator
from scratchvision.backend import get_array_module
from scratchvision.validation import (
    FLOAT_DTYPES,
    check_array,
    check_int,
    check_limit,
    check_number,
    check_probability,
    pair,
)

PER_OBJECT = ("boxes", "labels", "masks", "difficult", "truncated", "iscrowd", "area")
IMAGE_DTYPES = (np.dtype(np.uint8),) + FLOAT_DTYPES


# ------------------------------------------------------------------ argument checks
def _check_generator(generator, op: str):
    """``generator`` if it is None or a ``numpy.random.Generator``."""
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{op}: generator must be a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def _check_range(value, name: str, minimum: float) -> tuple[float, float]:
    """A pair ``(lo, hi)`` of finite numbers with ``minimum <= lo <= hi``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi) of numbers, got {value!r}")
    lo = check_number(value[0], f"{name}[0]", minimum=minimum)
    hi = check_number(value[1], f"{name}[1]", minimum=minimum)
    if lo > hi:
        raise ValueError(f"{name} must have lo <= hi, got {value!r}")
    return lo, hi


def _check_fill(fill, name: str) -> np.ndarray | None:
    """``None`` (the image's mean colour), or one finite number or a 1-D sequence of them
    (one per channel), as a float64 array."""
    if fill is None:
        return None
    arr = np.asarray(fill)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0:
        raise TypeError(f"{name} must be None, a number or a sequence of numbers (one per "
                        f"channel), got {fill!r}")
    arr = arr.astype(np.float64).reshape(-1)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {fill!r}")
    return arr


def _fill_colour(fill: np.ndarray | None, image: np.ndarray, name: str) -> np.ndarray:
    """The (C,) float64 fill colour for ``image``: its mean colour, or ``fill`` checked
    against the image's channels and value range."""
    c = image.shape[2]
    if fill is None:
        return image.reshape(-1, c).mean(axis=0, dtype=np.float64)
    if fill.size not in (1, c):
        raise ValueError(f"{name} has {fill.size} values for an image of {c} channels")
    top = 255.0 if image.dtype == np.uint8 else 1.0
    if fill.min() < 0 or fill.max() > top:
        raise ValueError(f"{name} {fill.tolist()} is outside the {image.dtype} image's "
                         f"range [0, {top:g}]")
    return np.broadcast_to(fill, (c,)).copy()


# ---------------------------------------------------------------------- input checks
def _rng(generator):
    return generator if generator is not None else default_generator()


def _check_image(image, op: str, rgb: bool = False) -> np.ndarray:
    """``image`` if it is a documented (H, W, C) array (module doc), else a clear error."""
    if isinstance(image, Tensor):
        raise TypeError(f"{op}: image is a Tensor; this transform works on (H, W, C) arrays: "
                        "apply it before ToTensor")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{op}: image must be a numpy array (H, W, C), got "
                        f"{type(image).__name__}")
    check_array(image, f"{op}: image", ndim=3, dtypes=None, layout="(H, W, C)")
    if image.dtype not in IMAGE_DTYPES:
        raise TypeError(f"{op}: image must be uint8 (0..255) or float32/float64 (in [0, 1]), "
                        f"got {image.dtype}; convert it explicitly")
    if min(image.shape) == 0:
        raise ValueError(f"{op}: image must have H, W, C >= 1, got shape {image.shape}")
    if rgb and image.shape[2] != 3:
        raise ValueError(f"{op}: image must be RGB (H, W, 3), got shape {image.shape}")
    return image


def _check_unit_range(image: np.ndarray, op: str) -> None:
    """A float image must lie in [0, 1] (NaN fails too)."""
    if image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        if not (lo >= 0.0 and hi <= 1.0):
            raise ValueError(f"{op}: a float image must have values in [0, 1], got "
                             f"[{lo}, {hi}] (uint8 images hold 0..255)")


def _check_target(target, op: str, image_hw: tuple[int, int] | None = None) -> dict | None:
    """``target`` if it is None or a dict whose per-object entries agree on K and whose
    masks / semantic map (when ``image_hw`` is given) have the image's size."""
    if target is None:
        return None
    if not isinstance(target, dict):
        raise TypeError(f"{op}: target must be a dict or None, got {type(target).__name__}")
    lengths = {k: (np.shape(target[k])[0] if np.ndim(target[k]) else None)
               for k in PER_OBJECT if k in target}
    if len(set(lengths.values())) > 1 or None in lengths.values():
        raise ValueError(f"{op}: the per-object entries of target must all have length K, "
                         f"got lengths {lengths}")
    if image_hw is not None:
        if "masks" in target:
            shape = np.shape(target["masks"])
            if len(shape) != 3 or shape[1:] != tuple(image_hw):
                raise ValueError(f"{op}: target['masks'] must be (K, {image_hw[0]}, "
                                 f"{image_hw[1]}) like the image, got shape {shape}")
        if "semantic" in target and np.shape(target["semantic"]) != tuple(image_hw):
            raise ValueError(f"{op}: target['semantic'] must be {tuple(image_hw)} like the "
                             f"image, got shape {np.shape(target['semantic'])}")
    return target


def _copy(target: dict | None) -> dict | None:
    if target is None:
        return None
    t = dict(target)
    t.pop("boxes_inclusive", None)
    return t


def _check_boxes(boxes, where: str) -> np.ndarray:
    """``boxes`` as float32 (K, 4), finite, with x1 <= x2 and y1 <= y2."""
    b = np.asarray(boxes)
    if b.size == 0:
        return np.zeros((0, 4), np.float32)
    if b.dtype.kind not in "iuf":
        raise TypeError(f"{where}: target['boxes'] must hold numbers, got dtype {b.dtype}")
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{where}: target['boxes'] must be (K, 4) x1y1x2y2, got shape "
                         f"{b.shape}")
    b = b.astype(np.float32)
    finite = np.isfinite(b).all(axis=1)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{where}: target['boxes'] row {k} = {b[k].tolist()} is not finite")
    bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: target['boxes'] row {k} = {b[k].tolist()} has x2 < x1 "
                         "or y2 < y1")
    return b


def _to_255(image: np.ndarray) -> np.ndarray:
    """A float32 copy of ``image`` on the 0..255 scale."""
    img = image.astype(np.float32)
    return img if image.dtype == np.uint8 else img * np.float32(255.0)


def _from_255(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Back from the 0..255 float scale to ``dtype`` (uint8 rounded, floats in [0, 1])."""
    img = np.clip(img, 0, 255)
    if dtype == np.uint8:
        return img.round().astype(np.uint8)
    return (img / np.float32(255.0)).astype(dtype)


def select(target: dict, keep: np.ndarray) -> dict:
    """The target restricted to the objects ``keep`` (bool mask or indices)."""
    t = dict(target)
    for k in PER_OBJECT:
        if k in t:
            t[k] = np.asarray(t[k])[keep]
    return t


# ---------------------------------------------------------------------- transforms
class Compose:
    """Apply transforms in order: ``Compose([...])(image, target=None)``."""

    def __init__(self, transforms: Sequence) -> None:
        if isinstance(transforms, (str, bytes)) or not hasattr(transforms, "__iter__"):
            raise TypeError(f"Compose: transforms must be a sequence of callables, got "
                            f"{type(transforms).__name__}")
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] is not callable: {t!r}")

    def __call__(self, image, target=None):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    """Resize the image (bilinear) and its boxes/masks (nearest) together.

    ``size`` an int (or a sequence of one int): the shorter side becomes ``size`` keeping
    the aspect ratio, unless the longer side would then exceed ``max_size``, in which case
    the longer side becomes ``max_size`` (torchvision / Detectron rule). ``size`` a pair
    ``(h, w)``: that exact size (``max_size`` is then refused, as torchvision does).
    Images: uint8 / float32 / float64 (H, W, C), any C; the dtype is kept.
    """

    def __init__(self, size: int | tuple[int, int], max_size: int | None = None) -> None:
        if isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 1:
            size = size[0]                               # torchvision: [s] means s
        if isinstance(size, Sequence) and not isinstance(size, str):
            if len(size) != 2:
                raise TypeError(f"Resize: size must be an int or (h, w), got {size!r}")
            self.size: int | tuple[int, int] = pair(size, "Resize: size", minimum=1)
        else:
            self.size = check_int(size, "Resize: size", minimum=1)
        if max_size is not None:
            max_size = check_int(max_size, "Resize: max_size", minimum=1)
            if not isinstance(self.size, int):
                raise ValueError(f"Resize: max_size is only for an int size (the shorter "
                                 f"side), got size={self.size} and max_size={max_size}")
            if max_size < self.size:
                raise ValueError(f"Resize: max_size {max_size} must be >= size {self.size}")
        self.max_size = max_size

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(new_h, new_w) for an input of (h, w)."""
        if not isinstance(self.size, int):
            return self.size
        scale = self.size / min(h, w)
        if self.max_size is not None and max(h, w) * scale > self.max_size:
            scale = self.max_size / max(h, w)
        return max(1, int(round(h * scale))), max(1, int(round(w * scale)))

    def __call__(self, image, target=None):
        image = _check_image(image, "Resize")
        h, w, c = image.shape
        target = _check_target(target, "Resize", (h, w))
        nh, nw = self.output_size(h, w)
        check_limit((nh, nw, c), f"Resize to ({nh}, {nw})")
        out = cv2.resize(np.ascontiguousarray(image), (nw, nh), interpolation=cv2.INTER_LINEAR)
        out = out.reshape(nh, nw, c)                     # cv2 drops a single channel axis
        if target is None:
            return out, None
        t = _copy(target)
        sx, sy = nw / w, nh / h
        if "boxes" in t:
            t["boxes"] = _check_boxes(t["boxes"], "Resize") * np.float32([sx, sy, sx, sy])
        if "area" in t:
            t["area"] = np.asarray(t["area"], np.float32) * np.float32(sx * sy)
        if "masks" in t:
            m = np.asarray(t["masks"])
            check_limit((len(m), nh, nw), f"Resize of target['masks'] to ({nh}, {nw})")
            t["masks"] = np.stack([cv2.resize(k, (nw, nh), interpolation=cv2.INTER_NEAREST)
                                   for k in m]) if len(m) else np.zeros((0, nh, nw), m.dtype)
        if "semantic" in t:
            t["semantic"] = cv2.resize(np.asarray(t["semantic"]), (nw, nh),
                                       interpolation=cv2.INTER_NEAREST)
        return out, t

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, max_size={self.max_size})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``: ``x1' = W - x2``, ``x2' = W - x1``.
    Images: uint8 / float32 / float64 (H, W, C), any C."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        self.p = check_probability(p, "RandomHorizontalFlip: p")
        self.generator = _check_generator(generator, "RandomHorizontalFlip")

    def __call__(self, image, target=None):
        image = _check_image(image, "RandomHorizontalFlip")
        target = _check_target(target, "RandomHorizontalFlip", image.shape[:2])
        if _rng(self.generator).random() >= self.p:
            return image, target
        w = image.shape[1]
        t = _copy(target)
        if t is not None:
            if "boxes" in t:
                b = _check_boxes(t["boxes"], "RandomHorizontalFlip")
                t["boxes"] = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
            if "masks" in t:
                t["masks"] = np.ascontiguousarray(np.asarray(t["masks"])[:, :, ::-1])
            if "semantic" in t:
                t["semantic"] = np.ascontiguousarray(np.asarray(t["semantic"])[:, ::-1])
        return np.ascontiguousarray(image[:, ::-1]), t

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class PhotometricDistort:
    """SSD's photometric distortion (each step with probability ``p``).

    Brightness ``+ U(-brightness, brightness)`` (0..255 scale); contrast ``x U(contrast)``
    either first or last (random order, as SSD); in HSV: saturation ``x U(saturation)``,
    hue ``+ U(-hue, hue)`` degrees (wrapping); finally a random permutation of the colour
    channels. Boxes and masks are untouched. Images: uint8, or float32 / float64 in [0, 1],
    (H, W, 3) RGB; the dtype is kept (see the module doc). With ``p=0`` the image comes
    back unchanged. The random draws come in the same order whatever is applied, so a
    seed gives one sequence of distortions.
    """

    def __init__(self, brightness: float = 32.0, contrast=(0.5, 1.5), saturation=(0.5, 1.5),
                 hue: float = 18.0, p: float = 0.5,
                 generator: np.random.Generator | None = None) -> None:
        op = "PhotometricDistort"
        self.brightness = check_number(brightness, f"{op}: brightness", minimum=0.0)
        self.contrast = _check_range(contrast, f"{op}: contrast", minimum=0.0)
        self.saturation = _check_range(saturation, f"{op}: saturation", minimum=0.0)
        self.hue = check_number(hue, f"{op}: hue", minimum=0.0, maximum=180.0)
        self.p = check_probability(p, f"{op}: p")
        self.generator = _check_generator(generator, op)

    def __call__(self, image, target=None):
        image = _check_image(image, "PhotometricDistort", rgb=True)
        _check_unit_range(image, "PhotometricDistort")
        target = _check_target(target, "PhotometricDistort")
        rng = _rng(self.generator)
        img = _to_255(image)                              # float32 (H, W, 3), 0..255
        changed = False
        if rng.random() < self.p:
            img += rng.uniform(-self.brightness, self.brightness)
            changed = True
        contrast_first = rng.random() < 0.5
        if contrast_first and rng.random() < self.p:
            img *= rng.uniform(*self.contrast)
            changed = True
        img = np.clip(img, 0, 255)
        saturation = rng.uniform(*self.saturation) if rng.random() < self.p else None
        hue = rng.uniform(-self.hue, self.hue) if rng.random() < self.p else None
        if saturation is not None or hue is not None:     # the HSV round trip only if used
            hsv = cv2.cvtColor(img / 255.0, cv2.COLOR_RGB2HSV)    # H in [0, 360)
            if saturation is not None:
                hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
            if hue is not None:
                hsv[..., 0] = np.mod(hsv[..., 0] + hue, 360.0)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
            changed = True
        if not contrast_first and rng.random() < self.p:
            img *= rng.uniform(*self.contrast)
            changed = True
        if rng.random() < self.p:
            img = img[..., rng.permutation(3)]
            changed = True
        if not changed:
            return image, target
        return _from_255(img, image.dtype), target

    def __repr__(self) -> str:
        return f"PhotometricDistort(p={self.p})"


class RandomExpand:
    """SSD's zoom out: with probability ``p`` put the image at a random place on a canvas
    ``ratio`` in U(1, max_ratio) times larger, filled with ``fill`` (default: the mean
    colour; else one value or one per channel, in the image's scale: 0..255 for uint8,
    [0, 1] for floats); boxes shift by ``(left, top)``, masks/semantic are padded with 0.
    Images: uint8 / float32 / float64 (H, W, C), any C; the dtype is kept."""

    def __init__(self, max_ratio: float = 4.0, fill=None, p: float = 0.5,
                 generator: np.random.Generator | None = None) -> None:
        self.max_ratio = check_number(max_ratio, "RandomExpand: max_ratio", minimum=1.0)
        self.fill = _check_fill(fill, "RandomExpand: fill")
        self.p = check_probability(p, "RandomExpand: p")
        self.generator = _check_generator(generator, "RandomExpand")

    def __call__(self, image, target=None):
        image = _check_image(image, "RandomExpand")
        h, w, c = image.shape
        target = _check_target(target, "RandomExpand", (h, w))
        if self.fill is not None:                         # checked whatever the coin says
            _fill_colour(self.fill, image, "RandomExpand: fill")
        rng = _rng(self.generator)
        if rng.random() >= self.p:
            return image, target
        ratio = rng.uniform(1, self.max_ratio)
        nh, nw = int(h * ratio), int(w * ratio)
        check_limit((nh, nw, c), f"RandomExpand canvas ({nh}, {nw}, {c})")
        top = int(rng.integers(0, nh - h + 1))
        left = int(rng.integers(0, nw - w + 1))
        fill = _fill_colour(self.fill, image, "RandomExpand: fill")
        out = np.empty((nh, nw, c), image.dtype)
        out[...] = fill.round() if image.dtype == np.uint8 else fill
        out[top:top + h, left:left + w] = image
        t = _copy(target)
        if t is None:
            return out, None
        if "boxes" in t:
            t["boxes"] = _check_boxes(t["boxes"], "RandomExpand") + \
                np.float32([left, top, left, top])
        if "masks" in t:
            m = np.asarray(t["masks"])
            check_limit((len(m), nh, nw), f"RandomExpand of target['masks'] to ({nh}, {nw})")
            big = np.zeros((len(m), nh, nw), m.dtype)
            big[:, top:top + h, left:left + w] = m
            t["masks"] = big
        if "semantic" in t:
            s = np.asarray(t["semantic"])
            big = np.zeros((nh, nw), s.dtype)
            big[top:top + h, left:left + w] = s
            t["semantic"] = big
        return out, t

    def __repr__(self) -> str:
        return f"RandomExpand(max_ratio={self.max_ratio}, p={self.p})"


def _iou_with(boxes: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """IoU of (K, 4) boxes with one box (pixel-edge areas, no +1)."""
    iw = np.clip(np.minimum(boxes[:, 2], crop[2]) - np.maximum(boxes[:, 0], crop[0]), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], crop[3]) - np.maximum(boxes[:, 1], crop[1]), 0, None)
    inter = iw * ih
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + (crop[2] - crop[0]) * (crop[3] - crop[1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class RandomIoUCrop:
    """SSD's minimum-IoU random crop (Liu et al. 2016; torchvision's ``RandomIoUCrop``).

    Repeat: choose a minimum IoU from ``sampler_options`` (1.0 means "keep the whole
    image"); try up to ``trials`` crops of scale U(min_scale, max_scale) per side and
    aspect ratio (w/h) in [min_aspect_ratio, max_aspect_ratio]. A crop is accepted when
    some box whose centre lies inside the crop overlaps the crop with IoU >= the chosen
    minimum. The boxes kept are exactly those with their centre inside the crop, clipped
    to it; masks and semantic maps are cropped alike. Without boxes (or with
    ``target=None``), or when no crop is accepted after ``max_rounds`` rounds, the sample
    is returned unchanged. The chosen crop ``(left, top, right, bottom)`` and minimum IoU
    are stored in ``self.last``. Images: uint8 / float32 / float64 (H, W, C), any C.
    """

    def __init__(self, min_scale: float = 0.3, max_scale: float = 1.0,
                 min_aspect_ratio: float = 0.5, max_aspect_ratio: float = 2.0,
                 sampler_options: Sequence[float] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0),
                 trials: int = 40, max_rounds: int = 50,
                 generator: np.random.Generator | None = None) -> None:
        op = "RandomIoUCrop"
        self.min_scale = check_number(min_scale, f"{op}: min_scale", minimum=0.0,
                                      strict_minimum=True)
        self.max_scale = check_number(max_scale, f"{op}: max_scale", maximum=1.0)
        if self.min_scale > self.max_scale:
            raise ValueError(f"{op}: need 0 < min_scale <= max_scale <= 1, got {min_scale}, "
                             f"{max_scale}")
        self.min_ar = check_number(min_aspect_ratio, f"{op}: min_aspect_ratio", minimum=0.0,
                                   strict_minimum=True)
        self.max_ar = check_number(max_aspect_ratio, f"{op}: max_aspect_ratio")
        if self.min_ar > self.max_ar:
            raise ValueError(f"{op}: need min_aspect_ratio <= max_aspect_ratio, got "
                             f"{min_aspect_ratio}, {max_aspect_ratio}")
        if isinstance(sampler_options, (str, bytes)) or not isinstance(sampler_options,
                                                                      Sequence):
            raise TypeError(f"{op}: sampler_options must be a sequence of minimum IoUs, got "
                            f"{sampler_options!r}")
        if len(sampler_options) == 0:
            raise ValueError(f"{op}: sampler_options must not be empty")
        self.options = [check_probability(v, f"{op}: sampler_options[{i}]")
                        for i, v in enumerate(sampler_options)]
        self.trials = check_int(trials, f"{op}: trials", minimum=1)
        self.max_rounds = check_int(max_rounds, f"{op}: max_rounds", minimum=1)
        self.generator = _check_generator(generator, op)
        self.last: tuple | None = None

    def __call__(self, image, target=None):
        image = _check_image(image, "RandomIoUCrop")
        h, w = image.shape[:2]
        target = _check_target(target, "RandomIoUCrop", (h, w))
        self.last = None
        if target is None or "boxes" not in target or len(target["boxes"]) == 0:
            return image, target
        rng = _rng(self.generator)
        boxes = _check_boxes(target["boxes"], "RandomIoUCrop")
        for _ in range(self.max_rounds):
            min_iou = self.options[int(rng.integers(len(self.options)))]
            if min_iou >= 1.0:
                return image, target
            for _ in range(self.trials):
                r = self.min_scale + (self.max_scale - self.min_scale) * rng.random(2)
                nw, nh = int(w * r[0]), int(h * r[1])
                if nh == 0 or not self.min_ar <= nw / nh <= self.max_ar:
                    continue
                r = rng.random(2)
                left, top = int((w - nw) * r[0]), int((h - nh) * r[1])
                right, bottom = left + nw, top + nh
                if left == right or top == bottom:
                    continue
                cx = (boxes[:, 0] + boxes[:, 2]) / 2
                cy = (boxes[:, 1] + boxes[:, 3]) / 2
                inside = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
                if not inside.any():
                    continue
                crop = np.float32([left, top, right, bottom])
                if _iou_with(boxes[inside], crop).max() < min_iou:
                    continue
                self.last = (left, top, right, bottom, min_iou)
                return self._crop(image, target, boxes, inside, left, top, right, bottom)
        return image, target

    @staticmethod
    def _crop(image, target, boxes, keep, left, top, right, bottom):
        t = select(_copy(target), keep)
        b = boxes[keep] - np.float32([left, top, left, top])
        b[:, 0::2] = np.clip(b[:, 0::2], 0, right - left)
        b[:, 1::2] = np.clip(b[:, 1::2], 0, bottom - top)
        t["boxes"] = b
        if "masks" in t:
            t["masks"] = np.ascontiguousarray(t["masks"][:, top:bottom, left:right])
        if "semantic" in t:
            t["semantic"] = np.ascontiguousarray(np.asarray(t["semantic"])[top:bottom,
                                                                          left:right])
        return np.ascontiguousarray(image[top:bottom, left:right]), t

    def __repr__(self) -> str:
        return f"RandomIoUCrop(options={self.options})"


class RandomVerticalFlip:
    """Mirror top-bottom with probability ``p``: ``y1' = H - y2``, ``y2' = H - y1``.
    Images: uint8 / float32 / float64 (H, W, C), any C."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        self.p = check_probability(p, "RandomVerticalFlip: p")
        self.generator = _check_generator(generator, "RandomVerticalFlip")

    def __call__(self, image, target=None):
        image = _check_image(image, "RandomVerticalFlip")
        target = _check_target(target, "RandomVerticalFlip", image.shape[:2])
        if _rng(self.generator).random() >= self.p:
            return image, target
        h = image.shape[0]
        t = _copy(target)
        if t is not None:
            if "boxes" in t:
                b = _check_boxes(t["boxes"], "RandomVerticalFlip")
                t["boxes"] = np.stack([b[:, 0], h - b[:, 3], b[:, 2], h - b[:, 1]], 1)
            if "masks" in t:
                t["masks"] = np.ascontiguousarray(np.asarray(t["masks"])[:, ::-1])
            if "semantic" in t:
                t["semantic"] = np.ascontiguousarray(np.asarray(t["semantic"])[::-1])
        return np.ascontiguousarray(image[::-1]), t

    def __repr__(self) -> str:
        return f"RandomVerticalFlip(p={self.p})"


class RandomTranspose:
    """Swap the image's rows and columns (mirror about the main diagonal) with probability
    ``p``: ``(x1, y1, x2, y2)' = (y1, x1, y2, x2)``, an (H, W) image becomes (W, H).
    With both flips it draws each of the eight symmetries of the square (the dihedral
    group D4: the four 90-degree rotations, mirrored or not) with equal probability at
    ``p = 0.5``. Images: uint8 / float32 / float64 (H, W, C), any C."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        self.p = check_probability(p, "RandomTranspose: p")
        self.generator = _check_generator(generator, "RandomTranspose")

    def __call__(self, image, target=None):
        image = _check_image(image, "RandomTranspose")
        target = _check_target(target, "RandomTranspose", image.shape[:2])
        if _rng(self.generator).random() >= self.p:
            return image, target
        t = _copy(target)
        if t is not None:
            if "boxes" in t:
                b = _check_boxes(t["boxes"], "RandomTranspose")
                t["boxes"] = np.ascontiguousarray(b[:, [1, 0, 3, 2]])
            if "masks" in t:
                t["masks"] = np.ascontiguousarray(np.asarray(t["masks"]).transpose(0, 2, 1))
            if "semantic" in t:
                t["semantic"] = np.ascontiguousarray(np.asarray(t["semantic"]).T)
        return np.ascontiguousarray(image.transpose(1, 0, 2)), t

    def __repr__(self) -> str:
        return f"RandomTranspose(p={self.p})"


class RandomScaleTranslate:
    """YOLO v1's geometric augmentation: "random scaling and translations of up to 20% of
    the original image size" (Redmon et al. 2016, section 2.2).

    The image is scaled by ``s ~ U(1 - scale, 1 + scale)`` about its centre and shifted by
    ``(t_x, t_y) ~ U(-translate, translate) * (W, H)``, at its own size, so a point maps as
    ``x' = s (x - W / 2) + W / 2 + t_x`` (and likewise y); pixels that come from outside the
    image are ``fill`` (default: the image's mean colour; else in the image's scale). Boxes
    move with the pixels; those whose centre leaves the image are dropped (their cell is
    gone), the others are clipped to it. Masks and semantic maps are not supported
    (nearest-neighbour warping is left to whoever needs it). Images: uint8 / float32 /
    float64 (H, W, C) with C <= 4 (OpenCV's border value has 4 entries).
    """

    def __init__(self, scale: float = 0.2, translate: float = 0.2, fill=None,
                 generator: np.random.Generator | None = None) -> None:
        op = "RandomScaleTranslate"
        self.scale = check_number(scale, f"{op}: scale", minimum=0.0)
        self.translate = check_number(translate, f"{op}: translate", minimum=0.0)
        if self.scale >= 1 or self.translate >= 1:
            raise ValueError(f"{op}: scale and translate must be in [0, 1), got {scale}, "
                             f"{translate}")
        self.fill = _check_fill(fill, f"{op}: fill")
        self.generator = _check_generator(generator, op)

    def __call__(self, image, target=None):
        op = "RandomScaleTranslate"
        image = _check_image(image, op)
        h, w, c = image.shape
        if c > 4:
            raise ValueError(f"{op}: image must have at most 4 channels, got shape "
                             f"{image.shape}")
        target = _check_target(target, op)
        if target is not None and ("masks" in target or "semantic" in target):
            raise ValueError(f"{op} moves boxes only; the target has masks")
        fill = _fill_colour(self.fill, image, f"{op}: fill")
        rng = _rng(self.generator)
        s = rng.uniform(1 - self.scale, 1 + self.scale)
        tx, ty = rng.uniform(-self.translate, self.translate, 2) * (w, h)
        # x' = s x + (1 - s) W / 2 + t_x: the affine matrix of cv2.warpAffine
        m = np.float64([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]])
        out = cv2.warpAffine(np.ascontiguousarray(image), m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT,
                             borderValue=tuple(float(v) for v in fill))
        if target is None:
            return out.reshape(h, w, c), None
        t = _copy(target)
        if "boxes" in t:
            b = _check_boxes(t["boxes"], op).astype(np.float64)
            b = b * s + np.float64([m[0, 2], m[1, 2], m[0, 2], m[1, 2]])
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
            t = select(t, inside)
            b = b[inside]
            b[:, 0::2] = b[:, 0::2].clip(0, w)
            b[:, 1::2] = b[:, 1::2].clip(0, h)
            t["boxes"] = b.astype(np.float32)
        return out.reshape(h, w, c), t

    def __repr__(self) -> str:
        return f"RandomScaleTranslate(scale={self.scale}, translate={self.translate})"


class RandomExposureSaturation:
    """YOLO v1's colour augmentation: "randomly adjust the exposure and saturation of the
    image by up to a factor of 1.5 in the HSV color space" (section 2.2). Value and
    saturation are each multiplied by a factor ``f`` in [1 / factor, factor]: ``f = u`` or
    ``1 / u`` with equal probability, ``u ~ U(1, factor)`` (Darknet's ``rand_scale``), and
    clipped. Boxes and masks are untouched. Images: uint8, or float32 / float64 in [0, 1],
    (H, W, 3) RGB; the dtype is kept."""

    def __init__(self, factor: float = 1.5, generator: np.random.Generator | None = None
                 ) -> None:
        self.factor = check_number(factor, "RandomExposureSaturation: factor", minimum=1.0)
        self.generator = _check_generator(generator, "RandomExposureSaturation")

    def __call__(self, image, target=None):
        op = "RandomExposureSaturation"
        image = _check_image(image, op, rgb=True)
        _check_unit_range(image, op)
        target = _check_target(target, op)
        rng = _rng(self.generator)
        f = rng.uniform(1, self.factor, 2)
        f = np.where(rng.random(2) < 0.5, f, 1 / f)                # (saturation, value)
        hsv = cv2.cvtColor(_to_255(image) / 255.0, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = np.clip(hsv[..., 1] * f[0], 0, 1)
        hsv[..., 2] = np.clip(hsv[..., 2] * f[1], 0, 1)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
        return _from_255(rgb, image.dtype), target

    def __repr__(self) -> str:
        return f"RandomExposureSaturation(factor={self.factor})"


class SanitizeBoundingBoxes:
    """Drop the objects whose box is narrower or lower than ``min_size`` pixels (a crop
    can cut a box to a sliver), together with their labels, masks and other per-object
    entries, as torchvision's ``transforms.v2.SanitizeBoundingBoxes``. The image (an
    array or a Tensor) passes through untouched."""

    def __init__(self, min_size: float = 1.0) -> None:
        self.min_size = check_number(min_size, "SanitizeBoundingBoxes: min_size", minimum=0.0)

    def __call__(self, image, target=None):
        target = _check_target(target, "SanitizeBoundingBoxes")
        if target is None or "boxes" not in target:
            return image, target
        b = _check_boxes(target["boxes"], "SanitizeBoundingBoxes")
        keep = (b[:, 2] - b[:, 0] >= self.min_size) & (b[:, 3] - b[:, 1] >= self.min_size)
        if keep.all():
            return image, target
        return image, select(target, keep)

    def __repr__(self) -> str:
        return f"SanitizeBoundingBoxes(min_size={self.min_size})"


class ToTensor:
    """(H, W, C) array -> ``Tensor`` (C, H, W): uint8 / 255 as float32, float32 as is,
    float64 kept as float64 (torchvision's ``ToTensor``); a Tensor passes through and
    targets are unchanged."""

    def __call__(self, image, target=None):
        if isinstance(image, Tensor):
            return image, target
        arr = _check_image(image, "ToTensor")
        target = _check_target(target, "ToTensor")
        chw = arr.transpose(2, 0, 1)
        if arr.dtype == np.uint8:
            chw = np.ascontiguousarray(chw, dtype=np.float32) / np.float32(255.0)
        else:
            chw = np.array(chw, order="C")                  # a copy: the image stays apart
        return Tensor(chw), target

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(x - mean) / std`` per channel of a float (C, H, W) tensor or array (ImageNet values
    by default), in the input's dtype; apply ``ToTensor`` first."""

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> None:
        values = {}
        for name, v in (("mean", mean), ("std", std)):
            arr = np.asarray(v)
            if arr.dtype.kind not in "iuf" or arr.ndim != 1 or arr.size == 0:
                raise TypeError(f"Normalize: {name} must be a sequence of numbers (one per "
                                f"channel), got {v!r}")
            if not np.isfinite(arr).all():
                raise ValueError(f"Normalize: {name} must be finite, got {v!r}")
            values[name] = arr.astype(np.float32).reshape(-1, 1, 1)
        if values["mean"].shape != values["std"].shape:
            raise ValueError(f"Normalize: mean and std must have one value per channel each, "
                             f"got {len(values['mean'])} and {len(values['std'])}")
        if (values["std"] <= 0).any():
            raise ValueError(f"Normalize: std must be positive, got {std}")
        self.mean, self.std = values["mean"], values["std"]

    def __call__(self, image, target=None):
        data = image.data if isinstance(image, Tensor) else image
        if not hasattr(data, "ndim") or not hasattr(data, "dtype"):
            raise TypeError(f"Normalize: image must be a Tensor or an array (C, H, W), got "
                            f"{type(image).__name__}")
        c = self.mean.shape[0]
        if data.ndim != 3 or data.shape[0] != c:
            raise ValueError(f"Normalize expects a ({c}, H, W) tensor (apply ToTensor first), "
                             f"got shape {tuple(data.shape)}")
        if np.dtype(data.dtype) not in FLOAT_DTYPES:
            raise TypeError(f"Normalize: image must be float32 or float64 (apply ToTensor "
                            f"first), got {data.dtype}")
        target = _check_target(target, "Normalize")
        xp = get_array_module(data)
        mean = xp.asarray(self.mean, dtype=data.dtype)
        std = xp.asarray(self.std, dtype=data.dtype)
        return Tensor((data - mean) / std), target

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"
