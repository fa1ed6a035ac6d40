"""COCO instances dataset (``instances_*.json``), decoded with our own mask code.

``COCODetection(root, ann_file)`` reads images from ``root/<file_name>``. Each sample is
``(image uint8 (H, W, 3) RGB, target)`` where ``target`` holds, for the image's
annotations in file order:

- ``boxes`` float32 (K, 4) x1y1x2y2, from COCO's ``[x, y, w, h]`` (continuous
  coordinates: ``x2 = x + w``);
- ``labels`` int64 (K,) contiguous labels 1..C in the order of sorted category ids
  (``label_to_cat_id[label]`` gives the COCO id back; 0 is background);
- ``masks`` uint8 (K, H, W) from polygons / uncompressed RLE / compressed RLE
  (``scratchvision.data.mask_utils``), when ``masks=True``;
- ``iscrowd`` int64 (K,), ``area`` float32 (K,), ``image_id`` int.

The annotation file is validated when loaded, and every error names the file, the
annotation index and the field.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scratchvision.data import mask_utils
from scratchvision.data.voc import read_image


def load_coco_json(path: str | Path) -> dict:
    """Read and validate a COCO instances file; errors name the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be an object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: missing or non-list field '{key}'")
    img_ids = set()
    for n, im in enumerate(data["images"]):
        for key in ("id", "file_name", "height", "width"):
            if key not in im:
                raise ValueError(f"{path}: images[{n}] has no '{key}'")
        img_ids.add(im["id"])
    cat_ids = set()
    for n, c in enumerate(data["categories"]):
        if "id" not in c:
            raise ValueError(f"{path}: categories[{n}] has no 'id'")
        cat_ids.add(c["id"])
    for n, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{n}]"
        for key in ("image_id", "category_id", "bbox"):
            if key not in a:
                raise ValueError(f"{where} has no '{key}'")
        if a["image_id"] not in img_ids:
            raise ValueError(f"{where}: image_id {a['image_id']} is not in 'images'")
        if a["category_id"] not in cat_ids:
            raise ValueError(f"{where}: category_id {a['category_id']} is not in "
                             "'categories'")
        b = a["bbox"]
        if not isinstance(b, list) or len(b) != 4:
            raise ValueError(f"{where}: 'bbox' must be [x, y, w, h], got {b!r}")
        if b[2] < 0 or b[3] < 0:
            raise ValueError(f"{where}: 'bbox' {b} has a negative width or height")
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
    """

    def __init__(self, root: str | Path, ann_file: str | Path, transforms=None,
                 masks: bool = True, remove_images_without_annotations: bool = False) -> None:
        self.root = Path(root)
        self.ann_file = Path(ann_file)
        self.data = load_coco_json(self.ann_file)
        self.transforms = transforms
        self.with_masks = masks
        self.cat_ids = sorted(c["id"] for c in self.data["categories"])
        self.cat_id_to_label = {c: i + 1 for i, c in enumerate(self.cat_ids)}
        self.label_to_cat_id = {i + 1: c for i, c in enumerate(self.cat_ids)}
        names = {c["id"]: c.get("name", str(c["id"])) for c in self.data["categories"]}
        self.classes = ("background",) + tuple(names[c] for c in self.cat_ids)
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
            masks = np.zeros((len(anns), h, w), np.uint8)
            for k, (n, a) in enumerate(anns):
                if "segmentation" not in a:
                    raise ValueError(f"{self.ann_file}: annotations[{n}] has no "
                                     "'segmentation' (pass masks=False for boxes only)")
                try:
                    masks[k] = mask_utils.segmentation_to_mask(a["segmentation"], h, w)
                except (ValueError, TypeError) as e:
                    raise ValueError(f"{self.ann_file}: annotations[{n}] 'segmentation': "
                                     f"{e}") from None
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
