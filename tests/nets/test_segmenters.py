"""Segmenters: output shapes (odd sizes too), a float64 directional gradient check through
each whole model, a short overfit run, the bilinear transposed conv, checkpoint resume,
and the demo end to end at a tiny size."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import nn
from scratchvision.nets import SEGMENTERS, UNet, build_segmenter
from scratchvision.train_seg import model_kwargs, train

TINY = dict(widths=(4, 4, 6, 6, 8), depths=(1, 1, 1, 1, 1), head_width=8)


def tiny(name: str, num_classes: int = 3):
    sv.manual_seed(0)
    if name == "unet":
        return UNet(num_classes, base=4, depth=3)
    model = build_segmenter(name, num_classes, **dict(TINY, dropout=0.0))
    if name == "dilated":
        # The identity-initialised context module passes exact zeros from one ReLU into the
        # next, a kink where finite differences disagree with any subgradient: jitter it.
        rng = np.random.default_rng(0)
        for p in model.context.parameters():
            p.data += 0.05 * rng.standard_normal(p.shape).astype(p.dtype)
    return model


@pytest.mark.parametrize("name", SEGMENTERS)
@pytest.mark.parametrize("size", [(64, 64), (37, 45)])
def test_output_shape(name, size):
    model = tiny(name)
    with sv.no_grad():
        y = model(sv.randn(2, 3, *size))
    assert y.shape == (2, 3) + size


def test_unet_valid_padding_output_size():
    model = UNet(2, base=4, depth=2, padding="valid")
    with sv.no_grad():
        y = model(sv.randn(1, 3, 44, 44))
    assert y.shape[-2:] == model.output_size(44, 44) == (4, 4)
    # the paper's own numbers: depth 4, 572 -> 388
    assert UNet(2, depth=4, padding="valid").output_size(572, 572) == (388, 388)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_directional_gradient_float64(name):
    """d/dt L(theta + t d) at t=0 by central differences equals <grad L, d> for a random
    unit direction d over the input and every parameter: one check covers the whole model
    (batch norm in training mode included, so 64x64 inputs keep >= 8 values per channel at
    the coarsest level, where a 2-value batch statistic would be too curved)."""
    model = tiny(name).double()
    rng = np.random.default_rng(1)
    x = sv.tensor(rng.standard_normal((2, 3, 64, 64)), requires_grad=True)
    target = rng.integers(0, 3, (2, 64, 64))
    params = [x] + list(model.parameters())
    dirs = [rng.standard_normal(p.shape) for p in params]
    norm = np.sqrt(sum(float((d * d).sum()) for d in dirs))
    dirs = [d / norm for d in dirs]

    def loss_value():
        return float(F.cross_entropy(model(x), target).item())

    loss = F.cross_entropy(model(x), target)
    loss.backward()
    analytic = sum(float((p.grad * d).sum()) for p, d in zip(params, dirs) if p.grad is not None)
    eps = 1e-5
    with sv.no_grad():
        for p, d in zip(params, dirs):
            p.data += eps * d
        up = loss_value()
        for p, d in zip(params, dirs):
            p.data -= 2 * eps * d
        down = loss_value()
        for p, d in zip(params, dirs):
            p.data += eps * d
    numeric = (up - down) / (2 * eps)
    assert abs(analytic - numeric) <= 1e-8 + 1e-4 * abs(numeric), (analytic, numeric)
    assert abs(analytic) > 1e-5  # the check is not vacuous


@pytest.mark.parametrize("name", ["fcn8s", "unet", "deconvnet", "dilated"])
def test_overfit_few_images(name):
    """A few images, many steps: the loss falls by a large factor."""
    from scratchvision.data.shapes import Shapes
    from scratchvision.train_seg import normalise
    ds = Shapes("train", 4, image_size=32, seed=3)
    x = normalise(np.stack([ds[i][0] for i in range(4)]))
    y = np.stack([ds[i][1]["semantic"] for i in range(4)]).astype(np.int64)
    sv.manual_seed(0)
    model = build_segmenter(name, 4, **(dict(base=8, depth=2) if name == "unet" else
                                        dict(TINY, widths=(8, 8, 12, 12, 16), head_width=16,
                                             dropout=0.0)))
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    xt = sv.tensor(x)
    first = None
    for _ in range(40):
        loss = F.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or loss.item()
    assert loss.item() < first / 4, (first, loss.item())


def test_bilinear_transposed_conv_matches_interpolate():
    """A x f transposed conv (kernel 2f, stride f, padding f/2) with the bilinear init equals
    F.interpolate(bilinear, align_corners=False) away from the border; at the border the
    transposed conv sees zero padding where interpolate clamps to the edge pixel."""
    from scratchvision.nets.fcn import upsampler
    rng = np.random.default_rng(0)
    x = sv.tensor(rng.standard_normal((1, 2, 6, 7)).astype(np.float32))
    for f in (2, 4):
        up = upsampler(2, f)
        with sv.no_grad():
            a = up(x).numpy()
            b = F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False).numpy()
        assert a.shape == b.shape
        m = f  # one input cell of border on each side
        np.testing.assert_allclose(a[..., m:-m, m:-m], b[..., m:-m, m:-m], rtol=1e-5, atol=1e-5)
        assert not np.allclose(a[..., 0, :], b[..., 0, :])


def _args(tmp_path, **kw):
    base = dict(model="unet", size="tiny", image_size=32, train_images=16, val_images=4,
                batch_size=8, seed=0, device="cpu", quiet=True, epochs=2, optimizer="adam",
                lr=3e-3, weight_decay=1e-4, out=str(tmp_path / "run"), resume=False,
                no_pictures=True, data="shapes", stop_after=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_resume_continues_exactly(tmp_path):
    straight = train(_args(tmp_path / "a", epochs=3))
    train(_args(tmp_path / "b", epochs=3, stop_after=1))  # interrupted after one epoch ...
    resumed = train(_args(tmp_path / "b", epochs=3, resume=True))  # ... and resumed
    a = [loss for h in straight["history"] for loss in h["losses"]]
    b = [loss for h in resumed["history"] for loss in h["losses"]]
    assert a == b
    log = [json.loads(line) for line in open(tmp_path / "b" / "run" / "log.jsonl")]
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_resume_without_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(_args(tmp_path, resume=True))


def test_demo_end_to_end_tiny(tmp_path, capsys, monkeypatch):
    from scratchvision import train_det
    from scratchvision.cli import main
    # the demo's detector at a test's size (the real one: train_det.DEMO, ~3 minutes)
    monkeypatch.setattr(train_det, "DEMO", dict(train_det.DEMO, size="tiny", image_size=32,
                                                train_images=8, val_images=4, epochs=1))
    monkeypatch.setenv("SCRATCHVISION_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--train-images", "24", "--val-images", "6", "--epochs", "1",
                 "--image-size", "32", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "val mIoU" in text and "val box mAP@0.5" in text
    assert (out / "detection" / "detections.png").stat().st_size > 1000
    assert (out / "demo.png").stat().st_size > (out / "predictions.png").stat().st_size
    assert main(["demo", "--train-images", "24", "--val-images", "6", "--epochs", "1",
                 "--image-size", "32", "--out", str(tmp_path / "seg_only"), "--quiet",
                 "--no-detection"]) == 0
    assert not (tmp_path / "seg_only" / "detection").exists()
    assert (out / "predictions.png").stat().st_size > 1000
    assert (out / "training_curves.png").exists() and (out / "model.npz").exists()
    assert main(["eval-seg", "--model", "unet", "--size", "tiny", "--image-size", "32",
                 "--val-images", "6", "--weights", str(out / "model.npz"), "--quiet"]) == 0


def test_model_kwargs_sizes():
    assert model_kwargs("unet", "tiny") == {"base": 8, "depth": 3}
    with pytest.raises(ValueError, match="size must be"):
        model_kwargs("fcn8s", "huge")


def test_context_module_starts_as_identity():
    """Identity initialisation: on non-negative input the untrained module changes nothing."""
    from scratchvision.nets import ContextModule
    m = ContextModule(4)
    x = sv.rand(2, 4, 9, 11)
    with sv.no_grad():
        np.testing.assert_allclose(m(x).numpy(), x.numpy(), rtol=1e-6, atol=1e-6)
