"""Where a scratchvision training step's time and memory go, beside PyTorch's memory: a
diagnostic next to the ``train_step`` family (``python -m benchmarks._train_step_profile``).

**Time by layer kind.** Three steps of the small U-Net and FCN-8s of ``train_step.py``
(batch 16, 128x128) run under ``cProfile`` (wall-clock timer, so the time Numba's threads
spend inside a kernel counts for the call that launched it). Every ``forward``/``backward``
of a ``Function`` is attributed to its module (conv, batch norm, activation, pooling, loss,
the element-wise and shape ops of ``autograd/ops.py``); the optimiser's ``step`` and
``zero_grad`` to the optimiser; what is left of the step's time is the autograd engine and
the Python around the calls ("autograd bookkeeping"). cProfile adds a few microseconds per
Python call, which inflates the Python-heavy parts a little; the kernels' share is real.

**Peak memory.** A fresh process per side builds the model, runs one warm-up step, then
samples the resident set every millisecond during two more steps: its peak, and the peak
above the level before the steps (what a step adds on top of the weights, the optimiser
state and the caches); scratchvision's side also reports ``tracemalloc``'s peak of one
step (NumPy's allocations). The torch side holds the scratchvision model it was copied from
as well, so compare the peaks above the level before the step.

Writes ``benchmarks/results/train_step_profile.md``.
"""
from __future__ import annotations

import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = [("functional/conv.py", "conv / conv_transpose (kernels + GEMM)"),
         ("functional/normalization.py", "batch norm"),
         ("functional/activation.py", "activation"),
         ("functional/pooling.py", "pooling"),
         ("functional/loss.py", "loss"),
         ("autograd/ops.py", "element-wise, shape and cat ops"),
         ("autograd/indexing.py", "indexing ops")]


def _build(name: str, batch: int = 16, size: int = 128):
    import scratchvision as sv  # noqa: PLC0415
    from benchmarks.train_step import _sv_step  # noqa: PLC0415
    from scratchvision.nets import build_segmenter  # noqa: PLC0415
    from scratchvision.train_seg import model_kwargs  # noqa: PLC0415
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 4, (batch, size, size))
    sv.manual_seed(0)
    model = build_segmenter(name, 4, **model_kwargs(name, "small"))
    return model, x, y, _sv_step(model, x, y)


def profile(name: str, steps: int = 3) -> dict:
    """Seconds per step by layer kind for ``name``'s scratchvision training step."""
    _, _, _, step = _build(name)
    step()                                                      # compile, warm the caches
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    stats = pstats.Stats(prof).stats           # (file, line, func) -> (cc, nc, tt, ct, callers)
    total = sum(tt for (_, _, _), (_, _, tt, _, _) in stats.items()) / steps
    kinds: dict[str, float] = {}
    for (file, _, func), (_, _, _, cumulative, _) in stats.items():
        path = file.replace(os.sep, "/")
        if "scratchvision/" not in path:
            continue
        # the Functions' own methods (functional/, autograd's ops, ops/), not Module.forward
        # (nn/, nets/) nor Tensor.backward and the engine, which hold other ops' time
        function_file = ("/functional/" in path or "/scratchvision/ops/" in path
                         or path.endswith(("autograd/ops.py", "autograd/indexing.py")))
        if func in ("forward", "backward") and function_file:
            kind = next((k for suffix, k in KINDS if path.endswith(suffix)), "other Functions")
        elif path.endswith(("nn/optim/adam.py", "nn/optim/optimizer.py")) and func in (
                "step", "zero_grad"):
            kind = "optimiser (Adam step, zero_grad)"
        else:
            continue
        kinds[kind] = kinds.get(kind, 0.0) + cumulative / steps
    kinds["autograd bookkeeping and Python around the calls"] = total - sum(kinds.values())
    return {"total": total, "kinds": kinds}


def _rss_mib() -> float:
    """The process's current resident set (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_child(side: str, name: str) -> None:
    """In a fresh process: one warm-up step, then the resident set's peak during two more
    steps (sampled every millisecond) above its level before them."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415
    import tracemalloc  # noqa: PLC0415
    model, x, y, step = _build(name)
    if side == "torch":
        import torch  # noqa: PLC0415

        from benchmarks.train_step import _torch_fcn8s, _torch_step, _torch_unet  # noqa: PLC0415
        tmodel = (_torch_unet if name == "unet" else _torch_fcn8s)(torch, model)
        del model
        step = _torch_step(torch, tmodel, x, y)
    step()
    before, peak, done = _rss_mib(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.001)
    sampler = threading.Thread(target=sample)
    sampler.start()
    step()
    step()
    done.set()
    sampler.join()
    traced = None
    if side == "sv":                 # NumPy's allocations (torch's allocator is not traced)
        tracemalloc.start()
        step()
        traced = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    print(json.dumps({"rss_before_mib": before, "rss_peak_mib": peak[0],
                      "traced_peak_mib": traced}))


def memory(side: str, name: str) -> dict | None:
    done = subprocess.run([sys.executable, "-m", "benchmarks._train_step_profile", "--memory",
                           side, name], capture_output=True, text=True, timeout=900,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        print(f"{side} {name}: {done.stderr[-400:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--memory":
        _memory_child(sys.argv[2], sys.argv[3])
        return
    lines = ["# Training step profile", "",
             "Command: `python -m benchmarks._train_step_profile` (see its docstring). Small "
             "models, batch 16, 128x128, 4 classes; 2-core CPU.", ""]
    for name in ("unet", "fcn8s"):
        p = profile(name)
        lines += [f"## {name}: {p['total'] * 1e3:.0f} ms per step under cProfile", "",
                  "| layer kind | ms per step | share |", "|---|---:|---:|"]
        for kind, sec in sorted(p["kinds"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {kind} | {sec * 1e3:.1f} | {sec / p['total']:.0%} |")
        lines.append("")
    lines += ["## Peak memory of a training step (fresh process per side)", "",
              "| model | side | RSS before the step (MiB) | RSS peak during it (MiB) | "
              "peak - before (MiB) | tracemalloc peak (MiB) |", "|---|---|---:|---:|---:|---:|"]
    for name in ("unet", "fcn8s"):
        for side in ("sv", "torch"):
            m = memory(side, name)
            if m is None:
                continue
            traced = "" if m["traced_peak_mib"] is None else f"{m['traced_peak_mib']:.0f}"
            lines.append(f"| {name} | {'scratchvision' if side == 'sv' else 'torch'} | "
                         f"{m['rss_before_mib']:.0f} | {m['rss_peak_mib']:.0f} | "
                         f"{m['rss_peak_mib'] - m['rss_before_mib']:.0f} | {traced} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "train_step_profile.md").write_text(text)


if __name__ == "__main__":
    main()
