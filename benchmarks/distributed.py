"""Data-parallel training: all-reduce throughput and the time of a training step on 1 and
2 ranks (``scratchvision.distributed``; launched here with the mpich wheel's mpiexec).

- all-reduce, 2 ranks: one float32 buffer summed in place by raw mpi4py ``Allreduce``
  (the peer), by ``distributed.all_reduce`` (non-blocking ``Iallreduce`` and the polled,
  bounded wait) and by ``DistributedDataParallel``'s bucket path (64 gradients packed into
  25 MiB buckets, reduced, averaged and written back); throughput = buffer bytes / time
  (the "algorithm bandwidth" of NCCL's tests).
- training step, global batch 16: one process with all the cores against 2 ranks of 8
  images with one thread each (SyncBatchNorm, gradient buckets). On a 2-core machine
  both ranks share the cores one process already uses, so this measures the overhead of
  the reduction, not a speed-up.

``docs/DISTRIBUTED.md`` turns these figures into a scaling model for N machines.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Row

ROOT = Path(__file__).resolve().parent.parent


def _mpiexec() -> str | None:
    try:
        import mpi4py  # noqa: F401,PLC0415
    except ImportError:
        return None
    here = Path(sys.executable).with_name("mpiexec")
    return str(here) if here.exists() else shutil.which("mpiexec")


def _launch(what: str, n: int, quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.json"
        cmd = [sys.executable, "-m", "benchmarks._dist_worker", what, str(out)]
        if n > 1:
            cmd = [_mpiexec(), "-n", str(n)] + cmd
        if quick:
            cmd.append("--quick")
        subprocess.run(cmd, check=True, cwd=ROOT, timeout=900)
        return json.loads(out.read_text())


def run(quick: bool = False) -> list[Row]:
    if _mpiexec() is None:
        print("distributed: mpi4py / mpiexec not installed (pip install -e '.[dist]')")
        return []
    rows = []
    for case, r in _launch("allreduce", 2, quick).items():
        label = f"all_reduce {case} float32, 2 ranks"
        for impl, key, peer in (("mpi4py Allreduce", "mpi4py", True),
                                ("distributed.all_reduce", "all_reduce", False),
                                (f"DDP buckets ({r['buckets']})", "ddp_buckets", False)):
            rows.append(Row(label, impl, r[key], peer=peer, work=r["bytes"] / 1e9,
                            work_unit="GB/s"))
    one, two = _launch("step", 1, quick), _launch("step", 2, quick)
    for model in ("unet", "yolo_v1"):
        label = f"{model} small train step, global batch 16"
        note = f"{one[model]['gradient_bytes'] / 2**20:.1f} MiB of gradients"
        rows.append(Row(label, "1 process", one[model]["seconds"], peer=True, work=16,
                        work_unit="images/s", note=note))
        rows.append(Row(label, "2 ranks x 8 (DDP + SyncBN)", two[model]["seconds"], work=16,
                        work_unit="images/s", note=note))
    return rows


def summary(rows: list[Row]) -> str:
    lines = ["The 2-rank step shares the 2 cores the 1-process step uses: its ratio is the",
             "overhead of sharding and reducing, not a speed-up (docs/DISTRIBUTED.md)."]
    by = {(r.case, r.impl): r.seconds for r in rows}
    for r in rows:
        if r.impl.startswith("DDP buckets"):
            raw = by[(r.case, "mpi4py Allreduce")]
            lines.append(f"- {r.case}: buckets {r.seconds / raw:.2f}x raw mpi4py's time")
    return "\n".join(lines)
