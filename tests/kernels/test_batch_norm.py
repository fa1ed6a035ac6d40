"""kernels/batch_norm: the fused Numba version against the array version (the reference),
forward and backward, training and evaluation, over random shapes and dtypes; the public
``F.batch_norm(impl=...)`` names; empty batches in evaluation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchvision as sv
import scratchvision.functional as F
from scratchvision.kernels import batch_norm as KB
from tests.helpers import assert_close, non_contiguous


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.sampled_from([(), (7,), (3, 4), (2, 3, 2)]),
       st.booleans(), st.booleans(), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2 ** 31))
def test_cpu_equals_reference(N, C, spatial, training, affine, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (N, C) + spatial
    if training and N * int(np.prod(spatial)) < 2:
        N, shape = 2, (2, C) + spatial
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal(C).astype(dtype) if affine else None
    beta = rng.standard_normal(C).astype(dtype) if affine else None
    stats = (None, None) if training else (rng.random(C).astype(dtype),
                                           rng.random(C).astype(dtype) + 0.5)
    out = {impl: KB.batch_norm_forward(x, gamma, beta, *stats, 1e-5, impl=impl)
           for impl in ("reference", "cpu")}
    for got, want in zip(out["cpu"], out["reference"]):
        assert_close(got, want, dtype=dtype, scale=10)
    gy = rng.standard_normal(shape).astype(dtype)
    x_hat, inv_std = out["reference"][1], out["reference"][4]
    scale = inv_std if gamma is None else inv_std * gamma
    grads = {impl: KB.batch_norm_backward(gy, x_hat, scale, training, impl=impl)
             for impl in ("reference", "cpu")}
    for got, want in zip(grads["cpu"], grads["reference"]):
        assert_close(got, want, dtype=dtype, scale=10 * max(N, 1) * max(np.prod(spatial), 1))


def test_public_impl_and_non_contiguous_input():
    rng = np.random.default_rng(0)
    x0 = non_contiguous(rng.standard_normal((3, 4, 5, 6)))
    results = {}
    for impl in ("reference", "cpu"):
        x = sv.tensor(x0, requires_grad=True)
        w = sv.tensor(np.linspace(0.5, 2, 4), requires_grad=True)
        y = F.batch_norm(x, weight=w, training=True, impl=impl)
        (y * y).sum().backward()
        results[impl] = (y.data, x.grad.data, w.grad.data)
    for got, want in zip(results["cpu"], results["reference"]):
        assert_close(got, want)
    with pytest.raises(ValueError, match=r"batch_norm: impl must be one of \('reference', 'cpu'\)"):
        F.batch_norm(sv.tensor(x0), training=True, impl="fused")


def test_empty_batch_in_evaluation():
    x = np.zeros((0, 3, 4, 4), np.float32)
    y, x_hat, *_ = KB.batch_norm_forward(x, None, None, np.zeros(3, np.float32),
                                         np.ones(3, np.float32), impl="cpu")
    assert y.shape == x.shape and x_hat.shape == x.shape


def test_bits_do_not_depend_on_the_thread_count():
    import numba
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 33, 17)).astype(np.float32)
    before, outs = numba.get_num_threads(), []
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            outs.append(KB.batch_norm_forward(x, None, None, impl="cpu")[0])
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])
