"""Training-time augmentation pipelines of the papers, built from ``data/transforms.py``.

``yolo_augmentation(generator)`` is YOLO v1's (Redmon et al. 2016, section 2.2: "random
scaling and translations of up to 20% of the original image size ... randomly adjust the
exposure and saturation of the image by up to a factor of 1.5 in the HSV color space"),
plus the left-right flip every model here trains with::

    RandomScaleTranslate       s ~ U(0.8, 1.2) about the centre, shift U(-0.2, 0.2) of each
                               side; boxes whose centre leaves the image are dropped
    RandomExposureSaturation   V and S each x f, f in [1/1.5, 1.5]
    SanitizeBoundingBoxes      drop boxes clipped below 1 px
    RandomHorizontalFlip       p = 0.5

``ssd_augmentation(size, generator)`` is SSD's (Liu et al. 2016, section 2.2 "Data
augmentation" and section 3.6 "Data augmentation for small object accuracy"), per training
image, on the uint8 (H, W, 3) image and its target dict::

    PhotometricDistort       brightness, contrast, saturation, hue (each p = 0.5), channel
                             order: the Caffe code's distortions, as torchvision's
    RandomExpand             p = 0.5: "zoom out", the image at a random place on a canvas
                             U(1, max_ratio) times larger, filled with the mean colour
    RandomIoUCrop            "zoom in": a patch of 0.3-1 of each side (aspect 1/2-2) whose IoU
                             with some object whose centre it contains is >= a minimum drawn
                             from SSD_SAMPLER_OPTIONS; objects whose centre lies outside are
                             dropped, the others clipped to the patch
    Resize                   back to size x size (boxes scaled)
    SanitizeBoundingBoxes    drop the boxes the crop cut below 1 px wide or high (counted in
                             the resized, network-input pixels, where the loss sees them)
    RandomHorizontalFlip     p = 0.5

Both pipelines take uint8 (H, W, 3) RGB images (their canvas fill, the normalisation mean,
is given on the 0..255 scale): a float image is refused by ``RandomExpand`` /
``RandomScaleTranslate`` with a ``ValueError`` naming the fill, on every call (the fill is
checked before the coin is tossed). Arguments are checked when the pipeline is built.

All draws come from the one ``generator``: a generator seeded by (seed, epoch, image index)
makes an image's augmentation a function of those three numbers (``train-det --augment
ssd``), whatever the order and the process it runs in.

Choices, against the paper's VOC setting (300 px input, objects mostly large):

- **Sampler options**: the issue asks for the paper's list {the whole image, minimum IoU
  0.1, 0.3, 0.5, 0.7, 0.9} (``SSD_SAMPLER_OPTIONS``; 1.0 is ``RandomIoUCrop``'s "whole
  image"), not the transform's default, which adds torchvision's 0.0. (0.0 is what the
  paper's third option, "randomly sample a patch", becomes in torchvision's and the Caffe
  code's samplers: a patch with no minimum IoU that still contains an object's centre.)
- **max_ratio 3**, not the paper's 4. Expansion shrinks objects by up to the ratio (before
  the crop may enlarge them again); the paper's 4 serves VOC's large objects at 300 px,
  whose smallest default boxes are 30 px. Shapes' objects are already 10-89 px of 128
  (median 36) and the smallest default box is 12.8 px. Measured on the 2,000 training
  images (one pass each through the pipeline; boxes' ``sqrt(w h)``; "covered": some default
  box of the small SSD has IoU > 0.5 with it)::

      max_ratio    boxes < 8 px    median    covered
      (the data)       0.04 %      36 px     99.9 %
      4                 9.2 %      29 px     87.9 %
      3                 4.6 %      34 px     93.4 %
      2                 0.7 %      40 px     98.1 %

  At 4, one box in eleven is smaller than any object of the data (and than a default box
  can match at IoU 0.4: the first matching step forces a poor match on it). 3 is the
  largest ratio that keeps the augmented median near the data's (the crops enlarge about as
  much as the expansion shrinks) while still giving the small-object examples that are the
  paper's reason for zooming out (7.8 % of the boxes under 10 px against 0.1 % in the data);
  2 would make the median object larger than the data's.
- **Fill**: the normalisation mean (0.5 of 255 per channel, so the canvas is ~0 after
  ``normalise``), as the Caffe code fills with its mean pixel; ``RandomExpand``'s default
  would use each image's own mean colour.
- Patch sizes 0.3-1 of each side, as the Caffe code and torchvision (the paper's text says
  0.1-1).
"""
from __future__ import annotations

import numpy as np

from scratchvision.data.normalization import MEAN
from scratchvision.data.transforms import (
    Compose,
    PhotometricDistort,
    RandomExpand,
    RandomExposureSaturation,
    RandomHorizontalFlip,
    RandomIoUCrop,
    RandomScaleTranslate,
    RandomTranspose,
    RandomVerticalFlip,
    Resize,
    SanitizeBoundingBoxes,
)
from scratchvision.validation import check_int

__all__ = ["SSD_MAX_EXPAND_RATIO", "SSD_SAMPLER_OPTIONS", "ssd_augmentation",
           "yolo_augmentation"]

SSD_SAMPLER_OPTIONS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)     # minimum IoUs; 1.0: the whole image
SSD_MAX_EXPAND_RATIO = 3.0


def ssd_augmentation(size: int, generator: np.random.Generator,
                     max_expand_ratio: float = SSD_MAX_EXPAND_RATIO,
                     sampler_options=SSD_SAMPLER_OPTIONS, min_box_size: float = 1.0) -> Compose:
    """SSD's training augmentation for one image (see the module docstring).

    Parameters
    ----------
    size : the network's square input side; the output image is (size, size, 3) uint8.
    generator : every random draw comes from it.
    max_expand_ratio : RandomExpand's largest canvas ratio (the paper: 4; here 3).
    sampler_options : RandomIoUCrop's minimum IoUs (1.0: keep the whole image).
    min_box_size : boxes narrower or lower than this (output pixels) are dropped.

    Returns
    -------
    a ``Compose``: call it as ``image, target = pipeline(image_uint8, target)``.
    """
    size = check_int(size, "ssd_augmentation: size", minimum=1)
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator, got "
                        f"{type(generator).__name__}")
    fill = MEAN * 255.0
    return Compose([
        PhotometricDistort(generator=generator),
        RandomExpand(max_ratio=max_expand_ratio, fill=fill, p=0.5, generator=generator),
        RandomIoUCrop(sampler_options=sampler_options, generator=generator),
        Resize((size, size)),
        SanitizeBoundingBoxes(min_size=min_box_size),
        RandomHorizontalFlip(0.5, generator=generator),
    ])


def yolo_augmentation(generator: np.random.Generator, scale: float = 0.2,
                      translate: float = 0.2, factor: float = 1.5,
                      dihedral: bool = False) -> Compose:
    """YOLO v1's training augmentation for one image (see the module docstring); the image
    keeps its size. Call it as ``image, target = pipeline(image_uint8, target)``.
    ``dihedral``: also flip top-bottom and transpose (each p = 0.5), so with the left-right
    flip every one of the square's eight symmetries is equally likely (for data whose
    classes keep under rotation, as Shapes'; ``--augment yolo_d4``)."""
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator, got "
                        f"{type(generator).__name__}")
    flips = [RandomHorizontalFlip(0.5, generator=generator)]
    if dihedral:
        flips += [RandomVerticalFlip(0.5, generator=generator),
                  RandomTranspose(0.5, generator=generator)]
    return Compose([
        RandomScaleTranslate(scale, translate, fill=MEAN * 255.0, generator=generator),
        RandomExposureSaturation(factor, generator=generator),
        SanitizeBoundingBoxes(min_size=1.0),
        *flips,
    ])
