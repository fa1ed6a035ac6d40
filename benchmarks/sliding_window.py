"""Sliding-window detection: every window cropped and classified on its own (naive) against
one convolutional pass per pyramid level (OverFeat's convolutionalised classifier).

Model: ``SlidingWindowDetector`` at the 'small' preset (30-pixel windows, stride 4, a
7-level pyramid from 1.41x down to 0.18x), random weights (seed 0), eval mode, float32.
Images: one 128x128 and one 256x256 image of normal noise (the work does not depend on
the pixels). Both implementations score exactly the same windows and give the same
results (``tests/nets/test_sliding_window_detector.py``); the score threshold is set to 1
so that no window survives and NMS costs nothing: the times are the pyramid plus the
scoring of every window. ``naive`` is ``predict_naive`` (crops of every window of every
level, classified 512 at a time, each crop's convolutions recomputed), marked as the peer
so that the ratio column reads "time / naive time"; ``convolutional`` is ``predict``.
Throughput is windows scored per second. The windows of a level overlap by
(30 - 4) / 30 in each direction, so the naive path repeats the trunk's work about
(30 / 4)^2 = 56 times at the first layer; the convolutional pass shares it, and its
speed-up is bounded by the fully connected part (fc6 as a 5x5 conv), which costs the same
per window either way. ``--quick`` runs the 128-pixel image only, with one repeat.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, timed_row


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    from scratchvision.nets import build_detector

    sv.manual_seed(0)
    model = build_detector("sliding_window", 4, "small", score_thresh=1.0).eval()
    rng = np.random.default_rng(0)
    sizes = (128,) if quick else (128, 256)
    timing = dict(warmup=1, repeat=1) if quick else dict(warmup=1, repeat=5)
    naive_timing = dict(warmup=0, repeat=1) if quick else dict(warmup=1, repeat=3)
    rows: list[Row] = []
    for size in sizes:
        image = rng.standard_normal((1, 3, size, size)).astype(np.float32)
        levels = model.pyramid(size, size)
        windows = sum(len(model.cell_boxes((size, size), lv)) for lv in levels)
        case = f"{size}x{size}, {len(levels)} levels, {windows} windows"
        rows.append(timed_row(case, "naive (crop + classify)",
                              lambda image=image: model.predict_naive(image), peer=True,
                              work=windows, work_unit="windows/s", **naive_timing))
        rows.append(timed_row(case, "convolutional", lambda image=image: model.predict(image),
                              work=windows, work_unit="windows/s", **timing))
    return rows


def summary(rows: list[Row]) -> str:
    lines = []
    for naive, conv in zip(rows[::2], rows[1::2]):
        lines.append(f"- {conv.case}: the convolutional pass is "
                     f"{naive.seconds / conv.seconds:.1f}x faster than cropping every window "
                     f"({conv.seconds * 1e3:.1f} ms against {naive.seconds * 1e3:.0f} ms)")
    return "\n".join(lines)
