"""Selective Search and Felzenszwalb refuse bad input and unbounded work, before any kernel.

Only the public API is used (``scratchvision.proposals`` and ``scratchvision.validation``):
every case names the argument that was wrong; limits are lowered with
``validation.limits(...)`` so that small arrays stand for huge images.
"""
import numpy as np
import pytest

from scratchvision import validation
from scratchvision.proposals import felzenszwalb, selective_search
from scratchvision.proposals.felzenszwalb import build_graph, segment_graph
from scratchvision.proposals.selective_search import (
    convert_color,
    feature_bins,
    group_regions,
    hierarchical_grouping,
    region_features,
)

IMG = np.zeros((8, 8, 3), np.uint8)


def _features(h=4, w=6):
    """Bins and features of a tiny image with two vertical halves as regions 0 and 1."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 2:] = 200
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2:] = 1
    colour, texture = feature_bins(img)
    return labels, colour, texture


# bounded work ------------------------------------------------------------------------------

def test_selective_search_refuses_an_image_above_the_pixel_limit():
    too_big = pytest.raises(validation.LimitError, match="8x8 image.*max_image_pixels")
    with validation.limits(max_image_pixels=63), too_big:       # the image has 64 pixels
        selective_search(IMG)
    with validation.limits(max_image_pixels=64):
        assert len(selective_search(IMG, "single")) >= 1


def test_felzenszwalb_refuses_an_image_above_the_pixel_limit():
    too_big = pytest.raises(validation.LimitError, match="max_image_pixels")
    with validation.limits(max_image_pixels=10), too_big:
        felzenszwalb(np.zeros((4, 4), np.uint8))
    too_big = pytest.raises(validation.LimitError, match="max_image_pixels")
    with validation.limits(max_image_pixels=10), too_big:
        build_graph(np.zeros((4, 4, 3), np.float32), 0.8)


def test_region_tables_are_bounded_before_allocation():
    # 6 regions (one per column) x 3 channels x (25 + 80) bins = 1890 histogram elements
    labels = np.tile(np.arange(6), (2, 1))
    _, colour, texture = _features(2, 6)
    too_big = pytest.raises(validation.LimitError, match="histograms of 6 regions")
    with validation.limits(max_elements=1889), too_big:
        region_features(labels, colour, texture)
    features = region_features(labels, colour, texture)
    # the grouping holds 2n - 1 = 11 rows of 315 bins = 3465 elements
    too_big = pytest.raises(validation.LimitError, match="grouping 6 regions")
    with validation.limits(max_elements=3464), too_big:
        group_regions(features, 12)


# bad parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, words", [
    ({"ks": ()}, ValueError, "ks must not be empty"),
    ({"color_spaces": []}, ValueError, "color_spaces must not be empty"),
    ({"similarities": ()}, ValueError, "similarities must not be empty"),
    ({"color_spaces": "hsv"}, TypeError, "color_spaces must be a tuple"),
    ({"strategy": None}, TypeError, "strategy must be a string"),
    ({"ks": (True,)}, TypeError, "k"),
    ({"ks": (float("nan"),)}, ValueError, "k .*finite"),
    ({"sigma": "0.8"}, TypeError, "sigma"),
    ({"sigma": float("inf")}, ValueError, "sigma"),
    ({"min_size": 2.5}, TypeError, "min_size"),
    ({"min_size": -1}, ValueError, "min_size"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"num_threads": 1.5}, TypeError, "num_threads"),
])
def test_selective_search_bad_parameters(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        selective_search(IMG, **kwargs)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"k": True}, TypeError, "felzenszwalb: k"),
    ({"k": "5"}, TypeError, "felzenszwalb: k"),
    ({"k": float("inf")}, ValueError, "felzenszwalb: k"),
    ({"sigma": None}, TypeError, "felzenszwalb: sigma"),
    ({"min_size": 3.0}, TypeError, "felzenszwalb: min_size"),
    ({"impl": "numba"}, ValueError, "impl must be one of"),   # the old name: now 'cpu'
])
def test_felzenszwalb_bad_parameters(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        felzenszwalb(np.zeros((3, 3), np.uint8), **kwargs)


def test_convert_color_refuses_non_uint8_and_unknown_spaces():
    with pytest.raises(TypeError, match="uint8"):
        convert_color(np.zeros((2, 2, 3), np.float32), "hsv")
    with pytest.raises(ValueError, match="colour space 'xyz'"):
        convert_color(IMG, "xyz")


# bad arrays reaching the kernels -----------------------------------------------------------

def test_region_features_refuses_labels_with_gaps_and_bad_bins():
    labels, colour, texture = _features()
    with pytest.raises(ValueError, match="every id"):
        region_features(labels * 2, colour, texture)             # ids 0 and 2: no region 1
    with pytest.raises(ValueError, match="labels must be region ids"):
        region_features(labels - 1, colour, texture)
    bad = colour.copy()
    bad[0, 0] = 25                                              # colour bins are 0..24
    with pytest.raises(ValueError, match="colour_bins must hold bins 0..24"):
        region_features(labels, bad, texture)
    with pytest.raises(ValueError, match="texture_bins must have shape"):
        region_features(labels, colour, texture[:8])
    with pytest.raises(TypeError, match="labels must be"):
        region_features(labels.astype(np.float32), colour, texture)


def test_group_regions_refuses_bad_pairs_and_image_size():
    labels, colour, texture = _features()
    features = region_features(labels, colour, texture)
    self_pair = features._replace(pairs=np.array([[1, 1]], np.int64))
    with pytest.raises(ValueError, match="0 <= i < j < 2"):
        group_regions(self_pair, 24)
    with pytest.raises(ValueError, match="im_size"):
        group_regions(features, 0)
    with pytest.raises(ValueError, match="similarity set 'Q'"):
        hierarchical_grouping(labels, colour, texture, "Q")


def test_segment_graph_refuses_edges_outside_the_image():
    a, b, w = build_graph(np.zeros((2, 2, 1), np.float32), 0.0)
    with pytest.raises(ValueError, match=r"edge ends a, b must lie in \[0, 4\)"):
        segment_graph(2, 2, a, b + 1, w, 10.0, 0)
    with pytest.raises(TypeError, match="w must be float32"):
        segment_graph(2, 2, a, b, w.astype(np.float64), 10.0, 0)


# dispatch ----------------------------------------------------------------------------------

def test_both_families_dispatch_by_the_kernel_names():
    from scratchvision.kernels import felzenszwalb as fz_kernels
    from scratchvision.kernels import selective_search as ss_kernels
    assert ss_kernels.VERSIONS.impls == fz_kernels.VERSIONS.impls == ("reference", "cpu")
    img = np.zeros((2, 3, 3), np.uint8)
    for impl in ("reference", "cpu", None):
        colour, texture = feature_bins(img, impl=impl)
        assert colour.shape == (3, 6) and texture.shape == (24, 6)
    with pytest.raises(ValueError, match="selective_search: impl must be one of"):
        feature_bins(img, impl="numba")
