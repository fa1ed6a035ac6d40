"""Drawing: boxes, masks, segmentations, grids and plots land on the right pixels."""
import cv2
import numpy as np
import pytest

from scratchvision import Tensor
from scratchvision.viz import (class_color, draw_boxes, draw_masks, draw_segmentation,
                               make_grid, plot_pr_curves, plot_training_curves,
                               save_image_grid)
from scratchvision.viz.plots import read_log


def _grey(h=40, w=50):
    return np.full((h, w, 3), 100, np.uint8)


def test_draw_boxes_outline_on_box_edges():
    img = _grey()
    out = draw_boxes(img, np.array([[10, 5, 30, 25]]), labels=np.array([2]))
    col = np.array(class_color(2))
    # pixel-edge box 10..30 x 5..25: outline on columns 10 and 29, rows 5 and 24
    for y, x in [(5, 10), (24, 29), (15, 10), (15, 29), (5, 20), (24, 20)]:
        np.testing.assert_array_equal(out[y, x], col)
    np.testing.assert_array_equal(out[15, 20], [100, 100, 100])   # inside untouched
    np.testing.assert_array_equal(out[30, 40], [100, 100, 100])   # outside untouched
    np.testing.assert_array_equal(img, _grey())                    # input not modified
    assert class_color(2) != class_color(3)


def test_draw_boxes_captions_and_threshold():
    img = _grey(60, 80)
    out = draw_boxes(img, np.array([[20, 30, 60, 50]]), np.array([1]), np.array([0.93]),
                     class_names=["bg", "cat"])
    assert (out[18:29, 20:60] != 100).any()                        # caption above the box
    hidden = draw_boxes(img, np.array([[20, 30, 60, 50]]), np.array([1]), np.array([0.2]),
                        score_thresh=0.5)
    np.testing.assert_array_equal(hidden, img)
    with pytest.raises(ValueError, match="labels has 2 entries for 1 boxes"):
        draw_boxes(img, np.array([[0, 0, 1, 1]]), labels=np.array([1, 2]))


def test_draw_boxes_accepts_chw_tensor():
    x = Tensor(np.full((3, 20, 30), 0.5, np.float32))
    out = draw_boxes(x, np.array([[2, 2, 10, 10]]))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8 and out[15, 20, 0] == 128


def test_draw_masks_alpha_and_contour():
    img = _grey()
    m = np.zeros((1, 40, 50), np.uint8)
    m[0, 10:30, 10:40] = 1
    out = draw_masks(img, m, labels=np.array([1]), alpha=0.25)
    col = np.array(class_color(1), float)
    np.testing.assert_array_equal(out[20, 20], np.round(0.75 * 100 + 0.25 * col))   # inside
    np.testing.assert_array_equal(out[10, 20], col)                                  # contour
    np.testing.assert_array_equal(out[5, 5], [100, 100, 100])                        # outside
    with pytest.raises(ValueError, match="masks must be"):
        draw_masks(img, np.zeros((1, 4, 4)))


def test_draw_segmentation_palette():
    sem = np.array([[0, 1], [15, 255]], np.uint8)
    out = draw_segmentation(sem)
    np.testing.assert_array_equal(out.reshape(-1, 3),
                                  [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]])
    over = draw_segmentation(sem, np.full((2, 2, 3), 100, np.uint8), alpha=0.5)
    np.testing.assert_array_equal(over[0, 0], [100, 100, 100])    # background stays
    np.testing.assert_array_equal(over[0, 1], [114, 50, 50])      # (100 + 128) / 2 ...
    scores = np.zeros((3, 2, 2))
    scores[2, 1, 1] = 1
    np.testing.assert_array_equal(draw_segmentation(scores)[1, 1], [0, 128, 0])


def test_make_grid_layout_and_png(tmp_path):
    tiles = [np.full((10, 12, 3), v, np.uint8) for v in (10, 20, 30)]
    g = make_grid(tiles, nrow=2, padding=1, pad_value=0)
    assert g.shape == (2 * 11 + 1, 2 * 13 + 1, 3)
    assert g[1, 1, 0] == 10 and g[1, 14, 0] == 20 and g[12, 1, 0] == 30
    assert g[0, 0, 0] == 0 and g[12, 14, 0] == 0              # padding and the empty cell
    batch = Tensor(np.ones((2, 3, 4, 4), np.float32))
    assert make_grid(batch, nrow=2, padding=0).shape == (4, 8, 3)
    path = save_image_grid(tiles, tmp_path / "grid.png", nrow=2)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, make_grid(tiles, nrow=2))


def test_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    prec = [None, np.array([1.0, 0.5, 2 / 3]), np.array([0.0, 0.5])]
    rec = [None, np.array([0.5, 0.5, 1.0]), np.array([0.0, 1.0])]
    plot_pr_curves(prec, rec, ap=np.array([np.nan, 0.83, 0.5]), class_names=["bg", "a", "b"],
                   path=tmp_path / "pr.png")
    assert cv2.imread(str(tmp_path / "pr.png")) is not None
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(f'{{"step": {s}, "loss": {2.0 / (s + 1)}, "lr": 0.1}}'
                             for s in range(20)))
    assert [r["step"] for r in read_log(log)][:3] == [0, 1, 2]
    fig = plot_training_curves(log, path=tmp_path / "curves.png", smooth=3)
    assert len([a for a in fig.axes if a.lines]) == 2
    assert cv2.imread(str(tmp_path / "curves.png")) is not None
    log.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"log\.jsonl:2: not valid JSON"):
        read_log(log)
