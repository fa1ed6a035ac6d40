"""Factories and tensors refuse what torch refuses (issue 19): non-numeric data, ragged
lists, non-int or negative sizes, an ``arange`` that cannot end, a ``full`` without a scalar
fill, and a ``.view()`` that would need a copy. Each row states the exception and a message
fragment; where torch is installed the same call must fail in torch too."""
from __future__ import annotations

import numpy as np
import pytest

import scratchvision as sv

try:
    import torch
except ImportError:  # pragma: no cover - the core suite runs without torch
    torch = None

# (name, call(lib), our exception, our message fragment); torch raises for each as well
BAD_CALLS = [
    ("tensor_str", lambda m: m.tensor("abc"), TypeError, "new(): invalid data type 'str'"),
    ("tensor_str_array", lambda m: m.tensor(np.array(["a", "b"])), TypeError,
     "holding numpy.str_ to a tensor"),
    ("tensor_object_array", lambda m: m.tensor(np.array([1, None], dtype=object)), TypeError,
     "holding numpy.object_ to a tensor"),
    ("tensor_none_in_list", lambda m: m.tensor([1.0, None]), TypeError, "numpy.object_"),
    ("tensor_ragged", lambda m: m.tensor([[1, 2], [3]]), ValueError,
     "ragged nested sequence"),
    ("zeros_float_size", lambda m: m.zeros(2.5, 3), TypeError,
     "zeros(): size must be a tuple of ints, got (2.5, 3)"),
    ("ones_negative", lambda m: m.ones((2, -1)), ValueError,
     "ones(): trying to create a tensor with negative dimension -1: (2, -1)"),
    ("empty_bool", lambda m: m.empty(True), TypeError, "empty(): size must be a tuple of ints"),
    ("zeros_str", lambda m: m.zeros("a"), TypeError, "zeros(): size must be a tuple of ints"),
    ("randn_float", lambda m: m.randn(2.0), TypeError, "randn(): size must be a tuple of ints"),
    ("rand_nested", lambda m: m.rand(2, (3,)), TypeError, "rand(): size must be a tuple"),
    ("full_float_size", lambda m: m.full((2.5,), 1.0), TypeError, "full(): size must be"),
    ("full_list_fill", lambda m: m.full((2,), [1, 2]), TypeError,
     "full(): fill_value must be a number, got [1, 2]"),
    ("full_str_fill", lambda m: m.full((2,), "a"), TypeError, "fill_value must be a number"),
    ("arange_step_0", lambda m: m.arange(0, 5, 0), ValueError, "arange(): step must be nonzero"),
    ("arange_wrong_sign", lambda m: m.arange(5, 0), ValueError,
     "upper bound and lower bound inconsistent with step sign"),
    ("arange_nan", lambda m: m.arange(0, float("nan")), ValueError,
     "arange(): end must be finite, got nan"),
    ("arange_inf", lambda m: m.arange(0, float("inf")), ValueError, "end must be finite"),
    ("eye_negative", lambda m: m.eye(-1), ValueError, "eye(): n must be >= 0, got -1"),
    ("eye_float", lambda m: m.eye(2.5), TypeError, "eye(): n must be an int, got 2.5"),
    ("linspace_float_steps", lambda m: m.linspace(0, 1, 2.5), TypeError,
     "linspace(): steps must be an int"),
    ("randperm_negative", lambda m: m.randperm(-1), ValueError, "randperm(): n must be >= 0"),
    ("randint_negative", lambda m: m.randint(0, 5, (2, -1)), ValueError,
     "randint(): trying to create a tensor with negative dimension"),
    ("reshape_float", lambda m: m.zeros(2, 3).reshape(2.5, 2), TypeError,
     "reshape: size must be a tuple of ints"),
    ("view_float", lambda m: m.zeros(2, 3).view(3, 2.0), TypeError,
     "view: size must be a tuple of ints"),
    ("view_two_free", lambda m: m.zeros(2, 3).view(-1, -1), ValueError,
     "only one dimension can be inferred"),
    ("view_wrong_count", lambda m: m.zeros(2, 3).view(4), ValueError,
     "shape (4,) is invalid for a tensor of shape (2, 3)"),
    ("view_of_transpose", lambda m: m.zeros(2, 3).t().view(-1), RuntimeError,
     "view size is not compatible with input tensor's size and stride"),
    ("view_of_column_slice", lambda m: m.zeros(2, 3)[:, :2].view(4), RuntimeError,
     "Use .reshape(...) instead"),
    ("view_of_step_slice", lambda m: m.zeros(2, 3)[:, ::2].view(4), RuntimeError,
     "view size is not compatible"),
    ("new_zeros_float", lambda m: m.zeros(2).new_zeros(1.5), TypeError,
     "new tensor: size must be a tuple of ints"),
    ("new_ones_negative", lambda m: m.zeros(2).new_ones(-1, 2), ValueError,
     "new tensor: negative dimension"),
]


@pytest.mark.parametrize("name, call, exc, fragment", BAD_CALLS, ids=[r[0] for r in BAD_CALLS])
def test_bad_factory_call_is_refused(name, call, exc, fragment):
    with pytest.raises(exc) as info:
        call(sv)
    assert fragment in str(info.value)
    if torch is not None:               # torch refuses it too (with its own exception type)
        with pytest.raises((TypeError, ValueError, RuntimeError)):
            call(torch)


def test_zeros_above_the_element_limit_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"zeros\(\) needs 1,000,000,000,000 array elements"):
        sv.zeros(10 ** 6, 10 ** 6)


VIEWS = [  # views that need no copy: torch allows them on these non-contiguous tensors
    ("transpose_same_shape", lambda x: x.t(), (3, 2)),
    ("transpose_unit_dims", lambda x: x.t(), (3, 1, 2)),
    ("transpose_leading_one", lambda x: x.t(), (1, 3, 2)),
    ("column_slice_split", lambda x: x[:, :2], (2, 1, 2)),
    ("unsqueezed_transpose", lambda x: x.t().unsqueeze(0), (3, 2)),
    ("step_slice_split", lambda x: x[:, ::2], (2, 1, 2)),
    ("contiguous_merge", lambda x: x, (6,)),
]


@pytest.mark.parametrize("name, make, shape", VIEWS, ids=[v[0] for v in VIEWS])
def test_view_allowed_where_torch_allows_it(name, make, shape):
    base = sv.arange(6.0).reshape(2, 3)
    src = make(base)
    if torch is not None:
        expected = make(torch.arange(6.0).reshape(2, 3)).view(shape).numpy()
        np.testing.assert_array_equal(src.view(shape).numpy(), expected)
    view = src.view(shape)
    np.testing.assert_array_equal(view.numpy(), src.numpy().reshape(shape))
    assert np.shares_memory(view.data, base.data)    # a view, not a copy


def test_reshape_still_copies_a_non_contiguous_tensor():
    x = sv.arange(6.0, requires_grad=True)
    y = x.reshape(2, 3).t().reshape(-1)
    np.testing.assert_array_equal(y.numpy(), [0, 3, 1, 4, 2, 5])
    (y * sv.arange(6.0)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 4, 1, 3, 5])


def test_views_of_empty_and_zero_dim_tensors():
    assert sv.zeros(0, 3).t().view(-1).shape == (0,)
    assert sv.tensor(1.0).view(1, 1).shape == (1, 1)
    assert sv.tensor(1.0).view(-1).shape == (1,)


def test_good_factory_calls_still_work():
    assert sv.zeros(np.int64(2), 3).shape == (2, 3)
    assert sv.ones([2, 3]).shape == (2, 3)
    assert sv.zeros(()).shape == ()
    assert sv.full((2,), sv.tensor(3)).dtype == np.int64
    assert sv.full((2,), np.float32(1.5)).numpy().tolist() == [1.5, 1.5]
    assert sv.arange(5, 0, -2).numpy().tolist() == [5, 3, 1]
    assert sv.arange(0, 0).shape == (0,)
    assert sv.tensor([True, False]).dtype == np.bool_
    assert sv.tensor([[1, 2], [3, 4]]).reshape(np.array([4])).shape == (4,)
    assert sv.zeros(2, 3).view(sv.tensor(3), 2).shape == (3, 2)
