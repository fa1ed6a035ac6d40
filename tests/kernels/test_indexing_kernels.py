"""Indexing kernels: gather, scatter, scatter_add, index_select, index_add, masked_fill
(reference vs numpy vs Numba, bit for bit) and the stable sorts / top-k."""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvision.kernels import indexing as K
from scratchvision.kernels.indexing import cpu, sorting
from tests.helpers import non_contiguous

IMPLS = ["reference", "numpy", "cpu"]
DTYPES = [np.float32, np.float64, np.int64]


def _values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-50, 50, shape).astype(dtype)


# ---------------------------------------------------------------- N-d oracles (torch docs)
def naive_gather(x, dim, index):
    y = np.empty(index.shape, x.dtype)
    for pos in np.ndindex(*index.shape):      # out[pos] = x[pos with pos[dim] = index[pos]]
        src = list(pos)
        src[dim] = index[pos]
        y[pos] = x[tuple(src)]
    return y


def naive_scatter(x, dim, index, src, add):
    y = x.copy()
    for pos in np.ndindex(*index.shape):      # row-major order: the last write wins
        dst = list(pos)
        dst[dim] = index[pos]
        y[tuple(dst)] = y[tuple(dst)] + src[pos] if add else src[pos]
    return y


def random_case(rng, dtype, ndim=None, dim=None, bigger=True):
    """x, dim, index (no larger than x except along dim), src (at least index's shape)."""
    ndim = ndim or int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 5, ndim))
    dim = int(rng.integers(0, ndim)) if dim is None else dim
    ishape = [int(rng.integers(1, s + 1)) for s in shape]
    ishape[dim] = int(rng.integers(1, 2 * shape[dim] + 2 if bigger else shape[dim] + 1))
    index = rng.integers(0, shape[dim], ishape)
    sshape = [s + int(rng.integers(0, 2)) for s in ishape]
    return _values(rng, shape, dtype), dim, index, _values(rng, sshape, dtype)


# ---------------------------------------------------------------- 1. hand-worked
def test_hand_worked():
    x = np.array([[10, 11, 12],
                  [20, 21, 22]])
    index = np.array([[2, 0],     # row 0 reads x[0, 2], x[0, 0]
                      [1, 1]])    # row 1 reads x[1, 1] twice
    src = np.array([[1, 2],
                    [3, 4]])
    zeros = np.zeros((2, 3), np.int64)
    for impl in IMPLS:
        np.testing.assert_array_equal(K.gather(x, 1, index, impl=impl), [[12, 10], [21, 21]])
        # y[0, 2] += 1, y[0, 0] += 2; y[1, 1] += 3 + 4
        np.testing.assert_array_equal(K.scatter_add(zeros, 1, index, src, impl=impl),
                                      [[2, 0, 1], [0, 7, 0]])
        # y[1, 1] is written twice: the later source (4) wins
        np.testing.assert_array_equal(K.scatter(zeros, 1, index, src, impl=impl),
                                      [[2, 0, 1], [0, 4, 0]])
        np.testing.assert_array_equal(K.scatter(zeros, 1, index, 9, impl=impl),
                                      [[9, 0, 9], [0, 9, 0]])
        # columns 2, 2, 0 of x; then column 0 of src goes to column 2 twice
        np.testing.assert_array_equal(K.index_select(x, 1, np.array([2, 2, 0]), impl=impl),
                                      [[12, 12, 10], [22, 22, 20]])
        np.testing.assert_array_equal(K.index_add(zeros, 1, np.array([2, 2]), src, impl=impl),
                                      [[0, 0, 3], [0, 0, 7]])
        np.testing.assert_array_equal(K.index_select(x, 0, np.array(1), impl=impl),
                                      [[20, 21, 22]])
        mask = np.array([True, False, True])        # broadcast over the rows
        np.testing.assert_array_equal(K.masked_fill(x, mask, -1, impl=impl),
                                      [[-1, 11, -1], [-1, 21, -1]])


def test_gather_index_smaller_or_larger_than_input():
    x = np.arange(12.0).reshape(3, 4)
    # index (2, 2) along dim 0: only columns 0..1 of x are addressed
    idx = np.array([[2, 0], [1, 2]])
    for impl in IMPLS:
        np.testing.assert_array_equal(K.gather(x, 0, idx, impl=impl), [[8, 1], [4, 9]])
        # along dim 1 the index may be longer than x's dim
        np.testing.assert_array_equal(K.gather(x[:1], 1, np.array([[3, 3, 0, 1, 2]]),
                                               impl=impl), [[3, 3, 0, 1, 2]])
        # scatter_add into a region of x: the rest is copied unchanged
        got = K.scatter_add(x, 0, idx, np.ones((3, 3)), impl=impl)
        # column 0 sends to rows 2, 1; column 1 to rows 0, 2
        np.testing.assert_array_equal(got, x + [[0, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]])


# ---------------------------------------------------------------- 2. versions vs reference
@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_scatter_match_reference_and_naive(dtype):
    rng = np.random.default_rng(0)
    for trial in range(25):
        x, dim, index, src = random_case(rng, dtype)
        if trial % 3 == 1:     # strided (non-contiguous) inputs
            x, index, src = non_contiguous(x), non_contiguous(index), non_contiguous(src)
        want = naive_gather(x, dim, index)
        before = x.copy()
        for impl in IMPLS:
            got = K.gather(x, dim, index, impl=impl)
            assert got.dtype == x.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{impl} {x.shape} {dim}")
            for op, add in (("scatter_add", True), ("scatter", False)):
                got = getattr(K, op)(x, dim, index, src, impl=impl)
                ref = naive_scatter(x, dim, index, src, add)
                assert got.dtype == x.dtype and got.shape == x.shape
                # same summation order everywhere: exactly equal, floats too
                np.testing.assert_array_equal(got, ref, err_msg=f"{impl} {op}")
        np.testing.assert_array_equal(x, before)      # the input is never modified


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_select_add_match_reference(dtype):
    rng = np.random.default_rng(1)
    for trial in range(25):
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(s) for s in rng.integers(1, 5, ndim))
        dim = int(rng.integers(0, ndim))
        x = _values(rng, shape, dtype)
        index = rng.integers(0, shape[dim], int(rng.integers(0, 9)))
        if trial % 3 == 1:
            x, index = non_contiguous(x), non_contiguous(index)
        want = np.take(x, index, axis=dim)
        src = _values(rng, want.shape, dtype)
        added = x.copy()
        for j, n in enumerate(index):            # the oracle: slices added in index order
            sl = (slice(None),) * dim
            added[sl + (n,)] = added[sl + (n,)] + src[sl + (j,)]
        for impl in IMPLS:
            got = K.index_select(x, dim, index, impl=impl)
            assert got.dtype == x.dtype
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(K.index_add(x, dim, index, src, impl=impl), added)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_, np.uint8])
def test_masked_fill_matches_reference(dtype):
    rng = np.random.default_rng(2)
    for trial in range(10):
        shape = tuple(int(s) for s in rng.integers(0, 5, int(rng.integers(1, 4))))
        x = _values(rng, shape, dtype) if dtype != np.bool_ else rng.random(shape) > 0.5
        mshape = tuple(1 if rng.random() < 0.3 else s for s in shape)[int(rng.integers(0, 2)):]
        mask = rng.random(mshape) > 0.5
        if trial % 2:
            x = non_contiguous(x)
        value = 3 if dtype != np.bool_ else True
        want = np.where(mask, np.asarray(value, dtype), x)
        for impl in IMPLS:
            got = K.masked_fill(x, mask, value, impl=impl)
            assert got.dtype == x.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


@given(seed=st.integers(0, 2**31), ndim=st.integers(1, 4),
       dtype=st.sampled_from(DTYPES))
def test_scatter_add_property(seed, ndim, dtype):
    """gather(scatter_add(0, index, src)) sums, per target, the sources that landed there."""
    rng = np.random.default_rng(seed)
    x, dim, index, src = random_case(rng, dtype, ndim=ndim, bigger=True)
    got = K.scatter_add(np.zeros_like(x), dim, index, src)
    np.testing.assert_array_equal(got, K.scatter_add(np.zeros_like(x), dim, index, src,
                                                     impl="reference"))
    # the total is conserved
    total = src[tuple(slice(0, s) for s in index.shape)].sum()
    np.testing.assert_allclose(got.sum(), total, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- parallel splits
@pytest.fixture
def parallel_always(monkeypatch):
    """Run the Numba parallel paths (buckets too, small ones) even on tiny inputs."""
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 1)
    monkeypatch.setattr(cpu, "BUCKET_MIN_THREADS", 1)
    monkeypatch.setattr(cpu, "BUCKET_SHIFT", (2, 4))


@pytest.mark.parametrize("shape,dim,plan", [
    ((40, 7, 3), 0, "tasks"),       # O = 1, I = 21: column blocks
    ((30, 20), 1, "tasks"),         # O = 30 rows
    ((500,), 0, "buckets"),         # one line: counting sort by target bucket
    ((2, 300), 1, "buckets"),       # O * I = 2 lines
    ((3, 50, 1), 1, "buckets"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_parallel_splits_give_reference_bits(parallel_always, shape, dim, plan, dtype):
    rng = np.random.default_rng(3)
    n_outer, n_inner = K._outer_inner(shape, dim)
    assert cpu._plan(n_outer, n_inner, 10**6)[0] == plan
    x = _values(rng, shape, dtype)
    ishape = list(shape)
    ishape[dim] *= 3
    index = rng.integers(0, shape[dim], ishape)
    index.reshape(-1)[::7] = 0                    # a hot target: many sources on one element
    src = _values(rng, ishape, dtype)
    for op in ("scatter_add", "scatter"):
        ref = getattr(K, op)(x, dim, index, src, impl="reference")
        np.testing.assert_array_equal(getattr(K, op)(x, dim, index, src, impl="cpu"), ref)
    rows = rng.integers(0, shape[dim], 3 * shape[dim])
    sel = K.index_select(x, dim, rows, impl="reference")
    np.testing.assert_array_equal(K.index_select(x, dim, rows, impl="cpu"), sel)
    np.testing.assert_array_equal(K.gather(x, dim, index, impl="cpu"),
                                  K.gather(x, dim, index, impl="reference"))
    s2 = _values(rng, sel.shape, dtype)
    np.testing.assert_array_equal(K.index_add(x, dim, rows, s2, impl="cpu"),
                                  K.index_add(x, dim, rows, s2, impl="reference"))
    mask = rng.random(shape) > 0.5
    np.testing.assert_array_equal(K.masked_fill(x, mask, 7, impl="cpu"),
                                  K.masked_fill(x, mask, 7, impl="reference"))


@pytest.mark.parametrize("bucket_min_threads", [1, 10**6])     # buckets forced / never
def test_scatter_add_is_deterministic_across_runs_and_threads(monkeypatch, bucket_min_threads):
    """float32 sums with many collisions: the same bits every run, thread count, split and
    version (NumPy's add.at sums in the same order)."""
    monkeypatch.setattr(cpu, "BUCKET_MIN_THREADS", bucket_min_threads)
    rng = np.random.default_rng(4)
    n = 1 << 17                                         # above PARALLEL_MIN
    index = rng.integers(0, 1000, n)
    src = (rng.standard_normal(n) * 1e3).astype(np.float32)
    zeros = np.zeros(1000, np.float32)
    first = K.scatter_add(zeros, 0, index, src, impl="cpu")
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = K.scatter_add(zeros, 0, index, src, impl="cpu")
    finally:
        numba.set_num_threads(threads)
    for _ in range(3):
        np.testing.assert_array_equal(K.scatter_add(zeros, 0, index, src, impl="cpu"), first)
    np.testing.assert_array_equal(single, first)
    np.testing.assert_array_equal(K.scatter_add(zeros, 0, index, src, impl="numpy"), first)
    # gather's backward shape: many rows, one column each
    idx2 = rng.integers(0, 91, (8000, 1))
    g = rng.standard_normal((8000, 1)).astype(np.float32)
    a = K.scatter_add(np.zeros((8000, 91), np.float32), 1, idx2, g, impl="cpu")
    np.testing.assert_array_equal(a, K.scatter_add(np.zeros((8000, 91), np.float32), 1, idx2,
                                                   g, impl="numpy"))


# ---------------------------------------------------------------- 4. edge cases, errors
def test_empty_inputs():
    for impl in IMPLS:
        x = np.arange(6.0).reshape(2, 3)
        e = K.gather(x, 1, np.zeros((2, 0), np.int64), impl=impl)
        assert e.shape == (2, 0) and e.dtype == x.dtype
        np.testing.assert_array_equal(K.scatter_add(x, 0, np.zeros((0, 3), np.int64),
                                                    np.zeros((0, 3)), impl=impl), x)
        assert K.index_select(x, 1, np.zeros(0, np.int64), impl=impl).shape == (2, 0)
        assert K.index_select(np.zeros((0, 3)), 1, np.array([2]), impl=impl).shape == (0, 1)
        np.testing.assert_array_equal(K.index_add(x, 0, np.zeros(0, np.int64),
                                                  np.zeros((0, 3)), impl=impl), x)
        assert K.masked_fill(np.zeros((0, 3)), np.ones(3, bool), 1.0, impl=impl).shape == (0, 3)
        assert K.gather(np.zeros((0, 3)), 0, np.zeros((0, 3), np.int64),
                        impl=impl).shape == (0, 3)
    # 0-d arrays count as 1-d
    assert K.gather(np.array(5.0), 0, np.array(0)).shape == ()
    np.testing.assert_array_equal(K.gather(np.array(5.0), 0, np.array([0, 0])), [5.0, 5.0])
    assert K.index_select(np.array(5.0), 0, np.array([0])).shape == ()
    assert K.scatter(np.array(5.0), 0, np.array(0), np.array(2.0)) == 2.0


def test_bool_and_float16_fall_back_to_numpy():
    x = np.array([True, False, False])
    np.testing.assert_array_equal(K.gather(x, 0, np.array([1, 0])), [False, True])
    np.testing.assert_array_equal(K.scatter_add(x, 0, np.array([1, 1]), np.array([True, True])),
                                  [True, True, False])
    with pytest.raises(TypeError, match="impl='cpu' does not support dtype bool"):
        K.scatter_add(x, 0, np.array([1]), np.array([True]), impl="cpu")
    h = np.arange(4, dtype=np.float16)
    assert K.gather(h, 0, np.array([3, 1])).dtype == np.float16
    with pytest.raises(TypeError, match="float16"):
        K.gather(h, 0, np.array([3]), impl="cpu")


def test_bad_input_raises_clear_errors():
    x = np.zeros((2, 3))
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dim 1 with size 3 "
                                         r"\(input shape \(2, 3\)\)"):
        K.gather(x, 1, np.array([[0, 3]]))
    with pytest.raises(IndexError, match="index -1 is out of bounds"):
        K.scatter_add(x, 0, np.array([[-1]]), np.ones((1, 1)))
    with pytest.raises(IndexError, match="index 2 is out of bounds for dim 0 with size 2"):
        K.index_select(x, 0, np.array([0, 2]))
    with pytest.raises(IndexError, match="out of bounds"):
        K.index_add(x, 1, np.array([5]), np.ones((2, 1)))
    with pytest.raises(TypeError, match="index must have an integer dtype"):
        K.gather(x, 1, np.array([[0.0]]))
    with pytest.raises(TypeError, match="integer dtype"):
        K.index_select(x, 0, np.array([True]))
    with pytest.raises(IndexError, match=r"dim 2 is out of range for an input of shape "
                                         r"\(2, 3\) \(expected in \[-2, 1\]\)"):
        K.gather(x, 2, np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="index must have as many dims as input"):
        K.gather(x, 0, np.array([0]))
    with pytest.raises(ValueError, match=r"index shape \(3, 1\) is larger than input shape "
                                         r"\(2, 3\) in dim 0 \(only dim 1 may be larger\)"):
        K.gather(x, 1, np.zeros((3, 1), np.int64))
    with pytest.raises(ValueError, match=r"larger than src shape"):
        K.scatter_add(x, 0, np.zeros((1, 3), np.int64), np.ones((1, 2)))
    with pytest.raises(TypeError, match="src dtype float32 must match input dtype float64"):
        K.scatter(x, 0, np.zeros((1, 1), np.int64), np.ones((1, 1), np.float32))
    with pytest.raises(IndexError, match="index must be 0-d or 1-D"):
        K.index_select(x, 0, np.zeros((1, 1), np.int64))
    with pytest.raises(ValueError, match=r"src must have shape \(2, 2\)"):
        K.index_add(x, 1, np.array([0, 1]), np.ones((2, 3)))
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        K.masked_fill(x, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        K.masked_fill(x, np.ones(2, bool), 1.0)
    with pytest.raises(ValueError, match="impl must be one of"):
        K.gather(x, 0, np.zeros((1, 1), np.int64), impl="fast")


# ---------------------------------------------------------------- sorting, top-k
def _oracle_order(row, descending):
    """Python's sorted with the documented total order: NaN largest, ties by index."""
    def key(i):
        v = row[i]
        big = np.isnan(v) if np.asarray(v).dtype.kind == "f" else False
        return ((not big, -v if not big else 0) if descending else (big, v if not big else 0), i)
    return sorted(range(len(row)), key=key)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8, np.bool_])
def test_argsort_is_stable_both_ways(descending, dtype):
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.integers(0, 4, (3, 17)).astype(dtype)
        if np.dtype(dtype).kind == "f":
            x[rng.random(x.shape) < 0.15] = np.nan
        idx = sorting.argsort(x, 1, descending)
        assert idx.dtype == np.int64
        for r in range(3):
            np.testing.assert_array_equal(idx[r], _oracle_order(x[r].tolist(), descending))
        v, i = sorting.sort(x.T, 0, descending)       # along dim 0 of the transpose
        np.testing.assert_array_equal(i, idx.T)
        np.testing.assert_array_equal(v, np.take_along_axis(x.T, idx.T, 0))


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_topk_partition_path_equals_sort_path(monkeypatch, largest, dtype):
    rng = np.random.default_rng(6)
    for trial in range(20):
        n = int(rng.integers(1, 300))
        x = rng.integers(0, 6 if trial % 2 else 1000, (3, n)).astype(dtype)   # many ties
        axis = int(rng.integers(0, 2))
        x = x if axis == 1 else np.ascontiguousarray(x.T)
        k = int(rng.integers(0, n + 1))
        monkeypatch.setattr(sorting, "PARTITION_MIN", 10**9)        # always sort
        v_sort, i_sort = sorting.topk(x, k, axis, largest)
        monkeypatch.setattr(sorting, "PARTITION_MIN", 1)
        monkeypatch.setattr(sorting, "PARTITION_RATIO", 1)          # partition when k > 0
        v_part, i_part = sorting.topk(x, k, axis, largest)
        np.testing.assert_array_equal(i_part, i_sort)
        np.testing.assert_array_equal(v_part, v_sort)
        assert i_part.dtype == np.int64 and v_part.dtype == x.dtype
        # the first k of the stable sort
        order = sorting.argsort(x, axis, descending=largest)
        np.testing.assert_array_equal(i_sort, np.take(order, np.arange(k), axis=axis))


def test_topk_nan_is_largest_and_k_checked():
    x = np.array([1.0, np.nan, 0.0, 2.0] * 20)
    v, i = sorting.topk(x, 2, 0, True)
    np.testing.assert_array_equal(i, [1, 5])
    assert np.isnan(v).all()
    v, i = sorting.topk(x, 2, 0, False)
    np.testing.assert_array_equal(i, [2, 6])
    np.testing.assert_array_equal(v, [0.0, 0.0])
    with pytest.raises(ValueError, match=r"k=5 is out of range for dim 1 of size 4 \(input "
                                         r"shape \(2, 4\)\)"):
        sorting.check_k(5, 4, 1, (2, 4))
    with pytest.raises(ValueError, match="out of range"):
        sorting.check_k(-1, 4, 1, (2, 4))


# ---------------------------------------------------------------- GPU (CuPy arrays)
@pytest.mark.gpu
def test_cupy_arrays_match_cpu():
    import cupy as cp
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.int64):
        for _ in range(5):
            x, dim, index, src = random_case(rng, dtype)
            gx, gi, gs = cp.asarray(x), cp.asarray(index), cp.asarray(src)
            np.testing.assert_array_equal(K.gather(gx, dim, gi).get(), K.gather(x, dim, index))
            np.testing.assert_array_equal(K.scatter(gx, dim, gi, gs).get(),
                                          K.scatter(x, dim, index, src))
            got = K.scatter_add(gx, dim, gi, gs).get()      # atomics: order may differ
            np.testing.assert_allclose(got, K.scatter_add(x, dim, index, src), rtol=1e-5,
                                       atol=1e-5)
            rows = rng.integers(0, x.shape[dim], 7)
            np.testing.assert_array_equal(K.index_select(gx, dim, cp.asarray(rows)).get(),
                                          K.index_select(x, dim, rows))
        big = rng.integers(0, 9, (3, 700)).astype(dtype)
        for largest in (True, False):
            for k in (5, 400):
                v, i = K.topk(cp.asarray(big), k, 1, largest)
                want_v, want_i = K.topk(big, k, 1, largest)
                np.testing.assert_array_equal(i.get(), want_i)
                np.testing.assert_array_equal(v.get(), want_v)
    with pytest.raises(ValueError, match="runs on NumPy arrays only"):
        K.gather(cp.zeros(3), 0, cp.zeros(1, cp.int64), impl="cpu")
