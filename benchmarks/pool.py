"""Pooling: max_pool2d and avg_pool2d, forward and forward + backward, float32.

Cases: 2x2 stride 2 and 3x3 stride 2 pad 1 windows on 8x64x112x112 (the first pooling of
a VGG/ResNet stem), and adaptive_avg_pool2d to 7x7 (the RoI-head / classifier pooling).
``cpu`` is scratchvision's Numba kernel called through ``F`` (so fwd+bwd includes the
autograd bookkeeping), beside PyTorch CPU in the same process. Goal: max_pool2d
forward + backward <= 1.0x PyTorch. ``--quick`` shrinks the batch to 2x16 channels at 56x56.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, timed_row, try_import


def _cases(quick: bool):
    shape = (2, 16, 56, 56) if quick else (8, 64, 112, 112)
    return [("max_pool2d", shape, dict(kernel_size=2, stride=2)),
            ("max_pool2d", shape, dict(kernel_size=3, stride=2, padding=1)),
            ("avg_pool2d", shape, dict(kernel_size=2, stride=2)),
            ("avg_pool2d", shape, dict(kernel_size=3, stride=2, padding=1)),
            ("adaptive_avg_pool2d", shape, dict(output_size=7))]


def _label(op, shape, kw):
    geo = " ".join(f"{k[0]}{v}" for k, v in kw.items())   # k2 s2 p1 / o7
    return f"{op} {'x'.join(map(str, shape))} {geo}"


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    from scratchvision import functional as F
    torch = try_import("torch")
    rng = np.random.default_rng(0)
    timing = dict(warmup=1, repeat=3) if quick else dict(warmup=2, repeat=9)
    rows: list[Row] = []
    for op, shape, kw in _cases(quick):
        x = rng.standard_normal(shape).astype(np.float32)
        ours = getattr(F, op)
        label = _label(op, shape, kw)
        xs = sv.tensor(x)
        xg = sv.tensor(x, requires_grad=True)
        y0 = ours(xs, **kw)
        gy = rng.standard_normal(y0.shape).astype(np.float32)
        items = float(x.size)

        def fwd():
            with sv.no_grad():
                ours(xs, **kw)

        def fwd_bwd():
            xg.grad = None
            ours(xg, **kw).backward(gy)

        rows.append(timed_row(f"{label} fwd", "cpu", fwd, work=items,
                              work_unit="Mpix/s", **timing))
        rows.append(timed_row(f"{label} fwd+bwd", "cpu", fwd_bwd, work=items,
                              work_unit="Mpix/s", **timing))
        if torch is not None:
            tf = torch.nn.functional
            tx = torch.from_numpy(x)
            tg = tx.clone().requires_grad_()
            tgy = torch.from_numpy(gy)
            top = getattr(tf, op)

            def tfwd():
                with torch.no_grad():
                    top(tx, **kw)

            def tfwd_bwd():
                tg.grad = None
                top(tg, **kw).backward(tgy)

            rows.append(timed_row(f"{label} fwd", "torch", tfwd, peer=True, work=items,
                                  work_unit="Mpix/s", **timing))
            rows.append(timed_row(f"{label} fwd+bwd", "torch", tfwd_bwd, peer=True,
                                  work=items, work_unit="Mpix/s", **timing))
    rows += _gpu_rows(quick, torch)
    for r in rows:      # report input pixels per second in millions
        r.work = r.work / 1e6 if r.work else r.work
    return rows


def _gpu_rows(quick: bool, torch) -> list[Row]:
    """The numba.cuda kernels (gather and atomic backwards) beside PyTorch CUDA, when a GPU
    is there; kernel-level calls, synchronised after each."""
    from scratchvision.backend import gpu_available
    if not gpu_available():
        return []
    import cupy as cp
    from scratchvision.kernels import pool as P
    sync = cp.cuda.Device().synchronize
    timing = dict(warmup=2, repeat=5 if quick else 20, sync=sync)
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    torch_gpu = torch is not None and torch.cuda.is_available()
    for op, shape, kw in _cases(quick):
        if op == "adaptive_avg_pool2d":
            continue
        x = cp.asarray(rng.standard_normal(shape).astype(np.float32))
        label = _label(op, shape, kw) + " [gpu]"
        k, s, p = kw["kernel_size"], kw["stride"], kw.get("padding", 0)
        if op == "max_pool2d":
            y, idx = P.max_pool2d_forward(x, k, s, p)
            gy = cp.ones_like(y)
            fwd = (lambda: P.max_pool2d_forward(x, k, s, p))
            bwds = {impl: (lambda impl=impl: P.max_pool2d_backward(
                *P.max_pool2d_forward(x, k, s, p), x.shape, k, s, p, impl=impl))
                for impl in ("cuda", "cuda_atomic")}
        else:
            y = P.avg_pool2d_forward(x, k, s, p)
            gy = cp.ones_like(y)
            fwd = (lambda: P.avg_pool2d_forward(x, k, s, p))
            bwds = {impl: (lambda impl=impl: (P.avg_pool2d_forward(x, k, s, p),
                                              P.avg_pool2d_backward(gy, x.shape, k, s, p,
                                                                    impl=impl)))
                    for impl in ("cuda", "cuda_atomic")}
        items = float(x.size)
        rows.append(timed_row(f"{label} fwd", "cuda", fwd, work=items, work_unit="Mpix/s",
                              **timing))
        for impl, fn in bwds.items():
            rows.append(timed_row(f"{label} fwd+bwd", impl, fn, work=items, work_unit="Mpix/s",
                                  note="kernels only" + (", deterministic" if impl == "cuda"
                                                         else ", atomics"), **timing))
        if torch_gpu:
            tx = torch.as_tensor(x, device="cuda")
            tg = tx.clone().requires_grad_()
            tgy = torch.as_tensor(gy, device="cuda")
            top = getattr(torch.nn.functional, op)
            tsync = torch.cuda.synchronize

            def tfwd():
                with torch.no_grad():
                    top(tx, **kw)

            def tfwd_bwd():
                tg.grad = None
                top(tg, **kw).backward(tgy)

            ttiming = dict(timing, sync=tsync)
            rows.append(timed_row(f"{label} fwd", "torch-cuda", tfwd, peer=True, work=items,
                                  work_unit="Mpix/s", **ttiming))
            rows.append(timed_row(f"{label} fwd+bwd", "torch-cuda", tfwd_bwd, peer=True,
                                  work=items, work_unit="Mpix/s", **ttiming))
    return rows


def summary(rows: list[Row]) -> str:
    from benchmarks.harness import ratios
    rat = ratios(rows)
    lines = []
    for i, r in enumerate(rows):
        if r.impl in ("cpu", "cuda") and rat[i] is not None and "max_pool2d" in r.case \
                and r.case.endswith("fwd+bwd"):
            verdict = "met" if rat[i] <= 1.0 else "NOT met"
            lines.append(f"goal max_pool2d fwd+bwd <= 1.0x torch: {r.case} {r.impl}: {rat[i]:.2f}x "
                         f"({verdict})")
    return "\n".join(lines)
