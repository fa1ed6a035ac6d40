"""Box kernels: box_area, box_iou, generalized_box_iou (reference vs Numba), box ops."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvision import ops
from scratchvision.kernels import boxes as K
from tests.helpers import assert_close, non_contiguous

IMPLS = ["reference", "cpu"]


def random_boxes(rng, n, dtype=np.float64, degenerate=False):
    xy = rng.uniform(-20, 100, (n, 2))
    wh = rng.uniform(0, 60, (n, 2))
    if degenerate and n:
        wh[rng.random(n) < 0.3, 0] = 0.0            # zero-width boxes
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def test_hand_worked():
    a = np.array([[0, 0, 4, 1]], np.float64)           # area 4
    b = np.array([[0, 0, 2, 1],                        # inside a: inter 2, union 4 -> 0.5
                  [3, 0, 5, 1],                        # inter 1, union 4 + 2 - 1 = 5 -> 0.2
                  [6, 0, 7, 1],                        # apart -> 0; hull 7 x 1, union 5
                  [1, 1, 1, 1]], np.float64)           # zero area -> 0
    for impl in IMPLS:
        assert_close(K.box_area(b, impl=impl), np.array([2.0, 2.0, 1.0, 0.0]))
        assert_close(K.box_iou(a, b, impl=impl), np.array([[0.5, 0.2, 0.0, 0.0]]))
        # giou of a with [6,0,7,1]: 0 - (7 - 5) / 7
        giou = K.generalized_box_iou(a, b, impl=impl)
        assert_close(giou[0, :3], np.array([0.5, 0.2, -2 / 7]))


@given(n=st.integers(0, 7), m=st.integers(0, 7), seed=st.integers(0, 2**31),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_cpu_matches_reference(n, m, seed, dtype):
    rng = np.random.default_rng(seed)
    b1 = random_boxes(rng, n, dtype, degenerate=True)
    b2 = random_boxes(rng, m, dtype, degenerate=True)
    for fn in ("box_iou", "generalized_box_iou"):
        ref = getattr(K, fn)(b1, b2, impl="reference")
        assert ref.shape == (n, m) and ref.dtype == dtype
        assert_close(getattr(K, fn)(b1, b2, impl="cpu"), ref)
        assert_close(getattr(K, fn)(non_contiguous(b1), b2), ref)
    assert_close(K.box_area(b1), K.box_area(b1, impl="reference"))


def test_iou_properties(rng):
    b = random_boxes(rng, 20)
    iou = K.box_iou(b, b)
    assert_close(np.diag(iou), np.ones(20))              # every box matches itself
    assert_close(iou, iou.T)
    assert (iou >= 0).all() and (iou <= 1 + 1e-12).all()
    giou = K.generalized_box_iou(b, b)
    assert (giou <= iou + 1e-12).all() and (giou >= -1).all()


def test_bad_input():
    with pytest.raises(ValueError, match=r"boxes1 must have shape \(N, 4\)"):
        K.box_iou(np.zeros((3, 5)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="impl"):
        K.box_iou(np.zeros((1, 4)), np.zeros((2, 4)), impl="fast")
    with pytest.raises(ValueError, match="x2 >= x1"):
        ops.generalized_box_iou(np.array([[2.0, 0, 1, 1]]), np.zeros((1, 4)))


def test_box_convert_roundtrip(rng):
    b = random_boxes(rng, 10)
    xywh = ops.box_convert(b, "xyxy", "xywh")
    assert_close(xywh[:, 2:], b[:, 2:] - b[:, :2])
    cxcywh = ops.box_convert(b, "xyxy", "cxcywh")
    assert_close(cxcywh[:, :2], (b[:, :2] + b[:, 2:]) / 2)
    for fmt in ("xywh", "cxcywh"):
        back = ops.box_convert(ops.box_convert(b, "xyxy", fmt), fmt, "xyxy")
        assert_close(back, b)
    assert_close(ops.box_convert(xywh, "xywh", "cxcywh"), cxcywh)
    with pytest.raises(ValueError, match="in_fmt"):
        ops.box_convert(b, "xyzz", "xyxy")


def test_clip_and_remove_small():
    b = np.array([[-5, -5, 20, 30], [2, 3, 4, 3.5], [1, 1, 9, 9]], np.float32)
    clipped = ops.clip_boxes_to_image(b, (10, 12))          # (height, width)
    assert_close(clipped, np.array([[0, 0, 12, 10], [2, 3, 4, 3.5], [1, 1, 9, 9]], np.float32))
    np.testing.assert_array_equal(ops.remove_small_boxes(b, 1.0), [0, 2])
    assert ops.remove_small_boxes(np.zeros((0, 4)), 1.0).dtype == np.int64


def test_tensor_in_tensor_out(rng):
    import scratchvision as sv
    b = random_boxes(rng, 4)
    out = ops.box_iou(sv.tensor(b), sv.tensor(b))
    assert isinstance(out, sv.Tensor)
    assert_close(out.numpy(), K.box_iou(b, b))


@pytest.mark.peers
def test_matches_torchvision(rng):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    b1, b2 = random_boxes(rng, 9), random_boxes(rng, 6)
    t1, t2 = torch.from_numpy(b1), torch.from_numpy(b2)
    assert_close(ops.box_iou(b1, b2), tv.ops.box_iou(t1, t2).numpy())
    assert_close(ops.generalized_box_iou(b1, b2), tv.ops.generalized_box_iou(t1, t2).numpy())
    assert_close(ops.box_area(b1), tv.ops.box_area(t1).numpy())
    for fmt in ("xywh", "cxcywh"):
        assert_close(ops.box_convert(b1, "xyxy", fmt),
                     tv.ops.box_convert(t1, "xyxy", fmt).numpy())
