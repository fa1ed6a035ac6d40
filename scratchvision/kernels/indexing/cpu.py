"""Gather, scatter, index-select and masked-fill, Numba CPU version (the same results as
``reference.py``, bit for bit: no version reorders a sum).

Same canonical 3-D arrays as the reference: ``x (O, N, I)``, ``index (O, J, I)`` (gather,
scatter) or ``(J,)`` (index_select, index_add); see ``reference.py`` for which element
feeds which. What is different, and why it is faster than NumPy's fancy indexing:

* **One compiled pass, no index arrays built.** ``take_along_axis`` and ``add.at`` first
  build full-size index arrays (or a flat target index) and then walk them; here the
  loops compute the flat offset of ``x[o, index[o, j, i], i]``, which is
  ``(o * N + index) * I + i``, directly: one read of ``index``, one of the source, one
  write of the output. The kernels see the arrays flattened (1-D) and do that arithmetic
  themselves, with a separate loop for ``I == 1`` (the index runs along the last dim, the
  common case): a short inner loop over ``i`` made the compiled code 2-3x slower there.
* **Copies and gathers are parallel over output rows.** ``gather`` and ``index_select``
  write each output element once, so ``prange`` over chunks of the rows ``r -> (o, j)``
  (a few chunks per thread) is race-free.
* **Adds are parallel and still deterministic.** In ``scatter_add``/``index_add`` several
  sources may add into one output element; threads must never share one, and each
  element must receive its sources in increasing ``j`` (the reference's order), so that
  every run and every thread count gives the same bits. Two ways to split the work:

  - *tasks* ``(o, column block)``: output element ``(o, n, i)`` is written only by
    sources with the same ``o`` and ``i`` (the index moves along ``N`` only), so a task
    that owns ``y[o, :, i0:i1]`` and walks ``j`` in increasing order owns all of them.
    Used when ``O`` times the column blocks gives every thread a few tasks.
  - *buckets* (scatter only; ``O * I`` too small to split, e.g. a 1-D scatter into a
    flattened feature map): the output range ``[0, N)`` is cut into buckets of
    ``2**shift`` elements (bucket of ``n`` = ``n >> shift``, at most 32K elements so a
    bucket's outputs stay in L2), and a stable counting sort copies every source's
    (target, value) into its bucket, in increasing ``j`` (count per block of ``j`` and
    bucket in parallel, prefix-sum bucket-major, copy in parallel). Then one thread
    applies each bucket: buckets own disjoint outputs, inside a bucket the sources come
    in increasing ``j``, and the reads are sequential. The partition moves every source
    twice, which costs more than it saves on 2 threads (measured on the benchmark's
    4M-element scatter: the serial loop ~30-40 ms, partition ~40 ms + apply ~8 ms), so
    it runs from ``BUCKET_MIN_THREADS`` threads on; below that those lines run serially.

  Below ``PARALLEL_MIN`` elements of work one thread runs the same loops (a parallel
  region costs more than it saves).
* ``scatter`` (no add) uses the same splits, so the last ``j`` wins everywhere.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

PARALLEL_MIN = 1 << 15     # elements of work below which one thread beats the pool
TASKS_PER_THREAD = 4       # independent tasks per thread, for load balance
BUCKET_MIN_THREADS = 4     # threads from which the bucket split of a scatter pays
BUCKET_SHIFT = (10, 15)    # bucket sizes 2**10 .. 2**15 output elements


def _threads() -> int:
    return numba.get_num_threads()


def _chunk(rows: int) -> int:
    """Rows per parallel task: about TASKS_PER_THREAD tasks per thread."""
    return max(-(-rows // (_threads() * TASKS_PER_THREAD)), 1)


def _serial(work: int) -> bool:
    return work < PARALLEL_MIN or _threads() == 1


# ---------------------------------------------------------------- gather, index_select
@njit(cache=True)
def _gather_rows(x, index, y, n, n_index, n_inner, r0, r1):
    """Output rows r0 .. r1-1 of the flat arrays; row r is (o, j) with r = o * J + j."""
    o = r0 // n_index
    j = r0 - o * n_index
    base = o * n * n_inner                      # flat offset of x[o, 0, 0]
    for r in range(r0, r1):
        if n_inner == 1:
            y[r] = x[base + index[r]]           # y[o, j] = x[o, index[o, j]]
        else:
            row = r * n_inner                   # y[o, j, 0] and index[o, j, 0]
            for i in range(n_inner):
                y[row + i] = x[base + index[row + i] * n_inner + i]
        j += 1
        if j == n_index:                        # next o
            j = 0
            base += n * n_inner


@njit(parallel=True, cache=True)
def _gather_parallel(x, index, y, n, n_index, n_inner, rows, chunk):
    for c in prange((rows + chunk - 1) // chunk):     # each output written once: no races
        _gather_rows(x, index, y, n, n_index, n_inner, c * chunk, min(rows, (c + 1) * chunk))


def gather(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x (O, N, I), index (O, J, I) int64 -> y (O, J, I)."""
    n_outer, n_index, n_inner = index.shape
    y = np.empty(index.shape, x.dtype)
    args = (x.reshape(-1), index.reshape(-1), y.reshape(-1), x.shape[1], n_index, n_inner)
    rows = n_outer * n_index
    if _serial(index.size):
        _gather_rows(*args, 0, rows)
    else:
        _gather_parallel(*args, rows, _chunk(rows))
    return y


@njit(cache=True)
def _select_rows(x, index, y, n, n_index, n_inner, r0, r1):
    """Output rows r0 .. r1-1: y[o, j, :] = x[o, index[j], :] with r = o * J + j."""
    o = r0 // n_index
    j = r0 - o * n_index
    base = o * n * n_inner
    for r in range(r0, r1):
        if n_inner == 1:
            y[r] = x[base + index[j]]
        else:
            src = base + index[j] * n_inner     # x[o, index[j], 0]: a contiguous row
            dst = r * n_inner
            for i in range(n_inner):
                y[dst + i] = x[src + i]
        j += 1
        if j == n_index:
            j = 0
            base += n * n_inner


@njit(parallel=True, cache=True)
def _select_parallel(x, index, y, n, n_index, n_inner, rows, chunk):
    for c in prange((rows + chunk - 1) // chunk):
        _select_rows(x, index, y, n, n_index, n_inner, c * chunk, min(rows, (c + 1) * chunk))


def index_select(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x (O, N, I), index (J,) int64 -> y (O, J, I)."""
    n_outer, n, n_inner = x.shape
    y = np.empty((n_outer, index.shape[0], n_inner), x.dtype)
    args = (x.reshape(-1), index, y.reshape(-1), n, index.shape[0], n_inner)
    rows = n_outer * index.shape[0]
    if _serial(y.size):
        _select_rows(*args, 0, rows)
    else:
        _select_parallel(*args, rows, _chunk(rows))
    return y


# ---------------------------------------------------------------- deterministic splits
def _plan(n_outer: int, n_inner: int, work: int) -> tuple[str, int]:
    """How to split an add/scatter: ('serial', 1), ('tasks', column blocks) or
    ('buckets', 0); see the module docstring."""
    if _serial(work):
        return "serial", 1
    want = _threads() * TASKS_PER_THREAD
    blocks = min(n_inner, -(-want // max(n_outer, 1)))
    if n_outer * blocks >= want:
        return "tasks", blocks
    return ("buckets", 0) if _threads() >= BUCKET_MIN_THREADS else ("serial", 1)


@njit(cache=True)
def _scatter_tasks(y, index, src, n, n_index, n_inner, n_blocks, t0, t1, accumulate):
    """Tasks t0 .. t1-1 of the flat arrays; task t is (o, b) and owns y[o, :, i0:i1].

    Argument groups: the flat arrays (``y`` (O, n, I), ``index`` and ``src`` (O, n_index,
    I), raveled), their sizes (``n``, ``n_index``, ``n_inner`` = I), the split
    (``n_blocks`` column blocks per outer row; tasks ``t0 .. t1-1``) and the operation
    (``accumulate``: add, else overwrite).
    """
    width = (n_inner + n_blocks - 1) // n_blocks
    for t in range(t0, t1):
        o = t // n_blocks
        base = o * n * n_inner                  # y[o, 0, 0]
        first = o * n_index * n_inner           # index[o, 0, 0] and src[o, 0, 0]
        if n_inner == 1:
            for s in range(first, first + n_index):   # increasing j: the reference's order
                if accumulate:
                    y[base + index[s]] += src[s]
                else:
                    y[base + index[s]] = src[s]
        else:
            i0 = (t - o * n_blocks) * width
            i1 = min(n_inner, i0 + width)
            for j in range(n_index):
                row = first + j * n_inner
                for i in range(i0, i1):
                    k = base + index[row + i] * n_inner + i   # y[o, index[o, j, i], i]
                    if accumulate:
                        y[k] += src[row + i]
                    else:
                        y[k] = src[row + i]


@njit(parallel=True, cache=True)
def _scatter_parallel(y, index, src, n, n_index, n_inner, n_tasks, n_blocks, accumulate):
    for t in prange(n_tasks):                   # tasks own disjoint outputs: no races
        _scatter_tasks(y, index, src, n, n_index, n_inner, n_blocks, t, t + 1, accumulate)


@njit(parallel=True, cache=True)
def _partition(targets, values, shift, n_buckets, n_blocks):
    """Stable counting sort of the sources (targets[j], values[j]) by bucket
    ``targets[j] >> shift``: returns the targets and values bucket by bucket, increasing
    j inside each, and ``start`` (buckets + 1,), where each bucket begins."""
    n = targets.shape[0]
    size = (n + n_blocks - 1) // n_blocks
    counts = np.zeros((n_blocks, n_buckets), np.int64)
    for b in prange(n_blocks):                  # 1. count: block b of j's, per bucket
        for j in range(b * size, min(n, (b + 1) * size)):
            counts[b, targets[j] >> shift] += 1
    start = np.empty(n_buckets + 1, np.int64)
    total = 0
    for k in range(n_buckets):                  # 2. offsets: bucket-major, then block
        start[k] = total                        #    order, so j keeps increasing inside
        for b in range(n_blocks):
            c = counts[b, k]
            counts[b, k] = total
            total += c
    start[n_buckets] = total
    sorted_targets = np.empty(n, np.int64)
    sorted_values = np.empty(n, values.dtype)
    for b in prange(n_blocks):                  # 3. copy: block b fills its own slots
        for j in range(b * size, min(n, (b + 1) * size)):
            k = targets[j] >> shift
            p = counts[b, k]
            sorted_targets[p] = targets[j]
            sorted_values[p] = values[j]
            counts[b, k] = p + 1
    return sorted_targets, sorted_values, start


@njit(parallel=True, cache=True)
def _apply_buckets(y, targets, values, start, accumulate):
    for k in prange(start.shape[0] - 1):        # bucket k owns its slice of y
        for t in range(start[k], start[k + 1]):  # increasing j, sequential reads
            if accumulate:
                y[targets[t]] += values[t]
            else:
                y[targets[t]] = values[t]


def _bucket_shift(n: int) -> int:
    lo, hi = BUCKET_SHIFT
    want = _threads() * TASKS_PER_THREAD
    return int(min(max((max(n // want, 1)).bit_length(), lo), hi))


def _scatter(x, index, src, accumulate: bool) -> np.ndarray:
    y = x.copy()
    n_outer, n_index, n_inner = index.shape
    n = x.shape[1]
    how, blocks = _plan(n_outer, n_inner, index.size)
    flat = (y.reshape(-1), index.reshape(-1), src.reshape(-1), n, n_index, n_inner)
    if how == "serial":
        _scatter_tasks(*flat, 1, 0, n_outer, accumulate)
    elif how == "tasks":
        _scatter_parallel(*flat, n_outer * blocks, blocks, accumulate)
    else:                                       # a few (o, i) lines, each split by buckets
        shift, n_blocks = _bucket_shift(n), _threads() * TASKS_PER_THREAD
        n_buckets = ((n - 1) >> shift) + 1
        for o in range(n_outer):
            for i in range(n_inner):
                targets, values, start = _partition(index[o, :, i], src[o, :, i], shift,
                                                    n_buckets, n_blocks)
                _apply_buckets(y[o, :, i], targets, values, start, accumulate)
    return y


def scatter_add(x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """x (O, N, I), index and src (O, J, I) -> y = x + src added at index, in j order."""
    return _scatter(x, index, src, True)


def scatter(x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """x (O, N, I), index and src (O, J, I) -> y = x with src written at index (last j wins)."""
    return _scatter(x, index, src, False)


# ---------------------------------------------------------------- index_add
@njit(cache=True)
def _index_add_tasks(y, index, src, n, n_index, n_inner, n_blocks, t0, t1):
    """Tasks t0 .. t1-1; task t is (o, b) and owns y[o, :, i0:i1]."""
    width = (n_inner + n_blocks - 1) // n_blocks
    for t in range(t0, t1):
        o = t // n_blocks
        base = o * n * n_inner
        first = o * n_index * n_inner
        if n_inner == 1:
            for j in range(n_index):            # increasing j: the reference's order
                y[base + index[j]] += src[first + j]
        else:
            i0 = (t - o * n_blocks) * width
            i1 = min(n_inner, i0 + width)
            for j in range(n_index):
                dst = base + index[j] * n_inner     # y[o, index[j], 0]
                row = first + j * n_inner           # src[o, j, 0]
                for i in range(i0, i1):
                    y[dst + i] += src[row + i]


@njit(parallel=True, cache=True)
def _index_add_parallel(y, index, src, n, n_index, n_inner, n_tasks, n_blocks):
    for t in prange(n_tasks):
        _index_add_tasks(y, index, src, n, n_index, n_inner, n_blocks, t, t + 1)


def index_add(x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """x (O, N, I), index (J,), src (O, J, I) -> y = x with src[:, j] added to y[:, index[j]]."""
    y = x.copy()
    n_outer, n, n_inner = x.shape
    how, blocks = _plan(n_outer, n_inner, src.size)
    flat = (y.reshape(-1), index, src.reshape(-1), n, index.shape[0], n_inner)
    if how == "tasks":
        _index_add_parallel(*flat, n_outer * blocks, blocks)
    else:                                       # too few lines to split: one thread
        _index_add_tasks(*flat, 1, 0, n_outer)
    return y


# ---------------------------------------------------------------- masked_fill
@njit(cache=True)
def _fill_range(x, mask, value, y, t0, t1):
    for t in range(t0, t1):
        y[t] = value if mask[t] else x[t]


@njit(parallel=True, cache=True)
def _fill_parallel(x, mask, value, y, chunk):
    n = x.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _fill_range(x, mask, value, y, c * chunk, min(n, (c + 1) * chunk))


def masked_fill(x: np.ndarray, mask: np.ndarray, value) -> np.ndarray:
    """x (T,), mask (T,) bool, value a scalar of x's dtype -> y (T,)."""
    y = np.empty_like(x)
    value = x.dtype.type(value)
    if _serial(x.shape[0]):
        _fill_range(x, mask, value, y, 0, x.shape[0])
    else:
        _fill_parallel(x, mask, value, y, _chunk(x.shape[0]))
    return y
