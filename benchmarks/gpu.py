"""GPU benchmarks (needs CuPy and a CUDA device; prints nothing useful without one):
scratchvision's CUDA paths against PyTorch/cuDNN and torchvision's CUDA ops, in one process,
median of repeated runs after warm-up, each call timed with CUDA events on the stream the
library launches on.

Cases (the CPU benchmarks' shapes, batch 32 for convolution): conv2d forward and forward +
backward on the five conv shapes, nms on 10k boxes, roi_align forward + backward (512 RoIs,
2x256x50x50), bilinear x2 interpolate forward + backward (32x32x64x64), and one training
step of the small U-Net (batch 16, 128x128).
Goals (issue 7): conv fwd <= 1.5x cuDNN, fwd+bwd <= 2x; nms <= 1.0x torchvision;
roi_align fwd+bwd <= 1.0x; bilinear <= 1.2x torch; U-Net step <= 2x PyTorch.

Every case with a backward pass is timed twice: ``scratchvision cuda`` runs the
deterministic gathers (the default), ``scratchvision cuda_atomic`` the atomic-add scatters
(``sv.use_deterministic_algorithms(False)``), so the price of determinism is in the table.
"""
from __future__ import annotations

import contextlib
import statistics

import numpy as np

from benchmarks.harness import Row, try_import

CONV_SHAPES = [(32, 64, 64, 56, 3, 1, 1, 1), (32, 256, 256, 14, 3, 1, 1, 1),
               (32, 256, 64, 28, 1, 1, 0, 1), (32, 64, 128, 56, 3, 2, 1, 1),
               (32, 64, 64, 56, 3, 1, 2, 2)]


def _time_events(fn, make_event, repeat=20, warmup=3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, end = make_event(), make_event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed(end) / 1e3)
    med = statistics.median(times)
    return med, (max(times) - min(times)) / med


class _CupyEvent:
    def __init__(self):
        import cupy
        self.cp, self.e = cupy, cupy.cuda.Event()

    def record(self):
        self.e.record()

    def synchronize(self):
        self.e.synchronize()

    def elapsed(self, other):
        return self.cp.cuda.get_elapsed_time(self.e, other.e)


class _TorchEvent:
    def __init__(self):
        import torch
        self.e = torch.cuda.Event(enable_timing=True)

    def record(self):
        self.e.record()

    def synchronize(self):
        self.e.synchronize()

    def elapsed(self, other):
        return self.e.elapsed_time(other.e)


def _row(case, impl, fn, event, peer=False, work=None, unit="", repeat=20):
    sec, spread = _time_events(fn, event, repeat=repeat)
    return Row(case, impl, sec, peer, work, unit, spread)


@contextlib.contextmanager
def _atomic():
    """The atomic-scatter backward kernels for the duration of the block."""
    import scratchvision as sv
    sv.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        sv.use_deterministic_algorithms(True)


def _both_backwards(rows, case, fn, repeat=20, **kw):
    """Rows for the deterministic (default) and the atomic backward kernels."""
    rows.append(_row(case, "scratchvision cuda", fn, _CupyEvent, repeat=repeat, **kw))
    with _atomic():
        rows.append(_row(case, "scratchvision cuda_atomic", fn, _CupyEvent, repeat=repeat,
                         **kw))


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    from scratchvision import functional as F
    from scratchvision import ops
    if not sv.gpu_available():
        print("no GPU: nothing to benchmark")
        return []
    torch = try_import("torch")
    tv = try_import("torchvision")
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    shapes = CONV_SHAPES[:1] if quick else CONV_SHAPES
    for n, ci, co, hw, k, s, p, d in shapes:
        case = f"conv N{n} {ci}->{co} {hw}x{hw} k{k} s{s} p{p} d{d}"
        x = rng.standard_normal((n, ci, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((co, ci, k, k)) * 0.05).astype(np.float32)
        oh = (hw + 2 * p - d * (k - 1) - 1) // s + 1
        flops = 2 * n * co * oh * oh * ci * k * k
        xs = sv.tensor(x, device="cuda", requires_grad=True)
        ws = sv.tensor(w, device="cuda", requires_grad=True)

        def sv_fwd():
            with sv.no_grad():
                F.conv2d(xs, ws, stride=s, padding=p, dilation=d)

        def sv_fwd_bwd():
            y = F.conv2d(xs, ws, stride=s, padding=p, dilation=d)
            y.backward(sv.ones_like(y).data)
        rows.append(_row(case + " fwd", "scratchvision cuda", sv_fwd, _CupyEvent, work=flops,
                         unit="GFLOP/s"))
        _both_backwards(rows, case + " fwd+bwd", sv_fwd_bwd, work=3 * flops, unit="GFLOP/s")
        if torch is not None:
            torch.backends.cudnn.benchmark = True
            xt = torch.tensor(x, device="cuda", requires_grad=True)
            wt = torch.tensor(w, device="cuda", requires_grad=True)

            def t_fwd():
                with torch.no_grad():
                    torch.nn.functional.conv2d(xt, wt, stride=s, padding=p, dilation=d)

            def t_fwd_bwd():
                y = torch.nn.functional.conv2d(xt, wt, stride=s, padding=p, dilation=d)
                y.backward(torch.ones_like(y))
            rows.append(_row(case + " fwd", "cuDNN (torch)", t_fwd, _TorchEvent, True, flops,
                             "GFLOP/s"))
            rows.append(_row(case + " fwd+bwd", "cuDNN (torch)", t_fwd_bwd, _TorchEvent, True,
                             3 * flops, "GFLOP/s"))

    # nms on 10k random boxes
    import cupy as cp
    m = 10_000
    xy = rng.random((m, 2)) * 1000
    wh = rng.random((m, 2)) * 100 + 1
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(m).astype(np.float32)
    bg, sg = cp.asarray(boxes), cp.asarray(scores)
    rows.append(_row("nms 10k boxes iou 0.5", "scratchvision cuda",
                     lambda: ops.nms(bg, sg, 0.5), _CupyEvent, work=m, unit="boxes/s"))
    if tv is not None:
        bt, st = torch.tensor(boxes, device="cuda"), torch.tensor(scores, device="cuda")
        rows.append(_row("nms 10k boxes iou 0.5", "torchvision", lambda: tv.ops.nms(bt, st, 0.5),
                         _TorchEvent, True, m, "boxes/s"))

    # roi_align forward + backward
    feat = rng.standard_normal((2, 256, 50, 50)).astype(np.float32)
    r = 512
    b = rng.random((r, 4)) * 700
    rois = np.concatenate([rng.integers(0, 2, (r, 1)), np.minimum(b[:, :2], b[:, 2:]),
                           np.maximum(b[:, :2], b[:, 2:]) + 16], 1).astype(np.float32)
    fs = sv.tensor(feat, device="cuda", requires_grad=True)
    rs = cp.asarray(rois)

    def sv_roi():
        y = ops.roi_align(fs, rs, (7, 7), 1 / 16, 2, aligned=True)
        y.backward(sv.ones_like(y).data)
    _both_backwards(rows, "roi_align 512 RoIs 2x256x50x50 fwd+bwd", sv_roi, work=r,
                    unit="RoIs/s")
    if tv is not None:
        ft = torch.tensor(feat, device="cuda", requires_grad=True)
        rt = torch.tensor(rois, device="cuda")

        def t_roi():
            y = tv.ops.roi_align(ft, rt, (7, 7), 1 / 16, 2, aligned=True)
            y.backward(torch.ones_like(y))
        rows.append(_row("roi_align 512 RoIs 2x256x50x50 fwd+bwd", "torchvision", t_roi,
                         _TorchEvent, True, r, "RoIs/s"))

    # bilinear x2 forward + backward
    img = rng.standard_normal((32, 32, 64, 64)).astype(np.float32)
    isv = sv.tensor(img, device="cuda", requires_grad=True)

    def sv_bil():
        y = F.interpolate(isv, scale_factor=2, mode="bilinear", align_corners=False)
        y.backward(sv.ones_like(y).data)
    _both_backwards(rows, "bilinear x2 32x32x64x64 fwd+bwd", sv_bil)
    if torch is not None:
        it = torch.tensor(img, device="cuda", requires_grad=True)

        def t_bil():
            y = torch.nn.functional.interpolate(it, scale_factor=2, mode="bilinear",
                                                align_corners=False)
            y.backward(torch.ones_like(y))
        rows.append(_row("bilinear x2 32x32x64x64 fwd+bwd", "torch", t_bil, _TorchEvent, True))

    # U-Net training step
    from benchmarks.train_step import _torch_unet
    from scratchvision import nn
    from scratchvision.nets import build_segmenter
    from scratchvision.train_seg import model_kwargs
    sv.manual_seed(0)
    model = build_segmenter("unet", 4, **model_kwargs("unet", "small"))
    tmodel = _torch_unet(torch, model).cuda() if torch is not None else None
    model.to("cuda")
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    xb = rng.standard_normal((16, 3, 128, 128)).astype(np.float32)
    yb = rng.integers(0, 4, (16, 128, 128))
    xg, yg = sv.tensor(xb, device="cuda"), cp.asarray(yb)

    def sv_step():
        loss = F.cross_entropy(model(xg), yg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _both_backwards(rows, "U-Net small step b16 128x128", sv_step, repeat=5)
    if tmodel is not None:
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        xt, ytt = torch.tensor(xb, device="cuda"), torch.tensor(yb, device="cuda")

        def t_step():
            loss = torch.nn.functional.cross_entropy(tmodel(xt), ytt)
            topt.zero_grad()
            loss.backward()
            topt.step()
        rows.append(_row("U-Net small step b16 128x128", "torch", t_step, _TorchEvent, True,
                         repeat=5))
    return rows


def summary(rows: list[Row]) -> str:
    goals = {"fwd": 1.5, "fwd+bwd": 2.0, "nms": 1.0, "roi_align": 1.0, "bilinear": 1.2,
             "U-Net": 2.0}
    lines = []
    for case in dict.fromkeys(r.case for r in rows):
        mine = [r for r in rows if r.case == case and not r.peer]
        peers = [r for r in rows if r.case == case and r.peer]
        if not mine or not peers:
            continue
        goal = next((g for key, g in goals.items() if case.startswith(key)), None)
        if goal is None:
            goal = next((g for key, g in goals.items() if case.endswith(" " + key)), None)
        for row in mine:
            ratio = row.seconds / min(p.seconds for p in peers)
            verdict = ("" if goal is None
                       else f" (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})")
            lines.append(f"{case} [{row.impl.removeprefix('scratchvision ')}]: "
                         f"{ratio:.2f}x{verdict}")
    return "\n".join(lines)
