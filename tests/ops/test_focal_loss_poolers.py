"""ops.sigmoid_focal_loss and ops.MultiScaleRoIAlign: hand-worked cases, and cross-checks
against small re-implementations in torch ops of torchvision's published formulas
(torchvision itself is not a test dependency)."""
import math

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import ops


# ------------------------------------------------------------------ sigmoid_focal_loss
def test_focal_loss_by_hand():
    # x = 0: p = 1/2, ce = log 2, p_t = 1/2, (1 - p_t)^2 = 1/4
    x = sv.tensor(np.zeros(2))
    t = np.array([1.0, 0.0])
    loss = ops.sigmoid_focal_loss(x, t)
    np.testing.assert_allclose(loss.numpy(), [0.25 * 0.25 * math.log(2),     # alpha_t 0.25
                                              0.75 * 0.25 * math.log(2)],    # alpha_t 0.75
                               rtol=1e-14)
    # alpha = -1: no weighting; gamma = 0: plain BCE with logits
    np.testing.assert_allclose(ops.sigmoid_focal_loss(x, t, alpha=-1, gamma=0).numpy(),
                               [math.log(2)] * 2, rtol=1e-14)
    # a confident right answer costs almost nothing; a confident wrong one costs ~alpha * x
    x = sv.tensor(np.array([10.0, -10.0]))
    loss = ops.sigmoid_focal_loss(x, np.array([1.0, 1.0])).numpy()
    p = 1 / (1 + math.exp(-10))
    assert loss[0] == pytest.approx(0.25 * (1 - p) ** 2 * -math.log(p), rel=1e-12)
    assert loss[1] == pytest.approx(0.25 * p ** 2 * (10 + math.log1p(math.exp(-10))),
                                    rel=1e-12)
    assert ops.sigmoid_focal_loss(x, np.ones(2), reduction="sum").item() == \
        pytest.approx(loss.sum(), rel=1e-12)
    assert ops.sigmoid_focal_loss(x, np.ones(2), reduction="mean").item() == \
        pytest.approx(loss.mean(), rel=1e-12)


def _torch_focal(torch, inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, transcribed."""
    p = torch.sigmoid(inputs)
    ce_loss = torch.nn.functional.binary_cross_entropy_with_logits(inputs, targets,
                                                                   reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


@pytest.mark.parametrize("alpha, gamma, reduction", [(0.25, 2, "none"), (-1, 2, "mean"),
                                                     (0.9, 0.5, "sum"), (0.5, 3, "none"),
                                                     (0.25, 0, "mean")])
def test_focal_loss_matches_torchvision_formula(alpha, gamma, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((6, 5)) * 4
    ts = np.where(rng.random((6, 5)) > 0.7, 1.0, 0.0)
    if gamma >= 1:  # saturated logits (p_t = 1) stay finite; for gamma < 1 the slope of
        # (1 - p_t)^gamma is infinite there and torchvision's gradient is nan (ours too)
        xs[0, :2], ts[0, :2] = [60.0, -60.0], [1.0, 0.0]
    ts[5] = rng.random(5)                          # soft targets too
    x = sv.tensor(xs, requires_grad=True)
    t = sv.tensor(ts, requires_grad=True)
    loss = ops.sigmoid_focal_loss(x, t, alpha, gamma, reduction)
    gy = rng.standard_normal(loss.shape)
    (loss * sv.tensor(gy)).sum().backward()
    tx, tt = torch.tensor(xs, requires_grad=True), torch.tensor(ts, requires_grad=True)
    tl = _torch_focal(torch, tx, tt, alpha, gamma, reduction)
    (tl * torch.tensor(gy)).sum().backward()
    np.testing.assert_allclose(loss.numpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(t.grad), tt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_focal_loss_float32_and_errors():
    torch = pytest.importorskip("torch")
    xs = np.random.default_rng(1).standard_normal((3, 7)).astype(np.float32) * 3
    ts = (xs > 0.5).astype(np.float32)
    loss = ops.sigmoid_focal_loss(sv.tensor(xs), ts)            # targets as an array
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.numpy(),
                               _torch_focal(torch, torch.tensor(xs), torch.tensor(ts)).numpy(),
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="Invalid Value for arg 'reduction'"):
        ops.sigmoid_focal_loss(sv.tensor(xs), ts, reduction="batchmean")
    with pytest.raises(ValueError, match="targets shape"):
        ops.sigmoid_focal_loss(sv.tensor(xs), ts[:2])


# ------------------------------------------------------------------ MultiScaleRoIAlign
def _pyramid(value_per_level=True, n=1, c=2, sizes=(128, 64, 32, 16), seed=0):
    rng = np.random.default_rng(seed)
    x = {}
    for i, s in enumerate(sizes):
        a = np.full((n, c, s, s), float(i + 1)) if value_per_level else \
            rng.standard_normal((n, c, s, s))
        x[f"p{i + 2}"] = sv.tensor(a)
    return x


def test_multiscale_levels_by_hand():
    # a 512x512 image, maps at strides 4..32 (levels 2..5); each map holds its level's
    # index + 1, so every pooled value says which level the box went to
    x = _pyramid()
    pool = ops.MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 2, 2)
    boxes = np.array([[10, 10, 234, 234],      # sqrt(area) 224 -> k = 4 (k0)    -> map 2
                      [0, 0, 112, 112],        # 112 = 224 / 2 -> k = 3          -> map 1
                      [20, 30, 468, 478],      # 448 -> k = 5                     -> map 3
                      [5, 5, 61, 61],          # 56 -> k = 2                      -> map 0
                      [1, 1, 11, 11],          # 10 -> k = floor(4 - 4.49) = -1 -> clamp 2
                      [6, 6, 506, 506]],       # 500 -> k = floor(5.16) = 5       -> map 3
                     np.float32)
    out = pool(x, [sv.tensor(boxes)], [(512, 512)])
    assert out.shape == (6, 2, 2, 2) and out.dtype == np.float64
    assert pool.scales == [0.25, 0.125, 0.0625, 0.03125]
    levels = pool.map_levels([boxes])
    assert levels.tolist() == [2, 1, 3, 0, 0, 3]
    np.testing.assert_allclose(out.numpy()[:, 0, 0, 0], levels + 1.0, rtol=1e-12)
    assert (out.numpy() == out.numpy()[:, :1, :1, :1]).all()


def test_multiscale_order_matches_per_box_roi_align():
    """Boxes of two images, levels interleaved: row k is roi_align of box k on its level
    with that level's scale, aligned=False and the given sampling_ratio."""
    x = _pyramid(False, n=2, c=3, sizes=(32, 16, 8), seed=1)
    pool = ops.MultiScaleRoIAlign(["p2", "p3", "p4"], (3, 2), 2, canonical_scale=32,
                                  canonical_level=3)
    rng = np.random.default_rng(2)
    boxes = []
    for k in (4, 3):
        xy = rng.uniform(0, 60, (k, 2))
        wh = rng.uniform(4, 70, (k, 2))
        boxes.append(np.concatenate([xy, xy + wh], axis=1))
    out = pool(x, boxes, [(128, 120), (100, 128)])
    levels = pool.map_levels(boxes)
    assert len(set(levels.tolist())) > 1
    names = ["p2", "p3", "p4"]
    rows = []
    for img, b in enumerate(boxes):
        for box in b:
            lvl = levels[len(rows)]
            roi = np.array([[img, *box]])
            rows.append(ops.roi_align(x[names[lvl]], roi, (3, 2), pool.scales[lvl], 2,
                                      aligned=False).numpy()[0])
    np.testing.assert_allclose(out.numpy(), np.stack(rows), rtol=1e-12, atol=1e-14)


def test_multiscale_levels_and_scales_match_torchvision_formula():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    image_shapes = [(500, 375), (480, 640), (333, 500)]
    feats = {"0": sv.zeros(3, 1, 128, 160), "1": sv.zeros(3, 1, 64, 80),
             "2": sv.zeros(3, 1, 32, 40), "3": sv.zeros(3, 1, 16, 20),
             "pool": sv.zeros(3, 1, 8, 10)}                # not in featmap_names: ignored
    boxes = []
    for _ in image_shapes:
        xy = rng.uniform(0, 300, (20, 2)).astype(np.float32)
        wh = np.exp(rng.uniform(0, 6.3, (20, 2))).astype(np.float32)
        boxes.append(np.concatenate([xy, xy + wh], axis=1))
    boxes[0][0] = [0, 0, 224, 224]                       # exactly on a level boundary
    boxes[0][1] = [3, 3, 3, 40]                          # zero area -> k_min
    pool = ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    pool(feats, boxes, image_shapes)
    # torchvision's _infer_scale / _setup_scales / LevelMapper, transcribed
    max_x = max(s[0] for s in image_shapes)
    max_y = max(s[1] for s in image_shapes)
    scales = []
    for name in ["0", "1", "2", "3"]:
        approx = float(feats[name].shape[-2]) / float(max_x)
        scales.append(2 ** float(torch.tensor(approx).log2().round()))
    k_min = int(-torch.log2(torch.tensor(scales[0], dtype=torch.float32)).item())
    k_max = int(-torch.log2(torch.tensor(scales[-1], dtype=torch.float32)).item())
    tb = torch.cat([torch.tensor(b) for b in boxes])
    s = torch.sqrt((tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1]))
    lv = torch.floor(4 + torch.log2(s / 224) + torch.tensor(1e-6, dtype=s.dtype))
    lv = (torch.clamp(lv, min=k_min, max=k_max).to(torch.int64) - k_min).numpy()
    assert pool.scales == scales and max_y == 640
    assert (pool.map_levels.k_min, pool.map_levels.k_max) == (k_min, k_max) == (2, 5)
    np.testing.assert_array_equal(pool.map_levels(boxes), lv)
    assert lv[0] == 2 and lv[1] == 0


def test_multiscale_single_level_empty_and_cache():
    x = _pyramid(False, n=1, c=2, sizes=(16, 8), seed=4)
    boxes = [np.array([[1.0, 2.0, 30.0, 25.0], [0.0, 0.0, 8.0, 8.0]])]
    one = ops.MultiScaleRoIAlign(["p3"], 2, -1)
    out = one(x, boxes, [(64, 64)])
    expect = ops.roi_align(x["p3"], boxes, 2, 0.125, -1, aligned=False)
    np.testing.assert_array_equal(out.numpy(), expect.numpy())
    two = ops.MultiScaleRoIAlign(["p2", "p3"], 2, 2)
    assert two(x, [np.zeros((0, 4))], [(64, 64)]).shape == (0, 2, 2, 2)
    assert one(x, [np.zeros((0, 4))], [(64, 64)]).shape == (0, 2, 2, 2)
    # as torchvision: the scales are inferred once and kept
    assert two.scales == [0.25, 0.125]
    two(x, boxes, [(128, 128)])
    assert two.scales == [0.25, 0.125]
    assert repr(two) == ("MultiScaleRoIAlign(featmap_names=['p2', 'p3'], output_size=(2, 2), "
                         "sampling_ratio=2)")


def test_multiscale_gradient_reaches_each_level():
    x = {k: sv.tensor(v.numpy(), requires_grad=True)
         for k, v in _pyramid(False, n=1, c=1, sizes=(16, 8), seed=5).items()}
    pool = ops.MultiScaleRoIAlign(["p2", "p3"], 1, 1, canonical_scale=16, canonical_level=3)
    boxes = [np.array([[0.0, 0.0, 8.0, 8.0],       # 8 -> k = 2 -> p2
                       [0.0, 0.0, 16.0, 16.0]])]   # 16 -> k = 3 -> p3
    out = pool(x, boxes, [(64, 64)])
    (out[:, 0, 0, 0] * sv.tensor([1.0, 10.0])).sum().backward()
    # one sample per bin at the box centre: (4, 4) * 1/4 = (1, 1) on p2, (8, 8) / 8 on p3
    g2, g3 = np.asarray(x["p2"].grad)[0, 0], np.asarray(x["p3"].grad)[0, 0]
    assert g2.sum() == pytest.approx(1.0) and g2[1, 1] == pytest.approx(1.0)
    assert g3.sum() == pytest.approx(10.0) and g3[1, 1] == pytest.approx(10.0)


def test_multiscale_errors():
    x = _pyramid(sizes=(16, 8))
    pool = ops.MultiScaleRoIAlign(["a", "b"], 2, 2)
    with pytest.raises(ValueError, match="none of featmap_names"):
        pool(x, [np.zeros((1, 4))], [(64, 64)])
    pool = ops.MultiScaleRoIAlign(["p2", "p3"], 2, 2)
    with pytest.raises(ValueError, match="images list should not be empty"):
        pool(x, [np.zeros((1, 4))], [])
    with pytest.raises(ValueError, match=r"boxes\[0\] must have shape \(K_i, 4\)"):
        pool(x, [np.zeros((1, 5))], [(64, 64)])
    with pytest.raises(TypeError, match="list of"):
        pool(x, np.zeros((1, 4)), [(64, 64)])
