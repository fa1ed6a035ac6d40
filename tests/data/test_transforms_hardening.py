"""Transforms refuse what they do not document and never answer wrong silently.

The documented images are uint8 (H, W, C) and float32 / float64 (H, W, C) in [0, 1]; every
transform keeps the dtype, works with ``target=None``, returns its input unchanged with
``p=0`` and checks its constructor arguments when it is built.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvision import Tensor
from scratchvision.data import transforms as T
from scratchvision.validation import LimitError, limits

BOXES = np.float32([[2, 3, 10, 12], [5, 1, 14, 9]])

# every transform of transforms.py that takes an (H, W, C) array, applying with certainty
IMAGE_TRANSFORMS = {
    "Resize": lambda: T.Resize((9, 7)),
    "RandomHorizontalFlip": lambda: T.RandomHorizontalFlip(p=1.0),
    "RandomVerticalFlip": lambda: T.RandomVerticalFlip(p=1.0),
    "RandomTranspose": lambda: T.RandomTranspose(p=1.0),
    "PhotometricDistort": lambda: T.PhotometricDistort(p=1.0),
    "RandomExpand": lambda: T.RandomExpand(max_ratio=2.0, p=1.0),
    "RandomIoUCrop": lambda: T.RandomIoUCrop(),
    "RandomScaleTranslate": lambda: T.RandomScaleTranslate(),
    "RandomExposureSaturation": lambda: T.RandomExposureSaturation(),
    "ToTensor": lambda: T.ToTensor(),
}
ALL_TRANSFORMS = dict(IMAGE_TRANSFORMS,
                      SanitizeBoundingBoxes=lambda: T.SanitizeBoundingBoxes(1.0),
                      Compose=lambda: T.Compose([T.RandomHorizontalFlip(p=1.0),
                                                 T.PhotometricDistort(p=1.0),
                                                 T.Resize(8), T.ToTensor(), T.Normalize()]))
RANDOM_WITH_P = {
    "RandomHorizontalFlip": lambda p: T.RandomHorizontalFlip(p=p),
    "RandomVerticalFlip": lambda p: T.RandomVerticalFlip(p=p),
    "RandomTranspose": lambda p: T.RandomTranspose(p=p),
    "PhotometricDistort": lambda p: T.PhotometricDistort(p=p),
    "RandomExpand": lambda p: T.RandomExpand(p=p),
}


def _image(dtype=np.uint8, h=16, w=20, seed=0):
    u8 = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    return u8 if dtype == np.uint8 else (u8 / 255.0).astype(dtype)


# --------------------------------------------------------------- target=None, dtypes
@pytest.mark.parametrize("name", sorted(ALL_TRANSFORMS))
def test_every_transform_works_without_a_target(name, rng):
    import scratchvision as sv
    sv.manual_seed(0)
    transform = ALL_TRANSFORMS[name]()
    image = _image()
    out, target = transform(image, None)
    assert target is None
    out2, target2 = transform(image)                     # the target defaults to None
    assert target2 is None
    assert isinstance(out, (np.ndarray, Tensor)) and isinstance(out2, type(out))


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.float16, np.bool_])
def test_undocumented_dtypes_are_refused_naming_the_transform(name, dtype):
    image = np.zeros((8, 8, 3), dtype)
    with pytest.raises(TypeError, match=rf"{name}: image must be uint8.*got "
                                        rf"{np.dtype(dtype).name}"):
        IMAGE_TRANSFORMS[name]()(image, {"boxes": np.float32([[1, 1, 4, 4]])})


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
def test_wrong_kinds_and_shapes_are_refused(name):
    transform = IMAGE_TRANSFORMS[name]()
    with pytest.raises(TypeError, match=rf"{name}: image must be a numpy array"):
        transform([[[0, 0, 0]]], None)
    with pytest.raises(ValueError, match=rf"{name}: image must be 3-D \(H, W, C\), got "
                                         r"shape \(8, 8\)"):
        transform(np.zeros((8, 8), np.uint8), None)
    with pytest.raises(ValueError, match=rf"{name}: image must have H, W, C >= 1"):
        transform(np.zeros((0, 8, 3), np.uint8), None)


@pytest.mark.parametrize("name", sorted(set(IMAGE_TRANSFORMS) - {"ToTensor"}))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_documented_dtypes_are_kept(name, dtype):
    import scratchvision as sv
    sv.manual_seed(1)
    out, _ = IMAGE_TRANSFORMS[name]()(_image(dtype), {"boxes": BOXES, "labels": [1, 2]})
    assert out.dtype == dtype and out.ndim == 3 and out.shape[2] == 3
    if dtype != np.uint8:
        assert 0 <= out.min() and out.max() <= 1


def test_to_tensor_keeps_float_images_and_scales_uint8():
    u8 = _image()
    x, _ = T.ToTensor()(u8)
    np.testing.assert_allclose(x.data, u8.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    f64 = _image(np.float64)
    y, _ = T.ToTensor()(f64)
    assert y.data.dtype == np.float64                     # as torchvision's ToTensor
    np.testing.assert_array_equal(y.data, f64.transpose(2, 0, 1))


# -------------------------------------------------------------------- p = 0 and p
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(RANDOM_WITH_P))
def test_p0_returns_the_image_unchanged(name, dtype, rng):
    image = _image(dtype)
    before = image.copy()
    out, _ = RANDOM_WITH_P[name](0.0)(image, {"boxes": BOXES})
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, before)


def test_photometric_distort_p0_keeps_a_float_image():
    # used to come back as uint8 0/1 (the float image read as 0..255 and cast)
    image = np.linspace(0, 1, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    out, _ = T.PhotometricDistort(p=0.0)(image, None)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("name", sorted(RANDOM_WITH_P))
def test_probabilities_outside_0_1_are_refused(name):
    with pytest.raises(ValueError, match=r"p must be <= 1.0, got 1.5"):
        RANDOM_WITH_P[name](1.5)
    with pytest.raises(ValueError, match=r"p must be >= 0.0"):
        RANDOM_WITH_P[name](-0.1)
    with pytest.raises(TypeError, match=r"p must be a real number"):
        RANDOM_WITH_P[name]("0.5")
    with pytest.raises(ValueError, match=r"p must be finite"):
        RANDOM_WITH_P[name](float("nan"))


# ----------------------------------------------------------------- float arithmetic
@given(seed=st.integers(0, 2 ** 32 - 1), p=st.sampled_from([0.5, 1.0]))
def test_photometric_distort_float_matches_uint8(seed, p):
    # the same draws on the same picture, on the 0..255 scale or in [0, 1]
    u8 = _image(seed=seed % 97)
    a, _ = T.PhotometricDistort(p=p, generator=np.random.default_rng(seed))(u8)
    b, _ = T.PhotometricDistort(p=p, generator=np.random.default_rng(seed))(u8 / 255.0)
    assert b.dtype == np.float64 and 0 <= b.min() and b.max() <= 1
    assert np.abs(b * 255 - a).max() <= 0.5 + 1e-3      # uint8 rounds to the nearest


def test_exposure_saturation_float_matches_uint8():
    u8 = _image()
    a, _ = T.RandomExposureSaturation(generator=np.random.default_rng(3))(u8)
    b, _ = T.RandomExposureSaturation(generator=np.random.default_rng(3))(
        u8.astype(np.float32) / 255)
    assert b.dtype == np.float32
    assert np.abs(b * 255 - a).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("transform", [T.PhotometricDistort(p=0.0),
                                       T.RandomExposureSaturation()], ids=repr)
def test_colour_transforms_refuse_floats_outside_0_1_and_non_rgb(transform):
    with pytest.raises(ValueError, match=r"float image must have values in \[0, 1\], got "
                                         r"\[0.0, 255.0\]"):
        transform(np.float32([[[0, 128, 255]]]))
    with pytest.raises(ValueError, match=r"values in \[0, 1\], got \[nan"):
        transform(np.full((2, 2, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"must be RGB \(H, W, 3\), got shape \(2, 2, 1\)"):
        transform(np.zeros((2, 2, 1), np.uint8))


def test_expand_fills_a_float_image_with_its_mean_colour():
    # the fill used to be rounded as for uint8: a float image got a black canvas
    image = np.full((4, 4, 3), 0.4, np.float32)
    out, _ = T.RandomExpand(max_ratio=3.0, p=1.0, generator=np.random.default_rng(0))(image)
    assert out.dtype == np.float32 and out.shape[0] > 4
    np.testing.assert_allclose(out, 0.4, rtol=1e-6)


def test_fill_outside_the_image_range_is_refused():
    # 300 used to wrap around to 44 in a uint8 canvas
    with pytest.raises(ValueError, match=r"RandomExpand: fill \[300.0\] is outside the uint8"):
        T.RandomExpand(fill=300, p=0.0)(_image())
    with pytest.raises(ValueError, match=r"RandomScaleTranslate: fill \[127.5\] is outside "
                                         r"the float32"):
        T.RandomScaleTranslate(fill=127.5)(_image(np.float32))
    with pytest.raises(ValueError, match=r"fill has 2 values for an image of 3 channels"):
        T.RandomExpand(fill=(1, 2), p=1.0)(_image())


# ----------------------------------------------------------- constructor arguments
@pytest.mark.parametrize("make, error, message", [
    (lambda: T.Resize(0), ValueError, r"Resize: size must be >= 1"),
    (lambda: T.Resize(2.5), TypeError, r"Resize: size must be an int"),
    (lambda: T.Resize(True), TypeError, r"Resize: size must be an int"),
    (lambda: T.Resize((3, 4, 5)), TypeError, r"Resize: size must be an int or \(h, w\)"),
    (lambda: T.Resize((3, 4), max_size=9), ValueError, r"max_size is only for an int size"),
    (lambda: T.Resize(8, max_size=4), ValueError, r"max_size 4 must be >= size 8"),
    (lambda: T.RandomExpand(max_ratio=0.5), ValueError, r"max_ratio must be >= 1.0"),
    (lambda: T.RandomExpand(max_ratio=float("inf")), ValueError, r"max_ratio must be finite"),
    (lambda: T.RandomExpand(fill="red"), TypeError, r"RandomExpand: fill must be None"),
    (lambda: T.RandomExpand(fill=[np.nan]), ValueError, r"fill must be finite"),
    (lambda: T.RandomHorizontalFlip(generator=42), TypeError,
     r"RandomHorizontalFlip: generator must be a numpy.random.Generator"),
    (lambda: T.PhotometricDistort(contrast=(1.5, 0.5)), ValueError,
     r"PhotometricDistort: contrast must have lo <= hi"),
    (lambda: T.PhotometricDistort(saturation=0.5), TypeError, r"saturation must be a pair"),
    (lambda: T.PhotometricDistort(hue=200), ValueError, r"hue must be <= 180"),
    (lambda: T.PhotometricDistort(brightness=-1), ValueError, r"brightness must be >= 0"),
    (lambda: T.RandomIoUCrop(min_scale=0), ValueError, r"min_scale must be > 0"),
    (lambda: T.RandomIoUCrop(min_scale=0.8, max_scale=0.5), ValueError, r"min_scale <= max"),
    (lambda: T.RandomIoUCrop(min_aspect_ratio=2, max_aspect_ratio=1), ValueError,
     r"min_aspect_ratio <= max_aspect_ratio"),
    (lambda: T.RandomIoUCrop(sampler_options=[0.5, 1.5]), ValueError,
     r"sampler_options\[1\] must be <= 1.0"),
    (lambda: T.RandomIoUCrop(sampler_options=[]), ValueError, r"must not be empty"),
    (lambda: T.RandomIoUCrop(trials=0), ValueError, r"trials must be >= 1"),
    (lambda: T.RandomIoUCrop(max_rounds=2.0), TypeError, r"max_rounds must be an int"),
    (lambda: T.RandomScaleTranslate(scale=1.0), ValueError, r"must be in \[0, 1\)"),
    (lambda: T.RandomScaleTranslate(translate=-0.1), ValueError, r"translate must be >= 0"),
    (lambda: T.RandomExposureSaturation(factor="big"), TypeError, r"factor must be a real"),
    (lambda: T.SanitizeBoundingBoxes(-1), ValueError, r"min_size must be >= 0"),
    (lambda: T.Normalize(std=(0.2, 0.0, 0.2)), ValueError, r"std must be positive"),
    (lambda: T.Normalize(mean=(0.5, 0.5)), ValueError, r"per channel each, got 2 and 3"),
    (lambda: T.Normalize(mean=("a", "b", "c")), TypeError, r"mean must be a sequence"),
    (lambda: T.Compose([T.ToTensor(), 3]), TypeError, r"transforms\[1\] is not callable"),
])
def test_bad_constructor_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_resize_accepts_a_one_element_size_as_torchvision():
    assert T.Resize([8]).output_size(16, 32) == (8, 16)


# ---------------------------------------------------------------------- targets
def test_bad_targets_are_refused():
    image = _image()                                     # (16, 20, 3)
    flip = T.RandomHorizontalFlip(p=1.0)
    with pytest.raises(TypeError, match=r"target must be a dict or None, got list"):
        flip(image, [BOXES])
    with pytest.raises(ValueError, match=r"row 1 = \[5.0, nan, 14.0, 9.0\] is not finite"):
        flip(image, {"boxes": np.float32([[1, 1, 2, 2], [5, np.nan, 14, 9]])})
    # a (2, 5) array used to be reshaped to (K, 4) rows silently (or fail obscurely)
    with pytest.raises(ValueError, match=r"must be \(K, 4\) x1y1x2y2, got shape \(4, 5\)"):
        T.Resize(8)(image, {"boxes": np.zeros((4, 5), np.float32)})
    with pytest.raises(ValueError, match=r"target\['masks'\] must be \(K, 16, 20\) like the "
                                         r"image, got shape \(1, 20, 16\)"):
        flip(image, {"masks": np.zeros((1, 20, 16), np.uint8)})
    with pytest.raises(ValueError, match=r"target\['semantic'\] must be \(16, 20\)"):
        T.Resize(8)(image, {"semantic": np.zeros((8, 8), np.uint8)})
    with pytest.raises(ValueError, match=r"all have length K, got lengths \{'boxes': 2, "
                                         r"'labels': 3\}"):
        T.SanitizeBoundingBoxes()(image, {"boxes": BOXES, "labels": np.arange(3)})


def test_normalize_refuses_integer_images():
    # an int64 (3, H, W) array used to be normalised with the mean truncated to 0
    with pytest.raises(TypeError, match=r"Normalize: image must be float32 or float64.*int64"):
        T.Normalize()(np.zeros((3, 4, 4), np.int64))
    x, _ = T.Normalize(mean=(0.5,) * 3, std=(0.5,) * 3)(np.full((3, 2, 2), 1.0))
    assert x.data.dtype == np.float64
    np.testing.assert_allclose(x.data, 1.0)


def test_sizes_are_bounded_before_allocating():
    with limits(max_elements=10_000):
        with pytest.raises(LimitError, match=r"Resize to \(1000, 1250\) needs 3,750,000"):
            T.Resize(1000)(_image())
        with pytest.raises(LimitError, match=r"RandomExpand canvas"):
            T.RandomExpand(max_ratio=1000.0, p=1.0, generator=np.random.default_rng(0))(
                _image())
