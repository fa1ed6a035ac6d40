"""Sliding windows: hand-worked boxes, counts, pyramid coverage, the baseline detector."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvision.proposals import (count_windows, detect_sliding_window, pyramid_sizes,
                                     sliding_windows)


def _iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_hand_worked_one_level():
    # 10x11 image, 4x4 window, stride 3: x in {0, 3, 6} (6 + 4 <= 11, 9 + 4 > 11),
    # y in {0, 3, 6}: 9 windows, row-major (y outer).
    boxes, levels = sliding_windows(10, 11, window_size=4, stride=3, max_levels=1)
    xs, ys = [0, 3, 6], [0, 3, 6]
    expected = [[x, y, x + 4, y + 4] for y in ys for x in xs]
    np.testing.assert_array_equal(boxes, np.array(expected, np.float32))
    assert boxes.dtype == np.float32 and levels.dtype == np.int64 and not levels.any()
    assert count_windows(10, 11, 4, stride=3, max_levels=1) == 9


def test_aspect_ratio_shapes_and_levels():
    boxes, levels = sliding_windows(64, 64, window_size=16, aspect_ratios=(0.25, 1, 4),
                                    stride=16, scale_factor=2.0)
    assert pyramid_sizes(64, 64, 8, 8, 2.0) == [(64, 64), (32, 32), (16, 16), (8, 8)]
    # 5 / 1.1 rounds back to 5: that repeat is skipped, not the end of the pyramid
    assert pyramid_sizes(5, 5, 1, 1, 1.1)[:3] == [(5, 5), (4, 4), (3, 3)]
    assert len(pyramid_sizes(500, 500, 1, 1, 1.1, max_levels=4)) == 4
    lvl0 = boxes[levels == 0]
    wh = {(float(b[2] - b[0]), float(b[3] - b[1])) for b in lvl0}
    assert wh == {(32.0, 8.0), (16.0, 16.0), (8.0, 32.0)}    # h/w = 0.25, 1, 4 at area 256
    # level 2 (16x16 image) has one 16x16 square window covering the whole image
    sq = boxes[(levels == 2)]
    assert [0, 0, 64, 64] in sq.tolist()
    # the 8x8 level is dropped: neither 8x32, 32x8 nor 16x16 fits in it
    assert levels.max() == 2
    assert len(boxes) == count_windows(64, 64, 16, (0.25, 1, 4), 16, 2.0)


@given(h=st.integers(1, 90), w=st.integers(1, 90), size=st.integers(1, 40),
       ratios=st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=3),
       stride=st.integers(1, 20), factor=st.sampled_from([1.1, 1.5, 2.0]),
       max_levels=st.sampled_from([None, 1, 3]))
def test_count_matches_windows(h, w, size, ratios, stride, factor, max_levels):
    boxes, levels = sliding_windows(h, w, size, ratios, stride, factor, max_levels)
    assert len(boxes) == count_windows(h, w, size, ratios, stride, factor, max_levels)
    assert len(levels) == len(boxes)
    if len(boxes):
        tol = 1e-3
        assert np.all(boxes[:, :2] >= -tol) and np.all(boxes[:, 2] <= w + tol)
        assert np.all(boxes[:, 3] <= h + tol)
        assert np.all(np.diff(levels) >= 0)


def test_count_explodes_with_stride_and_levels():
    one = count_windows(480, 640, 64, (1.0,), 8, max_levels=1)
    assert one == ((480 - 64) // 8 + 1) * ((640 - 64) // 8 + 1)    # 53 * 73 = 3869
    assert count_windows(480, 640, 64, (1.0,), 4, max_levels=1) > 3.9 * one
    full = count_windows(480, 640, 64, (1.0,), 8, scale_factor=1.2)
    assert 2.5 * one < full < 1 / (1 - 1.2 ** -2) * one          # below the geometric bound


def test_level0_covers_image():
    h, w, size, stride = 50, 70, 16, 5
    boxes, levels = sliding_windows(h, w, size, stride=stride, max_levels=1)
    covered = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes.astype(int):
        covered[y1:y2, x1:x2] = True
    # every pixel up to the last window's end (w - (w - size) % stride) is covered
    assert covered[:h - (h - size) % stride, :w - (w - size) % stride].all()


def test_pyramid_finds_squares_of_any_size(rng):
    # any square object between the window size and the image size is matched by some
    # window with IoU >= 0.5 (stride 4 at each level, pyramid factor 1.2)
    boxes, _ = sliding_windows(160, 200, 24, (1.0,), 4, 1.2)
    side = rng.uniform(24, 150, 40)
    x = rng.uniform(0, 200 - side)
    y = rng.uniform(0, 160 - side)
    objects = np.stack([x, y, x + side, y + side], axis=1)
    assert _iou(objects, boxes.astype(np.float64)).max(axis=1).min() >= 0.5


def test_detector_finds_bright_square():
    img = np.zeros((60, 80), np.uint8)
    img[20:36, 40:56] = 255                              # a 16x16 square at x 40, y 20

    def fraction_bright(crops):                          # the "classifier"
        return (crops > 128).mean(axis=(1, 2))

    boxes, scores, levels = detect_sliding_window(img, fraction_bright, window_size=16,
                                                  stride=4, score_threshold=0.99,
                                                  batch_size=37)
    assert [40, 20, 56, 36] in boxes.tolist()
    assert np.all(scores >= 0.99) and boxes.dtype == np.float32
    none = detect_sliding_window(img, fraction_bright, 16, stride=4, score_threshold=1.5)
    assert len(none[0]) == 0


@pytest.mark.parametrize("kwargs, words", [
    (dict(stride=0), "stride"),
    (dict(window_size=0), "window_size"),
    (dict(scale_factor=1.0), "scale_factor"),
    (dict(aspect_ratios=(1.0, -2.0)), "aspect_ratios"),
    (dict(max_levels=0), "max_levels"),
])
def test_bad_input(kwargs, words):
    with pytest.raises(ValueError, match=words):
        sliding_windows(32, 32, **kwargs)
    with pytest.raises(ValueError, match=words):
        count_windows(32, 32, **kwargs)


def test_detector_bad_input():
    with pytest.raises(ValueError, match="image"):
        detect_sliding_window(np.zeros((0, 5)), lambda c: c.mean((1, 2)))
    with pytest.raises(ValueError, match="scores"):
        detect_sliding_window(np.zeros((20, 20)), lambda c: np.zeros(1), window_size=8)
