"""Indexing, sorting and scanning ops of ``autograd/indexing.py``: hand-worked values,
dtypes and gradients, empty inputs, errors; then (with PyTorch installed) the same ops
against torch on random inputs."""
import numpy as np
import pytest

import scratchvision as sv
from scratchvision.autograd.indexing import (
    ValuesIndices,
    argsort,
    cumprod,
    cumsum,
    flip,
    gather,
    index_add,
    index_select,
    masked_fill,
    nonzero,
    prod,
    repeat,
    roll,
    scatter,
    scatter_add,
    sort,
    topk,
    unbind,
    unique,
)


def _g(t):
    """The gradient of ``t`` as an array (``.grad`` is a Tensor, or a raw array)."""
    g = t.grad
    return g.data if hasattr(g, "data") and not isinstance(g, np.ndarray) else g


def leaf(values, dtype=np.float64):
    return sv.tensor(np.asarray(values, dtype), requires_grad=True)


def backward_with(out, weights):
    """Backpropagate sum(out * weights)."""
    (out * sv.tensor(np.asarray(weights, out.dtype))).sum().backward()


def _np(t):
    return np.asarray(t.data) if hasattr(t, "data") else np.asarray(t)


# ---------------------------------------------------------------- sort / argsort / topk
def test_topk_hand_worked_ties_to_lower_index():
    x = leaf([1.0, 3.0, 3.0, 2.0, 3.0])
    r = topk(x, 2)
    assert isinstance(r, ValuesIndices) and isinstance(r, tuple)
    np.testing.assert_array_equal(_np(r.values), [3.0, 3.0])
    np.testing.assert_array_equal(_np(r.indices), [1, 2])      # ties: lower index first
    assert r.indices.dtype == np.int64 and r.values.dtype == np.float64
    backward_with(r.values, [10.0, 20.0])
    np.testing.assert_array_equal(_g(x), [0, 10, 20, 0, 0])
    v, i = topk(sv.tensor([[4, 1, 4], [0, 2, 1]]), 2, dim=1, largest=False)
    np.testing.assert_array_equal(_np(v), [[1, 4], [0, 1]])
    np.testing.assert_array_equal(_np(i), [[1, 0], [0, 2]])
    assert v.dtype == np.int64


def test_topk_big_rows_use_the_same_order():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, (3, 500)).astype(np.float32)        # many ties, partition path
    v, i = topk(x, 7, dim=1)
    order = np.argsort(-x, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(_np(i), order)
    np.testing.assert_array_equal(_np(v), np.take_along_axis(x, order, 1))


def test_sort_and_argsort_hand_worked():
    x = leaf([[2.0, 1.0, 2.0, np.nan, 0.0]])
    v, i = sort(x, dim=1)
    np.testing.assert_array_equal(_np(i), [[4, 1, 0, 2, 3]])   # NaN last, ties by index
    v, i = sort(x, descending=True)
    np.testing.assert_array_equal(_np(i), [[3, 0, 2, 1, 4]])   # NaN first, ties by index
    backward_with(v, [[1.0, 2.0, 3.0, 4.0, 5.0]])
    np.testing.assert_array_equal(_g(x), [[2, 4, 3, 1, 5]])
    a = argsort(sv.tensor([3, 1, 3, 0]), descending=True, stable=True)
    np.testing.assert_array_equal(_np(a), [0, 2, 1, 3])
    assert a.dtype == np.int64 and not a.requires_grad
    s = sort(sv.tensor(5.0))                                     # 0-d: one element
    assert s.values.shape == () and s.indices.shape == () and int(s.indices.item()) == 0


def test_sort_topk_empty():
    v, i = topk(sv.tensor(np.zeros((2, 3))), 0, dim=1)
    assert v.shape == (2, 0) and i.shape == (2, 0) and i.dtype == np.int64
    v, i = sort(sv.tensor(np.zeros((0, 4), np.float32)), dim=0)
    assert v.shape == (0, 4) and v.dtype == np.float32 and i.dtype == np.int64
    x = leaf(np.zeros((2, 0)))
    v, i = topk(x, 0)
    v.sum().backward()
    assert _g(x).shape == (2, 0)


# ---------------------------------------------------------------- nonzero / unique
def test_nonzero():
    x = sv.tensor([[0, 3, 0], [2, 0, 1]])
    nz = nonzero(x)
    np.testing.assert_array_equal(_np(nz), [[0, 1], [1, 0], [1, 2]])
    assert nz.dtype == np.int64
    rows, cols = nonzero(x, as_tuple=True)
    np.testing.assert_array_equal(_np(rows), [0, 1, 1])
    np.testing.assert_array_equal(_np(cols), [1, 0, 2])
    assert nonzero(sv.tensor(np.zeros((2, 3)))).shape == (0, 2)
    assert nonzero(sv.tensor(5)).shape == (1, 0) and nonzero(sv.tensor(0)).shape == (0, 0)
    (only,) = nonzero(sv.tensor(5), as_tuple=True)
    np.testing.assert_array_equal(_np(only), [0])


def test_unique():
    x = sv.tensor([[3, 1], [2, 3], [1, 1]])
    np.testing.assert_array_equal(_np(unique(x)), [1, 2, 3])
    out, inv, counts = unique(x, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(_np(inv), [[2, 0], [1, 2], [0, 0]])   # input's shape
    np.testing.assert_array_equal(_np(counts), [3, 1, 2])
    assert inv.dtype == np.int64 and counts.dtype == np.int64 and out.dtype == np.int64
    out, counts = unique(x, sorted=False, return_counts=True)
    np.testing.assert_array_equal(_np(out), [1, 2, 3])
    rows, inv = unique(sv.tensor([[1, 2], [1, 2], [0, 5]]), dim=0, return_inverse=True)
    np.testing.assert_array_equal(_np(rows), [[0, 5], [1, 2]])
    np.testing.assert_array_equal(_np(inv), [1, 1, 0])
    nan = unique(sv.tensor([np.nan, 1.0, np.nan]), return_counts=True)
    np.testing.assert_array_equal(_np(nan[1]), [1, 1, 1])              # each NaN distinct
    out, inv = unique(sv.tensor(3), return_inverse=True)
    assert out.shape == (1,) and inv.shape == ()
    out, inv, counts = unique(sv.tensor(np.zeros((0, 2))), dim=0, return_inverse=True,
                              return_counts=True)
    assert out.shape == (0, 2) and inv.shape == (0,) and counts.shape == (0,)
    with pytest.raises(ValueError, match="zero-sized dims other than dim 0"):
        unique(sv.tensor(np.zeros((2, 0))), dim=0)


# ---------------------------------------------------------------- masked_fill
def test_masked_fill_values_dtypes_and_gradients():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    v = leaf(0.5)
    y = masked_fill(x, sv.tensor([True, False, True]), v)       # the mask broadcasts
    np.testing.assert_array_equal(_np(y), [[0.5, 2, 0.5], [0.5, 5, 0.5]])
    backward_with(y, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(_g(x), [[0, 2, 0], [0, 5, 0]])
    assert float(_g(v)) == 1 + 3 + 4 + 6                        # every filled position
    # integer input: the value is cast (as torch: 1.7 -> 1)
    z = masked_fill(sv.tensor([0, 0, 0]), np.array([True, False, True]), 1.7)
    np.testing.assert_array_equal(_np(z), [1, 0, 1])
    assert z.dtype == np.int64
    # the input broadcasts up to the mask's shape; its gradient sums back
    a = leaf([1.0, 2.0, 3.0])
    y = masked_fill(a, np.array([[True, False, True], [False, False, False]]), 9.0)
    assert y.shape == (2, 3)
    backward_with(y, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(_g(a), [4, 7, 6])
    f32 = masked_fill(sv.tensor(np.zeros(2, np.float32)), np.array([True, False]),
                      sv.tensor(2.0, dtype=np.float64))
    assert f32.dtype == np.float32 and _np(f32)[0] == 2.0


def test_masked_fill_errors():
    x = sv.tensor(np.zeros(3))
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        masked_fill(x, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="value must be a number or a 0-d tensor"):
        masked_fill(x, np.ones(3, bool), sv.tensor([1.0]))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_fill(x, np.ones(2, bool), 1.0)


# ---------------------------------------------------------------- gather / scatter
def test_gather_hand_worked_with_repeats():
    x = leaf([[10.0, 11.0, 12.0], [20.0, 21.0, 22.0]])
    idx = sv.tensor([[2, 0], [1, 1]])
    y = gather(x, 1, idx)
    np.testing.assert_array_equal(_np(y), [[12, 10], [21, 21]])
    assert y.dtype == np.float64
    backward_with(y, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(_g(x), [[2, 0, 1], [0, 7, 0]])  # 3 + 4: accumulated
    # index smaller than the input in the other dim; int32 index accepted
    y = gather(sv.tensor(np.arange(12).reshape(3, 4)), 0, np.array([[2, 0]], np.int32))
    np.testing.assert_array_equal(_np(y), [[8, 1]])
    assert y.dtype == np.int64
    assert gather(sv.tensor(np.zeros((3, 2))), 0, np.zeros((0, 2), np.int64)).shape == (0, 2)


def test_scatter_hand_worked_last_writer_gets_the_gradient():
    x = leaf(np.arange(6.0).reshape(2, 3))
    src = leaf([[10.0, 20.0], [30.0, 40.0]])
    idx = np.array([[2, 2], [0, 1]])                  # row 0 writes column 2 twice
    y = scatter(x, 1, idx, src)
    np.testing.assert_array_equal(_np(y), [[0, 1, 20], [30, 40, 5]])
    backward_with(y, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(_g(x), [[1, 2, 0], [0, 0, 6]])   # overwritten: zero
    np.testing.assert_array_equal(_g(src), [[0, 3], [4, 5]])       # 10 was overwritten
    y = scatter(sv.tensor(np.zeros(3)), 0, sv.tensor([1]), 2.5)    # torch: src a number
    np.testing.assert_array_equal(_np(y), [0, 2.5, 0])
    y = scatter(sv.tensor(np.zeros(3, np.int64)), 0, [1], value=2.5)
    np.testing.assert_array_equal(_np(y), [0, 2, 0])
    two_three = sv.tensor(np.array([2.0, 3.0]))
    y = scatter(sv.tensor(np.ones(3)), 0, [1, 1], two_three, reduce="multiply")
    np.testing.assert_array_equal(_np(y), [1, 6, 1])
    x = leaf(np.ones(3))
    y = scatter(x, 0, [1, 1], two_three, reduce="add")
    np.testing.assert_array_equal(_np(y), [1, 6, 1])
    y.sum().backward()
    np.testing.assert_array_equal(_g(x), [1, 1, 1])
    x = leaf(np.ones(3))
    with pytest.raises(RuntimeError, match="not differentiable"):
        scatter(x, 0, [1], two_three[:1], reduce="multiply").sum().backward()


def test_scatter_add_hand_worked():
    x = leaf(np.zeros((2, 3)))
    src = leaf([[1.0, 2.0, 9.0], [3.0, 4.0, 9.0], [9.0, 9.0, 9.0]])   # larger than index
    idx = sv.tensor([[2, 0], [1, 1]])
    y = scatter_add(x, 1, idx, src)
    np.testing.assert_array_equal(_np(y), [[2, 0, 1], [0, 7, 0]])
    backward_with(y, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(_g(x), [[1, 2, 3], [4, 5, 6]])
    # each used source element gets gy at its target; the unused ones get zero
    np.testing.assert_array_equal(_g(src), [[3, 1, 0], [5, 5, 0], [0, 0, 0]])
    with pytest.raises(TypeError, match="src dtype float32 must match input dtype float64"):
        scatter_add(x, 1, idx, np.ones((2, 2), np.float32))


def test_index_select_and_index_add():
    x = leaf(np.arange(6.0).reshape(3, 2))
    y = index_select(x, 0, sv.tensor([2, 0, 2]))
    np.testing.assert_array_equal(_np(y), [[4, 5], [0, 1], [4, 5]])
    y.sum().backward()
    np.testing.assert_array_equal(_g(x), [[1, 1], [0, 0], [2, 2]])   # row 2 twice
    assert index_select(x, 1, np.array(1)).shape == (3, 1)              # 0-d index
    assert index_select(x, 0, np.zeros(0, np.int64)).shape == (0, 2)
    a, s = leaf(np.zeros((3, 2))), leaf([[1.0, 2.0], [3.0, 4.0]])
    y = index_add(a, 0, [1, 1], s, alpha=2.0)
    np.testing.assert_array_equal(_np(y), [[0, 0], [8, 12], [0, 0]])
    backward_with(y, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(_g(a), [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(_g(s), [[6, 8], [6, 8]])


def test_gather_scatter_errors():
    x = sv.tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="index 3 is out of bounds for dim 1 with size 3"):
        gather(x, 1, [[3]])
    with pytest.raises(IndexError, match="index -1 is out of bounds"):
        index_select(x, 0, [-1])
    with pytest.raises(TypeError, match="integer dtype"):
        gather(x, 0, np.zeros((1, 1)))
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        gather(x, 2, [[0]])
    with pytest.raises(IndexError, match="dim -3 is out of range"):
        index_select(x, -3, [0])
    with pytest.raises(ValueError, match="index must have as many dims as input"):
        scatter_add(x, 0, [0], np.array([1.0]))
    with pytest.raises(ValueError, match="pass src or value, not both"):
        scatter(x, 0, [[0]], sv.tensor([[1.0]]), value=2.0)
    with pytest.raises(ValueError, match="reduce must be"):
        scatter(x, 0, [[0]], 1.0, reduce="mean")
    with pytest.raises(ValueError, match=r"src must have shape \(2, 1\)"):
        index_add(x, 1, [0], sv.tensor(np.ones((2, 2))))


# ---------------------------------------------------------------- cumsum / cumprod / prod
def test_cumsum_cumprod():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = cumsum(x, 1)
    np.testing.assert_array_equal(_np(y), [[1, 3, 6], [4, 9, 15]])
    backward_with(y, [[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(_g(x), [[6, 5, 3], [3, 2, 1]])   # reversed cumsum
    assert cumsum(sv.tensor(np.array([1, 2], np.int32)), 0).dtype == np.int64
    assert cumsum(sv.tensor([True, True]), 0).dtype == np.int64
    assert cumsum(sv.tensor([1, 2]), 0, dtype=np.float32).dtype == np.float32
    assert cumsum(sv.tensor(np.zeros((0, 3))), 0).shape == (0, 3)
    assert cumsum(sv.tensor(3.0), 0).shape == ()
    # cumprod with zeros: gx_k = P_k * S_k (see indexing.Cumprod), torch gives the same
    z = leaf([2.0, 0.0, 3.0, 0.0])
    y = cumprod(z, 0)
    np.testing.assert_array_equal(_np(y), [2, 0, 0, 0])
    backward_with(y, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(_g(z), [1, 22, 0, 0])


def test_prod_with_zeros():
    a = leaf([[2.0, 0.0, 3.0], [1.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    y = prod(a, 1)
    np.testing.assert_array_equal(_np(y), [0, 0, 6])
    backward_with(y, [1.0, 2.0, 3.0])
    # row 0: one zero -> only the zero gets the product of the others (2 * 3);
    # row 1: two zeros -> nothing; row 2: prod / x
    np.testing.assert_array_equal(_g(a), [[0, 6, 0], [0, 0, 0], [18, 9, 6]])
    b = leaf([[2.0, 3.0], [0.5, 4.0]])
    y = prod(b)
    assert y.shape == () and float(y.item()) == 12.0
    y.backward()
    np.testing.assert_allclose(_g(b), [[6, 4], [24, 3]])
    assert prod(sv.tensor(np.array([1, 2], np.int32))).dtype == np.int64
    assert prod(sv.tensor([[True, True]]), 1).dtype == np.int64
    assert prod(b, 0, keepdim=True).shape == (1, 2)
    assert float(prod(sv.tensor(np.zeros(0))).item()) == 1.0
    with pytest.raises(TypeError, match="dim must be one int"):
        prod(b, (0, 1))


# ---------------------------------------------------------------- repeat / flip / roll / unbind
def test_repeat_flip_roll_unbind():
    x = leaf([[1.0, 2.0, 3.0]])
    y = repeat(x, 2, 1, 2)                                   # a new leading dim, np.tile
    assert y.shape == (2, 1, 6)
    np.testing.assert_array_equal(_np(y)[1, 0], [1, 2, 3, 1, 2, 3])
    y.sum().backward()
    np.testing.assert_array_equal(_g(x), [[4, 4, 4]])
    assert repeat(sv.tensor([1, 2]), (0,)).shape == (0,)
    with pytest.raises(ValueError, match="can not be smaller than the number of dims"):
        repeat(sv.tensor(np.zeros((2, 3))), 2)
    with pytest.raises(ValueError, match="non-negative"):
        repeat(sv.tensor([1]), -1)
    with pytest.raises(TypeError, match="missing"):
        repeat(sv.tensor(3))
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = flip(x, (0, 1))
    np.testing.assert_array_equal(_np(y), [[5, 4, 3], [2, 1, 0]])
    backward_with(y, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(_g(x), [[5, 4, 3], [2, 1, 0]])
    np.testing.assert_array_equal(_np(flip(x, 1)), [[2, 1, 0], [5, 4, 3]])
    with pytest.raises(ValueError, match="more than once"):
        flip(x, (0, 0))
    np.testing.assert_array_equal(_np(roll(sv.tensor(np.arange(6).reshape(2, 3)), 1)),
                                  [[5, 0, 1], [2, 3, 4]])
    np.testing.assert_array_equal(_np(roll(sv.tensor(np.arange(6).reshape(2, 3)), (1, -1),
                                           (0, 1))), [[4, 5, 3], [1, 2, 0]])
    with pytest.raises(ValueError, match="shifts and dims must align"):
        roll(x, (1, 2), (0,))
    x = leaf(np.arange(6.0).reshape(2, 3))
    cols = unbind(x, 1)
    assert len(cols) == 3 and cols[0].shape == (2,)
    (cols[0] * 2 + cols[2]).sum().backward()
    np.testing.assert_array_equal(_g(x), [[2, 0, 1], [2, 0, 1]])
    with pytest.raises(IndexError):
        unbind(sv.tensor(3.0))


def test_no_graph_under_no_grad_and_for_ints():
    x = leaf([3.0, 1.0, 2.0])
    with sv.no_grad():
        assert not topk(x, 2).values.requires_grad
    assert topk(x, 2).values.requires_grad and not topk(x, 2).indices.requires_grad
    assert not gather(sv.tensor([1, 2]), 0, [1]).requires_grad


# ---------------------------------------------------------------- against PyTorch
def _torch():
    return pytest.importorskip("torch")


def _check(sv_out, t_out, rtol=1e-12):
    t_np = t_out.detach().numpy()
    got = _np(sv_out)
    assert got.shape == t_np.shape, (got.shape, t_np.shape)
    assert got.dtype == t_np.dtype, (got.dtype, t_np.dtype)
    np.testing.assert_allclose(got, t_np, rtol=rtol, atol=1e-12)


def _grads_match(sv_leaves, t_leaves, sv_out, t_out, rng):
    w = rng.standard_normal(t_out.shape)
    (sv_out * sv.tensor(w.astype(_np(sv_out).dtype))).sum().backward()
    (t_out * _torch().tensor(w, dtype=t_out.dtype)).sum().backward()
    for a, b in zip(sv_leaves, t_leaves):
        np.testing.assert_allclose(_g(a), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def _pair(a):
    torch = _torch()
    return leaf(a), torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.peers
def test_sort_topk_match_torch(rng):
    torch = _torch()
    for _ in range(10):
        a = rng.permutation(60).reshape(3, 4, 5) / 7.0                 # no ties
        dim = int(rng.integers(-3, 3))
        for desc in (False, True):
            x, t = _pair(a)
            v, i = sort(x, dim, descending=desc)
            tv, ti = torch.sort(t, dim, descending=desc)
            _check(v, tv)
            _check(i, ti)
            _grads_match([x], [t], v, tv, rng)
        k = int(rng.integers(0, a.shape[dim] + 1))
        for largest in (True, False):
            x, t = _pair(a)
            v, i = topk(x, k, dim, largest=largest)
            tv, ti = torch.topk(t, k, dim, largest=largest)
            _check(v, tv)
            _check(i, ti)
            _grads_match([x], [t], v, tv, rng)
    ints = rng.integers(0, 3, (4, 9))                                   # ties: stable sort
    for desc in (False, True):
        _check(argsort(sv.tensor(ints), 1, descending=desc),
               torch.argsort(torch.tensor(ints), dim=1, descending=desc, stable=True))
    big = rng.standard_normal((2, 1000))                                # partition path
    v, i = topk(sv.tensor(big), 9)
    tv, ti = torch.topk(torch.tensor(big), 9)
    _check(v, tv)
    _check(i, ti)


@pytest.mark.peers
def test_nonzero_unique_match_torch(rng):
    torch = _torch()
    for shape in [(5,), (3, 4), (2, 3, 4), (), (0, 3)]:
        a = rng.integers(0, 3, shape) * (rng.random(shape) > 0.4)
        _check(nonzero(sv.tensor(a)), torch.nonzero(torch.tensor(a)))
        for mine, theirs in zip(nonzero(sv.tensor(a), as_tuple=True),
                                torch.nonzero(torch.tensor(a), as_tuple=True)):
            _check(mine, theirs)
        mine = unique(sv.tensor(a), return_inverse=True, return_counts=True)
        theirs = torch.unique(torch.tensor(a), return_inverse=True, return_counts=True)
        for m, t in zip(mine, theirs):
            _check(m, t)
    a = rng.integers(0, 2, (6, 3))
    for dim in (0, 1):
        mine = unique(sv.tensor(a), dim=dim, return_inverse=True, return_counts=True)
        theirs = torch.unique(torch.tensor(a), dim=dim, return_inverse=True, return_counts=True)
        for m, t in zip(mine, theirs):
            _check(m, t)


@pytest.mark.peers
def test_masked_fill_matches_torch(rng):
    torch = _torch()
    for xshape, mshape in [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1))]:
        a = rng.standard_normal(xshape)
        m = rng.random(mshape) > 0.5
        x, t = _pair(a)
        v, tv = leaf(0.25), torch.tensor(0.25, dtype=torch.float64, requires_grad=True)
        y, ty = masked_fill(x, m, v), torch.masked_fill(t, torch.tensor(m), tv)
        _check(y, ty)
        _grads_match([x, v], [t, tv], y, ty, rng)


@pytest.mark.peers
def test_gather_scatter_match_torch(rng):
    torch = _torch()
    for _ in range(12):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(s) for s in rng.integers(1, 5, ndim))
        dim = int(rng.integers(0, ndim))
        ishape = [int(rng.integers(1, s + 1)) for s in shape]
        ishape[dim] = int(rng.integers(1, 2 * shape[dim] + 1))
        index = rng.integers(0, shape[dim], ishape)
        a = rng.standard_normal(shape)
        x, t = _pair(a)
        y, ty = gather(x, dim, index), torch.gather(t, dim, torch.tensor(index))
        _check(y, ty)
        _grads_match([x], [t], y, ty, rng)
        # scatter_add: src of index's shape (torch's backward needs that)
        src = rng.standard_normal(ishape)
        x, t = _pair(a)
        s, ts = _pair(src)
        y = scatter_add(x, dim, index, s)
        ty = torch.scatter_add(t, dim, torch.tensor(index), ts)
        _check(y, ty, rtol=1e-12)
        _grads_match([x, s], [t, ts], y, ty, rng)
        # scatter with distinct targets per line (torch's result is unspecified otherwise)
        perm = np.argsort(rng.random(shape), axis=dim)
        uniq = np.take(perm, np.arange(min(ishape[dim], shape[dim])), axis=dim)
        uniq = uniq[tuple(slice(0, n) if d != dim else slice(None)
                          for d, n in enumerate(ishape))]
        src = rng.standard_normal(uniq.shape)
        x, t = _pair(a)
        s, ts = _pair(src)
        y = scatter(x, dim, uniq, s)
        ty = torch.scatter(t, dim, torch.tensor(uniq), ts)
        _check(y, ty)
        _grads_match([x, s], [t, ts], y, ty, rng)
        # index_select / index_add along dim
        rows = rng.integers(0, shape[dim], int(rng.integers(0, 6)))
        x, t = _pair(a)
        y, ty = index_select(x, dim, rows), torch.index_select(t, dim, torch.tensor(rows))
        _check(y, ty)
        _grads_match([x], [t], y, ty, rng)
        x, t = _pair(a)
        s, ts = _pair(rng.standard_normal(ty.shape))
        y = index_add(x, dim, rows, s, alpha=0.5)
        ty = torch.index_add(t, dim, torch.tensor(rows), ts, alpha=0.5)
        _check(y, ty)
        _grads_match([x, s], [t, ts], y, ty, rng)


@pytest.mark.peers
def test_scans_prod_and_shapes_match_torch(rng):
    torch = _torch()
    a = rng.standard_normal((3, 4, 5))
    a[0, 1, 2] = 0.0                                  # zeros: one in a slice, two in another
    a[1, 2, :2] = 0.0
    for dim in (0, 1, 2, -1):
        for fn_sv, fn_t in [(cumsum, torch.cumsum), (cumprod, torch.cumprod)]:
            x, t = _pair(a)
            y, ty = fn_sv(x, dim), fn_t(t, dim)
            _check(y, ty, rtol=1e-10)
            _grads_match([x], [t], y, ty, rng)
        x, t = _pair(a)
        y, ty = prod(x, dim), torch.prod(t, dim)
        _check(y, ty, rtol=1e-10)
        _grads_match([x], [t], y, ty, rng)
    x, t = _pair(a[1:] + 2.0)
    y, ty = prod(x), torch.prod(t)
    _check(y, ty, rtol=1e-10)
    _grads_match([x], [t], y, ty, rng)
    ints = rng.integers(-3, 4, (3, 4)).astype(np.int32)
    _check(cumsum(sv.tensor(ints), 1), torch.cumsum(torch.tensor(ints), 1))
    _check(prod(sv.tensor(ints), 0), torch.prod(torch.tensor(ints), 0))
    b = rng.standard_normal((2, 3))
    for sizes in [(2, 1), (1, 3), (2, 2, 2), (0, 1)]:
        x, t = _pair(b)
        y, ty = repeat(x, *sizes), t.repeat(*sizes)
        _check(y, ty)
        _grads_match([x], [t], y, ty, rng)
    for dims in [(0,), (1,), (0, 1), (-1,)]:
        x, t = _pair(b)
        y, ty = flip(x, dims), torch.flip(t, dims)
        _check(y, ty)
        _grads_match([x], [t], y, ty, rng)
    for shifts, dims in [(1, None), (-4, None), ((1, 2), (0, 1)), (2, 1)]:
        x, t = _pair(b)
        y, ty = roll(x, shifts, dims), torch.roll(t, shifts, dims)
        _check(y, ty)
        _grads_match([x], [t], y, ty, rng)
    x, t = _pair(b)
    for mine, theirs in zip(unbind(x, 1), torch.unbind(t, 1)):
        _check(mine, theirs)
