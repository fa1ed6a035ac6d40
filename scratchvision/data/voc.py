"""PASCAL VOC datasets read from the devkit layout (torchvision-like API).

Layout (``root`` may be the ``VOC<year>`` folder itself or a folder holding
``VOCdevkit/VOC<year>``)::

    VOC2007/
      JPEGImages/<id>.jpg
      Annotations/<id>.xml            <object><name>, <difficult>, <truncated>, <bndbox>
      ImageSets/Main/<image_set>.txt  one id per line
      ImageSets/Segmentation/<image_set>.txt
      SegmentationClass/<id>.png      palette PNG: index = class, 255 = void (object borders)

Box convention. VOC XML stores 1-based *inclusive* pixel coordinates (xmin = first pixel
column, counting from 1). We return 0-based **pixel-edge** boxes, the convention of the
rest of the library: ``x1 = xmin - 1, x2 = xmax`` (a box covers pixels ``x1 <= x < x2``),
so a box's width ``x2 - x1`` equals the devkit's ``xmax - xmin + 1``. For the devkit's own
inclusive arithmetic (``evaluate_voc``), pass ``target['boxes_inclusive']``
(``xmin - 1 .. xmax - 1``, 0-based inclusive), as py-faster-rcnn does.

torchvision's ``VOCDetection`` does no such conversion: its target is the XML parsed into
nested dicts of *strings* (``target['annotation']['object'][k]['bndbox']['xmin']``, still
1-based inclusive), and each model's reference scripts convert them. Here the conversion
is done once, in ``parse_voc_xml``, and the raw values stay recoverable (``xmin = x1 + 1``,
``xmax = x2``).

Validation. ``parse_voc_xml`` refuses, with a ``ValueError`` naming the XML file, the
object's index (its position among the ``<object>`` elements) and the field: a missing
``<name>`` / ``<bndbox>`` / coordinate, an unknown class name, a non-numeric or
non-finite coordinate, ``xmax < xmin`` or ``ymax < ymin``, a box outside the image
(``xmin < 1``, ``ymin < 1``, ``xmax > width`` or ``ymax > height``: VOC's pixels are
``1..width``), and a missing or non-positive ``<size>`` (its width x height above
``validation.LIMITS['max_image_pixels']`` is a ``LimitError``). ``VOCDetection`` also
checks that the image file has the size the XML declares. Images are read by
``data/image_io.py`` (missing file: ``FileNotFoundError``; corrupt file: ``ValueError``;
a header declaring too many pixels: ``LimitError`` before decoding).

Segmentation PNGs are palette images. OpenCV expands a palette to colours, so each colour
is mapped back to its index through the VOC palette (``voc_palette``: the bit-interleaved
colour map of the devkit's ``labelcolormap.m``); single-channel PNGs are read as indices.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from scratchvision.data.image_io import decode_image, read_image
from scratchvision.validation import check_limit

__all__ = [
    "VOC_CLASSES",
    "VOCDetection",
    "VOCSegmentation",
    "parse_voc_xml",
    "read_image",
    "read_label_png",
    "voc_palette",
]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def voc_palette(n: int = 256) -> np.ndarray:
    """The VOC colour map (n, 3) uint8 RGB: bits of the index spread over the channels."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):                         # bit 3j -> R bit 7-j, 3j+1 -> G, 3j+2 -> B
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def read_label_png(path: Path) -> np.ndarray:
    """A VOC segmentation PNG as uint8 (H, W) class indices (255 = void)."""
    img = decode_image(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 2:
        return img.astype(np.uint8)
    rgb = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB).astype(np.int64)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pal = voc_palette().astype(np.int64)
    pal_key = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(pal_key)
    pos = np.searchsorted(pal_key[order], key)
    pos = np.minimum(pos, pal_key.size - 1)
    found = pal_key[order][pos] == key
    if not found.all():
        y, x = np.argwhere(~found)[0]
        raise ValueError(f"{path}: pixel ({y}, {x}) has colour {rgb[y, x].tolist()}, "
                         "which is not in the VOC palette")
    return order[pos].astype(np.uint8)


def _year_dir(root: str | Path, year: str) -> Path:
    root = Path(root)
    for cand in (root, root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise FileNotFoundError(f"no VOC{year} folder with JPEGImages/ under {root}")


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"image set file {path} not found")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _text(node, tag: str, path: Path, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f"{path}: {where} has no <{tag}>")
    return child.text.strip()


def _number(node, tag: str, path: Path, where: str) -> float:
    """The finite number in ``<tag>`` under ``node``."""
    text = _text(node, tag, path, where)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: {where} has a non-numeric <{tag}> {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}: {where} has a non-finite <{tag}> {text!r}")
    return value


def _size(root, path: Path) -> tuple[int, int]:
    """(height, width) from ``<size>``: positive integers, within the image-pixel limit."""
    size = root.find("size")
    if size is None:
        raise ValueError(f"{path}: the annotation has no <size> (the image's width and "
                         "height are needed to check the boxes)")
    hw = []
    for tag in ("height", "width"):
        value = _number(size, tag, path, "<size>")
        if value != int(value) or value < 1:
            raise ValueError(f"{path}: <size> <{tag}> must be a positive integer, got "
                             f"{value:g}")
        hw.append(int(value))
    check_limit(hw[0] * hw[1], f"{path}: <size> {hw[1]} x {hw[0]}", limit="max_image_pixels")
    return hw[0], hw[1]


def parse_voc_xml(path: str | Path, classes=VOC_CLASSES) -> dict:
    """Parse one VOC annotation file (see the module doc for the box convention).

    Returns a dict with ``boxes`` float32 (K, 4) pixel-edge x1y1x2y2, ``boxes_inclusive``
    float32 (K, 4) 0-based inclusive, ``labels`` int64 (K,) in 1..len(classes),
    ``difficult`` / ``truncated`` bool (K,), ``size`` (h, w), ``filename``.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: malformed XML ({e})") from None
    index = {c: i + 1 for i, c in enumerate(classes)}
    boxes, labels, diff, trunc = [], [], [], []
    for k, obj in enumerate(root.iter("object")):
        where = f"object {k}"
        name = _text(obj, "name", path, where)
        if name not in index:
            raise ValueError(f"{path}: {where} has unknown class name {name!r}")
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: {where} ({name}) has no <bndbox>")
        x1, y1, x2, y2 = (_number(bb, t, path, f"{where} ({name})")
                          for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise ValueError(f"{path}: {where} ({name}) has xmax < xmin or ymax < ymin: "
                             f"{[x1, y1, x2, y2]}")
        boxes.append((x1, y1, x2, y2))
        labels.append(index[name])
        d = obj.find("difficult")
        t = obj.find("truncated")
        diff.append(d is not None and (d.text or "0").strip() == "1")
        trunc.append(t is not None and (t.text or "0").strip() == "1")
    h, w = _size(root, path)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        # 1-based inclusive: the image's pixels are 1..width, 1..height
        if x1 < 1 or y1 < 1 or x2 > w or y2 > h:
            raise ValueError(f"{path}: object {k} ({classes[labels[k] - 1]}) <bndbox> "
                             f"{[x1, y1, x2, y2]} lies outside the {w} x {h} image (VOC's "
                             f"pixels are 1..{w}, 1..{h})")
    hw = (h, w)
    fn = root.find("filename")
    b = np.asarray(boxes, np.float32).reshape(-1, 4) - np.float32([1, 1, 0, 0])
    return {"boxes": b, "boxes_inclusive": b - np.float32([0, 0, 1, 1]),
            "labels": np.asarray(labels, np.int64), "difficult": np.asarray(diff, bool),
            "truncated": np.asarray(trunc, bool), "size": hw,
            "filename": fn.text.strip() if fn is not None and fn.text else path.stem + ".jpg"}


class VOCDetection:
    """VOC detection: ``ds[i] -> (image uint8 (H, W, 3) RGB, target dict)``.

    ``target``: ``boxes`` float32 (K, 4) pixel-edge x1y1x2y2, ``boxes_inclusive``,
    ``labels`` int64 (K,) in 1..20 (0 = background), ``difficult``, ``truncated`` bool
    (K,), ``image_id`` str. ``keep_difficult=False`` drops difficult objects (training).
    """

    classes = ("background",) + VOC_CLASSES
    num_classes = len(VOC_CLASSES) + 1

    def __init__(self, root: str | Path, year: str = "2007", image_set: str = "train",
                 transforms=None, keep_difficult: bool = True) -> None:
        self.dir = _year_dir(root, year)
        self.ids = _read_ids(self.dir / "ImageSets" / "Main" / f"{image_set}.txt")
        self.transforms = transforms
        self.keep_difficult = keep_difficult

    def __len__(self) -> int:
        return len(self.ids)

    def target(self, index: int) -> dict:
        """The parsed annotation of image ``index`` (no image read)."""
        iid = self.ids[index]
        t = parse_voc_xml(self.dir / "Annotations" / f"{iid}.xml")
        t["image_id"] = iid
        if not self.keep_difficult:
            keep = ~t["difficult"]
            for k in ("boxes", "boxes_inclusive", "labels", "difficult", "truncated"):
                t[k] = t[k][keep]
        return t

    def __getitem__(self, index: int):
        t = self.target(index)
        image_path = self.dir / "JPEGImages" / f"{self.ids[index]}.jpg"
        image = read_image(image_path)
        if image.shape[:2] != tuple(t["size"]):
            raise ValueError(f"{image_path}: size {image.shape[:2]} differs from the "
                             f"annotation's <size> {tuple(t['size'])} (height, width)")
        if self.transforms is not None:
            image, t = self.transforms(image, t)
        return image, t


class VOCSegmentation:
    """VOC semantic segmentation: ``ds[i] -> (image uint8 (H, W, 3), target dict)``.

    ``target``: ``semantic`` uint8 (H, W) class indices 0..20, 255 = void; ``image_id``.
    """

    classes = ("background",) + VOC_CLASSES
    num_classes = len(VOC_CLASSES) + 1
    ignore_index = 255

    def __init__(self, root: str | Path, year: str = "2012", image_set: str = "train",
                 transforms=None) -> None:
        self.dir = _year_dir(root, year)
        self.ids = _read_ids(self.dir / "ImageSets" / "Segmentation" / f"{image_set}.txt")
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        iid = self.ids[index]
        image = read_image(self.dir / "JPEGImages" / f"{iid}.jpg")
        label_path = self.dir / "SegmentationClass" / f"{iid}.png"
        sem = read_label_png(label_path)
        if sem.shape != image.shape[:2]:
            raise ValueError(f"{label_path}: label size {sem.shape} differs from the image "
                             f"size {image.shape[:2]}")
        bad = (sem > self.num_classes - 1) & (sem != self.ignore_index)
        if bad.any():
            raise ValueError(f"{label_path}: class index {int(sem[bad][0])} out of range "
                             f"0..{self.num_classes - 1} (255 = void)")
        t = {"semantic": sem, "image_id": iid}
        if self.transforms is not None:
            image, t = self.transforms(image, t)
        return image, t
