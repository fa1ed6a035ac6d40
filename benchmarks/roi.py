"""RoI Align and RoI pooling: 512 RoIs on a 2x256x50x50 map, 7x7 output, spatial_scale
1/16, sampling_ratio 2, forward and forward + backward, float32.

RoIs: a batch index uniform in {0, 1}, corners uniform in the 800x800 image the map was
computed from, sides uniform in [16, 400] (seed 0). ``cpu`` is ``scratchvision.ops``
(forward on arrays; forward + backward through the autograd Function on a Tensor),
beside ``torchvision.ops`` on CPU tensors in the same process. Goals: roi_align forward
<= 1.0x torchvision, forward + backward <= 0.5x; roi_pool forward <= 1.0x.
``--quick`` uses 64 RoIs and 32 channels.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, timed_row, try_import

GOALS = {("roi_align", "fwd"): 1.0, ("roi_align", "fwd+bwd"): 0.5, ("roi_pool", "fwd"): 1.0}


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    from scratchvision import ops
    torch, tv = try_import("torch"), try_import("torchvision")
    rng = np.random.default_rng(0)
    nroi, channels = (64, 32) if quick else (512, 256)
    timing = dict(warmup=1, repeat=3) if quick else dict(warmup=2, repeat=9)
    x = rng.standard_normal((2, channels, 50, 50)).astype(np.float32)
    xy = rng.uniform(0, 800, (nroi, 2))
    rois = np.concatenate([rng.integers(0, 2, (nroi, 1)), xy,
                           xy + rng.uniform(16, 400, (nroi, 2))], axis=1).astype(np.float32)
    kw = dict(output_size=(7, 7), spatial_scale=1 / 16)
    gy = rng.standard_normal((nroi, channels, 7, 7)).astype(np.float32)
    rows: list[Row] = []
    for op, extra in (("roi_align", dict(sampling_ratio=2)), ("roi_pool", {})):
        ours = getattr(ops, op)
        label = f"{op} {nroi} RoIs 2x{channels}x50x50 7x7"
        xg = sv.tensor(x, requires_grad=True)
        gyt = sv.tensor(gy)

        def fwd_bwd(ours=ours, extra=extra, xg=xg, gyt=gyt):
            xg.grad = None
            (ours(xg, rois, **kw, **extra) * gyt).sum().backward()

        rows.append(timed_row(f"{label} fwd", "cpu", lambda ours=ours, extra=extra:
                              ours(x, rois, **kw, **extra), work=nroi, work_unit="RoIs/s",
                              **timing))
        rows.append(timed_row(f"{label} fwd+bwd", "cpu", fwd_bwd, work=nroi,
                              work_unit="RoIs/s", **timing))
        if tv is not None:
            top = getattr(tv.ops, op)
            tx, trois, tgy = torch.from_numpy(x), torch.from_numpy(rois), torch.from_numpy(gy)
            tg = tx.clone().requires_grad_()

            def tfwd(top=top, extra=extra, tx=tx, trois=trois):
                with torch.no_grad():
                    top(tx, trois, **kw, **extra)

            def tfwd_bwd(top=top, extra=extra, tg=tg, trois=trois, tgy=tgy):
                tg.grad = None
                top(tg, trois, **kw, **extra).backward(tgy)

            rows.append(timed_row(f"{label} fwd", "torchvision", tfwd, peer=True, work=nroi,
                                  work_unit="RoIs/s", **timing))
            rows.append(timed_row(f"{label} fwd+bwd", "torchvision", tfwd_bwd, peer=True,
                                  work=nroi, work_unit="RoIs/s", **timing))
    rows += _gpu_rows(x, rois, gy, kw, timing, nroi, channels)
    return rows


def _gpu_rows(x, rois, gy, kw, timing, nroi, channels) -> list[Row]:
    """The numba.cuda kernels on CuPy arrays vs torchvision CUDA, when a GPU is there."""
    import scratchvision as sv
    from scratchvision.kernels import roi_align as KA
    from scratchvision.kernels.roi_align import cuda as ka_cuda
    if not sv.gpu_available():
        return []
    import cupy as cp
    torch, tv = try_import("torch"), try_import("torchvision")
    sync = cp.cuda.Device().synchronize
    xg, rg, gyg = cp.asarray(x), cp.asarray(rois, dtype=cp.float64), cp.asarray(gy)
    label = f"roi_align {nroi} RoIs 2x{channels}x50x50 7x7 GPU"
    args = (7, 7, 1 / 16, 2, False)
    rows = [timed_row(f"{label} fwd", "cuda", lambda: KA.roi_align_forward(xg, rg, *args),
                      sync=sync, **timing),
            timed_row(f"{label} bwd", "cuda deterministic",
                      lambda: KA.roi_align_backward(gyg, rg, x.shape, *args[2:]), sync=sync,
                      **timing),
            timed_row(f"{label} bwd", "cuda atomic",
                      lambda: ka_cuda.roi_align_backward_atomic(gyg, rg, x.shape, *args[2:]),
                      sync=sync, **timing)]
    if tv is not None and torch.cuda.is_available():
        tx = torch.from_numpy(x).cuda()
        tr = torch.from_numpy(rois).cuda()
        tg = tx.clone().requires_grad_()
        tgy = torch.from_numpy(gy).cuda()
        rows.append(timed_row(f"{label} fwd", "torchvision-cuda",
                              lambda: tv.ops.roi_align(tx, tr, **kw, sampling_ratio=2),
                              peer=True, sync=torch.cuda.synchronize, **timing))
        y = tv.ops.roi_align(tg, tr, **kw, sampling_ratio=2)

        def tbwd():
            tg.grad = None
            y.backward(tgy, retain_graph=True)

        rows.append(timed_row(f"{label} bwd", "torchvision-cuda", tbwd, peer=True,
                              sync=torch.cuda.synchronize, **timing))
    return rows


def summary(rows: list[Row]) -> str:
    lines = ["Goals: roi_align fwd <= 1.0x, fwd+bwd <= 0.5x; roi_pool fwd <= 1.0x torchvision."]
    for r in rows:
        if r.impl != "cpu":
            continue
        op, kind = r.case.split()[0], r.case.split()[-1]
        peer = [p.seconds for p in rows if p.case == r.case and p.impl == "torchvision"]
        if not peer:
            continue
        ratio = r.seconds / peer[0]
        goal = GOALS.get((op, kind))
        verdict = "" if goal is None else (" (goal met)" if ratio <= goal else
                                           f" (goal {goal}x NOT met)")
        lines.append(f"- {r.case}: {ratio:.2f}x torchvision{verdict}")
    return "\n".join(lines)
