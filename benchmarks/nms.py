"""NMS: greedy nms on 1k and 10k boxes, batched_nms on 10k boxes of 80 classes, float32.

Boxes: corners uniform in a 1000x1000 image, sides uniform in [10, 200], scores uniform
(seed 0); IoU threshold 0.5. ``cpu`` is ``scratchvision.ops.nms`` / ``batched_nms`` on
NumPy arrays (including the float64 conversion and validation the op does), beside
``torchvision.ops`` on CPU tensors and ``cv2.dnn.NMSBoxes`` (xywh boxes, score threshold
0) in the same process. ``reference`` (the textbook loops) is timed on 1k boxes only.
Goal: nms <= 0.5x torchvision's time. ``--quick`` uses 300 and 2k boxes.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, ratios, timed_row, try_import

GOAL = 0.5


def _boxes(rng, n):
    xy = rng.uniform(0, 1000, (n, 2))
    wh = rng.uniform(10, 200, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    return boxes, rng.random(n).astype(np.float32), rng.integers(0, 80, n)


def run(quick: bool = False) -> list[Row]:
    from scratchvision import ops
    from scratchvision.kernels import nms as K
    torch, tv, cv2 = try_import("torch"), try_import("torchvision"), try_import("cv2")
    rng = np.random.default_rng(0)
    timing = dict(warmup=1, repeat=3) if quick else dict(warmup=2, repeat=15, min_time=0.5)
    rows: list[Row] = []
    for n in ((300, 2000) if quick else (1000, 10000)):
        boxes, scores, idxs = _boxes(rng, n)
        case = f"nms {n} boxes"
        kept = len(ops.nms(boxes, scores, 0.5))
        note = f"{kept} kept"
        rows.append(timed_row(case, "cpu", lambda: ops.nms(boxes, scores, 0.5), work=n,
                              work_unit="boxes/s", note=note, **timing))
        if n <= 1000:
            rows.append(timed_row(case, "reference",
                                  lambda: K.nms(boxes, scores, 0.5, impl="reference"),
                                  work=n, work_unit="boxes/s", warmup=1, repeat=3))
        if tv is not None:
            tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
            rows.append(timed_row(case, "torchvision", lambda: tv.ops.nms(tb, ts, 0.5),
                                  peer=True, work=n, work_unit="boxes/s", **timing))
        if cv2 is not None:
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
            xywh = xywh.astype(np.float64)
            rows.append(timed_row(case, "cv2.dnn.NMSBoxes",
                                  lambda: cv2.dnn.NMSBoxes(xywh, scores, 0.0, 0.5),
                                  peer=True, work=n, work_unit="boxes/s", **timing))
    rows += _gpu_rows(rng, quick, timing)
    n = 2000 if quick else 10000
    boxes, scores, idxs = _boxes(rng, n)
    case = f"batched_nms {n} boxes 80 classes"
    rows.append(timed_row(case, "cpu", lambda: ops.batched_nms(boxes, scores, idxs, 0.5),
                          work=n, work_unit="boxes/s", **timing))
    if tv is not None:
        tb, ts, ti = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs)
        rows.append(timed_row(case, "torchvision",
                              lambda: tv.ops.batched_nms(tb, ts, ti, 0.5), peer=True,
                              work=n, work_unit="boxes/s", **timing))
    return rows


def _gpu_rows(rng, quick, timing) -> list[Row]:
    """nms on CuPy arrays (numba.cuda bitmask kernel) vs torchvision CUDA, when a GPU is."""
    import scratchvision as sv
    from scratchvision import ops
    if not sv.gpu_available():
        return []
    import cupy as cp
    torch, tv = try_import("torch"), try_import("torchvision")
    rows = []
    for n in ((2000,) if quick else (1000, 10000)):
        boxes, scores, _ = _boxes(rng, n)
        case = f"nms {n} boxes GPU"
        gb, gs = cp.asarray(boxes), cp.asarray(scores)
        rows.append(timed_row(case, "cuda", lambda: ops.nms(gb, gs, 0.5), work=n,
                              work_unit="boxes/s", sync=cp.cuda.Device().synchronize,
                              **timing))
        if tv is not None and torch.cuda.is_available():
            tb, ts = torch.from_numpy(boxes).cuda(), torch.from_numpy(scores).cuda()
            rows.append(timed_row(case, "torchvision-cuda", lambda: tv.ops.nms(tb, ts, 0.5),
                                  peer=True, work=n, work_unit="boxes/s",
                                  sync=torch.cuda.synchronize, **timing))
    return rows


def summary(rows: list[Row]) -> str:
    rat = ratios(rows)
    lines = [f"Goal: nms <= {GOAL}x torchvision's time."]
    for i, r in enumerate(rows):
        if r.impl in ("cpu", "cuda") and rat[i] is not None:
            peer = "torchvision" if r.impl == "cpu" else "torchvision-cuda"
            tvs = [x.seconds for x in rows if x.case == r.case and x.impl == peer]
            vs_tv = r.seconds / tvs[0] if tvs else float("nan")
            met = "met" if vs_tv <= GOAL else "NOT met"
            lines.append(f"- {r.case}: {vs_tv:.2f}x torchvision ({met})")
    return "\n".join(lines)
