"""Run under ``mpiexec -n 2 python tests/distributed/mpi_driver.py CHECK OUT.json``.

Each check trains or reduces on both ranks; rank 0 also computes what one process gives
(the same model, the whole global batch) and writes the comparison to OUT.json, which
``test_distributed.py`` asserts on. The fault checks (``raise``, ``kill``, ``hang``)
end the job on purpose; the test asserts how it ends.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import sys
import time

import numpy as np

import scratchvision as sv
import scratchvision.distributed as dist
from scratchvision import nn


class Net(nn.Module):
    """conv + BN + ReLU, twice, then a linear layer; ``heads`` adds the branch heads.

    The convs have no bias, as every conv before a batch norm here: such a bias has a
    gradient of exactly 0 in theory and rounding noise in practice, which Adam's
    normalised step turns into a random walk of up to lr a step - in one process as
    much as in two."""

    def __init__(self, dtype, heads: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False, dtype=dtype), nn.BatchNorm2d(6, dtype=dtype),
            nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False, dtype=dtype),
            nn.BatchNorm2d(8, dtype=dtype), nn.ReLU())
        self.fc = nn.Linear(8 * 4 * 4, 5, dtype=dtype)
        if heads:                       # head_a for label 0, head_b for label 1, head_c never
            self.head_a = nn.Linear(5, 1, dtype=dtype)
            self.head_b = nn.Linear(5, 1, dtype=dtype)
            self.head_c = nn.Linear(5, 1, dtype=dtype)

    def loss(self, x, y):
        z = self.fc(self.features(x).flatten(1))
        if not hasattr(self, "head_a"):
            return {"mse": ((z - y) ** 2).mean()}
        terms = []
        for k in range(len(x)):         # per sample: the head its label picks
            head = self.head_a if int(y[k]) == 0 else self.head_b
            terms.append((head(z[k:k + 1]) ** 2).sum())
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return {"branch": total / len(x)}


def data(n: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3, 8, 8)).astype(dtype),
            rng.standard_normal((n, 5)).astype(dtype))


def weights(model) -> dict:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def compare(a: dict, b: dict) -> dict:
    """Largest absolute difference and the norm-relative difference over every entry."""
    diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k])))
               for k in a if a[k].size)
    num = sum(float(np.sum((a[k].astype(np.float64) - b[k]) ** 2)) for k in a)
    den = sum(float(np.sum(b[k].astype(np.float64) ** 2)) for k in a)
    return {"max_abs": diff, "rel": (num / den) ** 0.5}


def train(model, steps, xs, ys, ddp=None, accumulate=False):
    """Adam steps on the batches; with ``accumulate`` each step is two half-batches, the
    first under ``no_sync``."""
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    runner = ddp if ddp is not None else model
    for s in range(steps):
        x, y = xs[s], ys[s]
        opt.zero_grad()
        if accumulate:
            h = len(x) // 2
            ctx = ddp.no_sync() if ddp is not None else contextlib.nullcontext()
            with ctx:
                (runner.loss(sv.tensor(x[:h]), y[:h])["mse"] / 2).backward()
            (runner.loss(sv.tensor(x[h:]), y[h:])["mse"] / 2).backward()
        else:
            (next(iter(runner.loss(sv.tensor(x), y).values()))).backward()
        opt.step()
    return model


def check_ddp(out: dict) -> None:
    """DDP + SyncBN in float64 and float32, several buckets, no_sync, unused parameters,
    against one process with the global batch."""
    r, world = dist.rank(), dist.world_size()
    for dtype in ("float64", "float32"):
        for accumulate in (False, True):
            sv.manual_seed(1 + r)                 # different inits: rank 0's broadcast wins
            model = Net(dtype)
            reference = copy.deepcopy(model)      # rank 0's init: the single process
            x, y = data(4 * 8, dtype)
            gx = [x[4 * s:4 * s + 4] for s in range(8)]          # global batches of 4
            gy = [y[4 * s:4 * s + 4] for s in range(8)]
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.001)
            # shard per step; with accumulation each micro-batch is sharded too
            if accumulate:
                sx = [np.concatenate([b[:2][r::world], b[2:][r::world]]) for b in gx]
                sy = [np.concatenate([b[:2][r::world], b[2:][r::world]]) for b in gy]
            else:
                sx, sy = [b[r::world] for b in gx], [b[r::world] for b in gy]
            train(model, 8, sx, sy, ddp, accumulate)
            key = f"{dtype}{'_accumulate' if accumulate else ''}"
            mine = weights(model)
            everyone = dist.all_gather_object(mine)
            if r == 0:
                train(reference, 8, gx, gy, None, accumulate)
                out[key] = compare(mine, weights(reference))
                ref = weights(reference)
                out[key]["per_key"] = {k: float(np.max(np.abs(mine[k].astype(float) - ref[k])))
                                       for k in mine if mine[k].size}
                out[key]["ranks_equal"] = compare(everyone[1], mine)["max_abs"]
                out[key]["buckets"] = len(ddp.buckets)
    # unused parameters: head_c on no rank, head_b only on rank 1
    sv.manual_seed(0)
    model = Net("float64", heads=True)
    reference = copy.deepcopy(model)
    x, _ = data(4, "float64")
    labels = np.array([0, 0, 0, 1])               # rank 0: samples 0, 2; rank 1: 1, 3
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.001)
    ddp.loss(sv.tensor(x[r::world]), labels[r::world])["branch"].backward()
    reference.loss(sv.tensor(x), labels)["branch"].backward()
    if r == 0:
        got = {n: p.grad for n, p in model.named_parameters()}
        want = {n: p.grad for n, p in reference.named_parameters()}
        out["unused"] = {
            "none_match": all((got[n] is None) == (want[n] is None) for n in got),
            "head_c_none": got["head_c.weight"] is None,
            "max_abs": max(float(np.max(np.abs(got[n].numpy() - want[n].numpy())))
                           for n in got if got[n] is not None)}


def check_gpu(out: dict) -> None:
    """DDP + SyncBatchNorm with the model on 'cuda' (a real GPU, or the CuPy stand-in
    under the simulator): 3 steps on 2 ranks against one process on the CPU."""
    r, world = dist.rank(), dist.world_size()
    sv.manual_seed(0)
    model = Net("float64")
    reference = copy.deepcopy(model)
    x, y = data(4 * 3, "float64")
    gx = [x[4 * s:4 * s + 4] for s in range(3)]
    gy = [y[4 * s:4 * s + 4] for s in range(3)]
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model).to("cuda")
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.001)
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(3):
        opt.zero_grad()
        ddp.loss(sv.tensor(gx[s][r::world], device="cuda"),
                 sv.tensor(gy[s][r::world], device="cuda"))["mse"].backward()
        opt.step()
    mine = {k: v.cpu().numpy() for k, v in model.state_dict().items()}
    if r == 0:
        train(reference, 3, gx, gy)
        out["gpu"] = compare(mine, weights(reference))
        out["gpu"]["device"] = str(next(model.parameters()).device)


def check_collectives(out: dict) -> None:
    r = dist.rank()
    a = np.arange(4, dtype=np.float64) + 10 * r
    dist.all_reduce(a)
    b = np.full(3, float(r + 1))
    dist.all_reduce(b, op="max")
    c = sv.tensor(np.full(2, float(r + 1), np.float32))
    work = dist.all_reduce(c, op="mean", async_op=True)
    work.wait()
    c = c.numpy()
    d = np.full(3, 7.0) if r == 0 else np.zeros(3)
    dist.broadcast(d, src=0)
    dist.barrier()
    objects = dist.all_gather_object({"rank": r})
    sampler_cover = []
    for n, drop in ((10, False), (11, False), (11, True)):
        s = dist.DistributedSampler(n, shuffle=True, seed=3, drop_last=drop)
        s.set_epoch(2)
        sampler_cover.append(sorted(np.concatenate(dist.all_gather_object(
            s.indices())).tolist()))
    if r == 0:
        out["collectives"] = {"sum": a.tolist(), "max": b.tolist(), "mean": c.tolist(),
                              "broadcast": d.tolist(), "objects": objects,
                              "sampler": sampler_cover}


def check_mismatch(out: dict) -> None:
    model = nn.Linear(4, 3 if dist.rank() == 0 else 2)
    try:
        dist.DistributedDataParallel(model)
        out["mismatch"] = "no error"
    except ValueError as e:
        out["mismatch"] = str(e)


def main() -> None:
    check, path = sys.argv[1], sys.argv[2]
    if os.environ.get("SCRATCHVISION_FAKE_CUPY", "0") not in ("", "0"):
        from tests import fake_cupy  # the CuPy stand-in (with NUMBA_ENABLE_CUDASIM=1)
        fake_cupy.install()
    timeout = float(os.environ.get("DRIVER_TIMEOUT", "60"))
    dist.init(timeout=timeout)
    out: dict = {"world": dist.world_size()}
    if check == "ddp":
        check_ddp(out)
        check_collectives(out)
        check_mismatch(out)
    elif check == "gpu":
        check_gpu(out)
    elif check == "raise":                 # rank 1 fails; rank 0 waits in a collective
        if dist.rank() == 1:
            raise RuntimeError("deliberate failure on rank 1")
        dist.all_reduce(np.zeros(3))
    elif check == "kill":                  # rank 1 is killed; rank 0 waits
        if dist.rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        dist.all_reduce(np.zeros(3))
    elif check == "hang":                  # rank 1 never joins; rank 0's wait times out
        if dist.rank() == 1:
            time.sleep(600)
        dist.all_reduce(np.zeros(3))
    if dist.rank() == 0:
        with open(path, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
