"""Pictures of region proposals: a segmentation in random colours, the top-N boxes.

Drawing uses OpenCV (``cv2.rectangle``, ``cv2.imwrite``), no matplotlib. Images are RGB
uint8 in and out; ``save_proposals_png`` converts to BGR only for writing the file.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["segmentation_image", "draw_proposals", "save_proposals_png"]


def _as_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        raise ValueError(f"{name} must be an (H, W) or (H, W, 3) array, "
                         f"got {getattr(image, 'shape', type(image))}")
    if image.ndim == 3 and image.shape[2] != 3:
        raise ValueError(f"{name} must have 3 channels, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image)


def segmentation_image(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W) integer region ids -> (H, W, 3) uint8 image, one random colour per region."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an (H, W) integer array, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    if labels.size == 0:
        return np.zeros(labels.shape + (3,), np.uint8)
    _, inverse = np.unique(labels, return_inverse=True)
    palette = np.random.default_rng(seed).integers(40, 256, (inverse.max() + 1, 3),
                                                   dtype=np.uint8)
    return palette[inverse.reshape(labels.shape)]


def draw_proposals(image: np.ndarray, boxes: np.ndarray, top_n: int = 50, thickness: int = 1,
                   seed: int = 0) -> np.ndarray:
    """Copy of ``image`` with the first ``top_n`` (x1, y1, x2, y2) boxes drawn, random colours.

    Boxes are on pixel edges (x2, y2 exclusive), so the rectangle runs through the last
    covered pixel ``x2 - 1, y2 - 1``.
    """
    out = _as_rgb_uint8(image).copy()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    colours = np.random.default_rng(seed).integers(0, 256, (len(boxes), 3))
    for (x1, y1, x2, y2), c in zip(boxes[:top_n], colours):
        cv2.rectangle(out, (int(round(x1)), int(round(y1))),
                      (int(round(x2)) - 1, int(round(y2)) - 1),
                      tuple(int(v) for v in c), thickness)
    return out


def save_proposals_png(path: str | Path, image: np.ndarray, labels: np.ndarray | None = None,
                       boxes: np.ndarray | None = None, top_n: int = 50, seed: int = 0,
                       scale: int = 1) -> Path:
    """Write one PNG: the image, its segmentation (if given) and the top-N boxes, side by side.

    ``scale`` enlarges small images (nearest neighbour) before drawing, so that boxes stay
    visible. Returns the path written.
    """
    img = _as_rgb_uint8(image)
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")

    def up(a):
        return a if scale == 1 else cv2.resize(a, (a.shape[1] * scale, a.shape[0] * scale),
                                               interpolation=cv2.INTER_NEAREST)

    panels = [up(img)]
    if labels is not None:
        if np.shape(labels) != img.shape[:2]:
            raise ValueError(f"labels shape {np.shape(labels)} does not match image "
                             f"{img.shape[:2]}")
        panels.append(up(segmentation_image(labels, seed)))
    if boxes is not None:
        panels.append(draw_proposals(up(img), np.asarray(boxes, np.float64) * scale, top_n,
                                     thickness=max(1, scale // 2), seed=seed))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    sheet = panels[0]
    for p in panels[1:]:
        sheet = np.concatenate([sheet, gap, p], axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"could not write a PNG to {path}")
    return path
