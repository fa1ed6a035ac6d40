"""Benchmark family ``eval``: COCO evaluation against pycocotools, Shapes generation rate.

Cases:

- ``coco bbox``: ``evaluate_coco`` against pycocotools' ``COCO.loadRes`` + ``COCOeval``
  (evaluate, accumulate, summarize) on the same synthetic ground truth: 5,000 images
  (200 with ``--quick``) of 640x480, 1-7 objects each in 20 categories, 20 detections per
  image (jittered copies of the objects and random boxes). Goal: time <= pycocotools'.
- ``coco segm``: the same with masks (polygon ground truth, compressed-RLE detections) on
  500 images (50 with ``--quick``) of 160x120.
- ``shapes``: Shapes images generated per second (128x128, up to 4 objects).

The stats of both COCO implementations are compared in the same run (the max absolute
difference is printed in the note).
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings

import numpy as np

from benchmarks.harness import Row, timed_row, try_import
from scratchvision.data import Shapes, mask_utils
from scratchvision.eval import evaluate_coco
from scratchvision.eval.coco import STAT_NAMES


def make_coco_case(n_images: int, dets_per_image: int = 20, n_cats: int = 20,
                   segm: bool = False, seed: int = 0):
    """Synthetic COCO ground truth and results (see the module doc)."""
    rng = np.random.default_rng(seed)
    W, H = (160, 120) if segm else (640, 480)
    images = [{"id": i + 1, "height": H, "width": W} for i in range(n_images)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cats)]
    anns, res = [], []

    def poly(b):
        x, y, w, h = b
        return [x, y, x + w, y, x + 0.8 * w, y + h, x, y + 0.9 * h]

    for im in images:
        k = int(rng.integers(1, 8))
        wh = rng.random((k, 2)) * [W / 3, H / 3] + 4
        xy = rng.random((k, 2)) * ([W, H] - wh)
        cs = rng.integers(1, n_cats + 1, k)
        for j in range(k):
            box = [*xy[j], *wh[j]]
            a = {"id": len(anns) + 1, "image_id": im["id"], "category_id": int(cs[j]),
                 "bbox": box, "area": float(wh[j].prod()), "iscrowd": int(rng.random() < .03)}
            if segm:
                a["segmentation"] = [poly(box)]
            anns.append(a)
        for _ in range(dets_per_image):
            if rng.random() < 0.7:
                g = int(rng.integers(k))
                box = np.r_[xy[g] + rng.normal(0, 4, 2), np.maximum(wh[g] + rng.normal(0, 4, 2),
                                                                   1)]
                cat = int(cs[g]) if rng.random() < 0.8 else int(rng.integers(1, n_cats + 1))
            else:
                wh2 = rng.random(2) * [W / 3, H / 3] + 4
                box = np.r_[rng.random(2) * ([W, H] - wh2), wh2]
                cat = int(rng.integers(1, n_cats + 1))
            box = np.clip(box, 0, [W - 1, H - 1, W, H])
            d = {"image_id": im["id"], "category_id": cat, "score": float(rng.random())}
            if segm:
                d["segmentation"] = mask_utils.encode(
                    mask_utils.polygons_to_mask([poly(box)], H, W))
            else:
                d["bbox"] = [float(v) for v in box]
            res.append(d)
    return {"images": images, "annotations": anns, "categories": cats}, res


def _pycocotools(gt: dict, res: list, iou_type: str, calls: int):
    coco_mod = try_import("pycocotools.coco")
    eval_mod = try_import("pycocotools.cocoeval")
    if coco_mod is None or eval_mod is None:
        return None
    coco_mod = __import__("pycocotools.coco", fromlist=["COCO"])
    eval_mod = __import__("pycocotools.cocoeval", fromlist=["COCOeval"])
    if iou_type == "segm":        # pycocotools wants the compressed counts as bytes
        res = copy.deepcopy(res)
        for d in res:
            d["segmentation"]["counts"] = d["segmentation"]["counts"].encode()

    # loadRes adds keys to the result dicts it is given: each call gets fresh copies,
    # made ahead of time so that copying is not timed
    fresh = [[dict(d) for d in res] for _ in range(calls)]

    def run():
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coco = coco_mod.COCO()
            coco.dataset = gt
            coco.createIndex()
            ev = eval_mod.COCOeval(coco, coco.loadRes(fresh.pop()), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev.stats
    return run


def run(quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    for iou_type, n in (("bbox", 200 if quick else 5000), ("segm", 50 if quick else 500)):
        gt, res = make_coco_case(n, segm=iou_type == "segm")
        case = f"coco {iou_type} {n} img x 20 det"
        ours = evaluate_coco(gt, res, iou_type)
        peer_reps = dict(warmup=1 if quick else 0, repeat=3)
        ref_fn = _pycocotools(gt, res, iou_type, calls=1 + sum(peer_reps.values()))
        note = ""
        if ref_fn is not None:
            ref = ref_fn()
            diff = max(abs(ours[k] - v) for k, v in zip(STAT_NAMES, ref))
            note = f"max abs diff of the 12 stats {diff:.1e}; AP {ours['AP']:.4f}"
        reps = dict(warmup=1, repeat=3 if quick else 5)
        rows.append(timed_row(case, "scratchvision", lambda: evaluate_coco(gt, res, iou_type),
                              work=len(res), work_unit="dets/s", note=note, **reps))
        if ref_fn is not None:
            rows.append(timed_row(case, "pycocotools", ref_fn, peer=True, work=len(res),
                                  work_unit="dets/s", **peer_reps))
    n = 100 if quick else 1000
    ds = Shapes("train", n, image_size=128)
    rows.append(timed_row(f"shapes 128px x {n}", "scratchvision",
                          lambda: [ds[i] for i in range(n)], work=n, work_unit="images/s",
                          warmup=1, repeat=3))
    return rows


def summary(rows: list[Row]) -> str:
    lines = []
    for case in dict.fromkeys(r.case for r in rows if r.case.startswith("coco")):
        ours = [r for r in rows if r.case == case and not r.peer]
        peer = [r for r in rows if r.case == case and r.peer]
        if ours and peer:
            ratio = ours[0].seconds / peer[0].seconds
            lines.append(f"{case}: scratchvision / pycocotools time = {ratio:.3f} "
                         f"(goal <= 1: {'met' if ratio <= 1 else 'NOT met'})")
    return "\n".join(lines)
