"""The fused Numba Adam / AdamW step (kernels/adam/cpu.py) against the array-expression
reference: the same bits, over random buckets, dtypes, hyper-parameters and step counts,
including empty parameters and a strided one."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchvision as sv
from scratchvision.kernels.adam import adam_update
from scratchvision.nn.optim import Adam, AdamW


def _bucket(rng, sizes, dtype):
    params = [rng.standard_normal(s).astype(dtype) for s in sizes]
    grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
    total = sum(int(np.prod(s)) for s in sizes)
    m = rng.standard_normal(total).astype(dtype) * 0.1
    v = np.abs(rng.standard_normal(total)).astype(dtype) * 0.01
    v_max = v + np.abs(rng.standard_normal(total)).astype(dtype) * 0.01
    return params, grads, m, v, v_max


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1),
       sizes=st.lists(st.lists(st.integers(0, 7), min_size=1, max_size=3), min_size=1,
                      max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), decoupled=st.booleans(),
       amsgrad=st.booleans(), wd=st.sampled_from([0.0, 5e-4, 1e-2]),
       lr=st.floats(1e-5, 1e-1), step=st.integers(1, 5000))
def test_cpu_equals_reference(seed, sizes, dtype, decoupled, amsgrad, wd, lr, step):
    rng = np.random.default_rng(seed)
    bucket = _bucket(rng, [tuple(s) for s in sizes], dtype)
    results = []
    for impl in ("reference", "cpu"):
        params, grads, m, v, v_max = (
            [a.copy() for a in x] if isinstance(x, list) else x.copy() for x in bucket)
        adam_update(params, grads, m, v, v_max if amsgrad else None, lr=lr, beta1=0.9,
                    beta2=0.999, eps=1e-8, weight_decay=wd, decoupled=decoupled,
                    step=step, impl=impl)
        results.append((params, m, v, v_max))
    (p_ref, m_ref, v_ref, vm_ref), (p_cpu, m_cpu, v_cpu, vm_cpu) = results
    for a, b in zip(p_ref, p_cpu):
        np.testing.assert_array_equal(a, b)
    for a, b in ((m_ref, m_cpu), (v_ref, v_cpu), (vm_ref, vm_cpu)):
        np.testing.assert_array_equal(a, b)


def test_strided_parameter_is_written_back():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    results = []
    for impl in ("reference", "cpu"):
        p = base.copy()[:, ::2]                     # not contiguous
        g = np.ones_like(p)
        m, v = np.zeros(p.size, np.float32), np.zeros(p.size, np.float32)
        adam_update([p], [g], m, v, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=0.0, decoupled=False, step=1, impl=impl)
        results.append(p.copy())
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(results[1], base[:, ::2])


def test_moments_must_be_flat():
    p = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="exp_avg must be a flat contiguous array of the "
                                         "parameters' 6 entries"):
        adam_update([p], [p], np.zeros((2, 3), np.float32), np.zeros(6, np.float32), lr=0.1,
                    beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,
                    step=1)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_optimizer_impls_agree_over_steps(cls):
    # the optimizer over ten steps of a model, fused kernel vs the flat-array reference
    finals = []
    for impl in ("reference", "cpu"):
        sv.manual_seed(0)
        model = sv.nn.Sequential(sv.nn.Linear(5, 7), sv.nn.ReLU(), sv.nn.Linear(7, 2))
        opt = cls(model.parameters(), lr=1e-2, weight_decay=1e-3, amsgrad=True, impl=impl)
        x = sv.tensor(np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32))
        for _ in range(10):
            opt.zero_grad()
            (model(x) ** 2).sum().backward()
            opt.step()
        finals.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*finals):
        np.testing.assert_array_equal(a, b)


def test_bad_impl_is_named():
    p = sv.tensor(np.zeros(3, np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="Adam: impl must be one of"):
        Adam([p], impl="fast")
