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

Every command takes ``--debug`` (before or after the command name): errors then end with
Python's traceback instead of one line. ``--quiet`` hides progress bars and per-epoch
lines, never the final result lines; a training command ends by printing where its files
are.

Errors and exit status
----------------------
0    success
1    ``gradcheck``: some op failed its check; any command: an internal error (a bug in
     scratchvision, not in what was asked): ``scratchvision <cmd>: internal error: ...``
     and "run with --debug for the traceback"
2    the request cannot be done as asked: argparse's usage errors (impossible values such
     as ``--epochs 0`` are refused while parsing, by the types below) and the errors a
     command raises about its input - ``ValueError``, ``TypeError``, ``OSError`` (a missing
     file, an unwritable folder), ``serialization.CheckpointError``,
     ``validation.LimitError``, a non-finite loss (``FloatingPointError``), no GPU for
     ``--device cuda`` - printed as one line ``scratchvision <cmd>: error: <message>``
130  interrupted (Ctrl-C)

Like argparse's own usage errors, an error leaves ``main`` as ``SystemExit`` (with
``code`` the exit status and the printed line as its text), so ``python -m scratchvision``
exits with that status and in-process callers (the tests) can catch it. Under
``mpiexec`` an error on one rank aborts the whole job (``distributed.abort``) instead of
leaving the other ranks waiting.
"""
from __future__ import annotations

import argparse
import copy
import fnmatch
import sys
import time

from scratchvision import validation

# what a user can get wrong (bad values, files, settings): one line, exit status 2
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)
EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 1, 2, 130


# ------------------------------------------------------------------- argument types
def _argument_type(parse, check, name: str):
    """An argparse ``type=``: ``parse`` the text, then ``check`` the value (a
    ``scratchvision.validation`` function); either failure is argparse's error."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        try:
            return check(value)
        except (TypeError, ValueError) as e:     # 'value must be >= 1, got 0'
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = name.replace(" ", "_")
    return convert


positive_int = _argument_type(
    int, lambda v: validation.check_int(v, "value", minimum=1), "an int >= 1")
nonnegative_int = _argument_type(
    int, lambda v: validation.check_int(v, "value", minimum=0), "an int >= 0")
positive_float = _argument_type(
    float, lambda v: validation.check_number(v, "value", minimum=0.0, strict_minimum=True),
    "a number > 0")
nonnegative_float = _argument_type(
    float, lambda v: validation.check_number(v, "value", minimum=0.0), "a number >= 0")
probability = _argument_type(
    float, lambda v: validation.check_probability(v, "value"), "a number in [0, 1]")


def device(text: str) -> str:
    """``--device``: 'cpu', 'cuda' or 'cuda:N' (whether a GPU is there is checked by
    ``main`` before the command runs, so that message is one line)."""
    from scratchvision.backend import check_device  # noqa: PLC0415
    try:
        check_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default (argparse's ArgumentDefaultsHelpFormatter),
    but not for flags (``store_true``) and options without one."""

    def _format_action(self, action):
        if not action.help and self._has_default(action):   # argparse skips help-less ones
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action):
        return super()._get_help_string(action) if self._has_default(action) else action.help

    @staticmethod
    def _has_default(action) -> bool:
        default = action.default          # by identity: a default of 0 is shown
        return not (default is None or default is False or default is argparse.SUPPRESS
                    or action.nargs == 0)


def add_parser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command's parser with the shared formatter and ``--debug``."""
    p = sub.add_parser(name, formatter_class=HelpFormatter, **kwargs)
    _add_debug(p, default=argparse.SUPPRESS)   # the top-level value stays unless given
    return p


def _add_debug(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("--debug", action="store_true", default=default,
                   help="show Python's traceback on errors")


# ------------------------------------------------------------------------ commands
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
        if not names:     # returned, not raised: the gradcheck exit status of old
            print(f"scratchvision gradcheck: error: no registered op matches {args.ops}; "
                  f"registered: {', '.join(cases)}", file=sys.stderr)
            return EXIT_USER
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
    _add_debug(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True)
    gc = add_parser(sub, "gradcheck", help="check every op's backward in float64")
    gc.add_argument("ops", nargs="*", help="op names or glob patterns (default: all)")
    gc.add_argument("--seed", type=nonnegative_int, default=0)
    gc.add_argument("--device", type=device, default=None,
                    help="'cuda' to check the GPU versions (default: the CPU's)")
    gc.set_defaults(func=_gradcheck)
    _add_training_commands(sub)
    return parser


def _add_training_commands(sub) -> None:
    """Register train-seg, eval-seg, demo, train-det, eval-det and detect."""
    from scratchvision import train_det, train_seg  # noqa: PLC0415
    train_seg.add_commands(sub)
    train_det.add_commands(sub)


def _check_gpu(args: argparse.Namespace) -> None:
    """``--device cuda`` on a machine without a usable GPU: one clear error."""
    requested = getattr(args, "device", None)
    if requested is None or not str(requested).startswith("cuda"):
        return
    from scratchvision import backend  # noqa: PLC0415
    if not backend.gpu_available():
        why = " (the Numba CUDA simulator is on)" if backend.cuda_simulator_enabled() else ""
        raise ValueError(f"--device {requested}: this machine has no usable GPU{why} (CuPy "
                         "with a CUDA device is needed: the 'gpu' extra); use --device cpu")


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status, or ``SystemExit`` for an error (module docstring)."""
    args = build_parser().parse_args(argv)
    command = f"scratchvision {args.command}"
    if args.debug:                       # errors as they are, with their traceback
        _check_gpu(args)
        return args.func(args)
    try:
        _check_gpu(args)
        return args.func(args)
    except KeyboardInterrupt:
        _fail(f"{command}: interrupted", EXIT_INTERRUPTED, None)
    except SystemExit as e:             # argparse in a command, or a plain sys.exit
        if e.code is None or isinstance(e.code, int):
            raise
        _fail(f"{command}: error: {e.code}", EXIT_USER, e)
    except USER_ERRORS as e:
        _fail(f"{command}: error: {e}", EXIT_USER, e)
    except Exception as e:  # a bug: say so, and how to see where
        _fail(f"{command}: internal error: {type(e).__name__}: {e} (run with --debug for "
              "the traceback)", EXIT_INTERNAL, e)
    return EXIT_INTERNAL      # not reached: _fail raises


def _fail(line: str, code: int, cause: BaseException | None):
    """Print ``line`` to stderr and leave with ``code`` (every rank, under mpiexec)."""
    print(line, file=sys.stderr, flush=True)
    from scratchvision import distributed  # noqa: PLC0415
    if distributed.is_active():
        distributed.abort(line, code)
    error = SystemExit(line)
    error.code = code
    raise error from cause


if __name__ == "__main__":
    sys.exit(main())
