"""Every segmenter on the GPU: forward, loss and gradients equal the CPU's (their ops cover
transposed, dilated and grouped convolution, pooling with indices and unpooling, bilinear
upsampling, batch norm, dropout off in eval); ``train-seg``/``eval-seg --device cuda``
train, checkpoint and evaluate, and the checkpoint loads on the CPU.
Sizes are small because in CI these run on the CuPy stand-in under the CUDA simulator."""
import json

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F
from scratchvision.backend import cuda_simulator_enabled
from scratchvision.cli import main as cli_main
from scratchvision.nets import SEGMENTERS, UNet, build_segmenter

pytestmark = pytest.mark.gpu

SIMULATOR = cuda_simulator_enabled()
MINI = dict(widths=(2, 2, 3, 3, 4), depths=(1, 1, 1, 1, 1), head_width=4, dropout=0.0)


def mini(name):
    sv.manual_seed(0)
    if name == "unet":
        return UNet(3, base=2, depth=2)
    return build_segmenter(name, 3, **MINI)


# fcn32s and fcn16s run the same ops as fcn8s: on the slow simulator only fcn8s
NAMES = [n for n in SEGMENTERS if not (SIMULATOR and n in ("fcn32s", "fcn16s"))]


@pytest.mark.parametrize("name", NAMES)
def test_segmenter_on_gpu_matches_cpu(name):
    """Eval mode (batch norm on running statistics) so one image suffices; train-mode batch
    norm on the device is in test_gpu_autograd's training step."""
    cpu_model, gpu_model = mini(name).eval(), mini(name).eval()
    gpu_model.to("cuda")
    rng = np.random.default_rng(0)
    size = 16 if name == "unet" else 32          # the VGG nets downsample by 32
    x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    t = rng.integers(0, 3, (1, size, size))
    results = []
    for model, device in ((cpu_model, "cpu"), (gpu_model, "cuda")):
        loss = F.cross_entropy(model(sv.tensor(x, device=device)), t)
        loss.backward()
        grads = {k: p.grad.data for k, p in model.named_parameters()}
        results.append((loss.item(), grads))
    assert abs(results[0][0] - results[1][0]) < 1e-4 * max(1.0, abs(results[0][0]))
    for k, g in results[0][1].items():
        g_dev = results[1][1][k]
        assert type(g_dev).__module__.startswith("cupy"), k      # gradients stay on device
        np.testing.assert_allclose(g_dev.get(), g, rtol=1e-3, atol=1e-4 * np.abs(g).max(),
                                   err_msg=k)


def test_train_and_eval_cli_on_gpu(tmp_path, capsys, monkeypatch):
    """train-seg and eval-seg with --device cuda; the checkpoint evaluates the same on the
    CPU. The 'tiny' U-Net is shrunk further (Shapes images are at least 32 px)."""
    from scratchvision import train_seg  # noqa: PLC0415
    monkeypatch.setitem(train_seg.SIZES["tiny"], "unet", dict(base=1, depth=1))
    common = ["--model", "unet", "--size", "tiny", "--image-size", "32", "--val-images", "1",
              "--batch-size", "1", "--quiet"]
    assert cli_main(["train-seg", *common, "--device", "cuda", "--train-images", "1",
                     "--epochs", "1", "--out", str(tmp_path), "--no-pictures"]) == 0
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log and np.isfinite(log[-1]["loss"])
    capsys.readouterr()
    weights = str(tmp_path / "model.npz")
    assert cli_main(["eval-seg", *common, "--device", "cuda", "--weights", weights]) == 0
    gpu_out = capsys.readouterr().out
    assert cli_main(["eval-seg", *common, "--device", "cpu", "--weights", weights]) == 0
    cpu_out = capsys.readouterr().out
    assert _miou(gpu_out) == pytest.approx(_miou(cpu_out), abs=1e-3)


def _miou(text: str) -> float:
    for line in text.splitlines():
        if "mIoU" in line:
            return float(line.split("mIoU")[1].strip(" :=").split()[0])
    raise AssertionError(f"no mIoU in {text!r}")
