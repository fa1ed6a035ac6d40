"""Indexing kernels on detection shapes: gather, scatter_add, index_select, index_add,
masked_fill, and the stable top-k / sort, float32.

Cases (seed 0; indices uniform in range):

* gather of the (8000, 91) class scores of 8000 RoIs by their label, index (8000, 1), and
  by a full (8000, 91) index; the backward of the first (scatter_add of (8000, 1) into
  (8000, 91));
* scatter_add of 4.2M sources into a flattened (4, 256, 64, 64) map (1-D, the hard case
  for a deterministic parallel add) and of (1024, 4096) sources along dim 1;
* index_select of 2000 rows of (20000, 4) boxes, and its backward (index_add);
* masked_fill of (8000, 91) scores;
* topk 1000 of 120000 scores (RPN pre-NMS top-k) and a descending sort of 20000.

``numpy`` and ``cpu`` are the kernel versions of ``scratchvision.kernels.indexing``
(validation included), ``reference`` the textbook loops (small cases only), beside
PyTorch CPU (``torch.gather`` ...) in the same process. No goal yet: this family records
where the Numba kernels stand. ``--quick`` divides the sizes by about 10.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Row, ratios, timed_row, try_import


def _cases(rng, quick: bool):
    """(case name, work in elements, {impl: fn}, torch fn or None)."""
    from scratchvision.kernels import indexing as K
    torch = try_import("torch")
    s = 10 if quick else 1
    n_rois, n_cls = 8000 // s, 91
    scores = rng.random((n_rois, n_cls), dtype=np.float32)
    labels = rng.integers(0, n_cls, (n_rois, 1))
    full = rng.integers(0, n_cls, (n_rois, n_cls))
    g_label = rng.random((n_rois, 1), dtype=np.float32)
    n_map = 4 * 256 * 64 * 64 // s
    flat_idx = rng.integers(0, n_map, n_map)
    flat_src = rng.random(n_map, dtype=np.float32)
    zeros_map = np.zeros(n_map, np.float32)
    rows2, cols2 = 1024 // s, 4096
    idx2 = rng.integers(0, cols2, (rows2, cols2))
    src2 = rng.random((rows2, cols2), dtype=np.float32)
    zeros2 = np.zeros((rows2, cols2), np.float32)
    boxes = rng.random((20000 // s, 4), dtype=np.float32)
    pick = rng.integers(0, boxes.shape[0], 2000 // s)
    g_boxes = rng.random((pick.shape[0], 4), dtype=np.float32)
    mask = scores > 0.5
    top_scores = rng.random(120000 // s, dtype=np.float32)
    sort_scores = rng.random(20000 // s, dtype=np.float32)
    k = 1000 // s

    def versions(fn, reference=False):
        impls = ("reference", "numpy", "cpu") if reference else ("numpy", "cpu")
        return {impl: (lambda impl=impl: fn(impl)) for impl in impls}

    arrays = {"scores": scores, "labels": labels, "full": full, "g_label": g_label,
              "zeros_map": zeros_map, "flat_idx": flat_idx, "flat_src": flat_src,
              "zeros2": zeros2, "idx2": idx2, "src2": src2, "boxes": boxes, "pick": pick,
              "g_boxes": g_boxes, "mask": mask, "top_scores": top_scores,
              "sort_scores": sort_scores}
    tt = SimpleNamespace(**{name: torch.from_numpy(a) for name, a in arrays.items()}) \
        if torch is not None else None

    def peer(fn):
        return fn if torch is not None else None

    cases = [
        (f"gather ({n_rois}, {n_cls}) by label ({n_rois}, 1)", n_rois,
         versions(lambda impl: K.gather(scores, 1, labels, impl=impl)),
         peer(lambda: torch.gather(tt.scores, 1, tt.labels))),
        (f"gather ({n_rois}, {n_cls}) full index", full.size,
         versions(lambda impl: K.gather(scores, 1, full, impl=impl)),
         peer(lambda: torch.gather(tt.scores, 1, tt.full))),
        (f"gather backward: scatter_add ({n_rois}, 1) -> ({n_rois}, {n_cls})", n_rois,
         versions(lambda impl: K.scatter_add(np.zeros_like(scores), 1, labels, g_label,
                                             impl=impl)),
         peer(lambda: torch.zeros(n_rois, n_cls).scatter_add_(1, tt.labels, tt.g_label))),
        (f"scatter_add {n_map} into flat (4, 256, 64, 64)/{s}", n_map,
         versions(lambda impl: K.scatter_add(zeros_map, 0, flat_idx, flat_src, impl=impl)),
         peer(lambda: torch.scatter_add(tt.zeros_map, 0, tt.flat_idx, tt.flat_src))),
        (f"scatter_add ({rows2}, {cols2}) along dim 1", idx2.size,
         versions(lambda impl: K.scatter_add(zeros2, 1, idx2, src2, impl=impl)),
         peer(lambda: torch.scatter_add(tt.zeros2, 1, tt.idx2, tt.src2))),
        (f"index_select {pick.shape[0]} rows of ({boxes.shape[0]}, 4)", g_boxes.size,
         versions(lambda impl: K.index_select(boxes, 0, pick, impl=impl), reference=True),
         peer(lambda: torch.index_select(tt.boxes, 0, tt.pick))),
        (f"index_add {pick.shape[0]} rows into ({boxes.shape[0]}, 4)", g_boxes.size,
         versions(lambda impl: K.index_add(np.zeros_like(boxes), 0, pick, g_boxes, impl=impl),
                  reference=True),
         peer(lambda: torch.zeros(boxes.shape).index_add_(0, tt.pick, tt.g_boxes))),
        (f"masked_fill ({n_rois}, {n_cls})", scores.size,
         versions(lambda impl: K.masked_fill(scores, mask, 0.0, impl=impl)),
         peer(lambda: tt.scores.masked_fill(tt.mask, 0.0))),
        (f"topk {k} of {top_scores.shape[0]} scores", top_scores.size,
         {"numpy": lambda: K.topk(top_scores, k, 0, True)},
         peer(lambda: torch.topk(tt.top_scores, k))),
        (f"sort {sort_scores.shape[0]} scores descending", sort_scores.size,
         {"numpy": lambda: K.sort(sort_scores, 0, True)},
         peer(lambda: torch.sort(tt.sort_scores, descending=True, stable=True))),
    ]
    return cases


def run(quick: bool = False) -> list[Row]:
    rng = np.random.default_rng(0)
    timing = ({"warmup": 1, "repeat": 3} if quick
              else {"warmup": 2, "repeat": 11, "min_time": 0.3})
    rows: list[Row] = []
    for case, work, impls, peer in _cases(rng, quick):
        for impl, fn in impls.items():
            kw = {"warmup": 0, "repeat": 1} if impl == "reference" else timing
            rows.append(timed_row(case, impl, fn, work=work, work_unit="elem/s", **kw))
        if peer:
            rows.append(timed_row(case, "torch", peer, peer=True, work=work,
                                  work_unit="elem/s", **timing))
    rows += _gpu_rows(rng, quick, timing)
    return rows


def _gpu_rows(rng, quick, timing) -> list[Row]:
    """The same kernels on CuPy arrays (the ``numpy`` version runs on CuPy) vs torch CUDA."""
    import scratchvision as sv
    from scratchvision.kernels import indexing as K
    if not sv.gpu_available():
        return []
    import cupy as cp
    torch = try_import("torch")
    sync = cp.cuda.Device().synchronize
    n_map = 4 * 256 * 64 * 64 // (10 if quick else 1)
    idx = rng.integers(0, n_map, n_map)
    src = rng.random(n_map, dtype=np.float32)
    gi, gs, gz = cp.asarray(idx), cp.asarray(src), cp.zeros(n_map, cp.float32)
    case = f"scatter_add {n_map} into flat (4, 256, 64, 64) GPU"
    rows = [timed_row(case, "cupy", lambda: K.scatter_add(gz, 0, gi, gs), work=n_map,
                      work_unit="elem/s", sync=sync, **timing)]
    if torch is not None and torch.cuda.is_available():
        ti, ts = torch.from_numpy(idx).cuda(), torch.from_numpy(src).cuda()
        tz = torch.zeros(n_map, device="cuda")
        rows.append(timed_row(case, "torch-cuda", lambda: torch.scatter_add(tz, 0, ti, ts),
                              peer=True, work=n_map, work_unit="elem/s",
                              sync=torch.cuda.synchronize, **timing))
    return rows


def summary(rows: list[Row]) -> str:
    rat = ratios(rows)
    cpu = [rat[i] for i, r in enumerate(rows) if r.impl == "cpu" and rat[i] is not None]
    if not cpu:
        return "No PyTorch in this process: no ratios."
    geo = math.exp(sum(math.log(r) for r in cpu) / len(cpu))
    return (f"cpu (Numba) time / torch time, geometric mean over {len(cpu)} cases: "
            f"{geo:.2f}x (no goal set yet).")
