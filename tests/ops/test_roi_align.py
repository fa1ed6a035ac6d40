"""RoI Align: hand-worked values, Numba vs reference (forward and backward), determinism,
gradcheck, edge cases, the ops wrapper, and torchvision cross-checks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision import ops
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.kernels import roi_align as K
from tests.helpers import assert_close, non_contiguous

X5 = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)   # x[h, w] = 5 h + w


def random_rois(rng, r, batch, size):
    """RoIs inside, across the border of and outside a size x size image, some zero-area."""
    xy = rng.uniform(-3, size + 1, (r, 2))
    wh = rng.uniform(0, size * 0.8, (r, 2))
    wh[rng.random((r, 2)) < 0.15] = 0.0
    return np.concatenate([rng.integers(0, batch, (r, 1)), xy, xy + wh], axis=1)


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_hand_worked(impl):
    # bilinear interpolation of a linear map is exact: value(y, x) = 5 y + x
    box = np.array([[0, 1, 1, 3, 3]], np.float64)
    # legacy, 1x1 bin of size 2, 2x2 samples at 1.5 and 2.5: mean 5 * 2 + 2 = 12
    y = K.roi_align_forward(X5, box, 1, 1, 1.0, 2, False, impl=impl)
    assert_close(y, np.full((1, 1, 1, 1), 12.0))
    # aligned: the box shifts by -0.5, samples at 1.0 and 2.0: 5 * 1.5 + 1.5 = 9
    y = K.roi_align_forward(X5, box, 1, 1, 1.0, 2, True, impl=impl)
    assert_close(y, np.full((1, 1, 1, 1), 9.0))
    # 2x2 bins of size 1, one sample at each bin centre (1.5 + ph, 1.5 + pw)
    y = K.roi_align_forward(X5, box, 2, 2, 1.0, 1, False, impl=impl)
    assert_close(y[0, 0], 5 * (1.5 + np.arange(2)[:, None]) + 1.5 + np.arange(2)[None, :])
    # past the last pixel: samples at 3.5 and 4.5; 4.5 reads the last pixel (4): 22.5
    y = K.roi_align_forward(X5, np.array([[0, 3, 3, 5, 5.0]]), 1, 1, 1.0, 2, False,
                            impl=impl)
    assert_close(y, np.full((1, 1, 1, 1), 5 * 3.75 + 3.75))
    # spatial_scale 0.5 on a box twice as large is the first case again
    y = K.roi_align_forward(X5, np.array([[0, 2, 2, 6, 6.0]]), 1, 1, 0.5, 2, False, impl=impl)
    assert_close(y, np.full((1, 1, 1, 1), 12.0))
    # more than one pixel outside the map (x < -1): all samples are 0
    y = K.roi_align_forward(X5 + 1, np.array([[0, -9, -9, -3, -3.0]]), 1, 1, 1.0, 2, False,
                            impl=impl)
    assert_close(y, np.zeros((1, 1, 1, 1)))
    # backward of the first case: each of the 4 samples spreads 1/4 over 4 pixels
    gx = K.roi_align_backward(np.ones((1, 1, 1, 1)), box, X5.shape, 1.0, 2, False, impl=impl)
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert_close(gx[0, 0], expected / 16)


@given(seed=st.integers(0, 2**31), batch=st.integers(1, 2), channels=st.integers(1, 3),
       height=st.integers(1, 7), width=st.integers(1, 7), nroi=st.integers(0, 4),
       out=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       sampling_ratio=st.sampled_from([-1, 0, 1, 2, 3]), aligned=st.booleans(),
       scale=st.sampled_from([1.0, 0.5, 0.75]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_cpu_matches_reference(seed, batch, channels, height, width, nroi, out,
                               sampling_ratio, aligned, scale, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    rois = random_rois(rng, nroi, batch, max(height, width) / scale)
    args = (scale, sampling_ratio, aligned)
    ref = K.roi_align_forward(x, rois, *out, *args, impl="reference")
    assert ref.shape == (nroi, channels, *out) and ref.dtype == dtype
    assert_close(K.roi_align_forward(x, rois, *out, *args, impl="cpu"), ref)
    assert_close(K.roi_align_forward(non_contiguous(x), rois, *out, *args), ref)
    gy = rng.standard_normal(ref.shape).astype(dtype)
    gref = K.roi_align_backward(gy, rois, x.shape, *args, impl="reference")
    assert gref.shape == x.shape and gref.dtype == dtype
    assert_close(K.roi_align_backward(gy, rois, x.shape, *args, impl="cpu"), gref, scale=5)


def test_backward_is_deterministic(rng):
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    rois = random_rois(rng, 40, 2, 12)
    gy = rng.standard_normal((40, 8, 3, 3)).astype(np.float32)
    first = K.roi_align_backward(gy, rois, x.shape, 1.0, -1, True)
    for _ in range(3):
        assert np.array_equal(K.roi_align_backward(gy, rois, x.shape, 1.0, -1, True), first)


def test_gradcheck():
    result = run_case(registered_gradchecks()["roi_align"])
    assert result.ok, result.worst


def test_empty_and_bad_input(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    y = K.roi_align_forward(x, np.zeros((0, 5)), 2, 2)
    assert y.shape == (0, 3, 2, 2)
    gx = K.roi_align_backward(np.zeros((0, 3, 2, 2)), np.zeros((0, 5)), x.shape)
    assert gx.shape == x.shape and not gx.any()
    with pytest.raises(ValueError, match=r"boxes must be a \(K, 5\) array"):
        ops.roi_align(x, np.zeros((2, 4)), 2)
    with pytest.raises(ValueError, match=r"batch indices in \[0, 2\)"):
        ops.roi_align(x, np.array([[2, 0, 0, 3, 3.0]]), 2)
    with pytest.raises(ValueError, match="batch indices"):
        ops.roi_align(x, np.array([[0.5, 0, 0, 3, 3.0]]), 2)
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        ops.roi_align(x, np.array([[0, 0, 0, 3, 3.0]]), (-1, 2))
    with pytest.raises(ValueError, match=r"boxes\[1\] must have shape"):
        ops.roi_align(x, [np.zeros((1, 4)), np.zeros((1, 5))], 2)
    with pytest.raises(ValueError, match="4-D"):
        ops.roi_align(x[0], np.array([[0, 0, 0, 3, 3.0]]), 2)
    with pytest.raises(ValueError, match="NaN"):
        ops.roi_align(x, np.array([[0, 0, np.nan, 3, 3.0]]), 2)
    with pytest.raises(TypeError, match="sampling_ratio must be an int"):
        ops.roi_align(x, np.array([[0, 0, 0, 3, 3.0]]), 2, sampling_ratio=1.5)
    with pytest.raises(ValueError, match="spatial_scale"):
        ops.roi_align(x, np.array([[0, 0, 0, 3, 3.0]]), 2, spatial_scale=0.0)


def test_ops_wrapper(rng):
    x = rng.standard_normal((2, 3, 8, 8))
    boxes = [np.array([[0, 0, 4, 4.0], [1, 2, 7, 5]]), np.array([[3, 3, 6, 7.0]])]
    rois = np.array([[0, 0, 0, 4, 4.0], [0, 1, 2, 7, 5], [1, 3, 3, 6, 7]])
    expected = K.roi_align_forward(x, rois, 2, 3, 0.5, 2, True)
    assert_close(ops.roi_align(x, boxes, (2, 3), 0.5, 2, True), expected)
    xt = sv.tensor(x, requires_grad=True)
    module = ops.RoIAlign((2, 3), 0.5, 2, aligned=True)
    y = module(xt, sv.tensor(rois))
    assert isinstance(y, sv.Tensor)
    assert_close(y.numpy(), expected)
    gy = rng.standard_normal(expected.shape)
    (y * sv.tensor(gy)).sum().backward()
    assert_close(xt.grad, K.roi_align_backward(gy, rois, x.shape, 0.5, 2, True))


@pytest.mark.peers
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_matches_torchvision(rng, aligned, sampling_ratio):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    x = rng.standard_normal((2, 4, 12, 10))
    rois = random_rois(rng, 12, 2, 24)
    xt = torch.from_numpy(x).requires_grad_()
    yt = tv.ops.roi_align(xt, torch.from_numpy(rois), (3, 2), 0.5, sampling_ratio, aligned)
    y = ops.roi_align(x, rois, (3, 2), 0.5, sampling_ratio, aligned)
    assert_close(y, yt.detach().numpy())
    gy = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(gy))
    assert_close(K.roi_align_backward(gy, rois, x.shape, 0.5, sampling_ratio, aligned),
                 xt.grad.numpy())
