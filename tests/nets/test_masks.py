"""Mask R-CNN's mask branch (scratchvision.nets.detection.masks): targets, loss, heads and
paste-back, by hand-worked examples and against torchvision where it is installed."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision.autograd import gradcheck
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.nets.detection.masks import (
    MaskRCNNHeads,
    MaskRCNNPredictor,
    maskrcnn_loss,
    paste_masks_in_image,
    project_masks_on_boxes,
)


def _rect_mask():
    """8 x 8, ones on rows 2..5 and columns 2..5 (pixel indices)."""
    m = np.zeros((8, 8), np.uint8)
    m[2:6, 2:6] = 1
    return m


# ------------------------------------------------------------------ mask targets
def test_targets_hand_worked_crop_and_resize():
    # gt 0 is empty, gt 1 the rectangle. aligned=False: pixel i's value sits at coordinate
    # i, samples at x1 + (pw + (ix + 0.5) / grid) * bin. Box [2, 2, 6, 6], M = 4: bin 1,
    # grid ceil(1) = 1, samples at 2.5, 3.5, 4.5, 5.5 -> 1, 1, 1, 0.5 (5.5 is halfway
    # between pixel 5 (1) and pixel 6 (0)); the 2-D value is the product of the two axes
    gt = np.stack([np.zeros((8, 8), np.uint8), _rect_mask()])
    boxes = np.array([[2, 2, 6, 6], [2, 2, 6, 6]], np.float32)
    t = project_masks_on_boxes(gt, boxes, np.array([1, 0]), 4)
    v = np.array([1, 1, 1, 0.5])
    assert t.shape == (2, 4, 4) and t.dtype == np.float32
    np.testing.assert_allclose(t[0], np.outer(v, v), atol=1e-6)
    np.testing.assert_array_equal(t[1], 0)               # matched to the empty mask
    # M = 2: bin 2, grid 2, samples 2.5, 3.5 | 4.5, 5.5 -> bin means 1 and 0.75
    np.testing.assert_allclose(project_masks_on_boxes(gt, boxes[:1], [1], 2)[0],
                               [[1, 0.75], [0.75, 0.5625]], atol=1e-6)


def test_targets_distinguish_x_from_y():
    # box [x1=2, y1=2, x2=6, y2=4], M = 2: x bins of 2 (samples 2.5, 3.5 | 4.5, 5.5 ->
    # 1 | 0.75), y bins of 1 (samples 2.5 | 3.5 -> 1 | 1): columns differ, rows do not
    gt = _rect_mask()[None]
    wide = project_masks_on_boxes(gt, np.array([[2, 2, 6, 4]], np.float32), [0], 2)[0]
    tall = project_masks_on_boxes(gt, np.array([[2, 2, 4, 6]], np.float32), [0], 2)[0]
    np.testing.assert_allclose(wide, [[1, 0.75], [1, 0.75]], atol=1e-6)
    np.testing.assert_allclose(tall, [[1, 1], [0.75, 0.75]], atol=1e-6)


def test_targets_empty_and_bad_index():
    gt = _rect_mask()[None]
    t = project_masks_on_boxes(gt, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), 28)
    assert t.shape == (0, 28, 28) and t.dtype == np.float32
    with pytest.raises(ValueError, match="matched_idxs"):
        project_masks_on_boxes(gt, np.array([[0, 0, 4, 4]], np.float32), [1], 4)


# -------------------------------------------------------------------------- loss
def _loss_inputs(rng, dtype=np.float32):
    gm = [(rng.random((2, 10, 12)) > 0.5).astype(np.uint8),
          (rng.random((1, 9, 9)) > 0.3).astype(np.uint8)]
    gl = [np.array([2, 1]), np.array([1])]
    props = [np.array([[0.5, 1.0, 8.0, 7.5], [2.0, 0.0, 11.0, 9.0], [3.3, 2.2, 6.1, 8.8]],
                      np.float32), np.array([[1.0, 1.5, 7.0, 6.0]], np.float32)]
    idx = [np.array([0, 1, 0]), np.array([0])]
    logits = (rng.standard_normal((4, 3, 6, 6)) * 2).astype(dtype)
    return logits, props, gm, gl, idx


def test_loss_uses_only_the_label_channel_and_matches_formula():
    logits, props, gm, gl, idx = _loss_inputs(np.random.default_rng(0), np.float64)
    x = sv.tensor(logits, requires_grad=True)
    loss = maskrcnn_loss(x, props, gm, gl, idx)
    labels = np.array([2, 1, 2, 1])
    t = np.concatenate([project_masks_on_boxes(g, p, i, 6) for g, p, i in zip(gm, props, idx)])
    z = logits[np.arange(4), labels]
    expected = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    loss.backward()
    g = x.grad.numpy()
    other = np.ones(g.shape, bool)
    other[np.arange(4), labels] = False
    assert np.all(g[other] == 0) and np.all(g[~other] != 0)


def test_loss_gradcheck_float64():
    logits, props, gm, gl, idx = _loss_inputs(np.random.default_rng(1), np.float64)
    gradcheck(lambda x: maskrcnn_loss(x, props, gm, gl, idx), [logits])
    case = registered_gradchecks()["maskrcnn_loss"]       # the project's gradcheck table
    r = run_case(case)
    assert r.ok and r.checked > 0, r.worst


def test_loss_without_positives_is_zero_and_differentiable():
    x = sv.tensor(np.random.default_rng(2).standard_normal((0, 3, 28, 28)),
                  requires_grad=True)
    loss = maskrcnn_loss(x, [np.zeros((0, 4), np.float32)], [np.zeros((0, 5, 5), np.uint8)],
                         [np.zeros(0, np.int64)], [np.zeros(0, np.int64)])
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert x.grad.shape == (0, 3, 28, 28)
    with pytest.raises(ValueError, match="RoIs"):
        maskrcnn_loss(sv.tensor(np.zeros((2, 3, 4, 4))), [np.zeros((0, 4))],
                      [np.zeros((0, 5, 5), np.uint8)], [np.zeros(0, np.int64)],
                      [np.zeros(0, np.int64)])


# ------------------------------------------------------------------------- heads
def test_heads_shapes_names_and_init():
    sv.manual_seed(0)
    heads = MaskRCNNHeads(8, (16, 16, 16, 16))
    pred = MaskRCNNPredictor(16, 12, 5)
    x = sv.tensor(np.random.default_rng(0).standard_normal((3, 8, 14, 14)).astype(np.float32))
    y = pred(heads(x))
    assert y.shape == (3, 5, 28, 28)
    names = {n for n, _ in heads.named_parameters()} | {n for n, _ in pred.named_parameters()}
    assert {"0.0.weight", "3.0.bias", "conv5_mask.weight", "mask_fcn_logits.bias"} <= names
    assert all(np.all(blk[0].bias.numpy() == 0) for blk in heads)
    w = heads[1][0].weight.numpy()                        # fan_out = 16 * 9
    assert abs(w.std() - np.sqrt(2 / (16 * 9))) < 0.15 * np.sqrt(2 / (16 * 9))
    assert MaskRCNNHeads(8, (4,), dilation=2)(x).shape == (3, 4, 14, 14)
    assert pred(heads(x[:0])).shape == (0, 5, 28, 28)


# -------------------------------------------------------------------- paste-back
def test_paste_box_leaving_the_image():
    # 28 x 28 ones, padding 1 -> 30 x 30 with a zero ring; the box is scaled by 30/28
    # about its centre (3.5, 8.5): half-size 13.5 * 30/28 = 14.46 -> [-10.96, -5.96,
    # 17.96, 22.96], truncated toward 0 to [-10, -5, 17, 22] (floor would give -11, -6):
    # 28 x 28 pixels. Resizing 30 -> 28, output pixel d samples (d + 0.5) * 30/28 - 0.5:
    # d = 0 -> 0.036 (1/28 of the way from the zero ring to a one), d = 27 -> 28.96 (1/28
    # of a one), d = 1..26 -> between ones. So the resized mask is 1 inside, 1/28 on its
    # edge ring. The 20 x 20 image shows resized rows 5..24 and columns 10..27.
    out = paste_masks_in_image(np.ones((1, 1, 28, 28), np.float32),
                               np.array([[-10.0, -5.0, 17.0, 22.0]], np.float32), (20, 20))
    expected = np.zeros((20, 20), np.float32)
    expected[:, :17] = 1
    expected[:, 17] = 1 / 28
    assert out.shape == (1, 20, 20) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, atol=1e-6)


def test_paste_boxes_fully_outside_are_zero():
    boxes = np.array([[30, 30, 40, 40], [-40, -40, -30, -30], [-40, 2, -30, 10],
                      [55, 2, 70, 10], [2, 25, 10, 33]], np.float32)
    out = paste_masks_in_image(np.ones((5, 28, 28), np.float32), boxes, (20, 20))
    assert out.shape == (5, 20, 20)
    np.testing.assert_array_equal(out, 0)


def test_paste_empty():
    out = paste_masks_in_image(np.zeros((0, 1, 28, 28), np.float32), np.zeros((0, 4)), (7, 9))
    assert out.shape == (0, 7, 9) and out.dtype == np.float32


# ------------------------------------------------------------ against torchvision
def _torchvision():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.detection import roi_heads
    return torch, roi_heads


def _boxes(rng, n, w, h, lo, hi, inside):
    c = rng.uniform([0, 0], [w, h], (n, 2))               # centres in the image
    s = rng.uniform(lo, hi, (n, 2))
    b = np.concatenate([c - s / 2, c + s / 2], 1)
    if inside:
        b = np.clip(b, 0, [w - 1, h - 1, w - 1, h - 1])
    return b.astype(np.float32)


def test_paste_matches_torchvision():
    torch, rh = _torchvision()
    rng = np.random.default_rng(3)
    for padding in (1, 0, 2):
        m = rng.random((12, 1, 28, 28)).astype(np.float32)
        b = _boxes(rng, 12, 60, 50, 0.5, 70, inside=False)   # many cross the border
        ours = paste_masks_in_image(m, b, (50, 60), padding=padding)
        ref = rh.paste_masks_in_image(torch.from_numpy(m), torch.from_numpy(b), (50, 60),
                                      padding=padding)[:, 0].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def _tv_roi_align_exact():
    """torchvision's compiled roi_align (its pure-Python fallback, used when the
    extension is missing, skips the C++ kernel's "sample outside the map reads 0" rule)."""
    from torchvision.extension import _has_ops
    return _has_ops()


def test_project_masks_matches_torchvision():
    torch, rh = _torchvision()
    rng = np.random.default_rng(4)
    gm = (rng.random((4, 40, 50)) > 0.5).astype(np.uint8)
    for inside in (True, False):
        if not inside and not _tv_roi_align_exact():
            continue
        b = _boxes(rng, 10, 50, 40, 0.5, 40, inside)
        idx = rng.integers(0, 4, 10)
        ours = project_masks_on_boxes(gm, b, idx, 28)
        ref = rh.project_masks_on_boxes(torch.from_numpy(gm), torch.from_numpy(b),
                                        torch.from_numpy(idx), 28).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_loss_matches_torchvision():
    torch, rh = _torchvision()
    rng = np.random.default_rng(5)
    gm = [(rng.random((3, 40, 50)) > 0.5).astype(np.uint8),
          (rng.random((2, 30, 30)) > 0.5).astype(np.uint8)]
    gl = [rng.integers(1, 5, 3), rng.integers(1, 5, 2)]
    inside = not _tv_roi_align_exact()
    props = [_boxes(rng, 7, 50, 40, 0.5, 40, inside), _boxes(rng, 4, 30, 30, 0.5, 30, inside)]
    idx = [rng.integers(0, 3, 7), rng.integers(0, 2, 4)]
    logits = rng.standard_normal((11, 5, 28, 28)).astype(np.float32)
    ours = maskrcnn_loss(sv.tensor(logits), props, gm, gl, idx).item()
    ref = rh.maskrcnn_loss(torch.from_numpy(logits), [torch.from_numpy(p) for p in props],
                           [torch.from_numpy(g) for g in gm], [torch.from_numpy(g) for g in gl],
                           [torch.from_numpy(i) for i in idx]).item()
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
