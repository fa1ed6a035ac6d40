"""COCO detection / instance-segmentation metrics, a re-implementation of pycocotools' COCOeval.

``evaluate_coco(gt, results, iou_type)`` returns the 12 standard numbers (AP, AP50, AP75,
APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl) equal to pycocotools' ``COCOeval.stats``.
pycocotools is only the test oracle; every rule below is re-stated from its behaviour:

1. **Groups.** Ground truth and detections are grouped per (image, category). Inside a
   group detections are sorted by descending score (stable: ties keep file order) and
   cut to the largest ``maxDets`` (100).
2. **IoU.** Boxes are COCO ``[x, y, w, h]`` with continuous coordinates (area = w * h, no
   +1). Masks use the RLE intersection. For a *crowd* ground truth (``iscrowd=1``) the
   union is replaced by the detection's own area: ``IoU = |d ∩ g| / |d|``, so any number
   of detections inside a crowd region can match it.
3. **Ignore flags.** A ground truth is *ignored* when it is a crowd, or when its ``area``
   field (the annotation's, not recomputed) is outside the area range being evaluated
   (all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10]; ends inclusive).
   Ignored ground truths are moved behind the others.
4. **Greedy matching,** for each IoU threshold t in .50:.05:.95: each detection (by
   score) takes the unmatched (or crowd) ground truth of highest IoU >= t, preferring a
   non-ignored one (once a non-ignored match is found the scan stops at the first ignored
   one). A detection matched to an ignored ground truth is ignored; an unmatched detection
   whose own area is outside the area range is ignored too.
5. **Accumulate,** per category, area range and maxDets in (1, 10, 100): take each image's
   first maxDets detections, merge all images' by score (stable), and with
   ``tp``/``fp`` cumulative sums over non-ignored detections: recall = tp / #non-ignored
   GT, precision = tp / (tp + fp + eps); precision is made monotone (running max from
   the right) and read at the 101 recall points 0:.01:1 (first index with recall >=
   r; 0 beyond the last recall). A category without non-ignored GT is left out (-1).
6. **Summaries** average precision over thresholds, recall points and categories
   (entries that are -1 excluded); AR averages the final recall over thresholds and
   categories.

One deliberate difference: pycocotools records a match by the ground truth's ``id`` and
tests it for truth, so a detection matched to an annotation whose id is 0 counts as a
false positive there. Here a match is a match whatever the id (COCO's own files number
annotations from 1, where both agree). Ground truth without ``area`` (pycocotools fails)
uses the box's w * h or the mask's pixel count.

Speed: pycocotools loops in Python over every (image, category, area range) and every
detection. Here the IoUs of all groups and the greedy matching of all groups x area ranges
x thresholds run in two Numba kernels over flat arrays with per-group offsets
(``_box_ious`` / ``_rle_ious`` and ``_match``), and the accumulation is NumPy over each
category's whole detection list at once.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit, prange

from scratchvision.data import mask_utils

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RNG = ((0.0, 1e10), (0.0, 32.0 ** 2), (32.0 ** 2, 96.0 ** 2), (96.0 ** 2, 1e10))
AREA_NAMES = ("all", "small", "medium", "large")


# ----------------------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _box_ious(dt_box, gt_box, gt_crowd, g_dt0, g_nd, g_gt0, g_ng, g_iou0, out):
    """IoU of every (detection, ground truth) pair of every group; boxes are (x, y, w, h).

    Group g owns detections dt0..dt0+nd, ground truths gt0..gt0+ng and the row-major
    (nd, ng) block of ``out`` starting at iou0.
    """
    for g in prange(g_dt0.size):
        for i in range(g_nd[g]):
            d = g_dt0[g] + i
            dx, dy, dw, dh = dt_box[d, 0], dt_box[d, 1], dt_box[d, 2], dt_box[d, 3]
            da = dw * dh
            for j in range(g_ng[g]):
                k = g_gt0[g] + j
                gx, gy, gw, gh = gt_box[k, 0], gt_box[k, 1], gt_box[k, 2], gt_box[k, 3]
                o = 0.0
                iw = min(dw + dx, gw + gx) - max(dx, gx)
                ih = min(dh + dy, gh + gy) - max(dy, gy)
                if iw > 0 and ih > 0:
                    inter = iw * ih
                    # crowd: the detection's own area replaces the union
                    union = da if gt_crowd[k] else da + gw * gh - inter
                    o = inter / union
                out[g_iou0[g] + i * g_ng[g] + j] = o


@njit(cache=True)
def _rle_inter(a, a0, na, b, b0, nb):  # pragma: no cover - compiled
    """Pixels set in both RLEs (counts a[a0:a0+na], b[b0:b0+nb]): a merge walk of runs."""
    ia = 0
    ib = 0
    ca = a[a0] if na > 0 else 0
    cb = b[b0] if nb > 0 else 0
    va = False                                     # value of the current run (0-run first)
    vb = False
    inter = 0
    while ia < na and ib < nb:
        c = min(ca, cb)
        if va and vb:
            inter += c
        ca -= c
        cb -= c
        if ca == 0:
            ia += 1
            if ia < na:
                ca = a[a0 + ia]
            va = not va
        if cb == 0:
            ib += 1
            if ib < nb:
                cb = b[b0 + ib]
            vb = not vb
    return inter


@njit(parallel=True, cache=True)
def _rle_ious(dt_cnt, dt_c0, dt_nc, dt_area, gt_cnt, gt_c0, gt_nc, gt_area, gt_crowd,
              g_dt0, g_nd, g_gt0, g_ng, g_iou0, out):
    """Mask IoU of every pair of every group, from RLE counts (no decoding)."""
    for g in prange(g_dt0.size):
        for i in range(g_nd[g]):
            d = g_dt0[g] + i
            for j in range(g_ng[g]):
                k = g_gt0[g] + j
                inter = _rle_inter(dt_cnt, dt_c0[d], dt_nc[d], gt_cnt, gt_c0[k], gt_nc[k])
                o = 0.0
                if inter > 0:
                    union = dt_area[d] if gt_crowd[k] else dt_area[d] + gt_area[k] - inter
                    o = inter / union
                out[g_iou0[g] + i * g_ng[g] + j] = o


@njit(parallel=True, cache=True)
def _match(ious, g_iou0, g_dt0, g_nd, g_gt0, g_ng, gt_ignore, gt_crowd, gt_area, dt_area,
           area_lo, area_hi, iou_thrs, dt_matched, dt_ignore, gt_ign_out):
    """Greedy matching of every (group, area range), all thresholds (COCOeval.evaluateImg).

    Outputs, for area range a, detection d (flat, score order in its group), threshold t:
    ``dt_matched[a, t, d]`` and ``dt_ignore[a, t, d]``; ``gt_ign_out[a, k]`` the ground
    truth's ignore flag in that range.
    """
    n_groups = g_dt0.size
    n_area = area_lo.size
    n_thr = iou_thrs.size
    for job in prange(n_groups * n_area):
        g = job // n_area                          # (g, a) indexes one group x area range
        a = job % n_area
        nd = g_nd[g]
        ng = g_ng[g]
        gt0 = g_gt0[g]
        dt0 = g_dt0[g]
        # ground truths in order: non-ignored first, then ignored (stable)
        ign = np.empty(ng, np.bool_)
        for j in range(ng):
            ar = gt_area[gt0 + j]
            ign[j] = gt_ignore[gt0 + j] or ar < area_lo[a] or ar > area_hi[a]
            gt_ign_out[a, gt0 + j] = ign[j]
        order = np.empty(ng, np.int64)
        p = 0
        for j in range(ng):
            if not ign[j]:
                order[p] = j
                p += 1
        for j in range(ng):
            if ign[j]:
                order[p] = j
                p += 1
        for t in range(n_thr):
            gt_taken = np.zeros(ng, np.bool_)
            for i in range(nd):
                best = min(iou_thrs[t], 1 - 1e-10)
                m = -1
                for q in range(ng):
                    j = order[q]
                    if gt_taken[j] and not gt_crowd[gt0 + j]:
                        continue                   # already matched (crowds match many)
                    if m > -1 and not ign[m] and ign[j]:
                        break                      # a real match beats any ignored gt
                    o = ious[g_iou0[g] + i * ng + j]
                    if o < best:
                        continue
                    best = o
                    m = j
                d = dt0 + i
                if m == -1:
                    dt_matched[a, t, d] = False
                    ar = dt_area[d]
                    dt_ignore[a, t, d] = ar < area_lo[a] or ar > area_hi[a]
                else:
                    dt_matched[a, t, d] = True
                    dt_ignore[a, t, d] = ign[m]
                    gt_taken[m] = True


# ----------------------------------------------------------------------------- inputs
def _load(obj: Any, what: str):
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{what} file {path} is not valid JSON: {e}") from None
    return obj


def _check_box(box, where: str) -> list[float]:
    """One box validated (the slow path, used to name the culprit)."""
    if not isinstance(box, (list, tuple, np.ndarray)) or len(box) != 4:
        raise ValueError(f"{where}: 'bbox' must be [x, y, w, h], got {box!r}")
    try:
        b = [float(v) for v in box]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: 'bbox' must hold numbers, got {box!r}") from None
    if not all(np.isfinite(b)):
        raise ValueError(f"{where}: 'bbox' has a non-finite value {b}")
    if b[2] < 0 or b[3] < 0:
        raise ValueError(f"{where}: 'bbox' has negative width/height {b}")
    return b


def _boxes_array(raw: list, name: str) -> np.ndarray:
    """(N, 4) float64 of the raw 'bbox' values, validated in one go; errors name the item."""
    try:
        arr = np.asarray(raw, np.float64).reshape(len(raw), 4)
        ok = np.isfinite(arr).all() and (arr[:, 2:] >= 0).all()
    except (TypeError, ValueError):
        ok = False
    if not ok:
        for n, b in enumerate(raw):
            _check_box(b, f"{name}[{n}]")
    return arr


def _prepare(gt: dict, results: list, iou_type: str):
    """Flat, group-sorted arrays of ground truths and detections (see the module doc)."""
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"ground truth is missing the '{key}' field")
    img_ids = sorted({int(im["id"]) for im in gt["images"]})
    img_index = {i: n for n, i in enumerate(img_ids)}
    img_hw = {int(im["id"]): (int(im.get("height", 0)), int(im.get("width", 0)))
              for im in gt["images"]}
    cat_ids = sorted({int(c["id"]) for c in gt["categories"]})
    cat_index = {c: n for n, c in enumerate(cat_ids)}
    n_img = len(img_ids)

    def counts_of(ann, where):
        h, w = img_hw[int(ann["image_id"])]
        if "segmentation" not in ann:
            raise ValueError(f"{where}: iou_type='segm' needs a 'segmentation'")
        try:
            return mask_utils.segmentation_to_counts(ann["segmentation"], h, w)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}: bad 'segmentation': {e}") from None

    # ---- ground truth (annotation order inside a group, as pycocotools)
    g_key, g_box, g_crowd, g_area, g_cnt = [], [], [], [], []
    for n, ann in enumerate(gt["annotations"]):
        where = f"annotations[{n}]"
        for key in ("image_id", "category_id"):
            if key not in ann:
                raise ValueError(f"{where} has no '{key}'")
        im, cat = int(ann["image_id"]), int(ann["category_id"])
        if im not in img_index:
            raise ValueError(f"{where}: image_id {im} is not in 'images'")
        if cat not in cat_index:
            continue
        crowd = bool(ann.get("iscrowd", 0))
        if iou_type == "bbox":
            if "bbox" not in ann:
                raise ValueError(f"{where} has no 'bbox'")
            box = ann["bbox"]
        else:
            cnt = counts_of(ann, where)
            g_cnt.append(cnt)
            box = (0.0, 0.0, 0.0, 0.0)
        area = ann.get("area")
        if area is None:        # pycocotools needs 'area'; fall back to the region's area
            if iou_type == "bbox":
                b = _check_box(box, where)
                area = b[2] * b[3]
            else:
                area = mask_utils.counts_area(cnt)
        g_key.append(cat_index[cat] * n_img + img_index[im])
        g_box.append(box)
        g_crowd.append(crowd)
        g_area.append(area)
    g_box_arr = _boxes_array(g_box, "annotations") if iou_type == "bbox" else \
        np.zeros((len(g_box), 4))

    # ---- detections
    results = list(results)
    d_key, d_box, d_score, d_area, d_cnt = [], [], [], [], []
    for n, det in enumerate(results):
        where = f"results[{n}]"
        for key in ("image_id", "category_id", "score"):
            if key not in det:
                raise ValueError(f"{where} has no '{key}'")
        im, cat = int(det["image_id"]), int(det["category_id"])
        if im not in img_index:
            raise ValueError(f"{where}: image_id {im} is not in the ground truth's images")
        score = float(det["score"])
        if not math.isfinite(score):
            raise ValueError(f"{where}: score {score} is not finite")
        if iou_type == "bbox":
            if "bbox" not in det:
                raise ValueError(f"{where} has no 'bbox'")
            box = det["bbox"]
            area = 0.0                                   # w * h, computed below
        else:
            cnt = counts_of(det, where)
            area = float(mask_utils.counts_area(cnt))
            box = (0.0, 0.0, 0.0, 0.0)
        if iou_type == "segm":
            d_cnt.append(cnt)
        d_key.append(cat_index.get(cat, -1) * n_img + img_index[im])
        d_box.append(box)
        d_score.append(score)
        d_area.append(area)
    d_box_arr = _boxes_array(d_box, "results") if iou_type == "bbox" else \
        np.zeros((len(d_box), 4))
    d_area = np.asarray(d_area, np.float64)
    if iou_type == "bbox":
        d_area = d_box_arr[:, 2] * d_box_arr[:, 3]
    g_key = np.asarray(g_key, np.int64)
    d_key = np.asarray(d_key, np.int64).reshape(-1)
    known = d_key >= 0          # detections of categories not in the ground truth: dropped
    d_score = np.asarray(d_score, np.float64)
    g_order = np.argsort(g_key, kind="stable")
    # detections: by group, then by descending score (stable: file order on ties)
    d_order = np.lexsort((-d_score, d_key)) if d_key.size else np.zeros(0, np.int64)
    d_order = d_order[known[d_order]] if d_order.size else d_order
    gts = dict(key=g_key[g_order], box=g_box_arr.reshape(-1, 4)[g_order],
               crowd=np.asarray(g_crowd, np.bool_)[g_order],
               area=np.asarray(g_area, np.float64)[g_order],
               cnt=[g_cnt[i] for i in g_order] if iou_type == "segm" else None)
    dts = dict(key=d_key[d_order], box=d_box_arr.reshape(-1, 4)[d_order],
               score=d_score[d_order], area=d_area[d_order],
               cnt=[d_cnt[i] for i in d_order] if iou_type == "segm" else None)
    # keep the top max(MAX_DETS) detections of each group
    rank = _rank_in_group(dts["key"])
    keep = rank < MAX_DETS[-1]
    for k in ("key", "box", "score", "area"):
        dts[k] = dts[k][keep]
    if dts["cnt"] is not None:
        dts["cnt"] = [c for c, kp in zip(dts["cnt"], keep) if kp]
    dts["rank"] = rank[keep]
    return gts, dts, len(cat_ids), n_img


def _rank_in_group(keys: np.ndarray) -> np.ndarray:
    """Position of each element inside its run of equal (sorted) keys."""
    if keys.size == 0:
        return np.zeros(0, np.int64)
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    first = np.repeat(start, np.diff(np.r_[start, keys.size]))
    return np.arange(keys.size) - first


def _flat_counts(cnts: list[np.ndarray]):
    n = np.array([c.size for c in cnts], np.int64)
    c0 = np.concatenate(([0], np.cumsum(n)[:-1])).astype(np.int64) if n.size else n
    flat = np.concatenate(cnts).astype(np.int64) if cnts else np.zeros(0, np.int64)
    return flat, c0, n


# ----------------------------------------------------------------------------- evaluation
def coco_eval_arrays(gt: dict | str | Path, results: list | str | Path,
                     iou_type: str = "bbox") -> dict[str, np.ndarray]:
    """The full COCOeval ``accumulate`` arrays.

    Returns
    -------
    dict with ``precision`` (T=10, R=101, K, A=4, M=3), ``recall`` (T, K, A, M) and
    ``scores`` (T, R, K, A, M), -1 where a category has no non-ignored ground truth;
    ``cat_ids`` (K,).
    """
    gt = _load(gt, "ground truth")
    results = _load(results, "results")
    gts, dts, n_cat, n_img = _prepare(gt, results, iou_type)
    T, R, A, M = len(IOU_THRS), len(REC_THRS), len(AREA_RNG), len(MAX_DETS)
    precision = -np.ones((T, R, n_cat, A, M))
    recall = -np.ones((T, n_cat, A, M))
    scores = -np.ones((T, R, n_cat, A, M))
    cat_ids = np.array(sorted(int(c["id"]) for c in gt["categories"]), np.int64)

    # ---- groups: every key with a gt or a detection
    keys = np.union1d(gts["key"], dts["key"])
    n_groups = keys.size
    g_gt0 = np.searchsorted(gts["key"], keys, side="left").astype(np.int64)
    g_ng = np.searchsorted(gts["key"], keys, side="right").astype(np.int64) - g_gt0
    g_dt0 = np.searchsorted(dts["key"], keys, side="left").astype(np.int64)
    g_nd = np.searchsorted(dts["key"], keys, side="right").astype(np.int64) - g_dt0
    sizes = g_nd * g_ng
    g_iou0 = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) \
        if n_groups else np.zeros(0, np.int64)
    ious = np.zeros(int(sizes.sum()), np.float64)
    n_dt = dts["key"].size
    n_gt = gts["key"].size
    if n_groups and ious.size:
        if iou_type == "bbox":
            _box_ious(dts["box"], gts["box"], gts["crowd"], g_dt0, g_nd, g_gt0, g_ng,
                      g_iou0, ious)
        else:
            dc, dc0, dnc = _flat_counts(dts["cnt"])
            gc, gc0, gnc = _flat_counts(gts["cnt"])
            g_cnt_area = np.array([mask_utils.counts_area(c) for c in gts["cnt"]], np.float64)
            _rle_ious(dc, dc0, dnc, dts["area"], gc, gc0, gnc, g_cnt_area, gts["crowd"],
                      g_dt0, g_nd, g_gt0, g_ng, g_iou0, ious)
    area_lo = np.array([a[0] for a in AREA_RNG])
    area_hi = np.array([a[1] for a in AREA_RNG])
    dt_matched = np.zeros((A, T, n_dt), np.bool_)
    dt_ignore = np.zeros((A, T, n_dt), np.bool_)
    gt_ign = np.zeros((A, n_gt), np.bool_)
    if n_groups:
        _match(ious, g_iou0, g_dt0, g_nd, g_gt0, g_ng, gts["crowd"], gts["crowd"],
               gts["area"], dts["area"], area_lo, area_hi, IOU_THRS, dt_matched, dt_ignore,
               gt_ign)

    # ---- accumulate per category: detections of category k are one contiguous run,
    # already ordered by image then score (the order pycocotools concatenates them in)
    dt_cat = dts["key"] // max(n_img, 1)
    gt_cat = gts["key"] // max(n_img, 1)
    d_lo = np.searchsorted(dt_cat, np.arange(n_cat), side="left")
    d_hi = np.searchsorted(dt_cat, np.arange(n_cat), side="right")
    g_lo = np.searchsorted(gt_cat, np.arange(n_cat), side="left")
    g_hi = np.searchsorted(gt_cat, np.arange(n_cat), side="right")
    eps = np.spacing(1)
    for k in range(n_cat):
        ds = slice(d_lo[k], d_hi[k])
        rank_k = dts["rank"][ds]
        score_k = dts["score"][ds]
        for a in range(A):
            npig = int(np.count_nonzero(~gt_ign[a, g_lo[k]:g_hi[k]]))
            if npig == 0:
                continue
            for m, max_det in enumerate(MAX_DETS):
                sel = np.flatnonzero(rank_k < max_det)
                order = np.argsort(-score_k[sel], kind="mergesort")
                idx = sel[order]
                s_sorted = score_k[idx]
                dtm = dt_matched[a][:, ds][:, idx]             # (T, nd)
                dti = dt_ignore[a][:, ds][:, idx]
                tps = dtm & ~dti
                fps = ~dtm & ~dti
                tp_sum = np.cumsum(tps, axis=1).astype(float)
                fp_sum = np.cumsum(fps, axis=1).astype(float)
                nd = idx.size
                rc = tp_sum / npig                             # (T, nd)
                pr = tp_sum / (fp_sum + tp_sum + eps)
                recall[:, k, a, m] = rc[:, -1] if nd else 0
                if nd == 0:
                    precision[:, :, k, a, m] = 0
                    scores[:, :, k, a, m] = 0
                    continue
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(T):
                    inds = np.searchsorted(rc[t], REC_THRS, side="left")
                    valid = inds < nd
                    q = np.zeros(R)
                    ss = np.zeros(R)
                    # pycocotools stops at the first recall point beyond the last recall
                    stop = np.flatnonzero(~valid)
                    n_ok = stop[0] if stop.size else R
                    q[:n_ok] = pr[t, inds[:n_ok]]
                    ss[:n_ok] = s_sorted[inds[:n_ok]]
                    precision[t, :, k, a, m] = q
                    scores[t, :, k, a, m] = ss
    return dict(precision=precision, recall=recall, scores=scores, cat_ids=cat_ids)


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The 12 COCO numbers from the accumulate arrays (COCOeval.summarize)."""
    def mean(s):
        s = s[s > -1]
        return float(np.mean(s)) if s.size else -1.0

    def ap(iou=None, area=0, m=2):
        s = precision
        if iou is not None:
            s = s[np.where(iou == IOU_THRS)[0]]
        return mean(s[:, :, :, area, m])

    def ar(area=0, m=2):
        return mean(recall[:, :, area, m])

    vals = [ap(), ap(0.5), ap(0.75), ap(area=1), ap(area=2), ap(area=3),
            ar(m=0), ar(m=1), ar(), ar(1), ar(2), ar(3)]
    return dict(zip(STAT_NAMES, vals))


def evaluate_coco(gt: dict | str | Path, results: list | str | Path,
                  iou_type: str = "bbox") -> dict[str, float]:
    """COCO AP/AR of detections (pycocotools COCOeval semantics, our own implementation).

    Parameters
    ----------
    gt : COCO-format dict (``images``, ``annotations``, ``categories``) or a JSON path.
    results : list of ``{'image_id', 'category_id', 'score', 'bbox': [x, y, w, h]}``
        (``'segmentation'`` RLE/polygons for ``iou_type='segm'``), or a JSON path.
    iou_type : ``'bbox'`` or ``'segm'``.

    Returns
    -------
    dict with AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (floats;
    -1 where nothing could be measured, as pycocotools), plus ``per_class_ap`` (K,) AP at
    .50:.95 per category (NaN without ground truth) and ``cat_ids`` (K,).
    """
    arrays = coco_eval_arrays(gt, results, iou_type)
    out: dict[str, Any] = summarize(arrays["precision"], arrays["recall"])
    p = arrays["precision"][:, :, :, 0, 2]                   # (T, R, K)
    with np.errstate(invalid="ignore"):
        per = np.where((p > -1).any(axis=(0, 1)),
                       np.where(p > -1, p, 0).sum(axis=(0, 1)) / np.maximum(
                           (p > -1).sum(axis=(0, 1)), 1), np.nan)
    out["per_class_ap"] = per
    out["cat_ids"] = arrays["cat_ids"]
    return out


# ----------------------------------------------------------------------------- results I/O
def detections_to_coco_results(image_ids, boxes, scores, labels, masks=None,
                               label_to_cat_id=None) -> list[dict]:
    """COCO results list from per-image detections.

    Parameters
    ----------
    image_ids : sequence of int, one per image.
    boxes : list of (K_i, 4) arrays, x1y1x2y2 (converted to COCO ``[x, y, w, h]``).
    scores, labels : lists of (K_i,) arrays.
    masks : optional list of (K_i, H, W) binary masks, written as compressed RLE.
    label_to_cat_id : optional mapping (dict or array) from our label to a COCO category id.
    """
    out = []
    n = len(image_ids)
    for name, seq in (("boxes", boxes), ("scores", scores), ("labels", labels)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} image_ids")
    for i, im in enumerate(image_ids):
        b = np.asarray(boxes[i], np.float64).reshape(-1, 4)
        s = np.asarray(scores[i], np.float64).reshape(-1)
        lab = np.asarray(labels[i]).reshape(-1)
        if not (len(b) == len(s) == len(lab)):
            raise ValueError(f"image {i}: boxes {b.shape}, scores {s.shape}, labels "
                             f"{lab.shape} disagree")
        if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise ValueError(f"image {i}: boxes must be x1y1x2y2 with x2 >= x1, y2 >= y1")
        for j in range(len(b)):
            cat = int(lab[j]) if label_to_cat_id is None else int(label_to_cat_id[int(lab[j])])
            det = {"image_id": int(im), "category_id": cat,
                   "bbox": [float(b[j, 0]), float(b[j, 1]), float(b[j, 2] - b[j, 0]),
                            float(b[j, 3] - b[j, 1])],
                   "score": float(s[j])}
            if masks is not None:
                det["segmentation"] = mask_utils.encode(np.asarray(masks[i][j]) > 0)
            out.append(det)
    return out


def write_coco_results(path: str | Path, results: list[dict]) -> Path:
    """Write a COCO results list as JSON (the format COCO's evaluation server reads)."""
    path = Path(path)
    path.write_text(json.dumps(results))
    return path
