"""The ranks' side of ``benchmarks/distributed.py``: ``[mpiexec -n N] python -m
benchmarks._dist_worker {allreduce|step} OUT.json [--quick]``. Rank 0 writes the medians.

allreduce: for each buffer size, the same float32 buffer reduced (sum, in place) by raw
  mpi4py ``Allreduce`` (the peer), by ``distributed.all_reduce`` (``Iallreduce`` and the
  polled wait) and by ``DistributedDataParallel``'s bucket path (pack the gradients into
  25 MiB flat buckets, all-reduce, average, write back into ``.grad``).
step: one training step (forward, loss, backward with the gradient reduction, Adam) of
  the small U-Net (batch norm synchronised) and of the small YOLO v1 on a global batch
  of 16, each rank taking 16 / N; the median over repeated steps.
"""
from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np


def _median_time(fn, warmup: int, repeat: int, barrier) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def allreduce(quick: bool) -> dict:
    from mpi4py import MPI

    import scratchvision as sv
    import scratchvision.distributed as dist
    from scratchvision import nn
    group = dist.init()
    comm = group.comm
    out = {}
    sizes = (1, 4) if quick else (1, 4, 25, 100)
    for mib in sizes:
        n = mib * (1 << 20) // 4
        buf = np.ones(n, np.float32)
        raw = _median_time(lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM), 2,
                           3 if quick else 9, group.barrier)
        ours = _median_time(lambda: dist.all_reduce(buf), 2, 3 if quick else 9, group.barrier)
        # DDP's bucket path on parameters of the same total size (64 tensors)
        model = nn.Sequential(*[nn.Linear(1, n // 64, bias=False) for _ in range(64)])
        ddp = dist.DistributedDataParallel(model)
        for p in model.parameters():
            p.grad = sv.tensor(np.ones(p.shape, np.float32))

        def bucket_path():
            ddp._before_forward()
            ddp._finish_reduction()
        bucketed = _median_time(bucket_path, 2, 3 if quick else 9, group.barrier)
        ddp.remove_hooks()
        out[f"{mib} MiB"] = {"bytes": n * 4, "mpi4py": raw, "all_reduce": ours,
                             "ddp_buckets": bucketed, "buckets": len(ddp.buckets)}
    return out


def step(quick: bool) -> dict:
    import scratchvision as sv
    import scratchvision.distributed as dist
    from scratchvision import nn
    from scratchvision.nets import build_detector, build_segmenter
    from scratchvision.train_seg import model_kwargs
    rank, world = dist.init_if_launched()
    barrier = dist.barrier
    rng = np.random.default_rng(0)
    out = {"world": world}
    batch = 16
    x = rng.standard_normal((batch, 3, 128, 128)).astype(np.float32)
    labels = rng.integers(0, 4, (batch, 128, 128))
    mine = slice(rank, None, world)
    models = {
        "unet": lambda: build_segmenter("unet", 4, **model_kwargs("unet", "small")),
        "yolo_v1": lambda: build_detector("yolo_v1", 4, "small"),
    }
    targets = [{"boxes": np.array([[10.0, 12.0, 60.0, 70.0], [70.0, 30.0, 120.0, 90.0]],
                                  np.float32), "labels": np.array([1, 2])}
               for _ in range(batch)]
    for name, build in models.items():
        sv.manual_seed(0)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(build())
        model.train()
        runner = dist.DistributedDataParallel(model) if world > 1 else model
        opt = nn.optim.Adam(model.parameters(), lr=1e-4)
        xs = sv.tensor(np.ascontiguousarray(x[mine]))
        ts = targets[mine] if name == "yolo_v1" else labels[mine]

        def one_step():
            losses = runner.loss(xs, ts)
            total = None
            for v in losses.values():
                total = v if total is None else total + v
            opt.zero_grad()
            total.backward()
            opt.step()
        out[name] = {"seconds": _median_time(one_step, 2, 3 if quick else 7, barrier),
                     "parameters": int(sum(p.numel() for p in model.parameters())),
                     "gradient_bytes": int(sum(p.numel() * p.data.dtype.itemsize
                                               for p in model.parameters()))}
        if world > 1:
            runner.remove_hooks()
    return out


def main() -> None:
    what, path = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    result = allreduce(quick) if what == "allreduce" else step(quick)
    import scratchvision.distributed as dist
    if dist.rank() == 0:
        with open(path, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
