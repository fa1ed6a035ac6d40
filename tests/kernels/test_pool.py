"""Pooling kernels (max/avg/adaptive-avg pooling, max-unpooling): hand-worked cases, every
version against the reference, gradchecks of the F ops, edge cases and errors, torch."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import nn
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.kernels import pool as P
from scratchvision.kernels.pool.shapes import first_empty_window
from tests.helpers import assert_close, non_contiguous

FAST = ["cpu"]          # versions compared with "reference" (cuda: test_pool_cuda.py)
DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------- hand-worked
def test_max_pool_hand_worked():
    # x = arange(16) as 4x4; 2x2 windows, stride 2: maxima are the bottom-right cells
    # 5 = x[1,1], 7 = x[1,3], 13 = x[3,1], 15 = x[3,3], and their flat indices equal them
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    for impl in ["reference"] + FAST:
        y, idx = P.max_pool2d_forward(x, 2, impl=impl)
        assert y.tolist() == [[[[5, 7], [13, 15]]]]
        assert idx.tolist() == [[[[5, 7], [13, 15]]]]
        # backward: gy lands on the argmax cells only
        gx = P.max_pool2d_backward(np.ones_like(y), idx, x.shape, 2, impl=impl)
        assert gx[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]


def test_max_pool_ceil_mode_padding_dilation_hand_worked():
    # 5x5 arange, k2 s2 ceil_mode: ceil(3/2)+1 = 3 windows, the last covers row/col 4 only
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    for impl in ["reference"] + FAST:
        y, idx = P.max_pool2d_forward(x, 2, 2, 0, 1, True, impl=impl)
        assert y[0, 0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
        # k3 s2 p1: window 0 covers rows -1..1 (padding never wins) -> max at (1, 1) = 6
        y, idx = P.max_pool2d_forward(x, 3, 2, 1, 1, False, impl=impl)
        assert y[0, 0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
        # k2 dilation 2 stride 1: taps rows oh, oh+2 -> 3x3 output, max at (oh+2, ow+2)
        y, idx = P.max_pool2d_forward(x, 2, 1, 0, 2, False, impl=impl)
        assert y[0, 0].tolist() == [[12, 13, 14], [17, 18, 19], [22, 23, 24]]


def test_max_pool_ties_and_nan():
    # ties: the first tap in row-major window order wins; NaN wins and propagates
    x = np.array([[[[1.0, 1.0], [1.0, 1.0]]]])
    z = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    for impl in ["reference"] + FAST:
        assert P.max_pool2d_forward(x, 2, impl=impl)[1].item() == 0
        y, idx = P.max_pool2d_forward(z, 2, impl=impl)
        assert np.isnan(y.item()) and idx.item() == 1


def test_avg_pool_hand_worked():
    # 5x5 ones, k3 s2 p1 ceil_mode: corner windows hold 4 real cells of a 3x3 padded window
    # -> 4/9 with count_include_pad, 1 without; divisor_override=2 -> 4/2
    x = np.ones((1, 1, 5, 5))
    for impl in ["reference"] + FAST:
        y = P.avg_pool2d_forward(x, 3, 2, 1, True, True, None, impl=impl)
        np.testing.assert_allclose(y[0, 0, 0], [4 / 9, 6 / 9, 4 / 9])
        assert np.allclose(P.avg_pool2d_forward(x, 3, 2, 1, True, False, None, impl=impl), 1)
        assert P.avg_pool2d_forward(x, 3, 2, 1, True, True, 2, impl=impl)[0, 0, 0, 0] == 2
        # k2 s2 ceil on 5: the last window [4, 6) overhangs the (zero) padding -> divisor
        # counts only up to H + pad = 5, so it is 1 cell wide and the mean stays 1
        y = P.avg_pool2d_forward(x, 2, 2, 0, True, True, None, impl=impl)
        assert y.shape == (1, 1, 3, 3) and np.allclose(y, 1)


def test_adaptive_avg_pool_hand_worked():
    # 5 -> 3 bins: rows [floor(0), ceil(5/3)) = [0, 2), [1, 4), [3, 5): they overlap
    x = np.arange(5, dtype=np.float64).reshape(1, 1, 1, 5)
    for impl in ["reference"] + FAST:
        y = P.adaptive_avg_pool2d_forward(x, (1, 3), impl=impl)
        np.testing.assert_allclose(y[0, 0, 0], [0.5, 2.0, 3.5])
        gx = P.adaptive_avg_pool2d_backward(np.ones_like(y), x.shape, impl=impl)
        np.testing.assert_allclose(gx[0, 0, 0], [1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2])


def test_max_unpool_hand_worked():
    x = np.array([[[[5.0, 7.0], [13.0, 15.0]]]])
    idx = np.array([[[[5, 7], [13, 15]]]])
    for impl in ["reference"] + FAST:
        y = P.max_unpool2d_forward(x, idx, (4, 4), impl=impl)
        expect = np.zeros(16)
        expect[[5, 7, 13, 15]] = [5, 7, 13, 15]
        assert y.reshape(-1).tolist() == expect.tolist()
        gy = np.arange(16.0).reshape(1, 1, 4, 4)
        assert P.max_unpool2d_backward(gy, idx, impl=impl).tolist() == idx.tolist()


# ------------------------------------------------------------ versions vs reference
@st.composite
def pool_params(draw, dilation=True):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return dict(
        shape=(draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)),
               draw(st.integers(1, 9))),
        kernel_size=(kh, kw),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))),
        dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1),
        ceil_mode=draw(st.booleans()),
        dtype=draw(st.sampled_from(DTYPES)),
        noncontig=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)))


def _out_ok(p):
    n, c, h, w = p["shape"]
    for s, k, st_, pd, d in zip((h, w), p["kernel_size"], p["stride"], p["padding"],
                                p["dilation"]):
        out = P.pool_output_size(s, k, st_, pd, d, p["ceil_mode"])
        if out < 1 or first_empty_window(s, k, st_, pd, d, out) >= 0:
            return False
    return True


def _input(p):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal(p["shape"]).astype(p["dtype"])
    return (non_contiguous(x) if p["noncontig"] else x), rng


@given(pool_params())
def test_max_pool_versions_match_reference(p):
    assume(_out_ok(p))
    x, rng = _input(p)
    args = (p["kernel_size"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"])
    y_ref, idx_ref = P.max_pool2d_forward(x, *args, impl="reference")
    assert (idx_ref >= 0).all() and (idx_ref < x.shape[2] * x.shape[3]).all()
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = P.max_pool2d_backward(gy, idx_ref, x.shape, *args, impl="reference")
    for impl in FAST:
        y, idx = P.max_pool2d_forward(x, *args, impl=impl)
        assert_close(y, y_ref, err_msg=impl)
        assert_close(idx, idx_ref, err_msg=impl)
        assert_close(P.max_pool2d_backward(non_contiguous(gy) if p["noncontig"] else gy, idx,
                                           x.shape, *args, impl=impl), gx_ref, err_msg=impl)


@given(st.integers(0, 3), st.integers(1, 4), st.integers(2, 9), st.integers(2, 9),
       st.sampled_from(DTYPES), st.booleans(), st.integers(0, 2 ** 31 - 1))
def test_max_pool_2x2_kernel_matches_reference(n, c, h, w, dtype, ceil_mode, seed):
    # the 2x2 stride-2 kernel of its own (odd sizes: ceil_mode's half windows go to the
    # general kernel), on values with ties, NaN and -inf in every window position
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, c, h, w)).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    y_ref, idx_ref = P.max_pool2d_forward(x, 2, 2, 0, 1, ceil_mode, impl="reference")
    y, idx = P.max_pool2d_forward(x, 2, 2, 0, 1, ceil_mode, impl="cpu")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@given(pool_params(dilation=False), st.booleans(), st.sampled_from([None, 1, 3]))
def test_avg_pool_versions_match_reference(p, count_include_pad, divisor_override):
    assume(_out_ok(p))
    x, rng = _input(p)
    args = (p["kernel_size"], p["stride"], p["padding"], p["ceil_mode"], count_include_pad,
            divisor_override)
    y_ref = P.avg_pool2d_forward(x, *args, impl="reference")
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = P.avg_pool2d_backward(gy, x.shape, *args, impl="reference")
    for impl in FAST:
        assert_close(P.avg_pool2d_forward(x, *args, impl=impl), y_ref, err_msg=impl)
        assert_close(P.avg_pool2d_backward(gy, x.shape, *args, impl=impl), gx_ref,
                     err_msg=impl)


@given(pool_params(dilation=False), st.integers(1, 6), st.integers(1, 6))
def test_adaptive_avg_pool_versions_match_reference(p, oh, ow):
    x, rng = _input(p)
    y_ref = P.adaptive_avg_pool2d_forward(x, (oh, ow), impl="reference")
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = P.adaptive_avg_pool2d_backward(gy, x.shape, impl="reference")
    for impl in FAST:
        assert_close(P.adaptive_avg_pool2d_forward(x, (oh, ow), impl=impl), y_ref, err_msg=impl)
        assert_close(P.adaptive_avg_pool2d_backward(gy, x.shape, impl=impl), gx_ref,
                     err_msg=impl)


@given(pool_params())
def test_max_unpool_versions_match_reference(p):
    assume(_out_ok(p))
    x, rng = _input(p)
    args = (p["kernel_size"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"])
    y, idx = P.max_pool2d_forward(x, *args, impl="reference")
    size = x.shape[2:]
    u_ref = P.max_unpool2d_forward(y, idx, size, impl="reference")
    gu = rng.standard_normal(u_ref.shape).astype(p["dtype"])
    g_ref = P.max_unpool2d_backward(gu, idx, impl="reference")
    for impl in FAST:
        assert_close(P.max_unpool2d_forward(y, idx, size, impl=impl), u_ref, err_msg=impl)
        assert_close(P.max_unpool2d_backward(gu, idx, impl=impl), g_ref, err_msg=impl)


def test_backward_is_deterministic(rng):
    # overlapping windows (k3 s1) make several outputs scatter into one input cell
    x = rng.standard_normal((2, 8, 33, 31)).astype(np.float32)
    y, idx = P.max_pool2d_forward(x, 3, 1, 1)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    a = P.max_pool2d_backward(gy, idx, x.shape, 3, 1, 1)
    b = P.avg_pool2d_backward(gy, x.shape, 3, 1, 1)
    for _ in range(3):
        assert np.array_equal(a, P.max_pool2d_backward(gy, idx, x.shape, 3, 1, 1))
        assert np.array_equal(b, P.avg_pool2d_backward(gy, x.shape, 3, 1, 1))


# ---------------------------------------------------------------------- gradchecks
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                                  "max_unpool2d"])
def test_gradcheck(name):
    result = run_case(registered_gradchecks()[name])
    assert result.ok, result.worst


# ---------------------------------------------------------- F / nn: shapes and edges
def test_functional_shapes_and_unbatched(rng):
    x = sv.tensor(rng.standard_normal((2, 3, 11, 10)).astype(np.float32), requires_grad=True)
    # k3 s2 p1 on W=10: floor((10 + 2 - 3) / 2) + 1 = 5; ceil_mode: ceil(9 / 2) + 1 = 6 and
    # the 6th window starts at 5*2 - 1 = 9 < 10, inside the input, so it is kept
    assert F.max_pool2d(x, 3, 2, 1).shape == (2, 3, 6, 5)
    y, idx = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    assert y.shape == (2, 3, 6, 6) and idx.dtype == np.int64
    assert F.avg_pool2d(x, 2).shape == (2, 3, 5, 5)
    assert F.adaptive_avg_pool2d(x, (None, 4)).shape == (2, 3, 11, 4)
    assert F.max_unpool2d(y, idx, 3, 2, 1, output_size=(11, 10)).shape == (2, 3, 11, 10)
    assert F.max_unpool2d(y, idx, 3, 2, 1).shape == (2, 3, 11, 11)   # (6-1)*2 - 2 + 3
    x3 = sv.tensor(rng.standard_normal((3, 6, 6)), requires_grad=True)
    out = F.max_pool2d(x3, 2)
    assert out.shape == (3, 3, 3)
    out.sum().backward()
    assert x3.grad.shape == (3, 6, 6) and x3.grad.sum() == 27


def test_empty_batch():
    x = np.zeros((0, 3, 5, 5), np.float32)
    for impl in ["reference"] + FAST:
        y, idx = P.max_pool2d_forward(x, 2, impl=impl)
        assert y.shape == (0, 3, 2, 2) and idx.shape == (0, 3, 2, 2)
        assert P.max_pool2d_backward(y, idx, x.shape, 2, impl=impl).shape == x.shape
        assert P.avg_pool2d_forward(x, 3, 1, 1, impl=impl).shape == (0, 3, 5, 5)
        assert P.adaptive_avg_pool2d_forward(x, 2, impl=impl).shape == (0, 3, 2, 2)
        assert P.max_unpool2d_forward(y, idx, (5, 5), impl=impl).shape == (0, 3, 5, 5)


def test_layers(rng):
    x = sv.tensor(rng.standard_normal((1, 2, 6, 6)).astype(np.float32))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y, idx = pool(x)
    u = unpool(y, idx)
    # unpooling puts every maximum back in place: u equals x where x is its window's max
    assert np.array_equal(u.numpy()[u.numpy() != 0], x.numpy()[u.numpy() != 0])
    assert nn.AvgPool2d(3, 1, 1)(x).shape == (1, 2, 6, 6)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (1, 2, 1, 1)
    assert "kernel_size=2, stride=2" in repr(pool)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, match", [
    (lambda x: P.max_pool2d_forward(x, 3, padding=2), "padding should be at most half"),
    (lambda x: P.max_pool2d_forward(x, 0), "kernel_size must be >= 1"),
    (lambda x: P.max_pool2d_forward(x, 2, stride=0), "stride must be >= 1"),
    (lambda x: P.max_pool2d_forward(x, 2, padding=-1), "padding must be >= 0"),
    (lambda x: P.max_pool2d_forward(x, 9), "output size is too small"),
    (lambda x: P.max_pool2d_forward(x[..., :1, :], (2, 1), 1, (1, 0), (2, 1)),
     "window 0 along height lies entirely in the padding"),
    (lambda x: P.max_pool2d_forward(x[0], 2), r"4-D \(N, C, H, W\), got shape \(3, 5, 5\)"),
    (lambda x: P.avg_pool2d_forward(x, 2, divisor_override=0), "divisor_override"),
    (lambda x: P.max_pool2d_backward(np.ones((1, 3, 3, 3)), np.zeros((1, 3, 3, 3), int),
                                     x.shape, 2), r"grad_output has shape \(1, 3, 3, 3\)"),
    (lambda x: P.max_unpool2d_forward(x, np.full(x.shape, 25), (5, 5)), "outside"),
    (lambda x: P.max_unpool2d_backward(x, np.full(x.shape, -1)), r"contain -1, outside"),
    (lambda x: P.max_unpool2d_backward(x, [0]), "indices must be a 4-D integer array"),
    (lambda x: P.max_pool2d_backward(np.ones((1, 3, 2, 2), np.float32),
                                     np.full((1, 3, 2, 2), 25), x.shape, 2),
     r"contain 25, outside \[0, 25\) for input"),
    (lambda x: P.max_unpool2d_forward(x, np.zeros((1, 3, 5, 4), int), (5, 5)),
     r"indices has shape"),
    (lambda x: F.max_unpool2d(sv.tensor(x), np.zeros(x.shape, np.int64), 2,
                              output_size=(20, 20)), "invalid output_size"),
    (lambda x: P.max_pool2d_forward(x, 2, impl="fast"), "impl must be one of"),
])
def test_bad_input_raises_value_error(call, match):
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=match):
        call(x)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="float32 or float64"):
        P.max_pool2d_forward(np.zeros((1, 1, 4, 4), np.int32), 2)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        P.max_pool2d_forward(np.zeros((1, 1, 4, 4)), 2.5)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        P.max_unpool2d_forward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), (4, 4))


# ---------------------------------------------------------------------- torch peers
@pytest.mark.peers
@pytest.mark.parametrize("k, s, p, d, ceil", [(2, 2, 0, 1, False), (3, 2, 1, 1, True),
                                              (3, 1, 1, 2, False), ((3, 2), (1, 2), (1, 0),
                                                                    (1, 3), True)])
def test_against_torch(k, s, p, d, ceil, rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal((2, 3, 9, 8))
    xt = torch.from_numpy(x).requires_grad_()
    ty, ti = tf.max_pool2d(xt, k, s, p, d, ceil, return_indices=True)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(gy))
    xs = sv.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xs, k, s, p, d, ceil, return_indices=True)
    (y * sv.tensor(gy)).sum().backward()
    assert_close(y.numpy(), ty.detach().numpy())
    assert_close(idx.numpy(), ti.numpy())
    assert_close(xs.grad, xt.grad.numpy())
    u = F.max_unpool2d(y, idx, k, s, p, output_size=x.shape[2:]) if d == 1 else None
    if u is not None:
        assert_close(u.numpy(), tf.max_unpool2d(ty, ti, k, s, p, x.shape[2:]).detach().numpy())
    for cip in (True, False):
        for div in (None, 2):
            xt.grad = None
            ty = tf.avg_pool2d(xt, k, s, p, ceil, cip, div)
            ty.backward(torch.from_numpy(gy[..., :ty.shape[2], :ty.shape[3]].copy())
                        if ty.shape == gy.shape else torch.ones_like(ty))
            xs.grad = None
            y = F.avg_pool2d(xs, k, s, p, ceil, cip, div)
            g = gy if ty.shape == gy.shape else np.ones(ty.shape)
            (y * sv.tensor(g)).sum().backward()
            assert_close(y.numpy(), ty.detach().numpy())
            assert_close(xs.grad, xt.grad.numpy())
    for out in [(4, 3), (9, 8), (1, 1), (5, 6)]:
        assert_close(F.adaptive_avg_pool2d(sv.tensor(x), out).numpy(),
                     tf.adaptive_avg_pool2d(torch.from_numpy(x), out).numpy())
