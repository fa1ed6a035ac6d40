"""evaluate_coco: hand-worked cases, and pycocotools' COCOeval as the oracle (peers)."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest

from scratchvision.data import mask_utils
from scratchvision.eval import detections_to_coco_results, evaluate_coco, write_coco_results
from scratchvision.eval.coco import STAT_NAMES


def _gt(anns, n_images=2, n_cats=2, hw=(200, 200)):
    images = [{"id": i + 1, "height": hw[0], "width": hw[1]} for i in range(n_images)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cats)]
    full = []
    for k, (img, cat, box, *rest) in enumerate(anns):
        crowd = rest[0] if rest else 0
        full.append({"id": k + 1, "image_id": img, "category_id": cat, "bbox": list(box),
                     "area": float(box[2] * box[3]), "iscrowd": crowd})
    return {"images": images, "annotations": full, "categories": cats}


def _det(img, cat, box, score):
    return {"image_id": img, "category_id": cat, "bbox": list(box), "score": score}


SMALL = [10, 10, 10, 10]          # area 100 < 32^2
LARGE = [50, 50, 100, 100]        # area 10000 > 96^2


def test_perfect_detections():
    gt = _gt([(1, 1, SMALL), (2, 2, LARGE)])
    r = evaluate_coco(gt, [_det(1, 1, SMALL, .9), _det(2, 2, LARGE, .8)])
    expect = dict(AP=1, AP50=1, AP75=1, APs=1, APm=-1, APl=1, AR1=1, AR10=1, AR100=1,
                  ARs=1, ARm=-1, ARl=1)              # no medium object: -1, as pycocotools
    assert {k: r[k] for k in STAT_NAMES} == pytest.approx(expect)
    np.testing.assert_allclose(r["per_class_ap"], [1, 1])


def test_one_false_positive_first():
    # FP .9 then TP .8: precision [0, .5], envelope .5 at every recall point -> AP .5
    gt = _gt([(1, 1, LARGE)], n_cats=1)
    r = evaluate_coco(gt, [_det(1, 1, [0, 0, 20, 20], .9), _det(1, 1, LARGE, .8)])
    assert r["AP"] == pytest.approx(0.5) and r["AR100"] == pytest.approx(1.0)
    # AR1 keeps only the top detection per image: the FP -> recall 0
    assert r["AR1"] == 0.0


def test_duplicate_is_a_false_positive_after_the_match():
    gt = _gt([(1, 1, LARGE)], n_cats=1)
    r = evaluate_coco(gt, [_det(1, 1, LARGE, .9), _det(1, 1, LARGE, .8)])
    assert r["AP"] == pytest.approx(1.0)                      # the FP comes after full recall
    r = evaluate_coco(gt, [_det(1, 1, [51, 50, 100, 100], .9), _det(1, 1, LARGE, .8)])
    # at IoU .5:.95 the first (IoU .99) matches everywhere -> duplicates cost nothing
    assert r["AP"] == pytest.approx(1.0)


def test_crowd_region_absorbs_detections():
    crowd = [0, 100, 100, 100]
    gt = _gt([(1, 1, LARGE[:2] + [40, 40]), (1, 1, crowd, 1)], n_cats=1)
    dets = [_det(1, 1, [5, 105, 20, 20], .95), _det(1, 1, [40, 140, 30, 30], .85),
            _det(1, 1, [50, 50, 40, 40], .9)]
    r = evaluate_coco(gt, dets)
    # inside the crowd: IoU = |d & g| / |d| = 1 -> matched to an ignored GT -> ignored
    assert r["AP"] == pytest.approx(1.0) and r["AR100"] == pytest.approx(1.0)
    gt["annotations"][1]["iscrowd"] = 0        # an ordinary object: now they are FPs
    assert evaluate_coco(gt, dets)["AP"] < 0.6


def test_empty_predictions_and_image_without_gt():
    gt = _gt([(1, 1, LARGE)], n_cats=1)
    r = evaluate_coco(gt, [])
    assert r["AP"] == 0.0 and r["AR100"] == 0.0 and r["APs"] == -1
    r = evaluate_coco(gt, [_det(2, 1, LARGE, .9), _det(1, 1, LARGE, .8)])
    assert r["AP"] == pytest.approx(0.5)       # the detection on image 2 is a FP


def test_max_dets_per_image():
    gt = _gt([(1, 1, [0, 0, 50, 50]), (1, 1, [100, 100, 50, 50])], n_cats=1)
    r = evaluate_coco(gt, [_det(1, 1, [0, 0, 50, 50], .9), _det(1, 1, [100, 100, 50, 50], .8)])
    assert r["AR1"] == 0.5 and r["AR10"] == pytest.approx(1.0) and r["AP"] == pytest.approx(1.0)


def test_segm_on_masks():
    hw = (40, 40)
    m1 = np.zeros(hw, np.uint8)
    m1[5:25, 5:15] = 1
    gt = _gt([(1, 1, [5, 5, 10, 20])], n_images=1, n_cats=1, hw=hw)
    gt["annotations"][0]["segmentation"] = [[5, 5, 15, 5, 15, 25, 5, 25]]
    half = m1.copy()
    half[15:] = 0                               # IoU .5 exactly
    dets = [{"image_id": 1, "category_id": 1, "score": .9,
             "segmentation": mask_utils.encode(half)}]
    r = evaluate_coco(gt, dets, iou_type="segm")
    assert r["AP50"] == pytest.approx(1.0) and r["AP75"] == 0.0 and r["AP"] == pytest.approx(0.1)


def test_results_helpers_roundtrip(tmp_path):
    gt = _gt([(1, 1, SMALL), (2, 2, LARGE)])
    res = detections_to_coco_results([1, 2], [np.array([[10, 10, 20, 20.]]),
                                              np.array([[50, 50, 150, 150.]])],
                                      [np.array([.9]), np.array([.8])], [[1], [2]])
    assert res[1]["bbox"] == [50.0, 50.0, 100.0, 100.0]
    path = write_coco_results(tmp_path / "res.json", res)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert evaluate_coco(tmp_path / "gt.json", path)["AP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="x2 >= x1"):
        detections_to_coco_results([1], [np.array([[5, 0, 1, 1.]])], [[.5]], [[1]])


def test_bad_input(tmp_path):
    gt = _gt([(1, 1, LARGE)], n_cats=1)
    with pytest.raises(ValueError, match=r"results\[0\]: image_id 7"):
        evaluate_coco(gt, [_det(7, 1, LARGE, .9)])
    with pytest.raises(ValueError, match=r"results\[1\]: 'bbox' has negative"):
        evaluate_coco(gt, [_det(1, 1, LARGE, .9), _det(1, 1, [0, 0, -1, 3], .5)])
    with pytest.raises(ValueError, match=r"results\[0\] has no 'score'"):
        evaluate_coco(gt, [{"image_id": 1, "category_id": 1, "bbox": LARGE}])
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_coco(gt, [], iou_type="keypoints")
    (tmp_path / "gt.json").write_text("[oops")
    with pytest.raises(ValueError, match=r"gt\.json is not valid JSON"):
        evaluate_coco(tmp_path / "gt.json", [])
    with pytest.raises(ValueError, match="missing the 'categories'"):
        evaluate_coco({"images": [], "annotations": []}, [])


# ----------------------------------------------------------------------------- vs pycocotools
def _random_case(rng, segm, hw=(48, 64)):
    H, W = hw
    images = [{"id": i + 1, "height": H, "width": W} for i in range(int(rng.integers(1, 8)))]
    anns, res = [], []
    for im in images:
        for _ in range(int(rng.integers(0, 6))):
            x, y = rng.random(2) * [W - 8, H - 8]
            w, h = rng.random(2) * [W - x, H - y] + 1
            cat = int(rng.integers(1, 4))
            crowd = int(rng.random() < 0.15)
            poly = [x, y, x + w, y, x + 0.7 * w, y + h, x, y + 0.8 * h]
            area = float(w * h * rng.uniform(0.5, 1))
            if rng.random() < 0.3:                   # exercise the area-range edges
                area = float(rng.choice([100, 1024, 5000, 9216, 20000]))
            seg = [poly]
            if segm and crowd:
                seg = mask_utils.encode(mask_utils.polygons_to_mask([poly], H, W), False)
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": cat,
                         "bbox": [x, y, w, h], "area": area, "iscrowd": crowd,
                         "segmentation": seg})
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 3, 4)
                bb = [x + j[0], y + j[1], max(w + j[2], 0.5), max(h + j[3], 0.5)]
                res.append({"image_id": im["id"], "bbox": bb,
                            "category_id": cat if rng.random() < 0.8 else int(rng.integers(1, 4)),
                            "score": float(np.round(rng.random(), 2))})     # ties happen
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.random(2) * [W - 8, H - 8]
            w, h = rng.random(2) * [W - x, H - y] + 1
            res.append({"image_id": im["id"], "category_id": int(rng.integers(1, 4)),
                        "bbox": [x, y, w, h], "score": float(np.round(rng.random(), 2))})
    if segm:
        for d in res:
            x, y, w, h = d.pop("bbox")
            poly = [x, y, x + w, y, x + 0.7 * w, y + h, x, y + 0.8 * h]
            d["segmentation"] = mask_utils.encode(mask_utils.polygons_to_mask([poly], H, W))
    cats = [{"id": c, "name": str(c)} for c in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": cats}, res


def _pycocotools_stats(gt, res, iou_type):
    coco_mod = pytest.importorskip("pycocotools.coco")
    eval_mod = pytest.importorskip("pycocotools.cocoeval")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_mod.COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = copy.deepcopy(res)
        for d in res:
            if "segmentation" in d:
                d["segmentation"]["counts"] = d["segmentation"]["counts"].encode()
        ev = eval_mod.COCOeval(coco, coco.loadRes(res), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.peers
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_against_pycocotools(iou_type):
    rng = np.random.default_rng(11 if iou_type == "bbox" else 12)
    checked = 0
    while checked < 12:
        gt, res = _random_case(rng, iou_type == "segm")
        if not res:                     # pycocotools' loadRes cannot take an empty list
            continue
        ref = _pycocotools_stats(gt, res, iou_type)
        got = evaluate_coco(gt, res, iou_type)
        np.testing.assert_allclose([got[k] for k in STAT_NAMES], ref, atol=1e-6, rtol=0,
                                   err_msg=f"case {checked}")
        checked += 1


def test_unknown_category_ignored_and_per_class_nan():
    gt = _gt([(1, 1, LARGE)], n_cats=2)           # category 2 has no ground truth
    r = evaluate_coco(gt, [_det(1, 1, LARGE, .9), _det(1, 9, LARGE, .95),
                           _det(1, 2, LARGE, .8)])
    assert r["AP"] == pytest.approx(1.0)          # category 9 is not evaluated
    np.testing.assert_array_equal(r["cat_ids"], [1, 2])
    assert r["per_class_ap"][0] == pytest.approx(1.0) and np.isnan(r["per_class_ap"][1])
