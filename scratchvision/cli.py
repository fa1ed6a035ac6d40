"""Command line: ``python -m scratchvision <command>`` (or ``scratchvision <command>``).

Commands
--------
gradcheck [op ...]   check every registered op's backward against float64 central
                     differences and print a table (exit status 1 if any fails)
demo                 train a small segmenter, then a detector, on the built-in Shapes
                     data (the README's main job), print val mIoU and box mAP, write
                     their pictures side by side
train-seg / eval-seg train or evaluate a segmenter (see ``--help`` of each)
train-det / eval-det train or evaluate a detector: sliding_window, rcnn, fast_rcnn,
                     faster_rcnn, mask_rcnn, yolo_v1, ssd
detect               draw a detector's boxes on images and write COCO results JSON;
                     ``--model mtcnn --image PATH``: faces and their five landmarks
                     (MTCNN with facenet-pytorch's weights) and a JSON of them

``mpiexec -n N python -m scratchvision train-seg|train-det ...`` trains data-parallel on
N ranks with the same flags (``scratchvision/distributed``; ``--sync-bn``).
"""
from __future__ import annotations

import argparse
import fnmatch
import sys
import time


def _gradcheck(args: argparse.Namespace) -> int:
    import scratchvision  # noqa: F401,PLC0415  (importing registers every op)
    # the detectors' losses register their cases where they are defined
    import scratchvision.nets.detection.masks  # noqa: F401,PLC0415
    import scratchvision.nets.faster_rcnn  # noqa: F401,PLC0415
    import scratchvision.nets.ssd  # noqa: F401,PLC0415
    import scratchvision.nets.yolo_v1  # noqa: F401,PLC0415
    from scratchvision.autograd.gradcheck import registered_gradchecks, run_case  # noqa: PLC0415
    cases = registered_gradchecks()
    names = list(cases)
    if args.ops:
        names = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in args.ops)]
        if not names:
            print(f"no registered op matches {args.ops}; registered: {', '.join(cases)}",
                  file=sys.stderr)
            return 2
    width = max(len(n) for n in names)
    print(f"{'op':<{width}}  {'elements':>8}  {'max abs err':>11}  {'max rel err':>11}  "
          f"{'time':>7}  result")
    failed = []
    for name in names:
        t0 = time.perf_counter()
        try:
            r = run_case(cases[name], seed=args.seed, device=args.device)
            status = "pass" if r.ok else "FAIL"
            row = (f"{name:<{width}}  {r.checked:>8}  {r.max_abs_err:>11.2e}  "
                   f"{r.max_rel_err:>11.2e}  {time.perf_counter() - t0:>6.2f}s  {status}")
            if not r.ok:
                failed.append(name)
                row += f"  ({r.worst})"
        except Exception as e:  # an op that raises is a failure, reported, not a crash
            failed.append(name)
            row = f"{name:<{width}}  {'':>8}  {'':>11}  {'':>11}  {'':>7}  ERROR {e!r}"
        print(row, flush=True)
    print(f"\n{len(names) - len(failed)} passed, {len(failed)} failed"
          + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchvision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gc = sub.add_parser("gradcheck", help="check every op's backward in float64")
    gc.add_argument("ops", nargs="*", help="op names or glob patterns (default: all)")
    gc.add_argument("--seed", type=int, default=0)
    gc.add_argument("--device", default=None, help="'cuda' to check the GPU versions")
    gc.set_defaults(func=_gradcheck)
    _add_training_commands(sub)
    return parser


def _add_training_commands(sub) -> None:
    """Register train-seg, eval-seg, demo, train-det, eval-det and detect."""
    from scratchvision import train_det, train_seg  # noqa: PLC0415
    train_seg.add_commands(sub)
    train_det.add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
