"""SSD: default boxes (scales, ratios, counts, layout) against the paper's formula by hand,
matching and encoding on hand-worked cases, hard negative mining by counting, the loss
against a NumPy computation and the float64 gradient check, test-time decoding, NMS and
resizing, bad input, a short overfit run; SSD's augmentation (the crop sampler, a
reproducible pipeline, boxes inside the image) and ``train-det --augment`` (other models'
batches as before), and the detect / eval-det commands for ssd."""
import json
import math
from itertools import islice

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn
from scratchvision.autograd.gradcheck import gradcheck, registered_gradchecks, run_case
from scratchvision.cli import main as cli_main
from scratchvision.data import transforms as T
from scratchvision.data.augment import SSD_SAMPLER_OPTIONS, ssd_augmentation
from scratchvision.data.shapes import Shapes
from scratchvision.nets import DETECTORS, build_detector
from scratchvision.nets.detection import normalise
from scratchvision.nets.ssd import (
    SIZES,
    SSD,
    background_loss,
    decode,
    default_aspect_ratios,
    default_box_scales,
    encode,
    encode_targets,
    hard_negative_mining,
    match,
    ssd_loss,
)
from scratchvision.ops import box_iou
from scratchvision.train_det import flip_boxes, load_split

TERMS = ("loss_box_reg", "loss_classifier")


def _shapes(n, size=32, split="train", seed=0):
    ds = Shapes(split, n, image_size=size, seed=seed)
    ims, ts = zip(*[ds[i] for i in range(n)])
    return np.stack(ims), [{"boxes": t["boxes"], "labels": t["labels"]} for t in ts]


# ----------------------------------------------------------------- default boxes
def test_scales_follow_the_papers_formula():
    # s_k = 0.1 + 0.8 (k - 1) / 5 for k = 1..6, continued to k = 7 for the extra box of
    # the last map: 0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06
    np.testing.assert_allclose(default_box_scales(6, 0.1, 0.9),
                               [0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06])
    np.testing.assert_allclose(default_box_scales(1, 0.2, 0.9), [0.2, 0.9])
    # SSD300's layout: 4 boxes on the first map and the last two, 6 on the others
    assert default_aspect_ratios(6) == [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    assert default_aspect_ratios(4) == [[2], [2, 3], [2], [2]]


def test_default_boxes_per_map_by_hand():
    model = build_detector("ssd", 4, "small")
    assert model.feature_sizes == [32, 16, 8, 4, 2, 1]
    assert model.boxes_per_cell == [4, 6, 6, 6, 4, 4]
    # D = 32^2 4 + 16^2 6 + 8^2 6 + 4^2 6 + 2^2 4 + 1 4 = 4096 + 1536 + 384 + 96 + 16 + 4
    d = model.default_boxes
    assert d.shape == (6132, 4)

    def box(cx, cy, w, h):             # relative (cx, cy, w, h) -> x1y1x2y2 in 128 px
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * 128

    # map 2 (16 x 16, offset 4096), cell row 3, column 5: index 4096 + (3 * 16 + 5) * 6;
    # centre ((5 + 0.5) / 16, (3 + 0.5) / 16); s_2 = 0.26, s'_2 = sqrt(0.26 * 0.42)
    first = 4096 + (3 * 16 + 5) * 6
    cx, cy, s, s2 = 5.5 / 16, 3.5 / 16, 0.26, math.sqrt(0.26 * 0.42)
    r2, r3 = math.sqrt(2), math.sqrt(3)
    expected = [box(cx, cy, s, s), box(cx, cy, s2, s2),
                box(cx, cy, s * r2, s / r2), box(cx, cy, s / r2, s * r2),
                box(cx, cy, s * r3, s / r3), box(cx, cy, s / r3, s * r3)]
    np.testing.assert_allclose(d[first:first + 6], expected, atol=1e-4)
    # map 1 (32 x 32), its last cell (31, 31): index (31 * 32 + 31) * 4 = 4092, centre
    # (31.5 / 32) of 128 = 126, side 0.1 * 128 = 12.8 (positions are not clipped)
    np.testing.assert_allclose(d[4092], [119.6, 119.6, 132.4, 132.4], atol=1e-4)
    # map 6 (1 x 1, offset 6128): s_6 = 0.9, s'_6 = sqrt(0.9 * 1.06); the ratio-2 boxes'
    # width 0.9 sqrt 2 = 1.27 is clipped to the whole image (torchvision's clip)
    np.testing.assert_allclose(d[6128:], [box(0.5, 0.5, 0.9, 0.9),
                                          box(0.5, 0.5, *[math.sqrt(0.9 * 1.06)] * 2),
                                          box(0.5, 0.5, 1.0, 0.9 / r2),
                                          box(0.5, 0.5, 0.9 / r2, 1.0)], atol=1e-4)
    # every map: A_k boxes at each of its f_k^2 centres, centres on the (j + 0.5) / f grid
    start = 0
    for f, a in zip(model.feature_sizes, model.boxes_per_cell):
        part = d[start:start + f * f * a].reshape(f, f, a, 4)
        centres = (part[..., :2] + part[..., 2:]) / 2                   # (f, f, a, 2)
        grid = (np.arange(f) + 0.5) * 128 / f
        np.testing.assert_allclose(centres[..., 0], np.broadcast_to(grid[None, :, None],
                                                                    (f, f, a)), atol=1e-4)
        np.testing.assert_allclose(centres[..., 1], np.broadcast_to(grid[:, None, None],
                                                                    (f, f, a)), atol=1e-4)
        start += f * f * a
    assert start == len(d)


def test_prediction_layout_matches_the_default_boxes():
    # the heads' (N, A K, f, f) outputs reach row d = O_k + (i f + j) A + a: feed source
    # maps whose channel 0 holds the cell number i f + j, make each head copy it to every
    # output channel (centre tap) and add a bias naming the channel and the map
    sv.manual_seed(0)
    model = build_detector("ssd", 4, "tiny")
    sizes, boxes = model.feature_sizes, model.boxes_per_cell
    assert sizes == [16, 8, 4, 2] and boxes == [4, 6, 4, 4]

    def sources(x):
        out = []
        for f, head in zip(sizes, model.cls_heads):
            m = np.zeros((1, head.in_channels, f, f), np.float32)
            m[0, 0] = np.arange(f * f).reshape(f, f)
            out.append(sv.tensor(m))
        return out

    model._sources = sources
    for heads in (model.cls_heads, model.box_heads):
        for k, head in enumerate(heads):
            head.weight.data[...] = 0.0
            head.weight.data[:, 0, 1, 1] = 1.0
            head.bias.data[...] = 1000.0 * np.arange(1, head.out_channels + 1) + 1e5 * k
    with sv.no_grad():
        scores, offsets = model(sv.zeros(1, 3, 32, 32))
    assert scores.shape == (1, 1488, 4) and offsets.shape == (1, 1488, 4)
    start = 0
    for k, (f, a_k) in enumerate(zip(sizes, boxes)):
        d = np.arange(f * f * a_k)
        cell, a = d // a_k, d % a_k
        for out, width in ((scores, 4), (offsets, 4)):
            channel = a[:, None] * width + np.arange(width)                 # a K + c
            want = cell[:, None] + 1000.0 * (channel + 1) + 1e5 * k
            np.testing.assert_array_equal(out.numpy()[0, start:start + len(d)], want)
        start += len(d)


# ----------------------------------------------------------------- matching and encoding
def test_matching_hand_worked():
    defaults = np.array([[0, 0, 10, 10],             # D0
                         [20, 0, 30, 10],            # D1
                         [21.5, 0, 31.5, 10],        # D2
                         [22, 0, 32, 10],            # D3
                         [50, 50, 60, 60]], float)   # D4: overlaps nothing
    gt = np.array([[0, 0, 6, 6],                     # G0: IoU with D0 = 36 / 100 = 0.36
                   [20, 0, 30, 10],                  # G1 = D1
                   [22, 0, 32, 10]], float)          # G2 = D3
    # G0's best box is D0 at IoU 0.36 < 0.5: matched all the same (step 1). D2 overlaps
    # G1 by 8.5 x 10: 85 / 115 = 0.739 and G2 by 9.5 x 10: 95 / 105 = 0.905, both > 0.5,
    # and is nobody's best: step 2 gives it to its best ground truth, G2
    iou = np.asarray(box_iou(gt, defaults))
    np.testing.assert_allclose(iou[:, 2], [0.0, 85 / 115, 95 / 105])
    assert iou[0].max() == pytest.approx(0.36)
    np.testing.assert_array_equal(match(gt, defaults), [0, 1, 2, 2, -1])
    # labels and offsets: G0 (centre 3, 3, 6 x 6) against D0 (5, 5, 10 x 10):
    # ((3 - 5) / (0.1 * 10), ..., log(6 / 10) / 0.2, ...); G2 against D2: centre 27 vs 26.5
    labels, offsets = encode_targets([{"boxes": gt, "labels": np.array([3, 1, 2])}], defaults)
    np.testing.assert_array_equal(labels, [[3, 1, 2, 2, 0]])
    lw = math.log(0.6) / 0.2
    np.testing.assert_allclose(offsets[0], [[-2, -2, lw, lw], [0, 0, 0, 0], [0.5, 0, 0, 0],
                                            [0, 0, 0, 0], [0, 0, 0, 0]], atol=1e-12)
    # no objects: every box is background
    np.testing.assert_array_equal(match(np.zeros((0, 4)), defaults), [-1] * 5)


def test_matching_two_objects_never_share_a_box_and_iou_half_counts():
    # Ga and Gb both have D0 as their best box (IoU 1 and 100/105); the best pair goes
    # first, so Ga keeps D0 and Gb takes its best remaining box D1 (IoU 105/420 = 0.25,
    # below 0.5: matched through step 1). Whatever the order of the targets.
    defaults = np.array([[0, 0, 10, 10], [0, 0, 20, 21], [40, 40, 50, 50]], float)
    ga, gb = [0, 0, 10, 10], [0, 0, 10, 10.5]
    np.testing.assert_array_equal(match(np.array([ga, gb], float), defaults), [0, 1, -1])
    np.testing.assert_array_equal(match(np.array([gb, ga], float), defaults), [1, 0, -1])
    # IoU exactly 0.5 counts (>=, as the Caffe code and torchvision), just below does not
    defaults = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 20.5]], float)
    np.testing.assert_array_equal(match(np.array([[0, 0, 10, 10]], float), defaults),
                                  [0, 0, -1])


def test_encode_hand_worked_and_decode_round_trip(rng):
    # default box centre (5, 10), 10 x 20; truth centre (6, 12), same size: (1 / (0.1 * 10),
    # 2 / (0.1 * 20), 0, 0); truth 20 x 20 at (10, 10): (5, 0, log 2 / 0.2, 0)
    d = np.array([[0, 0, 10, 20], [0, 0, 10, 20]], float)
    g = np.array([[1, 2, 11, 22], [0, 0, 20, 20]], float)
    np.testing.assert_allclose(encode(g, d), [[1, 1, 0, 0], [5, 0, math.log(2) / 0.2, 0]],
                               atol=1e-12)
    xy = rng.uniform(0, 100, (50, 2))
    d = np.concatenate([xy, xy + rng.uniform(2, 60, (50, 2))], axis=1)
    xy = rng.uniform(0, 100, (50, 2))
    g = np.concatenate([xy, xy + rng.uniform(1, 80, (50, 2))], axis=1)
    np.testing.assert_allclose(decode(encode(g, d), d), g, atol=1e-9)


# ----------------------------------------------------------------- hard negative mining
def test_hard_negative_mining_keeps_three_negatives_per_positive():
    labels = np.array([[0, 1, 0, 0, 0, 0, 0, 0, 0, 0],      # 1 positive: 3 negatives
                       [1, 1, 2, 0, 0, 0, 0, 0, 3, 0],      # 4 positives, 6 negatives: all
                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])     # none: no negatives
    loss = np.array([[5, 9, 1, 7, 7, 2, 8, 0, 3, 7],
                     [1, 2, 3, 4, 5, 6, 7, 8, 9, 0],
                     [9, 9, 9, 9, 9, 9, 9, 9, 9, 9]], float)
    chosen = hard_negative_mining(loss, labels)
    # image 0: the hardest negatives 6 (loss 8), then of the three 7s the lower indices
    # 3 and 4; the positive (loss 9) is never a negative
    np.testing.assert_array_equal(np.flatnonzero(chosen[0]), [3, 4, 6])
    np.testing.assert_array_equal(np.flatnonzero(chosen[1]), [3, 4, 5, 6, 7, 9])
    assert not chosen[2].any()
    # by counting, on random data: exactly min(3 P, negatives) per image, the hardest
    rng = np.random.default_rng(0)
    for positives in (0, 1, 5, 20, 300, 900):
        labels = np.zeros((1, 1000), np.int64)
        labels[0, rng.choice(1000, positives, replace=False)] = rng.integers(1, 4, positives)
        loss = rng.random((1, 1000))
        chosen = hard_negative_mining(loss, labels)[0]
        negatives = labels[0] == 0
        assert chosen.sum() == min(3 * positives, negatives.sum())
        assert not (chosen & ~negatives).any()
        if chosen.any() and (negatives & ~chosen).any():
            assert loss[0, chosen].min() >= loss[0, negatives & ~chosen].max()
    assert hard_negative_mining(np.ones((1, 4)), np.array([[1, 0, 0, 0]]), 2).sum() == 2


def test_background_loss_is_the_cross_entropy_of_class_zero(rng):
    c = rng.standard_normal((2, 5, 4))
    want = -np.log(np.exp(c[..., 0]) / np.exp(c).sum(-1))
    np.testing.assert_allclose(background_loss(sv.tensor(c)), want, rtol=1e-12)


# ----------------------------------------------------------------- the loss
def test_loss_equals_a_numpy_computation_and_is_divided_by_the_positives(rng):
    n, d, k = 2, 30, 4
    labels = np.zeros((n, d), np.int64)
    labels[0, [2, 7]] = [1, 3]
    labels[1, [4]] = [2]
    cls, reg = rng.standard_normal((n, d, k)), rng.standard_normal((n, d, 4))
    offsets = np.where(labels[..., None] > 0, rng.standard_normal((n, d, 4)), 0.0)
    negatives = hard_negative_mining(background_loss(cls), labels)
    assert negatives.sum(axis=1).tolist() == [6, 3]
    terms = ssd_loss(sv.tensor(cls), sv.tensor(reg), labels, offsets, negatives)
    assert set(terms) == set(TERMS)
    logp = cls - np.log(np.exp(cls).sum(-1, keepdims=True))
    use = (labels > 0) | negatives
    ce = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    diff = np.abs(reg - offsets)[labels > 0]
    smooth = np.where(diff < 1, 0.5 * diff ** 2, diff - 0.5).sum()
    assert terms["loss_classifier"].item() == pytest.approx(ce[use].sum() / 3, rel=1e-12)
    assert terms["loss_box_reg"].item() == pytest.approx(smooth / 3, rel=1e-12)
    # N = 0: both terms are 0 (the paper), and still part of the graph
    empty = ssd_loss(sv.tensor(cls, requires_grad=True), sv.tensor(reg), np.zeros((n, d),
                     np.int64), np.zeros((n, d, 4)), np.zeros((n, d), bool))
    assert all(v.item() == 0.0 for v in empty.values())


def test_loss_gradcheck_float64():
    r = run_case(registered_gradchecks()["ssd_loss"])
    assert r.ok, r.worst
    assert r.checked == 2 * 8 * 3 + 2 * 8 * 4


def test_model_gradcheck_through_the_network_float64():
    # the whole model in float64 on one 8 x 8 image (maps 4 x 4 and 2 x 2), batch norm in
    # eval mode; the matching and the mined negatives fixed from the first forward pass
    sv.manual_seed(0)
    model = SSD(3, widths=(2, 2), depths=(1, 1), sources=1, extras=((2, 2),),
                input_size=8).double().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8))
    labels, offsets = encode_targets([{"boxes": np.array([[0.5, 1.0, 5.0, 6.0]]),
                                       "labels": np.array([2])}], model.default_boxes)
    with sv.no_grad():
        cls0, _ = model(sv.tensor(x))
    negatives = hard_negative_mining(background_loss(cls0), labels)
    assert (labels > 0).sum() >= 1 and negatives.sum() == 3 * (labels > 0).sum()
    gradcheck(lambda x: tuple(ssd_loss(*model(x), labels, offsets, negatives).values()), [x])


# ----------------------------------------------------------------- test time
def test_postprocess_softmax_threshold_nms_and_scaling():
    model = build_detector("ssd", 4, "tiny")
    # three default boxes of the 32 px input: A, B (IoU with A = 100 / 200 = 0.5 > 0.45)
    # and C (IoU with A = 100 / 250 = 0.4); zero offsets decode to the default boxes
    model.default_boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 25]], float)
    probs = np.array([[0.055, 0.005, 0.90, 0.04],   # A
                      [0.10, 0.05, 0.80, 0.05],     # B
                      [0.235, 0.005, 0.70, 0.06]])  # C
    # label 2: A (0.9) suppresses B (IoU 0.5 > 0.45), not C (0.4); label 1: only B's 0.05
    # passes the 0.01 threshold; label 3: C (0.06) suppresses B (IoU 200 / 250 = 0.8), not A
    logits = sv.tensor(np.log(probs)[None])
    (det,) = model.postprocess(logits, sv.zeros(1, 3, 4), [(32, 32)])
    scores = det["scores"].numpy().astype(float).round(4)
    got = list(zip(det["labels"].numpy().tolist(), scores.tolist(),
                   det["boxes"].numpy().tolist()))
    assert got == [(2, 0.9, [0, 0, 10, 10]), (2, 0.7, [0, 0, 10, 25]),
                   (3, 0.06, [0, 0, 10, 25]), (1, 0.05, [0, 0, 10, 20]),
                   (3, 0.04, [0, 0, 10, 10])]
    # a 64 (h) x 96 (w) image: boxes scale by (96 / 32, 64 / 32) back to its pixels
    (det,) = model.postprocess(logits, sv.zeros(1, 3, 4), [(64, 96)])
    np.testing.assert_allclose(det["boxes"].numpy()[0], [0, 0, 30, 20])
    # offsets decode against the default box: (1, 0, log 2 / 0.2, 0) moves A's centre by
    # 0.1 * 10 = 1 px and doubles its width: [-4, 0, 16, 10], clipped to [0, 0, 16, 10]
    reg = np.zeros((1, 3, 4))
    reg[0, 0] = [1, 0, math.log(2) / 0.2, 0]
    (det,) = model.postprocess(logits, sv.tensor(reg), [(32, 32)])
    np.testing.assert_allclose(det["boxes"].numpy()[0], [0, 0, 16, 10], atol=1e-5)


def test_predict_format_sizes_and_resizing():
    sv.manual_seed(0)
    model = build_detector("ssd", 4, "tiny").eval()
    assert model.uses_proposals is False
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((3, 32, 32)).astype(np.float32),
              rng.standard_normal((3, 48, 20)).astype(np.float32)]
    outs = model.predict(images)
    assert len(outs) == 2
    for im, out in zip(images, outs):
        assert set(out) == {"boxes", "scores", "labels"}
        b, s, lab = out["boxes"].numpy(), out["scores"].numpy(), out["labels"].numpy()
        assert b.shape == (len(s), 4) and lab.shape == s.shape and 0 < len(s) <= 200
        assert lab.dtype == np.int64 and set(lab.tolist()) <= {1, 2, 3}
        assert (np.diff(s) <= 0).all() and (s > 0.01).all()
        h, w = im.shape[1:]
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
    x, sizes = model.inputs([images[1]])
    assert x.shape == (1, 3, 32, 32) and sizes == [(48, 20)]
    np.testing.assert_allclose(x.numpy(), sv.functional.interpolate(
        sv.tensor(images[1][None]), size=(32, 32), mode="bilinear").numpy())
    with sv.no_grad():
        (expected,) = model.postprocess(*model(x), [(48, 20)])
    for k in ("boxes", "scores", "labels"):
        np.testing.assert_allclose(outs[1][k].numpy(), expected[k].numpy(), rtol=1e-5)


# ----------------------------------------------------------------- bad input
def test_bad_input_is_refused_clearly():
    sv.manual_seed(0)
    model = build_detector("ssd", 4, "tiny")
    u8, targets = _shapes(2)
    x = normalise(u8)
    with pytest.raises(ValueError, match="out of range"):
        model.loss(x, [dict(targets[0], labels=np.full_like(targets[0]["labels"], 4)),
                       targets[1]])
    flat = targets[0]["boxes"].copy()
    flat[0, 2] = flat[0, 0]
    with pytest.raises(ValueError, match="positive width"):
        model.loss(x, [dict(targets[0], boxes=flat), targets[1]])
    with pytest.raises(ValueError, match=r"must be \(K, 4\)"):
        model.loss(x, [dict(targets[0], boxes=np.zeros((2, 3))), targets[1]])
    with pytest.raises(ValueError, match="1 targets for 2 images"):
        model.loss(x, targets[:1])
    with pytest.raises(ValueError, match="targets are required"):
        model.loss(x, None)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model.loss(np.zeros((2, 4, 32, 32), np.float32), targets)
    with pytest.raises(ValueError, match=r"x must be \(N, 3, 32, 32\), got \(1, 3, 16, 16\)"):
        model(sv.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="num_classes"):
        SSD(1)
    with pytest.raises(ValueError, match="multiple of the backbone's stride 16"):
        SSD(4, input_size=100)
    with pytest.raises(ValueError, match="one entry"):
        SSD(4, widths=(8, 16), depths=(1,))
    with pytest.raises(ValueError, match="sources must be in 1..5"):
        SSD(4, sources=6)
    with pytest.raises(ValueError, match="extras must be"):
        SSD(4, extras=((64,),))
    with pytest.raises(ValueError, match="s_min < s_max"):
        SSD(4, s_min=0.9, s_max=0.2)
    with pytest.raises(ValueError, match="size must be one of"):
        build_detector("ssd", 4, "huge")
    with pytest.raises(ValueError, match=r"cls_logits must be \(N, D, K\)"):
        ssd_loss(sv.zeros(1, 5, 4), sv.zeros(1, 4, 4), np.zeros((1, 5), np.int64),
                 np.zeros((1, 5, 4)), np.zeros((1, 5), bool))
    with pytest.raises(ValueError, match="labels"):
        ssd_loss(sv.zeros(1, 5, 4), sv.zeros(1, 5, 4), np.zeros((1, 4), np.int64),
                 np.zeros((1, 5, 4)), np.zeros((1, 5), bool))
    with pytest.raises(ValueError, match=r"must both be \(N, D\)"):
        hard_negative_mining(np.zeros((1, 5)), np.zeros((1, 4), np.int64))
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator"):
        ssd_augmentation(32, 0)
    # images without objects: N = 0, both terms 0 (the paper), and backward still runs
    empty = [{"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}] * 2
    terms = model.loss(x, empty)
    assert set(terms) == set(TERMS) and all(terms[k].item() == 0.0 for k in TERMS)
    sum(terms.values(), sv.tensor(0.0)).backward()


def test_registered_and_presets():
    assert "ssd" in DETECTORS
    assert set(SIZES) == {"tiny", "small", "large"}
    small = build_detector("ssd", 4).eval()
    with sv.no_grad():
        scores, offsets = small(sv.zeros(1, 3, 128, 128))
    assert scores.shape == (1, 6132, 4) and offsets.shape == (1, 6132, 4)
    large = build_detector("ssd", 4, "large")
    assert large.num_parameters() > 3 * small.num_parameters()
    assert build_detector("ssd", 4, "tiny").num_parameters() < 20_000


# ----------------------------------------------------------------- overfitting
def test_tiny_model_overfits_two_images():
    u8, targets = _shapes(2)
    x = normalise(u8)
    sv.manual_seed(0)
    model = build_detector("ssd", 4, "tiny")
    opt = nn.optim.Adam(list(model.parameters()), lr=1e-2)
    history = []
    for _ in range(40):
        terms = model.loss(x, targets)
        total = sum(terms.values(), sv.tensor(0.0))
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    first, last = np.mean(history[:3]), np.mean(history[-3:])
    assert last < 0.1 * first, (first, last)
    preds = model.eval().predict(x)
    for p, t in zip(preds, targets):
        k = len(t["boxes"])
        boxes, labels = p["boxes"].numpy()[:k + 2], p["labels"].numpy()[:k + 2]
        for box, label in zip(t["boxes"], t["labels"]):
            iou = np.asarray(box_iou(box[None], boxes))[0]
            assert ((iou >= 0.5) & (labels == label)).any(), (box, label, boxes, labels)


# ----------------------------------------------------------------- augmentation
def test_crop_keeps_exactly_the_boxes_whose_centre_lies_in_the_crop():
    image = np.zeros((80, 100, 3), np.uint8)
    boxes = np.array([[2, 2, 20, 18], [30, 10, 70, 40], [60, 50, 98, 78], [5, 55, 25, 75],
                      [45, 45, 55, 55]], np.float32)
    target = {"boxes": boxes, "labels": np.arange(1, 6)}
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    dropped = cropped = 0
    for seed in range(60):
        crop = T.RandomIoUCrop(sampler_options=SSD_SAMPLER_OPTIONS,
                               generator=np.random.default_rng(seed))
        out, t = crop(image, target)
        if crop.last is None:                       # the "whole image" option
            assert out is image and t is target
            continue
        cropped += 1
        left, top, right, bottom, min_iou = crop.last
        assert min_iou in SSD_SAMPLER_OPTIONS and min_iou != 0.0
        inside = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
        dropped += int((~inside).sum())
        np.testing.assert_array_equal(t["labels"], target["labels"][inside])
        want = boxes[inside] - [left, top, left, top]
        want[:, 0::2] = want[:, 0::2].clip(0, right - left)
        want[:, 1::2] = want[:, 1::2].clip(0, bottom - top)
        np.testing.assert_allclose(t["boxes"], want)
        assert out.shape == (bottom - top, right - left, 3)
        iou = np.asarray(box_iou(boxes[inside], np.float32([[left, top, right, bottom]])))
        assert iou.max() >= min_iou - 1e-6
    assert cropped > 20 and dropped > 0


def test_ssd_augmentation_is_reproducible_and_keeps_boxes_inside():
    u8, targets = _shapes(16, size=64)
    changed = 0
    for i, (im, t) in enumerate(zip(u8, targets)):
        a_im, a_t = ssd_augmentation(64, np.random.default_rng([0, 0, i]))(im, t)
        b_im, b_t = ssd_augmentation(64, np.random.default_rng([0, 0, i]))(im, t)
        np.testing.assert_array_equal(a_im, b_im)
        np.testing.assert_array_equal(a_t["boxes"], b_t["boxes"])
        np.testing.assert_array_equal(a_t["labels"], b_t["labels"])
        assert a_im.shape == (64, 64, 3) and a_im.dtype == np.uint8
        b, lab = a_t["boxes"], a_t["labels"]
        assert b.shape == (len(lab), 4) and set(lab.tolist()) <= set(t["labels"].tolist())
        assert (b >= 0).all() and (b <= 64).all()
        assert (b[:, 2] - b[:, 0] >= 1).all() and (b[:, 3] - b[:, 1] >= 1).all()
        c_im, _ = ssd_augmentation(64, np.random.default_rng([0, 1, i]))(im, t)
        changed += not np.array_equal(c_im, a_im)
        assert t["boxes"] is targets[i]["boxes"]             # the input is left alone
    assert changed >= 14


def test_sanitize_drops_slivers_with_their_labels():
    t = {"boxes": np.array([[0, 0, 5, 5], [3, 3, 3.5, 9], [1, 1, 9, 1.2]], np.float32),
         "labels": np.array([1, 2, 3]), "masks": np.zeros((3, 4, 4), np.uint8)}
    image = np.zeros((10, 10, 3), np.uint8)
    _, out = T.SanitizeBoundingBoxes(1.0)(image, t)
    np.testing.assert_array_equal(out["labels"], [1])
    assert out["boxes"].shape == (1, 4) and out["masks"].shape == (1, 4, 4)
    assert T.SanitizeBoundingBoxes(1.0)(image, {"labels": np.array([1])})[1]["labels"][0] == 1


# ----------------------------------------------------------------- train-det --augment
def _batches(monkeypatch, tmp_path, argv, epochs=2) -> list:
    """The batches train-det hands the trainer, epoch by epoch (no training)."""
    seen = []

    class Recorder:
        def __init__(self, model, batches, steps, *args, **kwargs):
            self.batches, self.steps = batches, steps

        def fit(self, resume=False, stop_after=None):
            for epoch in range(epochs):
                seen.append([(x.numpy(), [dict(t) for t in targets]) for x, targets, *_ in
                             islice(self.batches(epoch), self.steps)])
            return []

    monkeypatch.setattr("scratchvision.trainer.Trainer", Recorder)
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))
    assert cli_main(["train-det", "--size", "tiny", "--image-size", "32", "--train-images",
                     "6", "--val-images", "2", "--batch-size", "2", "--epochs", "3",
                     "--quiet", "--no-pictures", "--out", str(tmp_path / "run"), *argv]) == 0
    return seen


def _old_batches(flip: bool, epochs=2) -> list:
    """train-det's batches before --augment existed: seeded order and flips."""
    u8, targets = load_split("train", 6, 32, 0, progress=False)
    x = normalise(u8)
    out = []
    for epoch in range(epochs):
        rng = np.random.default_rng([0, epoch])
        order, flips = rng.permutation(6), rng.random(6) < 0.5
        flips &= flip
        steps = []
        for step in range(3):
            idx = order[2 * step:2 * step + 2]
            xb = np.where(flips[idx][:, None, None, None], x[idx][..., ::-1], x[idx])
            tb = [{"boxes": flip_boxes(targets[i]["boxes"], 32) if flips[i]
                   else targets[i]["boxes"], "labels": targets[i]["labels"]} for i in idx]
            steps.append((xb, tb))
        out.append(steps)
    return out


@pytest.mark.parametrize("model", ["yolo_v1", "sliding_window"])
def test_augment_flip_and_none_leave_other_models_batches_as_before(model, monkeypatch,
                                                                    tmp_path):
    # YOLO v1's defaults are its own augmentation and a pre-training stage: ask for flips
    # (or nothing) and no pre-training explicitly
    default = [] if model == "sliding_window" else ["--augment", "flip"]
    extra = ["--pretrain-epochs", "0"] if model == "yolo_v1" else []
    for argv, flip in ((default, True), (["--augment", "flip"], True),
                       (["--augment", "none"], False)):
        got = _batches(monkeypatch, tmp_path, ["--model", model, *argv, *extra])
        want = _old_batches(flip)
        assert len(got) == len(want) == 2
        for got_epoch, want_epoch in zip(got, want):
            for (gx, gt), (wx, wt) in zip(got_epoch, want_epoch):
                np.testing.assert_array_equal(gx, wx)
                for a, b in zip(gt, wt):
                    np.testing.assert_array_equal(a["boxes"], b["boxes"])
                    np.testing.assert_array_equal(a["labels"], b["labels"])
    # "none" really differs from "flip" (some image of these epochs is flipped)
    assert any(not np.array_equal(a[0], b[0]) for ea, eb in zip(_old_batches(True),
                                                                _old_batches(False))
               for a, b in zip(ea, eb))


def test_augment_ssd_batches_are_reproducible_and_normalised(monkeypatch, tmp_path):
    a = _batches(monkeypatch, tmp_path, ["--model", "ssd"])
    b = _batches(monkeypatch, tmp_path / "again", ["--model", "ssd", "--augment", "ssd"])
    plain = _old_batches(flip=False)
    differs = 0
    for ea, eb, ep in zip(a, b, plain):
        for (xa, ta), (xb, tb), (xp, _) in zip(ea, eb, ep):
            np.testing.assert_array_equal(xa, xb)
            assert xa.shape == (2, 3, 32, 32) and xa.dtype == np.float32
            assert np.abs(xa).max() <= 2.0 + 1e-6                       # normalised
            differs += not np.array_equal(xa, xp)
            for t, u in zip(ta, tb):
                np.testing.assert_array_equal(t["boxes"], u["boxes"])
                assert (t["boxes"] >= 0).all() and (t["boxes"] <= 32).all()
    assert differs >= 5
    assert not np.array_equal(a[0][0][0], a[1][0][0])              # epochs draw anew


def test_augment_ssd_is_refused_for_proposal_models(monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match="proposals cannot follow"):
        _batches(monkeypatch, tmp_path, ["--model", "fast_rcnn", "--augment", "ssd"])


# ----------------------------------------------------------------- the CLI
def test_train_eval_detect_cli_tiny(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))
    common = ["--model", "ssd", "--size", "tiny", "--image-size", "32", "--val-images", "2",
              "--quiet"]
    run = tmp_path / "run"
    assert cli_main(["train-det", *common, "--train-images", "4", "--batch-size", "2",
                     "--epochs", "1", "--no-pictures", "--out", str(run)]) == 0
    result = json.loads((run / "result.json").read_text())
    last = result["history"][-1]
    assert all(np.isfinite(last[k]) for k in TERMS)
    assert 0 <= result["val_map"] <= 1
    s = result["settings"]
    assert (s["optimizer"], s["lr"], s["weight_decay"], s["augment"]) == ("adam", 1e-3, 5e-4,
                                                                         "ssd")
    weights = str(run / "model.npz")
    capsys.readouterr()
    assert cli_main(["eval-det", *common, "--weights", weights]) == 0
    assert "VOC mAP@0.5" in capsys.readouterr().out
    out = tmp_path / "det"
    assert cli_main(["detect", *common, "--weights", weights, "--split", "val", "--images", "2",
                     "--out", str(out)]) == 0
    dets = json.loads((out / "detections.json").read_text())
    assert {d["image_id"] for d in dets} <= {0, 1}
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png"]


@pytest.mark.gpu
def test_loss_and_gradients_on_gpu_match_cpu():
    # the shared detector check (tests/gpu/test_gpu_detectors.py) on SSD's tiny preset
    from tests.gpu.test_gpu_detectors import test_detector_loss_and_gradients_on_gpu_match_cpu
    test_detector_loss_and_gradients_on_gpu_match_cpu("ssd")
