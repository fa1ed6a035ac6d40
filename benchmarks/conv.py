"""conv2d / conv_transpose2d: every algorithm beside PyTorch CPU (oneDNN), forward and
forward + backward, float32, on the shapes of issue 3.

Rows per case: each algorithm that applies (``reference`` forward only, it is slow;
``im2col``; ``direct``; ``winograd`` / ``winograd_f4`` for 3x3 stride-1 layers), ``default`` (what
``impl=None`` picks, i.e. what users get; the forward+backward row names the picks for
forward/input-gradient/weight-gradient) and ``torch`` (peer). Throughput is
``2 * N * Cout * Cin/groups * kH * kW * oh * ow`` FLOPs per pass (x3 for forward + backward:
one GEMM-sized product for the output, one for each gradient). The summary gives the
machine's SGEMM rate (numpy matmul 2048^3 float32), the peak memory of the largest conv
(tracemalloc, im2col forward + backward) and the geometric-mean ratios of ``default`` to
torch against the goals.
"""
from __future__ import annotations

import math
import time
import tracemalloc

import json
import os
import subprocess
import sys

import numpy as np

from benchmarks.harness import Row, measure, timed_row, try_import
from scratchvision.kernels import conv as K

# (label, N, Cin, Cout, H=W, k, stride, pad, dilation, groups)
MAIN = [("N8 C64->64 56² k3 s1 p1", 8, 64, 64, 56, 3, 1, 1, 1, 1),
        ("N8 C256->256 14² k3 s1 p1", 8, 256, 256, 14, 3, 1, 1, 1, 1),
        ("N8 C256->64 28² k1", 8, 256, 64, 28, 1, 1, 0, 1, 1),
        ("N8 C64->128 56² k3 s2 p1", 8, 64, 128, 56, 3, 2, 1, 1, 1),
        ("N8 C64->64 56² k3 p2 d2", 8, 64, 64, 56, 3, 1, 2, 2, 1)]
DEPTHWISE = ("N8 C64 56² k3 depthwise", 8, 64, 64, 56, 3, 1, 1, 1, 64)
# transposed: (label, N, Cin, Cout, H, k, stride, pad)
TRANSPOSED = ("N8 C64->32 28²->56² k4 s2 p1 (transposed)", 8, 64, 32, 28, 4, 2, 1)

QUICK_MAIN = [("q N1 C8->8 12² k3 s1 p1", 1, 8, 8, 12, 3, 1, 1, 1, 1),
              ("q N1 C8->4 8² k1", 1, 8, 4, 8, 1, 1, 0, 1, 1),
              ("q N1 C8->8 12² k3 s2 p1", 1, 8, 8, 12, 3, 2, 1, 1, 1)]
QUICK_DEPTHWISE = ("q N1 C8 12² k3 depthwise", 1, 8, 8, 12, 3, 1, 1, 1, 8)
QUICK_TRANSPOSED = ("q N1 C8->4 6²->12² k4 s2 p1 (transposed)", 1, 8, 4, 6, 4, 2, 1)

_LAST_SGEMM: dict = {}
_LAST_PEAK: dict = {}


def _flops(N, Cin, Cout, oh, ow, k, groups) -> float:
    return 2.0 * N * Cout * (Cin // groups) * k * k * oh * ow


def _conv_rows(case, quick, torch, impls=None) -> list[Row]:
    """Rows of one conv2d case: each algorithm in ``impls`` (default: all that apply), the
    default pick and torch."""
    label, N, Cin, Cout, H, k, s, p, d, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, Cin, H, H), dtype=np.float32)
    W = (rng.standard_normal((Cout, Cin // g, k, k), dtype=np.float32) * 0.1).astype(np.float32)
    b = rng.standard_normal(Cout, dtype=np.float32)
    args = ((s, s), (p, p), (d, d), g)
    y = K.conv2d_forward(x, W, b, *args)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = _flops(N, Cin, Cout, y.shape[2], y.shape[3], k, g)
    reps = dict(warmup=1, repeat=2) if quick else dict(warmup=2, repeat=7)
    slow = dict(warmup=1, repeat=2) if quick else dict(warmup=1, repeat=3)
    rows = []
    if impls is None:
        impls = ["reference", "im2col", "direct"]
        if K.winograd_applicable(W.shape, (s, s), (d, d)):
            impls += ["winograd", "winograd_f4"]
    fwd_case, both_case = f"fwd {label}", f"fwd+bwd {label}"
    picks = [K.choose_algorithm(x.shape, W.shape, *args, which=w)
             for w in ("forward", "input", "weight")]
    for impl in impls + [None]:
        name = impl or f"default ({picks[0]})"
        kw = slow if impl in ("reference", "direct") and g == 1 else reps
        rows.append(timed_row(fwd_case, name,
                              lambda: K.conv2d_forward(x, W, b, *args, impl=impl),
                              work=flops, work_unit="GFLOP/s", **kw))
        if impl == "reference":
            continue

        def both(impl=impl):
            K.conv2d_forward(x, W, b, *args, impl=impl)
            K.conv2d_backward_input(gy, W, x.shape, *args, impl=impl)
            K.conv2d_backward_weight(gy, x, W.shape, *args, impl=impl)
            gy.sum(axis=(0, 2, 3))
        name = impl or f"default ({'/'.join(picks)})"      # forward/input/weight
        rows.append(timed_row(both_case, name, both, work=3 * flops, work_unit="GFLOP/s",
                              **kw))
    if torch is not None:
        rows += _torch_rows(torch, fwd_case, both_case, x, W, b, gy, flops, reps,
                            lambda tx, tw, tb: torch.nn.functional.conv2d(
                                tx, tw, tb, stride=s, padding=p, dilation=d, groups=g))
    return rows


def _transposed_rows(case, quick, torch, impls=None) -> list[Row]:
    """Rows of the conv_transpose2d case: each algorithm in ``impls`` (default: reference,
    im2col, direct), the default and torch."""
    label, N, Cin, Cout, H, k, s, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, Cin, H, H), dtype=np.float32)
    W = (rng.standard_normal((Cin, Cout, k, k), dtype=np.float32) * 0.1).astype(np.float32)
    b = rng.standard_normal(Cout, dtype=np.float32)
    args = ((s, s), (p, p), (0, 0), 1, (1, 1))
    y = K.conv_transpose2d_forward(x, W, b, *args)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = _flops(N, Cout, Cin, H, H, k, 1)        # the adjoint conv's multiply-adds
    reps = dict(warmup=1, repeat=2) if quick else dict(warmup=2, repeat=7)
    fwd_case, both_case = f"fwd {label}", f"fwd+bwd {label}"
    rows = []
    for impl in (["reference", "im2col", "direct"] if impls is None else impls) + [None]:
        name = impl or "default"
        kw = dict(warmup=1, repeat=2 if quick else 3) if impl in ("reference", "direct") \
            else reps
        rows.append(timed_row(fwd_case, name,
                              lambda: K.conv_transpose2d_forward(x, W, b, *args, impl=impl),
                              work=flops, work_unit="GFLOP/s", **kw))

        def both(impl=impl):
            # both gradients at once, as the autograd Function asks for them
            K.conv_transpose2d_forward(x, W, b, *args, impl=impl)
            K.conv_transpose2d_backward(gy, x, W, *args, impl=impl)
            gy.sum(axis=(0, 2, 3))
        rows.append(timed_row(both_case, name, both, work=3 * flops, work_unit="GFLOP/s", **kw))
    if torch is not None:
        rows += _torch_rows(torch, fwd_case, both_case, x, W, b, gy, flops, reps,
                            lambda tx, tw, tb: torch.nn.functional.conv_transpose2d(
                                tx, tw, tb, stride=s, padding=p))
    return rows


def _torch_rows(torch, fwd_case, both_case, x, W, b, gy, flops, reps, op) -> list[Row]:
    tx, tw, tb = (torch.from_numpy(a) for a in (x, W, b))
    tgy = torch.from_numpy(gy)

    def fwd():
        with torch.no_grad():
            op(tx, tw, tb)
    gx_, gw_, gb_ = (t.clone().requires_grad_(True) for t in (tx, tw, tb))

    def both():
        gx_.grad = gw_.grad = gb_.grad = None
        op(gx_, gw_, gb_).backward(tgy)
    return [timed_row(fwd_case, "torch", fwd, peer=True, work=flops, work_unit="GFLOP/s",
                      **reps),
            timed_row(both_case, "torch", both, peer=True, work=3 * flops,
                      work_unit="GFLOP/s", **reps)]


def _sgemm_gflops(quick: bool) -> float:
    n = 512 if quick else 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    sec, _ = measure(lambda: a @ a, warmup=1, repeat=2 if quick else 5)
    return 2.0 * n ** 3 / sec / 1e9


def _peak_memory(case) -> tuple[str, float, float]:
    """Peak traced bytes of one im2col forward + backward of ``case`` and its tensors' size."""
    label, N, Cin, Cout, H, k, s, p, d, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, Cin, H, H), dtype=np.float32)
    W = rng.standard_normal((Cout, Cin // g, k, k), dtype=np.float32)
    args = ((s, s), (p, p), (d, d), g)
    K.release_workspace()              # so the cached column buffer is allocated, and counted
    tracemalloc.start()
    tracemalloc.reset_peak()
    y = K.conv2d_forward(x, W, None, *args, impl="im2col")
    K.conv2d_backward_input(y, W, x.shape, *args, impl="im2col")
    K.conv2d_backward_weight(y, x, W.shape, *args, impl="im2col")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return label, peak / 2 ** 20, (x.nbytes + y.nbytes) / 2 ** 20


def run(quick: bool = False) -> list[Row]:
    torch = try_import("torch")
    main = QUICK_MAIN if quick else MAIN
    rows: list[Row] = []
    t0 = time.perf_counter()
    for case in main + [QUICK_DEPTHWISE if quick else DEPTHWISE]:
        rows += _conv_rows(case, quick, torch)
    rows += _transposed_rows(QUICK_TRANSPOSED if quick else TRANSPOSED, quick, torch)
    for first in IMPORT_ORDERS:
        rows += _import_order_rows(first, quick)
    _LAST_SGEMM["gflops"] = _sgemm_gflops(quick)
    largest = max(main, key=lambda c: _flops(c[1], c[2], c[3], c[4], c[4], c[5], c[9]))
    _LAST_PEAK["value"] = _peak_memory(largest)
    _LAST_PEAK["seconds"] = time.perf_counter() - t0
    _LAST_PEAK["main"] = [c[0] for c in main]
    _LAST_PEAK["depthwise"] = (QUICK_DEPTHWISE if quick else DEPTHWISE)[0]
    _LAST_PEAK["transposed"] = (QUICK_TRANSPOSED if quick else TRANSPOSED)[0]
    return rows


IMPORT_ORDERS = ("numpy", "torch")
# the tuning variables that once made the speed depend on the import order: unset in the
# import-order processes, so their rows show what a user gets without them
TUNING_VARIABLES = ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")


def _import_order_rows(first: str, quick: bool) -> list[Row]:
    """The main shapes' default and torch rows, timed in a fresh process that imports
    ``first`` (numpy or torch) before scratchvision (``benchmarks/_conv_order.py``)."""
    env = {k: v for k, v in os.environ.items() if k not in TUNING_VARIABLES}
    cmd = [sys.executable, "-m", "benchmarks._conv_order", first] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if done.returncode != 0:
        print(f"conv: the {first}-first process failed: {done.stderr[-500:]}", file=sys.stderr)
        return []
    return [Row(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]


def _geomean(values) -> float:
    values = [v for v in values if v is not None]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summary(rows: list[Row]) -> str:
    def t(case, prefix):
        return next((r.seconds for r in rows if r.case == case and r.impl.startswith(prefix)),
                    None)

    def ratio(case):
        ours, peer = t(case, "default"), t(case, "torch")
        return None if ours is None or peer is None else ours / peer
    lines = [f"Machine SGEMM (numpy matmul float32): {_LAST_SGEMM.get('gflops', float('nan')):.1f}"
             " GFLOP/s."]
    if "value" in _LAST_PEAK:
        label, peak, data = _LAST_PEAK["value"]
        lines.append(f"Peak traced memory of the largest conv ({label}, im2col forward + both "
                     f"backwards): {peak:.1f} MiB (input + output themselves {data:.1f} MiB; "
                     f"workspace cap {K.workspace_limit() / 2 ** 20:.0f} MiB).")
    if any(r.peer for r in rows):
        main = _LAST_PEAK.get("main", [])
        goals = [("conv2d forward, geomean of the main shapes", [f"fwd {c}" for c in main], 1.25),
                 ("conv2d forward+backward, geomean", [f"fwd+bwd {c}" for c in main], 1.5),
                 ("conv_transpose2d forward+backward", [f"fwd+bwd {_LAST_PEAK['transposed']}"],
                  1.5),
                 ("depthwise forward", [f"fwd {_LAST_PEAK['depthwise']}"], 2.0)]
        # the same cases in this process (torch imported first, as `python -m benchmarks`
        # does, with the tuning variables) and in the fresh import-order processes
        orders = [("this process", "")] + [(f"`import {first}` first", f"[{first} first] ")
                                           for first in IMPORT_ORDERS]
        lines.append("Goals (default algorithm / torch, lower is better), per process; the "
                     "goal applies to the worst:")
        for name, cases, goal in goals:
            per = [(label, _geomean([ratio(prefix + c) for c in cases]))
                   for label, prefix in orders]
            per = [(label, g) for label, g in per if g == g]        # not NaN: rows exist
            worst = max(g for _, g in per)
            lines.append(f"- {name}: " + ", ".join(f"{label} {g:.2f}x" for label, g in per)
                         + f"; worst {worst:.2f}x (goal <= {goal}x: "
                         f"{'met' if worst <= goal else 'NOT met'})")
    else:
        lines.append("torch not installed: no goal ratios.")
    return "\n".join(lines)
