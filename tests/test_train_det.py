"""The detection commands end to end at a tiny size: train-det (and its exact resume),
eval-det, detect (pictures and a COCO results JSON that the evaluators read as it is),
and the argument checks."""
import json

import numpy as np
import pytest

from scratchvision.cli import main as cli_main
from scratchvision.eval.coco import evaluate_coco
from scratchvision.train_det import flip_boxes

COMMON = ["--model", "fast_rcnn", "--size", "tiny", "--image-size", "48", "--val-images", "4",
          "--seed", "0", "--workers", "1", "--quiet"]
TRAIN = ["--train-images", "8", "--batch-size", "2", "--epochs", "2", "--no-pictures"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))


def _log(path):
    return [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]


def test_flip_boxes():
    b = np.array([[2, 3, 10, 7]], np.float32)
    np.testing.assert_array_equal(flip_boxes(b, 20), [[10, 3, 18, 7]])
    np.testing.assert_array_equal(flip_boxes(flip_boxes(b, 20), 20), b)


def test_train_resume_equals_uninterrupted_run(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert cli_main(["train-det", *COMMON, *TRAIN, "--out", str(full)]) == 0
    assert cli_main(["train-det", *COMMON, *TRAIN, "--out", str(part), "--stop-after", "1"]) == 0
    assert len(_log(part)) == 1
    assert cli_main(["train-det", *COMMON, *TRAIN, "--out", str(part), "--resume"]) == 0
    a = [x for r in _log(full) for x in r["losses"]]
    b = [x for r in _log(part) for x in r["losses"]]
    assert a == b and len(a) == 8
    ra = json.loads((full / "result.json").read_text())
    rb = json.loads((part / "result.json").read_text())
    assert ra["val_map"] == rb["val_map"] and 0 <= ra["val_map"] <= 1
    for key in ("val_map07", "val_coco_ap", "ms_per_image", "proposal_ms_per_image", "val_ap"):
        assert key in ra


def test_resume_with_other_settings_is_refused(tmp_path):
    assert cli_main(["train-det", *COMMON, *TRAIN, "--out", str(tmp_path), "--stop-after",
                     "1"]) == 0
    with pytest.raises(SystemExit, match="lr: checkpoint 0.001, now 0.5") as info:
        cli_main(["train-det", *COMMON, *TRAIN, "--out", str(tmp_path), "--resume", "--lr",
                  "0.5"])
    assert info.value.code == 2


def test_eval_and_detect_write_coco_json_that_round_trips(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli_main(["train-det", *COMMON, *TRAIN, "--out", str(run)]) == 0
    weights = str(run / "model.npz")
    capsys.readouterr()
    assert cli_main(["eval-det", *COMMON, "--weights", weights, "--metric", "coco"]) == 0
    text = capsys.readouterr().out
    assert "VOC mAP@0.5" in text and "COCO" in text and "circle" in text
    assert cli_main(["eval-det", *COMMON, "--weights", weights, "--svd", "4,2"]) == 0
    assert "VOC mAP@0.5" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["eval-det", *COMMON, "--weights", weights, "--svd", "4"])
    out = tmp_path / "det"
    assert cli_main(["detect", *COMMON, "--weights", weights, "--split", "val", "--images", "3",
                     "--out", str(out), "--export-gt", str(tmp_path / "gt.json")]) == 0
    dets = json.loads((out / "detections.json").read_text())
    assert {d["image_id"] for d in dets} <= {0, 1, 2}
    assert all(set(d) == {"image_id", "category_id", "bbox", "score"} for d in dets)
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png",
                                                         "000002.png"]
    gt = json.loads((tmp_path / "gt.json").read_text())
    assert len(gt["images"]) == 3 and {c["id"] for c in gt["categories"]} == {1, 2, 3}
    if dets:
        stats = evaluate_coco(tmp_path / "gt.json", out / "detections.json")
        assert -1 <= stats["AP"] <= 1
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "gt.json"))
        if dets:
            coco.loadRes(str(out / "detections.json"))


def test_detect_on_an_image_file(tmp_path):
    import cv2
    run = tmp_path / "run"
    assert cli_main(["train-det", *COMMON, *TRAIN, "--epochs", "1", "--out", str(run)]) == 0
    from scratchvision.data.shapes import Shapes
    image = Shapes("test", 1, image_size=40)[0][0]
    cv2.imwrite(str(tmp_path / "in.png"), image[..., ::-1])
    out = tmp_path / "det"
    assert cli_main(["detect", *COMMON, "--weights", str(run / "model.npz"), "--image",
                     str(tmp_path / "in.png"), "--out", str(out)]) == 0
    assert (out / "000000.png").exists() and (out / "detections.json").exists()
    with pytest.raises(SystemExit, match="not a readable image"):
        cli_main(["detect", *COMMON, "--weights", str(run / "model.npz"), "--image",
                  str(tmp_path / "missing.png"), "--out", str(out)])


def test_wrong_weights_name_the_training_settings(tmp_path):
    run = tmp_path / "run"
    assert cli_main(["train-det", *COMMON, *TRAIN, "--epochs", "1", "--out", str(run)]) == 0
    args = [a if a != "tiny" else "small" for a in COMMON]
    with pytest.raises(SystemExit, match="trained with --model fast_rcnn --size tiny"):
        cli_main(["eval-det", *args, "--weights", str(run / "model.npz")])


@pytest.mark.parametrize("flag", [["--epochs", "0"], ["--batch-size", "0"], ["--lr", "-1"],
                                  ["--model", "yolo"]])
def test_impossible_arguments_are_refused(flag, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["train-det", *COMMON, *TRAIN, "--out", str(tmp_path), *flag])
    assert "error" in capsys.readouterr().err
