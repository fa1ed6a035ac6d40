"""Proposal pictures: segmentation colours, boxes drawn where they belong, the PNG sheet."""
import cv2
import numpy as np
import pytest

from scratchvision.viz import draw_proposals, save_proposals_png, segmentation_image


def test_segmentation_image_one_colour_per_region():
    labels = np.array([[0, 0, 1], [2, 2, 1], [7, 7, 7]])
    out = segmentation_image(labels, seed=1)
    assert out.shape == (3, 3, 3) and out.dtype == np.uint8
    colours = {}
    for v in np.unique(labels):
        pix = out[labels == v]
        assert (pix == pix[0]).all()                 # one colour inside a region
        colours[int(v)] = tuple(pix[0])
    assert len(set(colours.values())) == 4           # distinct regions, distinct colours
    np.testing.assert_array_equal(out, segmentation_image(labels, seed=1))


def test_draw_proposals_draws_only_box_borders():
    img = np.zeros((20, 30, 3), np.uint8)
    out = draw_proposals(img, np.array([[5, 4, 15, 12]], np.float32), top_n=1)
    changed = out.any(axis=2)
    expected = np.zeros((20, 30), bool)
    expected[4:12, 5:15] = True                      # pixel-edge box: last pixel 14, 11
    expected[5:11, 6:14] = False                     # 1-pixel border only
    np.testing.assert_array_equal(changed, expected)
    assert not img.any()                             # the input is not modified
    # top_n limits the boxes drawn; no boxes draws nothing
    two = np.array([[0, 0, 5, 5], [20, 10, 30, 20]], np.float32)
    assert not draw_proposals(img, two, top_n=1)[15].any()
    np.testing.assert_array_equal(draw_proposals(img, np.zeros((0, 4))), img)


def test_save_png_sheet(tmp_path):
    img = np.full((16, 24, 3), 128, np.uint8)
    labels = np.zeros((16, 24), np.int64)
    labels[:, 12:] = 1
    path = save_proposals_png(tmp_path / "sub" / "p.png", img, labels,
                              np.array([[2, 2, 10, 10]]), scale=2)
    back = cv2.imread(str(path))
    assert back.shape == (32, 3 * 48 + 2 * 4, 3)     # three panels, two 4-px gaps
    np.testing.assert_array_equal(back[:, :48], 128)  # first panel: the image itself
    with pytest.raises(ValueError, match="labels shape"):
        save_proposals_png(tmp_path / "q.png", img, labels[:8])
    with pytest.raises(ValueError, match="3 channels"):
        save_proposals_png(tmp_path / "q.png", np.zeros((4, 4, 2), np.uint8))
