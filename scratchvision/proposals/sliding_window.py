"""Sliding windows over an image pyramid: the detector-as-classifier baseline.

Before proposals, a detector was a classifier run on every window: slide a fixed-size
window (for each aspect ratio) with a fixed stride over the image, and over every level of
an image pyramid so that objects larger than the window are found when the image is
shrunk to make them fit.

Pyramid: level ``l`` (``l = 0, 1, ...``) is the image resized by ``s_l = scale_factor**-l``
to ``H_l = round(H * s_l)`` by ``W_l = round(W * s_l)``; levels stop before the smallest
window no longer fits (or after ``max_levels``). A level's effective scale per axis is
``W_l / W`` and ``H_l / H`` (rounding makes them differ slightly from ``s_l``).

Windows at one level, for an aspect ratio ``r = height / width`` and a base size ``S``: the
window is ``h_r = round(S sqrt(r))`` by ``w_r = round(S / sqrt(r))`` pixels (area about S^2),
placed at ``x = 0, stride, 2 stride, ...`` while ``x + w_r <= W_l`` (and likewise in y), so
there are ``floor((W_l - w_r) / stride) + 1`` columns of windows. A window
``[x, x + w_r) x [y, y + h_r)`` at level l covers ``[x W / W_l, (x + w_r) W / W_l)`` x
``[y H / H_l, (y + h_r) H / H_l)`` of the original image: boxes are returned in those
original-image pixel-edge coordinates, float32 ``(x1, y1, x2, y2)``.

Why the count explodes: at one level there are about ``(W_l / stride) (H_l / stride)``
windows per aspect ratio, i.e. quadratic in 1 / stride and linear in the number of
ratios; the pyramid adds a geometric series ``sum_l s_l^2 = 1 / (1 - scale_factor**-2)``
(for ``scale_factor = 1.2``: 3.3x the first level). A 640x480 image with 64x64 windows,
stride 8, 3 ratios and a 1.2 pyramid gives ``count_windows(480, 640, 64, (0.5, 1, 2), 8)``
= 31,215 windows (3,869 square ones at level 0 alone), each of which must be classified;
at stride 4 it is 122,986. Selective Search gives ~2,000 class-agnostic boxes instead, which
is why R-CNN could afford a CNN per box.

``detect_sliding_window`` is the baseline detector: crop and resize every window to the
classifier's input size, score the crops in batches with a user callable, keep the windows
above a threshold (non-maximum suppression is left to the caller, e.g. ``ops.nms``).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np

__all__ = ["pyramid_sizes", "sliding_windows", "count_windows", "detect_sliding_window"]


def _check(image_h: int, image_w: int, window_size: int, aspect_ratios: Sequence[float],
           stride: int, scale_factor: float, max_levels: int | None) -> tuple[float, ...]:
    for name, v in (("image_h", image_h), ("image_w", image_w), ("window_size", window_size),
                    ("stride", stride)):
        if int(v) != v or v < 1:
            raise ValueError(f"sliding_windows: {name} must be an integer >= 1, got {v}")
    ratios = tuple(float(r) for r in np.atleast_1d(np.asarray(aspect_ratios, np.float64)))
    if not ratios or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise ValueError(f"sliding_windows: aspect_ratios must be positive numbers, "
                         f"got {aspect_ratios}")
    if not (math.isfinite(scale_factor) and scale_factor > 1):
        raise ValueError(f"sliding_windows: scale_factor must be > 1, got {scale_factor}")
    if max_levels is not None and (int(max_levels) != max_levels or max_levels < 1):
        raise ValueError(f"sliding_windows: max_levels must be an integer >= 1 or None, "
                         f"got {max_levels}")
    return ratios


def _window_shapes(window_size: int, ratios: tuple[float, ...]) -> list[tuple[int, int]]:
    """(h, w) of the window of each aspect ratio h / w, area about window_size^2."""
    return [(max(1, round(window_size * math.sqrt(r))), max(1, round(window_size / math.sqrt(r))))
            for r in ratios]


def pyramid_sizes(image_h: int, image_w: int, min_h: int = 1, min_w: int = 1,
                  scale_factor: float = 1.2, max_levels: int | None = None
                  ) -> list[tuple[int, int]]:
    """(H_l, W_l) of each pyramid level ``round(H / scale_factor**l)``, while >= (min_h, min_w).

    Level 0 is the image itself (returned even when smaller than the minimum: it then has
    no windows). A size equal to the previous level's (rounding, on tiny images) is skipped,
    so the levels are distinct; ``max_levels`` counts them.
    """
    sizes = [(int(image_h), int(image_w))]
    exponent = 1
    while max_levels is None or len(sizes) < max_levels:
        s = scale_factor ** -exponent
        h, w = round(image_h * s), round(image_w * s)
        exponent += 1
        if h < min_h or w < min_w:
            break
        if (h, w) != sizes[-1]:          # tiny images: rounding can repeat a size; skip it
            sizes.append((h, w))
    return sizes


def _levels(image_h, image_w, window_size, aspect_ratios, stride, scale_factor, max_levels):
    ratios = _check(image_h, image_w, window_size, aspect_ratios, stride, scale_factor,
                    max_levels)
    shapes = _window_shapes(window_size, ratios)
    min_h = min(h for h, _ in shapes)
    min_w = min(w for _, w in shapes)
    sizes = pyramid_sizes(image_h, image_w, min_h, min_w, scale_factor, max_levels)
    # drop trailing levels where no window fits (the minima may come from two shapes)
    while len(sizes) > 1 and not any(h <= sizes[-1][0] and w <= sizes[-1][1] for h, w in shapes):
        sizes.pop()
    return shapes, sizes


def count_windows(image_h: int, image_w: int, window_size: int = 64,
                  aspect_ratios: Sequence[float] = (1.0,), stride: int = 8,
                  scale_factor: float = 1.2, max_levels: int | None = None) -> int:
    """Number of windows ``sliding_windows`` returns, without building them.

    ``sum over levels l and ratios r of (floor((H_l - h_r) / stride) + 1)
    * (floor((W_l - w_r) / stride) + 1)``, counting only windows that fit.
    See the module docstring for why this grows so fast.
    """
    shapes, sizes = _levels(image_h, image_w, window_size, aspect_ratios, stride,
                            scale_factor, max_levels)
    total = 0
    for hl, wl in sizes:
        for wh, ww in shapes:
            if wh <= hl and ww <= wl:
                total += ((hl - wh) // stride + 1) * ((wl - ww) // stride + 1)
    return total


def sliding_windows(image_h: int, image_w: int, window_size: int = 64,
                    aspect_ratios: Sequence[float] = (1.0,), stride: int = 8,
                    scale_factor: float = 1.2, max_levels: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """All windows of an image pyramid, in original-image coordinates.

    Parameters
    ----------
    image_h, image_w : size of the original image.
    window_size : base window side S in pixels at every level (area about S^2 per ratio).
    aspect_ratios : window height / width ratios.
    stride : step in pixels between windows at every level.
    scale_factor : > 1, ratio of the sizes of consecutive pyramid levels.
    max_levels : at most this many levels (None: until the window no longer fits).

    Returns
    -------
    boxes : (K, 4) float32 ``(x1, y1, x2, y2)`` pixel-edge boxes in the original image,
        ordered by level, then ratio, then row, then column.
    levels : (K,) int64 pyramid level of each window.
    """
    shapes, sizes = _levels(image_h, image_w, window_size, aspect_ratios, stride,
                            scale_factor, max_levels)
    all_boxes, all_levels = [], []
    for level, (hl, wl) in enumerate(sizes):
        sx, sy = image_w / wl, image_h / hl              # level pixel -> original pixels
        for wh, ww in shapes:
            if wh > hl or ww > wl:
                continue
            ys = np.arange(0, hl - wh + 1, stride, dtype=np.float64)
            xs = np.arange(0, wl - ww + 1, stride, dtype=np.float64)
            yy, xx = np.meshgrid(ys, xs, indexing="ij")   # row-major: y outer, x inner
            b = np.stack([xx * sx, yy * sy, (xx + ww) * sx, (yy + wh) * sy], axis=-1)
            all_boxes.append(b.reshape(-1, 4))
            all_levels.append(np.full(b.shape[0] * b.shape[1], level, np.int64))
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    return (np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_levels))


def detect_sliding_window(image: np.ndarray, classifier: Callable[[np.ndarray], np.ndarray],
                          window_size: int = 64, aspect_ratios: Sequence[float] = (1.0,),
                          stride: int = 8, scale_factor: float = 1.2,
                          max_levels: int | None = None, input_size: int | None = None,
                          score_threshold: float = 0.5, batch_size: int = 256
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector-as-classifier: score every window of the pyramid with ``classifier``.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array.
    classifier : maps a batch of crops (B, s, s[, C]) (same dtype as ``image``) to (B,)
        scores.
    input_size : side s of the classifier's square input; None means ``window_size``.
    score_threshold : windows scoring at least this are kept.
    Other parameters as ``sliding_windows``.

    Returns
    -------
    boxes (K, 4) float32, scores (K,) float32, levels (K,) int64 of the kept windows, in
    window order (apply NMS afterwards).
    """
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or 0 in image.shape[:2]:
        raise ValueError(f"detect_sliding_window: image must be an (H, W) or (H, W, C) array "
                         f"with H, W >= 1, got {getattr(image, 'shape', type(image))}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"detect_sliding_window: batch_size must be >= 1, got {batch_size}")
    h, w = image.shape[:2]
    boxes, levels = sliding_windows(h, w, window_size, aspect_ratios, stride, scale_factor,
                                    max_levels)
    size = int(input_size or window_size)
    shapes, sizes = _levels(h, w, window_size, aspect_ratios, stride, scale_factor, max_levels)
    pyramid = [image if (hl, wl) == (h, w) else
               cv2.resize(image, (wl, hl), interpolation=cv2.INTER_AREA) for hl, wl in sizes]
    scores = np.empty(len(boxes), np.float32)
    for start in range(0, len(boxes), batch_size):
        crops = []
        for i in range(start, min(start + batch_size, len(boxes))):
            hl, wl = sizes[levels[i]]
            # back from original to level pixels; rint undoes the float32 round trip
            x1 = int(np.rint(boxes[i, 0] * wl / w))
            y1 = int(np.rint(boxes[i, 1] * hl / h))
            x2 = int(np.rint(boxes[i, 2] * wl / w))
            y2 = int(np.rint(boxes[i, 3] * hl / h))
            crop = pyramid[levels[i]][y1:y2, x1:x2]
            crops.append(crop if crop.shape[:2] == (size, size) else
                         cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))
        out = np.asarray(classifier(np.stack(crops)), np.float32).reshape(-1)
        if out.shape[0] != len(crops):
            raise ValueError(f"detect_sliding_window: classifier returned {out.shape[0]} "
                             f"scores for a batch of {len(crops)} crops")
        scores[start:start + len(crops)] = out
    keep = scores >= score_threshold
    return boxes[keep], scores[keep], levels[keep]
