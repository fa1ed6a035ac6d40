"""YOLO v1: the loss of a hand-worked 2x2 grid term by term, the responsible-predictor
rule, grid assignment (a centre on a cell border, two objects in one cell), the float64
gradient check, decoding of a hand-made output tensor by ``predict``, bad input, a short
overfit run, and ``train-det --model yolo_v1`` at a tiny size."""
import json

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn
from scratchvision.autograd.gradcheck import gradcheck, registered_gradchecks, run_case
from scratchvision.cli import main as cli_main
from scratchvision.data.shapes import Shapes
from scratchvision.nets import DETECTORS, build_detector
from scratchvision.nets.detection import normalise
from scratchvision.nets.yolo_v1 import (
    SIZES,
    YOLOv1,
    assign_predictors,
    decode,
    encode_targets,
    yolo_v1_loss,
)
from scratchvision.ops import box_iou

TERMS = ("loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_cls")

# ----------------------------------------------------------------- the hand-worked example
# A 100 x 100 image, S = 2 (cells of 50 px), B = 2, C = 2 (num_classes 3 with background).
# One object, label 2 (class index 1), box [57, 22, 93, 38]: centre (75, 30), size 36 x 16,
# i.e. cx = 0.75, cy = 0.3, w = 0.36, h = 0.16 of the image. Its cell: column
# floor(0.75 * 2) = 1, row floor(0.3 * 2) = 0, so cell (i, j) = (0, 1); targets
# x = 1.5 - 1 = 0.5, y = 0.6 - 0 = 0.6, sqrt w = 0.6, sqrt h = 0.4.
OBJECT = {"boxes": np.array([[57.0, 22.0, 93.0, 38.0]]), "labels": np.array([2])}
SIZE = (100, 100)


def hand_output(first_sqrt_w: float = 0.5) -> np.ndarray:
    """(1, 2, 2, 12) outputs: per cell [x, y, sqrt w, sqrt h, conf] x 2, then 2 classes."""
    out = np.zeros((1, 2, 2, 12))
    # cell (0, 1), box A: x 0.4, y 0.6, sqrt w first_sqrt_w, sqrt h 0.4, conf 0.9
    # cell (0, 1), box B: x 0.3, y 0.6, sqrt w 0.6, sqrt h 0.4, conf 0.4
    out[0, 0, 1] = [0.4, 0.6, first_sqrt_w, 0.4, 0.9, 0.3, 0.6, 0.6, 0.4, 0.4, 0.2, 0.7]
    # the confidences of the other cells (pushed to 0 by the no-object term), and class
    # outputs that must be ignored there (no object in those cells)
    out[0, 0, 0, [4, 9]] = [0.2, 0.0]
    out[0, 1, 0, [4, 9]] = [0.1, 0.3]
    out[0, :, :, 10:] += np.array([[[0.5, 0.5], [0, 0]], [[0.5, -0.5], [0.9, 0.1]]])
    return out


def losses_of(out: np.ndarray, targets=None, sizes=None) -> tuple[dict, np.ndarray]:
    targets = targets or [OBJECT]
    encoded = encode_targets(targets, sizes or [SIZE] * len(targets), 2, 3)
    resp, iou = assign_predictors(out[..., :10].reshape(*out.shape[:3], 2, 5)[..., :4],
                                  encoded)
    x = sv.tensor(out, requires_grad=True)
    terms = yolo_v1_loss(x, encoded, resp, iou)
    return {k: v.item() for k, v in terms.items()}, resp


def test_hand_worked_loss_first_predictor_responsible():
    # Box A: centre ((1 + 0.4) / 2, 0.3) = (0.7, 0.3), w 0.25, h 0.16 -> x in [0.575, 0.825],
    # inside the object's [0.57, 0.93], same y range: IoU = 0.25 * 0.16 / (0.36 * 0.16)
    # = 25/36 = 0.694. Box B: centre 0.65, w 0.36 -> [0.47, 0.83]; overlap [0.57, 0.83] =
    # 0.26 wide: IoU = 0.26 / (0.36 + 0.36 - 0.26) = 13/23 = 0.565. A is responsible.
    terms, resp = losses_of(hand_output())
    np.testing.assert_array_equal(resp[0, 0, 1], [True, False])
    assert resp.sum() == 1
    # 5 [(0.4 - 0.5)^2 + (0.6 - 0.6)^2] = 0.05
    assert terms["loss_xy"] == pytest.approx(0.05)
    # 5 [(0.5 - 0.6)^2 + (0.4 - 0.4)^2] = 0.05
    assert terms["loss_wh"] == pytest.approx(0.05)
    # (0.9 - 25/36)^2 = 0.0422530...
    assert terms["loss_obj"] == pytest.approx((0.9 - 25 / 36) ** 2)
    # 0.5 (0.4^2 [box B of the object's cell] + 0.2^2 + 0.1^2 + 0.3^2) = 0.5 * 0.30 = 0.15
    assert terms["loss_noobj"] == pytest.approx(0.15)
    # only the object's cell: (0.2 - 0)^2 + (0.7 - 1)^2 = 0.04 + 0.09 = 0.13
    assert terms["loss_cls"] == pytest.approx(0.13)


def test_hand_worked_loss_second_predictor_responsible():
    # Box A now has sqrt w 0.3 (w 0.09, inside the object): IoU 0.09 / 0.36 = 0.25 < 13/23
    terms, resp = losses_of(hand_output(first_sqrt_w=0.3))
    np.testing.assert_array_equal(resp[0, 0, 1], [False, True])
    # box B's errors: 5 (0.3 - 0.5)^2 = 0.2; its size is exact: 0
    assert terms["loss_xy"] == pytest.approx(0.2)
    assert terms["loss_wh"] == pytest.approx(0.0)
    assert terms["loss_obj"] == pytest.approx((0.4 - 13 / 23) ** 2)
    # box A is pushed to 0 now: 0.5 (0.9^2 + 0.2^2 + 0.1^2 + 0.3^2) = 0.5 * 0.95
    assert terms["loss_noobj"] == pytest.approx(0.475)
    assert terms["loss_cls"] == pytest.approx(0.13)


def test_loss_is_divided_by_the_batch_size_and_gradients_follow_the_terms():
    # a second image without objects whose outputs are all zero adds nothing but N = 2
    one, _ = losses_of(hand_output())
    out = np.concatenate([hand_output(), np.zeros((1, 2, 2, 12))])
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)}
    two, _ = losses_of(out, [OBJECT, empty])
    for k in TERMS:
        assert two[k] == pytest.approx(one[k] / 2), k
    # d loss_xy / d x_A = 5 * 2 (0.4 - 0.5) = -1; box B's coordinates get no gradient;
    # d loss_obj / d conf_A = 2 (0.9 - 25/36); d loss_noobj / d conf_B = 0.5 * 2 * 0.4
    encoded = encode_targets([OBJECT], [SIZE], 2, 3)
    x = sv.tensor(hand_output(), requires_grad=True)
    resp, iou = assign_predictors(x.numpy()[..., :10].reshape(1, 2, 2, 2, 5)[..., :4], encoded)
    terms = yolo_v1_loss(x, encoded, resp, iou)
    sum(terms.values(), sv.tensor(0.0, dtype=sv.float64)).backward()
    g = x.grad.numpy()[0, 0, 1]
    np.testing.assert_allclose(g[:5], [-1.0, 0.0, -1.0, 0.0, 2 * (0.9 - 25 / 36)], atol=1e-12)
    np.testing.assert_allclose(g[5:10], [0, 0, 0, 0, 0.4], atol=1e-12)
    np.testing.assert_allclose(g[10:], [0.4, -0.6], atol=1e-12)
    # an empty cell's class outputs get no gradient, its confidences only lambda_noobj's
    np.testing.assert_allclose(x.grad.numpy()[0, 1, 1], 0.0)
    np.testing.assert_allclose(x.grad.numpy()[0, 1, 0, [4, 9]], [0.1, 0.3], atol=1e-12)


def test_responsible_falls_back_to_the_nearest_when_no_box_overlaps():
    # both predictors miss the object entirely (IoU 0): the one whose (cx, cy, w, h) is
    # nearer (RMSE) is responsible, here the second; the IoU target is then 0
    out = hand_output()
    out[0, 0, 1, :4] = [0.0, 0.0, 0.1, 0.1]       # box A at (0.5, 0), tiny: far
    out[0, 0, 1, 5:9] = [0.0, 0.6, 0.3, 0.4]      # box B at (0.5, 0.3): near, no overlap
    encoded = encode_targets([OBJECT], [SIZE], 2, 3)
    resp, iou = assign_predictors(out[..., :10].reshape(1, 2, 2, 2, 5)[..., :4], encoded)
    np.testing.assert_array_equal(resp[0, 0, 1], [False, True])
    np.testing.assert_array_equal(iou, 0.0)


# ----------------------------------------------------------------- target assignment
def test_a_centre_on_a_cell_border_goes_to_the_right_and_lower_cell():
    # 64 x 64 image, S = 2: cell j covers [32 j, 32 (j + 1)) (half-open, like the pixels
    # x1 <= x < x2 of a box), so the centre x = 32 of box [16, 8, 48, 24] is in column 1
    # with offset 0, not in column 0 with offset 1 (offsets are in [0, 1)); y = 16 is in
    # row 0 at offset 0.5. Centre (32, 32) goes to cell (1, 1).
    targets = [{"boxes": np.array([[16.0, 8.0, 48.0, 24.0], [24.0, 24.0, 40.0, 40.0]]),
                "labels": np.array([1, 2])}]
    enc = encode_targets(targets, [(64, 64)], 2, 3)
    np.testing.assert_array_equal(enc["obj"][0], [[False, True], [False, True]])
    # box [16, 8, 48, 24]: 32 x 16 px of 64 x 64 -> sqrt w = sqrt(0.5), sqrt h = 0.5
    np.testing.assert_allclose(enc["boxes"][0, 0, 1], [0.0, 0.5, np.sqrt(0.5), 0.5])
    np.testing.assert_allclose(enc["boxes"][0, 1, 1], [0.0, 0.0, 0.5, 0.5])
    np.testing.assert_array_equal(enc["classes"][0, 0, 1], [1, 0])
    np.testing.assert_array_equal(enc["classes"][0, 1, 1], [0, 1])
    # a non-square image: offsets in cells, sizes relative to each side
    enc = encode_targets([{"boxes": np.array([[0.0, 0.0, 100.0, 10.0]]), "labels": [1]}],
                         [(40, 200)], 4, 3)
    # centre (50, 5) of 200 x 40 -> (0.25, 0.125) -> column 1 (offset 0), row 0 (0.5)
    assert enc["obj"][0, 0, 1] and enc["obj"].sum() == 1
    np.testing.assert_allclose(enc["boxes"][0, 0, 1], [0.0, 0.5, np.sqrt(0.5), 0.5])


def test_two_objects_in_one_cell_the_larger_keeps_it():
    small = [10.0, 10.0, 20.0, 20.0]              # centre (15, 15), area 100
    large = [2.0, 4.0, 30.0, 24.0]                # centre (16, 14), area 560
    for boxes, labels in (([small, large], [1, 2]), ([large, small], [2, 1])):
        enc = encode_targets([{"boxes": np.array(boxes), "labels": np.array(labels)}],
                             [(64, 64)], 2, 3)
        assert enc["obj"].sum() == 1 and enc["obj"][0, 0, 0]
        np.testing.assert_array_equal(enc["classes"][0, 0, 0], [0, 1])
        np.testing.assert_allclose(enc["gt"][0, 0, 0], np.array(large) / 64)


# ----------------------------------------------------------------- gradients
def test_loss_gradcheck_float64():
    case = registered_gradchecks()["yolo_v1_loss"]
    r = run_case(case)
    assert r.ok, r.worst
    assert r.checked == 2 * 3 * 3 * 12


def test_model_gradcheck_through_the_network_float64():
    # the whole model in float64 on one tiny image, its batch norm in eval mode (so the
    # function is smooth); the assignment is fixed from the first forward pass
    sv.manual_seed(0)
    model = YOLOv1(3, widths=(2,), depths=(1,), reduce_channels=2, hidden=4, grid_size=2,
                   input_size=4, dropout=0.0).double().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4))
    target = [{"boxes": np.array([[0.5, 0.5, 2.5, 3.0]]), "labels": np.array([1])}]
    enc = encode_targets(target, [(4, 4)], 2, 3)
    with sv.no_grad():
        out0 = model(sv.tensor(x)).numpy()
    resp, iou = assign_predictors(out0[..., :10].reshape(1, 2, 2, 2, 5)[..., :4], enc)
    gradcheck(lambda x: tuple(yolo_v1_loss(model(x), enc, resp, iou).values()), [x])


# ----------------------------------------------------------------- test time
def test_decode_and_predict_a_hand_made_output():
    model = YOLOv1(3, widths=(2,), depths=(1,), reduce_channels=2, hidden=4, grid_size=2,
                   input_size=4, dropout=0.0)
    out = np.zeros((1, 2, 2, 12))
    # cell (1, 0) box 0: centre ((0 + 0.5) / 2, (1 + 0.5) / 2) = (0.25, 0.75) of the image,
    # w 0.5^2 = 0.25, h 0.6^2 = 0.36; conf 0.8, classes (0.25, 0.75) -> scores 0.2, 0.6.
    # In a 200 (w) x 100 (h) image: centre (50, 75), 50 x 36 px: [25, 57, 75, 93]
    out[0, 1, 0, :5] = [0.5, 0.5, 0.5, 0.6, 0.8]
    out[0, 1, 0, 10:] = [0.25, 0.75]
    # cell (0, 1) box 1: centre (0.95, 0.05), 0.64 x 0.16: [126, -3, 254, 13] px, clipped
    # to [126, 0, 200, 13]; conf 1.5 and class outputs (-0.5, 1.2) are clipped to [0, 1]:
    # score 1 for label 2, 0 (dropped) for label 1
    out[0, 0, 1, 5:10] = [0.9, 0.1, 0.8, 0.4, 1.5]
    out[0, 0, 1, 10:] = [-0.5, 1.2]
    # cell (1, 1): a negative confidence times a negative probability is not a detection
    out[0, 1, 1, 4], out[0, 1, 1, 10:] = -0.9, [-0.9, 0.0]
    np.testing.assert_allclose(decode(out[..., :10].reshape(1, 2, 2, 2, 5)[..., :4])[0, 1, 0, 0],
                               [0.125, 0.57, 0.375, 0.93])
    (det,) = model.postprocess(sv.tensor(out), [(100, 200)])
    assert det["boxes"].dtype == np.float32 and det["labels"].dtype == np.int64
    np.testing.assert_allclose(det["boxes"].numpy(), [[126, 0, 200, 13], [25, 57, 75, 93],
                                                      [25, 57, 75, 93]], atol=1e-4)
    np.testing.assert_allclose(det["scores"].numpy(), [1.0, 0.6, 0.2], atol=1e-6)
    np.testing.assert_array_equal(det["labels"].numpy(), [2, 2, 1])
    # per-class NMS: a second, slightly shifted box of label 2 in the same cell is
    # suppressed (IoU > 0.5), the label-1 detection of the first box is kept
    out[0, 1, 0, 5:10] = [0.52, 0.5, 0.5, 0.6, 0.7]
    (det2,) = model.postprocess(sv.tensor(out), [(100, 200)])
    np.testing.assert_array_equal(det2["labels"].numpy(), [2, 2, 1])
    np.testing.assert_allclose(det2["scores"].numpy(), [1.0, 0.6, 0.2], atol=1e-6)


def test_predict_format_sizes_and_resizing():
    sv.manual_seed(0)
    model = build_detector("yolo_v1", 4, "tiny", score_thresh=0.0).eval()
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((3, 32, 32)).astype(np.float32),
              rng.standard_normal((3, 48, 20)).astype(np.float32)]
    outs = model.predict(images)
    assert len(outs) == 2
    for im, out in zip(images, outs):
        assert set(out) == {"boxes", "scores", "labels"}
        b, s, lab = out["boxes"].numpy(), out["scores"].numpy(), out["labels"].numpy()
        assert b.shape == (len(s), 4) and lab.shape == s.shape and len(s) > 0
        assert lab.dtype == np.int64 and set(lab.tolist()) <= {1, 2, 3}
        assert (np.diff(s) <= 0).all()
        h, w = im.shape[1:]
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
    # the 32 x 32 image is the network's input size (no resize): the same alone
    (alone,) = model.predict(images[0][None])
    np.testing.assert_allclose(alone["scores"].numpy(), outs[0]["scores"].numpy(), rtol=1e-5)
    # the 48 x 20 image is resized (bilinear) to the 32 x 32 input, and its boxes are
    # decoded in its own pixels (the scaling itself: test_decode_and_predict_...)
    x, sizes = model.inputs([images[1]])
    assert x.shape == (1, 3, 32, 32) and sizes == [(48, 20)]
    np.testing.assert_allclose(x.numpy(), sv.functional.interpolate(
        sv.tensor(images[1][None]), size=(32, 32), mode="bilinear").numpy())
    with sv.no_grad():
        (expected,) = model.postprocess(model(x), [(48, 20)])
    for k in ("boxes", "scores", "labels"):
        np.testing.assert_allclose(outs[1][k].numpy(), expected[k].numpy(), rtol=1e-5)


# ----------------------------------------------------------------- bad input
def test_bad_input_is_refused_clearly():
    sv.manual_seed(0)
    model = build_detector("yolo_v1", 4, "tiny")
    ds = Shapes("train", 2, image_size=32)
    ims, ts = zip(*[ds[i] for i in range(2)])
    x = normalise(np.stack(ims))
    targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in ts]
    with pytest.raises(ValueError, match="out of range"):
        model.loss(x, [dict(targets[0], labels=np.full_like(targets[0]["labels"], 4)),
                       targets[1]])
    flat = targets[0]["boxes"].copy()
    flat[0, 2] = flat[0, 0]
    with pytest.raises(ValueError, match="positive width"):
        model.loss(x, [dict(targets[0], boxes=flat), targets[1]])
    with pytest.raises(ValueError, match="1 targets for 2 images"):
        model.loss(x, targets[:1])
    with pytest.raises(ValueError, match="targets are required"):
        model.loss(x, None)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model.loss(np.zeros((2, 4, 32, 32), np.float32), targets)
    with pytest.raises(ValueError, match="num_classes"):
        YOLOv1(1)
    with pytest.raises(ValueError, match="multiple of the backbone's stride 16"):
        YOLOv1(4, input_size=100)
    with pytest.raises(ValueError, match="one entry"):
        YOLOv1(4, widths=(8, 16), depths=(1,))
    with pytest.raises(ValueError, match="size must be one of"):
        build_detector("yolo_v1", 4, "huge")
    enc = encode_targets([OBJECT], [SIZE], 2, 3)
    resp, iou = assign_predictors(np.zeros((1, 2, 2, 2, 4)), enc)
    with pytest.raises(ValueError, match=r"\(N, S, S, 5B \+ C\)"):
        yolo_v1_loss(sv.tensor(np.zeros((1, 2, 2, 9))), enc, resp, iou)
    with pytest.raises(ValueError, match="grid"):
        yolo_v1_loss(sv.tensor(np.zeros((1, 3, 3, 12))), enc, resp, iou)
    # images without objects: only the no-object term, finite, and it trains
    empty = [{"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}] * 2
    terms = model.loss(x, empty)
    assert set(terms) == set(TERMS)
    assert all(terms[k].item() == 0.0 for k in TERMS if k != "loss_noobj")
    assert terms["loss_noobj"].item() > 0
    sum(terms.values(), sv.tensor(0.0)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_registered_and_presets():
    assert "yolo_v1" in DETECTORS
    assert set(SIZES) == {"tiny", "small", "large"}
    small = build_detector("yolo_v1", 4)
    assert (small.grid_size, small.boxes_per_cell, small.input_size) == (4, 2, 64)
    with sv.no_grad():
        out = small.eval()(sv.zeros(1, 3, 64, 64))
    assert out.shape == (1, 4, 4, 13)                       # S x S x (5 B + C)


# ----------------------------------------------------------------- overfitting
def test_overfit_a_few_images():
    ds = Shapes("train", 4, image_size=64, seed=0)
    ims, ts = zip(*[ds[i] for i in range(4)])
    x = normalise(np.stack(ims))
    targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in ts]
    sv.manual_seed(0)
    model = YOLOv1(4, widths=(8, 16, 32), depths=(1, 1, 1), reduce_channels=16, hidden=128,
                   grid_size=4, input_size=64, dropout=0.0)
    opt = nn.optim.Adam(list(model.parameters()), lr=3e-3)
    history = []
    for _ in range(40):
        terms = model.loss(x, targets)
        total = sum(terms.values(), sv.tensor(0.0))
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    first, last = np.mean(history[:5]), np.mean(history[-5:])
    assert last < 0.1 * first, (first, last)
    preds = model.eval().predict(x)
    found = total = 0
    for p, t in zip(preds, targets):
        boxes, labels = p["boxes"].numpy()[:10], p["labels"].numpy()[:10]
        for box, label in zip(t["boxes"], t["labels"]):
            total += 1
            if len(boxes):
                iou = np.asarray(box_iou(box[None], boxes))[0]
                found += bool(((iou >= 0.5) & (labels == label)).any())
    assert found / total >= 0.75, (found, total)


# ----------------------------------------------------------------- the CLI
def test_train_det_cli_tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert cli_main(["train-det", "--model", "yolo_v1", "--size", "tiny", "--image-size", "32",
                     "--train-images", "4", "--val-images", "2", "--batch-size", "2",
                     "--epochs", "1", "--quiet", "--no-pictures", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    last = result["history"][-1]
    assert all(np.isfinite(last[k]) for k in TERMS)
    assert 0 <= result["val_map"] <= 1 and result["settings"]["optimizer"] == "adam"
    # the defaults: the paper's augmentation and the classification pre-training first
    assert result["settings"]["augment"] == "yolo"
    assert result["settings"]["pretrain_epochs"] == 2
    log = (out / "pretrain" / "log.jsonl").read_text()
    pre = [json.loads(line) for line in log.splitlines()]
    assert len(pre) == 2 and all(np.isfinite(e["loss_pretrain"]) for e in pre)
    # evaluate and draw the trained weights from the CLI
    common = ["--model", "yolo_v1", "--size", "tiny", "--image-size", "32", "--val-images",
              "2", "--quiet"]
    weights = str(out / "model.npz")
    assert cli_main(["eval-det", *common, "--weights", weights]) == 0
    det = tmp_path / "det"
    assert cli_main(["detect", *common, "--weights", weights, "--split", "val", "--images",
                     "2", "--out", str(det)]) == 0
    assert (det / "detections.json").exists() and len(list(det.glob("*.png"))) >= 2


@pytest.mark.gpu
def test_loss_and_gradients_on_gpu_match_cpu():
    # the shared detector check (tests/gpu/test_gpu_detectors.py) on YOLO v1's tiny preset
    from tests.gpu.test_gpu_detectors import test_detector_loss_and_gradients_on_gpu_match_cpu
    test_detector_loss_and_gradients_on_gpu_match_cpu("yolo_v1")


# ----------------------------------------------------------------- classification pre-training
def test_pretrainer_windows_centre_objects_and_avoid_them_for_background():
    model = build_detector("yolo_v1", 4, "small")
    pre = model.pretrainer()
    targets = [{"boxes": np.array([[10.0, 20.0, 40.0, 36.0], [80.0, 80.0, 90.0, 95.0]]),
                "labels": np.array([2, 3])},
               {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)}]
    rows, labels = pre.windows(targets, [(128, 128)] * 2)
    # one object window per object (the box's centre, side 2 max(w, h), at least 16 px)
    np.testing.assert_array_equal(labels[:2], [2, 3])
    np.testing.assert_allclose(rows[0], [0, 25 - 30, 28 - 30, 25 + 30, 28 + 30])
    np.testing.assert_allclose(rows[1], [0, 85 - 15, 87.5 - 15, 85 + 15, 87.5 + 15])
    # then background windows: as many as objects at most, none for the empty image,
    # inside the image, IoU < 0.3 with every box of their image
    bg = rows[labels == 0]
    assert 1 <= len(bg) <= 2 and (bg[:, 0] == 0).all()
    assert (bg[:, 1:] >= 0).all() and (bg[:, 1:] <= 128).all()
    assert np.asarray(box_iou(bg[:, 1:], targets[0]["boxes"])).max() < 0.3


def test_pretrainer_trains_the_detectors_stages_and_is_not_saved():
    sv.manual_seed(0)
    model = build_detector("yolo_v1", 4, "tiny")
    pre = model.pretrainer()
    ds = Shapes("train", 4, image_size=32, seed=1)
    ims, ts = zip(*[ds[i] for i in range(4)])
    x = normalise(np.stack(ims))
    targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in ts]
    keys = set(model.state_dict())
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    opt = nn.optim.Adam(pre.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = pre.loss(x, targets)["loss_pretrain"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    after = model.state_dict()
    assert set(after) == keys                                   # no classifier in it
    changed = {k for k in keys if not np.array_equal(before[k], after[k].numpy())}
    assert any(k.startswith("backbone.0.") for k in changed)    # the shared 3x3 stages
    assert not any(k.startswith(("fc1", "fc2")) for k in changed)
    last = str(len(model.backbone) - 1)                         # the 1x1 reduction: untouched
    assert not any(k.startswith(f"backbone.{last}.") for k in changed)


def test_pretrain_epochs_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))
    common = ["train-det", "--size", "tiny", "--image-size", "32", "--train-images", "2",
              "--val-images", "2", "--epochs", "1", "--quiet", "--no-pictures", "--out",
              str(tmp_path / "run")]
    with pytest.raises(SystemExit, match="has no classification pre-training"):
        cli_main([*common, "--model", "sliding_window", "--pretrain-epochs", "1"])
    with pytest.raises(SystemExit):                       # argparse: must be >= 0
        cli_main([*common, "--model", "yolo_v1", "--pretrain-epochs", "-1"])
