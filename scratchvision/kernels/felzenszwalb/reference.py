"""Felzenszwalb–Huttenlocher graph segmentation (IJCV 2004): the reference, read it first.

The image is a graph: one vertex per pixel, one edge between each pixel and its 8
neighbours, weighted by the colour distance of the two (smoothed) pixels. Segmentation is
Kruskal's minimum-spanning-tree algorithm with a twist in the merge test:

1. **Smooth** every channel with a Gaussian of width ``sigma`` (the paper's code: a
   normalised mask of ``ceil(4 * sigma) + 1`` taps, applied along x then along y, borders
   clamped), so that single-pixel noise does not cut regions apart.
2. **Edges** of the 8-connected grid, each undirected edge once: from pixel ``(y, x)`` to
   its right ``(y, x+1)``, down ``(y+1, x)``, down-right ``(y+1, x+1)`` and up-right
   ``(y-1, x+1)`` neighbour. Weight = Euclidean distance of the smoothed colours,
   ``sqrt(sum_c (I_c(p) - I_c(q))^2)``. Edges are listed direction by direction, each
   block in raster order, so that every implementation enumerates them identically.
3. **Sort** the edges by weight (a *stable* sort: ties keep the enumeration order, which
   makes the result one well-defined function of the image).
4. **Union–find** over the edges in that order. Each component C keeps a threshold
   ``Int(C) + tau(C)``, where ``Int(C)`` is the largest edge of its spanning tree (the
   weight of the edge that last merged it, since edges come in increasing order) and
   ``tau(C) = k / |C|``. Edge (a, b) of weight w joins the components of a and b when
   ``w <= thr(A)`` and ``w <= thr(B)``; the new component gets ``thr = w + k / |A u B|``.
   A larger ``k`` therefore prefers larger components. Union by rank and path compression
   keep each find almost O(1).
5. **Small components**: a second pass over the sorted edges joins any edge whose two
   components differ and one of which has fewer than ``min_size`` pixels.

Labels are finally renumbered 0..n-1 in order of first appearance in raster order, so the
label image is canonical: two implementations that find the same partition return the same
array.

The versions share two signatures: ``build_graph(img, mask) -> (a, b, w)`` (steps 1-3 on a
float32 (H, W, C) image and the half mask of ``gaussian_mask``) and ``segment_graph(n, a, b,
w, k, min_size) -> labels (n,)`` (steps 4-5 and the renumbering). The graph does not depend
on ``k``, so Selective Search builds it once per colour space and segments it for several
``k``. This version is plain Python and NumPy (slow; for small images and as the test oracle)
with float32 arithmetic in the order the Numba version (``cpu.py``) uses, so both return
identical labels.
"""
from __future__ import annotations

import math

import numpy as np

WIDTH = 4.0  # the paper's code: the mask spans ceil(WIDTH * sigma) taps beyond the centre


def gaussian_mask(sigma: float) -> np.ndarray:
    """One half of the paper's normalised Gaussian mask, float32, ``ceil(4 sigma) + 1`` taps.

    ``mask[i]`` weighs the pixels ``i`` to the left and ``i`` to the right; normalised so that
    ``mask[0] + 2 * sum(mask[1:]) == 1``. ``sigma == 0`` gives ``[1]`` (no smoothing).
    """
    if sigma <= 0:
        return np.ones(1, np.float32)
    sigma = max(float(sigma), 0.01)
    n = math.ceil(sigma * WIDTH) + 1
    mask = np.exp(-0.5 * (np.arange(n, dtype=np.float64) / sigma) ** 2)
    mask /= 2.0 * mask.sum() - mask[0]
    return mask.astype(np.float32)


def smooth(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Step 1: separable Gaussian, along x then y, borders clamped (float32 throughout)."""
    h, w, _ = img.shape
    out = img
    for axis, size in ((1, w), (0, h)):
        idx = np.arange(size)
        acc = mask[0] * out
        for i in range(1, len(mask)):
            # taps at distance i on both sides, clamped to the border: the paper's
            # src(max(x - i, 0)) + src(min(x + i, w - 1))
            left = np.take(out, np.maximum(idx - i, 0), axis=axis)
            right = np.take(out, np.minimum(idx + i, size - 1), axis=axis)
            acc = acc + mask[i] * (left + right)
        out = acc.astype(np.float32)
    return out


def edges(smoothed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2: edges in the canonical order: right, down, down-right, up-right blocks, each
    in raster order of its first pixel; int32 ends ``a``, ``b`` and float32 weights."""
    h, w, c = smoothed.shape
    a_list, b_list, w_list = [], [], []
    for dy, dx, y0, y1 in ((0, 1, 0, h), (1, 0, 0, h - 1), (1, 1, 0, h - 1), (-1, 1, 1, h)):
        for y in range(y0, y1):
            for x in range(w - dx):
                p, q = y * w + x, (y + dy) * w + (x + dx)
                d = np.float32(0.0)
                for ch in range(c):
                    diff = smoothed[y, x, ch] - smoothed[y + dy, x + dx, ch]
                    d = np.float32(d + diff * diff)
                a_list.append(p)
                b_list.append(q)
                w_list.append(np.sqrt(d, dtype=np.float32))
    return (np.array(a_list, np.int32), np.array(b_list, np.int32),
            np.array(w_list, np.float32))


def build_graph(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-3: the smoothed grid graph of a float32 (H, W, C) image, sorted stably by
    weight: int32 flat pixel indices ``a``, ``b`` of both ends and float32 weights ``w``."""
    ea, eb, ew = edges(smooth(img, mask))
    order = np.argsort(ew, kind="stable")
    return ea[order], eb[order], ew[order]


def segment_graph(n: int, ea: np.ndarray, eb: np.ndarray, ew: np.ndarray, k: float,
                  min_size: int) -> np.ndarray:
    """Steps 4-5 on a sorted graph of ``n`` pixels: (n,) int64 canonical labels."""
    parent, rank, size = list(range(n)), [0] * n, [1] * n
    k = np.float32(k)
    thr = [np.float32(k / np.float32(1.0))] * n   # tau of a single pixel: k / 1

    def find(x):
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:                  # path compression
            parent[x], x = root, parent[x]
        return root

    def join(x, y):                               # union by rank; returns the new root
        if rank[x] > rank[y]:
            parent[y] = x
            size[x] += size[y]
            return x
        parent[x] = y
        size[y] += size[x]
        if rank[x] == rank[y]:
            rank[y] += 1
        return y

    for i in range(len(ew)):
        ra, rb = find(int(ea[i])), find(int(eb[i]))
        if ra != rb and ew[i] <= thr[ra] and ew[i] <= thr[rb]:
            r = join(ra, rb)
            thr[r] = np.float32(ew[i] + k / np.float32(size[r]))   # Int(C) + k / |C|
    for i in range(len(ew)):
        ra, rb = find(int(ea[i])), find(int(eb[i]))
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            join(ra, rb)
    labels = np.empty(n, np.int64)
    ids: dict[int, int] = {}
    for p in range(n):                            # canonical: raster order of first pixel
        labels[p] = ids.setdefault(find(p), len(ids))
    return labels
