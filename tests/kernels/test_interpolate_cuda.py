"""Interpolation CUDA kernels: under Numba's CUDA simulator on tiny NumPy inputs (marked
``cudasim``) and on a real GPU with CuPy arrays against the CPU kernels (marked ``gpu``)."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchvision.kernels import interpolate as I
from tests.helpers import assert_close

sys.setswitchinterval(1e-4)
CUDA_IMPLS = ["cuda", "cuda_atomic"]


@st.composite
def tiny_resize(draw):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if draw(st.booleans()):
        sf = (draw(st.sampled_from([0.5, 1.0, 1.3, 2.0, 2.5])),
              draw(st.sampled_from([0.6, 1.0, 1.7, 3.0])))
        sf = (sf[0] if h * sf[0] >= 1 else 1.0, sf[1] if w * sf[1] >= 1 else 1.0)
        size, scales = I.resolve_output_size((h, w), scale_factor=sf)
    else:
        size, scales = (draw(st.integers(1, 9)), draw(st.integers(1, 9))), (None, None)
    return dict(shape=(1, draw(st.integers(1, 2)), h, w), size=size, scales=scales,
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**16)))


@pytest.mark.cudasim
@settings(max_examples=10)
@given(tiny_resize(), st.booleans())
def test_cuda_matches_reference(p, align_corners):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal(p["shape"]).astype(p["dtype"])
    y_ref = I.bilinear_forward(x, p["size"], align_corners, p["scales"], impl="reference")
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = I.bilinear_backward(gy, x.shape, align_corners, p["scales"], impl="reference")
    n_ref = I.nearest_forward(x, p["size"], p["scales"], impl="reference")
    gn_ref = I.nearest_backward(gy, x.shape, p["scales"], impl="reference")
    for impl in CUDA_IMPLS:
        assert_close(I.bilinear_forward(x, p["size"], align_corners, p["scales"], impl=impl),
                     y_ref, err_msg=impl)
        assert_close(I.bilinear_backward(gy, x.shape, align_corners, p["scales"], impl=impl),
                     gx_ref, err_msg=impl)
        assert_close(I.nearest_forward(x, p["size"], p["scales"], impl=impl), n_ref)
        assert_close(I.nearest_backward(gy, x.shape, p["scales"], impl=impl), gn_ref,
                     err_msg=impl)


@pytest.mark.cudasim
def test_cuda_hand_worked():
    x = np.array([[[[0.0, 10.0, 20.0, 30.0]]]])
    y = I.bilinear_forward(x, (1, 8), False, impl="cuda")
    np.testing.assert_allclose(y[0, 0, 0], [0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30])
    gx = I.bilinear_backward(np.ones((1, 1, 1, 8)), x.shape, False, impl="cuda")
    np.testing.assert_allclose(gx[0, 0, 0], [2, 2, 2, 2])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [dict(size=(64, 50)), dict(scale_factor=2.0),
                                    dict(scale_factor=(0.6, 1.7))])
def test_gpu_matches_cpu(dtype, kwargs):
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 29, 31)).astype(dtype)
    size, scales = I.resolve_output_size(x.shape[2:], **kwargs)
    xg = cp.asarray(x)
    gy = rng.standard_normal(x.shape[:2] + size).astype(dtype)
    gyg = cp.asarray(gy)
    for ac in (False, True):
        assert_close(I.bilinear_forward(xg, size, ac, scales), I.bilinear_forward(x, size, ac,
                                                                                  scales))
        ref = I.bilinear_backward(gy, x.shape, ac, scales)
        g1 = I.bilinear_backward(gyg, x.shape, ac, scales)
        assert_close(g1, ref)
        assert cp.array_equal(g1, I.bilinear_backward(gyg, x.shape, ac, scales))  # same bits
        assert_close(I.bilinear_backward(gyg, x.shape, ac, scales, impl="cuda_atomic"), ref)
    assert_close(I.nearest_forward(xg, size, scales), I.nearest_forward(x, size, scales))
    assert_close(I.nearest_backward(gyg, x.shape, scales), I.nearest_backward(gy, x.shape,
                                                                             scales))
    assert_close(I.nearest_backward(gyg, x.shape, scales, impl="cuda_atomic"),
                 I.nearest_backward(gy, x.shape, scales))
