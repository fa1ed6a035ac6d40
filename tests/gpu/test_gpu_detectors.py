"""Every detector on the GPU: its loss terms and every parameter's gradient equal the
CPU's (the same sampled RoIs/windows: the default generator is seeded identically before
each side), predictions come back as host-readable Tensors, and ``train-det --device
cuda`` trains and evaluates. Sizes are small: in CI these run on the CuPy stand-in under
the CUDA simulator."""
import json

import numpy as np
import pytest

import scratchvision as sv
from scratchvision.cli import main as cli_main
from scratchvision.nets import build_detector

pytestmark = pytest.mark.gpu


def _mini(name):
    sv.manual_seed(0)
    if name == "fast_rcnn":
        return build_detector(name, 4, "tiny", widths=(2, 2, 3, 4), representation_size=8)
    if name == "sliding_window":      # few windows: each conv thread runs in Python here
        return build_detector(name, 4, "tiny", widths=(2, 2), representation_size=4,
                              windows_per_image=4)
    if name == "ssd":                 # two maps (8 x 8, 4 x 4): fewer convs to simulate
        return build_detector(name, 4, "tiny", widths=(2, 2, 2), sources=1, extras=((2, 2),))
    if name in ("faster_rcnn", "mask_rcnn"):   # a 4 x 4 map, few anchors and RoIs
        extra = {"mask_layers": (2,)} if name == "mask_rcnn" else {}
        return build_detector(name, 4, "tiny", widths=(2, 2, 3, 4), representation_size=8,
                              anchor_sizes=(16,), rpn_batch_size_per_image=16,
                              box_batch_size_per_image=8, **extra)
    return build_detector(name, 4, "tiny")


def _data():
    from scratchvision.data.shapes import Shapes
    from scratchvision.nets.detection import normalise
    image, t = Shapes("train", 1, image_size=32, seed=0)[0]
    x = normalise(image[None])
    props = [np.concatenate([t["boxes"] + [1, -1, 2, 1], [[0, 0, 16, 16], [8, 4, 30, 28]]]
                            ).clip(0, 32).astype(np.float32)]
    return x, [{"boxes": t["boxes"], "labels": t["labels"], "masks": t["masks"]}], props


@pytest.mark.parametrize("name", ["fast_rcnn", "faster_rcnn", "mask_rcnn", "rcnn",
                                  "sliding_window", "yolo_v1", "ssd"])
def test_detector_loss_and_gradients_on_gpu_match_cpu(name):
    x, targets, props = _data()
    results = []
    for device in ("cpu", "cuda"):
        model = _mini(name)
        model.to(device)
        extra = {"proposals": props} if getattr(model, "uses_proposals", False) else {}
        sv.manual_seed(1)
        terms = model.loss(sv.tensor(x, device=device), targets, **extra)
        values = list(terms.values())
        total = values[0]
        for v in values[1:]:
            total = total + v
        total.backward()
        grads = {k: p.grad.data for k, p in model.named_parameters() if p.grad is not None}
        results.append(({k: v.item() for k, v in terms.items()}, grads))
    (cpu_terms, cpu_grads), (gpu_terms, gpu_grads) = results
    for k, v in cpu_terms.items():
        assert gpu_terms[k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
    assert cpu_grads.keys() == gpu_grads.keys() and cpu_grads
    for k, g in cpu_grads.items():
        g_dev = gpu_grads[k]
        assert type(g_dev).__module__.startswith("cupy"), k      # gradients stay on device
        np.testing.assert_allclose(g_dev.get(), g, rtol=1e-3,
                                   atol=1e-4 * np.abs(g).max() + 1e-7,
                                   err_msg=k)


def test_fast_rcnn_predict_on_gpu_matches_cpu():
    x, _, props = _data()
    out = []
    for device in ("cpu", "cuda"):
        model = _mini("fast_rcnn").eval()
        model.to(device)
        model.roi_heads.score_thresh = 0.0
        out.append(model.predict(sv.tensor(x, device=device), props)[0])
    for k in ("boxes", "scores", "labels"):
        np.testing.assert_allclose(out[1][k].numpy(), out[0][k].numpy(), rtol=1e-4, atol=1e-4)


def test_train_det_cli_on_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))
    from scratchvision.nets import fast_rcnn
    monkeypatch.setitem(fast_rcnn.SIZES, "tiny", dict(widths=(2, 2, 2, 2), depths=(1, 1, 1, 1),
                                                      representation_size=4))
    assert cli_main(["train-det", "--model", "fast_rcnn", "--size", "tiny", "--image-size",
                     "32", "--train-images", "1", "--val-images", "1", "--batch-size", "1",
                     "--epochs", "1", "--workers", "1", "--device", "cuda", "--quiet",
                     "--no-pictures", "--out", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert np.isfinite(result["history"][-1]["loss"]) and 0 <= result["val_map"] <= 1
