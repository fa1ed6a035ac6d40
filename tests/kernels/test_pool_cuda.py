"""Pooling CUDA kernels: under Numba's CUDA simulator on tiny NumPy inputs (marked
``cudasim``; run with ``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim``) and on a real
GPU with CuPy arrays against the CPU kernels (marked ``gpu``)."""
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scratchvision.kernels import pool as P
from scratchvision.kernels.pool.shapes import first_empty_window
from tests.helpers import assert_close

sys.setswitchinterval(1e-4)      # the simulator runs one Python thread per CUDA thread
CUDA_IMPLS = ["cuda", "cuda_atomic"]


@st.composite
def tiny_pool(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p = dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 7)),
                    draw(st.integers(1, 7))),
             kernel_size=(kh, kw), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
             padding=(draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))),
             dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
             ceil_mode=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32,
                                                                          np.float64])),
             seed=draw(st.integers(0, 2**16)))
    h, w = p["shape"][2:]
    for size, k, s, pd, d in zip((h, w), p["kernel_size"], p["stride"], p["padding"],
                                 p["dilation"]):
        out = P.pool_output_size(size, k, s, pd, d, p["ceil_mode"])
        assume(out >= 1 and first_empty_window(size, k, s, pd, d, out) < 0)
    return p


@pytest.mark.cudasim
@settings(max_examples=8)
@given(tiny_pool(), st.booleans())
def test_cuda_matches_reference(p, count_include_pad):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal(p["shape"]).astype(p["dtype"])
    geo = (p["kernel_size"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"])
    y_ref, idx_ref = P.max_pool2d_forward(x, *geo, impl="reference")
    gy = rng.standard_normal(y_ref.shape).astype(p["dtype"])
    gx_ref = P.max_pool2d_backward(gy, idx_ref, x.shape, *geo, impl="reference")
    avg = (p["kernel_size"], p["stride"], p["padding"], p["ceil_mode"], count_include_pad, None)
    a_ref = P.avg_pool2d_forward(x, *avg, impl="reference")
    ga = rng.standard_normal(a_ref.shape).astype(p["dtype"])
    ga_ref = P.avg_pool2d_backward(ga, x.shape, *avg, impl="reference")
    ad_ref = P.adaptive_avg_pool2d_forward(x, (2, 3), impl="reference")
    gad = rng.standard_normal(ad_ref.shape).astype(p["dtype"])
    gad_ref = P.adaptive_avg_pool2d_backward(gad, x.shape, impl="reference")
    u_ref = P.max_unpool2d_forward(y_ref, idx_ref, x.shape[2:], impl="reference")
    gu_ref = P.max_unpool2d_backward(x, idx_ref, impl="reference")
    for impl in CUDA_IMPLS:
        y, idx = P.max_pool2d_forward(x, *geo, impl=impl)
        assert_close(y, y_ref, err_msg=impl)
        assert_close(idx, idx_ref, err_msg=impl)
        assert_close(P.max_pool2d_backward(gy, idx_ref, x.shape, *geo, impl=impl), gx_ref,
                     err_msg=impl)
        assert_close(P.avg_pool2d_forward(x, *avg, impl=impl), a_ref, err_msg=impl)
        assert_close(P.avg_pool2d_backward(ga, x.shape, *avg, impl=impl), ga_ref, err_msg=impl)
        assert_close(P.adaptive_avg_pool2d_forward(x, (2, 3), impl=impl), ad_ref, err_msg=impl)
        assert_close(P.adaptive_avg_pool2d_backward(gad, x.shape, impl=impl), gad_ref,
                     err_msg=impl)
        if np.unique(idx_ref.reshape(idx_ref.shape[0], idx_ref.shape[1], -1), axis=-1).shape \
                == idx_ref.reshape(idx_ref.shape[0], idx_ref.shape[1], -1).shape:
            # (unpooling with duplicate indices has an unspecified winner on the GPU)
            assert_close(P.max_unpool2d_forward(y_ref, idx_ref, x.shape[2:], impl=impl), u_ref)
        assert_close(P.max_unpool2d_backward(x, idx_ref, impl=impl), gu_ref, err_msg=impl)


@pytest.mark.cudasim
def test_cuda_hand_worked_and_empty():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y, idx = P.max_pool2d_forward(x, 2, impl="cuda")
    assert y.tolist() == [[[[5, 7], [13, 15]]]] and idx.tolist() == [[[[5, 7], [13, 15]]]]
    gx = P.max_pool2d_backward(np.ones_like(y), idx, x.shape, 2, impl="cuda")
    assert gx[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]
    e = np.zeros((0, 2, 5, 5), np.float32)
    assert P.max_pool2d_forward(e, 2, impl="cuda")[0].shape == (0, 2, 2, 2)
    assert P.avg_pool2d_backward(np.zeros((0, 2, 2, 2), np.float32), e.shape, 2,
                                 impl="cuda").shape == e.shape


# ------------------------------------------------------------------- real GPU (CuPy)
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geo", [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)])
def test_gpu_matches_cpu(dtype, geo):
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 37, 41)).astype(dtype)
    k, s, p, d, ceil = geo
    y, idx = P.max_pool2d_forward(x, k, s, p, d, ceil)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = P.max_pool2d_backward(gy, idx, x.shape, k, s, p, d, ceil)
    xg, gyg = cp.asarray(x), cp.asarray(gy)
    yg, idxg = P.max_pool2d_forward(xg, k, s, p, d, ceil)          # dispatches to cuda
    assert isinstance(yg, cp.ndarray)
    assert_close(yg, y)
    assert_close(idxg, idx)
    gxg = P.max_pool2d_backward(gyg, idxg, x.shape, k, s, p, d, ceil)
    assert_close(gxg, gx)
    assert cp.array_equal(gxg, P.max_pool2d_backward(gyg, idxg, x.shape, k, s, p, d, ceil))
    assert_close(P.max_pool2d_backward(gyg, idxg, x.shape, k, s, p, d, ceil,
                                       impl="cuda_atomic"), gx)
    if d == 1:
        a = P.avg_pool2d_forward(x, k, s, p, ceil, False)
        assert_close(P.avg_pool2d_forward(xg, k, s, p, ceil, False), a)
        ga = cp.asarray(rng.standard_normal(a.shape).astype(dtype))
        ref = P.avg_pool2d_backward(ga.get(), x.shape, k, s, p, ceil, False)
        b1 = P.avg_pool2d_backward(ga, x.shape, k, s, p, ceil, False)
        assert_close(b1, ref)
        assert cp.array_equal(b1, P.avg_pool2d_backward(ga, x.shape, k, s, p, ceil, False))
        assert_close(P.avg_pool2d_backward(ga, x.shape, k, s, p, ceil, False,
                                           impl="cuda_atomic"), ref)
    ad = P.adaptive_avg_pool2d_forward(x, (5, 7))
    assert_close(P.adaptive_avg_pool2d_forward(xg, (5, 7)), ad)
    assert_close(P.adaptive_avg_pool2d_backward(cp.asarray(ad), x.shape),
                 P.adaptive_avg_pool2d_backward(ad, x.shape))
    if d == 1 and k == s:
        assert_close(P.max_unpool2d_forward(yg, idxg, x.shape[2:]),
                     P.max_unpool2d_forward(y, idx, x.shape[2:]))
    assert_close(P.max_unpool2d_backward(xg, idxg[..., :x.shape[2] // 4, :x.shape[3] // 4]
                                         .copy()),
                 P.max_unpool2d_backward(x, idx[..., :x.shape[2] // 4, :x.shape[3] // 4]
                                         .copy()))


@pytest.mark.gpu
def test_gpu_functional_autograd_matches_cpu():
    # a pool -> unpool -> avg-pool -> bilinear chain through F and the autograd engine on
    # CuPy tensors gives the CPU's values and input gradient
    pytest.importorskip("cupy")
    import scratchvision as sv
    from scratchvision import functional as F
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8)).astype(np.float32)
    outs = {}
    for device in ("cpu", "cuda"):
        t = sv.tensor(x, device=device, requires_grad=True)
        y, idx = F.max_pool2d(t, 3, 2, 1, return_indices=True)
        u = F.max_unpool2d(y, idx, 3, 2, 1, output_size=(9, 8))
        z = F.interpolate(F.adaptive_avg_pool2d(F.avg_pool2d(u, 2, ceil_mode=True), (4, 3)),
                          scale_factor=2, mode="bilinear")
        (z * z).sum().backward()
        assert z.device == device
        outs[device] = (z.numpy(), t.grad.numpy())
    assert_close(outs["cuda"][0], outs["cpu"][0])
    assert_close(outs["cuda"][1], outs["cpu"][1])
