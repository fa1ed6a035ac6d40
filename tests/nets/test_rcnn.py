"""R-CNN: the SVM solver and hard negative mining on hand-worked 2-D sets, the ridge box
regressor and the paper's targets, the context-padded warp, a short overfit run on four
Shapes images through finish_training, and the edge cases of loss/predict/state_dict."""
import math

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn
from scratchvision.data.shapes import generate
from scratchvision.nets import build_detector
from scratchvision.nets.detection import normalise
from scratchvision.nets.rcnn import (
    RCNN,
    SIZES,
    bbox_regression_targets,
    context_boxes,
    hard_negative_mining,
    ridge_regression,
    train_linear_svm,
    warp_regions,
)
from scratchvision.ops import box_iou
from scratchvision.proposals.selective_search import SelectiveSearch


# ----------------------------------------------------------------------------- SVMs
def test_svm_hand_worked_separable():
    """Positives at x1 >= 2 and negatives at x1 <= -2, symmetric about both axes: the
    max-margin hyperplane is x1 = 0 with w = (1/2, 0), b = 0 (margin 1/|w| = 2, half the
    gap of 4), and only (+-2, 0) are support vectors, with y (w.x + b) = 1 exactly."""
    X = np.array([[2, 0], [3, 1], [3, -1], [-2, 0], [-3, 1], [-3, -1]], float)
    y = np.array([1, 1, 1, -1, -1, -1])
    w, b, alpha = train_linear_svm(X, y, C=100.0, pos_weight=1.0, tol=1e-9,
                                   rng=np.random.default_rng(0))
    np.testing.assert_allclose(w, [0.5, 0.0], atol=1e-6)
    assert abs(b) < 1e-6
    margins = y * (X @ w + b)
    np.testing.assert_allclose(margins[[0, 3]], 1.0, atol=1e-6)      # support vectors
    np.testing.assert_allclose(margins[[1, 2, 4, 5]], 1.5, atol=1e-6)  # 3/2 beyond
    assert np.all(alpha[[1, 2, 4, 5]] == 0) and np.all(alpha[[0, 3]] > 0)
    # the dual's w = sum_i alpha_i y_i x_i (the bias feature is 10, so 10 * w_b = b)
    np.testing.assert_allclose((alpha * y) @ X, w, atol=1e-9)


def _primal(w, wb, X, y, C, pos_weight, bias_mult):
    """1/2 (|w|^2 + w_b^2) + sum_i C_i hinge_i, vectorised over a grid of (w1, w2, w_b)."""
    Ci = np.where(y > 0, C * pos_weight, C)
    f = X @ w.T + bias_mult * wb[None, :]                                 # (n, G)
    hinge = np.maximum(0, 1 - y[:, None] * f)
    return 0.5 * ((w ** 2).sum(1) + wb ** 2) + (Ci[:, None] * hinge).sum(0)


def test_svm_matches_brute_force_grid_soft_margin():
    """An overlapping (not separable) set with a weighted class and a small bias feature:
    the solver's primal objective is the minimum of a fine grid, up to the grid's step."""
    X = np.array([[1.0, 2.0], [2.0, 0.5], [0.2, 0.1], [-1.0, -0.5], [-0.5, 1.0],
                  [0.5, -1.0], [1.5, 1.5]])
    y = np.array([1, 1, 1, -1, -1, -1, -1])
    C, pw, bm = 0.5, 2.0, 1.0
    w, b, _ = train_linear_svm(X, y, C=C, pos_weight=pw, bias_mult=bm, tol=1e-10,
                               rng=np.random.default_rng(1))
    best = _primal(np.array([w]), np.array([b / bm]), X, y, C, pw, bm)[0]
    g = np.linspace(-2, 2, 81)                                           # step 0.05
    W1, W2, WB = np.meshgrid(g, g, g, indexing="ij")
    f = _primal(np.stack([W1.ravel(), W2.ravel()], 1), WB.ravel(), X, y, C, pw, bm)
    assert best <= f.min() + 1e-9
    k = int(f.argmin())
    np.testing.assert_allclose([w[0], w[1], b / bm], [W1.ravel()[k], W2.ravel()[k],
                                                      WB.ravel()[k]], atol=0.06)


def test_hard_negative_mining_finds_exactly_the_hard_ones():
    """Positives around (3, 0); 10 easy negatives far left (x1 <= -10), 3 hard ones near the
    positives (x1 in 0.5..1). Starting from the 4 nearest easy negatives, the first SVM puts
    its boundary half-way to x1 = -10 (w1 ~ 2/13): every uncached easy negative scores
    below -1 and the 3 hard ones above, so round 1 mines exactly them; round 2 finds none,
    and the final model puts every negative below 0."""
    pos = np.array([[3, 0], [3, 1], [3, -1], [4, 0.5], [4, -0.5]], float)
    easy = np.array([[-10, 0], [-10, 1], [-10, -1], [-10, 0.5], [-12, 0], [-13, 2],
                     [-14, -2], [-15, 0], [-18, 1], [-20, -1]], float)
    hard = np.array([[0.5, 0.0], [1.0, 1.0], [1.0, -1.0]])
    X = np.concatenate([pos, easy, hard])
    positives = np.arange(5)
    negatives = np.arange(5, 18)                                          # easy then hard
    w, b, info = hard_negative_mining(X, positives, negatives, init_negatives=np.arange(4),
                                      rng=np.random.default_rng(0), C=100.0,
                                      pos_weight=1.0, tol=1e-8)
    np.testing.assert_array_equal(info["mined"][0], [15, 16, 17])
    assert info["rounds"] == 2 and len(info["mined"][1]) == 0
    assert np.all(X[negatives] @ w + b < 0)
    assert np.all(X[positives] @ w + b > 0)


def test_hard_negative_mining_random_start_uses_the_generator():
    """The random starting cache comes from the generator at call time: same seed, same
    model; and all negatives end below the margin's other side (score < 0)."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(2, 0.5, (20, 3)), rng.normal(-2, 0.5, (300, 3))])
    runs = []
    for _ in range(2):
        sv.manual_seed(7)
        runs.append(hard_negative_mining(X, np.arange(20), np.arange(20, 320),
                                         init_negatives=10, C=1.0))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    w, b, info = runs[0]
    assert len(info["mined"][0]) > 0 and np.all(X[20:] @ w + b < 0)


# ------------------------------------------------------------------ box regression
def test_bbox_targets_hand_worked():
    """P = (10, 20, 50, 40): centre (30, 30), 40 x 20. G = (14, 22, 62, 42): centre (38, 32),
    48 x 20. t_x = (38 - 30) / 40 = 0.2, t_y = (32 - 30) / 20 = 0.1,
    t_w = log(48 / 40) = log 1.2 = 0.18232, t_h = log(20 / 20) = 0."""
    t = bbox_regression_targets([[10, 20, 50, 40]], [[14, 22, 62, 42]])
    np.testing.assert_allclose(t, [[0.2, 0.1, math.log(1.2), 0.0]], atol=1e-12)


def test_ridge_recovers_a_linear_map_and_shrinks():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 3, (400, 6))
    M = rng.normal(0, 1, (6, 4))
    c = np.array([0.5, -1.0, 2.0, 0.0])
    Y = X @ M + c
    W = ridge_regression(X, Y, lam=1e-6)
    np.testing.assert_allclose(W[:-1], M, atol=1e-6)
    np.testing.assert_allclose(W[-1], c, atol=1e-6)
    # the closed form with lambda = 1000: ([X 1]^T [X 1] + lam I) W = [X 1]^T (Y - mean)
    W = ridge_regression(X, Y, lam=1000.0)
    A = np.concatenate([X, np.ones((400, 1))], 1)
    resid = (A.T @ A + 1000 * np.eye(7)) @ (W - np.r_[np.zeros((6, 4)), [Y.mean(0)]])
    np.testing.assert_allclose(resid, A.T @ (Y - Y.mean(0)), atol=1e-6)
    # huge lambda: no weights left, predictions are the mean target
    W = ridge_regression(X, Y, lam=1e12)
    np.testing.assert_allclose(W[:-1], 0, atol=1e-6)
    np.testing.assert_allclose(W[-1], Y.mean(0), atol=1e-6)


# --------------------------------------------------------------------------- warping
def test_context_boxes_hand_worked():
    """Warp S = 8 with p = 1: the box becomes S / (S - 2p) = 4/3 as wide and high about its
    centre. (18, 10, 42, 22): centre (30, 16), 24 x 12 -> 32 x 16 -> (14, 8, 46, 24). The
    paper's p = 16 at 227 gives 227 / 195 at any warp size with p = 16 S / 227."""
    np.testing.assert_allclose(context_boxes(np.array([[18., 10, 42, 22]]), 8, 1.0),
                               [[14, 8, 46, 24]])
    model = RCNN(4, **SIZES["tiny"])
    assert model.context_padding == pytest.approx(16 * 16 / 227)
    big = context_boxes(np.array([[0., 0, 195, 195]]), 16, model.context_padding)
    np.testing.assert_allclose(big, [[-16, -16, 211, 211]], atol=1e-9)
    with pytest.raises(ValueError, match="context padding"):
        context_boxes(np.zeros((1, 4)), 8, 4.0)


def test_warp_equals_the_enlarged_box_on_an_arange_image():
    """Image value v(c, y, x) = x + 100 y + 10000 c at pixel (y, x) (a linear function, so
    bilinear sampling is exact and the mean of a bin's symmetric samples is its centre's
    value). The box (18, 10, 42, 22) with S = 8, p = 1 becomes (14, 8, 46, 24): bins of
    4 x 2 pixels; bin (i, j) is centred at x = 14 + 4 (j + 0.5) = 16 + 4 j, y = 9 + 2 i,
    i.e. pixel index (x - 0.5, y - 0.5) (half-pixel model), so
    v = 15.5 + 4 j + 100 (8.5 + 2 i) + 10000 c = 865.5 + 4 j + 200 i + 10000 c."""
    yy, xx = np.mgrid[0:30, 0:50].astype(np.float32)
    img = np.stack([xx + 100 * yy + 10000 * c for c in range(3)])[None]    # (1, 3, 30, 50)
    out = warp_regions(img, np.array([[0, 18, 10, 42, 22]], np.float32), 8, 1.0)
    i, j = np.mgrid[0:8, 0:8]
    expected = np.stack([865.5 + 4 * j + 200 * i + 10000 * c for c in range(3)])
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_warp_outside_the_image_is_zero():
    """A whole-image box on a 16 x 16 image of ones, S = 8, p = 2 (scale 2): the window is
    (-8, -8, 24, 24), bins of 4 pixels; the outer bins lie wholly outside (0, the mean of a
    normalised image), the central 4 x 4 wholly inside (1)."""
    out = warp_regions(np.ones((1, 3, 16, 16), np.float32),
                       np.array([[0, 0, 0, 16, 16]], np.float32), 8, 2.0)[0]
    assert np.all(out[:, 0] == 0) and np.all(out[:, -1] == 0)
    assert np.all(out[:, :, 0] == 0) and np.all(out[:, :, -1] == 0)
    np.testing.assert_allclose(out[:, 2:6, 2:6], 1.0)


# ------------------------------------------------------------------ model end to end
def _shapes(indices, split="train"):
    ss = SelectiveSearch("fast", num_threads=1)
    samples = [generate(0, split, i, 128) for i in indices]
    images = normalise(np.stack([s["image"] for s in samples]))
    targets = [{"boxes": s["boxes"], "labels": s["labels"]} for s in samples]
    return images, targets, [ss(s["image"]) for s in samples]


@pytest.fixture(scope="module")
def trained():
    """'tiny' R-CNN fine-tuned 40 steps on 4 Shapes images, then finish_training."""
    images, targets, proposals = _shapes(range(4))
    sv.manual_seed(0)
    model = build_detector("rcnn", 4, "tiny")
    opt = nn.optim.Adam(list(model.parameters()), lr=1e-2)
    losses = []
    model.train()
    for _ in range(40):
        loss = model.loss(images, targets, proposals=proposals)["loss_classifier"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.numpy()))
    before = model.predict(images, proposals=proposals)
    stats = model.finish_training(images, targets, proposals, progress=False)
    return model, images, targets, proposals, losses, before, stats


def _recall(dets, targets, top: int = 10) -> float:
    """Fraction of gts matched (same label, IoU >= 0.5) by one of the image's top detections."""
    hit = total = 0
    for d, t in zip(dets, targets):
        boxes, labels = d["boxes"].numpy()[:top], d["labels"].numpy()[:top]
        total += len(t["boxes"])
        if len(boxes):
            iou = np.asarray(box_iou(t["boxes"], boxes))
            hit += int(((iou >= 0.5) & (t["labels"][:, None] == labels[None])).any(1).sum())
    return hit / total


def test_overfit_loss_falls_and_detections_find_the_boxes(trained):
    model, images, targets, proposals, losses, before, stats = trained
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert float(model.svm_trained.numpy()[0]) == 1 and float(model.bbox_trained.numpy()[0]) == 1
    assert stats["windows"] == sum(len(p) + len(t["boxes"]) for p, t in zip(proposals,
                                                                            targets))
    dets = model.predict(images, proposals=proposals)                 # SVM + regression
    assert _recall(dets, targets) >= 0.75
    for d in dets:
        assert len(d["boxes"]) <= 100 and d["boxes"].dtype == np.float32
        assert d["labels"].dtype == np.int64 and np.all(np.diff(d["scores"].numpy()) <= 0)
    soft = model.predict(images, proposals=proposals, scorer="softmax")
    assert _recall(soft, targets) >= 0.75
    assert all(np.all((s["scores"].numpy() > 0) & (s["scores"].numpy() <= 1)) for s in soft)


def test_state_dict_round_trip_after_finish_training(trained, tmp_path):
    model, images, _, proposals, *_ = trained
    path = tmp_path / "rcnn.npz"
    nn.save(model, path)
    fresh = build_detector("rcnn", 4, "tiny")
    assert float(fresh.svm_trained.numpy()[0]) == 0
    fresh.load_state_dict(nn.load(path))
    a = model.predict(images[:2], proposals=proposals[:2])
    b = fresh.predict(images[:2], proposals=proposals[:2])
    for da, db in zip(a, b):
        for key in ("boxes", "scores", "labels"):
            np.testing.assert_array_equal(da[key].numpy(), db[key].numpy())


def test_predict_empty_image_and_two_sizes(trained):
    model = trained[0]
    blank = normalise(np.full((1, 96, 80, 3), 128, np.uint8))
    dets = model.predict(blank)                          # Selective Search on the image
    assert dets[0]["boxes"].shape[1:] == (4,)
    assert len(dets[0]["boxes"]) == len(dets[0]["scores"]) == len(dets[0]["labels"])
    assert model.predict(blank, proposals=[np.zeros((0, 4))])[0]["boxes"].shape == (0, 4)
    images, _, proposals = _shapes([0, 1])
    small = images[1][:, :64, :96]
    keep = (proposals[1][:, 2] <= 96) & (proposals[1][:, 3] <= 64)
    out = model.predict([images[0], small], proposals=[proposals[0], proposals[1][keep]])
    alone = model.predict(images[:1], proposals=proposals[:1])
    np.testing.assert_allclose(out[0]["scores"].numpy(), alone[0]["scores"].numpy(),
                               rtol=1e-5)
    b = out[1]["boxes"].numpy()
    assert np.all(b[:, 2] <= 96 + 1e-4) and np.all(b[:, 3] <= 64 + 1e-4)


def test_loss_edge_cases_and_errors():
    sv.manual_seed(0)
    model = build_detector("rcnn", 4, "tiny")
    images, targets, proposals = _shapes([0, 1])
    empty = [{"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}] * 2
    loss = model.loss(images, empty, proposals=proposals)["loss_classifier"]
    assert np.isfinite(float(loss.numpy()))
    loss.backward()                                      # background-only batches train too
    nothing = model.loss(images, empty, proposals=[np.zeros((0, 4))] * 2)["loss_classifier"]
    assert float(nothing.numpy()) == 0.0
    bad = [dict(targets[0], labels=np.full(len(targets[0]["labels"]), 4)), targets[1]]
    with pytest.raises(ValueError, match="out of range"):
        model.loss(images, bad, proposals=proposals)
    with pytest.raises(ValueError, match="proposals"):
        model.loss(images, targets, proposals=proposals[:1])
    with pytest.raises(ValueError, match="finish_training"):
        model.predict(images, proposals=proposals, scorer="svm")
    with pytest.raises(ValueError, match="scorer"):
        model.predict(images, proposals=proposals, scorer="probability")
    # the 32 + 96 windows are drawn from the default generator at call time
    values = []
    for _ in range(2):
        sv.manual_seed(5)
        values.append(float(model.loss(images, targets, proposals=proposals)
                            ["loss_classifier"].numpy()))
    assert values[0] == values[1]


def test_folded_batch_norm_matches_the_eval_forward():
    """extract_features folds each batch norm into its conv: same pool5 and fc7 as the
    modules' own eval-mode forward (running statistics made non-trivial first)."""
    sv.manual_seed(0)
    model = RCNN(4, **SIZES["tiny"])
    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data = rng.normal(0, 0.5, m.num_features).astype(np.float32)
            m.running_var.data = rng.uniform(0.5, 2, m.num_features).astype(np.float32)
            m.weight.data = rng.uniform(0.5, 1.5, m.num_features).astype(np.float32)
            m.bias.data = rng.normal(0, 0.5, m.num_features).astype(np.float32)
    images = rng.normal(0, 1, (2, 3, 40, 40)).astype(np.float32)
    rois = np.array([[0, 2, 3, 30, 20], [1, 10, 5, 38, 39], [1, 0, 0, 40, 40]], np.float32)
    pool5, fc7 = model.extract_features(images, rois)
    assert model.training                                 # the mode is restored
    model.eval()
    with sv.no_grad():
        p5, f7 = model.features(sv.tensor(warp_regions(images, rois, 16,
                                                       model.context_padding)))
    np.testing.assert_allclose(pool5, p5.numpy().reshape(3, -1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fc7, f7.numpy(), rtol=1e-4, atol=1e-5)
