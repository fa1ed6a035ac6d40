"""``impl=`` on every public op of the roi_align, roi_pool, nms, boxes and indexing families
(the reference version gives the default's values and gradients; a wrong name is a
ValueError listing the allowed ones), the one dtype rule of the RoI ops, and the bounded
work checks (``validation.LimitError`` before anything big runs)."""
import time

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import ops
from scratchvision.autograd import indexing as T
from scratchvision.kernels import boxes as KB
from scratchvision.kernels import indexing as KI
from scratchvision.kernels import nms as KN
from scratchvision.kernels import roi_align as KA
from scratchvision.kernels import roi_pool as KP
from scratchvision.validation import LimitError, limits
from tests.helpers import assert_close


def _boxes(rng, n, size=20.0):
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, size / 2, (n, 2))], 1)


def _rois(rng, n, batch=2, size=8.0):
    return np.concatenate([rng.integers(0, batch, (n, 1)).astype(np.float64),
                           _boxes(rng, n, size)], 1)


def _value_and_grad(fn, x, gy_seed=0):
    """fn(Tensor) -> (output array, gradient of sum(output * random) wrt x)."""
    xt = sv.tensor(x, requires_grad=True)
    y = fn(xt)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape)
    (y * sv.tensor(gy)).sum().backward()
    return y.numpy(), xt.grad.numpy()


# ------------------------------------------------------------------- RoI Align / RoI Pool
ROI_CASES = {
    "roi_align": lambda x, r, impl: ops.roi_align(x, r, (2, 3), 0.9, -1, True, impl=impl),
    "RoIAlign": lambda x, r, impl: ops.RoIAlign((2, 3), 0.9, 2, impl=impl)(x, r),
    "roi_pool": lambda x, r, impl: ops.roi_pool(x, r, (2, 3), 0.9, impl=impl),
    "RoIPool": lambda x, r, impl: ops.RoIPool((2, 3), 0.9, impl=impl)(x, r),
}


@pytest.mark.parametrize("name", sorted(ROI_CASES))
def test_roi_ops_reference_equals_default_values_and_gradients(rng, name):
    op = ROI_CASES[name]
    x = (rng.permutation(2 * 3 * 8 * 9) * 0.01).reshape(2, 3, 8, 9)   # distinct: one argmax
    rois = _rois(rng, 6)
    y_ref, g_ref = _value_and_grad(lambda t: op(t, rois, "reference"), x)
    y_def, g_def = _value_and_grad(lambda t: op(t, rois, None), x)
    assert_close(y_def, y_ref)
    assert_close(g_def, g_ref)
    assert np.abs(g_ref).sum() > 0                   # the gradient was computed at all


@pytest.mark.parametrize("name", sorted(ROI_CASES))
def test_roi_ops_wrong_impl_names_the_choices(rng, name):
    x = rng.standard_normal((2, 3, 8, 9))
    with pytest.raises(ValueError, match=r"impl must be one of \('reference', 'cpu', 'cuda'"):
        ROI_CASES[name](x, _rois(rng, 2), "fast")


def test_multiscale_roi_align_passes_impl(rng):
    feats = {"p2": rng.standard_normal((1, 2, 16, 16)), "p3": rng.standard_normal((1, 2, 8, 8))}
    # small boxes pool from p2, boxes over 112 pixels wide from p3 (the level mapper)
    boxes = [np.concatenate([_boxes(rng, 4, 20.0), np.array([[0, 0, 150, 160.0]])])]

    def run(impl):
        tensors = {k: sv.tensor(v, requires_grad=True) for k, v in feats.items()}
        m = ops.MultiScaleRoIAlign(["p2", "p3"], 2, 2, impl=impl)
        y = m(tensors, boxes, [(64, 64)])
        y.sum().backward()
        return y.numpy(), [t.grad.numpy() for t in tensors.values()]

    y_ref, g_ref = run("reference")
    y_def, g_def = run(None)
    assert_close(y_def, y_ref)
    for a, b in zip(g_def, g_ref):
        assert_close(a, b)
    with pytest.raises(ValueError, match="impl must be one of"):
        run("nope")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_, np.float16])
@pytest.mark.parametrize("op", [ops.roi_align, ops.roi_pool])
def test_roi_ops_refuse_non_float_feature_maps(op, dtype):
    # before: silently cast to float32. Now the one rule of the float kernels.
    x = np.ones((1, 2, 6, 6), dtype)
    with pytest.raises(TypeError, match=rf"input must be float32 or float64, got "
                                        rf"{np.dtype(dtype).name}"):
        op(x, np.array([[0, 0, 0, 3, 3.0]]), 2)


def test_roi_kernels_refuse_non_float_gradients():
    rois = np.array([[0, 0, 0, 3, 3.0]])
    with pytest.raises(TypeError, match="grad_output must be float32 or float64, got int64"):
        KA.roi_align_backward(np.ones((1, 2, 2, 2), np.int64), rois, (1, 2, 6, 6))
    with pytest.raises(TypeError, match="grad_output must be float32 or float64, got int64"):
        KP.roi_pool_backward(np.ones((1, 2, 2, 2), np.int64), np.zeros((1, 2, 2, 2), np.int64),
                             rois, (1, 2, 6, 6))


def test_roi_ops_take_integer_boxes_but_not_bool(rng):
    x = rng.standard_normal((1, 2, 6, 6))
    int_rois = np.array([[0, 0, 1, 4, 5]])
    for op in (ops.roi_align, ops.roi_pool):
        assert_close(op(x, int_rois, 2), op(x, int_rois.astype(np.float64), 2))
        with pytest.raises(TypeError, match="rois must have a real .* dtype, got bool"):
            op(x, np.ones((1, 5), bool), 2)
        with pytest.raises(TypeError, match=r"boxes\[0\] must have a real .* dtype, got bool"):
            op(x, [np.ones((1, 4), bool)], 2)
        assert_close(op(x, [int_rois[:, 1:]], 2), op(x, int_rois, 2))


def test_roi_align_huge_box_is_refused_before_any_work():
    # before: the adaptive grid (ceil(1e9 / 7) samples per axis) allocated ~24 GB of
    # sample tables until the process was killed
    x = np.zeros((1, 1, 4, 4), np.float32)
    start = time.perf_counter()
    for impl in ("reference", "cpu", None):
        with pytest.raises(LimitError, match="roi_align: bilinear samples"):
            ops.roi_align(x, np.array([[0, 0, 0, 1e9, 1e9]]), 7, sampling_ratio=-1, impl=impl)
        with pytest.raises(LimitError, match="roi_align"):
            KA.roi_align_backward(np.zeros((1, 1, 7, 7), np.float32),
                                  np.array([[0, 0, 0, 1e9, 1e9]]), x.shape, impl=impl)
    assert time.perf_counter() - start < 60      # (it never got near an allocation)


def test_roi_align_work_limit_counts_samples(rng):
    x = rng.standard_normal((1, 3, 8, 8))
    rois = np.array([[0, 0, 0, 6, 6.0]])       # 2x2 bins of 3x3 pixels: 3x3 samples each
    samples = 3 * 2 * 2 * 3 * 3                 # C x bins x samples per bin = 108
    with limits(max_work=samples):
        ops.roi_align(x, rois, 2)                # exactly at the limit: runs
    with limits(max_work=samples - 1), pytest.raises(LimitError, match="108"):
        ops.roi_align(x, rois, 2)
    with limits(max_work=3 * 4 * 4 - 1), pytest.raises(LimitError):
        ops.roi_align(x, rois, 2, sampling_ratio=2)   # fixed grids are counted too


def test_roi_pool_work_is_bounded_by_the_map(rng):
    x = rng.standard_normal((1, 2, 5, 6))
    huge = np.array([[0, -1e9, -1e9, 1e9, 1e9]])
    y = ops.roi_pool(x, huge, 2)                 # clipped bins: runs at once
    assert y.shape == (1, 2, 2, 2)
    bound = 1 * 2 * (5 + 2) * (6 + 2)            # R x C x (H + out_h) x (W + out_w)
    with limits(max_work=bound - 1), pytest.raises(LimitError, match="roi_pool"):
        ops.roi_pool(x, huge, 2)


def test_roi_pool_backward_refuses_out_of_range_argmax():
    # before: an argmax past H * W wrote outside the gradient
    rois = np.array([[0, 0, 0, 3, 3.0]])
    gy = np.ones((1, 2, 2, 2))
    bad = np.full((1, 2, 2, 2), 36, np.int64)    # H * W = 36
    with pytest.raises(ValueError, match=r"argmax must hold offsets .* \[0, 36\).* got 36"):
        KP.roi_pool_backward(gy, bad, rois, (1, 2, 6, 6))
    with pytest.raises(ValueError, match="got -2"):
        KP.roi_pool_backward(gy, np.full((1, 2, 2, 2), -2, np.int64), rois, (1, 2, 6, 6))


# ------------------------------------------------------------------------- NMS
def test_nms_ops_reference_equals_default(rng):
    boxes = _boxes(rng, 60)
    scores = rng.random(60)
    idxs = rng.integers(0, 3, 60)
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.4, impl="reference"),
                                  ops.nms(boxes, scores, 0.4))
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, 0.4, impl="reference"),
                                  ops.batched_nms(boxes, scores, idxs, 0.4))
    keep_r, s_r = ops.soft_nms(boxes, scores, impl="reference")
    keep_d, s_d = ops.soft_nms(boxes, scores)
    np.testing.assert_array_equal(keep_r, keep_d)
    assert_close(s_r, s_d)


@pytest.mark.parametrize("call", [
    lambda b, s, impl: ops.nms(b, s, 0.5, impl=impl),
    lambda b, s, impl: ops.batched_nms(b, s, np.zeros(len(s), np.int64), 0.5, impl=impl),
    lambda b, s, impl: ops.soft_nms(b, s, impl=impl),
])
def test_nms_ops_wrong_impl_names_the_choices(rng, call):
    boxes, scores = _boxes(rng, 4), rng.random(4)
    with pytest.raises(ValueError, match=r"impl must be one of \('reference', 'cpu', 'cuda'\)"):
        call(boxes, scores, "cuda_atomic")
    with pytest.raises(ValueError, match="impl must be one of"):     # empty input too
        call(np.zeros((0, 4)), np.zeros(0), "fast")


def test_nms_refuses_bool_boxes_and_string_thresholds(rng):
    with pytest.raises(TypeError, match="boxes must have a real .* dtype, got bool"):
        ops.nms(np.ones((2, 4), bool), np.ones(2), 0.5)
    with pytest.raises(TypeError, match="iou_threshold must be a real number"):
        ops.nms(_boxes(rng, 2), np.ones(2), "0.5")
    with pytest.raises(ValueError, match="iou_threshold must not be NaN"):
        ops.nms(_boxes(rng, 2), np.ones(2), float("nan"))


def test_nms_gpu_mask_size_is_checked_first(rng):
    boxes, scores = _boxes(rng, 200), rng.random(200)
    # 200 boxes: a (256, 4) word mask = 1024 elements; refused before the GPU code runs
    with limits(max_elements=1023), pytest.raises(LimitError, match="suppression mask"):
        KN.nms(boxes, scores, 0.5, impl="cuda")
    with limits(max_elements=1023):              # the CPU versions allocate no mask
        KN.nms(boxes, scores, 0.5)


# ------------------------------------------------------------------------- boxes
@pytest.mark.parametrize("op", [ops.box_iou, ops.generalized_box_iou])
def test_pairwise_box_ops_reference_equals_default_and_are_bounded(rng, op):
    a, b = _boxes(rng, 7), _boxes(rng, 5)
    assert_close(op(a, b, impl="reference"), op(a, b))
    with pytest.raises(ValueError, match=r"impl must be one of \('reference', 'cpu', 'cuda'\)"):
        op(a, b, impl="numpy")
    with limits(max_elements=34), pytest.raises(LimitError, match=r"N x M.*35"):
        op(a, b)


def test_box_area_impl_and_bool_boxes(rng):
    a = _boxes(rng, 7)
    assert_close(ops.box_area(a, impl="reference"), ops.box_area(a))
    with pytest.raises(ValueError, match="impl must be one of"):
        ops.box_area(a, impl="fast")
    with pytest.raises(TypeError, match="boxes must have a real .* dtype, got bool"):
        KB.box_area(np.ones((2, 4), bool))


# ------------------------------------------------------------------------- indexing
def _index_cases(rng):
    x = rng.standard_normal((4, 5))
    col = rng.integers(0, 4, (3, 5))
    rows = np.array([3, 0, 3])
    mask = rng.random((4, 5)) > 0.5
    return {
        "gather": (lambda t, impl: T.gather(t, 0, col, impl=impl), x),
        "scatter_add": (lambda t, impl: T.scatter_add(
            t, 0, col, t[:3] * 2.0, impl=impl), x),
        "scatter": (lambda t, impl: T.scatter(t, 0, rows.reshape(3, 1).repeat(5, 1),
                                              t[:3] * 3.0, impl=impl), x),
        "index_select": (lambda t, impl: T.index_select(t, 0, rows, impl=impl), x),
        "index_add": (lambda t, impl: T.index_add(t, 0, rows, t[:3] * 2.0, impl=impl), x),
        "masked_fill": (lambda t, impl: T.masked_fill(t, mask, 0.5, impl=impl), x),
    }


@pytest.mark.parametrize("name", ["gather", "scatter_add", "scatter", "index_select",
                                  "index_add", "masked_fill"])
def test_indexing_reference_equals_default_values_and_gradients(rng, name):
    fn, x = _index_cases(rng)[name]
    y_ref, g_ref = _value_and_grad(lambda t: fn(t, "reference"), x)
    y_def, g_def = _value_and_grad(lambda t: fn(t, None), x)
    np.testing.assert_array_equal(y_def, y_ref)
    np.testing.assert_array_equal(g_def, g_ref)
    with pytest.raises(ValueError, match=r"impl must be one of \('reference', 'cpu', 'numpy'\)"):
        fn(sv.tensor(x), "vectorized")


def test_indexing_backward_uses_the_forward_impl(rng, monkeypatch):
    calls = []
    real = KI.scatter_add

    def spy(*args, impl=None):
        calls.append(impl)
        return real(*args, impl=impl)

    monkeypatch.setattr(KI, "scatter_add", spy)
    x = sv.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    T.gather(x, 0, rng.integers(0, 4, (3, 5)), impl="reference").sum().backward()
    assert calls == ["reference"]                # gather's backward is a scatter_add


def test_masked_fill_broadcast_size_is_checked(rng):
    # a (3000, 1) input and a (1, 3000) mask broadcast to 9e6 elements
    x, mask = np.zeros((3000, 1)), np.ones((1, 3000), bool)
    with limits(max_elements=10 ** 6), pytest.raises(LimitError, match="masked_fill"):
        KI.masked_fill(x, mask, 1.0)
