"""Tensor basics, the backward engine, no_grad, retain_graph, and clear errors."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F


def test_creation_dtypes_and_properties():
    t = sv.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == np.float32 and t.shape == (2, 2) and t.ndim == 2 and t.device == "cpu"
    assert sv.tensor(np.zeros(3)).dtype == np.float64  # arrays keep their dtype
    assert sv.tensor([1, 2]).dtype == np.int64
    assert sv.arange(5).dtype == np.int64 and sv.arange(0.0, 1.0, 0.25).shape == (4,)
    assert sv.zeros(2, 3).shape == (2, 3) and sv.ones((4,)).numpy().sum() == 4
    assert sv.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert sv.randn_like(t).shape == t.shape and sv.zeros_like(t).dtype == t.dtype
    assert t.T.numpy().tolist() == [[1, 3], [2, 4]]
    assert t.sum().item() == 10.0
    with pytest.raises(TypeError, match="floating"):
        sv.tensor([1, 2], requires_grad=True)


def test_manual_seed_reproducible():
    sv.manual_seed(3)
    a = sv.randn(4).numpy()
    sv.manual_seed(3)
    assert np.array_equal(a, sv.randn(4).numpy())


def test_backward_accumulates_and_frees_graph():
    x = sv.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    (x * 3).sum().backward()  # accumulates into .grad
    np.testing.assert_array_equal(x.grad, [5.0, 7.0, 9.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = sv.tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.clone()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * g1)


def test_diamond_and_same_tensor_twice():
    x = sv.tensor(np.array([0.5, 1.5]), requires_grad=True)
    a = x * 2
    y = (a * a + a).sum()  # a used three times
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * 2 * x.data) + 2)


def test_no_grad_builds_no_graph():
    x = sv.tensor(np.ones(3), requires_grad=True)
    with sv.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()

    @sv.no_grad()
    def f(t):
        return t + 1
    assert f(x).grad_fn is None and sv.is_grad_enabled()


def test_deep_chain_beyond_recursion_limit():
    x = sv.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 5000], rtol=1e-9)


def test_non_leaf_grad_and_retain_grad():
    x = sv.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)


def test_non_scalar_backward_needs_grad():
    x = sv.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(np.ones((2, 2)))
    np.testing.assert_array_equal(x.grad, 2 * np.ones((2, 2)))


def test_broadcast_gradients_sum_back():
    a = sv.tensor(np.ones((2, 3, 4)), requires_grad=True)
    b = sv.tensor(np.ones((3, 1)), requires_grad=True)
    (a * b).sum().backward()
    np.testing.assert_array_equal(b.grad, np.full((3, 1), 8.0))


def test_non_contiguous_inputs_gradcheck():
    base = np.random.default_rng(0).standard_normal((4, 6))
    sv.autograd.gradcheck(lambda x: (x.exp() * x).sum(dim=0), [base[:, ::2]])
    sv.autograd.gradcheck(lambda x: x @ x.T, [base.T])


def test_max_dim_and_ties():
    x = sv.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.numpy().tolist() == [1, 0] and values.numpy().tolist() == [3.0, 2.0]
    x.amax().backward()  # one maximum of 3.0 shared by two elements: half each
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])


def test_comparisons_have_no_grad():
    x = sv.tensor(np.array([1.0, -1.0]), requires_grad=True)
    m = x > 0
    assert m.dtype == bool and not m.requires_grad
    y = sv.where(m, x, x * 0.1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 0.1])


def test_clear_errors():
    a, b = sv.randn(2, 3), sv.randn(4, 5)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match="unknown device"):
        a.to("tpu")
    with pytest.raises(ValueError, match="invalid for a tensor of shape"):
        a.reshape(7)
    with pytest.raises(ValueError, match="differ outside dim"):
        sv.cat([a, b])
    if not sv.gpu_available():
        with pytest.raises(RuntimeError, match="no usable GPU"):
            a.to("cuda")


def test_item_detach_to_dtype():
    x = sv.tensor(np.array([1.5]), requires_grad=True)
    assert x.item() == 1.5 and not x.detach().requires_grad
    y = x.to("float32")
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float64


def test_split_chunk_stack():
    x = sv.arange(10.0)
    assert [p.shape for p in x.split(4)] == [(4,), (4,), (2,)]
    assert [p.shape for p in x.chunk(2)] == [(5,), (5,)]
    assert sv.stack([x, x], dim=1).shape == (10, 2)
    with pytest.raises(ValueError, match="do not sum"):
        x.split([3, 3])


def test_functional_errors_name_shapes():
    logits = sv.randn(4, 3)
    with pytest.raises(TypeError, match="integer class-index"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        F.cross_entropy(logits, np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target shape \(5,\)"):
        F.cross_entropy(logits, np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match=r"found \[3\]"):
        F.cross_entropy(logits, np.array([0, 3, 1, 2]))
    with pytest.raises(ValueError, match=r"bias shape \(3,\) must be \(4,\)"):
        F.linear(sv.randn(2, 3), sv.randn(4, 3), sv.randn(3))
