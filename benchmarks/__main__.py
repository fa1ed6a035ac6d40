"""``python -m benchmarks [family ...] [--quick]``: run benchmark families and print tables.

Each family is a module ``benchmarks/<family>.py`` with ``run(quick) -> list[Row]`` and an
optional ``summary(rows) -> str`` (goal ratios, geometric means). Results go to
``benchmarks/results/``. Run on an otherwise idle machine: timings are medians, but a
busy neighbour still skews them.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

try:  # PyTorch (a peer) is imported before scratchvision, as every script that compares
    import torch  # noqa: F401  with it does: the order that was slowest before
except ImportError:  # scratchvision's GEMMs moved onto Numba's threads (kernels/gemm.py).
    pass

from benchmarks.harness import report  # noqa: E402

HERE = Path(__file__).resolve().parent


def families() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)])
                  if m.name not in ("harness", "__main__") and not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", nargs="*", help=f"families to run (default all): {families()}")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and few repeats: a smoke test, not a measurement")
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/")
    args = parser.parse_args(argv)
    names = args.family or families()
    unknown = [n for n in names if n not in families()]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {families()}")
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        rows = module.run(quick=args.quick)
        if not rows:  # e.g. the gpu family without a GPU: keep earlier results
            print(f"{name}: nothing measured on this machine; results/ left as they were\n")
            continue
        summary = module.summary(rows) if hasattr(module, "summary") else ""
        report(name, rows, summary, write=not (args.quick or args.no_write))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
