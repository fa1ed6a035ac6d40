"""Images into a detector: batching of images of different sizes.

A detector takes a batch of images as one ``(N, 3, H, W)`` array, but real images differ
in size. ``batch_images`` pads each image at the bottom and the right (so pixel
coordinates, and therefore boxes, stay where they were) to a common size rounded *up* to
a multiple of ``size_divisor`` (a backbone of total stride 8 then maps pixel (x, y) to
feature cell (x / 8, y / 8) exactly, with no partial cell at the border), and keeps each
image's true ``(height, width)`` so that proposals and detections are clipped to the real
image, never to the padding::

    image i: h_i x w_i        batch: H = ceil(max_i h_i / d) * d,  W likewise
    batch[i, :, :h_i, :w_i] = image i,  the rest = 0 (the mean colour after normalising)

This is torchvision's ``ImageList`` / ``GeneralizedRCNNTransform.batch_images``.

``resize_images`` is the other way in, for the single-shot detectors (YOLO, SSD) that see
the whole image at one fixed square size: each image's true region is resized (bilinear,
half-pixel centres) to ``size x size``, and its true size is kept, so boxes predicted
relative to the square map back to the image's own pixels.

``normalise``/``denormalise`` (uint8 RGB <-> the float32 input every model takes) live in
``data/normalization.py`` and are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass

import scratchvision.functional as F
from scratchvision.autograd import Tensor, cat
from scratchvision.backend import get_array_module
from scratchvision.data.normalization import MEAN, STD, denormalise, normalise

__all__ = ["MEAN", "STD", "ImageList", "batch_images", "denormalise", "normalise",
           "resize_images"]


@dataclass
class ImageList:
    """A padded batch ``tensors`` (N, 3, H, W) and each image's true ``image_sizes``."""

    tensors: Tensor
    image_sizes: list

    def __len__(self) -> int:
        return len(self.image_sizes)


def batch_images(images, size_divisor: int = 1) -> ImageList:
    """Stack images of possibly different sizes into one zero-padded batch.

    Parameters
    ----------
    images : a (N, 3, H, W) array or Tensor (all of one size), or a list of (3, H_i, W_i)
        arrays/Tensors (NumPy or CuPy, all on one device).
    size_divisor : the padded height and width are rounded up to a multiple of this.

    Returns
    -------
    ImageList with a (N, 3, H, W) Tensor and ``image_sizes`` [(h_i, w_i), ...].
    """
    if int(size_divisor) != size_divisor or size_divisor < 1:
        raise ValueError(f"batch_images: size_divisor must be an integer >= 1, got "
                         f"{size_divisor!r}")
    d = int(size_divisor)
    if isinstance(images, ImageList):
        return images
    if isinstance(images, Tensor) or hasattr(images, "ndim"):
        data = images.data if isinstance(images, Tensor) else images
        if data.ndim != 4 or data.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got {tuple(data.shape)}")
        n, _, h, w = data.shape
        if h % d == 0 and w % d == 0:
            t = images if isinstance(images, Tensor) else Tensor(data)
            return ImageList(t, [(int(h), int(w))] * n)
        images = [data[i] for i in range(n)]
    images = [im.data if isinstance(im, Tensor) else im for im in images]
    if not images:
        raise ValueError("batch_images: no images")
    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[0] != 3:
            raise ValueError(f"images[{i}] must be (3, H, W), got {tuple(im.shape)}")
        if im.shape[1] < 1 or im.shape[2] < 1:
            raise ValueError(f"images[{i}] is empty: {tuple(im.shape)}")
        if im.dtype != images[0].dtype or type(im) is not type(images[0]):
            raise ValueError(f"images[{i}] is {type(im).__name__} {im.dtype}, images[0] "
                             f"{type(images[0]).__name__} {images[0].dtype}: all must match")
    xp = get_array_module(images[0])
    sizes = [(int(im.shape[1]), int(im.shape[2])) for im in images]
    hp = -(-max(h for h, _ in sizes) // d) * d
    wp = -(-max(w for _, w in sizes) // d) * d
    batch = xp.zeros((len(images), 3, hp, wp), dtype=images[0].dtype)
    for i, im in enumerate(images):
        batch[i, :, :im.shape[1], :im.shape[2]] = im
    return ImageList(Tensor(batch), sizes)


def resize_images(images, size: int) -> tuple[Tensor, list]:
    """Images resized to a square ``size x size`` network input, and their true sizes.

    Parameters
    ----------
    images : as ``batch_images`` takes them (a (N, 3, H, W) array/Tensor or a list of
        (3, H_i, W_i) ones).
    size : the side of the square input.

    Returns
    -------
    a (N, 3, size, size) Tensor (the batch itself when it already is that size) and each
    image's true (h, w). Every image's own region (not the padding) is resized, bilinear
    with ``align_corners=False``.
    """
    batch = batch_images(images)
    x, sizes = batch.tensors, batch.image_sizes
    if x.shape[2:] == (size, size) and all(hw == (size, size) for hw in sizes):
        return x, sizes
    parts = [F.interpolate(x[i:i + 1, :, :h, :w], size=(size, size), mode="bilinear",
                           align_corners=False) for i, (h, w) in enumerate(sizes)]
    return cat(parts), sizes
