"""Nuclei (data/nuclei.py), the stardist 0.9.2 microscopy image: the normalisation, the
tiles and their targets checked against the raw label image, the train/val column split,
D4 augmentation, argument errors, and ``train-seg`` / ``eval-seg --data nuclei``.
Skipped when the stardist wheel cannot be downloaded."""
import json

import cv2
import numpy as np
import pytest

from scratchvision.data import nuclei as nu
from scratchvision.data.wheel_files import WheelUnavailable, wheel_file


@pytest.fixture(scope="module")
def raw():
    """The wheel's TIFFs as read by OpenCV: image (512, 512) and labels (512, 512)."""
    try:
        paths = [wheel_file(*nu.WHEEL, m) for m in (nu.IMAGE_MEMBER, nu.MASK_MEMBER)]
    except WheelUnavailable as e:
        pytest.skip(f"stardist wheel not available: {e}")
    return tuple(cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths)


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_whole_image(raw):
    img, lab = raw
    assert img.shape == lab.shape == (512, 512)
    image, labels = nu.load_nuclei()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    assert labels.dtype == np.int64 and np.array_equal(labels, lab)
    assert len(np.unique(labels)) - 1 == 125
    assert (image == image[..., :1]).all()                 # grey replicated to RGB
    lo, hi = np.percentile(img.astype(np.float64), [1, 99.8])
    want = np.round(np.clip((img - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(image[..., 0], want)
    assert image.min() == 0 and image.max() == 255


@pytest.mark.parametrize("split,tile,stride", [("train", 128, None), ("val", 128, None),
                                               ("train", 96, 80), ("val", 64, None)])
def test_tiles_match_label_image(raw, split, tile, stride):
    _, lab = raw
    ds = nu.Nuclei(split, tile=tile, stride=stride)
    image, _ = nu.load_nuclei()
    for i in range(len(ds)):
        img, t = ds[i]
        y, x = ds.origins[i]
        crop = lab[y:y + tile, x:x + tile]
        assert img.shape == (tile, tile, 3) and img.dtype == np.uint8
        assert np.array_equal(img, image[y:y + tile, x:x + tile])
        k = len(t["labels"])
        assert t["boxes"].shape == (k, 4) and t["boxes"].dtype == np.float32
        assert t["labels"].dtype == np.int64 and (t["labels"] == 1).all()
        assert t["masks"].shape == (k, tile, tile) and t["masks"].dtype == np.uint8
        assert t["image_id"] == i
        ids, counts = np.unique(crop[crop > 0], return_counts=True)
        assert sorted(t["instance_ids"]) == sorted(ids[counts >= nu.MIN_PIXELS])
        for mask, box, j in zip(t["masks"], t["boxes"], t["instance_ids"]):
            assert mask.sum() >= nu.MIN_PIXELS and set(np.unique(mask)) <= {0, 1}
            assert np.array_equal(mask, (crop == j).astype(np.uint8))
            assert box.tolist() == _tight_box(mask)
        sem = ds.semantic(i)
        assert sem.dtype == np.int64 and np.array_equal(sem, (crop > 0).astype(np.int64))
        assert np.array_equal(t["semantic"], sem)


def test_split_columns_and_counts(raw):
    _, lab = raw
    train, val = nu.Nuclei("train"), nu.Nuclei("val")
    assert (len(train), len(val)) == (35, 4)
    cover = {s: np.zeros((512, 512), bool) for s in ("train", "val")}
    for name, ds in (("train", train), ("val", val)):
        for y, x in ds.origins:
            cover[name][y:y + ds.tile, x:x + ds.tile] = True
    assert not (cover["train"].any(axis=0) & cover["val"].any(axis=0)).any()  # no shared column
    assert cover["train"][:, :384].all() and not cover["train"][:, 384:].any()
    assert cover["val"][:, 384:].all() and not cover["val"][:, :384].any()
    assert val.origins == [(0, 384), (128, 384), (256, 384), (384, 384)]
    val_ids = set().union(*(val[i][1]["instance_ids"].tolist() for i in range(len(val))))
    assert val_ids == set(np.unique(lab[:, 384:]).tolist()) - {0}
    assert len(val_ids) == 30
    assert sum(len(val[i][1]["labels"]) for i in range(len(val))) == 33
    train_ids = set().union(*(train[i][1]["instance_ids"].tolist() for i in range(len(train))))
    left_ids, left_counts = np.unique(lab[:, :384][lab[:, :384] > 0], return_counts=True)
    assert len(left_ids) == 102 and len(train_ids) == 101
    assert train_ids == set(left_ids[left_counts >= nu.MIN_PIXELS].tolist())
    assert len(set(left_ids) & val_ids) == 7                # nuclei cut by x = 384


def test_tile_origins_cover_the_region():
    assert nu.tile_origins(384, 128, 64) == [0, 64, 128, 192, 256]
    assert nu.tile_origins(512, 128, 128) == [0, 128, 256, 384]
    assert nu.tile_origins(384, 128, 100) == [0, 100, 200, 256]   # last flush with the end
    assert nu.tile_origins(128, 128, 7) == [0]


def test_augment_is_d4_and_deterministic(raw):
    plain = nu.Nuclei("train")
    aug = nu.Nuclei("train", augment=True, seed=3)
    again = nu.Nuclei("train", augment=True, seed=3)
    used = set()
    for i in range(len(plain)):
        img, t = aug[i]
        img2, t2 = again[i]
        assert np.array_equal(img, img2) and np.array_equal(t["masks"], t2["masks"])
        base_img, base_t = plain[i]
        base_sem = plain.semantic(i)
        ks = [k for k in range(8) if np.array_equal(nu._d4(base_img, k), img)
              and np.array_equal(nu._d4(base_sem, k), aug.semantic(i))]
        assert ks, f"tile {i} is not a flip/rotation of the plain tile"
        used.add(ks[0])
        assert sorted(t["instance_ids"]) == sorted(base_t["instance_ids"])
        for mask, box in zip(t["masks"], t["boxes"]):
            assert box.tolist() == _tight_box(mask)
    assert len(used) >= 4                                   # not one fixed transform


@pytest.mark.parametrize("kwargs,name,error", [
    ({"split": "test"}, "split", ValueError), ({"split": "training"}, "split", ValueError),
    ({"tile": 0}, "tile", ValueError), ({"tile": -5}, "tile", ValueError),
    ({"tile": 1.5}, "tile", TypeError), ({"tile": True}, "tile", TypeError),
    ({"stride": 0}, "stride", ValueError), ({"stride": -1}, "stride", ValueError),
    ({"seed": -1}, "seed", ValueError),
    ({"split": "val", "tile": 129}, "tile", ValueError),
    ({"split": "train", "tile": 385}, "tile", ValueError),
])
def test_bad_arguments(raw, kwargs, name, error):
    with pytest.raises(error, match=name):
        nu.Nuclei(**kwargs)


def test_index_out_of_range(raw):
    ds = nu.Nuclei("val")
    assert np.array_equal(ds[-1][0], ds[3][0])
    with pytest.raises(IndexError):
        ds[4]


def test_train_seg_and_eval_seg_cli(raw, tmp_path, capsys):
    """One epoch of the tiny U-Net on 4 train tiles (``--train-images`` caps the tiles);
    all 4 val tiles; result.json reports the foreground (nucleus) IoU."""
    from scratchvision.cli import main
    common = ["--data", "nuclei", "--model", "unet", "--size", "tiny", "--batch-size", "2",
              "--quiet"]
    out = tmp_path / "run"
    assert main(["train-seg", *common, "--epochs", "1", "--train-images", "4",
                 "--out", str(out), "--no-pictures"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["data"] == "nuclei"
    assert (result["train_images"], result["val_images"]) == (4, 4)
    last = result["history"][-1]
    assert len(last["val_iou"]) == 2
    assert result["val_foreground_iou"] == last["val_foreground_iou"] == last["val_iou"][1]
    assert 0.0 <= result["val_foreground_iou"] <= 1.0
    capsys.readouterr()
    assert main(["eval-seg", *common, "--weights", str(out / "model.npz")]) == 0
    text = capsys.readouterr().out
    assert "IoU nucleus" in text and "val mIoU" in text
