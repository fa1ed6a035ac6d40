"""Anchors, default boxes, BoxCoder, Matcher and the balanced sampler."""
import math

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import ops
from tests.helpers import assert_close


def random_boxes(rng, n, dtype=np.float64):
    xy = rng.uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 50, (n, 2))], axis=1).astype(dtype)


def test_anchor_generator_hand_worked():
    ag = ops.AnchorGenerator(sizes=((16,),), aspect_ratios=((0.25, 1.0),))
    # ratio 1/4 (h / w): h = 16 * 0.5 = 8, w = 16 * 2 = 32 -> [-16, -4, 16, 4]
    assert_close(ag.cell_anchors[0], np.array([[-16, -4, 16, 4], [-8, -8, 8, 8]], np.float32))
    assert ag.num_anchors_per_location() == [2]
    images = np.zeros((2, 3, 20, 30), np.float32)
    anchors = ag(images, [np.zeros((2, 4, 2, 3), np.float32)])   # stride (10, 10)
    assert len(anchors) == 2 and anchors[0].shape == (2 * 3 * 2, 4)
    # order: grid row, grid column, cell anchor; location (row 1, col 2) -> shift (20, 10)
    assert_close(anchors[0][(1 * 3 + 2) * 2 + 1], np.array([12, 2, 28, 18], np.float32))


def test_default_boxes_hand_worked():
    db = ops.DefaultBoxGenerator([[2]], min_ratio=0.2, max_ratio=0.8)
    # one map: scales [0.2, 0.8]; pairs (.2,.2), (.4,.4) [sqrt(.2 * .8)], (.2 r2, .2 / r2) ...
    assert db.num_anchors_per_location() == [4]
    boxes = db(np.zeros((1, 3, 100, 100), np.float32), [np.zeros((1, 1, 1, 1), np.float32)])
    r2 = math.sqrt(2)
    wh = np.array([[0.2, 0.2], [0.4, 0.4], [0.2 * r2, 0.2 / r2], [0.2 / r2, 0.2 * r2]])
    expected = np.concatenate([50 - 50 * wh, 50 + 50 * wh], axis=1)
    assert_close(boxes[0], expected.astype(np.float32), scale=100)


@pytest.mark.peers
def test_anchors_match_torchvision():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchors
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator as TvDefault
    from torchvision.models.detection.image_list import ImageList
    images = np.zeros((2, 3, 64, 80), np.float32)
    maps = [np.zeros((2, 8, 16, 20), np.float32), np.zeros((2, 8, 8, 10), np.float32),
            np.zeros((2, 8, 3, 4), np.float32)]
    il = ImageList(torch.from_numpy(images), [(64, 80), (60, 70)])
    tmaps = [torch.from_numpy(m) for m in maps]
    sizes, ratios = ((32, 64), (128,), (256, 300)), ((0.5, 1.0, 2.0),) * 3
    ours = ops.AnchorGenerator(sizes, ratios)(images, maps)
    theirs = TvAnchors(sizes, ratios)(il, tmaps)
    for a, t in zip(ours, theirs):
        np.testing.assert_array_equal(a, t.numpy())
    for kw in (dict(steps=[4, 8, 16]), dict(), dict(clip=False, min_ratio=0.3)):
        ours = ops.DefaultBoxGenerator([[2], [2, 3], [3]], **kw)(images, maps)
        theirs = TvDefault([[2], [2, 3], [3]], **kw)(il, tmaps)
        for a, t in zip(ours, theirs):
            assert_close(a, t.numpy(), scale=10)


def test_box_coder_roundtrip(rng):
    proposals, gt = random_boxes(rng, 30), random_boxes(rng, 30)
    for weights in ((1, 1, 1, 1), (10, 10, 5, 5)):
        coder = ops.BoxCoder(weights)
        codes = coder.encode_single(gt, proposals)
        assert_close(coder.decode_single(codes, proposals), gt, scale=10)
        # a box equal to its proposal encodes to zeros
        assert_close(coder.encode_single(proposals, proposals), np.zeros((30, 4)))
    # hand-worked: proposal (0, 0, 10, 20), gt shifted by (5, -2) and twice as wide
    coder = ops.BoxCoder((10, 10, 5, 5))
    code = coder.encode_single(np.array([[0.0, -2, 20, 18]]), np.array([[0.0, 0, 10, 20]]))
    # centre x 10 vs 5: 10 * 5 / 10 = 5; y 8 vs 10: 10 * -2 / 20 = -1; dw = 5 log 2; dh = 0
    assert_close(code, np.array([[5.0, -1.0, 5 * math.log(2), 0.0]]))


def test_box_coder_clamps_and_lists(rng):
    coder = ops.BoxCoder((1, 1, 1, 1))
    box = np.array([[0.0, 0, 16, 16]])
    pred = coder.decode_single(np.array([[0.0, 0, 100, 100]]), box)   # exp(100) would overflow
    assert_close(pred, np.array([[-492.0, -492, 508, 508]]))        # clamped: w = 1000
    proposals = [random_boxes(rng, 3), random_boxes(rng, 2)]
    gts = [random_boxes(rng, 3), random_boxes(rng, 2)]
    codes = coder.encode(gts, proposals)
    assert [c.shape for c in codes] == [(3, 4), (2, 4)]
    decoded = coder.decode(np.concatenate(codes), proposals)
    assert decoded.shape == (5, 1, 4)
    assert_close(decoded[:, 0], np.concatenate(gts), scale=10)
    with pytest.raises(ValueError, match="weights"):
        ops.BoxCoder((1, 1, 1))


@pytest.mark.peers
def test_box_coder_matches_torchvision(rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.detection._utils import BoxCoder as TvCoder
    proposals, gt = random_boxes(rng, 20, np.float32), random_boxes(rng, 20, np.float32)
    ours, theirs = ops.BoxCoder((10, 10, 5, 5)), TvCoder((10, 10, 5, 5))
    assert_close(ours.encode_single(gt, proposals),
                 theirs.encode_single(torch.from_numpy(gt), torch.from_numpy(proposals)).numpy())
    codes = (rng.standard_normal((20, 8)) * 3).astype(np.float32)
    assert_close(ours.decode(codes, [proposals[:12], proposals[12:]]),
                 theirs.decode(torch.from_numpy(codes), [torch.from_numpy(proposals[:12]),
                                                         torch.from_numpy(proposals[12:])]
                               ).numpy(), scale=100)


def test_matcher_hand_worked():
    q = np.array([[0.9, 0.4, 0.1, 0.2],     # gt 0
                  [0.8, 0.6, 0.25, 0.2]])   # gt 1
    m = ops.Matcher(0.7, 0.3)(q)
    # pred 0 -> gt 0 (0.9); pred 1 best 0.6 between -> -2; pred 2 0.25 < 0.3 -> -1;
    # pred 3 0.2 (a tie: first gt) -> -1
    np.testing.assert_array_equal(m, [0, -2, -1, -1])
    # low-quality matches: gt 0's best is pred 0 (already), gt 1's best is 0.8 at pred 0 too
    m = ops.Matcher(0.7, 0.3, allow_low_quality_matches=True)(q)
    np.testing.assert_array_equal(m, [0, -2, -1, -1])
    q2 = np.array([[0.5, 0.1], [0.1, 0.2]])
    m = ops.Matcher(0.7, 0.3, allow_low_quality_matches=True)(q2)
    np.testing.assert_array_equal(m, [0, 1])          # each gt keeps its best prediction
    with pytest.raises(ValueError, match="No ground-truth boxes"):
        ops.Matcher(0.7, 0.3)(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="low_threshold"):
        ops.Matcher(0.3, 0.7)


@pytest.mark.peers
def test_matcher_matches_torchvision(rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.detection._utils import Matcher as TvMatcher
    q = ops.box_iou(random_boxes(rng, 6), random_boxes(rng, 40))
    for low in (False, True):
        np.testing.assert_array_equal(ops.Matcher(0.5, 0.3, low)(q),
                                      TvMatcher(0.5, 0.3, low)(torch.from_numpy(q)).numpy())


def test_sampler():
    labels = np.array([1, 0, 0, -1, 2, 0, 1, 0, 0, 0, 1])   # 4 positives, 6 negatives
    sampler = ops.BalancedPositiveNegativeSampler(6, 0.5, rng=0)
    pos, neg = sampler([labels, np.zeros(3, np.int64)])
    assert pos[0].dtype == np.uint8 and pos[0].sum() == 3 and neg[0].sum() == 3
    assert (labels[pos[0] == 1] >= 1).all() and (labels[neg[0] == 1] == 0).all()
    assert pos[1].sum() == 0 and neg[1].sum() == 3          # no positives: all negatives
    again = ops.BalancedPositiveNegativeSampler(6, 0.5, rng=0)([labels])
    np.testing.assert_array_equal(again[0][0], pos[0])      # seeded: reproducible
    t_pos, _ = ops.BalancedPositiveNegativeSampler(4, 0.25, rng=1)([sv.tensor(labels)])
    assert isinstance(t_pos[0], sv.Tensor) and t_pos[0].numpy().sum() == 1
