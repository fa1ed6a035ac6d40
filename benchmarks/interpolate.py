"""Interpolation: bilinear x2 upsampling (align_corners False and True) and nearest x2,
forward and forward + backward, float32, on 8x32x64x64 (an FCN/U-Net decoder step).

``cpu`` is scratchvision's Numba kernel called through ``F.interpolate`` (fwd+bwd includes
the autograd bookkeeping), beside PyTorch CPU and, for the forward with half-pixel centres
(align_corners=False, the same convention), OpenCV's ``cv2.resize`` with INTER_LINEAR /
INTER_NEAREST. OpenCV is given the N*C planes as HxWx4 images (OpenCV 5 resizes at most 4
channels at once), already in that layout (the transpose is not timed). Goal: bilinear
forward + backward <= 1.0x PyTorch. ``--quick`` uses 2x8x32x32.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, timed_row, try_import


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    from scratchvision import functional as F
    torch, cv2 = try_import("torch"), try_import("cv2")
    rng = np.random.default_rng(0)
    shape = (2, 8, 32, 32) if quick else (8, 32, 64, 64)
    timing = dict(warmup=1, repeat=3) if quick else dict(warmup=2, repeat=9)
    x = rng.standard_normal(shape).astype(np.float32)
    n, c, h, w = shape
    out_items = n * c * 4 * h * w / 1e6          # output megapixels per call
    rows: list[Row] = []
    for mode, ac in (("bilinear", False), ("bilinear", True), ("nearest", None)):
        kw = dict(scale_factor=2, mode=mode, align_corners=ac)
        label = f"{mode} x2 {'x'.join(map(str, shape))}" + ("" if ac is None else f" ac={ac}")
        xs, xg = sv.tensor(x), sv.tensor(x, requires_grad=True)
        gy = rng.standard_normal((n, c, 2 * h, 2 * w)).astype(np.float32)

        def fwd():
            with sv.no_grad():
                F.interpolate(xs, **kw)

        def fwd_bwd():
            xg.grad = None
            F.interpolate(xg, **kw).backward(gy)

        common = dict(work=out_items, work_unit="Mpix/s", **timing)
        rows.append(timed_row(f"{label} fwd", "cpu", fwd, **common))
        rows.append(timed_row(f"{label} fwd+bwd", "cpu", fwd_bwd, **common))
        if torch is not None:
            tx = torch.from_numpy(x)
            tg, tgy = tx.clone().requires_grad_(), torch.from_numpy(gy)

            def tfwd():
                with torch.no_grad():
                    torch.nn.functional.interpolate(tx, **kw)

            def tfwd_bwd():
                tg.grad = None
                torch.nn.functional.interpolate(tg, **kw).backward(tgy)

            rows.append(timed_row(f"{label} fwd", "torch", tfwd, peer=True, **common))
            rows.append(timed_row(f"{label} fwd+bwd", "torch", tfwd_bwd, peer=True, **common))
        if cv2 is not None and ac is not True and (n * c) % 4 == 0:
            # OpenCV 5 resizes images of at most 4 channels: the N*C planes go as HxWx4 images
            hwc4 = np.ascontiguousarray(x.reshape(n * c // 4, 4, h, w).transpose(0, 2, 3, 1))
            interp = cv2.INTER_LINEAR if mode == "bilinear" else cv2.INTER_NEAREST
            rows.append(timed_row(f"{label} fwd", "cv2.resize",
                                  lambda: [cv2.resize(im, (2 * w, 2 * h), interpolation=interp)
                                           for im in hwc4],
                                  peer=True, note="HxWx4 images, layout change not timed",
                                  **common))
    return rows + _gpu_rows(quick, torch, shape)


def _gpu_rows(quick: bool, torch, shape) -> list[Row]:
    """numba.cuda kernels (gather and atomic backwards) beside PyTorch CUDA, with a GPU."""
    from scratchvision.backend import gpu_available
    if not gpu_available():
        return []
    import cupy as cp
    from scratchvision.kernels import interpolate as I
    sync = cp.cuda.Device().synchronize
    timing = dict(warmup=2, repeat=5 if quick else 20, sync=sync)
    rng = np.random.default_rng(0)
    n, c, h, w = shape
    x = cp.asarray(rng.standard_normal(shape).astype(np.float32))
    gy = cp.asarray(rng.standard_normal((n, c, 2 * h, 2 * w)).astype(np.float32))
    common = dict(work=n * c * 4 * h * w / 1e6, work_unit="Mpix/s")
    torch_gpu = torch is not None and torch.cuda.is_available()
    rows: list[Row] = []
    for mode, ac in (("bilinear", False), ("bilinear", True), ("nearest", None)):
        label = (f"{mode} x2 {'x'.join(map(str, shape))}" + ("" if ac is None else f" ac={ac}")
                 + " [gpu]")
        size, scales = (2 * h, 2 * w), (2.0, 2.0)
        if mode == "bilinear":
            fwd = (lambda ac=ac: I.bilinear_forward(x, size, ac, scales))
            bwd = (lambda impl, ac=ac: I.bilinear_backward(gy, x.shape, ac, scales, impl=impl))
        else:
            fwd = (lambda: I.nearest_forward(x, size, scales))
            bwd = (lambda impl: I.nearest_backward(gy, x.shape, scales, impl=impl))
        rows.append(timed_row(f"{label} fwd", "cuda", fwd, **common, **timing))
        for impl in ("cuda", "cuda_atomic"):
            rows.append(timed_row(f"{label} fwd+bwd", impl,
                                  lambda impl=impl, fwd=fwd, bwd=bwd: (fwd(), bwd(impl)),
                                  note="kernels only" + (", deterministic" if impl == "cuda"
                                                         else ", atomics"),
                                  **common, **timing))
        if torch_gpu:
            kw = dict(scale_factor=2, mode=mode, align_corners=ac)
            tx = torch.as_tensor(x, device="cuda")
            tg, tgy = tx.clone().requires_grad_(), torch.as_tensor(gy, device="cuda")

            def tfwd(kw=kw):
                with torch.no_grad():
                    torch.nn.functional.interpolate(tx, **kw)

            def tfwd_bwd(kw=kw):
                tg.grad = None
                torch.nn.functional.interpolate(tg, **kw).backward(tgy)

            ttiming = dict(timing, sync=torch.cuda.synchronize)
            rows.append(timed_row(f"{label} fwd", "torch-cuda", tfwd, peer=True, **common,
                                  **ttiming))
            rows.append(timed_row(f"{label} fwd+bwd", "torch-cuda", tfwd_bwd, peer=True,
                                  **common, **ttiming))
    return rows


def summary(rows: list[Row]) -> str:
    torch_best = {r.case: r.seconds for r in rows if r.impl in ("torch", "torch-cuda")}
    lines = []
    for r in rows:
        if r.impl in ("cpu", "cuda") and r.case.startswith("bilinear") \
                and r.case.endswith("fwd+bwd") \
                and r.case in torch_best:
            ratio = r.seconds / torch_best[r.case]
            lines.append(f"goal bilinear fwd+bwd <= 1.0x torch: {r.case} {r.impl}: {ratio:.2f}x "
                         f"({'met' if ratio <= 1.0 else 'NOT met'})")
    return "\n".join(lines)
