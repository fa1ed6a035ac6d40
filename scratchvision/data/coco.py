"""COCO instances dataset (``instances_*.json``), decoded with our own mask code.

``COCODetection(root, ann_file)`` reads images from ``root/<file_name>``. Each sample is
``(image uint8 (H, W, 3) RGB, target)`` where ``target`` holds, for the image's
annotations in file order:

- ``boxes`` float32 (K, 4) x1y1x2y2, from COCO's ``[x, y, w, h]`` (continuous
  coordinates: ``x2 = x + w``);
- ``labels`` int64 (K,): see "Category ids" below;
- ``masks`` uint8 (K, H, W) from polygons / uncompressed RLE / compressed RLE
  (``scratchvision.data.mask_utils``), when ``masks=True``;
- ``iscrowd`` int64 (K,), ``area`` float32 (K,), ``image_id`` int.

Category ids. COCO's category ids are not contiguous (the 80 classes of COCO 2017 use ids
1..90). With ``remap_category_ids=True`` (the default) labels are contiguous, ``1..K`` in
the order of sorted category ids (``label_to_cat_id[label]`` gives the COCO id back,
``cat_id_to_label`` the other way; 0 is background), so a detector needs only K + 1
classes, as Detectron2 and mmdetection do. With ``remap_category_ids=False`` the labels
are the raw COCO ids, as torchvision's ``CocoDetection`` (which returns the raw annotation
dicts, ids untouched) and its detection references (91 classes for COCO) keep them;
``classes`` then has one entry per id up to the largest, ``"N/A"`` for ids no category
uses, and category ids must be >= 1 (0 is background). ``detections_to_coco_results``
takes ``label_to_cat_id`` (the identity in that case) to write results back.

Validation. The annotation file is validated when loaded (``load_coco_json``), and every
error is a ``ValueError`` naming the file, the entry (``annotations[n] (id 17)``: its
position in the list and its ``id``) and the field: missing fields; an ``image_id`` not
in ``images`` or a ``category_id`` not in ``categories``; a ``bbox`` that is not four
finite numbers ``[x, y, w, h]`` with ``w, h >= 0`` (NaN, inf, strings, booleans, wrong
length); an ``area`` that is not a finite number >= 0; duplicate image or category ids;
an image whose ``height`` / ``width`` are not positive integers, or whose
``width x height`` exceeds ``validation.LIMITS['max_image_pixels']`` (a ``LimitError``,
before any image is read or mask allocated). Segmentations are checked when decoded
(``target(i)``), with the same naming. Image files are read by ``data/image_io.py``
(missing: ``FileNotFoundError``; corrupt: ``ValueError``; a header declaring too many
pixels: ``LimitError`` before decoding) and must have the size the annotation declares.
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import numpy as np

from scratchvision.data import mask_utils
from scratchvision.data.image_io import read_image
from scratchvision.validation import check_limit


def _is_number(v) -> bool:
    """A JSON number (int or float), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _entry(kind: str, n: int, item: dict) -> str:
    """``annotations[3] (id 17)``: an entry's position in its list and its id."""
    return f"{kind}[{n}]" + (f" (id {item['id']!r})" if "id" in item else " (no id)")


def _check_images(path: Path, images: list) -> set:
    ids = set()
    for n, im in enumerate(images):
        if not isinstance(im, dict):
            raise ValueError(f"{path}: images[{n}] must be an object, got {im!r}")  # noqa: TRY004
        where = f"{path}: {_entry('images', n, im)}"
        for key in ("id", "file_name", "height", "width"):
            if key not in im:
                raise ValueError(f"{where} has no '{key}'")
        if not (_is_int(im["id"]) or isinstance(im["id"], str)):
            raise ValueError(f"{where}: 'id' must be an int or a string, got {im['id']!r}")
        if im["id"] in ids:
            raise ValueError(f"{where}: 'id' {im['id']!r} is used by another image")
        for key in ("height", "width"):
            if not _is_int(im[key]) or im[key] < 1:
                raise ValueError(f"{where}: '{key}' must be a positive integer, got "
                                 f"{im[key]!r}")
        check_limit(im["height"] * im["width"], f"{where} (declared {im['width']} x "
                    f"{im['height']})", limit="max_image_pixels")
        ids.add(im["id"])
    return ids


def _check_categories(path: Path, categories: list) -> set:
    ids = set()
    for n, c in enumerate(categories):
        if not isinstance(c, dict):
            raise ValueError(  # noqa: TRY004  (a bad file is a ValueError)
                f"{path}: categories[{n}] must be an object, got {c!r}")
        if "id" not in c:
            raise ValueError(f"{path}: categories[{n}] has no 'id'")
        if not _is_int(c["id"]):
            raise ValueError(f"{path}: categories[{n}]: 'id' must be an int, got {c['id']!r}")
        if c["id"] in ids:
            raise ValueError(f"{path}: categories[{n}]: 'id' {c['id']} is used by another "
                             "category")
        ids.add(c["id"])
    return ids


def _check_annotation(where: str, a: dict, img_ids: set, cat_ids: set) -> None:
    for key in ("image_id", "category_id", "bbox"):
        if key not in a:
            raise ValueError(f"{where} has no '{key}'")
    if not isinstance(a["image_id"], (int, str)) or a["image_id"] not in img_ids:
        raise ValueError(f"{where}: image_id {a['image_id']!r} is not in 'images'")
    if not _is_int(a["category_id"]) or a["category_id"] not in cat_ids:
        raise ValueError(f"{where}: category_id {a['category_id']!r} is not in 'categories'")
    b = a["bbox"]
    if not isinstance(b, list) or len(b) != 4 or not all(_is_number(v) for v in b):
        raise ValueError(f"{where}: 'bbox' must be [x, y, w, h] (four numbers), got {b!r}")
    if not all(math.isfinite(v) for v in b):
        raise ValueError(f"{where}: 'bbox' {b} is not finite")
    if b[2] < 0 or b[3] < 0:
        raise ValueError(f"{where}: 'bbox' {b} has a negative width or height")
    if "area" in a and not (_is_number(a["area"]) and math.isfinite(a["area"])
                            and a["area"] >= 0):
        raise ValueError(f"{where}: 'area' must be a finite number >= 0, got {a['area']!r}")
    if "iscrowd" in a and a["iscrowd"] not in (0, 1):
        raise ValueError(f"{where}: 'iscrowd' must be 0 or 1, got {a['iscrowd']!r}")


def load_coco_json(path: str | Path) -> dict:
    """Read and validate a COCO instances file (see the module doc for what is checked);
    errors name the file, the entry and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(  # noqa: TRY004  (a bad file is a ValueError)
            f"{path}: top level must be an object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: missing or non-list field '{key}'")  # noqa: TRY004
    img_ids = _check_images(path, data["images"])
    cat_ids = _check_categories(path, data["categories"])
    for n, a in enumerate(data["annotations"]):
        if not isinstance(a, dict):
            raise ValueError(  # noqa: TRY004  (a bad file is a ValueError)
                f"{path}: annotations[{n}] must be an object, got {a!r}")
        _check_annotation(f"{path}: {_entry('annotations', n, a)}", a, img_ids, cat_ids)
    return data


class COCODetection:
    """COCO instances: ``ds[i] -> (image, target)`` (see the module doc).

    Parameters
    ----------
    root : folder of the images.
    ann_file : path of the instances JSON.
    transforms : optional ``(image, target) -> (image, target)``.
    masks : decode instance masks (K, H, W) (off saves time for box-only training).
    remove_images_without_annotations : drop images with no (non-crowd) annotation.
    remap_category_ids : ``True`` (default): labels 1..K in the order of sorted category
        ids; ``False``: the raw COCO category ids, as torchvision (see the module doc).
    """

    def __init__(self, root: str | Path, ann_file: str | Path, transforms=None,
                 masks: bool = True, remove_images_without_annotations: bool = False,
                 remap_category_ids: bool = True) -> None:
        if transforms is not None and not callable(transforms):
            raise TypeError(f"COCODetection: transforms must be callable or None, got "
                            f"{type(transforms).__name__}")
        self.root = Path(root)
        self.ann_file = Path(ann_file)
        self.data = load_coco_json(self.ann_file)
        self.transforms = transforms
        self.with_masks = bool(masks)
        self.remap_category_ids = bool(remap_category_ids)
        self.cat_ids = sorted(c["id"] for c in self.data["categories"])
        names = {c["id"]: c.get("name", str(c["id"])) for c in self.data["categories"]}
        if self.remap_category_ids:
            self.cat_id_to_label = {c: i + 1 for i, c in enumerate(self.cat_ids)}
            self.classes = ("background",) + tuple(names[c] for c in self.cat_ids)
        else:
            if self.cat_ids and self.cat_ids[0] < 1:
                raise ValueError(f"{self.ann_file}: category id {self.cat_ids[0]} cannot be a "
                                 "label with remap_category_ids=False (0 is background, "
                                 "labels are >= 1)")
            self.cat_id_to_label = {c: c for c in self.cat_ids}
            top = self.cat_ids[-1] if self.cat_ids else 0
            self.classes = ("background",) + tuple(names.get(i, "N/A")
                                                   for i in range(1, top + 1))
        self.label_to_cat_id = {v: k for k, v in self.cat_id_to_label.items()}
        self.num_classes = len(self.classes)
        self.images = {im["id"]: im for im in self.data["images"]}
        self.anns: dict = {i: [] for i in self.images}
        for n, a in enumerate(self.data["annotations"]):
            self.anns[a["image_id"]].append((n, a))
        self.ids = sorted(self.images)
        if remove_images_without_annotations:
            self.ids = [i for i in self.ids
                        if any(not a.get("iscrowd", 0) for _, a in self.anns[i])]

    def __len__(self) -> int:
        return len(self.ids)

    def target(self, index: int) -> dict:
        """The decoded annotations of image ``index`` (no image read)."""
        iid = self.ids[index]
        im = self.images[iid]
        h, w = int(im["height"]), int(im["width"])
        anns = self.anns[iid]
        boxes = np.array([a["bbox"] for _, a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]                         # xywh -> x1y1x2y2
        t = {"boxes": boxes,
             "labels": np.array([self.cat_id_to_label[a["category_id"]] for _, a in anns],
                                np.int64),
             "iscrowd": np.array([int(a.get("iscrowd", 0)) for _, a in anns], np.int64),
             "area": np.array([float(a.get("area", 0.0)) for _, a in anns], np.float32),
             "image_id": iid}
        if self.with_masks:
            check_limit((len(anns), h, w), f"{self.ann_file}: the masks of image id {iid!r}")
            masks = np.zeros((len(anns), h, w), np.uint8)
            for k, (n, a) in enumerate(anns):
                where = f"{self.ann_file}: {_entry('annotations', n, a)}"
                if "segmentation" not in a:
                    raise ValueError(f"{where} has no 'segmentation' (pass masks=False for "
                                     "boxes only)")
                try:
                    masks[k] = mask_utils.segmentation_to_mask(a["segmentation"], h, w)
                except (ValueError, TypeError) as e:
                    raise ValueError(f"{where} 'segmentation': {e}") from None
            t["masks"] = masks
        return t

    def __getitem__(self, index: int):
        t = self.target(index)
        im = self.images[self.ids[index]]
        image = read_image(self.root / im["file_name"])
        if image.shape[:2] != (int(im["height"]), int(im["width"])):
            raise ValueError(f"{self.root / im['file_name']}: size {image.shape[:2]} differs "
                             f"from the annotation's {(im['height'], im['width'])}")
        if self.transforms is not None:
            image, t = self.transforms(image, t)
        return image, t
