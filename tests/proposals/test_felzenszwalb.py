"""Felzenszwalb–Huttenlocher segmentation: hand cases, Numba == reference, properties."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvision.proposals.felzenszwalb import (build_graph, felzenszwalb, gaussian_mask,
                                                  segment_graph)


def _partition(labels):
    """The partition as a set of frozensets of flat pixel indices (label-free)."""
    flat = labels.reshape(-1)
    return {frozenset(np.flatnonzero(flat == v).tolist()) for v in np.unique(flat)}


def _blobs(rng, h=40, w=48, n=5, noise=6):
    """A few filled rectangles on a smooth background, with noise (uint8 RGB)."""
    img = np.empty((h, w, 3), np.float64)
    img[:] = rng.uniform(60, 200, 3)
    img += np.linspace(0, 30, w)[None, :, None]
    for _ in range(n):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y0:y0 + rng.integers(6, 16), x0:x0 + rng.integers(6, 16)] = rng.uniform(0, 255, 3)
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# 1. hand-worked cases ----------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_three_pixels_threshold_tau(impl):
    # 1x3 grey image [0, 10, 100], no smoothing, edges (0,1) w=10 and (1,2) w=90.
    # k=20: thresholds start at k/1 = 20; w=10 <= 20 joins {0,1}, thr = 10 + 20/2 = 20;
    #       w=90 > 20 stays a boundary -> labels [0, 0, 1].
    img = np.array([[0, 10, 100]], np.uint8)
    np.testing.assert_array_equal(felzenszwalb(img, 20, 0, 0, impl=impl), [[0, 0, 1]])
    # k=200: after the first join thr = 10 + 200/2 = 110 and pixel 2 has 200: w=90 joins.
    np.testing.assert_array_equal(felzenszwalb(img, 200, 0, 0, impl=impl), [[0, 0, 0]])
    # min_size=2 merges the single pixel 2 into its neighbour even at k=20.
    np.testing.assert_array_equal(felzenszwalb(img, 20, 0, 2, impl=impl), [[0, 0, 0]])


@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_two_halves_and_uniform(impl):
    img = np.zeros((6, 8, 3), np.uint8)
    img[:, 4:] = 255
    expected = np.zeros((6, 8), np.int64)
    expected[:, 4:] = 1
    # no smoothing: inside weights are 0, cross weights 255 sqrt(3) > any k / |C| here
    np.testing.assert_array_equal(felzenszwalb(img, 50, 0, 0, impl=impl), expected)
    # smoothing (sigma=0.8) turns the step into a ramp: its columns (6 px) are regions of
    # their own at k=50, until min_size=13 folds them into the halves' regions
    ramp = felzenszwalb(img, 50, 0.8, 0, impl=impl)
    assert ramp.max() > 1 and np.all(ramp == ramp[:1])          # column-wise constant
    assert felzenszwalb(img, 50, 0.8, 13, impl=impl).max() == 1
    uniform = np.full((5, 7), 99, np.uint8)
    np.testing.assert_array_equal(felzenszwalb(uniform, 1, 0.8, 0, impl=impl),
                                  np.zeros((5, 7), np.int64))
    np.testing.assert_array_equal(felzenszwalb(np.zeros((1, 1, 3)), impl=impl), [[0]])


def test_gaussian_mask_normalised():
    for sigma in (0.3, 0.8, 2.0):
        m = gaussian_mask(sigma).astype(np.float64)
        assert len(m) == int(np.ceil(4 * sigma)) + 1
        assert abs(m[0] + 2 * m[1:].sum() - 1) < 1e-6
        assert np.all(np.diff(m) < 0)
    np.testing.assert_array_equal(gaussian_mask(0), [1.0])


# 2. Numba == reference ---------------------------------------------------------------------

@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.sampled_from([1, 3]),
       levels=st.sampled_from([2, 4, 256]), k=st.sampled_from([0.0, 5.0, 50.0, 300.0]),
       sigma=st.sampled_from([0.0, 0.5, 0.8, 1.7]), min_size=st.integers(0, 12),
       seed=st.integers(0, 2**31 - 1))
def test_numba_equals_reference(h, w, c, levels, k, sigma, min_size, seed):
    # few grey levels make many equal weights: the tie order must agree too
    rng = np.random.default_rng(seed)
    img = (rng.integers(0, levels, (h, w, c)) * (255 // max(levels - 1, 1))).astype(np.uint8)
    fast = felzenszwalb(img, k, sigma, min_size)
    ref = felzenszwalb(img, k, sigma, min_size, impl="reference")
    assert fast.dtype == np.int64 and fast.shape == (h, w)
    assert _partition(fast) == _partition(ref)
    np.testing.assert_array_equal(fast, ref)     # canonical numbering: the arrays agree too


def test_numba_equals_reference_blobs(rng):
    img = _blobs(rng, 20, 24)
    for dtype in (np.uint8, np.float32, np.float64):
        fast = felzenszwalb(img.astype(dtype), 30, 0.8, 5)
        np.testing.assert_array_equal(fast, felzenszwalb(img, 30, 0.8, 5, impl="reference"))


def test_graph_reused_across_k(rng):
    img = _blobs(rng).astype(np.float32)
    a, b, w = build_graph(img, 0.8)
    assert np.all(np.diff(w) >= 0)                     # sorted by weight
    h_, w_ = img.shape[:2]
    assert len(w) == 4 * h_ * w_ - 3 * (h_ + w_) + 2    # edges of the 8-connected grid
    for k in (20, 200):
        np.testing.assert_array_equal(segment_graph(h_, w_, a, b, w, k, 10),
                                      felzenszwalb(img, k, 0.8, 10))


def test_radix_argsort_is_stable_argsort(rng):
    from scratchvision.kernels.felzenszwalb.cpu import stable_argsort
    for n in (0, 1, 7, 1000):
        for w in (rng.uniform(0, 500, n), rng.integers(0, 4, n) * 0.5, np.zeros(n),
                  rng.uniform(0, 1e-38, n)):                   # subnormals too
            w = w.astype(np.float32)
            np.testing.assert_array_equal(stable_argsort(w), np.argsort(w, kind="stable"))


# 3. properties ----------------------------------------------------------------------------

def test_larger_k_fewer_regions(rng):
    for _ in range(3):
        img = _blobs(rng)
        counts = [felzenszwalb(img, k, 0.8, 0).max() + 1 for k in (1, 4, 16, 64, 256, 1024)]
        assert all(a >= b for a, b in zip(counts, counts[1:])), counts
        assert counts[0] > 10 * counts[-1]


@pytest.mark.parametrize("min_size", [1, 7, 30, 200])
def test_min_size_respected(rng, min_size):
    img = _blobs(rng)
    labels = felzenszwalb(img, 5, 0.8, min_size)
    sizes = np.bincount(labels.reshape(-1))
    assert sizes.min() >= min(min_size, labels.size)
    assert np.unique(labels).tolist() == list(range(len(sizes)))    # 0..n-1, no gaps


def test_labels_canonical_raster_order(rng):
    labels = felzenszwalb(_blobs(rng), 50, 0.8, 10).reshape(-1)
    _, first = np.unique(labels, return_index=True)
    assert np.all(np.diff(first) > 0)        # label v appears first before label v + 1


# 4. bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("image, kwargs, exc, words", [
    (np.zeros((0, 4, 3)), {}, ValueError, "shape"),
    (np.zeros((2, 3, 4, 5)), {}, ValueError, "shape"),
    (np.zeros((4, 4), np.complex64), {}, TypeError, "dtype"),
    ([[1, 2], [3, 4]], {}, TypeError, "numpy array"),
    (np.full((3, 3), np.nan), {}, ValueError, "NaN"),
    (np.zeros((3, 3)), {"k": -1}, ValueError, "k"),
    (np.zeros((3, 3)), {"sigma": -0.5}, ValueError, "sigma"),
    (np.zeros((3, 3)), {"min_size": 2.5}, TypeError, "min_size"),
    (np.zeros((3, 3)), {"impl": "cuda"}, ValueError, "impl"),
])
def test_bad_input(image, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        felzenszwalb(image, **kwargs)
