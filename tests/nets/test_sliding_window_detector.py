"""The sliding-window detector (OverFeat): the window arithmetic, the convolutionalised
classifier against the per-window one, predict against predict_naive, training-window
sampling, a short overfit run, and bad input. All at the 'tiny' preset."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn
from scratchvision.data.shapes import Shapes
from scratchvision.nets import build_detector
from scratchvision.nets.detection import batch_images, normalise
from scratchvision.nets.sliding_window import SIZES, SlidingWindowDetector, sample_windows
from scratchvision.ops import box_iou


def tiny(**kwargs) -> SlidingWindowDetector:
    sv.manual_seed(0)
    return build_detector("sliding_window", 4, "tiny", **kwargs)


def scramble(model: SlidingWindowDetector, seed: int = 0) -> SlidingWindowDetector:
    """Random weights and batch-norm statistics, so that every cell's output differs
    (the default init of the predictor gives almost uniform scores)."""
    rng = np.random.default_rng(seed)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if "running_var" in name:
            t.data[...] = rng.uniform(0.5, 2.0, t.shape)
        elif "num_batches" not in name:
            t.data[...] = rng.normal(0, 0.3, t.shape)
    return model.eval()


def shapes_batch(n: int, split: str = "train"):
    ds = Shapes(split, n)
    images, targets = zip(*[ds[i] for i in range(n)])
    return normalise(np.stack(images)), [dict(boxes=t["boxes"], labels=t["labels"])
                                        for t in targets]


def test_window_geometry():
    # small: conv3 (30 -> 28), pool (14), conv3 x 2 (10), pool (5), fc6 5x5 (1)
    small = SlidingWindowDetector(4, **SIZES["small"])
    assert (small.window_size, small.stride, small.box_size, small.context) == (30, 4, 16, 7)
    # tiny: conv3, pool, conv3, pool, fc6 6x6: 1 + 2 + 1 + 4 + 2 + 4 * 5 = 30
    assert tiny().window_size == 30
    # a 128-pixel image at the pyramid's top level (181 px): floor((181 - 16) / 4) + 1 cells
    assert small.pyramid(128, 128)[:3] == [(181, 181), (128, 128), (90, 90)]
    assert len(small.cell_boxes((128, 128), (181, 181))) == 42 * 42
    # cell (0, 1) of the 128 px level is the reference box [4, 20) x [0, 16)
    np.testing.assert_allclose(small.cell_boxes((128, 128), (128, 128))[1], [4, 0, 20, 16])


@pytest.mark.parametrize("level_index", [0, 2])
def test_convolutionalised_classifier_equals_per_window(level_index):
    model = scramble(tiny())
    rng = np.random.default_rng(1)
    batch = batch_images(rng.standard_normal((2, 3, 50, 61)).astype(np.float32))
    level = model.pyramid(50, 61)[level_index]
    padded = model.level_images(batch, [0, 1], level)        # (2, 3, H_l + 2P, W_l + 2P)
    with sv.no_grad():
        logits, deltas = model.score_map(padded)
        gh, gw = logits.shape[2:]
        assert gh * gw == len(model.cell_boxes((50, 61), level))
        cells = [(0, 0), (gh - 1, gw - 1), (gh // 2, gw // 3), (1, gw - 2)]
        s, w = model.stride, model.window_size
        crops = np.concatenate([padded[:, :, s * i:s * i + w, s * j:s * j + w]
                                for i, j in cells])           # (4 cells x 2 images, ...)
        lg, dl = model.classify_windows(crops)
    for k, (i, j) in enumerate(cells):
        np.testing.assert_allclose(lg.numpy()[2 * k:2 * k + 2], logits.numpy()[:, :, i, j],
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dl.numpy()[2 * k:2 * k + 2], deltas.numpy()[:, :, i, j],
                                   rtol=1e-4, atol=1e-4)
    assert np.ptp(logits.numpy()) > 1.0          # the cells really differ


def _same(a: dict, b: dict):
    assert len(a["scores"]) == len(b["scores"]) > 0
    np.testing.assert_array_equal(a["labels"].numpy(), b["labels"].numpy())
    np.testing.assert_allclose(a["scores"].numpy(), b["scores"].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy(), rtol=1e-4, atol=1e-3)


def test_predict_equals_predict_naive():
    model = scramble(tiny(detections_per_img=300, score_thresh=0.2))
    rng = np.random.default_rng(2)
    images = [rng.standard_normal((3, 64, 64)).astype(np.float32),
              rng.standard_normal((3, 40, 57)).astype(np.float32)]
    fast, naive = model.predict(images), model.predict_naive(images)
    for a, b in zip(fast, naive):
        _same(a, b)


def test_sample_windows():
    rng = np.random.default_rng(0)
    gt = np.array([[10, 10, 40, 34], [60, 70, 100, 120]], np.float32)
    labels = np.array([2, 3])
    boxes, lab, matched = sample_windows(rng, gt, labels, (128, 128), 32, (11.0, 90.0))
    assert boxes.shape == (32, 4) and lab.shape == (32,) and matched.shape == (32, 4)
    iou = np.asarray(box_iou(boxes, gt))
    pos = lab > 0
    assert pos.sum() == 8                                   # a quarter of 32
    best = iou.argmax(axis=1)
    assert (iou[pos].max(axis=1) >= 0.5).all() and (lab[pos] == labels[best[pos]]).all()
    np.testing.assert_array_equal(matched[pos], gt[best[pos]])
    assert (iou[~pos].max(axis=1) < 0.5).all()
    # near misses (hard negatives) are among them: parts of objects, too large, too small
    assert (iou[~pos].max(axis=1) >= 0.3).any()
    # with an ignored band [0.3, 0.5) (R-CNN's SVM rule) no negative falls in it
    boxes3, lab3, _ = sample_windows(rng, gt, labels, (128, 128), 32, (11.0, 90.0),
                                     bg_iou_thresh=0.3)
    iou3 = np.asarray(box_iou(boxes3, gt)).max(axis=1)
    assert (iou3[lab3 == 0] < 0.3).all() and (iou3[lab3 > 0] >= 0.5).all()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    np.testing.assert_allclose(w, h, rtol=1e-5)             # square windows
    assert (boxes >= -1e-4).all() and (boxes <= 128 + 1e-4).all()   # inside the image
    # no objects: every window is background
    boxes, lab, _ = sample_windows(rng, np.zeros((0, 4)), np.zeros(0, np.int64), (50, 70), 16,
                                   (11.0, 90.0))
    assert boxes.shape == (16, 4) and (lab == 0).all()
    assert (boxes[:, 2:] <= [70 + 1e-4, 50 + 1e-4]).all()


def test_loss_is_finite_backward_runs_and_repeats_under_a_seed():
    x, targets = shapes_batch(2)
    model = tiny()
    sv.manual_seed(5)
    losses = model.loss(x, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    total = losses["loss_classifier"] + losses["loss_box_reg"]
    assert np.isfinite(total.item())
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad).all(), name
    sv.manual_seed(5)
    again = model.loss(x, targets)
    assert again["loss_classifier"].item() == losses["loss_classifier"].item()
    assert again["loss_box_reg"].item() == losses["loss_box_reg"].item()


def test_bad_targets_and_empty_targets():
    x, targets = shapes_batch(2)
    model = tiny()
    bad = [dict(targets[0], labels=np.full_like(targets[0]["labels"], 4)), targets[1]]
    with pytest.raises(ValueError, match="out of range"):
        model.loss(x, bad)
    flat = targets[0]["boxes"].copy()
    flat[0, 3] = flat[0, 1]                                   # zero height
    with pytest.raises(ValueError, match="positive width"):
        model.loss(x, [dict(targets[0], boxes=flat), targets[1]])
    empty = [dict(boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64))] * 2
    losses = model.loss(x, empty)
    total = losses["loss_classifier"] + losses["loss_box_reg"]
    assert np.isfinite(total.item()) and losses["loss_box_reg"].item() == 0.0
    total.backward()
    with pytest.raises(ValueError, match="box_size"):
        SlidingWindowDetector(4, box_size=15)                   # (30 - 15) is odd


@pytest.fixture(scope="module")
def overfit():
    """The tiny model after 60 Adam steps on 4 Shapes images (a few seconds)."""
    x, targets = shapes_batch(4)
    model = tiny(windows_per_image=64)
    opt = nn.optim.Adam(list(model.parameters()), lr=1e-2)
    first, last = [], []
    for step in range(60):
        losses = model.loss(x, targets)
        total = losses["loss_classifier"] + losses["loss_box_reg"]
        opt.zero_grad()
        total.backward()
        opt.step()
        (first if step < 5 else last if step >= 55 else []).append(total.item())
    return model.eval(), x, targets, np.mean(first), np.mean(last)


def test_overfit_loss_falls_and_finds_the_boxes(overfit):
    model, x, targets, first, last = overfit
    assert last < 0.5 * first
    preds = model.predict(x)
    found = total = 0
    for p, t in zip(preds, targets):
        top = p["boxes"].numpy()[:10]
        labels = p["labels"].numpy()[:10]
        for box, label in zip(t["boxes"], t["labels"]):
            total += 1
            if len(top):
                iou = np.asarray(box_iou(box[None], top))[0]
                found += bool(((iou >= 0.5) & (labels == label)).any())
    assert found / total >= 0.75, (found, total)


def test_predict_blank_image_tiny_image_and_a_list_of_sizes(overfit):
    model, x, _, _, _ = overfit
    blank = np.zeros((1, 3, 128, 128), np.float32)         # the mean colour everywhere
    (out,) = model.predict(blank)
    assert out["boxes"].shape[1:] == (4,) and out["labels"].dtype == np.int64
    assert (out["scores"].numpy() < 0.5).all()
    # too small for any window at any level: exactly empty
    (out,) = model.predict(np.zeros((1, 3, 8, 8), np.float32))
    assert out["boxes"].shape == (0, 4) and out["scores"].shape == (0,)
    # two sizes in one list: boxes inside each image, the same as predicting each alone
    images = [x[0], np.ascontiguousarray(x[1][:, 10:110, 5:85])]
    outs = model.predict(images)
    for im, out in zip(images, outs):
        h, w = im.shape[1:]
        b = out["boxes"].numpy()
        assert len(b) > 0
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        (alone,) = model.predict(im[None])
        _same(out, alone)
