"""The two flat-array data structures of the compiled grouping loop (``cpu.py``).

* ``Heap``: a binary min-heap of entries ``(key, i, j)`` in three parallel arrays, ordered
  lexicographically (``key`` first, then ``i``, then ``j``), so equal keys pop the lowest
  ``(i, j)`` first and the result is deterministic. The grouping stores ``key =
  -similarity``; entries of merged (dead) regions are not removed but skipped when popped
  (lazy deletion). Slot ``c``'s parent is ``(c - 1) // 2``, its children ``2c + 1`` and
  ``2c + 2``.
* ``NeighbourLists``: one singly linked list of neighbours per region in flat arrays:
  ``head[r]`` is the first entry of region r (-1: none), ``node[e]`` the neighbour that
  entry e names, ``next[e]`` the entry after e (-1 ends the list).

Both grow by doubling when full and are returned by the functions that may grow them.
Plain loops over flat arrays compile in a fraction of the time Numba's typed lists and
``heapq`` take.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Heap(NamedTuple):
    """A binary min-heap of ``(key, i, j)`` entries; the caller keeps the entry count."""
    key: np.ndarray        # (capacity,) float64
    i: np.ndarray          # (capacity,) int64
    j: np.ndarray          # (capacity,) int64


class NeighbourLists(NamedTuple):
    """Linked lists of neighbours, one per region; the caller keeps the entry count."""
    head: np.ndarray       # (regions,) int64 first entry of each region's list, -1: empty
    node: np.ndarray       # (capacity,) int64 the neighbour an entry names
    next: np.ndarray       # (capacity,) int64 the following entry, -1: end of the list


@njit(cache=True)
def new_heap(capacity):
    """An empty heap with room for ``capacity`` entries."""
    return Heap(np.empty(capacity, np.float64), np.empty(capacity, np.int64),
                np.empty(capacity, np.int64))


@njit(cache=True)
def _before(k1, i1, j1, k2, i2, j2):
    """Heap order: (k1, i1, j1) lexicographically smaller than (k2, i2, j2)."""
    if k1 != k2:
        return k1 < k2
    if i1 != i2:
        return i1 < i2
    return j1 < j2


@njit(cache=True)
def heap_push(heap, n, k, i, j):
    """Insert (k, i, j) into the heap of n entries; returns the heap (grown when full)."""
    if n == heap.key.shape[0]:                # full: double the capacity
        heap = Heap(np.concatenate((heap.key, np.empty_like(heap.key))),
                    np.concatenate((heap.i, np.empty_like(heap.i))),
                    np.concatenate((heap.j, np.empty_like(heap.j))))
    key, hi, hj = heap.key, heap.i, heap.j
    c = n                                     # sift up from the new last slot
    while c > 0:
        p = (c - 1) // 2
        if not _before(k, i, j, key[p], hi[p], hj[p]):
            break
        key[c], hi[c], hj[c] = key[p], hi[p], hj[p]
        c = p
    key[c], hi[c], hj[c] = k, i, j
    return heap


@njit(cache=True)
def heap_pop(heap, n):
    """Remove the smallest of n entries and return it (the caller decrements n)."""
    key, hi, hj = heap.key, heap.i, heap.j
    top_k, top_i, top_j = key[0], hi[0], hj[0]
    k, i, j = key[n - 1], hi[n - 1], hj[n - 1]  # the last entry sifts down from the root
    m = n - 1
    c = 0
    while True:
        child = 2 * c + 1
        if child >= m:
            break
        if child + 1 < m and _before(key[child + 1], hi[child + 1], hj[child + 1],
                                     key[child], hi[child], hj[child]):
            child += 1                        # the smaller of the two children
        if not _before(key[child], hi[child], hj[child], k, i, j):
            break
        key[c], hi[c], hj[c] = key[child], hi[child], hj[child]
        c = child
    if m > 0:
        key[c], hi[c], hj[c] = k, i, j
    return top_k, top_i, top_j


@njit(cache=True)
def add_neighbour(lists, count, r, k):
    """Prepend k to region r's list as entry ``count``; returns the lists (grown when full)."""
    if count == lists.node.shape[0]:
        lists = NeighbourLists(lists.head,
                               np.concatenate((lists.node, np.empty_like(lists.node))),
                               np.concatenate((lists.next, np.empty_like(lists.next))))
    lists.node[count] = k
    lists.next[count] = lists.head[r]
    lists.head[r] = count
    return lists
