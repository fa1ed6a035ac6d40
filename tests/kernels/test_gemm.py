"""kernels/gemm.py: the products computed on Numba's threads equal np.matmul's, for every
layout the kernels pass (broadcast batches, transposed and strided views, a non-contiguous
output), do not depend on the number of threads, and leave OpenBLAS's settings alone."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchvision.kernels import gemm
from tests.helpers import assert_close

pytestmark = pytest.mark.skipif(not gemm.AVAILABLE, reason="no OpenBLAS with cblas symbols")


@pytest.fixture
def always_threaded(monkeypatch):
    """Every product through the Numba path, however small."""
    monkeypatch.setattr(gemm, "SERIAL_MACS", 0)


def _view(rng, shape, dtype, layout):
    """An array of ``shape`` laid out as asked: C order, a transposed view, or strided."""
    if layout == "transposed":
        return np.ascontiguousarray(
            rng.standard_normal(shape[:-2] + shape[-2:][::-1]).astype(dtype)).swapaxes(-1, -2)
    if layout == "strided":
        return rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(dtype)[..., ::2]
    return rng.standard_normal(shape).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([1, 7, 40, 64, 65, 97, 300]), st.integers(1, 40), st.integers(1, 1100),
       st.sampled_from([(), (3,), (2, 3)]), st.booleans(),
       st.sampled_from(["c", "transposed", "strided"]),
       st.sampled_from(["c", "transposed", "strided"]),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 31))
def test_matmul_equals_numpy(M, K, N, lead, broadcast_a, la, lb, dtype, seed):
    gemm.SERIAL_MACS, saved = 0, gemm.SERIAL_MACS
    try:
        rng = np.random.default_rng(seed)
        a = _view(rng, ((1,) * len(lead) if broadcast_a else lead) + (M, K), dtype, la)
        b = _view(rng, lead + (K, N), dtype, lb)
        out = np.full(lead + (M, N), np.nan, dtype)
        gemm.matmul(a, b, out)
        assert_close(out, np.matmul(a, b), scale=K / 8 + 1)
    finally:
        gemm.SERIAL_MACS = saved


def test_non_contiguous_output(always_threaded):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 30, 20)), rng.standard_normal((4, 20, 700))
    out = np.empty((4, 700, 30)).swapaxes(-1, -2)           # written through a temporary
    gemm.matmul(a, b, out)
    assert_close(out, a @ b)


def test_bits_do_not_depend_on_the_thread_count(always_threaded):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 300)).astype(np.float32)
    b = rng.standard_normal((3, 300, 2000)).astype(np.float32)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            results.append(gemm.matmul(a, b, np.empty((3, 64, 2000), np.float32)))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])


def test_row_blocks_when_columns_are_few(always_threaded):
    # one product with N <= 512: the rows are cut into blocks (MIN_TASKS), for A in C
    # order and transposed, with a last block shorter than the rest; the cut depends on
    # the shapes only, so the bits match at any thread count
    rng = np.random.default_rng(2)
    before = numba.get_num_threads()
    for a in (rng.standard_normal((301, 70)).astype(np.float32),
              np.ascontiguousarray(rng.standard_normal((70, 301)).astype(np.float32)).T):
        b = rng.standard_normal((70, 130)).astype(np.float32)
        results = []
        try:
            for threads in (1, before):
                numba.set_num_threads(threads)
                results.append(gemm.matmul(a, b, np.full((301, 130), np.nan, np.float32)))
        finally:
            numba.set_num_threads(before)
        assert_close(results[0], a @ b, scale=10)
        np.testing.assert_array_equal(results[0], results[1])


def test_openblas_settings_are_left_alone(always_threaded):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    before = [i["num_threads"] for i in blas]
    gemm.matmul(np.ones((50, 60)), np.ones((60, 900)), np.empty((50, 900)))
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info()
             if i["internal_api"] == "openblas"]
    assert after == before


def test_fallbacks_are_numpy(monkeypatch):
    """Small products, other dtypes and a missing OpenBLAS all go to np.matmul."""
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(gemm.matmul(a, b, np.empty((2, 4))), a @ b)
    ai, bi = a.astype(np.int64), b.astype(np.int64)
    np.testing.assert_array_equal(gemm.matmul(ai, bi, np.empty((2, 4), np.int64)), ai @ bi)
    monkeypatch.setattr(gemm, "AVAILABLE", False)
    big_a, big_b = np.ones((100, 100)), np.ones((100, 100))
    np.testing.assert_array_equal(gemm.product(big_a, big_b), big_a @ big_b)


def test_product_allocates_the_broadcast_result(always_threaded):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 1, 7, 9)), rng.standard_normal((3, 9, 11))
    out = gemm.product(a, b)
    assert out.shape == (5, 3, 7, 11)
    assert_close(out, a @ b)


def test_the_blas_thread_setting_is_put_back(always_threaded):
    """OpenBLAS runs on one thread during the loop; afterwards its (process-wide) thread
    count is what it was, so the user's own products keep their threads, also when Python
    threads call matmul at once (each set / loop / restore holds the lock)."""
    import threading  # noqa: PLC0415
    set_threads = gemm._set_blas_threads
    before = set_threads(3)         # an arbitrary setting ...
    try:
        gemm.matmul(np.ones((64, 64)), np.ones((64, 2048)), np.empty((64, 2048)))
        threads = [threading.Thread(target=gemm.matmul, args=(
            np.ones((128, 64)), np.ones((64, 1024)), np.empty((128, 1024))))
            for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        restored = set_threads(before)
    assert restored == 3            # ... is still there after the products
