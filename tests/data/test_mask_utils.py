"""COCO RLE / polygon codecs: hand-worked cases and pycocotools.mask as the oracle."""
import numpy as np
import pytest

from scratchvision.data import mask_utils as mu


def test_rle_hand_worked():
    # column-major reading of [[0, 1], [1, 1], [0, 0]]: 0 1 0 | 1 1 0 -> runs 1,1,1,2,1
    m = np.array([[0, 1], [1, 1], [0, 0]], np.uint8)
    np.testing.assert_array_equal(mu.mask_to_counts(m), [1, 1, 1, 2, 1])
    np.testing.assert_array_equal(mu.counts_to_mask([1, 1, 1, 2, 1], 3, 2), m)
    # a mask starting with a 1 gets an empty leading 0-run
    np.testing.assert_array_equal(mu.mask_to_counts(np.ones((2, 2))), [0, 4])
    assert mu.counts_area([1, 1, 1, 2, 1]) == 3
    assert mu.counts_to_bbox([1, 1, 1, 2, 1], 3) == [0.0, 0.0, 2.0, 2.0]
    assert mu.counts_to_bbox([6], 3) == [0.0] * 4


def test_compressed_string_hand_worked():
    # counts 1 1 1 2 1: the first three as-is ('1'), then 2-1=1 -> '1', 1-1=0 -> '0'
    assert mu.counts_to_string([1, 1, 1, 2, 1]) == "11110"
    np.testing.assert_array_equal(mu.string_to_counts("11110"), [1, 1, 1, 2, 1])
    # negative deltas and multi-character numbers round-trip
    counts = [0, 100, 3, 40, 1000, 2, 7]
    np.testing.assert_array_equal(mu.string_to_counts(mu.counts_to_string(counts)), counts)


def test_roundtrips_random(rng):
    for _ in range(30):
        h, w = rng.integers(1, 30, 2)
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        rle = mu.encode(m)
        np.testing.assert_array_equal(mu.decode(rle), m)
        rle = mu.encode(m, compressed=False)
        np.testing.assert_array_equal(mu.decode(rle), m)


def test_polygon_square():
    # continuous coordinates, pixel i covers [i, i+1): the square 1..3 covers pixels 1, 2
    m = mu.polygons_to_mask([[1, 1, 3, 1, 3, 3, 1, 3]], 5, 5)
    expect = np.zeros((5, 5), np.uint8)
    expect[1:3, 1:3] = 1
    np.testing.assert_array_equal(m, expect)


def test_bad_input():
    with pytest.raises(ValueError, match="sum to"):
        mu.counts_to_mask([1, 2], 2, 2)
    with pytest.raises(ValueError, match="even number"):
        mu.polygon_to_counts([1, 2, 3], 4, 4)
    with pytest.raises(ValueError, match="size"):
        mu.segmentation_to_mask({"size": [3, 3], "counts": [9]}, 4, 4)
    with pytest.raises(TypeError, match="segmentation"):
        mu.segmentation_to_mask(5, 4, 4)
    with pytest.raises(ValueError, match="invalid character"):
        mu.string_to_counts(" ")


@pytest.mark.peers
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_against_pycocotools(rng):
    maskapi = pytest.importorskip("pycocotools.mask")
    for it in range(300):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        k = int(rng.integers(3, 9))
        poly = rng.random(2 * k) * np.tile([w + 4, h + 4], k) - 2
        if it % 3 == 0:
            poly = np.round(poly)
        ref_rle = maskapi.frPyObjects([poly.tolist()], h, w)[0]
        ref = maskapi.decode(ref_rle)
        counts = mu.polygon_to_counts(poly, h, w)
        np.testing.assert_array_equal(mu.counts_to_mask(counts, h, w), ref)
        assert mu.counts_area(counts) == maskapi.area(ref_rle)
        np.testing.assert_allclose(mu.counts_to_bbox(counts, h), maskapi.toBbox(ref_rle))
        # compressed strings equal byte for byte, both directions
        m = (rng.random((h, w)) < 0.4).astype(np.uint8) if it % 2 else ref
        enc = maskapi.encode(np.asfortranarray(m))
        assert mu.encode(m)["counts"] == enc["counts"].decode()
        np.testing.assert_array_equal(mu.decode(enc), m)
    # several polygons are united, as frPyObjects + merge
    polys = [[1, 1, 8, 1, 8, 6], [5, 4, 12, 4, 12, 11, 5, 11]]
    ref = maskapi.decode(maskapi.merge(maskapi.frPyObjects(polys, 14, 15)))
    np.testing.assert_array_equal(mu.segmentation_to_mask(polys, 14, 15), ref)
