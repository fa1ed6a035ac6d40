"""Transforms keep image, boxes, masks and semantic maps aligned."""
import numpy as np
import pytest

from scratchvision import Tensor
from scratchvision.data import Shapes, masks_to_boxes
from scratchvision.data import transforms as T


def _sample(i=0, size=64):
    img, t = Shapes("train", 8, image_size=size, seed=4)[i]
    return img, t


def _aligned(img, t):
    """Boxes are the tight boxes of the masks; semantic agrees with the masks."""
    np.testing.assert_array_equal(t["boxes"], masks_to_boxes(t["masks"]))
    assert t["masks"].shape[1:] == img.shape[:2] == t["semantic"].shape
    for k in range(len(t["masks"])):
        assert (t["semantic"][t["masks"][k] > 0] == t["labels"][k]).all()


def test_flip_twice_is_identity_and_aligned():
    img, t = _sample()
    flip = T.RandomHorizontalFlip(p=1.0)
    f_img, f_t = flip(img, t)
    _aligned(f_img, f_t)
    np.testing.assert_array_equal(f_img, img[:, ::-1])
    w = img.shape[1]
    np.testing.assert_array_equal(f_t["boxes"][:, [0, 2]], w - t["boxes"][:, [2, 0]])
    ff_img, ff_t = flip(f_img, f_t)
    np.testing.assert_array_equal(ff_img, img)
    for key in ("boxes", "masks", "semantic", "labels"):
        np.testing.assert_array_equal(ff_t[key], t[key])
    same_img, same_t = T.RandomHorizontalFlip(p=0.0)(img, t)
    assert same_img is img and same_t is t


@pytest.mark.parametrize("name", ["RandomVerticalFlip", "RandomTranspose"])
def test_vertical_flip_and_transpose_keep_everything_aligned(name):
    img, t = _sample(3)
    img = img[:, :48]                     # a non-square image: the transpose swaps H and W
    t = dict(t, masks=t["masks"][:, :, :48], semantic=t["semantic"][:, :48])
    keep = t["masks"].reshape(len(t["masks"]), -1).any(1)
    t = {k: (v[keep] if k in ("masks", "labels") else v) for k, v in t.items()}
    t["boxes"] = masks_to_boxes(t["masks"])
    op = getattr(T, name)(p=1.0)
    out, ot = op(img, t)
    _aligned(out, ot)
    expect = img[::-1] if name == "RandomVerticalFlip" else img.transpose(1, 0, 2)
    np.testing.assert_array_equal(out, expect)
    back, bt = op(out, ot)                # both are their own inverse
    np.testing.assert_array_equal(back, img)
    for key in ("boxes", "masks", "semantic", "labels"):
        np.testing.assert_array_equal(bt[key], t[key])
    same_img, same_t = getattr(T, name)(p=0.0)(img, t)
    assert same_img is img and same_t is t


def test_dihedral_yolo_augmentation_draws_all_eight_symmetries():
    from scratchvision.data.augment import yolo_augmentation
    img = np.zeros((16, 16, 3), np.uint8)
    img[1, 4] = 255                        # one marked pixel; its place tells the symmetry
    seen = set()
    for seed in range(200):
        pipe = yolo_augmentation(np.random.default_rng(seed), scale=0.0, translate=0.0,
                                 factor=1.0, dihedral=True)
        out, _ = pipe(img, {"boxes": np.zeros((0, 4), np.float32),
                            "labels": np.zeros(0, np.int64)})
        seen.add(tuple(np.argwhere(out[..., 0] > 128)[0]))
    assert seen == {(1, 4), (1, 11), (14, 4), (14, 11), (4, 1), (11, 1), (4, 14), (11, 14)}


def test_flip_does_not_modify_input():
    img, t = _sample()
    before = {k: np.copy(v) for k, v in t.items() if isinstance(v, np.ndarray)}
    T.RandomHorizontalFlip(p=1.0)(img, t)
    for k, v in before.items():
        np.testing.assert_array_equal(t[k], v)


def test_resize_keep_ratio_and_max_size():
    r = T.Resize(100, max_size=150)
    assert r.output_size(50, 60) == (100, 120)       # shorter side -> 100
    assert r.output_size(50, 100) == (75, 150)       # longer side capped at 150
    assert T.Resize((30, 40)).output_size(99, 7) == (30, 40)
    img, t = _sample(1, 64)
    out, rt = T.Resize(96)(img, t)
    assert out.shape == (96, 96, 3)
    np.testing.assert_allclose(rt["boxes"], t["boxes"] * 1.5)
    # nearest-neighbour masks stay within a pixel of the scaled boxes
    np.testing.assert_allclose(masks_to_boxes(rt["masks"]), rt["boxes"], atol=1.01)
    assert set(np.unique(rt["semantic"])) <= set(np.unique(t["semantic"]))


def test_expand_shifts_boxes_exactly(rng):
    img, t = _sample(2)
    out, et = T.RandomExpand(max_ratio=3, p=1.0, generator=rng)(img, t)
    _aligned(out, et)
    shift = et["boxes"][0, :2] - t["boxes"][0, :2]
    left, top = int(shift[0]), int(shift[1])
    h, w = img.shape[:2]
    np.testing.assert_array_equal(out[top:top + h, left:left + w], img)
    assert out.shape[0] >= h and out.shape[1] >= w


def test_iou_crop_keeps_centre_boxes_with_enough_iou():
    crops = 0
    for seed in range(30):
        img, t = _sample(seed % 8)
        crop = T.RandomIoUCrop(generator=np.random.default_rng(seed))
        out, ct = crop(img, t)
        if crop.last is None:
            assert out is img
            continue
        crops += 1
        left, top, right, bottom, min_iou = crop.last
        assert out.shape[:2] == (bottom - top, right - left)
        b = t["boxes"]
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        inside = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
        np.testing.assert_array_equal(ct["labels"], t["labels"][inside])
        iou = T._iou_with(b[inside], np.float32([left, top, right, bottom]))
        assert iou.max() >= min_iou
        expect = b[inside] - np.float32([left, top, left, top])
        expect[:, 0::2] = expect[:, 0::2].clip(0, right - left)
        expect[:, 1::2] = expect[:, 1::2].clip(0, bottom - top)
        np.testing.assert_array_equal(ct["boxes"], expect)
        np.testing.assert_array_equal(ct["masks"], t["masks"][inside][:, top:bottom, left:right])
        np.testing.assert_array_equal(out, img[top:bottom, left:right])
        # the visible part of each mask lies inside its (clipped) box
        mb = masks_to_boxes(ct["masks"])
        nonempty = ct["masks"].any(axis=(1, 2))
        assert (mb[nonempty, :2] >= ct["boxes"][nonempty, :2]).all()
        assert (mb[nonempty, 2:] <= ct["boxes"][nonempty, 2:]).all()
    assert crops > 5


def test_iou_crop_without_boxes_is_identity():
    img = np.zeros((10, 10, 3), np.uint8)
    t = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
    out, ot = T.RandomIoUCrop()(img, t)
    assert out is img and ot is t


def test_photometric_distort_keeps_geometry(rng):
    img, t = _sample(3)
    out, ot = T.PhotometricDistort(p=1.0, generator=rng)(img, t)
    assert out.shape == img.shape and out.dtype == np.uint8 and ot is t
    assert not np.array_equal(out, img)
    same, _ = T.PhotometricDistort(p=0.0, generator=rng)(img, t)
    assert np.abs(same.astype(int) - img).max() <= 1        # HSV round trip only


def test_to_tensor_and_normalize():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    x, _ = T.ToTensor()(img, {})
    assert isinstance(x, Tensor) and x.shape == (3, 2, 3) and x.data.dtype == np.float32
    np.testing.assert_allclose(x.data, img.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    y, _ = T.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 1.0))(x, {})
    np.testing.assert_allclose(y.data[1], (x.data[1] - 0.5) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="ToTensor first"):
        T.Normalize()(img, {})
    with pytest.raises(TypeError, match="before ToTensor"):
        T.RandomHorizontalFlip(p=1.0)(x, {})


def test_compose_and_seeding_reproducible():
    img, t = _sample(5)
    pipe = T.Compose([T.RandomExpand(p=0.5), T.RandomIoUCrop(), T.RandomHorizontalFlip(),
                      T.PhotometricDistort(), T.Resize((48, 48))])
    import scratchvision as sv
    sv.manual_seed(7)
    a_img, a_t = pipe(img, t)
    sv.manual_seed(7)
    b_img, b_t = pipe(img, t)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_t["boxes"], b_t["boxes"])
    assert a_img.shape == (48, 48, 3)


def test_bad_boxes_rejected():
    img = np.zeros((8, 8, 3), np.uint8)
    t = {"boxes": np.float32([[5, 1, 2, 4]])}
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: target\['boxes'\] row 0"):
        T.RandomHorizontalFlip(p=1.0)(img, t)
    with pytest.raises(ValueError, match="x2 < x1"):
        T.Resize(4)(img, t)
    with pytest.raises(ValueError, match="max_size"):
        T.Resize(100, max_size=50)


# ----------------------------------------------------------------- YOLO v1's augmentation
def _square_image(box, size=64):
    """A black image with one white axis-aligned square ``box`` (x1, y1, x2, y2)."""
    img = np.zeros((size, size, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


def test_scale_translate_moves_boxes_with_the_pixels():
    for seed in range(6):
        img = _square_image((20, 24, 36, 40))
        t = {"boxes": np.float32([[20, 24, 36, 40]]), "labels": np.array([1])}
        tr = T.RandomScaleTranslate(0.2, 0.1, fill=0, generator=np.random.default_rng(seed))
        out, u = tr(img, t)
        assert out.shape == img.shape and out.dtype == np.uint8
        ys, xs = np.nonzero(out[..., 0] > 127)                 # the warped square's pixels
        got = np.float32([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        np.testing.assert_allclose(u["boxes"][0], got, atol=1.01)
        np.testing.assert_array_equal(u["labels"], [1])


def test_scale_translate_drops_boxes_whose_centre_leaves_and_clips_the_rest():
    img = np.zeros((64, 64, 3), np.uint8)
    t = {"boxes": np.float32([[0, 10, 8, 20], [40, 40, 60, 60]]), "labels": np.array([1, 2])}
    found = set()
    for seed in range(40):
        tr = T.RandomScaleTranslate(0.0, 0.2, generator=np.random.default_rng(seed))
        _, u = tr(img, t)
        b = u["boxes"]
        assert (b >= 0).all() and (b <= 64).all()
        found.add(tuple(u["labels"]))
        rng = np.random.default_rng(seed)
        rng.uniform(1, 1)                                      # the scale draw
        tx, _ = rng.uniform(-0.2, 0.2, 2) * 64
        assert (1 in u["labels"]) == (0 <= 4 + tx < 64)        # box 1's centre x is 4
    assert (2,) in found and (1, 2) in found                   # both cases happen


def test_scale_translate_refuses_masks():
    img, t = _sample()
    with pytest.raises(ValueError, match="masks"):
        T.RandomScaleTranslate()(img, t)


def test_exposure_saturation_within_the_factor_and_keeps_hue():
    rng = np.random.default_rng(0)
    img = rng.integers(40, 200, (16, 16, 3)).astype(np.uint8)
    import cv2
    hsv = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
    for seed in range(8):
        out, _ = T.RandomExposureSaturation(1.5, generator=np.random.default_rng(seed))(img, {})
        o = cv2.cvtColor(out.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
        ratio_v = np.median(o[..., 2] / hsv[..., 2])
        assert 1 / 1.5 - 0.02 <= ratio_v <= 1.5 + 0.02
        unclipped = (hsv[..., 2] * 1.5 < 1) & (hsv[..., 1] > 0.2)
        np.testing.assert_allclose(np.sin(np.radians(o[..., 0][unclipped])),
                                   np.sin(np.radians(hsv[..., 0][unclipped])), atol=0.05)
    with pytest.raises(ValueError, match="factor"):
        T.RandomExposureSaturation(0.5)


def test_yolo_augmentation_is_reproducible_and_keeps_boxes_inside():
    from scratchvision.data.augment import yolo_augmentation
    img, t = Shapes("train", 8, image_size=64, seed=4)[1]
    t = {"boxes": t["boxes"], "labels": t["labels"]}
    a_im, a_t = yolo_augmentation(np.random.default_rng([0, 0, 1]))(img, t)
    b_im, b_t = yolo_augmentation(np.random.default_rng([0, 0, 1]))(img, t)
    np.testing.assert_array_equal(a_im, b_im)
    np.testing.assert_array_equal(a_t["boxes"], b_t["boxes"])
    assert a_im.shape == img.shape
    assert (a_t["boxes"] >= 0).all() and (a_t["boxes"] <= 64).all()
    assert len(a_t["boxes"]) == len(a_t["labels"])
    c_im, _ = yolo_augmentation(np.random.default_rng([0, 1, 1]))(img, t)
    assert not np.array_equal(a_im, c_im)
