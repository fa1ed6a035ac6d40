"""Semantic segmentation metrics from a confusion matrix (FCN paper's definitions).

The confusion matrix ``C[i, j]`` counts pixels of true class ``i`` predicted as ``j``; it
is built in one ``bincount`` over ``gt * num_classes + pred`` for the pixels whose ground
truth is not ``ignore_index`` (255 = VOC's "void" border). From it:

- pixel accuracy      ``sum_i C[i, i] / sum C``
- class accuracy      ``C[i, i] / sum_j C[i, j]`` (recall of class i), mean over classes
- IoU of class i      ``C[i, i] / (sum_j C[i, j] + sum_j C[j, i] - C[i, i])``
- mIoU                mean IoU over classes present in the ground truth or the prediction
                      (NaN entries, i.e. 0/0, are left out, as ``nanmean``)

Confusion matrices of several images are simply summed (``confusion_matrix`` then
``segmentation_scores``), so dataset-level numbers are pixel-weighted, as in the
literature.
"""
from __future__ import annotations

import numpy as np

from scratchvision.validation import to_numpy


def confusion_matrix(pred, gt, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows = ground truth, columns = prediction."""
    pred = to_numpy(pred)
    gt = to_numpy(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} != gt shape {gt.shape}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if pred.dtype.kind not in "iub" or gt.dtype.kind not in "iub":
        raise TypeError(f"pred and gt must be integer label maps, got {pred.dtype}, {gt.dtype}")
    gt = gt.astype(np.int64).reshape(-1)
    pred = pred.astype(np.int64).reshape(-1)
    keep = gt != ignore_index if ignore_index is not None else np.ones(gt.size, bool)
    gt, pred = gt[keep], pred[keep]
    for name, arr in (("gt", gt), ("pred", pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            bad = arr[(arr < 0) | (arr >= num_classes)][0]
            raise ValueError(f"{name} has label {int(bad)} outside [0, {num_classes}) "
                             f"(ignore_index={ignore_index})")
    return np.bincount(gt * num_classes + pred,
                       minlength=num_classes ** 2).reshape(num_classes, num_classes)


def segmentation_scores(conf: np.ndarray) -> dict:
    """Per-class IoU, mIoU, pixel accuracy and mean class accuracy from a confusion matrix."""
    conf = np.asarray(conf, np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {conf.shape}")
    tp = np.diag(conf)
    gt_count = conf.sum(axis=1)
    pred_count = conf.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / (gt_count + pred_count - tp)
        class_acc = tp / gt_count
        total = conf.sum()
        pixel_acc = float(tp.sum() / total) if total > 0 else float("nan")
    nanmean = (lambda a: float(np.nanmean(a)) if np.isfinite(a).any() else float("nan"))
    return {"iou": iou, "miou": nanmean(iou), "pixel_acc": pixel_acc,
            "class_acc": class_acc, "mean_class_acc": nanmean(class_acc),
            "confusion": conf.astype(np.int64)}


def evaluate_segmentation(pred, gt, num_classes: int, ignore_index: int | None = 255) -> dict:
    """Segmentation metrics of predictions against ground truth label maps.

    Parameters
    ----------
    pred, gt : integer arrays of equal shape, or lists of them (one per image; sizes may
        differ between images). Pixels where ``gt == ignore_index`` are not counted.
    num_classes : number of classes (labels 0 .. num_classes - 1).

    Returns
    -------
    dict: ``iou`` (C,) with NaN for classes absent from both, ``miou``, ``pixel_acc``,
    ``class_acc`` (C,), ``mean_class_acc``, ``confusion`` (C, C) int64.
    """
    if isinstance(pred, (list, tuple)) or isinstance(gt, (list, tuple)):
        if len(pred) != len(gt):
            raise ValueError(f"{len(pred)} predictions for {len(gt)} ground truths")
        conf = np.zeros((num_classes, num_classes), np.int64)
        for p, g in zip(pred, gt):
            conf += confusion_matrix(p, g, num_classes, ignore_index)
    else:
        conf = confusion_matrix(pred, gt, num_classes, ignore_index)
    return segmentation_scores(conf)
