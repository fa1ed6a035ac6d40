"""Write docs/DISTRIBUTED.md: how to train on N processes, what is exact, what was
measured, and a scaling model for N machines.

    python docs/make_scaling_model.py

Inputs (read, not re-measured):

- ``benchmarks/results/distributed.json`` (``python -m benchmarks distributed``): the
  all-reduce throughput on this machine and the 1- and 2-rank training steps;
- ``runs/results/<run>/result.json`` (``python docs/make_det_results.py``): each
  detector's parameters and training minutes, from which the compute of one step at the
  results table's batch size follows (``minutes / (epochs x steps per epoch)``, one core,
  the per-epoch evaluation included, so a slight overestimate);
- the U-Net small step on an H200 (``benchmarks/results/gpu.md``: scratchvision's 40.5 ms
  and PyTorch's 9.25 ms, batch 16), for the case where compute is a GPU's.

The model. Data parallelism over N machines all-reduces the G gradient bytes once a step.
MPICH's all-reduce of large buffers is Rabenseifner's (reduce-scatter, then all-gather),
which moves ``2 (N - 1) / N * G`` bytes in and out of each machine in ``2 log2 N``
rounds; with link bandwidth ``beta`` (bytes/s) and per-message latency ``alpha``::

    t_comm(N) = 2 log2(N) alpha + 2 (N - 1) / N * G / beta

With a fixed batch per machine (weak scaling; the global batch grows with N) the compute
``t_step`` stays, so the efficiency is ``t_step / (t_step + t_comm)`` when the reduction
waits for the backward to end, and ``t_step / max(t_step, t_comm + t_step / 3)`` at best
with the buckets' overlap (the reduction hides behind the backward, about two thirds of
a step, and the last bucket is left after it). The bandwidth term tends to ``2 G / beta``
and stops growing, so the efficiency falls to a floor set by ``G / beta`` against
``t_step``; the latency term keeps growing, slowly. With a fixed global batch B (strong
scaling, the same model at any N: what ``--batch-size`` means here) each machine computes
``t_step / N`` and N cannot pass B.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "DISTRIBUTED.md"
BENCH = ROOT / "benchmarks" / "results" / "distributed.json"
RUNS = ROOT / "runs" / "results"

# (run folder, label, the table's batch size is in result.json's settings)
MODELS = [("sliding_window", "sliding window"), ("rcnn", "R-CNN (fine-tuning)"),
          ("fast_rcnn", "Fast R-CNN"), ("faster_rcnn", "Faster R-CNN"),
          ("mask_rcnn", "Mask R-CNN"), ("yolo_v1", "YOLO v1"), ("ssd", "SSD")]
# U-Net small, batch 16, 128 px: benchmarks/results/train_step.md (2 cores) and gpu.md
GPU_STEPS = [("U-Net small, H200, scratchvision", 1_093_420, 16, 0.04053),
             ("U-Net small, H200, PyTorch's speed", 1_093_420, 16, 0.00925)]
# links: (name, bytes/s, latency s)
LINKS = [("1 Gb/s Ethernet", 1e9 / 8, 50e-6), ("10 Gb/s Ethernet", 10e9 / 8, 20e-6),
         ("100 Gb/s InfiniBand", 100e9 / 8, 2e-6)]
NODES = (2, 8, 64, 512)


def t_comm(grad_bytes: float, n: int, beta: float, alpha: float) -> float:
    return 2 * math.log2(n) * alpha + 2 * (n - 1) / n * grad_bytes / beta


def efficiency(t_step: float, comm: float, overlap: bool) -> float:
    return t_step / max(t_step, comm + t_step / 3) if overlap else t_step / (t_step + comm)


def model_rows() -> list[tuple]:
    rows = []
    for run, label in MODELS:
        path = RUNS / run / "result.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        batch = r["settings"]["batch_size"]
        steps = r["epochs"] * (r["train_images"] // batch)
        rows.append((label, r["parameters"], batch, r["minutes"] * 60 / steps))
    return rows


def _fmt_ms(s: float) -> str:
    return f"{s * 1e3:,.0f} ms" if s >= 0.01 else f"{s * 1e3:.1f} ms"


def scaling_table(rows: list[tuple]) -> list[str]:
    head = ("| model | parameters | gradients | batch / machine | compute / step | link | "
            "t_comm, N = 512 | " + " | ".join(f"eff. N={n}" for n in NODES) + " |")
    out = [head, "|" + "---|" * (7 + len(NODES))]
    for label, params, batch, t_step in rows:
        g = params * 4
        for k, (link, beta, alpha) in enumerate(LINKS):
            effs = [f"{efficiency(t_step, t_comm(g, n, beta, alpha), False):.2f} / "
                    f"{efficiency(t_step, t_comm(g, n, beta, alpha), True):.2f}" for n in NODES]
            first = (f"{label} | {params:,} | {g / 2**20:.1f} MiB | {batch} | "
                     f"{_fmt_ms(t_step)}") if k == 0 else " | | | | "
            out.append(f"| {first} | {link} | {_fmt_ms(t_comm(g, 512, beta, alpha))} | "
                       + " | ".join(effs) + " |")
    return out


def where_it_stops(rows: list[tuple]) -> list[str]:
    """The link below which one machine's step no longer hides the reduction (efficiency
    under 50 % without overlap at N = 64)."""
    out = []
    for label, params, _, t_step in rows:
        g = params * 4
        # efficiency 0.5 without overlap: t_comm = t_step; solve for beta at large N
        beta = 2 * g / t_step
        out.append(f"- {label}: a link slower than {beta * 8 / 1e9:.2f} Gb/s "
                   f"({beta / 1e6:,.0f} MB/s) makes the all-reduce as long as the step")
    return out


def read(rows: list[tuple], gpu: list[tuple]) -> str:
    """The table in words, its numbers computed from it."""
    def worst(models, link):
        _, beta, alpha = LINKS[link]
        return min((efficiency(t, t_comm(p * 4, 512, beta, alpha), False), label)
                   for label, p, _, t in models)
    e1, m1 = worst(rows, 0)
    e10, m10 = worst(rows, 1)
    g1, _ = worst(gpu[1:], 0)
    g10, _ = worst(gpu[1:], 1)
    return (f"Read: on CPUs these models' steps ({min(r[3] for r in rows):.2f}-"
            f"{max(r[3] for r in rows):.2f} s) are long against their gradients "
            f"({min(r[1] for r in rows) * 4 / 2**20:.1f}-"
            f"{max(r[1] for r in rows) * 4 / 2**20:.1f} MiB): at 10 Gb/s every one keeps "
            f"{e10:.2f} or more of its speed per machine at 512 machines without overlap "
            f"(the lowest: {m10}), and at 1 Gb/s the lightest steps fall to {e1:.2f} "
            f"({m1}), which the buckets' overlap recovers. The limit is elsewhere: the "
            "global batch (with `--batch-size` fixed, N cannot exceed it and each rank's "
            "share shrinks) and the learning rate a larger batch needs. On GPUs the step "
            "shrinks 30-100x while the gradients do not: at PyTorch's speed 1 Gb/s leaves "
            f"{g1:.2f} of a machine's speed and 10 Gb/s {g10:.2f} without overlap; only "
            "InfiniBand-class links keep data parallelism efficient there. The latency "
            "term is small at these bucket counts (one or a few buckets a step) until N "
            "reaches the thousands.")


def measured_words() -> str:
    """The measured table in words, its ratios read from it."""
    if not BENCH.exists():
        return ""
    rows = json.loads(BENCH.read_text())["rows"]
    by = {(r["case"], r["impl"].split(" (")[0]): r["seconds"] for r in rows}

    def ratio(case_start: str, impl_start: str, peer: str) -> float:
        case = next(c for c, _ in by if c.startswith(case_start))
        impl = next(i for c, i in by if c == case and i.startswith(impl_start))
        return by[(case, impl)] / by[(case, peer)]
    unet = ratio("unet", "2 ranks", "1 process")
    yolo = ratio("yolo_v1", "2 ranks", "1 process")
    small = ratio("all_reduce 1 MiB", "DDP buckets", "mpi4py Allreduce")
    large = ratio("all_reduce 100 MiB", "DDP buckets", "mpi4py Allreduce")
    return ("Two ranks of one thread each ran a step *faster* than one process with both "
            f"cores (U-Net {unet:.2f}x, YOLO v1 {yolo:.2f}x the time): this project's "
            "kernels use a second thread less well than a second process does, and the "
            "reduction itself (4 MiB of gradients, one bucket) costs a few milliseconds of "
            "steps of 0.1-1 s. The bucket path is slower than a raw `Allreduce` of the same "
            "bytes when the buffer is small, because it copies the gradients into the flat "
            f"buffer and walks 64 parameters in Python ({small:.1f}x at 1 MiB); at 100 MiB "
            f"(4 buckets) it is {large:.2f}x the raw time.")


def measured() -> list[str]:
    if not BENCH.exists():
        return ["(run `python -m benchmarks distributed` first)"]
    data = json.loads(BENCH.read_text())
    lines = [f"Measured {data['machine']}.", "",
             "| case | impl | median | throughput | x peer |", "|---|---|---:|---:|---:|"]
    peers = {r["case"]: r["seconds"] for r in data["rows"] if r["peer"]}
    for r in data["rows"]:
        rate = r["work"] / r["seconds"] if r["work"] else None
        unit = r["work_unit"]
        lines.append(f"| {r['case']} | {r['impl']}{' (peer)' if r['peer'] else ''} | "
                     f"{_fmt_ms(r['seconds'])} | "
                     f"{'' if rate is None else f'{rate:,.1f} {unit}'} | "
                     f"{r['seconds'] / peers[r['case']]:.2f} |")
    return lines


def main() -> None:
    rows = model_rows()
    gpu = [(label, p, b, t) for label, p, b, t in GPU_STEPS]
    text = [
        "# Data-parallel training",
        "",
        "Written by `python docs/make_scaling_model.py` from "
        "`benchmarks/results/distributed.json` and the results runs (`runs/results`).",
        "",
        "## Commands",
        "",
        "```bash",
        "pip install -e '.[dist]'     # mpi4py and the mpich wheel: mpiexec in the venv",
        "mpiexec -n 2 python -m scratchvision train-seg --model unet --batch-size 16 "
        "--sync-bn --out runs/seg_2ranks",
        "mpiexec -n 2 python -m scratchvision train-det --model yolo_v1 --sync-bn "
        "--out runs/yolo_2ranks",
        "# several machines: the same command, with MPICH's host list",
        "mpiexec -n 8 -hosts node1:4,node2:4 python -m scratchvision train-seg ...",
        "```",
        "",
        "Every rank runs the same command. `--batch-size` is the global batch: each of N "
        "ranks takes batch / N of every batch (it must divide). Rank 0 writes the log, "
        "the checkpoints, the pictures and `result.json` (which records `world_size`); "
        "`--resume` works under `mpiexec` as without it. `--sync-bn` makes batch norm use "
        "the statistics of the whole global batch (`nn.SyncBatchNorm`); without it each "
        "rank normalises by its own shard's, as torch's DDP does by default. "
        "`--bucket-cap-mb` sets the gradient bucket size (default 25 MiB, torch's). "
        "With `--device cuda` each rank takes the GPU `local rank % GPUs` and reduces "
        "over NCCL (no GPU was lent to this work: that path has not run here).",
        "",
        "## What is exact",
        "",
        "A rank's shard of each global batch is the torch DistributedSampler layout "
        "(`distributed.shard`), each image's augmentation is drawn from a generator seeded "
        "by (seed, epoch, image index), and the gradients are averaged, so N ranks train "
        "what one process trains when the loss is a mean over the images of the batch "
        "(a mean of equal per-image terms) and batch norm is synchronised. "
        "Measured in `tests/distributed/test_distributed.py` on 2 ranks: a conv/BN net "
        "after 8 Adam steps equals one process to 2e-16 in float64 (1e-7 in float32, "
        "with and without gradient accumulation by `no_sync`); `train-seg` (U-Net, "
        "float32, SGD) 1e-6 relative after 8 steps (with Adam, 7e-4 in the weights' norm: "
        "Adam's per-element step turns a gradient that is zero up to rounding into a full "
        "step whose sign the order of the sums decides); `train-det --model yolo_v1` 6e-8 "
        "relative; "
        "a run interrupted and resumed under `mpiexec` equals an uninterrupted one bit "
        "for bit. Where the loss is normalised by a count over the whole batch (SSD's "
        "matched boxes, Faster R-CNN's sampled anchors when an image has too few "
        "positives), or where a model draws from its own random stream (YOLO v1's "
        "classification pre-training picks its background crops so), N ranks train a "
        "slightly different model, as under torch's DDP. Exact means the same arithmetic "
        "up to the order of floating-point sums: float32 training amplifies rounding over "
        "hundreds of steps, so long runs agree in accuracy, not bit for bit (measured: 100 "
        "steps of YOLO v1 small, the epoch's mean loss 5.7314 in one process with 2 "
        "threads, 5.7642 with 1 thread, 5.7332 on 2 ranks).",
        "",
        "## Measured on this machine",
        "",
        *measured(),
        "",
        measured_words(),
        "",
        "## Scaling model for N machines",
        "",
        "Per step each machine all-reduces the gradients (4 bytes a parameter). With "
        "MPICH's algorithm for large buffers (Rabenseifner's reduce-scatter + all-gather) "
        "that takes `t_comm(N) = 2 log2(N) alpha + 2 (N - 1) / N * G / beta` for G bytes, "
        "link bandwidth beta and latency alpha. With a fixed batch per machine, the "
        "efficiency is `t_step / (t_step + t_comm)` if the reduction waits for the end of "
        "backward, and at best `t_step / max(t_step, t_comm + t_step / 3)` with the "
        "buckets started during backward (two thirds of a step to hide behind). Each cell "
        "below: without / with overlap. Compute per step: the results runs (one CPU core, "
        "the table's batch), then the U-Net small step on an H200.",
        "",
        *scaling_table(rows + gpu),
        "",
        "Where the scaling stops (efficiency 50 % without overlap, large N):",
        "",
        *where_it_stops(rows + gpu),
        "",
        read(rows, gpu),
        "",
    ]
    OUT.write_text("\n".join(text))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
