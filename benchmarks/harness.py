"""Shared timing and reporting for the benchmark families.

A family module (``benchmarks/conv.py`` ...) defines ``run(quick: bool) -> list[Row]``: it
times every implementation of its kernels, and each installed peer (PyTorch CPU,
torchvision, OpenCV), on fixed shapes, with ``measure``. ``report`` prints one table per
family with the ratio of each row's time to the fastest peer of the same case, and writes
``benchmarks/results/<family>.md`` and ``.json`` (and a bar plot when matplotlib is there).

Timing: a few warm-up calls (Numba compiles, caches fill), then ``repeat`` timed calls;
the median is reported (robust to the noise of a shared machine), with the spread.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    case: str                 # the shape/setting, e.g. "N8 C64->64 56x56 k3 s1 p1"
    impl: str                 # "im2col", "winograd", "torch", ...
    seconds: float            # median time of one call
    peer: bool = False        # True for a library we compare against
    work: float | None = None  # FLOPs, boxes, images ... done by one call
    work_unit: str = ""       # "GFLOP/s", "boxes/s", ...
    spread: float = 0.0       # (max - min) / median of the timed calls
    note: str = ""            # peak memory, recall, ...
    extra: dict = field(default_factory=dict)


def measure(fn: Callable[[], object], warmup: int = 2, repeat: int = 7,
            min_time: float = 0.0, sync: Callable[[], object] | None = None) -> tuple[float, float]:
    """Median seconds of ``fn()`` after ``warmup`` calls, and the relative spread.

    ``repeat`` grows (up to 50) while the timed calls total less than ``min_time``.
    ``sync`` (e.g. a device synchronise) runs after each call, inside the timing.
    """
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times: list[float] = []
    while len(times) < repeat or (sum(times) < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return med, (max(times) - min(times)) / med if med > 0 else 0.0


def timed_row(case: str, impl: str, fn: Callable[[], object], *, peer: bool = False,
              work: float | None = None, work_unit: str = "", note: str = "",
              **measure_kwargs) -> Row:
    """``measure`` fn and wrap the result in a Row."""
    seconds, spread = measure(fn, **measure_kwargs)
    return Row(case, impl, seconds, peer, work, work_unit, spread, note)


def _throughput(row: Row) -> str:
    if row.work is None or row.seconds <= 0:
        return ""
    rate = row.work / row.seconds
    if row.work_unit.startswith("GFLOP"):
        rate /= 1e9
    return f"{rate:,.1f} {row.work_unit}"


def ratios(rows: list[Row]) -> dict[int, float | None]:
    """Row index -> time / fastest peer's time in the same case (None without a peer)."""
    best: dict[str, float] = {}
    for r in rows:
        if r.peer:
            best[r.case] = min(best.get(r.case, float("inf")), r.seconds)
    return {i: (r.seconds / best[r.case] if r.case in best else None)
            for i, r in enumerate(rows)}


def format_table(family: str, rows: list[Row]) -> str:
    """A Markdown table: case, impl, median time, throughput, ratio to fastest peer."""
    rat = ratios(rows)
    lines = [f"### {family}", "",
             "| case | impl | median | spread | throughput | × fastest peer | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for i, r in enumerate(rows):
        ratio = "" if rat[i] is None else f"{rat[i]:.2f}"
        impl = f"{r.impl} (peer)" if r.peer else r.impl
        lines.append(f"| {r.case} | {impl} | {_fmt_time(r.seconds)} | {r.spread:.0%} | "
                     f"{_throughput(r)} | {ratio} | {r.note} |")
    return "\n".join(lines)


def _fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def machine_info() -> dict:
    """What the numbers were measured on."""
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    for mod in ("numpy", "numba", "cv2", "torch", "torchvision", "cupy"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            pass
    # which OpenBLAS kernels NumPy runs: an OPENBLAS_CORETYPE pin (some machine images set
    # Haswell on AVX-512 processors) makes every GEMM-based kernel ~3x slower while
    # oneDNN (torch) keeps its AVX-512 code, so the ratios would not compare like with like
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
        for lib in threadpool_info():
            if lib.get("internal_api") == "openblas" and "numpy" in lib.get("filepath", ""):
                info["openblas"] = f"{lib.get('version')} ({lib.get('architecture')} kernels)"
                break
    except Exception:
        pass
    if os.environ.get("OPENBLAS_CORETYPE"):
        info["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    return info


def report(family: str, rows: list[Row], summary: str = "", write: bool = True) -> str:
    """Print the family's table and write results/<family>.md/.json (+ .png plot)."""
    table = format_table(family, rows)
    text = table + ("\n\n" + summary if summary else "")
    print(text, flush=True)
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        info = machine_info()
        header = (f"# Benchmark: {family}\n\nMeasured {info['date']} on {info['cpus']} CPUs "
                  f"({info['machine']}), " + ", ".join(f"{k} {v}" for k, v in info.items()
                                                     if k not in ("date", "cpus", "machine",
                                                                  "processor")) +
                  f".\nCommand: `python -m benchmarks {family}`. Median of repeated runs after "
                  "warm-up; ratio = time / fastest peer's time in the same process.\n\n")
        (RESULTS / f"{family}.md").write_text(header + text + "\n")
        rat = ratios(rows)
        (RESULTS / f"{family}.json").write_text(json.dumps(
            {"family": family, "machine": info, "summary": summary,
             "rows": [dict(asdict(r), ratio_to_fastest_peer=rat[i]) for i, r in enumerate(rows)]},
            indent=1, default=str))
        _plot(family, rows)
    return text


def _plot(family: str, rows: list[Row]) -> None:
    try:
        import matplotlib  # noqa: PLC0415
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return
    cases = list(dict.fromkeys(r.case for r in rows))
    impls = list(dict.fromkeys(r.impl for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(cases) + 2), 4.5))
    width = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for i, case in enumerate(cases):
            for r in rows:
                if r.case == case and r.impl == impl:
                    xs.append(i + k * width)
                    ys.append(r.seconds * 1e3)
        ax.bar(xs, ys, width, label=impl)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
    ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("median time (ms, log)")
    ax.set_yscale("log")
    ax.set_title(f"{family}: time per call (lower is better)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{family}.png", dpi=110)
    plt.close(fig)


def try_import(name: str):
    """Import a peer library, or return None when it is not installed."""
    try:
        return __import__(name)
    except Exception:
        return None
