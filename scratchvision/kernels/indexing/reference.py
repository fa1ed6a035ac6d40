"""Gather, scatter, index-select and masked-fill, textbook version: the specification.

The dispatcher (``__init__.py``) hands every version the same canonical 3-D arrays. For an
op along ``dim`` of an N-d array, the dims before ``dim`` are flattened into ``O`` (outer),
``dim`` itself is ``N`` (input) or ``J`` (index), and the dims after it into ``I`` (inner):
the element ``x[a_0, .., a_{d-1}, n, a_{d+1}, ..]`` is ``x3[o, n, i]``, with ``o`` the
row-major number of ``(a_0, .., a_{d-1})`` and ``i`` that of the trailing indices. (When
``index`` is smaller than ``x`` in the other dims, as torch allows, the dispatcher first
cuts ``x`` down to ``index``'s extent there, so ``o`` and ``i`` mean the same in both.)

Which input element feeds which output element::

    gather        y[o, j, i] = x[o, index[o, j, i], i]                 y: (O, J, I)
    scatter_add   y = x;  y[o, index[o, j, i], i] += src[o, j, i]     y: (O, N, I)
    scatter       y = x;  y[o, index[o, j, i], i]  = src[o, j, i]     (last j wins)
    index_select  y[o, j, i] = x[o, index[j], i]                       index: (J,)
    index_add     y = x;  y[o, index[j], i] += src[o, j, i]
    masked_fill   y[t] = value if mask[t] else x[t]                    flat arrays

Example (gather along dim 1 of a 2-D array, so O = 2, I = 1)::

    x = [[10, 11, 12],        index = [[2, 0],        y = [[12, 10],
         [20, 21, 22]]                 [1, 1]]             [21, 21]]

The loops visit ``(o, j, i)`` in row-major order, so when several ``j`` send to the same
output element, ``scatter_add`` sums them in increasing ``j`` (the order every CPU version
keeps, so all of them give the same bits) and ``scatter`` keeps the one with the largest
``j``. The dispatcher has checked every index against its bound before any version runs.
"""
from __future__ import annotations

import numpy as np


def gather(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x (O, N, I), index (O, J, I) int64 -> y (O, J, I)."""
    n_outer, n_index, n_inner = index.shape
    y = np.empty(index.shape, x.dtype)
    for o in range(n_outer):                     # (o, j, i) indexes one output element
        for j in range(n_index):
            for i in range(n_inner):
                y[o, j, i] = x[o, index[o, j, i], i]
    return y


def scatter_add(x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """x (O, N, I), index and src (O, J, I) -> y = x + src added at index, in j order."""
    n_outer, n_index, n_inner = index.shape
    y = x.copy()
    for o in range(n_outer):                     # (o, j, i) indexes one source element
        for j in range(n_index):
            for i in range(n_inner):
                y[o, index[o, j, i], i] += src[o, j, i]
    return y


def scatter(x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """x (O, N, I), index and src (O, J, I) -> y = x with src written at index (last j wins)."""
    n_outer, n_index, n_inner = index.shape
    y = x.copy()
    for o in range(n_outer):
        for j in range(n_index):                 # a later j overwrites an earlier one
            for i in range(n_inner):
                y[o, index[o, j, i], i] = src[o, j, i]
    return y


def index_select(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x (O, N, I), index (J,) int64 -> y (O, J, I): whole slices x[:, index[j], :]."""
    n_outer, _, n_inner = x.shape
    y = np.empty((n_outer, index.shape[0], n_inner), x.dtype)
    for o in range(n_outer):                     # (o, j, i) indexes one output element
        for j in range(index.shape[0]):
            for i in range(n_inner):
                y[o, j, i] = x[o, index[j], i]
    return y


def index_add(x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
    """x (O, N, I), index (J,), src (O, J, I) -> y = x with src[:, j] added to y[:, index[j]]."""
    n_outer, _, n_inner = x.shape
    y = x.copy()
    for o in range(n_outer):
        for j in range(index.shape[0]):          # repeated index[j]: summed in j order
            for i in range(n_inner):
                y[o, index[j], i] += src[o, j, i]
    return y


def masked_fill(x: np.ndarray, mask: np.ndarray, value) -> np.ndarray:
    """x (T,), mask (T,) bool, value a scalar of x's dtype -> y (T,)."""
    y = np.empty_like(x)
    for t in range(x.shape[0]):
        y[t] = value if mask[t] else x[t]
    return y
