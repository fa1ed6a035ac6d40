"""Interpolation kernels (bilinear, nearest): hand-worked cases, every version against the
reference, gradcheck of F.interpolate, torch's size/scale rules, errors, torch peers."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import nn
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.kernels import interpolate as I
from tests.helpers import assert_close, non_contiguous

FAST = ["cpu"]
DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------- hand-worked
def test_bilinear_half_pixel_hand_worked():
    # one row [0, 10, 20, 30] to 8 columns, align_corners=False, scale 4/8 = 0.5:
    # src = (dst + 0.5) * 0.5 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, ..., 3.25 (taps
    # 3 and 3: the last pixel repeats) -> values 0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30
    x = np.array([[[[0.0, 10.0, 20.0, 30.0]]]])
    for impl in ["reference"] + FAST:
        y = I.bilinear_forward(x, (1, 8), False, impl=impl)
        np.testing.assert_allclose(y[0, 0, 0], [0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30])
        # align_corners=True: src = dst * 3/7, so the ends map onto the end pixels exactly
        y = I.bilinear_forward(x, (1, 8), True, impl=impl)
        np.testing.assert_allclose(y[0, 0, 0], np.arange(8) * 30 / 7)
        # backward of a ones gradient: every output gives its weights (sum 1) to its taps;
        # pixel 0 receives 1 (dst 0) + 0.75 (dst 1) + 0.25 (dst 2) = 2
        gx = I.bilinear_backward(np.ones((1, 1, 1, 8)), x.shape, False, impl=impl)
        np.testing.assert_allclose(gx[0, 0, 0], [2, 2, 2, 2])


def test_bilinear_scale_factor_step():
    # in 3, scale_factor 1.7: out floor(5.1) = 5 and the step is 1/1.7, not 3/5 = 0.6
    x = np.array([[[[0.0, 1.0, 2.0]]]])
    size, scales = I.resolve_output_size((1, 3), scale_factor=1.7)
    assert size == (1, 5) and scales == (1.7, 1.7)
    src = np.maximum((np.arange(5) + 0.5) / 1.7 - 0.5, 0)
    for impl in ["reference"] + FAST:
        np.testing.assert_allclose(I.bilinear_forward(x, size, False, scales, impl=impl)[0, 0, 0],
                                   np.minimum(src, 2))
    # recompute_scale_factor=True: the step is in/out = 0.6
    size, scales = I.resolve_output_size((1, 3), scale_factor=1.7, recompute_scale_factor=True)
    assert scales == (None, None)
    np.testing.assert_allclose(I.bilinear_forward(x, size, False, scales)[0, 0, 0],
                               np.minimum(np.maximum((np.arange(5) + 0.5) * 0.6 - 0.5, 0), 2))


def test_nearest_hand_worked():
    # in 3 -> out 5: scale 0.6f, src = floor(dst * 0.6) = 0, 0, 1, 1, 2
    # in 2 -> out 4 (exact doubling): src = dst >> 1 = 0, 0, 1, 1
    x = np.array([[[[1.0, 2.0, 3.0]]]])
    for impl in ["reference"] + FAST:
        assert I.nearest_forward(x, (1, 5), impl=impl)[0, 0, 0].tolist() == [1, 1, 2, 2, 3]
        assert I.nearest_forward(x[..., :2], (2, 4), impl=impl)[0, 0, 1].tolist() == [1, 1, 2, 2]
        gx = I.nearest_backward(np.ones((1, 1, 1, 5)), x.shape, impl=impl)
        assert gx[0, 0, 0].tolist() == [2, 2, 1]


# ------------------------------------------------------------ versions vs reference
@st.composite
def resize_params(draw):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    by_scale = draw(st.booleans())
    if by_scale:
        sf = (draw(st.sampled_from([0.5, 0.75, 1.0, 1.3, 2.0, 2.5, 3.0])),
              draw(st.sampled_from([0.6, 1.0, 1.7, 2.0, 4.0])))
        sf = (sf[0] if h * sf[0] >= 1 else 1.0, sf[1] if w * sf[1] >= 1 else 1.0)  # >= 1 px
        size, scales = I.resolve_output_size((h, w), scale_factor=sf,
                                             recompute_scale_factor=draw(st.booleans()))
    else:
        size, scales = (draw(st.integers(1, 12)), draw(st.integers(1, 12))), (None, None)
    return dict(shape=(draw(st.integers(0, 2)), draw(st.integers(1, 3)), h, w), size=size,
                scales=scales, dtype=draw(st.sampled_from(DTYPES)),
                noncontig=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@given(resize_params(), st.booleans())
def test_bilinear_versions_match_reference(p, align_corners):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal(p["shape"]).astype(p["dtype"])
    x = non_contiguous(x) if p["noncontig"] else x
    y_ref = I.bilinear_forward(x, p["size"], align_corners, p["scales"], impl="reference")
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = I.bilinear_backward(gy, x.shape, align_corners, p["scales"], impl="reference")
    for impl in FAST:
        assert_close(I.bilinear_forward(x, p["size"], align_corners, p["scales"], impl=impl),
                     y_ref, err_msg=impl)
        assert_close(I.bilinear_backward(gy, x.shape, align_corners, p["scales"], impl=impl),
                     gx_ref, err_msg=impl)


@given(resize_params())
def test_nearest_versions_match_reference(p):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal(p["shape"]).astype(p["dtype"])
    x = non_contiguous(x) if p["noncontig"] else x
    y_ref = I.nearest_forward(x, p["size"], p["scales"], impl="reference")
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = I.nearest_backward(gy, x.shape, p["scales"], impl="reference")
    for impl in FAST:
        assert_close(I.nearest_forward(x, p["size"], p["scales"], impl=impl), y_ref,
                     err_msg=impl)
        assert_close(I.nearest_backward(gy, x.shape, p["scales"], impl=impl), gx_ref,
                     err_msg=impl)


def test_backward_is_deterministic(rng):
    gy = rng.standard_normal((2, 8, 64, 62)).astype(np.float32)
    a = I.bilinear_backward(gy, (2, 8, 31, 29), False)
    b = I.nearest_backward(gy, (2, 8, 31, 29))
    for _ in range(3):
        assert np.array_equal(a, I.bilinear_backward(gy, (2, 8, 31, 29), False))
        assert np.array_equal(b, I.nearest_backward(gy, (2, 8, 31, 29)))


def test_gradcheck():
    result = run_case(registered_gradchecks()["interpolate"])
    assert result.ok, result.worst


# ---------------------------------------------------------- F / nn: shapes and edges
def test_functional_and_upsample(rng):
    x = sv.tensor(rng.standard_normal((2, 3, 5, 7)).astype(np.float32), requires_grad=True)
    assert F.interpolate(x, scale_factor=2).shape == (2, 3, 10, 14)
    assert F.interpolate(x, scale_factor=(1.5, 0.5), mode="bilinear").shape == (2, 3, 7, 3)
    y = F.interpolate(x, size=(9, 4), mode="bilinear", align_corners=True)
    assert y.shape == (2, 3, 9, 4) and y.dtype == np.float32
    y.sum().backward()
    # every output distributes weights summing to 1: the total gradient is the output count
    assert np.isclose(x.grad.sum(), 2 * 3 * 9 * 4)
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    assert up(x).shape == (2, 3, 10, 14) and "bilinear" in repr(up)
    # identity resize is exact
    assert np.array_equal(F.interpolate(x, size=(5, 7), mode="bilinear").numpy(), x.numpy())
    assert np.array_equal(F.interpolate(x, size=(5, 7)).numpy(), x.numpy())


def test_empty_batch():
    x = np.zeros((0, 2, 4, 4), np.float32)
    for impl in ["reference"] + FAST:
        assert I.bilinear_forward(x, (8, 8), False, impl=impl).shape == (0, 2, 8, 8)
        assert I.nearest_backward(np.zeros((0, 2, 8, 8), np.float32), x.shape,
                                  impl=impl).shape == x.shape


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(size=4, scale_factor=2), ValueError, "only one of size or scale_factor"),
    (dict(), ValueError, "either size or scale_factor"),
    (dict(size=4, align_corners=True), ValueError, "align_corners option can only be set"),
    (dict(size=4, recompute_scale_factor=True), ValueError, "not meaningful"),
    (dict(size=(4, 4, 4)), ValueError, "size must have 2 elements"),
    (dict(size=0), ValueError, "size must be positive"),
    (dict(size=2.5), TypeError, "size must be an int"),
    (dict(scale_factor=-1.0), ValueError, "scale_factor must be positive"),
    (dict(scale_factor=0.1), ValueError, "empty output"),
    (dict(size=4, mode="bicubic"), ValueError, "mode 'bicubic' is not supported"),
])
def test_bad_arguments(kwargs, exc, match):
    x = sv.tensor(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(exc, match=match):
        F.interpolate(x, **kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\)"):
        F.interpolate(sv.tensor(np.zeros((1, 5, 5), np.float32)), size=4)
    with pytest.raises(TypeError, match="float32 or float64"):
        I.bilinear_forward(np.zeros((1, 1, 4, 4), np.int64), (8, 8))
    with pytest.raises(ValueError, match="does not match x_shape"):
        I.bilinear_backward(np.zeros((1, 2, 8, 8)), (1, 1, 4, 4))


# ---------------------------------------------------------------------- torch peers
@pytest.mark.peers
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 7, 3), (1, 1, 1, 1)])
@pytest.mark.parametrize("kwargs", [dict(size=(8, 10)), dict(size=(3, 2)),
                                    dict(scale_factor=1.7), dict(scale_factor=(2, 3.5)),
                                    dict(scale_factor=2.3, recompute_scale_factor=True)])
def test_against_torch(shape, kwargs, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    for mode, acs in (("nearest", [None]), ("bilinear", [None, False, True])):
        for ac in acs:
            xt = torch.from_numpy(x).requires_grad_()
            ty = torch.nn.functional.interpolate(xt, mode=mode, align_corners=ac, **kwargs)
            gy = rng.standard_normal(ty.shape)
            ty.backward(torch.from_numpy(gy))
            xs = sv.tensor(x, requires_grad=True)
            y = F.interpolate(xs, mode=mode, align_corners=ac, **kwargs)
            (y * sv.tensor(gy)).sum().backward()
            assert_close(y.numpy(), ty.detach().numpy(), err_msg=f"{mode} {ac}")
            assert_close(xs.grad, xt.grad.numpy(), err_msg=f"{mode} {ac}")


@pytest.mark.peers
def test_nearest_float32_index_rule_matches_torch():
    # sizes where a float64 product would floor differently from torch's float32 one
    torch = pytest.importorskip("torch")
    for n_in in range(1, 13):
        for n_out in range(1, 30):
            x = np.arange(n_in, dtype=np.float32).reshape(1, 1, 1, n_in)
            want = torch.nn.functional.interpolate(torch.from_numpy(x), size=(1, n_out))
            assert np.array_equal(I.nearest_forward(x, (1, n_out)), want.numpy()), (n_in, n_out)
