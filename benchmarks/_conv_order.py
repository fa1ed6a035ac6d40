"""``python -m benchmarks._conv_order FIRST``: the conv benchmark's import-order rows.

Run by ``benchmarks/conv.py`` in a fresh process per order, with no tuning variables in the
environment: ``FIRST`` is ``numpy`` (NumPy imported before scratchvision, torch after it:
what nearly every script does) or ``torch`` (torch first: what every script that compares
with PyTorch does). Prints one JSON list of rows: the default algorithm's forward and
forward + backward on the main shapes, the depthwise and the transposed one, and
torch's, timed in this process.
"""
from __future__ import annotations

import json
import sys

FIRST = sys.argv[1] if len(sys.argv) > 1 else "numpy"
if FIRST == "numpy":
    import numpy  # noqa: F401
elif FIRST == "torch":
    import torch  # noqa: F401
else:
    raise SystemExit(f"usage: python -m benchmarks._conv_order numpy|torch, got {FIRST!r}")

from benchmarks import conv  # noqa: E402  (imports scratchvision)
from benchmarks.harness import try_import  # noqa: E402

torch = try_import("torch")      # after scratchvision in the numpy-first order
quick = "--quick" in sys.argv
rows = []
for case in (conv.QUICK_MAIN if quick else conv.MAIN) + [
        conv.QUICK_DEPTHWISE if quick else conv.DEPTHWISE]:
    rows += conv._conv_rows(case, quick, torch, impls=[])
rows += conv._transposed_rows(conv.QUICK_TRANSPOSED if quick else conv.TRANSPOSED, quick,
                              torch, impls=[])
print(json.dumps([{"case": f"[{FIRST} first] {r.case}", "impl": r.impl, "seconds": r.seconds,
                   "peer": r.peer, "work": r.work, "work_unit": r.work_unit,
                   "spread": r.spread} for r in rows]))
