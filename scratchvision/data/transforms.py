"""Transforms that carry boxes, labels and masks together with the image.

Every transform is a callable ``(image, target) -> (image, target)``:

- ``image``: uint8 (H, W, 3) RGB array until ``ToTensor``, which makes it a float32
  ``scratchvision.Tensor`` (3, H, W) in [0, 1]; ``Normalize`` then works on that tensor.
- ``target``: a dict, possibly with ``boxes`` float32 (K, 4) x1y1x2y2 in pixel-edge
  coordinates (a box covers ``x1 <= x < x2``, so an image is the box (0, 0, W, H)),
  per-object arrays of length K (``labels``, ``masks`` (K, H, W), ``difficult``,
  ``iscrowd``, ``area``, ``truncated``) and ``semantic`` (H, W) label map. Missing keys
  are simply not transformed; the input dict is never modified (a new one is returned).

Geometric transforms move boxes and masks with the pixels. With the pixel-edge
convention the arithmetic is exact: flipping maps ``x -> W - x`` (so ``x1' = W - x2``,
``x2' = W - x1``; flipping twice is the identity), resizing by ``s`` maps ``x -> s x``,
padding by ``left`` maps ``x -> x + left``, cropping at ``left`` maps ``x -> x - left``.
A stale ``boxes_inclusive`` (VOC) is dropped by geometric transforms.

Random transforms take a ``generator`` (``numpy.random.Generator``); by default they draw
from ``scratchvision.autograd.default_generator()`` at call time, which
``scratchvision.manual_seed`` seeds (and which ``DataLoader`` workers re-seed per batch).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from scratchvision.autograd import Tensor, default_generator

PER_OBJECT = ("boxes", "labels", "masks", "difficult", "truncated", "iscrowd", "area")


def _rng(generator):
    return generator if generator is not None else default_generator()


def _copy(target: dict) -> dict:
    t = dict(target)
    t.pop("boxes_inclusive", None)
    return t


def _check_image(image) -> np.ndarray:
    if isinstance(image, Tensor):
        raise TypeError("this transform works on (H, W, C) uint8 arrays: apply it before "
                        "ToTensor")
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W, C), got shape {image.shape}")
    return image


def _check_boxes(boxes, where: str) -> np.ndarray:
    b = np.asarray(boxes, np.float32).reshape(-1, 4) if np.size(boxes) else \
        np.zeros((0, 4), np.float32)
    bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: target['boxes'] row {k} = {b[k].tolist()} has x2 < x1 "
                         "or y2 < y1")
    return b


def select(target: dict, keep: np.ndarray) -> dict:
    """The target restricted to the objects ``keep`` (bool mask or indices)."""
    t = dict(target)
    for k in PER_OBJECT:
        if k in t:
            t[k] = np.asarray(t[k])[keep]
    return t


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, image, target):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    """Resize the image (bilinear) and its boxes/masks (nearest) together.

    ``size`` an int: the shorter side becomes ``size`` keeping the aspect ratio, unless the
    longer side would then exceed ``max_size``, in which case the longer side becomes
    ``max_size`` (torchvision / Detectron rule). ``size`` a pair ``(h, w)``: that exact size.
    """

    def __init__(self, size: int | tuple[int, int], max_size: int | None = None) -> None:
        if isinstance(size, int):
            if size <= 0:
                raise ValueError(f"size must be positive, got {size}")
        elif len(size) != 2 or min(size) <= 0:
            raise ValueError(f"size must be an int or (h, w) with positive entries, got {size}")
        if max_size is not None and isinstance(size, int) and max_size < size:
            raise ValueError(f"max_size {max_size} must be >= size {size}")
        self.size, self.max_size = size, max_size

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(new_h, new_w) for an input of (h, w)."""
        if not isinstance(self.size, int):
            return int(self.size[0]), int(self.size[1])
        scale = self.size / min(h, w)
        if self.max_size is not None and max(h, w) * scale > self.max_size:
            scale = self.max_size / max(h, w)
        return max(1, int(round(h * scale))), max(1, int(round(w * scale)))

    def __call__(self, image, target):
        image = _check_image(image)
        h, w = image.shape[:2]
        nh, nw = self.output_size(h, w)
        out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if out.ndim == 2:
            out = out[..., None]
        t = _copy(target)
        sx, sy = nw / w, nh / h
        if "boxes" in t:
            t["boxes"] = _check_boxes(t["boxes"], "Resize") * np.float32([sx, sy, sx, sy])
        if "area" in t:
            t["area"] = np.asarray(t["area"], np.float32) * np.float32(sx * sy)
        if "masks" in t:
            m = np.asarray(t["masks"])
            t["masks"] = np.stack([cv2.resize(k, (nw, nh), interpolation=cv2.INTER_NEAREST)
                                   for k in m]) if len(m) else np.zeros((0, nh, nw), m.dtype)
        if "semantic" in t:
            t["semantic"] = cv2.resize(np.asarray(t["semantic"]), (nw, nh),
                                       interpolation=cv2.INTER_NEAREST)
        return out, t

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, max_size={self.max_size})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``: ``x1' = W - x2``, ``x2' = W - x1``."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        self.p, self.generator = p, generator

    def __call__(self, image, target):
        image = _check_image(image)
        if _rng(self.generator).random() >= self.p:
            return image, target
        w = image.shape[1]
        t = _copy(target)
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

    Brightness ``+ U(-32, 32)``; contrast ``x U(0.5, 1.5)`` either first or last (random
    order, as SSD); in HSV: saturation ``x U(0.5, 1.5)``, hue ``+ U(-18, 18)`` degrees
    (wrapping); finally a random permutation of the colour channels. Boxes and masks are
    untouched.
    """

    def __init__(self, brightness: float = 32.0, contrast=(0.5, 1.5), saturation=(0.5, 1.5),
                 hue: float = 18.0, p: float = 0.5,
                 generator: np.random.Generator | None = None) -> None:
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.hue, self.p, self.generator = hue, p, generator

    def __call__(self, image, target):
        image = _check_image(image)
        rng = _rng(self.generator)
        img = image.astype(np.float32)
        if rng.random() < self.p:
            img += rng.uniform(-self.brightness, self.brightness)
        contrast_first = rng.random() < 0.5
        if contrast_first and rng.random() < self.p:
            img *= rng.uniform(*self.contrast)
        hsv = cv2.cvtColor(np.clip(img, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360)
        if rng.random() < self.p:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*self.saturation), 0, 1)
        if rng.random() < self.p:
            hsv[..., 0] = np.mod(hsv[..., 0] + rng.uniform(-self.hue, self.hue), 360.0)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
        if not contrast_first and rng.random() < self.p:
            img *= rng.uniform(*self.contrast)
        if rng.random() < self.p:
            img = img[..., rng.permutation(3)]
        return np.clip(img, 0, 255).round().astype(np.uint8), target

    def __repr__(self) -> str:
        return f"PhotometricDistort(p={self.p})"


class RandomExpand:
    """SSD's zoom out: with probability ``p`` put the image at a random place on a canvas
    ``ratio`` in U(1, max_ratio) times larger, filled with ``fill`` (default: the mean
    colour); boxes shift by ``(left, top)``, masks/semantic are padded with 0."""

    def __init__(self, max_ratio: float = 4.0, fill=None, p: float = 0.5,
                 generator: np.random.Generator | None = None) -> None:
        if max_ratio < 1:
            raise ValueError(f"max_ratio must be >= 1, got {max_ratio}")
        self.max_ratio, self.fill, self.p, self.generator = max_ratio, fill, p, generator

    def __call__(self, image, target):
        image = _check_image(image)
        rng = _rng(self.generator)
        if rng.random() >= self.p:
            return image, target
        h, w, c = image.shape
        ratio = rng.uniform(1, self.max_ratio)
        nh, nw = int(h * ratio), int(w * ratio)
        top = int(rng.integers(0, nh - h + 1))
        left = int(rng.integers(0, nw - w + 1))
        fill = image.reshape(-1, c).mean(axis=0) if self.fill is None else self.fill
        out = np.empty((nh, nw, c), image.dtype)
        out[...] = np.asarray(fill).round().astype(image.dtype)
        out[top:top + h, left:left + w] = image
        t = _copy(target)
        if "boxes" in t:
            t["boxes"] = _check_boxes(t["boxes"], "RandomExpand") + \
                np.float32([left, top, left, top])
        if "masks" in t:
            m = np.asarray(t["masks"])
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
    to it; masks and semantic maps are cropped alike. Without boxes, or when no crop is
    accepted after ``max_rounds`` rounds, the sample is returned unchanged. The chosen
    crop ``(left, top, right, bottom)`` and minimum IoU are stored in ``self.last``.
    """

    def __init__(self, min_scale: float = 0.3, max_scale: float = 1.0,
                 min_aspect_ratio: float = 0.5, max_aspect_ratio: float = 2.0,
                 sampler_options: Sequence[float] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0),
                 trials: int = 40, max_rounds: int = 50,
                 generator: np.random.Generator | None = None) -> None:
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}, "
                             f"{max_scale}")
        self.min_scale, self.max_scale = min_scale, max_scale
        self.min_ar, self.max_ar = min_aspect_ratio, max_aspect_ratio
        self.options = list(sampler_options)
        self.trials, self.max_rounds, self.generator = trials, max_rounds, generator
        self.last: tuple | None = None

    def __call__(self, image, target):
        image = _check_image(image)
        self.last = None
        if "boxes" not in target or len(target["boxes"]) == 0:
            return image, target
        rng = _rng(self.generator)
        boxes = _check_boxes(target["boxes"], "RandomIoUCrop")
        h, w = image.shape[:2]
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
                return self._crop(image, target, inside, left, top, right, bottom)
        return image, target

    @staticmethod
    def _crop(image, target, keep, left, top, right, bottom):
        t = select(_copy(target), keep)
        b = t["boxes"] - np.float32([left, top, left, top])
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


class RandomScaleTranslate:
    """YOLO v1's geometric augmentation: "random scaling and translations of up to 20% of
    the original image size" (Redmon et al. 2016, section 2.2).

    The image is scaled by ``s ~ U(1 - scale, 1 + scale)`` about its centre and shifted by
    ``(t_x, t_y) ~ U(-translate, translate) * (W, H)``, at its own size, so a point maps as
    ``x' = s (x - W / 2) + W / 2 + t_x`` (and likewise y); pixels that come from outside the
    image are ``fill`` (default: the image's mean colour). Boxes move with the pixels;
    those whose centre leaves the image are dropped (their cell is gone), the others are
    clipped to it. Masks and semantic maps are not supported (nearest-neighbour warping is
    left to whoever needs it).
    """

    def __init__(self, scale: float = 0.2, translate: float = 0.2, fill=None,
                 generator: np.random.Generator | None = None) -> None:
        if not 0 <= scale < 1 or not 0 <= translate < 1:
            raise ValueError(f"scale and translate must be in [0, 1), got {scale}, "
                             f"{translate}")
        self.scale, self.translate, self.fill, self.generator = scale, translate, fill, \
            generator

    def __call__(self, image, target):
        image = _check_image(image)
        if "masks" in target or "semantic" in target:
            raise ValueError("RandomScaleTranslate moves boxes only; the target has masks")
        rng = _rng(self.generator)
        h, w, c = image.shape
        s = rng.uniform(1 - self.scale, 1 + self.scale)
        tx, ty = rng.uniform(-self.translate, self.translate, 2) * (w, h)
        # x' = s x + (1 - s) W / 2 + t_x: the affine matrix of cv2.warpAffine
        m = np.float64([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]])
        fill = image.reshape(-1, c).mean(axis=0) if self.fill is None else self.fill
        out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT,
                             borderValue=tuple(float(v) for v in np.broadcast_to(fill, (c,))))
        t = _copy(target)
        if "boxes" in t:
            b = _check_boxes(t["boxes"], "RandomScaleTranslate").astype(np.float64)
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
    clipped. Boxes and masks are untouched."""

    def __init__(self, factor: float = 1.5, generator: np.random.Generator | None = None
                 ) -> None:
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor, self.generator = factor, generator

    def __call__(self, image, target):
        image = _check_image(image)
        rng = _rng(self.generator)
        f = rng.uniform(1, self.factor, 2)
        f = np.where(rng.random(2) < 0.5, f, 1 / f)                # (saturation, value)
        hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = np.clip(hsv[..., 1] * f[0], 0, 1)
        hsv[..., 2] = np.clip(hsv[..., 2] * f[1], 0, 1)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
        return np.clip(rgb, 0, 255).round().astype(np.uint8), target

    def __repr__(self) -> str:
        return f"RandomExposureSaturation(factor={self.factor})"


class SanitizeBoundingBoxes:
    """Drop the objects whose box is narrower or lower than ``min_size`` pixels (a crop
    can cut a box to a sliver), together with their labels, masks and other per-object
    entries, as torchvision's ``transforms.v2.SanitizeBoundingBoxes``."""

    def __init__(self, min_size: float = 1.0) -> None:
        if min_size < 0:
            raise ValueError(f"min_size must be >= 0, got {min_size}")
        self.min_size = min_size

    def __call__(self, image, target):
        if "boxes" not in target:
            return image, target
        b = _check_boxes(target["boxes"], "SanitizeBoundingBoxes")
        keep = (b[:, 2] - b[:, 0] >= self.min_size) & (b[:, 3] - b[:, 1] >= self.min_size)
        if keep.all():
            return image, target
        return image, select(target, keep)

    def __repr__(self) -> str:
        return f"SanitizeBoundingBoxes(min_size={self.min_size})"


class ToTensor:
    """uint8 (H, W, C) -> float32 ``Tensor`` (C, H, W) in [0, 1]; targets unchanged."""

    def __call__(self, image, target):
        if isinstance(image, Tensor):
            return image, target
        arr = _check_image(image)
        scale = 255.0 if arr.dtype == np.uint8 else 1.0
        chw = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32) / np.float32(scale)
        return Tensor(chw), target

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(x - mean) / std`` per channel of a (C, H, W) tensor (ImageNet values by default)."""

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> None:
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1)
        if (self.std <= 0).any():
            raise ValueError(f"std must be positive, got {std}")

    def __call__(self, image, target):
        data = image.data if isinstance(image, Tensor) else np.asarray(image)
        if data.ndim != 3 or data.shape[0] != self.mean.shape[0]:
            raise ValueError(f"Normalize expects a ({self.mean.shape[0]}, H, W) tensor (apply "
                             f"ToTensor first), got shape {data.shape}")
        out = (data - self.mean.astype(data.dtype)) / self.std.astype(data.dtype)
        return Tensor(out), target

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"
