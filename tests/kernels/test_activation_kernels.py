"""The Numba activation kernels (kernels/activation/cpu.py) against the array-expression
reference: the same bits over random shapes, dtypes and slopes, with NaN, infinities,
signed zeros, empty and strided inputs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision import functional as F
from scratchvision.kernels import activation as A


def _values(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype)
    mask = rng.random(shape) < 0.2
    x[mask] = rng.choice(special, size=int(mask.sum()))
    return x


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # inf * 0 in the reference
@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]),
       slope=st.sampled_from([0.01, 0.1, 0.2, -0.5, 1.5, 0.0]),
       strided=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_cpu_equals_reference(shape, dtype, slope, strided, seed):
    rng = np.random.default_rng(seed)
    x, gy = _values(rng, tuple(shape), dtype), _values(rng, tuple(shape), dtype)
    if strided and x.ndim:
        x, gy = np.repeat(x, 2, axis=-1)[..., ::2], np.repeat(gy, 2, axis=-1)[..., ::2]
    for name, args in (("leaky_relu_forward", (x, slope)),
                       ("leaky_relu_backward", (gy, x, slope)),
                       ("relu_backward", (gy, np.maximum(x, 0)))):
        ref = getattr(A, name)(*args, impl="reference")
        _same_bits(getattr(A, name)(*args, impl="cpu"), ref)
        _same_bits(getattr(A, name)(*args), ref)                 # the default


def test_other_dtypes_take_the_reference():
    x = np.array([-2.0, 3.0], np.float16)
    y = A.leaky_relu_forward(x, 0.5)
    assert y.dtype == np.float16 and y.tolist() == [-1.0, 3.0]


def test_autograd_ops_use_them():
    x = sv.tensor(np.array([-2.0, 0.0, 3.0], np.float32), requires_grad=True)
    F.leaky_relu(x, 0.1).sum().backward()
    assert x.grad.numpy().tolist() == pytest.approx([0.1, 0.1, 1.0])
    x.grad = None
    F.relu(x).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 1.0]
