"""The command line's handling of bad input (``scratchvision/cli.py``): impossible values
refused by argparse, one-line errors with exit status 2 (a traceback only with --debug),
internal errors and Ctrl-C, --resume with other settings (refused, or --force), weights of
another model, --quiet and --help, --device cuda without a GPU, and corrupt weight and
checkpoint files. Training runs are the tiniest the segmenter allows (seconds)."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from scratchvision import backend
from scratchvision.cli import main

SEG = ["--size", "tiny", "--image-size", "32", "--val-images", "2", "--batch-size", "2",
       "--quiet"]
SEG_TRAIN = [*SEG, "--train-images", "4", "--epochs", "2", "--no-pictures"]
DET = ["--model", "fast_rcnn", "--size", "tiny", "--image-size", "48", "--val-images", "2",
       "--workers", "1", "--quiet"]


def _exit(argv, capsys) -> tuple[int, str]:
    """(exit status, stderr) of a command that fails."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    """A U-Net run stopped after its first epoch of two: OUT with checkpoint and weights."""
    out = tmp_path_factory.mktemp("seg") / "run"
    assert main(["train-seg", *SEG_TRAIN, "--out", str(out), "--stop-after", "1"]) == 0
    return out


# ------------------------------------------------------------ 1. argparse refuses
@pytest.mark.parametrize("command, flag, value", [
    ("train-seg", "--epochs", "0"), ("train-seg", "--batch-size", "0"),
    ("train-seg", "--lr", "-1e-3"), ("train-seg", "--lr", "nan"),
    ("train-seg", "--train-images", "0"), ("train-seg", "--image-size", "-8"),
    ("train-seg", "--weight-decay", "-1"), ("train-seg", "--seed", "-1"),
    ("train-seg", "--stop-after", "0"), ("train-seg", "--bucket-cap-mb", "0"),
    ("train-seg", "--device", "gpu"), ("demo", "--epochs", "0"),
    ("eval-seg", "--val-images", "0"),
    ("train-det", "--epochs", "0"), ("train-det", "--workers", "-1"),
    ("train-det", "--lr", "0"), ("train-det", "--weight-decay", "-0.1"),
    ("train-det", "--clip-grad-norm", "-1"), ("train-det", "--train-images", "zero"),
    ("eval-det", "--eval-batch-size", "0"), ("detect", "--score-thresh", "1.5"),
    ("detect", "--score-thresh", "-0.1"), ("detect", "--images", "0"),
    ("gradcheck", "--seed", "-2")])
def test_impossible_values_are_refused_by_argparse(command, flag, value, capsys):
    extra = {"train-det": DET, "eval-det": [*DET, "--weights", "w.npz"],
             "detect": [*DET, "--weights", "w.npz", "--split", "val", "--out", "o"],
             "eval-seg": ["--weights", "w.npz"]}.get(command, [])
    code, err = _exit([command, *extra, f"{flag}={value}"], capsys)
    assert code == 2
    assert err.startswith("usage: scratchvision " + command)
    assert f"error: argument {flag}: " in err, err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train-seg", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("--epochs EPOCHS (default: 10)", "(default: 0.003)", "(default: 0)",
                  "(default: runs/seg)", "(default: unet)"):
        assert shown in text, shown
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    assert "(default: 0.5)" in " ".join(capsys.readouterr().out.split())


# ----------------------------------------------------- 2. one line, exit 2, --debug
def _run(*argv):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "scratchvision", *argv], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_user_error_is_one_line_and_exit_status_2_and_debug_shows_the_traceback(
        tmp_path):
    missing = str(tmp_path / "missing.npz")
    r = _run("eval-seg", *SEG, "--weights", missing)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"scratchvision eval-seg: error: --weights {missing}: no such file"]
    r = _run("--debug", "eval-seg", *SEG, "--weights", missing)
    assert r.returncode == 1 and "Traceback" in r.stderr and "FileNotFoundError" in r.stderr
    r = _run("eval-seg", *SEG, "--weights", missing, "--debug")    # after the command too
    assert "Traceback" in r.stderr


def test_internal_errors_and_interrupts(monkeypatch, capsys):
    from scratchvision import train_seg

    def crash(args):
        raise RuntimeError("something broke")
    monkeypatch.setattr(train_seg, "eval_command", crash)
    code, err = _exit(["eval-seg", "--weights", "w.npz"], capsys)
    assert code == 1
    assert err.strip() == ("scratchvision eval-seg: internal error: RuntimeError: something "
                           "broke (run with --debug for the traceback)")
    with pytest.raises(RuntimeError, match="something broke"):
        main(["eval-seg", "--weights", "w.npz", "--debug"])

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_seg, "eval_command", interrupted)
    code, err = _exit(["eval-seg", "--weights", "w.npz"], capsys)
    assert code == 130 and err.strip() == "scratchvision eval-seg: interrupted"


def test_errors_raised_inside_a_command_are_one_line(tmp_path, capsys):
    code, err = _exit(["train-det", "--model", "ssd", "--schedule", "alternating",
                       "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 2
    assert err.strip().splitlines() == ["scratchvision train-det: error: --schedule "
                                        "alternating: only faster_rcnn, mask_rcnn have the "
                                        "4-step alternating training"]
    code, err = _exit(["train-seg", *SEG_TRAIN, "--out", str(tmp_path), "--force"], capsys)
    assert code == 2 and "--force only applies with --resume" in err


# -------------------------------------------------------- 3. --resume and --force
def test_resume_with_other_settings_lists_them_and_force_continues(seg_run, capsys,
                                                                    tmp_path):
    run = tmp_path / "run"
    shutil.copytree(seg_run, run)
    code, err = _exit(["train-seg", *SEG_TRAIN, "--out", str(run), "--resume", "--lr", "0.01",
                       "--batch-size", "4"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "batch_size: checkpoint 2, now 4" in err and "lr: checkpoint 0.003, now 0.01" in err
    assert "--force" in err
    assert main(["train-seg", *SEG_TRAIN, "--out", str(run), "--resume", "--lr", "0.01",
                 "--force"]) == 0
    captured = capsys.readouterr()
    assert "warning: resuming" in captured.err and "lr: checkpoint 0.003, now 0.01" in \
        captured.err
    assert "val mIoU" in captured.out
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[1]["lr"] == pytest.approx(0.01 * 0.01)     # the new schedule's end


def test_force_takes_the_new_hyper_parameters(tmp_path):
    """Trainer level: after a forced resume the optimiser runs at the new lr schedule."""
    from tests.test_trainer import trainer
    trainer(tmp_path, epochs=4).fit(stop_after=2)
    t = trainer(tmp_path, epochs=4, weight_decay=0.5)
    t.optimizer.param_groups[0]["lr"] = 123.0                # what a fresh schedule resets
    history = t.fit(resume=True, force=True)
    assert len(history) == 4
    assert t.optimizer.param_groups[0]["weight_decay"] == 0.5
    assert history[-1]["lr"] == pytest.approx(0.1 * 0.01)


# ------------------------------------------------------ 4. weights of another model
def test_eval_with_the_wrong_model_names_the_training_settings(seg_run, capsys):
    weights = str(seg_run / "model.npz")
    code, err = _exit(["eval-seg", *SEG, "--model", "fcn8s", "--weights", weights], capsys)
    assert code == 2
    assert f"weights {weights} were trained with --model unet --size tiny" in err
    assert "not --model fcn8s" in err and "size" not in err.split("not ")[1]
    code, err = _exit(["eval-seg", *[a if a != "tiny" else "small" for a in SEG],
                       "--weights", weights], capsys)
    assert "were trained with --model unet --size tiny" in err and "not --size small" in err


def test_eval_with_no_record_says_the_weights_do_not_fit(seg_run, tmp_path, capsys):
    lone = tmp_path / "lone.npz"                   # no result.json / checkpoint beside it
    shutil.copy(seg_run / "model.npz", lone)
    code, err = _exit(["eval-seg", *SEG, "--model", "fcn8s", "--weights", str(lone)], capsys)
    assert code == 2 and f"weights {lone} do not fit --model fcn8s --size tiny" in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------- 5. --quiet results
def test_quiet_training_prints_the_result_and_where_the_files_are(seg_run, capsys):
    main(["train-seg", *SEG_TRAIN, "--out", str(seg_run), "--resume"])
    out = capsys.readouterr().out
    assert "unet: val mIoU" in out
    for name in ("model.npz", "best.npz", "result.json", "log.jsonl"):
        assert str(seg_run / name) in out


# --------------------------------------------------------- 6. --device cuda, no GPU
@pytest.mark.skipif(backend.gpu_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("argv", [["gradcheck", "relu"], ["eval-seg", "--weights", "w.npz"]])
def test_device_cuda_without_a_gpu_is_one_line(argv, capsys):
    code, err = _exit([*argv, "--device", "cuda"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "no usable GPU" in err, err
    assert "--device cuda" in err


# ------------------------------------------------------------------ 7. corrupt files
def _corrupt_files(folder, good) -> dict:
    raw = good.read_bytes()
    other = folder / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("notes.txt", "hello")
    files = {folder / "empty.npz": (b"", r"empty file \(0 bytes\)"),
             folder / "half.npz": (raw[:len(raw) // 2],
                                   r"truncated file \(zip central directory missing\).*was "
                                   "the save interrupted"),
             folder / "text.npz": (b"not weights\n", "a text file"),
             folder / "model.pt": (b"\x80\x02}q\x00.", "pickle")}
    for path, (data, _) in files.items():
        path.write_bytes(data)
    files[other] = (None, "zip archive without index.json")
    return {path: pattern for path, (_, pattern) in files.items()}


def test_corrupt_weights_give_one_message_naming_the_file(seg_run, tmp_path, capsys):
    for path, pattern in _corrupt_files(tmp_path, seg_run / "model.npz").items():
        code, err = _exit(["eval-seg", *SEG, "--weights", str(path)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert re.search(re.escape(str(path)) + ".*" + pattern, err), err
    weights = tmp_path / "random.npz"                # a .npz of arrays of something else
    np.savez(weights, a=np.zeros(3))
    code, err = _exit(["eval-seg", *SEG, "--weights", str(weights)], capsys)
    assert code == 2 and f"weights {weights} do not fit --model unet" in err


def test_corrupt_checkpoint_on_resume_names_the_file(seg_run, tmp_path, capsys):
    for path, pattern in _corrupt_files(tmp_path, seg_run / "checkpoint.npz").items():
        run = tmp_path / f"run_{path.stem}"
        run.mkdir()
        (run / "checkpoint.npz").write_bytes(path.read_bytes())
        code, err = _exit(["train-seg", *SEG_TRAIN, "--out", str(run), "--resume"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert re.search(re.escape(str(run / "checkpoint.npz")) + ".*" + pattern, err), err


def test_resume_with_the_optimiser_state_of_another_model_names_the_file(tmp_path):
    from tests.test_trainer import make_model, trainer
    trainer(tmp_path).fit(stop_after=1)
    model = make_model()
    t = trainer(tmp_path, model=model, params=[model.linear.weight])   # one parameter of two
    with pytest.raises(ValueError, match="optimiser state in " + re.escape(
            str(tmp_path / "checkpoint.npz")) + " is not this model's"):
        t.fit(resume=True)

