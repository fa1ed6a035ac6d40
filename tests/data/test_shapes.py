"""Shapes: determinism, box/mask/semantic consistency, occlusion, speed sanity."""
import time

import numpy as np
import pytest

from scratchvision.data import Shapes, masks_to_boxes
from scratchvision.data.shapes import MIN_VISIBLE_FRACTION, generate


def test_sample_format():
    img, t = Shapes("train", 3, image_size=64)[1]
    k = len(t["labels"])
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert t["boxes"].shape == (k, 4) and t["boxes"].dtype == np.float32
    assert t["labels"].dtype == np.int64 and set(t["labels"]) <= {1, 2, 3}
    assert t["masks"].shape == (k, 64, 64) and t["masks"].dtype == np.uint8
    assert t["semantic"].shape == (64, 64) and t["semantic"].dtype == np.uint8
    assert 1 <= k <= 4 and t["image_id"] == 1


def test_deterministic_from_seed_split_index():
    a = Shapes("train", 10, seed=5)
    b = Shapes("train", 10, seed=5)
    for i in (7, 2, 7):                       # any order, repeated
        ia, ta = a[i]
        ib, tb = b[i]
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ta["masks"], tb["masks"])
        np.testing.assert_array_equal(ta["boxes"], tb["boxes"])
    assert not np.array_equal(a[3][0], Shapes("val", 10, seed=5)[3][0])
    assert not np.array_equal(a[3][0], Shapes("train", 10, seed=6)[3][0])
    assert not np.array_equal(a[3][0], a[4][0])
    np.testing.assert_array_equal(a[-1][0], a[9][0])


@pytest.mark.parametrize("size", [64, 128])
def test_boxes_are_tight_boxes_of_visible_masks(size):
    ds = Shapes("val", 25, image_size=size, seed=1)
    for i in range(len(ds)):
        _, t = ds[i]
        m = t["masks"]
        np.testing.assert_array_equal(t["boxes"], masks_to_boxes(m))
        assert (m.sum(axis=(1, 2)) > 0).all()
        assert m.astype(int).sum(0).max() <= 1          # visible masks are disjoint
        # semantic map = labels of the visible masks, background elsewhere
        expect = np.zeros((size, size), np.uint8)
        for k in range(len(m)):
            expect[m[k] > 0] = t["labels"][k]
        np.testing.assert_array_equal(t["semantic"], expect)
        b = t["boxes"]
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert b.min() >= 0 and b.max() <= size


def test_masks_to_boxes_hand_worked():
    m = np.zeros((2, 5, 6), np.uint8)
    m[0, 1:3, 2:5] = 1                        # rows 1..2, columns 2..4 -> (2, 1, 5, 3)
    np.testing.assert_array_equal(masks_to_boxes(m), [[2, 1, 5, 3], [0, 0, 0, 0]])


def test_occluded_masks_shrink_and_stay_visible():
    shrunk = 0
    for i in range(40):
        s = generate(0, "train", i, 96, 4, full_masks=True)
        full, vis = s["full_masks"].astype(bool), s["masks"].astype(bool)
        for k in range(len(vis)):
            later = full[k + 1:].any(axis=0) if k + 1 < len(vis) else np.zeros_like(vis[k])
            np.testing.assert_array_equal(vis[k], full[k] & ~later)
            assert vis[k].sum() >= MIN_VISIBLE_FRACTION * full[k].sum()
            shrunk += vis[k].sum() < full[k].sum()
        assert not vis[-1:].sum() < full[-1:].sum()          # the top shape is whole
    assert shrunk > 0, "no occlusion happened in 40 images"


def test_objects_sizes_and_pixels():
    img, t = Shapes("train", 5, seed=2)[0]
    for k in range(len(t["labels"])):
        w = t["boxes"][k, 2] - t["boxes"][k, 0]
        h = t["boxes"][k, 3] - t["boxes"][k, 1]
        assert max(w, h) <= 64 * 1.5 + 2                     # rotated 64 px square fits
    # objects differ from the background: the mean colour inside and around differs
    assert img.std() > 10


def test_generation_speed_sanity():
    ds = Shapes("train", 200, seed=3)
    ds[0]
    t0 = time.perf_counter()
    for i in range(200):
        ds[i]
    rate = 200 / (time.perf_counter() - t0)
    assert rate > 50, f"{rate:.0f} images/s"                 # 1,000 images in < 20 s


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        Shapes("training", 3)
    with pytest.raises(ValueError, match="image_size"):
        Shapes("train", 3, image_size=8)
    with pytest.raises(ValueError, match="max_objects"):
        Shapes("train", 3, max_objects=0)
    with pytest.raises(IndexError):
        Shapes("train", 3)[3]
