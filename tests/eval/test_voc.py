"""evaluate_voc on hand-worked cases (devkit rules) and bad input."""
import numpy as np
import pytest

from scratchvision.eval import evaluate_voc, voc_ap

A = [0, 0, 9, 9]          # 10 x 10 pixels (inclusive coordinates)
B = [20, 20, 29, 29]
C = [50, 0, 59, 9]


def _ev(preds, gts, diffs=None, **kw):
    """preds: per image [(box, label, score)], gts: per image [(box, label)]."""
    pb = [np.array([p[0] for p in im], float).reshape(-1, 4) for im in preds]
    pl = [np.array([p[1] for p in im], int) for im in preds]
    ps = [np.array([p[2] for p in im], float) for im in preds]
    gb = [np.array([g[0] for g in im], float).reshape(-1, 4) for im in gts]
    gl = [np.array([g[1] for g in im], int) for im in gts]
    return evaluate_voc(pb, pl, ps, gb, gl, diffs, **kw)


@pytest.mark.parametrize("use_07", [False, True])
def test_perfect(use_07):
    r = _ev([[(A, 1, .9), (B, 2, .8)], [(C, 1, .7)]], [[(A, 1), (B, 2)], [(C, 1)]],
            use_07_metric=use_07)
    # (the 11-point sum of 1/11 is 1 up to rounding, as in the devkit)
    assert np.isnan(r["ap"][0])
    np.testing.assert_allclose(r["ap"][1:], 1.0, rtol=1e-12)
    assert r["map"] == pytest.approx(1.0, rel=1e-12)


def test_one_false_positive_ranked_first():
    # scores: FP .9, TP .8 -> precision [0, .5], recall [0, 1]: envelope .5 everywhere
    r = _ev([[(C, 1, .9), (A, 1, .8)]], [[(A, 1)]])
    assert r["ap"][1] == pytest.approx(0.5)
    np.testing.assert_allclose(r["precision"][1], [0, 0.5])
    np.testing.assert_allclose(r["recall"][1], [0, 1])
    assert _ev([[(C, 1, .9), (A, 1, .8)]], [[(A, 1)]], use_07_metric=True)["ap"][1] == \
        pytest.approx(0.5)
    # ranked last, the FP costs nothing
    assert _ev([[(C, 1, .7), (A, 1, .8)]], [[(A, 1)]])["ap"][1] == 1.0


def test_duplicate_detection():
    # A .9 (TP), A again .8 (duplicate -> FP), B .7 (TP); two GT
    # recall [.5, .5, 1], precision [1, .5, 2/3] -> envelope [1, 2/3, 2/3]
    # area: .5 * 1 + .5 * 2/3 = 5/6; 07: 6 points at 1, 5 points at 2/3 -> 28/33
    p = [[(A, 1, .9), (A, 1, .8), (B, 1, .7)]]
    g = [[(A, 1), (B, 1)]]
    assert _ev(p, g)["ap"][1] == pytest.approx(5 / 6)
    assert _ev(p, g, use_07_metric=True)["ap"][1] == pytest.approx(28 / 33)


def test_difficult_neither_counts_nor_penalises():
    p = [[(B, 1, .95), (A, 1, .9)]]
    g = [[(A, 1), (B, 1)]]
    d = [np.array([False, True])]
    r = _ev(p, g, d)
    assert r["ap"][1] == 1.0                               # B's detection is dropped
    np.testing.assert_allclose(r["recall"][1], [0, 1])     # n_pos = 1
    # missing the difficult object is not penalised either
    assert _ev([[(A, 1, .9)]], g, d)["ap"][1] == 1.0
    # a class with only difficult objects has no AP
    r = _ev([[(A, 1, .9)]], [[(A, 1)]], [np.array([True])])
    assert np.isnan(r["ap"][1]) and np.isnan(r["map"])


def test_inclusive_pixels_and_strict_threshold():
    # [0,0,9,4] vs [0,0,9,9]: 10x5 = 50 pixels of 100 -> IoU exactly .5 (not > .5)
    # (without the +1 it would be 36/81 = .44)
    p = [[([0, 0, 9, 4], 1, .9)]]
    g = [[(A, 1)]]
    assert _ev(p, g)["ap"][1] == 0.0
    assert _ev(p, g, iou_thresh=0.49)["ap"][1] == 1.0


def test_argmax_gt_taken_means_duplicate():
    # the devkit compares only with the best-overlapping GT: once it is taken, a second
    # detection overlapping it most is a FP even if it also overlaps another GT enough
    g = [[([0, 0, 9, 9], 1), ([0, 0, 9, 11], 1)]]
    p = [[([0, 0, 9, 9], 1, .9), ([0, 0, 9, 9], 1, .8)]]
    r = _ev(p, g)
    np.testing.assert_allclose(r["precision"][1], [1, .5])


def test_empty_predictions_and_image_without_gt():
    r = _ev([[], []], [[(A, 1)], []])
    assert r["ap"][1] == 0.0 and r["map"] == 0.0
    # a detection on an image without ground truth is a false positive
    r = _ev([[(A, 1, .8)], [(A, 1, .9)]], [[(A, 1)], []])
    assert r["ap"][1] == pytest.approx(0.5)
    r = _ev([[], []], [[], []], num_classes=3)
    assert r["ap"].shape == (3,) and np.isnan(r["map"])


def test_voc_ap_curves():
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)
    assert voc_ap(np.array([]), np.array([])) == 0.0


def test_bad_input():
    good_b, good_l, good_s = [np.array([A], float)], [np.array([1])], [np.array([.5])]
    with pytest.raises(ValueError, match=r"pred_boxes\[0\] row 0 .* x2 < x1"):
        evaluate_voc([np.array([[5, 0, 2, 3]], float)], good_l, good_s, good_b, good_l)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\] must have shape \(K, 4\)"):
        evaluate_voc(good_b, good_l, good_s, [np.zeros((1, 3))], good_l)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        evaluate_voc(good_b, [np.array([-1])], good_s, good_b, good_l)
    with pytest.raises(ValueError, match="out of range for num_classes=1"):
        evaluate_voc(good_b, good_l, good_s, good_b, good_l, num_classes=1)
    with pytest.raises(ValueError, match=r"pred_scores\[0\] has 2 entries for 1 boxes"):
        evaluate_voc(good_b, good_l, [np.array([.5, .4])], good_b, good_l)
    with pytest.raises(ValueError, match="pred_labels has 2 images"):
        evaluate_voc(good_b, good_l * 2, good_s, good_b, good_l)
