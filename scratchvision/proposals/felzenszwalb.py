"""Felzenszwalb–Huttenlocher graph-based image segmentation (IJCV 2004).

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

``felzenszwalb(image, k, sigma, min_size)`` dispatches to the Numba version (``impl='numba'``,
the default) or the plain-Python reference (``impl='reference'``, the specification and the
test oracle; slow, meant for small images). The Numba version parallelises the smoothing
and the edge weights over rows (independent outputs) and runs the sort (a stable radix sort
of the weights' bit patterns) and the union–find sequentially; it is exact: same float32
arithmetic in the same order as the reference, so both return identical labels. Its graph
(smoothing, edges, sort) does not depend on ``k``, so Selective Search builds it once per
colour space and segments it for several ``k`` with ``segment_graph``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["felzenszwalb", "build_graph", "segment_graph", "gaussian_mask"]

WIDTH = 4.0  # the paper's code: the mask spans ceil(WIDTH * sigma) taps beyond the centre


# --------------------------------------------------------------------------------------------
# shared small pieces
# --------------------------------------------------------------------------------------------

def gaussian_mask(sigma: float) -> np.ndarray:
    """One half of the paper's normalised Gaussian mask, float32, ``ceil(4 sigma) + 1`` taps.

    ``mask[i]`` weighs the pixels ``i`` to the left and ``i`` to the right; normalised so that
    ``mask[0] + 2 * sum(mask[1:]) == 1``. ``sigma == 0`` gives ``[1]`` (no smoothing).
    """
    if sigma <= 0:
        return np.ones(1, np.float32)
    sigma = max(float(sigma), 0.01)
    n = int(math.ceil(sigma * WIDTH)) + 1
    mask = np.exp(-0.5 * (np.arange(n, dtype=np.float64) / sigma) ** 2)
    mask /= 2.0 * mask.sum() - mask[0]
    return mask.astype(np.float32)


def _validate(image: np.ndarray, k: float, sigma: float, min_size: int) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"felzenszwalb: image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("felzenszwalb: image must be (H, W) or (H, W, C) with H, W >= 1, "
                         f"got shape {image.shape}")
    if image.shape[0] * image.shape[1] >= 2**31:
        raise ValueError(f"felzenszwalb: image too large for int32 pixel indices, shape "
                         f"{image.shape}")
    if image.dtype.kind not in "uif" or image.dtype == np.float16:
        raise TypeError(f"felzenszwalb: image dtype must be an integer or float32/64 type, "
                        f"got {image.dtype}")
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"felzenszwalb: k must be a finite number >= 0, got {k}")
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"felzenszwalb: sigma must be a finite number >= 0, got {sigma}")
    if int(min_size) != min_size or min_size < 0:
        raise ValueError(f"felzenszwalb: min_size must be an integer >= 0, got {min_size}")
    img = np.ascontiguousarray(image, dtype=np.float32)
    if not np.isfinite(img).all():
        raise ValueError("felzenszwalb: image contains NaN or infinite values")
    return img


def felzenszwalb(image: np.ndarray, k: float = 100.0, sigma: float = 0.8, min_size: int = 20,
                 impl: str = "numba") -> np.ndarray:
    """Segment an image into regions with the Felzenszwalb–Huttenlocher algorithm.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array, any integer or float dtype, values on the 0..255
        scale for the usual ``k`` to make sense (the paper's units).
    k : float
        Scale of observation: larger ``k`` gives larger (and fewer) regions.
    sigma : float
        Width of the Gaussian pre-smoothing (0 disables it).
    min_size : int
        Components smaller than this are merged with a neighbour in a final pass.
    impl : {'numba', 'reference'}

    Returns
    -------
    labels : (H, W) int64 array of region ids 0..n-1, numbered in raster order of first
        appearance.
    """
    img = _validate(image, k, sigma, min_size)
    if impl == "numba":
        a, b, w = build_graph(img, sigma)
        return segment_graph(img.shape[0], img.shape[1], a, b, w, k, min_size)
    if impl == "reference":
        return felzenszwalb_reference(img, k, sigma, min_size)
    raise ValueError(f"felzenszwalb: impl must be 'numba' or 'reference', got {impl!r}")


def build_graph(img: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed 8-connected grid graph of a float32 (H, W, C) image, edges sorted by weight.

    Returns ``(a, b, w)``: int32 flat pixel indices of both ends and float32 weights, sorted
    stably by weight.
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    smooth = _smooth_numba(img, gaussian_mask(sigma))
    a, b, w = _edges_numba(smooth)
    order = _stable_argsort(w)
    return a[order], b[order], w[order]


def segment_graph(height: int, width: int, a: np.ndarray, b: np.ndarray, w: np.ndarray,
                  k: float, min_size: int) -> np.ndarray:
    """Union–find segmentation of a sorted graph from ``build_graph``; (H, W) int64 labels."""
    labels = _segment_numba(height * width, a, b, w, np.float32(k), int(min_size))
    return labels.reshape(height, width)


# --------------------------------------------------------------------------------------------
# reference: the specification, plain loops and NumPy
# --------------------------------------------------------------------------------------------

def _smooth_reference(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Separable Gaussian, along x then y, borders clamped (float32 throughout)."""
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


def _edges_reference(smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges in the canonical order: right, down, down-right, up-right blocks, raster order."""
    h, w, c = smooth.shape
    a_list, b_list, w_list = [], [], []
    for dy, dx, y0, y1 in ((0, 1, 0, h), (1, 0, 0, h - 1), (1, 1, 0, h - 1), (-1, 1, 1, h)):
        for y in range(y0, y1):
            for x in range(0, w - dx):
                p, q = y * w + x, (y + dy) * w + (x + dx)
                d = np.float32(0.0)
                for ch in range(c):
                    diff = smooth[y, x, ch] - smooth[y + dy, x + dx, ch]
                    d = np.float32(d + diff * diff)
                a_list.append(p)
                b_list.append(q)
                w_list.append(np.sqrt(d, dtype=np.float32))
    return (np.array(a_list, np.int32), np.array(b_list, np.int32),
            np.array(w_list, np.float32))


def felzenszwalb_reference(img: np.ndarray, k: float, sigma: float,
                           min_size: int) -> np.ndarray:
    """The algorithm in plain Python (float32 (H, W, C) image in, (H, W) int64 labels out)."""
    h, w, _ = img.shape
    smooth = _smooth_reference(img, gaussian_mask(sigma))
    ea, eb, ew = _edges_reference(smooth)
    order = np.argsort(ew, kind="stable")
    ea, eb, ew = ea[order], eb[order], ew[order]
    n = h * w
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
            thr[r] = np.float32(ew[i] + k / np.float32(size[r]))
    for i in range(len(ew)):
        ra, rb = find(int(ea[i])), find(int(eb[i]))
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            join(ra, rb)
    labels = np.empty(n, np.int64)
    ids: dict[int, int] = {}
    for p in range(n):
        labels[p] = ids.setdefault(find(p), len(ids))
    return labels.reshape(h, w)


# --------------------------------------------------------------------------------------------
# Numba: same arithmetic, same order
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _smooth_numba(img, mask):
    """Separable Gaussian as in the reference; rows (then columns) in parallel."""
    h, w, c = img.shape
    n = mask.shape[0]
    tmp = np.empty_like(img)
    out = np.empty_like(img)
    for y in prange(h):                    # pass 1, along x: (y, x, ch) indexes one output
        for x in range(w):
            for ch in range(c):
                acc = mask[0] * img[y, x, ch]
                for i in range(1, n):
                    left = img[y, max(x - i, 0), ch]
                    right = img[y, min(x + i, w - 1), ch]
                    acc = acc + mask[i] * (left + right)
                tmp[y, x, ch] = acc
    for y in prange(h):                    # pass 2, along y
        for x in range(w):
            for ch in range(c):
                acc = mask[0] * tmp[y, x, ch]
                for i in range(1, n):
                    up = tmp[max(y - i, 0), x, ch]
                    down = tmp[min(y + i, h - 1), x, ch]
                    acc = acc + mask[i] * (up + down)
                out[y, x, ch] = acc
    return out


@njit(parallel=True, cache=True)
def _edges_numba(smooth):
    """Edge list in the reference's canonical order; one parallel loop over image rows.

    Row y starts edges in all four blocks; each lands in its block's slot
    ``offset + (y - first row of the block) * (block width) + x``.
    """
    h, w, c = smooth.shape
    n_right, n_down, n_diag = h * (w - 1), (h - 1) * w, (h - 1) * (w - 1)
    m = n_right + n_down + 2 * n_diag
    ea = np.empty(m, np.int32)
    eb = np.empty(m, np.int32)
    ew = np.empty(m, np.float32)
    for y in prange(h):
        # (dy, dx, slot of the row's first edge): right, down, down-right, up-right
        for blk in range(4):
            if blk == 0:
                dy, dx, first = 0, 1, y * (w - 1)
            elif blk == 1:
                dy, dx, first = 1, 0, n_right + y * w
            elif blk == 2:
                dy, dx, first = 1, 1, n_right + n_down + y * (w - 1)
            else:
                dy, dx, first = -1, 1, n_right + n_down + n_diag + (y - 1) * (w - 1)
            if y + dy < 0 or y + dy >= h:       # no down edges from the last row, no up
                continue                        # edges from the first
            for x in range(w - dx):
                e = first + x
                d = np.float32(0.0)
                for ch in range(c):
                    diff = smooth[y, x, ch] - smooth[y + dy, x + dx, ch]
                    d = d + diff * diff
                ea[e] = y * w + x
                eb[e] = (y + dy) * w + (x + dx)
                ew[e] = np.sqrt(d)
    return ea, eb, ew


@njit(cache=True)
def _stable_argsort(w):
    """Stable argsort of non-negative float32 weights: an LSD radix sort of their bits.

    For x >= 0 the IEEE-754 bit pattern of a float32, read as a uint32, orders like the
    float, so four stable counting-sort passes over its bytes (least significant first)
    sort the weights; equal weights keep their enumeration order, as ``np.argsort(kind=
    'stable')`` in the reference. O(E) instead of O(E log E): the sort was the hot spot of
    the whole segmentation. A pass whose byte is the same for every key is skipped.
    """
    n = w.shape[0]
    keys = w.view(np.uint32).copy()
    order = np.arange(n)
    keys_tmp = np.empty_like(keys)
    order_tmp = np.empty_like(order)
    for shift in range(0, 32, 8):
        count = np.zeros(257, np.int64)
        for i in range(n):                       # histogram of this byte, shifted by one
            count[((keys[i] >> shift) & 255) + 1] += 1
        if count.max() == n:                     # one value for all: nothing to reorder
            continue
        for d in range(256):                     # count[d] = first slot of byte value d
            count[d + 1] += count[d]
        for i in range(n):                       # scatter in input order: stable
            d = (keys[i] >> shift) & 255
            keys_tmp[count[d]] = keys[i]
            order_tmp[count[d]] = order[i]
            count[d] += 1
        keys, keys_tmp = keys_tmp, keys
        order, order_tmp = order_tmp, order
    return order


@njit(cache=True)
def _find(parent, x):
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:              # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@njit(cache=True)
def _join(parent, rank, size, x, y):
    """Union by rank of two roots; returns the new root."""
    if rank[x] > rank[y]:
        parent[y] = x
        size[x] += size[y]
        return x
    parent[x] = y
    size[y] += size[x]
    if rank[x] == rank[y]:
        rank[y] += 1
    return y


@njit(cache=True)
def _segment_numba(n, ea, eb, ew, k, min_size):
    """Union–find over sorted edges, min_size pass, canonical relabelling (sequential)."""
    parent = np.arange(n).astype(np.int32)
    rank = np.zeros(n, np.int32)
    size = np.ones(n, np.int32)
    thr = np.empty(n, np.float32)
    thr[:] = k / np.float32(1.0)
    for i in range(ew.shape[0]):
        ra = _find(parent, ea[i])
        rb = _find(parent, eb[i])
        if ra != rb and ew[i] <= thr[ra] and ew[i] <= thr[rb]:
            r = _join(parent, rank, size, ra, rb)
            thr[r] = ew[i] + k / np.float32(size[r])      # Int(C) + tau(C), tau = k / |C|
    for i in range(ew.shape[0]):
        ra = _find(parent, ea[i])
        rb = _find(parent, eb[i])
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            _join(parent, rank, size, ra, rb)
    ids = np.full(n, -1, np.int64)
    labels = np.empty(n, np.int64)
    count = 0
    for p in range(n):
        r = _find(parent, p)
        if ids[r] < 0:
            ids[r] = count
            count += 1
        labels[p] = ids[r]
    return labels
