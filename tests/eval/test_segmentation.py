"""Segmentation metrics on hand-computed confusion matrices."""
import numpy as np
import pytest

from scratchvision.eval import confusion_matrix, evaluate_segmentation, segmentation_scores


def test_hand_computed():
    gt = np.array([[0, 0, 1, 1],
                   [0, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 2, 0, 2]])
    # rows = gt, cols = pred; the 255 pixel is ignored
    # gt 0: pred 0,1,0 -> [2, 1, 0]; gt 1: [0, 2, 0]; gt 2: pred 2, 0 -> [1, 0, 1]
    conf = confusion_matrix(pred, gt, 3)
    np.testing.assert_array_equal(conf, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    r = evaluate_segmentation(pred, gt, 3)
    # IoU: 0: 2 / (3 + 3 - 2) = .5; 1: 2 / (2 + 3 - 2) = 2/3; 2: 1 / (2 + 1 - 1) = .5
    np.testing.assert_allclose(r["iou"], [0.5, 2 / 3, 0.5])
    assert r["miou"] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert r["pixel_acc"] == pytest.approx(5 / 7)
    np.testing.assert_allclose(r["class_acc"], [2 / 3, 1.0, 0.5])
    assert r["mean_class_acc"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)


def test_lists_sum_confusions_and_absent_class_is_nan():
    a = evaluate_segmentation([np.zeros((2, 2), int), np.ones((1, 3), int)],
                              [np.zeros((2, 2), int), np.ones((1, 3), int)], 3)
    np.testing.assert_array_equal(a["confusion"], [[4, 0, 0], [0, 3, 0], [0, 0, 0]])
    assert np.isnan(a["iou"][2]) and a["miou"] == 1.0 and a["pixel_acc"] == 1.0
    s = segmentation_scores(np.zeros((2, 2)))
    assert np.isnan(s["miou"]) and np.isnan(s["pixel_acc"])


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match="gt has label 5 outside"):
        confusion_matrix(np.zeros((2, 2), int), np.full((2, 2), 5), 3)
    with pytest.raises(ValueError, match="pred has label -1"):
        confusion_matrix(np.full((2, 2), -1), np.zeros((2, 2), int), 3)
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2), int), 3)
