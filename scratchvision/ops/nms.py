"""Non-maximum suppression on arrays or Tensors, as ``torchvision.ops`` (plus Soft-NMS).

``nms(boxes, scores, iou_threshold)``: greedy NMS; a box is suppressed by a higher-ranked
kept box when their IoU is **greater than** ``iou_threshold``; ranks follow
``(-score, index)``, so equal scores keep the lower index first and the result is one
total order on every device. Returns int64 indices of the kept boxes, best first.

``batched_nms(boxes, scores, idxs, iou_threshold)``: NMS within each category ``idxs``
(boxes of different categories never suppress each other). Two strategies, as in
torchvision:

* **coordinate offset** (``_batched_nms_coordinate_trick``): shift every box of category
  k by ``k * (span + 1)`` along both axes, where ``span = max - min`` of all coordinates,
  so boxes of different categories cannot overlap, then run one NMS. (torchvision
  offsets by ``max + 1``, which fails to separate categories when coordinates are
  negative; the span does not.) The shift is done in float64; for float32 inputs of
  ordinary magnitude the shifted coordinates and their differences are exact, so the IoUs
  equal those of the unshifted boxes.
* **per-category loop** (``_batched_nms_vanilla``): one NMS per category, then the kept
  boxes are merged in ``(-score, index)`` order.

Both return the same indices in the same order. ``batched_nms`` uses the loop above
``BATCHED_NMS_LOOP_ABOVE`` boxes. Crossover, measured on the 2-core dev machine with
random boxes (corners uniform in 1000x1000, sides 10-200, 80 categories, IoU 0.5, float64,
median of 7; offset trick / loop, ms): 2k 0.56 / 1.47, 4k 1.38 / 2.16, 10k 4.86 / 5.09,
20k 12.3 / 11.9, 30k 22.3 / 19.0, 50k 48.2 / 37.1. Small inputs favour the single NMS
(the loop pays 80 masks and kernel calls); large ones favour the loop (its sorts and
scans stay within one category's few hundred boxes, in cache). The fast kernel prunes
candidates by x-coordinate, and the offsets put each category in its own x-range, so
the single NMS never compares boxes of different categories.

``soft_nms``: Bodla et al. 2017 (see ``kernels/nms/reference.py``); returns
``(keep, scores)`` where ``scores`` are the decayed scores of the kept boxes.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.kernels import nms as K
from scratchvision.ops._utils import unwrap, wrap

# Above this many boxes the per-category loop wins (measurements in the module docstring).
BATCHED_NMS_LOOP_ABOVE = 20_000


def nms(boxes, scores, iou_threshold: float, *, impl: str | None = None):
    """Greedy NMS.

    Parameters
    ----------
    boxes : (N, 4) array or Tensor, xyxy.
    scores : (N,) array or Tensor.
    iou_threshold : float; boxes with IoU > iou_threshold with a kept box are dropped.
    impl : kernel version: None (``cpu`` for NumPy, ``cuda`` for CuPy data) or one of
        ``kernels.nms.VERSIONS.impls`` (``"reference"``, ``"cpu"``, ``"cuda"``).

    Returns
    -------
    (K,) int64 indices of the kept boxes sorted by decreasing score (ties: lower index).
    """
    b, t = unwrap(boxes)
    s, _ = unwrap(scores)
    return wrap(K.nms(b, s, iou_threshold, impl=impl), t)


def _check_idxs(idxs, n, xp):
    idxs = xp.asarray(idxs)
    if idxs.ndim != 1 or idxs.shape[0] != n:
        raise ValueError(f"idxs must have shape (N,) with N = boxes.shape[0] = {n}, got "
                         f"{tuple(idxs.shape)}")
    if idxs.dtype.kind not in "iub":
        if idxs.size and bool((idxs != xp.floor(idxs)).any()):
            raise ValueError("idxs must hold integer category indices")
    return idxs.astype(np.int64)


def _batched_nms_coordinate_trick(boxes, scores, idxs, iou_threshold, impl=None):
    xp = get_array_module(boxes)
    boxes = xp.asarray(boxes, dtype=np.float64)
    if boxes.shape[0] == 0:
        return xp.zeros(0, np.int64)
    span = float(boxes.max() - boxes.min())
    offsets = (idxs - idxs.min()).astype(np.float64) * (span + 1.0)   # (N,)
    return K.nms(boxes + offsets[:, None], scores, iou_threshold, impl=impl)


def _batched_nms_vanilla(boxes, scores, idxs, iou_threshold, impl=None):
    xp = get_array_module(boxes)
    keep_mask = xp.zeros(boxes.shape[0], dtype=bool)
    for k in xp.unique(idxs).tolist():
        members = xp.nonzero(idxs == k)[0]
        keep_mask[members[K.nms(boxes[members], scores[members], iou_threshold,
                                   impl=impl)]] = True
    keep = xp.nonzero(keep_mask)[0]
    order = xp.argsort(-xp.asarray(scores, dtype=np.float64)[keep], kind="stable")
    return keep[order].astype(np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold: float, *, impl: str | None = None):
    """NMS within each category.

    Parameters
    ----------
    boxes : (N, 4) xyxy; scores : (N,); idxs : (N,) integer category of each box.
    iou_threshold : float.
    impl : kernel version of the NMS calls, as in ``nms``.

    Returns
    -------
    (K,) int64 indices of the kept boxes by decreasing score (ties: lower index).
    """
    b, t = unwrap(boxes)
    s, _ = unwrap(scores)
    i, _ = unwrap(idxs)
    b, s = K.check_boxes_scores(b, s)
    xp = get_array_module(b)
    idxs = _check_idxs(i, b.shape[0], xp)
    K.VERSIONS.resolve(impl, b)              # a wrong impl fails even for empty input
    if b.shape[0] == 0:
        return wrap(xp.zeros(0, np.int64), t)
    if b.shape[0] > BATCHED_NMS_LOOP_ABOVE:
        keep = _batched_nms_vanilla(b, s, idxs, iou_threshold, impl)
    else:
        keep = _batched_nms_coordinate_trick(b, s, idxs, iou_threshold, impl)
    return wrap(keep, t)


def soft_nms(boxes, scores, sigma: float = 0.5, score_threshold: float = 0.001,
             method: str = "gaussian", iou_threshold: float = 0.3, *,
             impl: str | None = None):
    """Soft-NMS (Bodla et al., ICCV 2017).

    Parameters
    ----------
    boxes : (N, 4) xyxy; scores : (N,).
    sigma : Gaussian decay ``exp(-IoU^2 / sigma)`` (method 'gaussian').
    score_threshold : boxes whose (decayed) score is below it are dropped.
    method : 'gaussian' or 'linear' (``s *= 1 - IoU`` when IoU > iou_threshold).
    iou_threshold : N_t of the linear method.
    impl : kernel version, as in ``nms``.

    Returns
    -------
    keep : (K,) int64 indices in picking order; scores : (K,) their decayed scores
    (float64 for arrays; the scores' dtype for Tensors).
    """
    b, t = unwrap(boxes)
    s, _ = unwrap(scores)
    keep, new_scores = K.soft_nms(b, s, sigma=sigma, iou_threshold=iou_threshold,
                                  score_threshold=score_threshold, method=method,
                                  impl=impl)
    if t:
        new_scores = new_scores.astype(get_array_module(s).asarray(s).dtype)
    return wrap(keep, t), wrap(new_scores, t)
