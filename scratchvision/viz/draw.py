"""Drawing detections and segmentations on images, and image grids (OpenCV, no matplotlib).

All functions take an image as uint8 (H, W, 3) RGB, or a float (3, H, W) array/Tensor in
[0, 1] (what ``ToTensor`` makes), and return a new uint8 (H, W, 3) RGB array; the input is
never modified. Boxes are x1y1x2y2 in pixel-edge coordinates (a box covers
``x1 <= x < x2``), so the rectangle is drawn on pixels ``x1 .. x2 - 1``.

Colours: class ``c`` gets ``class_color(c)``, a fixed colour from a golden-ratio walk
around the hue circle (neighbouring labels get far-apart hues, and the colour of a class
is the same in every picture). Semantic maps use the VOC palette (255 = void drawn in the
palette's cream colour).
"""
from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from scratchvision.autograd import Tensor
from scratchvision.validation import to_numpy


def class_color(label: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour for class ``label``."""
    h = (0.61803398875 * (int(label) + 1)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def to_uint8_image(image) -> np.ndarray:
    """(H, W, 3) uint8 RGB copy of an image given as HWC uint8 or CHW float in [0, 1]."""
    arr = to_numpy(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3:
        raise ValueError(f"image must be (H, W, 3) or (3, H, W), got shape {arr.shape}")
    if arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype != np.uint8:
        arr = np.clip(np.asarray(arr, np.float64) * 255.0, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(arr).copy()


def _np(x, dtype=None):
    a = to_numpy(x)
    return a.astype(dtype) if dtype is not None else a


def draw_boxes(image, boxes, labels=None, scores=None, class_names: Sequence[str] | None = None,
               colors=None, thickness: int = 1, font_scale: float = 0.35,
               score_thresh: float | None = None) -> np.ndarray:
    """Draw boxes with class colours and ``"name 0.93"`` captions.

    Parameters
    ----------
    image : (H, W, 3) uint8 or (3, H, W) float.
    boxes : (K, 4) x1y1x2y2.
    labels : (K,) ints (colour and name); scores : (K,) floats, shown with 2 decimals.
    class_names : names indexed by label. colors : one RGB per box (overrides classes).
    score_thresh : boxes with a lower score are not drawn.
    """
    img = to_uint8_image(image)
    b = _np(boxes, np.float64).reshape(-1, 4)
    k = len(b)
    lab = None if labels is None else _np(labels).reshape(-1)
    sc = None if scores is None else _np(scores, np.float64).reshape(-1)
    for name, arr in (("labels", lab), ("scores", sc)):
        if arr is not None and len(arr) != k:
            raise ValueError(f"{name} has {len(arr)} entries for {k} boxes")
    if colors is not None and len(colors) != k:
        raise ValueError(f"colors has {len(colors)} entries for {k} boxes")
    font = cv2.FONT_HERSHEY_SIMPLEX
    order = np.arange(k) if sc is None else np.argsort(sc, kind="stable")  # best on top
    for i in order:
        if sc is not None and score_thresh is not None and sc[i] < score_thresh:
            continue
        color = tuple(int(c) for c in colors[i]) if colors is not None else \
            class_color(lab[i] if lab is not None else 0)
        x1, y1 = int(np.floor(b[i, 0])), int(np.floor(b[i, 1]))
        x2, y2 = int(np.ceil(b[i, 2])) - 1, int(np.ceil(b[i, 3])) - 1
        cv2.rectangle(img, (x1, y1), (max(x1, x2), max(y1, y2)), color, thickness)
        parts = []
        if lab is not None:
            li = int(lab[i])
            parts.append(class_names[li] if class_names is not None and
                         0 <= li < len(class_names) else str(li))
        if sc is not None:
            parts.append(f"{sc[i]:.2f}")
        if parts:
            text = " ".join(parts)
            (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + 2   # inside when at the top
            tx = max(0, min(x1, img.shape[1] - tw - 2))              # keep it in the picture
            cv2.rectangle(img, (tx, ty - th - 1), (tx + tw + 1, ty + base - 1), color, -1)
            lum = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
            ink = (0, 0, 0) if lum > 140 else (255, 255, 255)
            cv2.putText(img, text, (tx + 1, ty - 1), font, font_scale, ink, 1, cv2.LINE_AA)
    return img


def draw_masks(image, masks, labels=None, colors=None, alpha: float = 0.5,
               contours: bool = True, threshold: float = 0.5) -> np.ndarray:
    """Overlay instance masks: ``(1 - alpha) * image + alpha * colour`` inside each mask,
    plus the mask's outline (``cv2.findContours``) in the full colour.

    masks : (K, H, W) binary, or probabilities (``> threshold`` is inside).
    """
    img = to_uint8_image(image)
    m = _np(masks)
    if m.ndim != 3 or m.shape[1:] != img.shape[:2]:
        raise ValueError(f"masks must be (K, {img.shape[0]}, {img.shape[1]}), got {m.shape}")
    lab = None if labels is None else _np(labels).reshape(-1)
    if lab is not None and len(lab) != len(m):
        raise ValueError(f"labels has {len(lab)} entries for {len(m)} masks")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = img.astype(np.float32)
    for i in range(len(m)):
        inside = (m[i] > threshold) if m.dtype.kind == "f" else (m[i] > 0)
        color = np.float32(colors[i] if colors is not None else
                           class_color(lab[i] if lab is not None else i + 1))
        out[inside] = (1 - alpha) * out[inside] + alpha * color
    out = out.round().astype(np.uint8)
    if contours:
        for i in range(len(m)):
            inside = (m[i] > threshold) if m.dtype.kind == "f" else (m[i] > 0)
            color = tuple(int(c) for c in (colors[i] if colors is not None else
                                           class_color(lab[i] if lab is not None else i + 1)))
            cs, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL,
                                     cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, cs, -1, color, 1)
    return out


def segmentation_palette() -> np.ndarray:
    """(256, 3) uint8 VOC palette: index -> RGB (0 black background, 255 void cream)."""
    from scratchvision.data.voc import voc_palette  # noqa: PLC0415  (viz -> data is upward-safe)
    return voc_palette(256)


def draw_segmentation(semantic, image=None, alpha: float = 0.6,
                      palette: np.ndarray | None = None) -> np.ndarray:
    """Colour a label map (H, W) with a palette; blended over ``image`` when given.

    semantic : integer (H, W) labels (255 = void), or (C, H, W) scores (argmax taken).
    """
    sem = _np(semantic)
    if sem.ndim == 3:
        sem = sem.argmax(axis=0)
    if sem.ndim != 2:
        raise ValueError(f"semantic must be (H, W) labels or (C, H, W) scores, got {sem.shape}")
    if sem.size and (sem.min() < 0 or sem.max() > 255):
        raise ValueError(f"labels must be in 0..255, got {sem.min()}..{sem.max()}")
    pal = segmentation_palette() if palette is None else np.asarray(palette, np.uint8)
    color = pal[sem.astype(np.int64)]
    if image is None:
        return color
    img = to_uint8_image(image)
    if img.shape[:2] != sem.shape:
        raise ValueError(f"image {img.shape[:2]} and semantic {sem.shape} differ in size")
    fg = (sem > 0)[..., None]
    blend = (1 - alpha) * img.astype(np.float32) + alpha * color.astype(np.float32)
    return np.where(fg, blend, img).round().astype(np.uint8)


def make_grid(images, nrow: int = 8, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile images (a list of images, or an (N, 3, H, W) batch) into one uint8 RGB image,
    ``nrow`` per row (torchvision's name); smaller images are centred in their cell."""
    if isinstance(images, Tensor) or hasattr(images, "shape"):
        arr = _np(images)
        images = [arr[i] for i in range(arr.shape[0])]
    tiles = [to_uint8_image(im) for im in images]
    if not tiles:
        raise ValueError("make_grid needs at least one image")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    ch = max(t.shape[0] for t in tiles)
    cw = max(t.shape[1] for t in tiles)
    cols = min(nrow, len(tiles))
    rows = -(-len(tiles) // cols)
    grid = np.full((rows * (ch + padding) + padding, cols * (cw + padding) + padding, 3),
                   pad_value, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y = padding + r * (ch + padding) + (ch - t.shape[0]) // 2
        x = padding + c * (cw + padding) + (cw - t.shape[1]) // 2
        grid[y:y + t.shape[0], x:x + t.shape[1]] = t
    return grid


def save_image(image, path: str | Path) -> Path:
    """Write an image (HWC uint8 RGB or CHW float) as PNG/JPEG by the file extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(to_uint8_image(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def save_image_grid(images, path: str | Path, nrow: int = 8, padding: int = 2,
                    pad_value: int = 255) -> Path:
    """``make_grid`` then save as PNG."""
    return save_image(make_grid(images, nrow, padding, pad_value), path)
