"""Detection metrics for a detector's predictions on a labelled split, in one call.

``evaluate_detections(predictions, targets, image_ids, class_names)`` returns the three
numbers papers report, computed by the project's own evaluators:

- VOC AP at IoU 0.5, area under the precision envelope (VOC2010+) and 11-point (VOC2007),
  per class and their mean (``eval/voc.py``). The VOC rule counts pixels inclusively
  (``x2 - x1 + 1``), while scratchvision's boxes are pixel *edges* (a box covering columns
  3..7 is ``x1 = 3, x2 = 8``); subtracting 1 from ``x2, y2`` of every box, predicted and
  true, turns one convention into the other exactly, so the overlaps are the true ones
  (a predicted box thinner than a pixel is kept as a one-pixel box);
- COCO AP@[.5:.95], AP50, AP75, APs/m/l and AR (``eval/coco.py``, pycocotools' rules),
  on a ground-truth dict built by ``coco_ground_truth`` (the same dict ``detect
  --export-gt`` writes);
- with instance masks on both sides (Mask R-CNN), the same COCO numbers on the masks
  (``iou_type='segm'``: mask IoU instead of box IoU), the ground truths and detections
  written as compressed RLE as pycocotools reads them.

Predictions are per-image dicts (``boxes`` (K, 4) x1y1x2y2 pixel edges, ``scores``,
``labels`` 1..C, optionally ``masks`` (K, H, W) binary; Tensors or arrays), as
``model.predict`` returns them.
"""
from __future__ import annotations

import numpy as np

from scratchvision.data import mask_utils
from scratchvision.eval.coco import detections_to_coco_results, evaluate_coco
from scratchvision.eval.voc import evaluate_voc


def _np(x) -> np.ndarray:
    x = getattr(x, "data", x)
    return np.asarray(x.get() if hasattr(x, "get") else x)


def _inclusive(boxes) -> np.ndarray:
    """Pixel-edge x1y1x2y2 -> the devkit's inclusive pixels: x2 - 1, y2 - 1, never below x1, y1
    (a predicted box thinner than one pixel becomes a one-pixel box, not an inverted one)."""
    b = _np(boxes).reshape(-1, 4).astype(np.float64)
    b[:, 2:] = np.maximum(b[:, 2:] - 1.0, b[:, :2])
    return b


def coco_ground_truth(targets, image_ids, image_sizes, class_names) -> dict:
    """A COCO-format ground-truth dict (images, annotations, categories).

    ``class_names[0]`` is the background and gets no category; label ``l`` is category id
    ``l``. An annotation's ``area`` is its mask's pixel count when the target has
    ``masks`` (as in COCO), else its box area; ``iscrowd`` is 0. With ``masks`` each
    annotation also gets its ``segmentation`` as compressed RLE.
    """
    images, anns = [], []
    for t, im, (h, w) in zip(targets, image_ids, image_sizes):
        images.append({"id": int(im), "height": int(h), "width": int(w),
                       "file_name": f"{int(im):06d}.png"})
        boxes = _np(t["boxes"]).reshape(-1, 4).astype(np.float64)
        labels = _np(t["labels"]).reshape(-1)
        areas = t.get("areas")
        masks = None if t.get("masks") is None else _np(t["masks"])
        if areas is None and masks is not None:
            areas = masks.reshape(len(boxes), -1).sum(axis=1)
        for j, (b, lab) in enumerate(zip(boxes, labels)):
            bw, bh = b[2] - b[0], b[3] - b[1]
            ann = {"id": len(anns) + 1, "image_id": int(im), "category_id": int(lab),
                   "bbox": [float(b[0]), float(b[1]), float(bw), float(bh)],
                   "area": float(areas[j]) if areas is not None else float(bw * bh),
                   "iscrowd": 0}
            if masks is not None:
                ann["segmentation"] = mask_utils.encode(masks[j] > 0)
            anns.append(ann)
    cats = [{"id": i, "name": n} for i, n in enumerate(class_names) if i > 0]
    return {"images": images, "annotations": anns, "categories": cats}


def coco_results(predictions, image_ids) -> list:
    """COCO results list (``bbox`` x, y, w, h; ``category_id`` = label; ``segmentation``
    RLE when every prediction has ``masks``) of predictions."""
    masks = [_np(p["masks"]) for p in predictions] \
        if predictions and all("masks" in p for p in predictions) else None
    return detections_to_coco_results(
        list(image_ids), [_np(p["boxes"]) for p in predictions],
        [_np(p["scores"]) for p in predictions], [_np(p["labels"]) for p in predictions],
        masks=masks)


def evaluate_detections(predictions, targets, image_ids, image_sizes, class_names) -> dict:
    """VOC (area and 07) and COCO metrics of ``predictions`` against ``targets``.

    Returns a dict: ``map`` (VOC area, IoU 0.5), ``map07``, ``ap`` and ``ap07`` per class
    (index = label; NaN for the background), ``precision``/``recall`` curves per class,
    ``coco`` (the 12 COCO numbers and ``per_class_ap``), and ``segm`` (the same on the
    masks) when the predictions and the targets have ``masks``.
    """
    if not len(predictions) == len(targets) == len(image_ids) == len(image_sizes):
        raise ValueError(f"got {len(predictions)} predictions, {len(targets)} targets, "
                         f"{len(image_ids)} image ids and {len(image_sizes)} sizes")
    pb = [_inclusive(p["boxes"]) for p in predictions]
    pl = [_np(p["labels"]).reshape(-1) for p in predictions]
    ps = [_np(p["scores"]).reshape(-1) for p in predictions]
    gb = [_inclusive(t["boxes"]) for t in targets]
    gl = [_np(t["labels"]).reshape(-1) for t in targets]
    k = len(class_names)
    voc = evaluate_voc(pb, pl, ps, gb, gl, num_classes=k)
    voc07 = evaluate_voc(pb, pl, ps, gb, gl, use_07_metric=True, num_classes=k)
    gt = coco_ground_truth(targets, image_ids, image_sizes, class_names)
    res = coco_results(predictions, image_ids)
    empty = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    coco = evaluate_coco(gt, res, "bbox") if res else empty
    out = {"map": float(voc["map"]), "map07": float(voc07["map"]),
           "ap": [float(a) for a in voc["ap"]], "ap07": [float(a) for a in voc07["ap"]],
           "precision": voc["precision"], "recall": voc["recall"], "coco": coco}
    with_masks = all(t.get("masks") is not None for t in targets)
    if with_masks and predictions and all("masks" in p for p in predictions):
        out["segm"] = evaluate_coco(gt, res, "segm") if res else dict(empty)
    return out
