"""conv2d / conv_transpose2d kernels: hand-worked cases, every algorithm against the
reference (forward and both backwards, hypothesis-drawn geometry), gradient checks of the
differentiable ops, output-size formulas, edge cases and bad input, and an optional
cross-check against torch."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import scratchvision as sv
import scratchvision.functional as F
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.kernels import conv as K
from scratchvision.kernels import gemm
from scratchvision.kernels.conv import im2col
from scratchvision.kernels.conv import reference as R
from tests.helpers import assert_close, non_contiguous

FAST = ("im2col", "direct", "winograd", "winograd_f4")
WINOGRAD = ("winograd", "winograd_f4")
DTYPES = (np.float32, np.float64)


def _applicable(impl, W_shape, stride, dilation):
    return impl not in WINOGRAD or K.winograd_applicable(W_shape, stride, dilation)


# ----------------------------------------------------------------- 1. hand-worked cases
@pytest.mark.parametrize("impl", ("reference",) + FAST)
def test_hand_worked_3x3_sum(impl):
    # x = arange(25) as 5x5, W = ones 3x3, stride 1, no padding: y[oy, ox] is the sum of the
    # 3x3 window at (oy, ox). Window (0, 0) = 0+1+2 + 5+6+7 + 10+11+12 = 54; moving one column
    # right adds 1 to each of the 9 values (+9), one row down adds 5 to each (+45).
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    W = np.ones((1, 1, 3, 3))
    y = K.conv2d_forward(x, W, None, (1, 1), (0, 0), (1, 1), 1, impl=impl)
    expected = np.array([[54, 63, 72], [99, 108, 117], [144, 153, 162]], np.float64)
    assert_close(y[0, 0], expected)
    # with bias 1 and padding 1: the corner window sees x[0:2, 0:2] = 0+1+5+6 = 12, plus 1
    y = K.conv2d_forward(x, W, np.ones(1), (1, 1), (1, 1), (1, 1), 1, impl=impl)
    assert y.shape == (1, 1, 5, 5)      # (F(4x4,3x3)'s 1/6 and 1/24 are not exact in binary)
    assert np.isclose(y[0, 0, 0, 0], 13, rtol=1e-13) and np.isclose(y[0, 0, 2, 2], 109,
                                                                    rtol=1e-13)


@pytest.mark.parametrize("impl", ("reference", "im2col", "direct"))
def test_hand_worked_strided_dilated(impl):
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    # stride 2, padding 1, 3x3 ones: outputs at window centres (0,0),(0,2),(0,4),...
    # corner: x[0:2, 0:2] = 12; centre: the full window around (2, 2) = 108
    y = K.conv2d_forward(x, np.ones((1, 1, 3, 3)), None, (2, 2), (1, 1), (1, 1), 1, impl=impl)
    assert y.shape == (1, 1, 3, 3) and y[0, 0, 0, 0] == 12 and y[0, 0, 1, 1] == 108
    # dilation 2, 2x2 ones: taps (0,0),(0,2),(2,0),(2,2): 0+2+10+12 = 24; +4 right, +20 down
    y = K.conv2d_forward(x, np.ones((1, 1, 2, 2)), None, (1, 1), (0, 0), (2, 2), 1, impl=impl)
    assert_close(y[0, 0], 24 + 4 * np.arange(3)[None, :] + 20 * np.arange(3)[:, None] + 0.0)


@pytest.mark.parametrize("impl", ("reference", "im2col", "direct"))
def test_hand_worked_transposed(impl):
    # stride 2, 2x2 ones: every input pixel becomes a 2x2 block of its value
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = K.conv_transpose2d_forward(x, np.ones((1, 1, 2, 2)), None, (2, 2), (0, 0), (0, 0), 1,
                                   (1, 1), impl=impl)
    assert_close(y[0, 0], np.kron(x[0, 0], np.ones((2, 2))))
    # stride 1, 2x2 ones: overlapping copies add up: centre = 1+2+3+4
    y = K.conv_transpose2d_forward(x, np.ones((1, 1, 2, 2)), None, (1, 1), (0, 0), (0, 0), 1,
                                   (1, 1), impl=impl)
    assert_close(y[0, 0], np.array([[1.0, 3, 2], [4, 10, 6], [3, 7, 4]]))


def test_hand_worked_grouped():
    # groups=2: output 0 sees only input channel 0, output 1 only channel 1
    x = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))])[None]          # (1, 2, 3, 3)
    W = np.ones((2, 1, 3, 3))
    for impl in ("reference",) + FAST:
        y = K.conv2d_forward(x, W, None, (1, 1), (0, 0), (1, 1), 2, impl=impl)
        assert_close(y.reshape(2), np.array([9.0, 18.0]), err_msg=impl)


# ------------------------------------------------- 2. every algorithm against reference
@st.composite
def conv_geometry(draw, winograd=False):
    g = draw(st.integers(1, 3))
    cg, cog = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n = draw(st.integers(1, 2))
    if winograd:            # 3x3, stride 1; dilated too (phase by phase, see winograd.py)
        kh = kw = 3
        sh = sw = 1
        dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    # input at least as large as the (dilated) kernel minus the padding; size 1 allowed
    h_min = max(1, dh * (kh - 1) + 1 - 2 * ph)
    w_min = max(1, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(h_min, max(h_min, 9))), draw(st.integers(w_min, max(w_min, 9)))
    return dict(x_shape=(n, g * cg, h, w), W_shape=(g * cog, cg, kh, kw), stride=(sh, sw),
                padding=(ph, pw), dilation=(dh, dw), groups=g)


def _check_all_passes(geo, dtype, impls, noncontig, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    W = rng.standard_normal(geo["W_shape"]).astype(dtype)
    b = rng.standard_normal(geo["W_shape"][0]).astype(dtype)
    args = (geo["stride"], geo["padding"], geo["dilation"], geo["groups"])
    y_ref = R.conv2d_forward(x, W, b, *args)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref = R.conv2d_backward_input(gy, W, x.shape, *args)
    gW_ref = R.conv2d_backward_weight(gy, x, W.shape, *args)
    if noncontig:
        x, W, gy = non_contiguous(x), non_contiguous(W), non_contiguous(gy)
    scale = 4.0 if dtype == np.float32 else 1.0
    for impl in impls:
        # F(4x4,3x3)'s larger interpolation points cost a few times F(2x2)'s float32
        # rounding (winograd_f4.py)
        scale_impl = scale * (2.0 if impl == "winograd" else 1.0)
        if not _applicable(impl, W.shape, geo["stride"], geo["dilation"]):
            continue
        y = K.conv2d_forward(x, W, b, *args, impl=impl)
        assert_close(y, y_ref, scale=scale_impl, err_msg=f"{impl} forward {geo}")
        gx = K.conv2d_backward_input(gy, W, x.shape, *args, impl=impl)
        assert_close(gx, gx_ref, scale=scale_impl, err_msg=f"{impl} input grad {geo}")
        gW = K.conv2d_backward_weight(gy, x, W.shape, *args, impl=impl)
        assert_close(gW, gW_ref, scale=scale * 4, err_msg=f"{impl} weight grad {geo}")


@settings(max_examples=40)
@given(geo=conv_geometry(), dtype=st.sampled_from(DTYPES), noncontig=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_conv2d_algorithms_match_reference(geo, dtype, noncontig, seed):
    _check_all_passes(geo, dtype, ("im2col", "direct", None), noncontig, seed)


@given(geo=conv_geometry(winograd=True), dtype=st.sampled_from(DTYPES),
       noncontig=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_winograd_matches_reference(geo, dtype, noncontig, seed):
    _check_all_passes(geo, dtype, WINOGRAD, noncontig, seed)


@given(geo=conv_geometry(winograd=True), dtype=st.sampled_from(DTYPES),
       noncontig=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_direct_3x3_kernel_matches_reference(geo, dtype, noncontig, seed):
    # direct's 3x3 stride-1 forward kernel of its own (padded plane, taps in registers),
    # grouped or not, any padding and dilation; the general geometry rarely draws it
    _check_all_passes(geo, dtype, ("direct",), noncontig, seed)


@pytest.mark.skipif(not gemm.AVAILABLE, reason="the fused loops call NumPy's OpenBLAS")
@settings(max_examples=30, deadline=None)
@given(geo=conv_geometry(), dtype=st.sampled_from(DTYPES), block=st.sampled_from((1, 300)),
       seed=st.integers(0, 2 ** 16))
def test_fused_im2col_loops_match_reference_and_the_unfused_loops(geo, dtype, block, seed):
    # im2col's fused loops (column blocks of output rows, runs of input planes) with blocks
    # of one row or plane (block=1 byte) or a few: against the reference, against the
    # unfused chunk loops, and the same bits on 1 and 2 threads
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    W = rng.standard_normal(geo["W_shape"]).astype(dtype)
    args = (geo["stride"], geo["padding"], geo["dilation"], geo["groups"])
    gy = rng.standard_normal(R.conv2d_forward(x, W, None, *args).shape).astype(dtype)

    def passes():
        return (K.conv2d_forward(x, W, None, *args, impl="im2col"),
                K.conv2d_backward_input(gy, W, x.shape, *args, impl="im2col"),
                K.conv2d_backward_weight(gy, x, W.shape, *args, impl="im2col"))
    old_block, old_threads = im2col.COLUMN_BLOCK_BYTES, numba.get_num_threads()
    try:
        im2col.COLUMN_BLOCK_BYTES = block
        fused = passes()
        numba.set_num_threads(1)
        one_thread = passes()
        numba.set_num_threads(old_threads)
        fusable, im2col._fusable = im2col._fusable, lambda *a: False
        try:
            unfused = passes()
        finally:
            im2col._fusable = fusable
    finally:
        im2col.COLUMN_BLOCK_BYTES = old_block
        numba.set_num_threads(old_threads)
    refs = (R.conv2d_forward(x, W, None, *args), R.conv2d_backward_input(gy, W, x.shape, *args),
            R.conv2d_backward_weight(gy, x, W.shape, *args))
    scale = 4.0 if dtype == np.float32 else 1.0
    for name, a, b, ref, c in zip(("forward", "input", "weight"), fused, one_thread, refs,
                                  unfused):
        assert_close(a, ref, scale=scale * (4 if name == "weight" else 1), err_msg=name)
        assert np.array_equal(a, b), f"{name}: bits depend on the number of threads"
        assert_close(a, c, scale=scale * 4, err_msg=f"{name} fused against unfused")


@st.composite
def transpose_geometry(draw):
    g = draw(st.integers(1, 3))
    cg, cog = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oph = draw(st.integers(0, max(sh, dh) - 1))
    opw = draw(st.integers(0, max(sw, dw) - 1))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    # padding may crop at most what the full output has beyond one pixel
    full_h = (h - 1) * sh + dh * (kh - 1) + oph + 1
    full_w = (w - 1) * sw + dw * (kw - 1) + opw + 1
    ph = draw(st.integers(0, min(3, (full_h - 1) // 2)))
    pw = draw(st.integers(0, min(3, (full_w - 1) // 2)))
    return dict(x_shape=(draw(st.integers(1, 2)), g * cg, h, w), W_shape=(g * cg, cog, kh, kw),
                stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw),
                groups=g, dilation=(dh, dw))


@given(geo=transpose_geometry(), dtype=st.sampled_from(DTYPES), noncontig=st.booleans(),
       seed=st.integers(0, 2 ** 16))
# found by hypothesis: a 1x1 kernel at stride 1 looked "pointwise" (col == x) although
# output_padding makes the output larger than the input
@example(geo={"x_shape": (1, 1, 1, 1), "W_shape": (1, 1, 1, 1), "stride": (1, 1),
              "padding": (0, 0), "output_padding": (1, 0), "groups": 1, "dilation": (2, 1)},
         dtype=np.float32, noncontig=False, seed=0)
def test_conv_transpose2d_matches_reference(geo, dtype, noncontig, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    W = rng.standard_normal(geo["W_shape"]).astype(dtype)
    b = rng.standard_normal(geo["W_shape"][1] * geo["groups"]).astype(dtype)
    args = (geo["stride"], geo["padding"], geo["output_padding"], geo["groups"],
            geo["dilation"])
    # the reference scatters directly from the definition: an independent oracle
    y_ref = R.conv_transpose2d_forward(x, W, b, *args)
    assert y_ref.shape == K.conv_transpose2d_output_shape(x.shape, W.shape, *args)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref = K.conv_transpose2d_backward_input(gy, W, x.shape, *args, impl="reference")
    gW_ref = K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl="reference")
    if noncontig:
        x, W, gy = non_contiguous(x), non_contiguous(W), non_contiguous(gy)
    scale = 4.0 if dtype == np.float32 else 1.0
    for impl in ("reference", "im2col", "direct", None):
        y = K.conv_transpose2d_forward(x, W, b, *args, impl=impl)
        assert_close(y, y_ref, scale=scale, err_msg=f"{impl} forward {geo}")
        gx = K.conv_transpose2d_backward_input(gy, W, x.shape, *args, impl=impl)
        assert_close(gx, gx_ref, scale=scale, err_msg=f"{impl} input grad {geo}")
        gW = K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl=impl)
        assert_close(gW, gW_ref, scale=scale * 4, err_msg=f"{impl} weight grad {geo}")


@given(geo=transpose_geometry(), dtype=st.sampled_from(DTYPES), noncontig=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_conv_transpose2d_backward_both_equals_the_two_gradients(geo, dtype, noncontig, seed):
    # the backward that builds gy's column matrix once for both gradients (im2col, and the
    # default where it picks im2col) returns the two functions' arrays bit for bit
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geo["x_shape"]).astype(dtype)
    W = rng.standard_normal(geo["W_shape"]).astype(dtype)
    args = (geo["stride"], geo["padding"], geo["output_padding"], geo["groups"],
            geo["dilation"])
    gy = rng.standard_normal(K.conv_transpose2d_output_shape(x.shape, W.shape, *args))
    gy = gy.astype(dtype)
    if noncontig:
        x, W, gy = non_contiguous(x), non_contiguous(W), non_contiguous(gy)
    for impl in ("im2col", "direct", None, "reference"):
        gx, gW = K.conv_transpose2d_backward(gy, x, W, *args, impl=impl)
        np.testing.assert_array_equal(
            gx, K.conv_transpose2d_backward_input(gy, W, x.shape, *args, impl=impl))
        np.testing.assert_array_equal(
            gW, K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl=impl))
    with pytest.raises(ValueError, match="grad_output"):
        K.conv_transpose2d_backward(gy[:, :, 1:], x, W, *args)


@settings(max_examples=15)
@given(geo=conv_geometry(), seed=st.integers(0, 2 ** 16))
def test_reference_backwards_are_adjoints(geo, seed):
    # <conv(x), gy> = <x, conv^T gy> = <W, gW(gy, x)>: the reference's three passes agree
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal(geo["x_shape"]), rng.standard_normal(geo["W_shape"])
    args = (geo["stride"], geo["padding"], geo["dilation"], geo["groups"])
    y = R.conv2d_forward(x, W, None, *args)
    gy = rng.standard_normal(y.shape)
    lhs = float((y * gy).sum())
    assert np.isclose(lhs, float((x * R.conv2d_backward_input(gy, W, x.shape, *args)).sum()))
    assert np.isclose(lhs, float((W * R.conv2d_backward_weight(gy, x, W.shape, *args)).sum()))


def test_workspace_chunking_gives_same_result(rng):
    x = rng.standard_normal((5, 3, 8, 7))
    W = rng.standard_normal((4, 3, 3, 3))
    args = ((1, 1), (1, 1), (1, 1), 1)
    full = {k: f() for k, f in _passes(x, W, args, "im2col").items()}
    full_w = {k: f() for k, f in _passes(x, W, args, "winograd").items()}
    old = K.set_workspace_limit(3 * 9 * 56 * 8 * 2)   # two images' column matrices per chunk
    try:
        assert K.workspace_limit() == 3 * 9 * 56 * 8 * 2
        for impl, ref in (("im2col", full), ("winograd", full_w), ("winograd_f4", full_w)):
            for k, f in _passes(x, W, args, impl).items():
                assert_close(f(), ref[k], err_msg=f"{impl} {k}")
    finally:
        K.set_workspace_limit(old)
    with pytest.raises(ValueError, match="workspace"):
        K.set_workspace_limit(0)


def _passes(x, W, args, impl):
    y = K.conv2d_forward(x, W, None, *args, impl="reference")
    gy = np.cos(np.arange(y.size)).reshape(y.shape).astype(x.dtype)
    return {"forward": lambda: K.conv2d_forward(x, W, None, *args, impl=impl),
            "input": lambda: K.conv2d_backward_input(gy, W, x.shape, *args, impl=impl),
            "weight": lambda: K.conv2d_backward_weight(gy, x, W.shape, *args, impl=impl)}


@pytest.mark.parametrize("impl", FAST)
def test_backward_is_deterministic(impl, rng):
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    W = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    for k, f in _passes(x, W, ((1, 1), (1, 1), (1, 1), 2), impl).items():
        assert np.array_equal(f(), f()), k


def test_default_algorithm_rule(monkeypatch):
    # the rule for OpenBLAS's AVX2 (or older) kernels; AVX-512's is tested below
    monkeypatch.setattr(gemm, "AVX512_KERNELS", False)
    s1, d1 = (1, 1), (1, 1)
    assert K.choose_algorithm((8, 64, 56, 56), (64, 1, 3, 3), s1, s1, d1, 64) == "direct"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 1, 3, 3), s1, s1, d1, 64,
                              "weight") == "direct"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 4, 3, 3), s1, s1, d1, 16) == "direct"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 4, 3, 3), s1, s1, d1, 16,
                              "weight") == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (128, 1, 3, 3), (2, 2), s1, d1, 64) == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 8, 3, 3), s1, s1, d1, 8) == "im2col"
    # F(2x2): 3x3 stride 1 undilated, forward from 64 channels, input gradient from 128
    assert K.choose_algorithm((8, 64, 56, 56), (64, 64, 3, 3), s1, s1, d1, 1) == "winograd"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 64, 3, 3), s1, s1, d1, 1,
                              "input") == "im2col"
    assert K.choose_algorithm((8, 16, 64, 64), (16, 16, 3, 3), s1, s1, d1, 1) == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 64, 3, 3), s1, (2, 2), (2, 2),
                              1) == "im2col"
    assert K.choose_algorithm((8, 8, 64, 64), (8, 8, 3, 3), s1, s1, d1, 1) == "im2col"
    # and on small maps; the input gradient needs maps at least 8 wide
    assert K.choose_algorithm((8, 256, 14, 14), (256, 256, 3, 3), s1, s1, d1, 1) == "winograd"
    assert K.choose_algorithm((8, 256, 14, 14), (256, 256, 3, 3), s1, s1, d1, 1,
                              "input") == "winograd"
    assert K.choose_algorithm((8, 512, 7, 7), (512, 512, 3, 3), s1, s1, d1, 1) == "winograd"
    assert K.choose_algorithm((8, 512, 7, 7), (512, 512, 3, 3), s1, s1, d1, 1,
                              "input") == "im2col"
    assert K.choose_algorithm((8, 64, 28, 28), (64, 64, 3, 3), s1, (4, 4), (4, 4),
                              1) == "im2col"
    assert K.choose_algorithm((8, 256, 14, 14), (256, 256, 3, 3), s1, s1, d1, 1,
                              "weight") == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (128, 64, 3, 3), (2, 2), s1, d1, 1) == "im2col"
    assert K.choose_algorithm((8, 256, 28, 28), (64, 256, 1, 1), s1, (0, 0), d1, 1) == "im2col"


# ------------------------------------------------------------- 3. gradient checks
@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d"])
def test_gradcheck_registered(name):
    result = run_case(registered_gradchecks()[name])
    assert result.ok, result.worst


def test_functional_padding_same_and_valid(rng):
    x = sv.tensor(rng.standard_normal((1, 2, 7, 6)), requires_grad=True)
    for k, d in ((3, 1), (4, 1), (2, 3), (5, 2)):
        w = sv.tensor(rng.standard_normal((3, 2, k, k)), requires_grad=True)
        y = F.conv2d(x, w, padding="same", dilation=d)
        assert y.shape == (1, 3, 7, 6)
        # equals an explicit asymmetric zero padding (odd total: extra at bottom/right)
        total = d * (k - 1)
        lo, hi = total // 2, total - total // 2
        xpad = np.pad(x.data, ((0, 0), (0, 0), (lo, hi), (lo, hi)))
        assert_close(y.data, R.conv2d_forward(xpad, w.data, None, (1, 1), (0, 0), (d, d), 1))
    assert F.conv2d(x, w, padding="valid").shape == (1, 3, 3, 2)
    with pytest.raises(ValueError, match="same"):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, padding="full")


def test_functional_unbatched_and_grads(rng):
    x = sv.tensor(rng.standard_normal((2, 5, 5)), requires_grad=True)
    w = sv.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = sv.tensor(rng.standard_normal(3), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert y.shape == (3, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (2, 5, 5) and w.grad.shape == (3, 2, 3, 3)
    assert_close(b.grad, np.full(3, 25.0))
    t = F.conv_transpose2d(y, sv.tensor(rng.standard_normal((3, 2, 2, 2))), stride=2)
    assert t.shape == (2, 10, 10)


# ------------------------------------------------------ 4. sizes, edges, bad input
@pytest.mark.parametrize("size,k,s,p,d", [(7, 3, 2, 1, 1), (8, 3, 2, 1, 1), (5, 2, 3, 0, 2),
                                          (1, 1, 1, 0, 1), (10, 4, 2, 1, 1), (9, 3, 1, 2, 2)])
def test_output_size_formulas(size, k, s, p, d):
    # conv: count the window start positions that fit in the padded input
    starts = [o for o in range(0, size + 2 * p, s) if o + d * (k - 1) < size + 2 * p]
    assert K.conv_output_size(size, k, s, p, d) == len(starts)
    # transposed: for every output_padding, conv2d maps the transposed output size back
    for op in range(max(s, d)):
        out = K.conv_transpose_output_size(size, k, s, p, op, d)
        assert out == (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        if op < s:
            assert K.conv_output_size(out, k, s, p, d) == size


def test_empty_and_size_one_inputs(rng):
    W = rng.standard_normal((4, 3, 3, 3))
    b = np.arange(4.0)
    for impl in ("reference",) + FAST:
        y = K.conv2d_forward(np.zeros((0, 3, 5, 5)), W, b, (1, 1), (1, 1), (1, 1), 1, impl=impl)
        assert y.shape == (0, 4, 5, 5)
        gy = np.zeros((0, 4, 5, 5))
        assert K.conv2d_backward_input(gy, W, (0, 3, 5, 5), (1, 1), (1, 1), (1, 1), 1,
                                       impl=impl).shape == (0, 3, 5, 5)
        gW = K.conv2d_backward_weight(gy, np.zeros((0, 3, 5, 5)), W.shape, (1, 1), (1, 1),
                                      (1, 1), 1, impl=impl)
        assert gW.shape == W.shape and not gW.any()
    # a 1x1 image with padding 1: only the centre tap sees data
    x = rng.standard_normal((2, 3, 1, 1))
    for impl in FAST:
        y = K.conv2d_forward(x, W, None, (1, 1), (1, 1), (1, 1), 1, impl=impl)
        assert_close(y[:, :, 0, 0], x[:, :, 0, 0] @ W[:, :, 1, 1].T)
    y = K.conv_transpose2d_forward(np.zeros((0, 4, 3, 3)), W, None, 2, 1, 1, 1, 1)
    assert y.shape == (0, 3, 6, 6)


def test_bad_input_raises_clear_errors(rng):
    x = rng.standard_normal((1, 4, 6, 6))
    fwd = K.conv2d_forward
    with pytest.raises(ValueError, match="divisible by groups"):
        fwd(x, rng.standard_normal((6, 2, 3, 3)), None, 1, 0, 1, 3)
    with pytest.raises(ValueError, match="expects 6 input channels"):
        fwd(x, rng.standard_normal((4, 3, 3, 3)), None, 1, 0, 1, 2)
    with pytest.raises(ValueError, match="weight must be 4-D"):
        fwd(x, rng.standard_normal((4, 4, 3)), None, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="input must be 4-D"):
        fwd(x[0], rng.standard_normal((4, 4, 3, 3)), None, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="larger than the padded input"):
        fwd(x, rng.standard_normal((4, 4, 4, 4)), None, 1, 0, 2, 1)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        fwd(x, rng.standard_normal((4, 4, 3, 3)), None, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        fwd(x, rng.standard_normal((4, 4, 3, 3)), None, 1, -1, 1, 1)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        fwd(x, rng.standard_normal((4, 4, 3, 3)), None, (1, 1, 1), 0, 1, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(x.astype(np.float32), rng.standard_normal((4, 4, 3, 3)), None, 1, 0, 1, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(x.astype(np.int64), np.ones((4, 4, 3, 3), np.int64), None, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="bias must have shape"):
        fwd(x, rng.standard_normal((4, 4, 3, 3)), np.zeros(3), 1, 0, 1, 1)
    with pytest.raises(ValueError, match="impl"):
        fwd(x, rng.standard_normal((4, 4, 3, 3)), None, 1, 0, 1, 1, impl="fft")
    with pytest.raises(ValueError, match="winograd"):
        fwd(x, rng.standard_normal((4, 4, 3, 3)), None, 2, 0, 1, 1, impl="winograd")
    with pytest.raises(ValueError, match="grad_output must have"):
        K.conv2d_backward_input(np.zeros((1, 4, 5, 5)), rng.standard_normal((4, 4, 3, 3)),
                                x.shape, 1, 0, 1, 1)
    tfwd = K.conv_transpose2d_forward
    with pytest.raises(ValueError, match="output_padding"):
        tfwd(x, rng.standard_normal((4, 2, 3, 3)), None, 2, 0, 2, 1, 1)
    with pytest.raises(ValueError, match="output_padding"):
        tfwd(x, rng.standard_normal((4, 2, 3, 3)), None, 1, 0, 1, 1, 1)
    tfwd(x, rng.standard_normal((4, 2, 3, 3)), None, 1, 0, 1, 1, 2)   # op < dilation is fine
    with pytest.raises(ValueError, match="divisible by groups"):
        tfwd(x, rng.standard_normal((4, 2, 3, 3)), None, 1, 0, 0, 3, 1)
    with pytest.raises(ValueError, match="expects 5 input channels"):
        tfwd(x, rng.standard_normal((5, 2, 3, 3)), None, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="not positive"):
        tfwd(x[:, :, :1, :1], rng.standard_normal((4, 2, 1, 1)), None, 1, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="weight must be 4-D"):
        F.conv2d(sv.tensor(x), sv.tensor(rng.standard_normal((4, 4))))
    with pytest.raises(ValueError, match="weight must be 4-D"):
        F.conv_transpose2d(sv.tensor(x), sv.tensor(rng.standard_normal((4, 4))))


# ------------------------------------------------------------- optional: torch
@pytest.mark.peers
@pytest.mark.parametrize("cfg", [
    dict(stride=2, padding=1, dilation=1, groups=1, k=3),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=2, k=3),
    dict(stride=1, padding=1, dilation=1, groups=4, k=3),
    dict(stride=1, padding=0, dilation=1, groups=1, k=1),
])
def test_against_torch(cfg):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    g, k = cfg.pop("groups"), cfg.pop("k")
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((8, 4 // g, k, k))
    b = rng.standard_normal(8)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, groups=g, **cfg)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    sx, sw, sb = (sv.tensor(a, requires_grad=True) for a in (x, w, b))
    sy = F.conv2d(sx, sw, sb, groups=g, **cfg)
    sy.backward(sv.tensor(gy))
    for ours, theirs in ((sy.data, ty), (sx.grad, tx.grad), (sw.grad, tw.grad),
                         (sb.grad, tb.grad)):
        assert_close(ours, theirs.detach().numpy())
    # the transposed conv of the same weight (8 -> 4*... channels), with output_padding
    tyt = torch.nn.functional.conv_transpose2d(ty.detach(), tw, None, stride=2, padding=1,
                                               output_padding=1, groups=g)
    syt = F.conv_transpose2d(sv.tensor(ty.detach().numpy()), sw, None, stride=2, padding=1,
                             output_padding=1, groups=g)
    assert_close(syt.data, tyt.detach().numpy())


def test_default_algorithm_rule_with_avx512_gemm(monkeypatch):
    # with GEMMs ~3x faster the Winograd transforms dominate: im2col wherever F(2x2) won;
    # the direct rule for small groups stays
    monkeypatch.setattr(gemm, "AVX512_KERNELS", True)
    s1, d1 = (1, 1), (1, 1)
    assert K.choose_algorithm((8, 64, 56, 56), (64, 64, 3, 3), s1, s1, d1, 1) == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 64, 3, 3), s1, s1, d1, 1,
                              "input") == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 64, 3, 3), s1, (2, 2), (2, 2),
                              1) == "im2col"
    assert K.choose_algorithm((8, 64, 56, 56), (64, 1, 3, 3), s1, s1, d1, 64) == "direct"
