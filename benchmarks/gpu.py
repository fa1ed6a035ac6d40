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

The cuDNN peer runs in float32, as scratchvision does (``allow_tf32 = False``); PyTorch's
default for convolutions, TF32 tensor-core products with a 10-bit mantissa, is timed beside
it and reported, but is not the peer the goals are measured against.

Every case with a backward pass is timed twice: ``scratchvision cuda`` runs the
deterministic gathers (the default), ``scratchvision cuda_atomic`` the atomic-add scatters
(``sv.use_deterministic_algorithms(False)``), so the price of determinism is in the table.
"""
from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass
from typing import Callable

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


@dataclass
class Case:
    """One timed callable: a row of the table."""
    name: str
    impl: str
    fn: Callable[[], object]
    event: type                    # _CupyEvent or _TorchEvent: the stream it launches on
    peer: bool = False
    work: float | None = None
    unit: str = ""
    repeat: int = 20
    deterministic: bool = True     # scratchvision's gather backwards (False: atomic)


@contextlib.contextmanager
def determinism(mode: bool):
    """scratchvision's deterministic (gather) or atomic backward kernels inside the block."""
    import scratchvision as sv
    before = sv.are_deterministic_algorithms_enabled()
    sv.use_deterministic_algorithms(mode)
    try:
        yield
    finally:
        sv.use_deterministic_algorithms(before)


def _both_backwards(cases, name, fn, repeat=20, **kw):
    """Cases for the deterministic (default) and the atomic backward kernels."""
    cases.append(Case(name, "scratchvision cuda", fn, _CupyEvent, repeat=repeat, **kw))
    cases.append(Case(name, "scratchvision cuda_atomic", fn, _CupyEvent, repeat=repeat,
                      deterministic=False, **kw))


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    if not sv.gpu_available():
        print("no GPU: nothing to benchmark")
        return []
    rows = []
    for c in cases(quick):
        with determinism(c.deterministic):
            sec, spread = _time_events(c.fn, c.event, repeat=c.repeat)
        rows.append(Row(c.name, c.impl, sec, c.peer, c.work, c.unit, spread))
    return rows


def cases(quick: bool = False) -> list[Case]:
    """Every case of the table, with its inputs already on the GPU."""
    import scratchvision as sv
    from scratchvision import functional as F
    from scratchvision import ops
    torch = try_import("torch")
    tv = try_import("torchvision")
    rng = np.random.default_rng(0)
    cases: list[Case] = []
    shapes = CONV_SHAPES[:1] if quick else CONV_SHAPES
    for n, ci, co, hw, k, s, p, d in shapes:
        case = f"conv N{n} {ci}->{co} {hw}x{hw} k{k} s{s} p{p} d{d}"
        x = rng.standard_normal((n, ci, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((co, ci, k, k)) * 0.05).astype(np.float32)
        oh = (hw + 2 * p - d * (k - 1) - 1) // s + 1
        flops = 2 * n * co * oh * oh * ci * k * k
        xs = sv.tensor(x, device="cuda", requires_grad=True)
        ws = sv.tensor(w, device="cuda", requires_grad=True)

        def sv_fwd(xs=xs, ws=ws, s=s, p=p, d=d):
            with sv.no_grad():
                F.conv2d(xs, ws, stride=s, padding=p, dilation=d)

        def sv_fwd_bwd(xs=xs, ws=ws, s=s, p=p, d=d):
            y = F.conv2d(xs, ws, stride=s, padding=p, dilation=d)
            y.backward(sv.ones_like(y).data)
        cases.append(Case(case + " fwd", "scratchvision cuda", sv_fwd, _CupyEvent, work=flops,
                          unit="GFLOP/s"))
        _both_backwards(cases, case + " fwd+bwd", sv_fwd_bwd, work=3 * flops, unit="GFLOP/s")
        if torch is not None:
            xt = torch.tensor(x, device="cuda", requires_grad=True)
            wt = torch.tensor(w, device="cuda", requires_grad=True)
            for tf32 in (False, True):
                def t_fwd(xt=xt, wt=wt, s=s, p=p, d=d, tf32=tf32):
                    with torch.no_grad(), _cudnn(torch, tf32):
                        torch.nn.functional.conv2d(xt, wt, stride=s, padding=p, dilation=d)

                def t_fwd_bwd(xt=xt, wt=wt, s=s, p=p, d=d, tf32=tf32):
                    with _cudnn(torch, tf32):
                        y = torch.nn.functional.conv2d(xt, wt, stride=s, padding=p,
                                                       dilation=d)
                        y.backward(torch.ones_like(y))
                # the peer computes in float32, as we do; TF32 (PyTorch's default for
                # convolutions, 10-bit mantissa products) is listed beside it, not a peer
                impl, peer = (TF32_IMPL, False) if tf32 else ("cuDNN (torch)", True)
                cases.append(Case(case + " fwd", impl, t_fwd, _TorchEvent, peer, flops,
                                  "GFLOP/s"))
                cases.append(Case(case + " fwd+bwd", impl, t_fwd_bwd, _TorchEvent, peer,
                                  3 * flops, "GFLOP/s"))

    # nms on 10k random boxes
    import cupy as cp
    m = 10_000
    xy = rng.random((m, 2)) * 1000
    wh = rng.random((m, 2)) * 100 + 1
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(m).astype(np.float32)
    bg, sg = cp.asarray(boxes), cp.asarray(scores)
    cases.append(Case("nms 10k boxes iou 0.5", "scratchvision cuda",
                      lambda: ops.nms(bg, sg, 0.5), _CupyEvent, work=m, unit="boxes/s"))
    if tv is not None:
        bt, st = torch.tensor(boxes, device="cuda"), torch.tensor(scores, device="cuda")
        cases.append(Case("nms 10k boxes iou 0.5", "torchvision",
                          lambda: tv.ops.nms(bt, st, 0.5), _TorchEvent, True, m, "boxes/s"))

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
    _both_backwards(cases, "roi_align 512 RoIs 2x256x50x50 fwd+bwd", sv_roi, work=r,
                    unit="RoIs/s")
    if tv is not None:
        ft = torch.tensor(feat, device="cuda", requires_grad=True)
        rt = torch.tensor(rois, device="cuda")

        def t_roi():
            y = tv.ops.roi_align(ft, rt, (7, 7), 1 / 16, 2, aligned=True)
            y.backward(torch.ones_like(y))
        cases.append(Case("roi_align 512 RoIs 2x256x50x50 fwd+bwd", "torchvision", t_roi,
                          _TorchEvent, True, r, "RoIs/s"))

    # bilinear x2 forward + backward
    img = rng.standard_normal((32, 32, 64, 64)).astype(np.float32)
    isv = sv.tensor(img, device="cuda", requires_grad=True)

    def sv_bil():
        y = F.interpolate(isv, scale_factor=2, mode="bilinear", align_corners=False)
        y.backward(sv.ones_like(y).data)
    _both_backwards(cases, "bilinear x2 32x32x64x64 fwd+bwd", sv_bil)
    if torch is not None:
        it = torch.tensor(img, device="cuda", requires_grad=True)

        def t_bil():
            y = torch.nn.functional.interpolate(it, scale_factor=2, mode="bilinear",
                                                align_corners=False)
            y.backward(torch.ones_like(y))
        cases.append(Case("bilinear x2 32x32x64x64 fwd+bwd", "torch", t_bil, _TorchEvent,
                          True))

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
    _both_backwards(cases, "U-Net small step b16 128x128", sv_step, repeat=5)
    if tmodel is not None:
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        xt, ytt = torch.tensor(xb, device="cuda"), torch.tensor(yb, device="cuda")

        def t_step():
            with _cudnn(torch, False):
                loss = torch.nn.functional.cross_entropy(tmodel(xt), ytt)
                topt.zero_grad()
                loss.backward()
                topt.step()
        cases.append(Case("U-Net small step b16 128x128", "torch", t_step, _TorchEvent, True,
                          repeat=5))
    return cases


TF32_IMPL = "cuDNN TF32 (torch default, not a peer)"


@contextlib.contextmanager
def _cudnn(torch, tf32: bool):
    """cuDNN with autotuning, and TF32 tensor-core products on or off."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def summary(rows: list[Row]) -> str:
    goals = {"fwd": 1.5, "fwd+bwd": 2.0, "nms": 1.0, "roi_align": 1.0, "bilinear": 1.2,
             "U-Net": 2.0}
    lines = []
    for case in dict.fromkeys(r.case for r in rows):
        mine = [r for r in rows if r.case == case and r.impl.startswith("scratchvision")]
        peers = [r for r in rows if r.case == case and r.peer]
        tf32 = [r for r in rows if r.case == case and r.impl == TF32_IMPL]
        if not mine or not peers:
            continue
        goal = next((g for key, g in goals.items() if case.startswith(key)), None)
        if goal is None:
            goal = next((g for key, g in goals.items() if case.endswith(" " + key)), None)
        for row in mine:
            ratio = row.seconds / min(p.seconds for p in peers)
            verdict = ("" if goal is None
                       else f" (goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})")
            also = (f"; {row.seconds / tf32[0].seconds:.2f}x cuDNN with TF32" if tf32 else "")
            lines.append(f"{case} [{row.impl.removeprefix('scratchvision ')}]: "
                         f"{ratio:.2f}x{verdict}{also}")
    return "\n".join(lines)
