"""Selective Search: scratchvision's against OpenCV-contrib's, same images, same strategy.

Images: the built-in Shapes dataset (``scratchvision.data.shapes``: filled circles,
rectangles and triangles on a textured, noisy background, with exact ground-truth boxes),
at 128 and 256 pixels. For each implementation and image set: the median time to process
the whole set (reported per call = all images; throughput in images/s), the mean number
of boxes per image, and recall at IoU 0.5 and 0.7 (fraction of ground-truth boxes matched
by at least one proposal), all proposals counted.

Peer: ``cv2.ximgproc.segmentation.createSelectiveSearchSegmentation`` with
``switchToSelectiveSearchFast()`` (and ``switchToSelectiveSearchSingle()`` for the
'single' row), only present in opencv-contrib; the rows are skipped when ``cv2.ximgproc``
is missing (opencv-python-headless). Both sides use their default threading (Numba's
threads; OpenCV's pool); a second scratchvision row runs Numba on one thread, because
Selective Search calls many short parallel loops (about 16 per image for 'fast') whose
fork/join cost explodes on a busy machine with Numba's OpenMP layer and GOMP's default
active waiting: on a 2-core machine at load 5, one empty parallel loop cost 3.1 ms with 2
threads against 76 us with ``OMP_WAIT_POLICY=passive``, and the 'fast' row was 8x slower
than the 1-thread row. Run this family on an idle machine (or with
``OMP_WAIT_POLICY=passive``). Goal (issue 4): 'fast' within 1.5x OpenCV-contrib's time at equal
or better recall.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, measure, try_import

GOAL = 1.5


def _images(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (RGB uint8 image, (K, 4) float32 ground-truth boxes) pairs."""
    try:
        from scratchvision.data.shapes import Shapes
    except ImportError:                                     # pragma: no cover
        return _own_shapes(n, size)
    ds = Shapes("test", n, image_size=size, seed=0)
    return [(img, np.asarray(t["boxes"], np.float32)) for img, t in (ds[i] for i in range(n))]


def _own_shapes(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fallback: filled rectangles and circles on a noisy plain background."""
    import cv2
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = np.clip(rng.uniform(60, 200, 3) + rng.normal(0, 6, (size, size, 3)), 0, 255)
        img = img.astype(np.uint8)
        boxes = []
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(size // 12, size // 4))
            cx, cy = rng.integers(r, size - r, 2)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                cv2.circle(img, (int(cx), int(cy)), r, colour, -1)
            else:
                cv2.rectangle(img, (int(cx - r), int(cy - r)), (int(cx + r), int(cy + r)),
                              colour, -1)
            boxes.append([cx - r, cy - r, cx + r + 1, cy + r + 1])
        out.append((img, np.asarray(boxes, np.float32)))   # later shapes may cover earlier
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _quality(results: list[np.ndarray], data) -> str:
    """'boxes/img N, R@0.5 x, R@0.7 y' over a set of images."""
    best = []
    for boxes, (_, gt) in zip(results, data):
        if len(gt):
            iou = _iou(gt.astype(np.float64), np.asarray(boxes, np.float64).reshape(-1, 4))
            best.append(iou.max(axis=1) if iou.shape[1] else np.zeros(len(gt)))
    best = np.concatenate(best) if best else np.zeros(0)
    n_boxes = np.mean([len(b) for b in results])
    return (f"boxes/img {n_boxes:.0f}, R@0.5 {np.mean(best >= 0.5):.3f}, "
            f"R@0.7 {np.mean(best >= 0.7):.3f} ({len(best)} objects)")


def _opencv(cv2, mode: str):
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()

    def run(img: np.ndarray) -> np.ndarray:
        ss.setBaseImage(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if mode == "fast":
            ss.switchToSelectiveSearchFast()
        else:
            ss.switchToSingleStrategy()
        rects = ss.process().reshape(-1, 4).astype(np.float32)      # (x, y, w, h)
        rects[:, 2:] += rects[:, :2]
        return rects
    return run


def run(quick: bool) -> list[Row]:
    from scratchvision.proposals import selective_search

    cv2 = try_import("cv2")
    has_peer = cv2 is not None and hasattr(cv2, "ximgproc")
    cases = ([("fast", 128, 3)] if quick else
             [("fast", 128, 24), ("fast", 256, 12), ("single", 256, 12)])
    repeat = 2 if quick else 5
    rows: list[Row] = []
    for strategy, size, n in cases:
        data = _images(n, size)
        case = f"'{strategy}' {n} images {size}x{size}"
        impls = [("scratchvision", lambda img, s=strategy: selective_search(img, s, seed=0),
                  False),
                 ("scratchvision 1 thread",
                  lambda img, s=strategy: selective_search(img, s, seed=0, num_threads=1),
                  False)]
        if has_peer:
            impls.append(("opencv-contrib", _opencv(cv2, strategy), True))
        for name, fn, peer in impls:
            results = [fn(img) for img, _ in data]          # also the warm-up (compiles)
            seconds, spread = measure(lambda: [fn(img) for img, _ in data], warmup=0,
                                      repeat=repeat)
            rows.append(Row(case, name, seconds, peer, work=n, work_unit="images/s",
                            spread=spread, note=_quality(results, data)))
    return rows


def summary(rows: list[Row]) -> str:
    lines = []
    for case in dict.fromkeys(r.case for r in rows):
        ours = [r for r in rows if r.case == case and not r.peer]
        peer = [r for r in rows if r.case == case and r.peer and np.isfinite(r.seconds)]
        if ours and peer:
            for row in ours:
                ratio = row.seconds / peer[0].seconds
                met = "met" if ratio <= GOAL else "NOT met"
                lines.append(f"{case}: {row.impl} / OpenCV-contrib time = {ratio:.2f} "
                             f"(goal <= {GOAL}: {met}); {row.note}")
            lines.append(f"{case}: OpenCV-contrib {peer[0].note}")
    if not lines:
        return ("OpenCV-contrib peer skipped: cv2.ximgproc is missing (it comes with "
                "opencv-contrib-python); no ratio measured.")
    return "\n".join(lines)
