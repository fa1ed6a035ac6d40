"""The input normalisation every model here uses, and its inverse.

uint8 RGB ``(H, W, 3)`` -> float32 ``(3, H, W)``: ``(x / 255 - mean) / std`` per channel
with mean 0.5 and std 0.25 (Shapes images span the whole 0..255 range, so inputs fall in
[-2, 2]). ``denormalise`` inverts it (rounded to the nearest uint8) for pictures and for
proposal methods that need the original pixels (Selective Search inside ``predict``).
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd import Tensor

MEAN = np.array([0.5, 0.5, 0.5], np.float32)
STD = np.array([0.25, 0.25, 0.25], np.float32)


def normalise(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float32 (N, 3, H, W) or (3, H, W)."""
    a = np.asarray(images_uint8)
    if a.dtype != np.uint8 or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"normalise: expected uint8 (..., H, W, 3) RGB images, got "
                         f"{a.dtype} {a.shape}")
    x = (a.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def denormalise(images) -> np.ndarray:
    """float (N, 3, H, W) or (3, H, W) normalised -> uint8 (N, H, W, 3) or (H, W, 3)."""
    a = images.numpy() if isinstance(images, Tensor) else np.asarray(
        images.get() if hasattr(images, "get") else images)
    if a.ndim not in (3, 4) or a.shape[-3] != 3:
        raise ValueError(f"denormalise: expected (..., 3, H, W) images, got {a.shape}")
    x = np.moveaxis(a, -3, -1) * STD + MEAN
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
