"""VOC and COCO datasets on fixture folders the tests write themselves."""
import json

import cv2
import numpy as np
import pytest

from scratchvision.data import (COCODetection, VOCDetection, VOCSegmentation, mask_utils,
                                parse_voc_xml, voc_palette)

XML = """<annotation><filename>{iid}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>"""
OBJ = """<object><name>{name}</name><truncated>{trunc}</truncated><difficult>{diff}</difficult>
<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"""


def _write_image(path, h, w, seed=0):
    img = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)


def _voc_tree(root, objects_per_image):
    d = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main", "ImageSets/Segmentation",
                "SegmentationClass"):
        (d / sub).mkdir(parents=True)
    ids = []
    for n, objs in enumerate(objects_per_image):
        iid = f"{n:06d}"
        ids.append(iid)
        _write_image(d / "JPEGImages" / f"{iid}.jpg", 30, 40, n)
        text = "".join(OBJ.format(**o) for o in objs)
        (d / "Annotations" / f"{iid}.xml").write_text(XML.format(iid=iid, w=40, h=30,
                                                                 objects=text))
    (d / "ImageSets/Main/train.txt").write_text("\n".join(ids) + "\n")
    return d, ids


def _obj(name, x1, y1, x2, y2, diff=0, trunc=0):
    return dict(name=name, x1=x1, y1=y1, x2=x2, y2=y2, diff=diff, trunc=trunc)


def test_voc_detection(tmp_path):
    d, ids = _voc_tree(tmp_path, [[_obj("dog", 1, 1, 10, 20), _obj("person", 5, 6, 30, 25, 1, 1)],
                                  []])
    ds = VOCDetection(tmp_path, "2007", "train")
    assert len(ds) == 2
    img, t = ds[0]
    assert img.shape == (30, 40, 3) and img.dtype == np.uint8
    # 1-based inclusive -> 0-based pixel edges: (xmin - 1, ymin - 1, xmax, ymax)
    np.testing.assert_array_equal(t["boxes"], [[0, 0, 10, 20], [4, 5, 30, 25]])
    np.testing.assert_array_equal(t["boxes_inclusive"], [[0, 0, 9, 19], [4, 5, 29, 24]])
    np.testing.assert_array_equal(t["labels"], [12, 15])          # dog, person (1-based)
    np.testing.assert_array_equal(t["difficult"], [False, True])
    np.testing.assert_array_equal(t["truncated"], [False, True])
    assert t["image_id"] == ids[0]
    _, t1 = ds[1]
    assert t1["boxes"].shape == (0, 4) and t1["labels"].shape == (0,)
    # root may also be the VOC2007 folder itself; keep_difficult=False drops them
    _, t = VOCDetection(d, image_set="train", keep_difficult=False)[0]
    np.testing.assert_array_equal(t["labels"], [12])


def test_voc_bad_annotations(tmp_path):
    d, _ = _voc_tree(tmp_path, [[_obj("dog", 10, 1, 5, 20)]])
    with pytest.raises(ValueError, match=r"000000\.xml.*xmax < xmin"):
        VOCDetection(tmp_path)[0]
    (d / "Annotations/000000.xml").write_text(XML.format(
        iid=0, w=4, h=4, objects=OBJ.format(**_obj("unicorn", 1, 1, 2, 2))))
    with pytest.raises(ValueError, match=r"000000\.xml.*unknown class name 'unicorn'"):
        VOCDetection(tmp_path)[0]
    (d / "Annotations/000000.xml").write_text("<annotation><object>")
    with pytest.raises(ValueError, match=r"000000\.xml: malformed XML"):
        parse_voc_xml(d / "Annotations/000000.xml")
    (d / "Annotations/000000.xml").write_text(
        "<annotation><object><name>dog</name></object></annotation>")
    with pytest.raises(ValueError, match="no <bndbox>"):
        parse_voc_xml(d / "Annotations/000000.xml")
    with pytest.raises(FileNotFoundError, match="VOC2012"):
        VOCDetection(tmp_path, year="2012")


def test_voc_palette_known_values():
    pal = voc_palette()
    np.testing.assert_array_equal(pal[:4], [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]])
    np.testing.assert_array_equal(pal[15], [192, 128, 128])       # person
    np.testing.assert_array_equal(pal[255], [224, 224, 192])      # void


def test_voc_segmentation_palette_png(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    d, ids = _voc_tree(tmp_path, [[], []])
    (d / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids))
    labels = np.zeros((30, 40), np.uint8)
    labels[5:20, 3:15] = 15
    labels[4, :] = 255
    labels[22:, 30:] = 7
    png = image_mod.fromarray(labels, mode="P")
    png.putpalette(voc_palette().reshape(-1).tolist())
    png.save(d / "SegmentationClass" / f"{ids[0]}.png")
    cv2.imwrite(str(d / "SegmentationClass" / f"{ids[1]}.png"), labels)   # plain indices
    ds = VOCSegmentation(tmp_path, year="2007")
    for i in range(2):
        img, t = ds[i]
        np.testing.assert_array_equal(t["semantic"], labels)
        assert img.shape == (30, 40, 3)
    bad = labels.copy()
    bad[0, 0] = 40
    cv2.imwrite(str(d / "SegmentationClass" / f"{ids[1]}.png"), bad)
    with pytest.raises(ValueError, match="class index 40"):
        ds[1]


def _coco_fixture(tmp_path):
    h, w = 24, 32
    for n in (1, 2):
        _write_image(tmp_path / f"im{n}.png", h, w, n)
    rle_mask = np.zeros((h, w), np.uint8)
    rle_mask[3:9, 20:30] = 1
    crowd_mask = np.zeros((h, w), np.uint8)
    crowd_mask[12:22, 2:12] = 1
    data = {
        "images": [{"id": 1, "file_name": "im1.png", "height": h, "width": w},
                   {"id": 2, "file_name": "im2.png", "height": h, "width": w}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 18, "bbox": [2.0, 3.0, 8.0, 6.0],
             "area": 48.0, "iscrowd": 0, "segmentation": [[2, 3, 10, 3, 10, 9, 2, 9]]},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [20.0, 3.0, 10.0, 6.0],
             "area": 60.0, "iscrowd": 0, "segmentation": mask_utils.encode(rle_mask)},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [2.0, 12.0, 10.0, 10.0],
             "area": 100.0, "iscrowd": 1,
             "segmentation": mask_utils.encode(crowd_mask, compressed=False)},
        ]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, data, rle_mask, crowd_mask


def test_coco_detection(tmp_path):
    path, data, rle_mask, crowd_mask = _coco_fixture(tmp_path)
    ds = COCODetection(tmp_path, path)
    assert len(ds) == 2 and ds.classes == ("background", "car", "dog")
    img, t = ds[0]
    assert img.shape == (24, 32, 3)
    np.testing.assert_array_equal(t["boxes"], [[2, 3, 10, 9], [20, 3, 30, 9], [2, 12, 12, 22]])
    np.testing.assert_array_equal(t["labels"], [2, 1, 1])          # cat ids 3 < 18
    assert ds.label_to_cat_id[2] == 18
    np.testing.assert_array_equal(t["iscrowd"], [0, 0, 1])
    poly_mask = np.zeros((24, 32), np.uint8)
    poly_mask[3:9, 2:10] = 1                                       # continuous coords
    np.testing.assert_array_equal(t["masks"][0], poly_mask)
    np.testing.assert_array_equal(t["masks"][1], rle_mask)
    np.testing.assert_array_equal(t["masks"][2], crowd_mask)
    _, t2 = ds[1]
    assert t2["masks"].shape == (0, 24, 32) and t2["boxes"].shape == (0, 4)
    assert len(COCODetection(tmp_path, path, remove_images_without_annotations=True)) == 1
    assert "masks" not in COCODetection(tmp_path, path, masks=False)[0][1]


def test_coco_bad_files(tmp_path):
    path, data, *_ = _coco_fixture(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"instances\.json: not valid JSON"):
        COCODetection(tmp_path, path)
    broken = json.loads(json.dumps(data))
    del broken["annotations"][1]["bbox"]
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"instances\.json: annotations\[1\] \(id 2\) has no "
                                         r"'bbox'"):
        COCODetection(tmp_path, path)
    broken = json.loads(json.dumps(data))
    broken["annotations"][0]["bbox"] = [1, 1, -2, 3]
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"annotations\[0\].*negative width"):
        COCODetection(tmp_path, path)
    broken = json.loads(json.dumps(data))
    broken["annotations"][2]["category_id"] = 99
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"annotations\[2\] \(id 3\): category_id 99"):
        COCODetection(tmp_path, path)
    broken = json.loads(json.dumps(data))
    broken["annotations"][1]["segmentation"] = {"size": [24, 32], "counts": [5, 3]}
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"annotations\[1\] \(id 2\) 'segmentation'.*sum to 8"):
        COCODetection(tmp_path, path)[0]
