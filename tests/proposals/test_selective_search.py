"""Selective Search: objects found, determinism, kernels == references, bad input."""
import cv2
import numpy as np
import pytest

from scratchvision.proposals import SelectiveSearch, felzenszwalb, selective_search
from scratchvision.proposals.selective_search import (COLOR_SPACES, SIMILARITIES,
                                                      convert_color, feature_bins,
                                                      hierarchical_grouping, region_features)


def _iou(a, b):
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU (test-side oracle)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _shapes_image(rng, size=96):
    """Plain background with a filled rectangle, circle and triangle; their exact boxes."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (200, 200, 190)
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    cv2.rectangle(img, (6, 8), (36, 30), (220, 30, 30), -1)          # pixels x 6..36, y 8..30
    cv2.circle(img, (66, 66), 16, (30, 140, 40), -1)                 # x, y 50..82
    tri = np.array([[10, 88], [40, 88], [25, 52]], np.int32)
    cv2.fillPoly(img, [tri], (40, 40, 210))                          # x 10..40, y 52..88
    gt = np.array([[6, 8, 37, 31], [50, 50, 83, 83], [10, 52, 41, 89]], np.float32)
    return img, gt


# objects are found --------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["single", "fast"])
def test_finds_each_shape(rng, strategy):
    img, gt = _shapes_image(rng)
    boxes = selective_search(img, strategy=strategy)
    best = _iou(gt, boxes).max(axis=1)
    assert np.all(best >= 0.8), best


def test_output_format(rng):
    img, _ = _shapes_image(rng, 64)
    boxes = selective_search(img)
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 64) and np.all(boxes[:, 3] <= 64)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    assert len(np.unique(boxes, axis=0)) == len(boxes)                 # de-duplicated
    assert any((b == [0, 0, 64, 64]).all() for b in boxes)            # the whole image


def test_deterministic_with_seed(rng):
    img, _ = _shapes_image(rng, 64)
    a = selective_search(img, seed=3)
    np.testing.assert_array_equal(a, selective_search(img, seed=3))
    np.testing.assert_array_equal(a, selective_search(img, seed=3, num_threads=1))
    b = selective_search(img, seed=4)
    # another seed ranks the same set of boxes differently
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(np.unique(a, axis=0), np.unique(b, axis=0))


def test_strategies_and_one_pixel_image(rng):
    img, _ = _shapes_image(rng, 32)
    single = selective_search(img, "single")
    fast = selective_search(img, "fast")
    # every box of 'single' (HSV, k=100, CTSF) is one of the boxes of 'fast'
    assert set(map(tuple, single.tolist())) <= set(map(tuple, fast.tolist()))
    custom = selective_search(img, color_spaces=("rgI", "I"), ks=(30,), similarities=("F",))
    assert len(custom) >= 1
    np.testing.assert_array_equal(selective_search(np.zeros((1, 1, 3), np.uint8)),
                                  [[0, 0, 1, 1]])


def test_boxes_of_one_strategy_form_a_hierarchy(rng):
    img, _ = _shapes_image(rng, 48)
    ss = SelectiveSearch("single")
    ss(img)
    cs, k, labels = ss.segmentations[0]
    colour, texture = feature_bins(convert_color(img, cs))
    boxes, merged = hierarchical_grouping(labels, colour, texture, "CTSF")
    n = labels.max() + 1
    assert len(boxes) == 2 * n - 1 and np.all(merged[:n] == -1)
    for t in range(n, 2 * n - 1):                 # each merged box is its children's union
        i, j = merged[t]
        assert i < t and j < t
        np.testing.assert_array_equal(boxes[t, :2], np.minimum(boxes[i, :2], boxes[j, :2]))
        np.testing.assert_array_equal(boxes[t, 2:], np.maximum(boxes[i, 2:], boxes[j, 2:]))
    np.testing.assert_array_equal(boxes[-1], [0, 0, 48, 48])
    used = np.sort(merged[n:].reshape(-1))
    np.testing.assert_array_equal(used, np.arange(2 * n - 2))   # every region merged once


# kernels == references ---------------------------------------------------------------------

def _random_case(rng):
    h, w = rng.integers(1, 14, 2)
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    if rng.random() < 0.5:
        img = (img // 128 * 127).astype(np.uint8)             # flat areas, tied similarities
    cs = COLOR_SPACES[rng.integers(len(COLOR_SPACES))]
    img = convert_color(img, cs)
    labels = felzenszwalb(img, float(rng.choice([5, 40, 300])), 0.5, int(rng.integers(0, 4)))
    return img, labels


def test_feature_bins_match_reference(rng):
    for _ in range(12):
        img, _ = _random_case(rng)
        for fast, ref in zip(feature_bins(img, impl="cpu"),
                             feature_bins(img, impl="reference")):
            np.testing.assert_array_equal(fast, ref)
        colour, texture = feature_bins(img)
        assert colour.max() < 25 and texture.max() < 10
        assert texture.shape == (8 * img.shape[2], img.shape[0] * img.shape[1])


def test_region_features_match_reference(rng):
    for _ in range(12):
        img, labels = _random_case(rng)
        colour, texture = feature_bins(img)
        ref = region_features(labels, colour, texture, impl="reference")
        fast = region_features(labels, colour, texture, impl="cpu")
        for name, a, b in zip(("size", "box", "colour", "texture", "pairs"), fast, ref):
            np.testing.assert_array_equal(a, b, err_msg=name)   # same float32 operations
        np.testing.assert_allclose(fast[2].sum(axis=1), 1, rtol=1e-5)   # L1-normalised
        np.testing.assert_allclose(fast[3].sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("similarity", sorted(SIMILARITIES))
def test_grouping_matches_reference(rng, similarity):
    for _ in range(4):
        img, labels = _random_case(rng)
        colour, texture = feature_bins(img)
        fast = hierarchical_grouping(labels, colour, texture, similarity, impl="cpu")
        ref = hierarchical_grouping(labels, colour, texture, similarity, impl="reference")
        np.testing.assert_array_equal(fast[0], ref[0])
        np.testing.assert_array_equal(fast[1], ref[1])


@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_grouping_hand_case(impl):
    # three regions in a row: 0 | 1 | 2, with 0 and 1 the same colour, 2 different.
    # Colour similarity: s(0,1) = 1, s(1,2) = 0, so 0 and 1 merge first (region 3),
    # then 3 and 2 (region 4).
    labels = np.array([[0, 0, 1, 1, 2, 2]] * 2, np.int64)
    img = np.zeros((2, 6, 3), np.uint8)
    img[:, 4:] = 255
    colour, texture = feature_bins(img, impl=impl)
    boxes, merged = hierarchical_grouping(labels, colour, texture, "C", impl=impl)
    np.testing.assert_array_equal(merged[3:], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(boxes, [[0, 0, 2, 2], [2, 0, 4, 2], [4, 0, 6, 2],
                                          [0, 0, 4, 2], [0, 0, 6, 2]])


def test_convert_color_ranges():
    rgb = np.array([[[255, 0, 0], [0, 0, 0], [30, 60, 90]]], np.uint8)
    np.testing.assert_array_equal(convert_color(rgb, "rgI")[0, 0], [255, 0, 85])
    np.testing.assert_array_equal(convert_color(rgb, "rgI")[0, 1], [0, 0, 0])
    np.testing.assert_array_equal(convert_color(rgb, "I")[0, :, 0], [85, 0, 60])
    assert convert_color(rgb, "H").shape == (1, 3, 1)
    for cs in COLOR_SPACES:
        assert convert_color(rgb, cs).dtype == np.uint8


# bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("image, kwargs, exc, words", [
    (np.zeros((8, 8, 3), np.float32), {}, TypeError, "uint8"),
    (np.zeros((8, 8), np.uint8), {}, ValueError, "shape"),
    (np.zeros((8, 8, 4), np.uint8), {}, ValueError, "shape"),
    (np.zeros((0, 8, 3), np.uint8), {}, ValueError, "shape"),
    ([[0]], {}, TypeError, "numpy array"),
    (np.zeros((8, 8, 3), np.uint8), {"strategy": "best"}, ValueError, "strategy"),
    (np.zeros((8, 8, 3), np.uint8), {"color_spaces": ("xyz",)}, ValueError, "colour space"),
    (np.zeros((8, 8, 3), np.uint8), {"similarities": ("Q",)}, ValueError, "similarity"),
    (np.zeros((8, 8, 3), np.uint8), {"ks": (-5,)}, ValueError, "k"),
    (np.zeros((8, 8, 3), np.uint8), {"sigma": -1}, ValueError, "sigma"),
    (np.zeros((8, 8, 3), np.uint8), {"num_threads": 0}, ValueError, "num_threads"),
])
def test_bad_input(image, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        selective_search(image, **kwargs)


# cross-check with OpenCV-contrib (skipped without cv2.ximgproc) ----------------------------

@pytest.mark.peers
def test_recall_not_below_opencv_contrib():
    if not hasattr(cv2, "ximgproc"):
        pytest.skip("cv2.ximgproc missing: needs opencv-contrib-python")
    from scratchvision.data.shapes import Shapes
    ds = Shapes("test", 8, image_size=128, seed=0)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ours, theirs = [], []
    for i in range(len(ds)):
        img, target = ds[i]
        ss.setBaseImage(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        ss.switchToSelectiveSearchFast()
        rects = ss.process().reshape(-1, 4).astype(np.float32)
        rects[:, 2:] += rects[:, :2]                       # (x, y, w, h) -> xyxy
        gt = target["boxes"]
        ours.append(_iou(gt, selective_search(img, "fast")).max(axis=1))
        theirs.append(_iou(gt, rects).max(axis=1))
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    assert np.mean(ours >= 0.7) >= np.mean(theirs >= 0.7), (ours, theirs)
