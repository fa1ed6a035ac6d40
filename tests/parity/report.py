"""Run the parity tables without pytest and print what differs, grouped by cause.

    python -m tests.parity.report              # summary of both tables
    python -m tests.parity.report -v           # also the first differing value of each idiom
    python -m tests.parity.report -k topk -t   # only idioms whose name contains 'topk',
                                               # with the scratchvision traceback

An idiom passes when scratchvision gives the same values, shapes, dtypes, types and
gradients as torch (see ``test_torch_idioms``). A failure is grouped by its cause: the
exception scratchvision raised (class and message), or the kind of mismatch (value,
dtype, shape, type, requires_grad, grad-*). A failure on the torch side is a bug in the
idiom itself and is reported as HARNESS.
"""
from __future__ import annotations

import argparse
import re
import sys
import traceback
import warnings
from collections import defaultdict

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("tests.parity.report needs PyTorch (pip install torch): it compares against it")

from tests.parity import test_torch_idioms as T


def _first_line(e: BaseException, width: int = 110) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    msg = re.sub(r"0x[0-9a-f]+", "0x...", msg)
    return (msg[:width] + "...") if len(msg) > width else msg


def _run_idiom(fn, want_tb: bool):
    """(status, group, detail, traceback)."""
    try:
        expected = fn(*T.TORCH)
    except Exception as e:  # noqa: BLE001
        return "harness", f"HARNESS (torch side) {type(e).__name__}", _first_line(e), \
            traceback.format_exc() if want_tb else ""
    try:
        got = fn(*T.SV)
    except Exception as e:  # noqa: BLE001
        return "fail", f"{type(e).__name__}: {_first_line(e)}", "", \
            traceback.format_exc() if want_tb else ""
    try:
        T.compare(expected, got)
    except T.Mismatch as e:
        return "fail", f"mismatch: {e.kind}", e.message, ""
    except Exception as e:  # noqa: BLE001
        return "harness", f"HARNESS (compare) {type(e).__name__}", _first_line(e), \
            traceback.format_exc() if want_tb else ""
    return "pass", "", "", ""


def _run_raises(fn, want_tb: bool):
    try:
        t_cls, s_cls = T.check_raises(fn)
    except T.Mismatch as e:
        group = "does not raise" if e.kind == "no-raise" else f"API gap: {_first_line(e)}"
        group = group.replace("api-gap: ", "")
        tb = traceback.format_exc() if want_tb and e.kind == "api-gap" else ""
        return "fail", group, e.message, tb
    except AssertionError as e:
        return "harness", "HARNESS (torch does not raise)", str(e), ""
    return "pass", f"torch {t_cls.__name__} -> sv {s_cls.__name__}", "", ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only idioms whose name contains this")
    ap.add_argument("-v", action="store_true", help="show the mismatch detail per idiom")
    ap.add_argument("-t", action="store_true", help="show scratchvision tracebacks")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    idioms = [f for f in T.IDIOMS if args.k in f.__name__]
    raises = [f for f in T.RAISES if args.k in f.__name__]
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    harness: list[tuple[str, str, str]] = []
    tracebacks: list[tuple[str, str]] = []
    n_pass = 0
    for fn in idioms:
        status, group, detail, tb = _run_idiom(fn, args.t)
        name = T._idiom_id(fn)
        if status == "pass":
            n_pass += 1
        elif status == "harness":
            harness.append((name, group, detail))
        else:
            groups[group].append((name, detail))
        if tb:
            tracebacks.append((name, tb))

    r_pass: dict[str, list[str]] = defaultdict(list)
    r_fail: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for fn in raises:
        status, group, detail, tb = _run_raises(fn, args.t)
        name = T._idiom_id(fn)
        if status == "pass":
            r_pass[group].append(name)
        elif status == "harness":
            harness.append((name, group, detail))
        else:
            r_fail[group].append((name, detail))
        if tb:
            tracebacks.append((name, tb))

    n_fail = sum(len(v) for v in groups.values())
    print(f"PARITY: {len(idioms)} idioms, {n_pass} pass, {n_fail} fail"
          + (f", {len(harness)} harness errors" if harness else ""))
    kinds: dict[str, int] = defaultdict(int)
    for g, items in groups.items():
        kinds[g.split(":")[0] if not g.startswith("mismatch") else g] += len(items)
    print("  by class: " + ", ".join(f"{k} {v}" for k, v in
                                      sorted(kinds.items(), key=lambda kv: -kv[1])))
    print()
    for group, items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"[{len(items)}] {group}")
        if args.v or group.startswith("mismatch"):
            for name, detail in items:
                print(f"      {name}" + (f": {detail}" if detail else ""))
        else:
            print("      " + ", ".join(name for name, _ in items))
    n_rfail = sum(len(v) for v in r_fail.values())
    print()
    print(f"MUST-RAISE: {len(raises)} idioms, {sum(len(v) for v in r_pass.values())} raise "
          f"on both sides, {n_rfail} fail")
    for group, items in sorted(r_fail.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"[{len(items)}] {group}")
        print("      " + ", ".join(name for name, _ in items))
    print("  raising on both (torch class -> sv class):")
    for group, names in sorted(r_pass.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"    [{len(names)}] {group}: {', '.join(names)}")
    if harness:
        print()
        print(f"HARNESS ERRORS ({len(harness)}): bugs in the idioms, not in scratchvision")
        for name, group, detail in harness:
            print(f"  {name}: {group}: {detail}")
    for name, tb in tracebacks:
        print(f"\n--- {name}\n{tb}")
    return 0 if not (n_fail or n_rfail or harness) else 1


if __name__ == "__main__":
    sys.exit(main())
