"""The CUDA conv kernels (kernels/conv/cuda.py) against the reference.

``cudasim`` tests call the numba.cuda kernels on NumPy arrays under Numba's CUDA simulator
(run them in their own process: ``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim
tests/kernels/test_conv_cuda.py``), on tiny inputs since every simulated thread is a Python
thread. ``gpu`` tests run on CuPy arrays on a real GPU at realistic sizes, against the CPU.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from scratchvision.kernels import conv as K
from scratchvision.kernels.conv import reference as R
from tests.helpers import assert_close

sys.setswitchinterval(1e-4)     # the simulator's threads hand over quickly

# (x_shape, W_shape, stride, padding, dilation, groups): im2col path and direct path
CASES = [((1, 2, 6, 5), (3, 2, 3, 3), (1, 1), (1, 1), (1, 1), 1),
         ((2, 2, 7, 6), (2, 1, 3, 2), (2, 1), (1, 0), (1, 2), 2),      # grouped, Cg=1: direct
         ((1, 3, 5, 5), (3, 1, 2, 2), (2, 2), (0, 1), (2, 1), 3),      # depthwise, strided
         ((1, 2, 4, 6), (2, 2, 1, 3), (1, 3), (0, 2), (1, 1), 1),
         ((2, 3, 3, 4), (2, 3, 1, 1), (1, 1), (0, 0), (2, 2), 1),      # pointwise: no im2col
         ((2, 10, 2, 3), (4, 5, 1, 1), (1, 1), (0, 0), (1, 1), 2)]     # pointwise, grouped


@pytest.mark.cudasim
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernels_match_reference_simulated(case, dtype):
    from scratchvision.kernels.conv import cuda  # noqa: PLC0415
    x_shape, W_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(W_shape).astype(dtype)
    b = rng.standard_normal(W_shape[0]).astype(dtype)
    args = (stride, padding, dilation, groups)
    y_ref = R.conv2d_forward(x, W, b, *args)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    scale = 4.0 if dtype == np.float32 else 1.0
    assert_close(cuda.conv2d_forward(x, W, b, *args), y_ref, scale=scale)
    assert_close(cuda.conv2d_backward_input(gy, W, x.shape, *args),
                 R.conv2d_backward_input(gy, W, x.shape, *args), scale=scale)
    assert_close(cuda.conv2d_backward_weight(gy, x, W.shape, *args),
                 R.conv2d_backward_weight(gy, x, W.shape, *args), scale=scale)
    # the atomic col2im scatter (non-deterministic order, same values up to rounding)
    assert_close(cuda.ATOMIC.conv2d_backward_input(gy, W, x.shape, *args),
                 R.conv2d_backward_input(gy, W, x.shape, *args), scale=scale)


@pytest.mark.cudasim
def test_cuda_column_kernels_loop_past_a_capped_grid_simulated(monkeypatch):
    """The column kernels' grid is capped at 65535 images and channels (y and z); past
    the cap each block loops. A cap of 1 makes every block loop over all of them."""
    from scratchvision.kernels import cuda_support  # noqa: PLC0415
    from scratchvision.kernels.conv import cuda  # noqa: PLC0415
    monkeypatch.setattr(cuda_support, "MAX_GRID_YZ", 1)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 2, 5, 4))
    W = rng.standard_normal((2, 2, 3, 2))
    args = ((2, 1), (1, 1), (1, 2), 1)
    y = R.conv2d_forward(x, W, None, *args)
    gy = rng.standard_normal(y.shape)
    assert_close(cuda.conv2d_forward(x, W, None, *args), y)
    gx = R.conv2d_backward_input(gy, W, x.shape, *args)
    assert_close(cuda.conv2d_backward_input(gy, W, x.shape, *args), gx)
    assert_close(cuda.ATOMIC.conv2d_backward_input(gy, W, x.shape, *args), gx)
    assert_close(cuda.conv2d_backward_weight(gy, x, W.shape, *args),
                 R.conv2d_backward_weight(gy, x, W.shape, *args))


@pytest.mark.cudasim
def test_cuda_transposed_pointwise_with_output_padding_simulated():
    """A 1x1 stride-1 transposed conv whose output_padding makes the output larger than
    the input is not 'pointwise': the extra row gets only the bias."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 2, 3))
    W = rng.standard_normal((3, 2, 1, 1))
    b = rng.standard_normal(2)
    args = ((1, 1), (0, 0), (1, 0), 1, (2, 1))
    y = K.conv_transpose2d_forward(x, W, b, *args, impl="cuda")
    assert y.shape == (2, 2, 3, 3)
    assert_close(y, R.conv_transpose2d_forward(x, W, b, *args))
    gy = rng.standard_normal(y.shape)
    assert_close(K.conv_transpose2d_backward_input(gy, W, x.shape, *args, impl="cuda"),
                 K.conv_transpose2d_backward_input(gy, W, x.shape, *args, impl="reference"))
    assert_close(K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl="cuda"),
                 K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl="reference"))


@pytest.mark.cudasim
def test_cuda_transposed_through_dispatch_simulated():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 3, 3))
    W = rng.standard_normal((2, 2, 4, 4))
    args = ((2, 2), (1, 1), (1, 0), 1, (1, 1))
    y = K.conv_transpose2d_forward(x, W, None, *args, impl="cuda")
    assert_close(y, R.conv_transpose2d_forward(x, W, None, *args))
    gy = rng.standard_normal(y.shape)
    assert_close(K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl="cuda"),
                 K.conv_transpose2d_backward_weight(gy, x, W.shape, *args, impl="reference"))


@pytest.mark.gpu
@pytest.mark.parametrize("case", [
    ((8, 64, 56, 56), (64, 64, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((4, 64, 56, 56), (128, 64, 3, 3), (2, 2), (1, 1), (1, 1), 1),
    ((4, 64, 56, 56), (64, 64, 3, 3), (1, 1), (2, 2), (2, 2), 1),
    ((8, 64, 56, 56), (64, 1, 3, 3), (1, 1), (1, 1), (1, 1), 64),
    ((4, 256, 28, 28), (64, 256, 1, 1), (1, 1), (0, 0), (1, 1), 1)])
def test_cuda_matches_cpu_on_gpu(case):
    import cupy as cp  # noqa: PLC0415
    x_shape, W_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    W = (0.1 * rng.standard_normal(W_shape)).astype(np.float32)
    b = rng.standard_normal(W_shape[0]).astype(np.float32)
    args = (stride, padding, dilation, groups)
    y = K.conv2d_forward(x, W, b, *args, impl="im2col")
    gy = rng.standard_normal(y.shape).astype(np.float32)
    xg, Wg, bg, gyg = (cp.asarray(a) for a in (x, W, b, gy))
    assert_close(K.conv2d_forward(xg, Wg, bg, *args), y, scale=10)
    gx = K.conv2d_backward_input(gyg, Wg, x.shape, *args)
    assert_close(gx, K.conv2d_backward_input(gy, W, x.shape, *args, impl="im2col"), scale=10)
    assert np.array_equal(cp.asnumpy(gx),
                          cp.asnumpy(K.conv2d_backward_input(gyg, Wg, x.shape, *args)))
    gW = K.conv2d_backward_weight(gyg, xg, W.shape, *args)
    # weight gradients sum over N*oh*ow products: compare relative to their size
    ref = K.conv2d_backward_weight(gy, x, W.shape, *args, impl="im2col")
    np.testing.assert_allclose(cp.asnumpy(gW), ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
