"""RoI max pooling: hand-worked values, Numba vs reference (forward, argmax, backward),
determinism, gradcheck, edge cases, the ops wrapper, and torchvision cross-checks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision import ops
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.kernels import roi_pool as K
from scratchvision.kernels.roi_pool.scalar import round_half_away
from tests.helpers import assert_close, non_contiguous
from tests.ops.test_roi_align import random_rois

X5 = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)   # x[h, w] = 5 h + w


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_hand_worked(impl):
    # box (1, 1)-(3, 3): pixels 1..3 inclusive (3 x 3); 2x2 bins of 1.5 pixels:
    # bin 0 = pixels [1 + floor(0), 1 + ceil(1.5)) = [1, 3), bin 1 = [1 + 1, 1 + 3) = [2, 4)
    y, argmax = K.roi_pool_forward(X5, np.array([[0, 1, 1, 3, 3.0]]), 2, 2, 1.0, impl=impl)
    assert_close(y[0, 0], np.array([[12.0, 13.0], [17.0, 18.0]]))   # max at the bin's end
    np.testing.assert_array_equal(argmax[0, 0], [[12, 13], [17, 18]])
    # rounding: 0.5 * 5 = 2.5 rounds away from zero to 3 (NumPy's round would give 2)
    y, _ = K.roi_pool_forward(X5, np.array([[0, 5, 5, 5, 5.0]]), 1, 1, 0.5, impl=impl)
    assert_close(y, np.full((1, 1, 1, 1), 18.0))
    # a bin entirely outside the map is empty: 0 and argmax -1
    y, argmax = K.roi_pool_forward(X5 + 1, np.array([[0, 7, 7, 9, 9.0]]), 1, 1, 1.0,
                                   impl=impl)
    assert y[0, 0, 0, 0] == 0 and argmax[0, 0, 0, 0] == -1
    # backward routes to the argmax; overlapping bins accumulate
    _, argmax = K.roi_pool_forward(X5, np.array([[0, 1, 1, 3, 3.0]]), 2, 2, 1.0, impl=impl)
    gx = K.roi_pool_backward(np.ones((1, 1, 2, 2)), argmax, np.array([[0, 1, 1, 3, 3.0]]),
                             X5.shape, impl=impl)
    assert gx[0, 0, 2, 2] == 1 and gx.sum() == 4


def test_round_half_away():
    assert [round_half_away(v) for v in (2.5, -2.5, 0.49, -0.5, 3.0)] == [3, -3, 0, -1, 3]


@given(seed=st.integers(0, 2**31), batch=st.integers(1, 2), channels=st.integers(1, 3),
       height=st.integers(1, 8), width=st.integers(1, 8), nroi=st.integers(0, 5),
       out=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       scale=st.sampled_from([1.0, 0.5, 0.25, 2.0]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_cpu_matches_reference(seed, batch, channels, height, width, nroi, out, scale, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    rois = random_rois(rng, nroi, batch, max(height, width) / scale)
    y_ref, a_ref = K.roi_pool_forward(x, rois, *out, scale, impl="reference")
    y, a = K.roi_pool_forward(x, rois, *out, scale, impl="cpu")
    assert y.dtype == dtype and a.dtype == np.int64
    assert_close(y, y_ref)
    np.testing.assert_array_equal(a, a_ref)
    assert_close(K.roi_pool_forward(non_contiguous(x), rois, *out, scale)[0], y_ref)
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(K.roi_pool_backward(gy, a, rois, x.shape, impl="cpu"),
                 K.roi_pool_backward(gy, a_ref, rois, x.shape, impl="reference"))


def test_backward_is_deterministic(rng):
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    rois = random_rois(rng, 40, 2, 12)
    y, argmax = K.roi_pool_forward(x, rois, 3, 3, 1.0)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    first = K.roi_pool_backward(gy, argmax, rois, x.shape)
    for _ in range(3):
        assert np.array_equal(K.roi_pool_backward(gy, argmax, rois, x.shape), first)


def test_gradcheck():
    result = run_case(registered_gradchecks()["roi_pool"])
    assert result.ok, result.worst


def test_empty_and_bad_input(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    y, argmax = K.roi_pool_forward(x, np.zeros((0, 5)), 2, 2)
    assert y.shape == argmax.shape == (0, 3, 2, 2)
    with pytest.raises(ValueError, match=r"boxes must be a \(K, 5\) array"):
        ops.roi_pool(x, np.zeros((2, 6)), 2)
    with pytest.raises(ValueError, match=r"batch indices in \[0, 2\)"):
        ops.roi_pool(x, np.array([[-1, 0, 0, 3, 3.0]]), 2)
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        ops.roi_pool(x, np.array([[0, 0, 0, 3, 3.0]]), 0)
    with pytest.raises(ValueError, match="argmax"):
        K.roi_pool_backward(np.zeros((1, 3, 2, 2)), np.zeros((1, 3, 2, 1), np.int64),
                            np.array([[0, 0, 0, 3, 3.0]]), x.shape)


def test_ops_wrapper(rng):
    x = rng.standard_normal((2, 3, 8, 8))
    boxes = [np.array([[0, 0, 4, 4.0]]), np.array([[3, 3, 6, 7.0], [1, 0, 8, 8]])]
    rois = np.array([[0, 0, 0, 4, 4.0], [1, 3, 3, 6, 7], [1, 1, 0, 8, 8]])
    expected, argmax = K.roi_pool_forward(x, rois, 2, 2, 1.0)
    assert_close(ops.roi_pool(x, boxes, 2), expected)
    xt = sv.tensor(x, requires_grad=True)
    y = ops.RoIPool(2, 1.0)(xt, rois)
    assert isinstance(y, sv.Tensor)
    assert_close(y.numpy(), expected)
    y.sum().backward()
    assert_close(xt.grad, K.roi_pool_backward(np.ones_like(expected), argmax, rois, x.shape))


@pytest.mark.peers
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
def test_matches_torchvision(rng, scale):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    x = rng.standard_normal((2, 4, 12, 10))
    rois = random_rois(rng, 12, 2, 12 / scale)
    xt = torch.from_numpy(x).requires_grad_()
    yt = tv.ops.roi_pool(xt, torch.from_numpy(rois), (3, 2), scale)
    y, argmax = K.roi_pool_forward(x, rois, 3, 2, scale)
    assert_close(y, yt.detach().numpy())
    gy = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(gy))
    assert_close(K.roi_pool_backward(gy, argmax, rois, x.shape), xt.grad.numpy())
