"""COCO / VOC readers and image files: bad input is refused with the file, the entry and
the field named, and huge declared sizes are refused before anything is decoded."""
import json
import struct
import zlib

import cv2
import numpy as np
import pytest

from scratchvision.data import COCODetection, DataLoader, Shapes, image_io, parse_voc_xml
from scratchvision.data.augment import ssd_augmentation, yolo_augmentation
from scratchvision.data.shapes import generate
from scratchvision.validation import LimitError, limits


# ------------------------------------------------------------------------- COCO
def _coco(tmp_path, **changes):
    """A one-image COCO file; ``changes`` replace fields of its annotation 0."""
    img = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    assert cv2.imwrite(str(tmp_path / "a.png"), img)
    ann = {"id": 7, "image_id": 1, "category_id": 5, "bbox": [1.0, 2.0, 4.0, 3.0],
           "area": 12.0, "iscrowd": 0, "segmentation": [[1, 2, 5, 2, 5, 5, 1, 5]]}
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 12, "width": 16}],
            "categories": [{"id": 5, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [dict(ann, id=6), dict(ann, **changes)]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))                  # NaN / Infinity as Python writes them
    return path


@pytest.mark.parametrize("bbox, message", [
    ([1.0, float("nan"), 4.0, 3.0], r"'bbox' \[1.0, nan, 4.0, 3.0\] is not finite"),
    ([1.0, 2.0, float("inf"), 3.0], r"'bbox' \[1.0, 2.0, inf, 3.0\] is not finite"),
    ([1.0, "2", 4.0, 3.0], r"'bbox' must be \[x, y, w, h\] \(four numbers\), got \[1.0, '2'"),
    ([1.0, 2.0, 4.0], r"'bbox' must be \[x, y, w, h\]"),
    ([1.0, 2.0, True, 3.0], r"'bbox' must be \[x, y, w, h\]"),
    ([1.0, 2.0, 4.0, -3.0], r"'bbox' \[1.0, 2.0, 4.0, -3.0\] has a negative width"),
    ("1 2 4 3", r"'bbox' must be \[x, y, w, h\]"),
])
def test_coco_bad_bbox_names_file_position_id_and_field(tmp_path, bbox, message):
    path = _coco(tmp_path, bbox=bbox)
    with pytest.raises(ValueError, match=r"instances\.json: annotations\[1\] \(id 7\): "
                                         + message):
        COCODetection(tmp_path, path)


@pytest.mark.parametrize("changes, message", [
    ({"category_id": 3}, r"category_id 3 is not in 'categories'"),
    ({"category_id": "5"}, r"category_id '5' is not in 'categories'"),
    ({"image_id": 2}, r"image_id 2 is not in 'images'"),
    ({"image_id": [1]}, r"image_id \[1\] is not in 'images'"),
    ({"area": -1.0}, r"'area' must be a finite number >= 0, got -1.0"),
    ({"iscrowd": 2}, r"'iscrowd' must be 0 or 1, got 2"),
])
def test_coco_bad_ids_and_fields(tmp_path, changes, message):
    path = _coco(tmp_path, **changes)
    with pytest.raises(ValueError, match=r"instances\.json: annotations\[1\] \(id 7\): "
                                         + message):
        COCODetection(tmp_path, path)


def _rewrite(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_coco_bad_images_and_categories(tmp_path):
    path = _coco(tmp_path)
    _rewrite(path, lambda d: d["images"][0].update(width=0))
    with pytest.raises(ValueError, match=r"images\[0\] \(id 1\): 'width' must be a positive "
                                         r"integer, got 0"):
        COCODetection(tmp_path, path)
    path = _coco(tmp_path)
    _rewrite(path, lambda d: d["categories"].append({"id": 2, "name": "again"}))
    with pytest.raises(ValueError, match=r"categories\[2\]: 'id' 2 is used by another"):
        COCODetection(tmp_path, path)


def test_coco_image_declaring_too_many_pixels_is_refused_at_load(tmp_path):
    path = _coco(tmp_path)
    _rewrite(path, lambda d: d["images"][0].update(width=100_000, height=100_000))
    with pytest.raises(LimitError, match=r"instances\.json: images\[0\] \(id 1\) \(declared "
                                         r"100000 x 100000\) needs 10,000,000,000 pixels"):
        COCODetection(tmp_path, path)


def test_coco_remap_category_ids_flag(tmp_path):
    path = _coco(tmp_path, category_id=2)
    remapped = COCODetection(tmp_path, path)
    assert remapped.classes == ("background", "dog", "cat")
    np.testing.assert_array_equal(remapped[0][1]["labels"], [2, 1])     # ids 5, 2 -> 2, 1
    raw = COCODetection(tmp_path, path, remap_category_ids=False)
    np.testing.assert_array_equal(raw[0][1]["labels"], [5, 2])          # torchvision's ids
    assert raw.classes == ("background", "N/A", "dog", "N/A", "N/A", "cat")
    assert raw.num_classes == 6 and raw.label_to_cat_id == {2: 2, 5: 5}
    _rewrite(path, lambda d: d["categories"].append({"id": 0, "name": "zero"}))
    with pytest.raises(ValueError, match=r"category id 0 cannot be a label"):
        COCODetection(tmp_path, path, remap_category_ids=False)


# -------------------------------------------------------------------------- VOC
XML = ("<annotation><filename>a.jpg</filename>{size}<object><name>dog</name><bndbox>"
       "<xmin>{x1}</xmin><ymin>2</ymin><xmax>{x2}</xmax><ymax>9</ymax></bndbox></object>"
       "</annotation>")
SIZE = "<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"


@pytest.mark.parametrize("x1, x2, size, message", [
    (1, 41, SIZE.format(w=40, h=30),
     r"object 0 \(dog\) <bndbox> \[1.0, 2.0, 41.0, 9.0\] lies outside the 40 x 30 image"),
    (0, 10, SIZE.format(w=40, h=30), r"object 0 \(dog\) <bndbox> \[0.0, .*lies outside"),
    (10, 5, SIZE.format(w=40, h=30), r"object 0 \(dog\) has xmax < xmin"),
    ("ten", 5, SIZE.format(w=40, h=30), r"object 0 \(dog\) has a non-numeric <xmin> 'ten'"),
    ("nan", 5, SIZE.format(w=40, h=30), r"object 0 \(dog\) has a non-finite <xmin> 'nan'"),
    (1, 10, "", r"the annotation has no <size>"),
    (1, 10, SIZE.format(w="forty", h=30), r"<size> has a non-numeric <width> 'forty'"),
    (1, 10, SIZE.format(w=0, h=30), r"<size> <width> must be a positive integer, got 0"),
    (1, 10, SIZE.format(w=40.5, h=30), r"<size> <width> must be a positive integer, got 40.5"),
])
def test_voc_bad_xml_names_file_object_and_field(tmp_path, x1, x2, size, message):
    path = tmp_path / "000001.xml"
    path.write_text(XML.format(size=size, x1=x1, x2=x2))
    with pytest.raises(ValueError, match=r"000001\.xml: " + message):
        parse_voc_xml(path)


def test_voc_box_on_the_last_pixel_is_inside(tmp_path):
    path = tmp_path / "000001.xml"
    path.write_text(XML.format(size=SIZE.format(w=40, h=30), x1=1, x2=40))
    np.testing.assert_array_equal(parse_voc_xml(path)["boxes"], [[0, 1, 40, 9]])


def test_voc_huge_declared_size_is_refused(tmp_path):
    path = tmp_path / "000001.xml"
    path.write_text(XML.format(size=SIZE.format(w=100_000, h=100_000), x1=1, x2=10))
    with pytest.raises(LimitError, match=r"000001\.xml: <size> 100000 x 100000"):
        parse_voc_xml(path)


# ------------------------------------------------------------------- image files
def _png_header_only(width, height):
    """A PNG whose IHDR claims width x height, with a tiny IDAT (one row's worth)."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)     # 8-bit RGB
    return (image_io.PNG_SIGNATURE + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [100_000, 20_000])   # beyond and within OpenCV's own limit
def test_png_declaring_a_huge_size_is_refused_before_decoding(tmp_path, monkeypatch, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    assert image_io.header_size(path) == (side, side)

    def no_decoding(*args):
        raise AssertionError("cv2.imread was called")
    monkeypatch.setattr(image_io.cv2, "imread", no_decoding)
    with pytest.raises(LimitError, match=rf"bomb\.png \(declared {side} x {side}\) needs "
                                         rf"{side * side:,} pixels"):
        image_io.read_image(path)


def test_header_size_of_real_png_and_jpeg(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (13, 21, 3), dtype=np.uint8)
    for ext in ("png", "jpg"):
        assert cv2.imwrite(str(tmp_path / f"a.{ext}"), img)
        assert image_io.header_size(tmp_path / f"a.{ext}") == (13, 21)
        np.testing.assert_array_equal(image_io.read_image(tmp_path / f"a.{ext}").shape,
                                      (13, 21, 3))
    with limits(max_image_pixels=200), pytest.raises(LimitError,
                                                     match=r"a\.jpg \(declared 21 x 13\)"):
        image_io.read_image(tmp_path / "a.jpg")


def test_corrupt_and_missing_image_files(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ValueError, match=r"bad\.jpg: cannot decode the image"):
        image_io.read_image(bad)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_png_header_only(4, 4)[:30])
    with pytest.raises(ValueError, match=r"cut\.png: cannot decode the image"):
        image_io.read_image(truncated)
    with pytest.raises(FileNotFoundError, match=r"nothing\.png not found"):
        image_io.read_image(tmp_path / "nothing.png")


def test_coco_image_with_the_wrong_size_is_refused(tmp_path):
    path = _coco(tmp_path)
    _rewrite(path, lambda d: d["images"][0].update(width=15))
    with pytest.raises(ValueError, match=r"a\.png: size \(12, 16\) differs"):
        COCODetection(tmp_path, path)[0]


# ------------------------------------------------------- generators and the loader
@pytest.mark.parametrize("kwargs, error, message", [
    ({"image_size": 64.0}, TypeError, r"Shapes: image_size must be an int"),
    ({"image_size": 16}, ValueError, r"Shapes: image_size must be >= 32"),
    ({"image_size": 100_000}, LimitError, r"Shapes: image_size 100000"),
    ({"max_objects": 10 ** 6}, LimitError, r"masks of 1000000 objects"),
    ({"max_objects": True}, TypeError, r"max_objects must be an int"),
    ({"num_images": 2.5}, TypeError, r"num_images must be an int"),
    ({"seed": -1}, ValueError, r"seed must be >= 0"),
    ({"transforms": 3}, TypeError, r"transforms must be callable"),
])
def test_shapes_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Shapes(**kwargs)


def test_shapes_generate_checks_its_arguments():
    with pytest.raises(TypeError, match=r"generate: image_size must be an int"):
        generate(0, "train", 0, image_size=64.5)
    with pytest.raises(ValueError, match=r"generate: index must be >= 0"):
        generate(0, "train", -1)


class _Data:
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return np.zeros((2, 2, 3), np.uint8), {}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": 2.5}, TypeError, r"DataLoader: batch_size must be an int"),
    ({"batch_size": 0}, ValueError, r"DataLoader: batch_size must be >= 1"),
    ({"num_workers": -1}, ValueError, r"num_workers must be >= 0"),
    ({"num_workers": 1.0}, TypeError, r"num_workers must be an int"),
    ({"shuffle": "yes"}, TypeError, r"shuffle must be a bool"),
    ({"drop_last": None}, TypeError, r"drop_last must be a bool"),
    ({"seed": -3}, ValueError, r"seed must be >= 0"),
    ({"collate_fn": 3}, TypeError, r"collate_fn must be callable"),
])
def test_dataloader_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(_Data(), **kwargs)
    with pytest.raises(TypeError, match=r"dataset must have __len__ and __getitem__"):
        DataLoader(5)


def test_augmentation_pipelines_check_their_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"ssd_augmentation: size must be an int"):
        ssd_augmentation(64.0, rng)
    with pytest.raises(ValueError, match=r"max_ratio must be >= 1.0"):
        ssd_augmentation(64, rng, max_expand_ratio=0.5)
    with pytest.raises(ValueError, match=r"sampler_options\[0\] must be <= 1.0"):
        ssd_augmentation(64, rng, sampler_options=(2.0,))
    with pytest.raises(ValueError, match=r"RandomScaleTranslate: scale and translate"):
        yolo_augmentation(rng, scale=1.5)
    # the pipelines take uint8 images: a float one is refused on every call, not by chance
    image = np.full((32, 32, 3), 0.5, np.float32)
    for seed in range(4):
        with pytest.raises(ValueError, match=r"fill .* is outside the float32 image's range"):
            ssd_augmentation(32, np.random.default_rng(seed))(image, None)
