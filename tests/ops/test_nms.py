"""NMS kernels and ops: greedy nms, batched_nms, soft_nms (reference vs Numba)."""
import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision import ops
from scratchvision.kernels import nms as K

IMPLS = ["reference", "cpu"]
nms_ops = importlib.import_module("scratchvision.ops.nms")   # the module, not ops.nms


def random_boxes(rng, n, size=100.0, dtype=np.float32):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 3, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def test_hand_worked():
    boxes = np.array([[0, 0, 4, 1],      # 0: score .9, kept first
                      [0, 0, 2, 1],      # 1: IoU with 0 = 2/4 = 0.5 exactly
                      [0, 0, 3, 1],      # 2: IoU with 0 = 3/4 > 0.5: suppressed
                      [10, 0, 11, 1]],   # 3: alone
                     np.float32)
    scores = np.array([0.9, 0.8, 0.85, 0.1], np.float32)
    for impl in IMPLS:
        # threshold 0.5: box 1 (IoU exactly 0.5) survives, '>' suppresses only box 2
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.5, impl=impl), [0, 1, 3])
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.49, impl=impl), [0, 3])
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.75, impl=impl), [0, 2, 1, 3])


def test_ties_by_lower_index():
    boxes = np.array([[0, 0, 2, 2]] * 4, np.float64)
    scores = np.array([0.5, 0.7, 0.7, 0.5])
    for impl in IMPLS:
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.5, impl=impl), [1])
        np.testing.assert_array_equal(K.nms(boxes, scores, 1.0, impl=impl), [1, 2, 0, 3])


@given(n=st.integers(0, 40), seed=st.integers(0, 2**31),
       thr=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]),
       ties=st.booleans())
def test_cpu_matches_reference(n, seed, thr, ties):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n)
    scores = rng.integers(0, 4, n).astype(np.float32) if ties else rng.random(n, np.float32)
    ref = K.nms(boxes, scores, thr, impl="reference")
    got = K.nms(boxes, scores, thr, impl="cpu")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref)


@given(seed=st.integers(0, 2**31), thr=st.sampled_from([0.2, 0.5, 0.8]))
def test_nms_properties(seed, thr):
    rng = np.random.default_rng(seed)
    n = 30
    boxes, scores = random_boxes(rng, n), rng.permutation(n).astype(np.float32)
    keep = K.nms(boxes, scores, thr)
    # sorted by decreasing score, no kept pair overlaps more than the threshold
    assert (np.diff(scores[keep]) < 0).all()
    iou = ops.box_iou(boxes[keep], boxes[keep]) - np.eye(len(keep))
    assert (iou <= thr).all()
    # permuting the input does not change the kept set
    perm = rng.permutation(n)
    np.testing.assert_array_equal(perm[K.nms(boxes[perm], scores[perm], thr)], keep)
    # every dropped box overlaps a kept, higher-scored box by more than the threshold
    dropped = np.setdiff1d(np.arange(n), keep)
    iou_dk = ops.box_iou(boxes[dropped], boxes[keep])                  # (dropped, kept)
    higher = scores[keep][None, :] > scores[dropped][:, None]
    assert ((iou_dk > thr) & higher).any(axis=1).all()
    # threshold 1: IoU never exceeds 1, so everything is kept
    assert len(K.nms(boxes, scores, 1.0)) == n
    # NMS of its own output keeps everything
    np.testing.assert_array_equal(K.nms(boxes[keep], scores[keep], thr), np.arange(len(keep)))


def test_raising_the_threshold_can_keep_fewer():
    # Greedy NMS is not monotone in the threshold (so "a higher threshold never keeps fewer
    # boxes" is false): at 0.3, A suppresses B (IoU 1/3) and C1, C2 survive; at 0.4, B
    # survives and suppresses C1 and C2 (IoU 0.45 each with B).
    boxes = np.array([[0, 0, 10, 10],    # A, score .9
                      [5, 0, 15, 10],    # B: IoU(A, B) = 50 / 150
                      [6, 0, 15, 5],     # C1: IoU(B, C1) = 45 / 100, IoU(A, C1) = 20 / 125
                      [6, 5, 15, 10]],   # C2: the same below; C1 and C2 only touch
                     np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    for impl in IMPLS:
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.3, impl=impl), [0, 2, 3])
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.4, impl=impl), [0, 1])


def test_negative_threshold_and_degenerate():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [3, 3, 3, 3]], np.float32)
    scores = np.array([0.2, 0.9, 0.5], np.float32)
    for impl in IMPLS:       # IoU 0 > -0.1: everything below the best box is suppressed
        np.testing.assert_array_equal(K.nms(boxes, scores, -0.1, impl=impl), [1])
        # a zero-area box has IoU 0 with everything (even itself): never suppressed
        np.testing.assert_array_equal(K.nms(boxes, scores, 0.0, impl=impl), [1, 2, 0])


def test_empty_and_single():
    for impl in IMPLS:
        keep = K.nms(np.zeros((0, 4)), np.zeros(0), 0.5, impl=impl)
        assert keep.shape == (0,) and keep.dtype == np.int64
        np.testing.assert_array_equal(K.nms(np.ones((1, 4)), np.ones(1), 0.5, impl=impl), [0])
    keep = ops.batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64


def test_bad_input():
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        ops.nms(np.zeros((3, 5)), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores must have shape"):
        ops.nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        ops.nms(np.zeros((1, 4)), np.array([np.nan]), 0.5)
    with pytest.raises(ValueError, match="idxs must have shape"):
        ops.batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(2, np.int64), 0.5)
    with pytest.raises(ValueError, match="method"):
        ops.soft_nms(np.zeros((1, 4)), np.ones(1), method="cubic")


@given(n=st.integers(0, 40), seed=st.integers(0, 2**31), classes=st.integers(1, 4))
def test_batched_strategies_agree(n, seed, classes):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n) - 30.0                  # negative coordinates too
    scores = rng.random(n, np.float32)
    idxs = rng.integers(0, classes, n)
    b64, s64 = boxes.astype(np.float64), scores.astype(np.float64)
    trick = nms_ops._batched_nms_coordinate_trick(b64, s64, idxs, 0.5)
    loop = nms_ops._batched_nms_vanilla(b64, s64, idxs, 0.5)
    np.testing.assert_array_equal(trick, loop)
    # the definition: NMS per class, merged by (-score, index)
    expected = [i for c in range(classes) for i in np.flatnonzero(idxs == c)[
        K.nms(boxes[idxs == c], scores[idxs == c], 0.5, impl="reference")]]
    expected = sorted(expected, key=lambda i: (-scores[i], i))
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, 0.5), expected)


def test_batched_uses_loop_above_crossover(rng, monkeypatch):
    boxes, scores = random_boxes(rng, 50), rng.random(50, np.float32)
    idxs = rng.integers(0, 3, 50)
    small = ops.batched_nms(boxes, scores, idxs, 0.4)
    monkeypatch.setattr(nms_ops, "BATCHED_NMS_LOOP_ABOVE", 10)
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, 0.4), small)


@given(n=st.integers(0, 25), seed=st.integers(0, 2**31),
       method=st.sampled_from(["linear", "gaussian"]), sigma=st.sampled_from([0.1, 0.5, 2.0]))
def test_soft_nms_cpu_matches_reference(n, seed, method, sigma):
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, n), rng.random(n, np.float32)
    args = dict(sigma=sigma, iou_threshold=0.3, score_threshold=0.05, method=method)
    k_ref, s_ref = K.soft_nms(boxes, scores, impl="reference", **args)
    k_cpu, s_cpu = K.soft_nms(boxes, scores, impl="cpu", **args)
    np.testing.assert_array_equal(k_cpu, k_ref)
    np.testing.assert_allclose(s_cpu, s_ref, rtol=1e-12)
    assert (np.diff(s_ref) <= 0).all() and (s_ref >= 0.05).all()


def test_soft_nms_hand_worked():
    boxes = np.array([[0, 0, 4, 1], [0, 0, 2, 1], [10, 0, 11, 1]], np.float64)
    scores = np.array([0.9, 0.8, 0.7])
    # linear: box 1 has IoU 0.5 > 0.3 with box 0: 0.8 * (1 - 0.5) = 0.4, box 2 untouched
    keep, s = ops.soft_nms(boxes, scores, method="linear", iou_threshold=0.3)
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(s, [0.9, 0.7, 0.4])
    # gaussian, sigma 0.5: box 1 decays to 0.8 * exp(-0.25 / 0.5) = 0.485 < 0.7, so box 2
    # is picked before it
    keep, s = ops.soft_nms(boxes, scores, sigma=0.5)
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(s, [0.9, 0.7, 0.8 * np.exp(-0.5)])
    # a box decayed below score_threshold is dropped
    keep, _ = ops.soft_nms(boxes, scores, method="linear", score_threshold=0.5)
    np.testing.assert_array_equal(keep, [0, 2])


def test_tensor_in_tensor_out(rng):
    boxes, scores = random_boxes(rng, 10), rng.random(10, np.float32)
    keep = ops.nms(sv.tensor(boxes), sv.tensor(scores), 0.5)
    assert isinstance(keep, sv.Tensor)
    np.testing.assert_array_equal(keep.numpy(), ops.nms(boxes, scores, 0.5))


@pytest.mark.peers
def test_matches_torchvision(rng):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    boxes = random_boxes(rng, 300, size=500.0)
    scores = (rng.permutation(300) / 300).astype(np.float32)     # distinct scores
    idxs = rng.integers(0, 5, 300)
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    for thr in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(ops.nms(boxes, scores, thr),
                                      tv.ops.nms(tb, ts, thr).numpy())
        np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, thr),
                                      tv.ops.batched_nms(tb, ts, torch.from_numpy(idxs),
                                                         thr).numpy())
