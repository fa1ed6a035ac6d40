"""The top-level indexing functions (``sv.gather`` ...) take the kernels' ``impl=`` names,
forward and backward, and refuse a wrong one naming the allowed names."""
import numpy as np
import pytest

import scratchvision as sv


def _case(op):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    index = rng.integers(0, 3, (2, 4))
    calls = {
        "gather": lambda t, impl: sv.gather(t, 0, index, impl=impl),
        "scatter_add": lambda t, impl: sv.scatter_add(t, 0, index, sv.ones(2, 4, dtype=sv.float64),
                                                      impl=impl),
        "scatter": lambda t, impl: sv.scatter(t, 0, index[:1], sv.ones(1, 4, dtype=sv.float64),
                                              impl=impl),
        "index_select": lambda t, impl: sv.index_select(t, 1, np.array([3, 0, 3]), impl=impl),
        "masked_fill": lambda t, impl: sv.masked_fill(t, x > 0, 2.0, impl=impl),
    }
    return x, calls[op]


@pytest.mark.parametrize("op", ["gather", "scatter_add", "scatter", "index_select",
                                "masked_fill"])
@pytest.mark.parametrize("impl", ["reference", "cpu", "numpy"])
def test_every_impl_equals_the_default(op, impl):
    x, call = _case(op)
    weights = np.random.default_rng(1)
    outputs = {}
    for name in (None, impl):
        t = sv.tensor(x, requires_grad=True)
        y = call(t, name)
        w = weights.standard_normal(y.shape)
        (y * sv.tensor(w)).sum().backward()
        outputs[name] = (y.data, t.grad.data)
        weights = np.random.default_rng(1)
    np.testing.assert_array_equal(outputs[None][0], outputs[impl][0])
    np.testing.assert_array_equal(outputs[None][1], outputs[impl][1])


def test_wrong_impl_names_the_choices():
    x, call = _case("gather")
    with pytest.raises(ValueError, match=r"impl must be one of \('reference', 'cpu', 'numpy'\)"):
        call(sv.tensor(x), "cuda_fast")
