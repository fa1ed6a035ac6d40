"""The CUDA detection kernels (boxes, nms, roi_pool, roi_align ``cuda.py``).

``cudasim`` tests call the numba.cuda kernels on NumPy arrays under Numba's CUDA simulator
(their own process: ``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim
tests/kernels/test_detection_cuda.py``), on tiny inputs (<= 64 boxes, <= 16x16 maps) since
every simulated thread is a Python thread. ``gpu`` tests run on CuPy arrays on a real GPU
at realistic sizes, against the CPU kernels.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from scratchvision.kernels import boxes as KB
from scratchvision.kernels import nms as KN
from scratchvision.kernels import roi_align as KA
from scratchvision.kernels import roi_pool as KP
from tests.helpers import assert_close

sys.setswitchinterval(1e-4)     # the simulator's threads hand over quickly


def _boxes(rng, n, size=40.0):
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, size / 2, (n, 2))], axis=1)


def _rois(rng, r, batch, size):
    xy = rng.uniform(-3, size + 1, (r, 2))
    wh = rng.uniform(0, size * 0.8, (r, 2))
    wh[0] = 0.0                                          # one zero-area RoI
    return np.concatenate([rng.integers(0, batch, (r, 1)), xy, xy + wh], axis=1)


@pytest.mark.cudasim
def test_boxes_simulated():
    from scratchvision.kernels.boxes import cuda  # noqa: PLC0415
    rng = np.random.default_rng(0)
    b1, b2 = _boxes(rng, 9), _boxes(rng, 5).astype(np.float32)
    assert_close(cuda.box_iou(b1, b1[:4]), KB.box_iou(b1, b1[:4], impl="reference"))
    assert_close(cuda.generalized_box_iou(b2, b2), KB.generalized_box_iou(b2, b2,
                                                                         impl="reference"))
    assert_close(cuda.box_area(b2), KB.box_area(b2, impl="reference"))


@pytest.mark.cudasim
@pytest.mark.parametrize("n", [1, 7, 64])
def test_nms_simulated(n):
    from scratchvision.kernels.nms import cuda  # noqa: PLC0415
    rng = np.random.default_rng(n)
    boxes = _boxes(rng, n)
    for scores in (rng.random(n), rng.integers(0, 3, n).astype(np.float64)):   # ties too
        for thr in (0.0, 0.3, 0.7):
            np.testing.assert_array_equal(cuda.nms(boxes, scores, thr),
                                          KN.nms(boxes, scores, thr, impl="reference"))
    # a 64-box mask word filled to the last bit
    boxes = np.concatenate([boxes, boxes + 0.5])[:64]
    scores = rng.random(len(boxes))
    np.testing.assert_array_equal(cuda.nms(boxes, scores, 0.5),
                                  KN.nms(boxes, scores, 0.5, impl="reference"))


@pytest.mark.cudasim
def test_nms_across_mask_words_simulated():
    """150 crowded boxes: three mask words, so kept boxes of one word suppress boxes of
    later words, and the last word is partly past n."""
    from scratchvision.kernels.nms import cuda  # noqa: PLC0415
    rng = np.random.default_rng(5)
    boxes = _boxes(rng, 150, size=25.0)
    for scores in (rng.random(150), rng.integers(0, 4, 150).astype(np.float64)):
        for thr in (0.2, 0.5):
            np.testing.assert_array_equal(cuda.nms(boxes, scores, thr),
                                          KN.nms(boxes, scores, thr, impl="reference"))


@pytest.mark.cudasim
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_simulated(aligned, sampling_ratio):
    from scratchvision.kernels.roi_align import cuda  # noqa: PLC0415
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 7, 6))
    rois = np.concatenate([_rois(rng, 4, 2, 8),
                           # at the top/bottom edges: clamped rows 0 and H - 1, samples
                           # above -1 (zero) and a zero-area RoI on the last row
                           np.array([[0, -2, -2, 1, 0.5], [1, 3, 6, 9, 12], [0, 1, -3, 4, -1.2],
                                     [1, 2, 9.3, 2, 9.3]])])
    args = (0.75, sampling_ratio, aligned)
    y = cuda.roi_align_forward(x, rois, 2, 3, *args)
    assert_close(y, KA.roi_align_forward(x, rois, 2, 3, *args, impl="reference"))
    gy = rng.standard_normal(y.shape)
    gref = KA.roi_align_backward(gy, rois, x.shape, *args, impl="reference")
    assert_close(cuda.roi_align_backward(gy, rois, x.shape, *args), gref)
    assert_close(cuda.roi_align_backward_atomic(gy, rois, x.shape, *args), gref)


@pytest.mark.cudasim
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roi_align_backward_random_rois_simulated(seed):
    """The per-pixel gather finds each RoI's samples near a pixel arithmetically: random
    scales, inverted and sub-pixel RoIs, adaptive and fixed grids, both alignments."""
    from scratchvision.kernels.roi_align import cuda  # noqa: PLC0415
    rng = np.random.default_rng(10 + seed)
    x = rng.standard_normal((2, 1, 9, 8))
    rois = _rois(rng, 12, 2, 10)
    rois[1, 3:] = rois[1, 1:3] - rng.uniform(0.1, 3, 2)      # inverted (x2 < x1, y2 < y1)
    rois[2, 3:] = rois[2, 1:3] + 0.05                        # far below one pixel
    for scale, ratio, aligned in [(0.8, -1, True), (1.3, 3, False), (0.5, 1, True)]:
        args = (scale, ratio, aligned)
        y = KA.roi_align_forward(x, rois, 3, 2, *args, impl="reference")
        gy = rng.standard_normal(y.shape)
        assert_close(cuda.roi_align_backward(gy, rois, x.shape, *args),
                     KA.roi_align_backward(gy, rois, x.shape, *args, impl="reference"))


@pytest.mark.cudasim
def test_roi_pool_simulated():
    from scratchvision.kernels.roi_pool import cuda  # noqa: PLC0415
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    rois = _rois(rng, 4, 2, 8)
    y, argmax = cuda.roi_pool_forward(x, rois, 2, 3, 0.5)
    y_ref, a_ref = KP.roi_pool_forward(x, rois, 2, 3, 0.5, impl="reference")
    assert_close(y, y_ref)
    np.testing.assert_array_equal(argmax, a_ref)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gref = KP.roi_pool_backward(gy, a_ref, rois, x.shape, impl="reference")
    assert_close(cuda.roi_pool_backward(gy, argmax, rois, x.shape), gref)
    assert_close(cuda.roi_pool_backward_atomic(gy, argmax, rois, x.shape), gref)


# ---------------------------------------------------------------- real GPU, CuPy arrays
@pytest.mark.gpu
def test_nms_gpu_equals_cpu():
    import cupy as cp  # noqa: PLC0415
    from scratchvision import ops  # noqa: PLC0415
    rng = np.random.default_rng(0)
    for n in (1, 500, 5000):
        boxes = _boxes(rng, n, size=1000.0).astype(np.float32)
        scores = rng.integers(0, 50, n).astype(np.float32)          # many ties
        idxs = rng.integers(0, 10, n)
        for thr in (0.3, 0.5):
            cpu = ops.nms(boxes, scores, thr)
            gpu = ops.nms(cp.asarray(boxes), cp.asarray(scores), thr)
            np.testing.assert_array_equal(cp.asnumpy(gpu), cpu)
            np.testing.assert_array_equal(
                cp.asnumpy(ops.batched_nms(cp.asarray(boxes), cp.asarray(scores),
                                           cp.asarray(idxs), thr)),
                ops.batched_nms(boxes, scores, idxs, thr))
    b = _boxes(rng, 300, 500.0)
    assert_close(ops.box_iou(cp.asarray(b), cp.asarray(b[:50])), ops.box_iou(b, b[:50]))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_gpu_equals_cpu(dtype):
    import cupy as cp  # noqa: PLC0415
    from scratchvision.kernels.roi_align import cuda as ca  # noqa: PLC0415
    from scratchvision.kernels.roi_pool import cuda as cpool  # noqa: PLC0415
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 64, 50, 50)).astype(dtype)
    rois = _rois(rng, 128, 2, 800)
    xg, rg = cp.asarray(x), cp.asarray(rois)
    for aligned in (False, True):
        args = (1 / 16, 2, aligned)
        y = KA.roi_align_forward(x, rois, 7, 7, *args)
        yg = KA.roi_align_forward(xg, rg, 7, 7, *args)
        assert_close(yg, y, scale=10)
        gy = rng.standard_normal(y.shape).astype(dtype)
        g = KA.roi_align_backward(gy, rois, x.shape, *args)
        gg = KA.roi_align_backward(cp.asarray(gy), rg, x.shape, *args)
        assert_close(gg, g, scale=10)
        assert cp.array_equal(gg, KA.roi_align_backward(cp.asarray(gy), rg, x.shape, *args))
        assert_close(ca.roi_align_backward_atomic(cp.asarray(gy), rg, x.shape, *args), g,
                     scale=10)
    y, a = KP.roi_pool_forward(x, rois, 7, 7, 1 / 16)
    yg, ag = KP.roi_pool_forward(xg, rg, 7, 7, 1 / 16)
    assert_close(yg, y)
    np.testing.assert_array_equal(cp.asnumpy(ag), a)
    gy = rng.standard_normal(y.shape).astype(dtype)
    g = KP.roi_pool_backward(gy, a, rois, x.shape)
    assert_close(KP.roi_pool_backward(cp.asarray(gy), ag, rg, x.shape), g, scale=10)
    assert_close(cpool.roi_pool_backward_atomic(cp.asarray(gy), ag, rg, x.shape), g, scale=10)
