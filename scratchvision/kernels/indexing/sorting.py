"""Sorting and top-k on arrays (NumPy or CuPy): one total order, the same on every device.

No Numba here: NumPy's and CuPy's sorts are compiled already. What this module adds is a
single, documented order:

* **Stable in both directions.** Equal elements keep their index order, ascending and
  descending alike (torch's ``stable=True``). NumPy has no descending sort, and sorting
  ``-x`` is wrong for unsigned ints and moves NaNs, so a descending sort reverses the
  array, sorts it stably ascending and reverses the result: equal elements, which the
  ascending sort leaves in increasing position of the *reversed* array, come out in
  increasing position of the original. Position ``k`` of the reversed array is element
  ``n - 1 - k`` of the original.
* **NaN is the largest value** (last ascending, first descending), as in torch.
* **top-k = the first k of that order**: the largest (or smallest) k, ties to the lower
  index, sorted. When k is small next to the dim (and there is no NaN), a full sort is
  wasted work; ``topk`` then finds the k-th value with ``partition`` (linear time), keeps
  everything strictly better plus the lowest-indexed ties to make up k, and sorts only
  those k: the very same answer, in O(n + k log k) instead of O(n log n).
"""
from __future__ import annotations

import operator

import numpy as np

from scratchvision.backend import get_array_module

PARTITION_MIN = 64      # dims shorter than this are simply sorted
PARTITION_RATIO = 8     # use the partition path when k * PARTITION_RATIO <= n


def _argsort_ascending(x, axis: int):
    xp = get_array_module(x)
    try:
        return xp.argsort(x, axis=axis, kind="stable")
    except TypeError:                        # CuPy < 12 takes no kind (and is always stable)
        return xp.argsort(x, axis=axis)


def argsort(x, axis: int, descending: bool = False):
    """int64 indices that sort ``x`` along ``axis``, stably, NaN largest."""
    xp = get_array_module(x)
    if x.ndim == 0:
        return xp.zeros((), np.int64)
    if not descending:
        return _argsort_ascending(x, axis).astype(np.int64, copy=False)
    n = x.shape[axis]
    order = _argsort_ascending(xp.flip(x, axis), axis)    # positions in the reversed array
    return (n - 1 - xp.flip(order, axis)).astype(np.int64, copy=False)


def sort(x, axis: int, descending: bool = False):
    """(values, int64 indices) of the stable sort of ``x`` along ``axis``."""
    xp = get_array_module(x)
    idx = argsort(x, axis, descending)
    if x.ndim == 0:
        return x.copy(), idx
    return xp.take_along_axis(x, idx, axis=axis), idx


def check_k(k, n: int, axis: int, shape) -> int:
    """k as an int in [0, n], or a ValueError naming the dim and the shape."""
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"topk: k must be an int, got {type(k).__name__}") from None
    if not 0 <= k <= n:
        raise ValueError(f"topk: k={k} is out of range for dim {axis} of size {n} "
                         f"(input shape {tuple(shape)}); expected 0 <= k <= {n}")
    return k


def topk(x, k: int, axis: int, largest: bool = True):
    """(values, int64 indices) of the k largest (smallest) along ``axis``, best first,
    ties to the lower index. ``axis`` must be valid and ``0 <= k <= x.shape[axis]``."""
    xp = get_array_module(x)
    n = x.shape[axis]
    use_partition = n >= PARTITION_MIN and 0 < k and k * PARTITION_RATIO <= n
    if use_partition and x.dtype.kind == "f" and bool(xp.isnan(x).any()):
        use_partition = False                # NaNs: partition's order for them differs
    if not use_partition:
        idx = argsort(x, axis, descending=largest)
        idx = xp.take(idx, xp.arange(k), axis=axis)
        return xp.take_along_axis(x, idx, axis=axis), idx
    a = xp.moveaxis(x, axis, -1)
    rest = a.shape[:-1]
    a = a.reshape(-1, n)                                   # (M, n) rows
    if largest:
        kth = xp.partition(a, n - k, axis=1)[:, n - k:n - k + 1]   # (M, 1) k-th largest
        better = a > kth
    else:
        kth = xp.partition(a, k - 1, axis=1)[:, k - 1:k]           # (M, 1) k-th smallest
        better = a < kth
    tie = a == kth
    need = k - better.sum(axis=1, keepdims=True)           # ties to take, >= 1 per row
    take = better | (tie & (xp.cumsum(tie, axis=1) <= need))   # the lowest-indexed ties
    cols = xp.nonzero(take)[1].reshape(-1, k)              # (M, k) increasing per row
    vals = xp.take_along_axis(a, cols, axis=1)
    order = argsort(vals, 1, descending=largest)           # stable: ties stay by index
    idx = xp.take_along_axis(cols, order, axis=1).astype(np.int64, copy=False)
    vals = xp.take_along_axis(vals, order, axis=1)
    idx = xp.moveaxis(idx.reshape(rest + (k,)), -1, axis)
    vals = xp.moveaxis(vals.reshape(rest + (k,)), -1, axis)
    return xp.ascontiguousarray(vals), xp.ascontiguousarray(idx)
