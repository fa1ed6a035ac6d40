"""The parts every detector shares (nets/detection/): batching, target checks, target
assignment and sampling, the multi-task loss, post-processing, the proposal cache; and
COCO results that round-trip through the evaluators."""
import json

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn, ops
from scratchvision.autograd.gradcheck import gradcheck
from scratchvision.eval.detection import coco_ground_truth, coco_results, evaluate_detections
from scratchvision.nets.detection import (
    RoIHeads,
    assign_targets,
    batch_images,
    check_targets,
    denormalise,
    fast_rcnn_loss,
    normalise,
    proposal_cache,
    select_detections,
)
from scratchvision.nets.fast_rcnn import FastRCNN, truncated_svd_linear


# ----------------------------------------------------------------------------- images
def test_batch_images_pads_bottom_right_to_divisor():
    a = np.ones((3, 5, 7), np.float32)
    b = 2 * np.ones((3, 9, 4), np.float32)
    batch = batch_images([a, b], size_divisor=8)
    assert batch.tensors.shape == (2, 3, 16, 8)          # ceil(9/8)*8, ceil(7/8)*8
    assert batch.image_sizes == [(5, 7), (9, 4)]
    t = batch.tensors.numpy()
    assert (t[0, :, :5, :7] == 1).all() and (t[0, :, 5:] == 0).all() and (t[0, :, :, 7:] == 0).all()
    assert (t[1, :, :9, :4] == 2).all() and t[1, :, 9:].sum() == 0


def test_batch_images_keeps_a_divisible_batch_and_checks_input():
    x = sv.randn(2, 3, 16, 16)
    assert batch_images(x, 8).tensors is x
    with pytest.raises(ValueError, match="images\\[1\\] must be \\(3, H, W\\)"):
        batch_images([np.zeros((3, 4, 4)), np.zeros((4, 4))])
    with pytest.raises(ValueError, match="size_divisor"):
        batch_images(x, 0)


def test_normalise_round_trip():
    u8 = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3)).astype(np.uint8)
    x = normalise(u8)
    assert x.shape == (2, 3, 5, 6) and x.dtype == np.float32
    np.testing.assert_array_equal(denormalise(x), u8)


# ----------------------------------------------------------------------------- targets
def test_check_targets_clips_and_refuses_bad_input():
    sizes = [(10, 20)]
    t = check_targets([{"boxes": np.array([[-5, 2, 25, 8]]), "labels": np.array([2])}], sizes, 4)
    np.testing.assert_array_equal(t[0]["boxes"], [[0, 2, 20, 8]])   # clipped to the image
    assert t[0]["labels"].dtype == np.int64
    bad = [({"boxes": np.array([[0, 0, 5, 5]]), "labels": np.array([4])}, "out of range"),
           ({"boxes": np.array([[0, 0, 5, 5]]), "labels": np.array([0])}, "out of range"),
           ({"boxes": np.array([[3, 3, 3, 8]]), "labels": np.array([1])}, "positive width"),
           ({"boxes": np.array([[30, 3, 40, 8]]), "labels": np.array([1])}, "no area"),
           ({"boxes": np.array([[0, 0, np.nan, 5]]), "labels": np.array([1])}, "not finite"),
           ({"boxes": np.array([[0, 0, 5]]), "labels": np.array([1])}, "\\(K, 4\\)"),
           ({"boxes": np.array([[0, 0, 5, 5]]), "labels": np.array([1, 2])}, "to match"),
           ({"boxes": np.array([[0, 0, 5, 5]]), "labels": np.array([1.5])}, "integers")]
    for target, msg in bad:
        with pytest.raises(ValueError, match=msg):
            check_targets([target], sizes, 4)
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        check_targets([t[0], t[0]], sizes, 4)
    empty = check_targets([{"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}], sizes, 4)
    assert empty[0]["boxes"].shape == (0, 4)


# ----------------------------------------------------------------------------- assignment
def test_assign_targets_hand_worked():
    gt = np.array([[0, 0, 10, 10]], np.float32)                 # area 100
    props = np.array([[0, 0, 10, 10],     # IoU 1           -> class 3
                      [0, 0, 10, 5],      # IoU 50/100 = .5 -> class 3 (>= 0.5)
                      [0, 0, 10, 4],      # IoU .4          -> background
                      [5, 5, 15, 15],     # IoU 25/175=.143 -> background (>= 0.1)
                      [9, 9, 19, 19],     # IoU 1/199       -> ignored (< 0.1)
                      [50, 50, 60, 60]],  # IoU 0           -> ignored
                     np.float32)
    labels, matched = assign_targets(props, gt, np.array([3]), 0.5, (0.1, 0.5))
    np.testing.assert_array_equal(labels, [3, 3, 0, 0, -1, -1])
    np.testing.assert_array_equal(matched, 0)
    labels, _ = assign_targets(props, np.zeros((0, 4), np.float32), np.zeros(0, int), .5, (.1, .5))
    np.testing.assert_array_equal(labels, 0)                    # no objects: all background


def _heads(batch=8, fraction=0.25):
    return RoIHeads(ops.RoIPool(2, 1.0), nn.Flatten(), nn.Identity(), 4,
                    batch_size_per_image=batch, positive_fraction=fraction)


def test_sampling_counts_and_regression_targets_decode_to_gt():
    sv.manual_seed(0)
    gt = np.array([[10, 10, 30, 40]], np.float32)
    rng = np.random.default_rng(0)
    jitter = gt + rng.uniform(-3, 3, (20, 4)).astype(np.float32)            # foreground
    far = np.array([[25, 35, 60, 70]] * 20, np.float32) + rng.uniform(0, 2, (20, 4)).astype(
        np.float32)                                                          # IoU ~0.03..0.2
    heads = _heads(batch=8, fraction=0.25)
    rois, labels, reg = heads.select_training_samples(
        [np.concatenate([jitter, far])], [{"boxes": gt, "labels": np.array([2])}])
    assert len(rois[0]) == len(labels) == len(reg) <= 8
    assert (labels > 0).sum() == 2                                           # 25 % of 8
    assert set(labels.tolist()) <= {0, 2}
    fg = labels > 0
    decoded = heads.box_coder.decode_single(reg[fg], rois[0][fg])
    np.testing.assert_allclose(decoded, np.repeat(gt, fg.sum(), 0), atol=1e-4)
    np.testing.assert_array_equal(reg[~fg], 0)


def test_sampling_repeats_under_the_same_seed():
    gt = {"boxes": np.array([[10, 10, 30, 40]], np.float32), "labels": np.array([1])}
    xy = np.random.default_rng(1).uniform(0, 60, (50, 2))
    props = [np.concatenate([xy, xy + 12], axis=1).astype(np.float32)]
    heads = _heads(16, 0.5)
    sv.manual_seed(3)
    a = heads.select_training_samples(props, [gt])
    sv.manual_seed(3)
    b = heads.select_training_samples(props, [gt])
    np.testing.assert_array_equal(a[0][0], b[0][0])


# ----------------------------------------------------------------------------- loss
def test_fast_rcnn_loss_hand_worked():
    # two RoIs, classes {0, 1}: RoI 0 background, RoI 1 class 1 with target (0.5, 0, 0, 2)
    logits = sv.tensor(np.zeros((2, 2)), requires_grad=True)           # p = (0.5, 0.5)
    boxes = np.zeros((2, 8))
    boxes[1, 4:] = [0.0, 0.0, 0.0, 0.0]       # class 1's offsets of RoI 1
    boxes[1, :4] = [9.0, 9.0, 9.0, 9.0]       # class 0's offsets: must be ignored
    box_t = sv.tensor(boxes, requires_grad=True)
    cls, loc = fast_rcnn_loss(logits, box_t, np.array([0, 1]),
                              np.array([[0, 0, 0, 0], [0.5, 0, 0, 2.0]]))
    assert cls.item() == pytest.approx(np.log(2))                     # -log 0.5
    # smooth L1 (beta 1): 0.5 * 0.5^2 = 0.125 and |2| - 0.5 = 1.5; sum / 2 RoIs
    assert loc.item() == pytest.approx((0.125 + 1.5) / 2)
    (cls + loc).backward()
    g = box_t.grad if isinstance(box_t.grad, np.ndarray) else box_t.grad.data
    assert np.count_nonzero(g[1, :4]) == 0 and np.count_nonzero(g[0]) == 0


def test_fast_rcnn_loss_gradcheck_float64():
    rng = np.random.default_rng(0)
    labels = np.array([0, 2, 1, 0, 2])
    targets = rng.standard_normal((5, 4)) * 0.7

    def f(logits, boxes):
        a, b = fast_rcnn_loss(logits, boxes, labels, targets)
        return a + b
    assert gradcheck(f, [rng.standard_normal((5, 3)), rng.standard_normal((5, 12))])


def test_fast_rcnn_loss_without_foreground_is_finite():
    logits = sv.tensor(np.zeros((3, 4)), requires_grad=True)
    box = sv.tensor(np.zeros((3, 16)), requires_grad=True)
    cls, loc = fast_rcnn_loss(logits, box, np.zeros(3, int), np.zeros((3, 4)))
    assert loc.item() == 0.0 and np.isfinite(cls.item())
    (cls + loc).backward()


# ----------------------------------------------------------------------------- postprocess
def test_select_detections_per_class_nms_threshold_and_topk():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 70, 70], [-5, -5, 8, 8]],
                     np.float32)
    scores = np.array([[0.9, 0.2], [0.8, 0.85], [0.01, 0.3], [0.5, 0.0]], np.float32)
    d = select_detections(boxes, scores, (60, 60), score_thresh=0.05, nms_thresh=0.5)
    # class 1: 0.9 (box 0) suppresses 0.8 (box 1, IoU .68) and 0.5 (box 3, clipped to
    # [0,0,8,8], IoU 64/100 = .64); class 2: 0.85 box 1, 0.3 box 2 (clipped to 60), 0.2 box 0
    # suppressed by box 1; 0.01 and 0.0 fall under the threshold.
    np.testing.assert_allclose(d["scores"].numpy(), [0.9, 0.85, 0.3])
    np.testing.assert_array_equal(d["labels"].numpy(), [1, 2, 2])
    np.testing.assert_array_equal(d["boxes"].numpy()[2], [50, 50, 60, 60])
    d = select_detections(boxes, scores, (60, 60), detections_per_img=1)
    assert len(d["scores"].numpy()) == 1
    d = select_detections(boxes, np.zeros_like(scores), (60, 60))
    assert d["boxes"].shape == (0, 4) and d["labels"].numpy().dtype == np.int64


# ----------------------------------------------------------------------------- Fast R-CNN
def _shapes(n, split="train", size=64):
    from scratchvision.data.shapes import Shapes
    from scratchvision.proposals.selective_search import SelectiveSearch
    ds = Shapes(split, n, image_size=size, seed=0)
    ss = SelectiveSearch("fast", num_threads=1)
    ims, tg, pr = [], [], []
    for i in range(n):
        im, t = ds[i]
        ims.append(im)
        tg.append({"boxes": t["boxes"], "labels": t["labels"]})
        pr.append(ss(im))
    return np.stack(ims), tg, pr


def test_fast_rcnn_overfits_and_finds_the_boxes():
    u8, targets, props = _shapes(4)
    x = normalise(u8)
    sv.manual_seed(0)
    model = FastRCNN(4, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), representation_size=64)
    opt = nn.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for step in range(60):
        i = [(2 * step) % 4, (2 * step + 1) % 4]
        losses = model.loss(x[i], [targets[j] for j in i], [props[j] for j in i])
        total = losses["loss_classifier"] + losses["loss_box_reg"]
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.5 * first
    model.eval()
    preds = model.predict(x, props)
    found = total_gt = 0
    for p, t in zip(preds, targets):
        iou = np.asarray(ops.box_iou(t["boxes"], p["boxes"].numpy()[:10]))
        ok = (iou >= 0.5) & (t["labels"][:, None] == p["labels"].numpy()[None, :10])
        found += ok.any(axis=1).sum() if iou.size else 0
        total_gt += len(t["boxes"])
    assert found / total_gt >= 0.75


def test_fast_rcnn_predict_empty_image_and_mixed_sizes():
    sv.manual_seed(0)
    model = FastRCNN(4, widths=(4, 4, 8, 8), depths=(1, 1, 1, 1), representation_size=16)
    model.eval()
    blank = np.zeros((1, 3, 48, 48), np.float32)
    out = model.predict(blank)                          # Selective Search on a blank image
    assert out[0]["boxes"].shape[1] == 4
    images = [np.random.default_rng(0).standard_normal((3, 40, 56)).astype(np.float32),
              np.random.default_rng(1).standard_normal((3, 64, 30)).astype(np.float32)]
    props = [np.array([[0, 0, 20, 20], [10, 10, 50, 38]], np.float32),
             np.array([[5, 5, 25, 60]], np.float32)]
    model.roi_heads.score_thresh = 0.0
    out = model.predict(images, props)
    for p, (h, w) in zip(out, [(40, 56), (64, 30)]):
        b = p["boxes"].numpy()
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
    with pytest.raises(ValueError, match="proposals for 1 images"):
        model.predict(images, props[:1])


def test_fast_rcnn_loss_with_empty_targets_and_bad_labels():
    sv.manual_seed(0)
    model = FastRCNN(4, widths=(4, 4, 8, 8), depths=(1, 1, 1, 1), representation_size=16)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    props = [np.array([[0, 0, 10, 10], [5, 5, 30, 30]], np.float32)]
    losses = model.loss(x, [{"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}], props)
    assert all(np.isfinite(v.item()) for v in losses.values())
    with pytest.raises(ValueError, match="out of range"):
        model.loss(x, [{"boxes": np.array([[0, 0, 9, 9]]), "labels": np.array([7])}], props)


def test_truncated_svd_full_rank_is_exact_and_low_rank_is_best():
    sv.manual_seed(0)
    layer = nn.Linear(12, 10)
    x = sv.randn(5, 12)
    full = truncated_svd_linear(layer, 10)
    np.testing.assert_allclose(full(x).numpy(), layer(x).numpy(), atol=1e-5)
    low = truncated_svd_linear(layer, 3)
    w = layer.weight.numpy()
    approx = low[1].weight.numpy() @ low[0].weight.numpy()
    s = np.linalg.svd(w, compute_uv=False)
    # Eckart-Young: the spectral error of the best rank-3 approximation is s[3]
    assert np.linalg.norm(w - approx, 2) == pytest.approx(s[3], rel=1e-4)


# ----------------------------------------------------------------------------- COCO / eval
def test_coco_results_round_trip_through_our_evaluator_and_pycocotools(tmp_path):
    rng = np.random.default_rng(0)
    targets, preds = [], []
    for _ in range(6):
        xy = rng.uniform(0, 40, (3, 2))
        g = np.concatenate([xy, xy + rng.uniform(8, 30, (3, 2))], axis=1)
        targets.append({"boxes": g.astype(np.float32), "labels": rng.integers(1, 4, 3)})
        p = g + rng.normal(0, 2, g.shape)
        p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 1)
        preds.append({"boxes": p, "scores": rng.uniform(0, 1, 3),
                      "labels": np.where(rng.random(3) < 0.8, targets[-1]["labels"], 1)})
    ids, sizes = list(range(10, 16)), [(80, 80)] * 6
    m = evaluate_detections(preds, targets, ids, sizes, ("bg", "a", "b", "c"))
    gt = coco_ground_truth(targets, ids, sizes, ("bg", "a", "b", "c"))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(coco_results(preds, ids)))
    from scratchvision.eval.coco import evaluate_coco
    again = evaluate_coco(tmp_path / "gt.json", tmp_path / "dt.json")
    assert again["AP"] == m["coco"]["AP"] and 0 < m["coco"]["AP"] < 1
    pycoco = pytest.importorskip("pycocotools.coco", reason="pycocotools not installed")
    import contextlib
    import io

    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        cg = pycoco.COCO(str(tmp_path / "gt.json"))
        cd = cg.loadRes(str(tmp_path / "dt.json"))
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(m["coco"]["AP"], abs=1e-12)


def test_voc_map_of_perfect_predictions_is_one():
    t = [{"boxes": np.array([[3, 4, 10, 12], [20, 20, 30, 25]], np.float32),
          "labels": np.array([1, 2])}]
    p = [{"boxes": t[0]["boxes"], "labels": t[0]["labels"], "scores": np.array([0.9, 0.8])}]
    m = evaluate_detections(p, t, [0], [(40, 40)], ("bg", "a", "b"))
    assert m["map"] == pytest.approx(1.0) and m["map07"] == pytest.approx(1.0)
    assert m["coco"]["AP"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- proposal cache
def test_proposal_cache_round_trip_and_key(tmp_path):
    key = proposal_cache.cache_key("val", 3, 64, 0, "single")
    props, seconds = proposal_cache.load_or_compute(key, workers=1, progress=False,
                                                    root=tmp_path)
    assert len(props) == 3 and all(p.shape[1] == 4 for p in props) and seconds > 0
    path = proposal_cache.cache_path(key, tmp_path)
    again, _ = proposal_cache.load_or_compute(key, workers=1, progress=False, root=tmp_path)
    for a, b in zip(props, again):
        np.testing.assert_array_equal(a, b)
    other = proposal_cache.cache_key("val", 3, 64, 1, "single")
    assert proposal_cache.cache_path(other, tmp_path) != path
    path.write_bytes(b"not a zip")                      # corrupt: recomputed, not a crash
    fixed, _ = proposal_cache.load_or_compute(key, workers=1, progress=False, root=tmp_path)
    np.testing.assert_array_equal(fixed[0], props[0])


def test_voc_evaluation_accepts_boxes_thinner_than_a_pixel():
    t = [{"boxes": np.array([[3, 4, 10, 12]], np.float32), "labels": np.array([1])}]
    p = [{"boxes": np.array([[3, 4, 10, 12], [5, 6, 5.5, 6.4]], np.float32),
          "labels": np.array([1, 1]), "scores": np.array([0.9, 0.8])}]
    m = evaluate_detections(p, t, [0], [(40, 40)], ("bg", "a"))
    assert m["map"] == pytest.approx(1.0)
