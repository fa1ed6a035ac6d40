"""Where the GPU time goes: a diagnostic beside the ``gpu`` benchmark family (not one).

``python -m benchmarks._gpu_profile [substring ...]`` prints, for every case of
``benchmarks/gpu.py`` (or those whose name contains a substring):

* host: the median wall time of one call *without* waiting for the GPU, i.e. what Python,
  the autograd engine and the launches cost on the CPU (a call that synchronises shows
  the GPU time here too);
* events: the median time between CUDA events around one call, as the benchmark reports;
* kernels: the GPU time of the call's kernels and how many were launched, and the kernels
  that took most of it, from ``torch.profiler`` (CUPTI sees every kernel of the process:
  Numba's, CuPy's and cuBLAS's as well as PyTorch's).

When ``host`` is close to ``events`` and far above ``kernels``, the GPU waits for Python.
First it times the launch of an empty kernel, the floor under every small op: through
``cuda_support.launch`` (Numba), as a CuPy elementwise kernel, and as a PyTorch op.
"""
from __future__ import annotations

import statistics
import sys
import time


def _host_and_events(fn, cp, repeat=10):
    fn()
    cp.cuda.Device().synchronize()
    host, events = [], []
    for _ in range(repeat):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        t0 = time.perf_counter()
        fn()
        host.append(time.perf_counter() - t0)
        end.record()
        end.synchronize()
        events.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(host), statistics.median(events)


def _device_us(avg) -> float:
    for name in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(avg, name):
            return float(getattr(avg, name))
    return 0.0


def _kernel_table(fn, cp, torch, calls=3, top=8) -> str:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        cp.cuda.Device().synchronize()
        torch.cuda.synchronize()
    kernels = [a for a in prof.key_averages() if a.device_type == DeviceType.CUDA]
    total = sum(_device_us(a) for a in kernels) / calls
    count = sum(a.count for a in kernels) / calls
    lines = [f"    kernels: {total / 1e3:.3f} ms in {count:.0f} launches per call"]
    for a in sorted(kernels, key=_device_us, reverse=True)[:top]:
        lines.append(f"      {_device_us(a) / calls / 1e3:8.3f} ms  x{a.count / calls:<5.0f} "
                     f"{a.key[:110]}")
    return "\n".join(lines)


def _launch_overhead(cp, torch) -> None:
    from numba import cuda

    from scratchvision.kernels.cuda_support import launch

    @cuda.jit
    def _noop(a, b, c, n):
        i = cuda.grid(1)
        if i < n:
            c[i] = a[i] + b[i]

    a = cp.zeros(32, cp.float32)
    b, c = cp.zeros_like(a), cp.zeros_like(a)
    at = torch.zeros(32, device="cuda")
    bt = torch.zeros_like(at)
    tries = {
        "numba kernel via launch (3 arrays)": lambda: launch(_noop, 32, a, b, c, 32),
        "numba kernel, cupy args direct": lambda: _noop[1, 32](a, b, c, 32),
        "cupy elementwise (a + b)": lambda: cp.add(a, b, out=c),
        "cupy reduction (a.sum())": lambda: a.sum(),
        "torch op (at + bt)": lambda: torch.add(at, bt),
    }
    print("launch cost (host µs per call, 2000 calls):")
    for name, fn in tries.items():
        try:
            for _ in range(20):
                fn()
            cp.cuda.Device().synchronize()
            t0 = time.perf_counter()
            for _ in range(2000):
                fn()
            host = (time.perf_counter() - t0) / 2000
            cp.cuda.Device().synchronize()
            print(f"  {name:40s} {host * 1e6:8.1f} µs")
        except Exception as e:  # noqa: BLE001 (a diagnostic: report and go on)
            print(f"  {name:40s} failed: {type(e).__name__}: {e}")


def main(argv: list[str]) -> int:
    import cupy as cp
    import torch

    import scratchvision as sv
    from benchmarks.gpu import cases, determinism
    if not sv.gpu_available():
        print("no GPU")
        return 2
    _launch_overhead(cp, torch)
    for c in cases():
        if argv and not any(s in f"{c.name} {c.impl}" for s in argv):
            continue
        if c.impl.startswith("cuDNN TF32"):
            continue
        with determinism(c.deterministic):
            try:
                host, events = _host_and_events(c.fn, cp, repeat=min(c.repeat, 10))
                print(f"\n{c.name} [{c.impl}]: host {host * 1e3:.3f} ms, "
                      f"events {events * 1e3:.3f} ms")
                print(_kernel_table(c.fn, cp, torch, calls=2 if c.repeat < 20 else 3))
            except Exception as e:  # noqa: BLE001
                print(f"\n{c.name} [{c.impl}]: failed: {type(e).__name__}: {e}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
