"""PASCAL VOC detection AP, following the official devkit (VOCevaldet.m / voc_eval.py).

Per class:

1. All detections of the class, over all images, are sorted by descending score
   (stable: ties keep image order, then the order inside the image).
2. Each detection, in that order, is compared with the class's ground truths *of its
   image*. Overlap uses the devkit's **inclusive pixel** convention: a box ``x1..x2`` is
   ``x2 - x1 + 1`` pixels wide, so ``IoU = inter / union`` with
   ``inter = max(0, min(x2) - max(x1) + 1) * max(0, min(y2) - max(y1) + 1)``.
3. The ground truth of largest overlap is taken (argmax, first on ties). If that overlap
   is **>** ``iou_thresh`` (strictly, as the devkit):
   - a *difficult* ground truth makes the detection neither a TP nor an FP (it is dropped);
   - otherwise the first detection to claim it is a TP and later ones are FPs
     (duplicates) -- even if another ground truth also overlaps enough.
   Otherwise the detection is an FP.
4. ``recall = cumsum(tp) / n_pos`` where n_pos counts the non-difficult ground truths,
   ``precision = cumsum(tp) / max(cumsum(tp) + cumsum(fp), eps)``.
5. AP: VOC2007's 11-point rule ``mean over t in {0, .1, ..., 1} of max(precision[recall
   >= t])`` (``use_07_metric=True``), or the area under the precision envelope (VOC2010+):
   pad recall with 0 and 1 and precision with 0 and 0, make precision monotone from the
   right, and sum ``(r[i+1] - r[i]) * p[i+1]`` where recall changes.

A label without ground truth (n_pos = 0) has AP NaN, and ``map`` is the nanmean.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from scratchvision.validation import to_numpy


def _as_boxes(b, name: str, i: int) -> np.ndarray:
    arr = to_numpy(b).astype(np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name}[{i}] must have shape (K, 4) x1y1x2y2, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}[{i}] has non-finite coordinates")
    bad = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] row {k} = {arr[k].tolist()} has x2 < x1 or y2 < y1")
    return arr


def _as_vec(v, name: str, i: int, n: int, dtype) -> np.ndarray:
    arr = to_numpy(v).reshape(-1)
    if arr.size != n:
        raise ValueError(f"{name}[{i}] has {arr.size} entries for {n} boxes")
    return arr.astype(dtype)


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool = False) -> float:
    """AP from a recall/precision curve (11-point VOC07 or area under the envelope)."""
    rec = np.asarray(rec, np.float64)
    prec = np.asarray(prec, np.float64)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = prec[rec >= t].max() if (rec >= t).any() else 0.0
            ap += p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]           # precision envelope
    i = np.flatnonzero(mrec[1:] != mrec[:-1])                # where recall changes
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _inclusive_iou(box: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Devkit overlap of one box with (G, 4) boxes, +1 pixel widths."""
    iw = np.maximum(np.minimum(gts[:, 2], box[2]) - np.maximum(gts[:, 0], box[0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(gts[:, 3], box[3]) - np.maximum(gts[:, 1], box[1]) + 1.0, 0.0)
    inter = iw * ih
    union = ((box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
             + (gts[:, 2] - gts[:, 0] + 1.0) * (gts[:, 3] - gts[:, 1] + 1.0) - inter)
    return inter / union


def evaluate_voc(pred_boxes: Sequence, pred_labels: Sequence, pred_scores: Sequence,
                 gt_boxes: Sequence, gt_labels: Sequence, gt_difficults: Sequence | None = None,
                 iou_thresh: float = 0.5, use_07_metric: bool = False,
                 num_classes: int | None = None) -> dict:
    """VOC detection AP per class and mAP (the official devkit's rules; see module doc).

    Parameters
    ----------
    pred_boxes : list (one per image) of (K, 4) x1y1x2y2 arrays, inclusive pixel coords.
    pred_labels, pred_scores : lists of (K,) arrays.
    gt_boxes : list of (G, 4) arrays; gt_labels : list of (G,) int arrays.
    gt_difficults : optional list of (G,) bool arrays (default: none difficult).
    iou_thresh : a detection matches when IoU > iou_thresh.
    use_07_metric : 11-point AP (VOC2007) instead of the area under the envelope.
    num_classes : length of the returned ``ap`` (default: largest label + 1).

    Returns
    -------
    dict with ``ap`` (num_classes,) float64, NaN where a label has no (non-difficult)
    ground truth; ``map`` the nanmean; ``precision`` / ``recall``: lists indexed by label
    of the (D,) curves over that label's detections by score (None without ground truth).
    """
    n = len(gt_boxes)
    for name, seq in (("pred_boxes", pred_boxes), ("pred_labels", pred_labels),
                      ("pred_scores", pred_scores), ("gt_labels", gt_labels)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} images but gt_boxes has {n}")
    if gt_difficults is not None and len(gt_difficults) != n:
        raise ValueError(f"gt_difficults has {len(gt_difficults)} images but gt_boxes has {n}")
    if not 0.0 <= iou_thresh <= 1.0:
        raise ValueError(f"iou_thresh must be in [0, 1], got {iou_thresh}")
    pb, pl, ps, gb, gl, gd = [], [], [], [], [], []
    for i in range(n):
        b = _as_boxes(pred_boxes[i], "pred_boxes", i)
        pb.append(b)
        pl.append(_as_vec(pred_labels[i], "pred_labels", i, len(b), np.int64))
        s = _as_vec(pred_scores[i], "pred_scores", i, len(b), np.float64)
        if not np.isfinite(s).all():
            raise ValueError(f"pred_scores[{i}] has non-finite values")
        ps.append(s)
        g = _as_boxes(gt_boxes[i], "gt_boxes", i)
        gb.append(g)
        gl.append(_as_vec(gt_labels[i], "gt_labels", i, len(g), np.int64))
        gd.append(np.zeros(len(g), bool) if gt_difficults is None else
                  _as_vec(gt_difficults[i], "gt_difficults", i, len(g), bool))
    all_labels = np.concatenate(pl + gl) if n else np.zeros(0, np.int64)
    if all_labels.size and all_labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {int(all_labels.min())}")
    top = int(all_labels.max()) + 1 if all_labels.size else 0
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise ValueError(f"a label {top - 1} is out of range for num_classes={num_classes}")

    ap = np.full(num_classes, np.nan)
    precisions: list = [None] * num_classes
    recalls: list = [None] * num_classes
    for c in range(num_classes):
        gts = [gb[i][gl[i] == c] for i in range(n)]
        diff = [gd[i][gl[i] == c] for i in range(n)]
        n_pos = int(sum((~d).sum() for d in diff))
        if n_pos == 0:
            continue
        img_of = np.concatenate([np.full((pl[i] == c).sum(), i) for i in range(n)])
        boxes = np.concatenate([pb[i][pl[i] == c] for i in range(n)])
        scores = np.concatenate([ps[i][pl[i] == c] for i in range(n)])
        order = np.argsort(-scores, kind="stable")
        taken = [np.zeros(len(g), bool) for g in gts]
        tp = np.zeros(order.size)
        fp = np.zeros(order.size)
        for r, d in enumerate(order):
            i = img_of[d]
            g = gts[i]
            if len(g) == 0:
                fp[r] = 1
                continue
            ov = _inclusive_iou(boxes[d], g)
            j = int(np.argmax(ov))
            if ov[j] > iou_thresh:
                if diff[i][j]:
                    continue                                 # difficult: ignored
                if not taken[i][j]:
                    tp[r] = 1
                    taken[i][j] = True
                else:
                    fp[r] = 1                                # duplicate
            else:
                fp[r] = 1
        tp = np.cumsum(tp)
        fp = np.cumsum(fp)
        rec = tp / n_pos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap[c] = voc_ap(rec, prec, use_07_metric)
        precisions[c] = prec
        recalls[c] = rec
    with np.errstate(all="ignore"):
        mean = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
    return {"ap": ap, "map": mean, "precision": precisions, "recall": recalls}
