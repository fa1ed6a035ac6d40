"""Selective Search (Uijlings, van de Sande, Gevers, Smeulders; IJCV 2013).

Object proposals by hierarchical grouping of an over-segmentation. For one *strategy*
(a colour space, a Felzenszwalb ``k`` and a set of similarity measures):

1. Convert the RGB image to the colour space (RGB, HSV, Lab, rgI, H, I: every channel on
   0..255) and segment it with Felzenszwalb–Huttenlocher (``sigma=0.8``, ``min_size=k``,
   as the authors' code) into initial regions R.
2. Describe every region r by
   - ``size(r)``: its pixel count, and its bounding box;
   - a colour histogram ``C(r)``: 25 bins per channel, L1-normalised over all channels;
   - a texture histogram ``T(r)``: per channel, Gaussian derivatives (sigma = 1) in 8
     orientations, each rectified and binned into 10 bins; L1-normalised over all.
     The derivative in direction theta is steered from the two axis derivatives,
     ``cos(theta) Gx + sin(theta) Gy`` (a Gaussian first derivative is steerable), for
     theta = 0, 45, ..., 315 degrees; rectifying (``max(., 0)``) makes opposite
     orientations distinct. Each (channel, orientation) response is scaled by its maximum
     over the image before binning, so the 10 bins span the response range.
3. The neighbour graph: regions i, j are neighbours when some pixel of i touches a pixel
   of j horizontally or vertically (4-connectivity).
4. Similarity of neighbours, a sum of the measures of the strategy (each in [0, 1]):
   - colour  ``s_C = sum_k min(C_i[k], C_j[k])`` (histogram intersection);
   - texture ``s_T = sum_k min(T_i[k], T_j[k])``;
   - size    ``s_S = 1 - (size_i + size_j) / size(image)`` (merge small regions first);
   - fill    ``s_F = 1 - (size(BB_ij) - size_i - size_j) / size(image)``, with BB_ij the
     box around both (merge regions that fill each other's gaps).
5. Greedy merging: take the most similar pair (i, j), replace it by t = i u j with
   ``size_t = size_i + size_j``, ``C_t = (size_i C_i + size_j C_j) / size_t`` (the same
   for T; exact, since the histograms are normalised counts), the union box; t's
   neighbours are those of i and j. Remove the similarities involving i or j, add t's.
   Repeat until one region is left. Every region ever made is a proposal: the initial
   ones first, then the merged ones in order of creation (2n - 1 boxes).

Diversification: the paper's strategies combine colour spaces x k x similarity sets
(``CTSF`` = colour + texture + size + fill, ``TSF``, ``F``, ``S``):

- ``'single'``: HSV, k = 100, CTSF (1 strategy);
- ``'fast'``: HSV and Lab, k in {50, 100}, CTSF and TSF (8 strategies);
- ``'quality'``: HSV, Lab, rgI, H, I, k in {50, 100, 150, 300}, CTSF, TSF, F, S (80).

Ranking, as the authors' code: within a strategy the box created j-th of N gets the
position ``N - j`` (the whole image, created last, gets 1), multiplied by a uniform random
number in [0, 1) from a generator seeded with ``seed``; the boxes of all strategies are
sorted by that value, ascending, and exact duplicates are dropped (the first one is kept).

Boxes are float32 ``(x1, y1, x2, y2)`` on pixel edges: a region covering pixel columns
``xmin..xmax`` gives ``x1 = xmin, x2 = xmax + 1`` (so a one-pixel region is a 1x1 box).

What is compiled, and where the time goes: the smoothing, edge weights, radix sort and
union–find of the segmentation (``felzenszwalb.py``), the Gaussian derivatives and
texture bins, the region features (sizes and boxes, then the histograms in parallel over
histogram channels, each thread owning its columns, so no two threads ever write one
counter), the neighbour keys and the merge loop are Numba. The merge loop keeps a binary
heap of ``(-similarity, i, j)`` with lazy deletion (entries of dead regions are skipped
when popped) and one neighbour list per region, both in flat arrays (plain loops compile
in a fraction of the time typed lists and ``heapq`` take); ties pop the lowest (i, j)
first, so the result is deterministic. Work is shared where the paper's strategies
allow: the segmentation graph and the pixel bins depend only on the colour space, the
region features only on (colour space, k); only the grouping runs per similarity set.
Measured on 128x128 Shapes images, 'fast' on one thread (about 20 ms per image): union–find
segmentation 32%, region features 28%, graphs (smoothing, edges, sort) 23%, texture and
colour bins 14%, the eight greedy groupings only 3%.

Reference versions (the specification and test oracle, for small images):
``feature_bins(impl='reference')`` (NumPy convolutions and binning, same float32 order),
``region_features_reference`` (sizes, boxes, histograms, neighbour pairs in NumPy) and
``hierarchical_grouping_reference`` (Algorithm 1 of the paper with a dict of similarities
and ``max``); ``hierarchical_grouping(..., impl='reference')`` runs them. Both return the
same boxes and merge tree as the Numba versions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numba
import numpy as np
from numba import njit, prange

from .felzenszwalb import build_graph, segment_graph

__all__ = ["selective_search", "SelectiveSearch", "STRATEGIES", "COLOR_SPACES",
           "SIMILARITIES", "convert_color", "feature_bins", "region_features", "group_regions",
           "hierarchical_grouping"]

COLOR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8

COLOR_SPACES = ("rgb", "hsv", "lab", "rgI", "H", "I")
# similarity set name -> (colour, texture, size, fill)
SIMILARITIES = {
    "CTSF": (True, True, True, True),
    "TSF": (False, True, True, True),
    "CSF": (True, False, True, True),
    "CTS": (True, True, True, False),
    "C": (True, False, False, False),
    "T": (False, True, False, False),
    "S": (False, False, True, False),
    "F": (False, False, False, True),
}
STRATEGIES = {
    "single": (("hsv",), (100,), ("CTSF",)),
    "fast": (("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": (("hsv", "lab", "rgI", "H", "I"), (50, 100, 150, 300),
                ("CTSF", "TSF", "F", "S")),
}


# --------------------------------------------------------------------------------------------
# colour spaces and per-pixel feature bins
# --------------------------------------------------------------------------------------------

def convert_color(image: np.ndarray, space: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> uint8 (H, W, C) in ``space``, every channel on 0..255.

    'hsv' uses OpenCV's full-range hue (0..255 for 0..360 degrees); 'lab' OpenCV's 8-bit Lab
    (L * 255 / 100, a + 128, b + 128); 'rgI' = (255 R / S, 255 G / S, S / 3) with S = R+G+B
    (r = g = 0 on black); 'H' the hue channel; 'I' the intensity S / 3.
    """
    if space == "rgb":
        return np.ascontiguousarray(image)
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    if space == "H":
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)[:, :, :1])
    s = image.astype(np.float32).sum(axis=2, keepdims=True)       # (H, W, 1)
    intensity = np.rint(s / 3.0).astype(np.uint8)
    if space == "I":
        return intensity
    if space == "rgI":
        rg = np.where(s > 0, 255.0 * image[:, :, :2] / np.maximum(s, 1.0), 0.0)
        return np.concatenate([np.rint(rg).astype(np.uint8), intensity], axis=2)
    raise ValueError(f"selective_search: unknown colour space {space!r}; "
                     f"choose from {COLOR_SPACES}")


def _gaussian_kernels(sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sampled Gaussian g and its derivative g' on [-3 sigma, 3 sigma], float32."""
    r = int(math.ceil(3 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    dg = -x / sigma ** 2 * g
    return g.astype(np.float32), dg.astype(np.float32)


@njit(parallel=True, cache=True)
def _gaussian_derivatives(img, g, dg):
    """Gx, Gy of (H, W, C) float32: separable Gaussian-derivative filters, borders clamped.

    Gx = columns(rows(img, g'), g) and Gy = columns(rows(img, g), g'), where rows(., k)
    correlates each row with k (tap t reads column x + t) and columns(., k) each column.
    Two parallel passes over image rows (each output pixel is independent).
    """
    h, w, c = img.shape
    r = g.shape[0] // 2
    row_d = np.empty_like(img)              # rows(img, g')
    row_g = np.empty_like(img)              # rows(img, g)
    for y in prange(h):
        for x in range(w):
            for ch in range(c):
                acc_d = np.float32(0.0)
                acc_g = np.float32(0.0)
                for t in range(-r, r + 1):  # tap t reads column x + t (clamped)
                    v = img[y, min(max(x + t, 0), w - 1), ch]
                    acc_d += dg[t + r] * v
                    acc_g += g[t + r] * v
                row_d[y, x, ch] = acc_d
                row_g[y, x, ch] = acc_g
    gx = np.empty_like(img)
    gy = np.empty_like(img)
    for y in prange(h):
        for x in range(w):
            for ch in range(c):
                acc_x = np.float32(0.0)
                acc_y = np.float32(0.0)
                for t in range(-r, r + 1):  # tap t reads row y + t (clamped)
                    yy = min(max(y + t, 0), h - 1)
                    acc_x += g[t + r] * row_d[yy, x, ch]
                    acc_y += dg[t + r] * row_g[yy, x, ch]
                gx[y, x, ch] = acc_x
                gy[y, x, ch] = acc_y
    return gx, gy


@njit(parallel=True, cache=True)
def _texture_bins(gx, gy, n_orient, n_bins):
    """Per pixel, the bin (0..n_bins-1) of each rectified oriented derivative.

    gx, gy: (H, W, C) float32 axis derivatives. Returns (C * n_orient, H * W) uint8 where
    row ``ch * n_orient + o`` holds the bins of ``max(cos(th) gx + sin(th) gy, 0)``,
    ``th = 2 pi o / n_orient``, scaled by that row's maximum over the image.
    """
    h, w, c = gx.shape
    n = h * w
    out = np.zeros((c * n_orient, n), np.uint8)
    for g in prange(c * n_orient):              # g = (ch, o) indexes one output row
        ch = g // n_orient
        th = 2.0 * np.pi * (g % n_orient) / n_orient
        ct = np.float32(np.cos(th))
        st = np.float32(np.sin(th))
        resp = np.empty(n, np.float32)
        peak = np.float32(0.0)
        for y in range(h):
            for x in range(w):                  # p = y * w + x
                v = ct * gx[y, x, ch] + st * gy[y, x, ch]
                v = max(v, np.float32(0.0))
                resp[y * w + x] = v
                peak = max(peak, v)
        if peak > 0:
            scale = n_bins / peak
            for p in range(n):
                out[g, p] = min(int(resp[p] * scale), n_bins - 1)
    return out


def _conv_reference(img: np.ndarray, kern: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along rows (axis=1) or columns (axis=0), clamped, summation order as Numba."""
    size, r = img.shape[axis], kern.shape[0] // 2
    idx = np.arange(size)
    acc = np.zeros_like(img)
    for t in range(-r, r + 1):
        acc = acc + kern[t + r] * np.take(img, np.clip(idx + t, 0, size - 1), axis=axis)
    return acc


def _texture_bins_reference(gx, gy, n_orient, n_bins):
    """``_texture_bins`` in NumPy."""
    h, w, c = gx.shape
    out = np.zeros((c * n_orient, h * w), np.uint8)
    for g in range(c * n_orient):
        ch, th = g // n_orient, 2.0 * np.pi * (g % n_orient) / n_orient
        resp = np.float32(np.cos(th)) * gx[:, :, ch] + np.float32(np.sin(th)) * gy[:, :, ch]
        resp = np.maximum(resp, np.float32(0.0)).reshape(-1)
        peak = resp.max()
        if peak > 0:
            out[g] = np.minimum((resp * (n_bins / float(peak))).astype(np.int64), n_bins - 1)
    return out


def feature_bins(img: np.ndarray, impl: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Colour bins (C, H*W) and texture bins (C*8, H*W), uint8, of a (H, W, C) uint8 image.

    Colour: ``value * 25 // 256``. Texture: see the module docstring (Gaussian derivatives,
    sigma = 1, steered to 8 orientations, rectified, 10 bins up to the image's maximum).
    """
    h, w, c = img.shape
    colour = np.ascontiguousarray(
        (img.reshape(h * w, c).T.astype(np.uint16) * COLOR_BINS // 256).astype(np.uint8))
    g, dg = _gaussian_kernels(1.0)
    f = np.ascontiguousarray(img, dtype=np.float32)
    if impl == "numba":
        gx, gy = _gaussian_derivatives(f, g, dg)
        texture = _texture_bins(gx, gy, ORIENTATIONS, TEXTURE_BINS)
    elif impl == "reference":
        gx = _conv_reference(_conv_reference(f, dg, 1), g, 0)   # d/dx: g' along rows, g down
        gy = _conv_reference(_conv_reference(f, g, 1), dg, 0)   # d/dy: g along rows, g' down
        texture = _texture_bins_reference(gx, gy, ORIENTATIONS, TEXTURE_BINS)
    else:
        raise ValueError(f"feature_bins: impl must be 'numba' or 'reference', got {impl!r}")
    return colour, texture


# --------------------------------------------------------------------------------------------
# initial regions: sizes, boxes, histograms, neighbours (Numba)
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _region_features(labels, w, n_regions, colour_bins, texture_bins):
    """Sizes, pixel-edge boxes and L1-normalised colour and texture histograms of regions.

    labels: (P,) flat region ids; colour_bins (Gc, P), texture_bins (Gt, P) uint8 bins.
    Returns size (n,), box (n, 4) ``(xmin, ymin, xmax + 1, ymax + 1)``, colour
    (n, Gc * 25) and texture (n, Gt * 10) float32. The histograms are built in one parallel
    loop over the Gc + Gt histogram channels: thread g owns the 25 (or 10) columns of
    channel g in every row, counts into them and normalises them, so counters are never
    shared (deterministic, no atomics).
    """
    size = np.zeros(n_regions, np.int64)
    box = np.empty((n_regions, 4), np.int64)
    box[:, 0] = 1 << 40
    box[:, 1] = 1 << 40
    box[:, 2] = -1
    box[:, 3] = -1
    for p in range(labels.shape[0]):         # p = y * w + x
        r = labels[p]
        y, x = p // w, p % w
        size[r] += 1
        box[r, 0] = min(box[r, 0], x)
        box[r, 1] = min(box[r, 1], y)
        box[r, 2] = max(box[r, 2], x + 1)
        box[r, 3] = max(box[r, 3], y + 1)
    gc, gt = colour_bins.shape[0], texture_bins.shape[0]
    colour = np.zeros((n_regions, gc * COLOR_BINS), np.float32)
    texture = np.zeros((n_regions, gt * TEXTURE_BINS), np.float32)
    for g in prange(gc + gt):
        if g < gc:                          # colour channel g
            _channel_histogram(colour, colour_bins, np.int64(g), COLOR_BINS, labels, size)
        else:                               # texture (channel, orientation) g - gc
            _channel_histogram(texture, texture_bins, np.int64(g) - gc, TEXTURE_BINS, labels,
                               size)
    return size, box, colour, texture


@njit(cache=True)
def _channel_histogram(hist, bins, g, n_bins, labels, size):
    """Count channel g's bins into columns g*n_bins.. of hist, then L1-normalise them."""
    for p in range(labels.shape[0]):
        hist[labels[p], g * n_bins + bins[g, p]] += 1.0
    total = bins.shape[0]
    for r in range(hist.shape[0]):          # L1 over all channels: size * channels counts
        norm = np.float32(size[r] * total)
        for b in range(g * n_bins, (g + 1) * n_bins):
            hist[r, b] /= norm


def _neighbour_pairs(labels2d: np.ndarray) -> np.ndarray:
    """Unique pairs (i, j), i < j, of 4-connected touching regions, sorted; (M, 2) int64."""
    n = int(labels2d.max()) + 1
    keys = np.unique(_neighbour_keys(labels2d, n))        # sort + dedupe: NumPy is fine here
    return np.stack([keys // n, keys % n], axis=1)


@njit(cache=True)
def _neighbour_keys(labels2d, n):
    """Key ``i * n + j`` (i < j) of every touching pixel pair of two regions, with repeats."""
    h, w = labels2d.shape
    keys = np.empty(2 * h * w, np.int64)
    m = 0
    for y in range(h):
        for x in range(w):
            a = labels2d[y, x]
            if x + 1 < w and labels2d[y, x + 1] != a:          # right neighbour
                b = labels2d[y, x + 1]
                keys[m] = min(a, b) * n + max(a, b)
                m += 1
            if y + 1 < h and labels2d[y + 1, x] != a:          # lower neighbour
                b = labels2d[y + 1, x]
                keys[m] = min(a, b) * n + max(a, b)
                m += 1
    return keys[:m]


# --------------------------------------------------------------------------------------------
# hierarchical grouping (Numba, but meant to read like the paper's Algorithm 1)
# --------------------------------------------------------------------------------------------

@njit(cache=True)
def _similarity(i, j, size, box, colour, texture, im_size, use_c, use_t, use_s, use_f):
    """s(r_i, r_j): the sum of the strategy's measures, each in [0, 1]."""
    s = np.float64(0.0)                         # float64 in Numba and in Python alike
    if use_c:                                   # histogram intersection of colours
        acc = np.float32(0.0)
        for k in range(colour.shape[1]):
            acc += min(colour[i, k], colour[j, k])
        s += acc
    if use_t:                                   # histogram intersection of textures
        acc = np.float32(0.0)
        for k in range(texture.shape[1]):
            acc += min(texture[i, k], texture[j, k])
        s += acc
    if use_s:                                   # small regions merge first
        s += 1.0 - (size[i] + size[j]) / im_size
    if use_f:                                   # the gap the union box would leave
        bw = max(box[i, 2], box[j, 2]) - min(box[i, 0], box[j, 0])
        bh = max(box[i, 3], box[j, 3]) - min(box[i, 1], box[j, 1])
        s += 1.0 - (bw * bh - size[i] - size[j]) / im_size
    return s


@njit(cache=True)
def _before(k1, i1, j1, k2, i2, j2):
    """Heap order: (key, i, j) lexicographically smaller (key = -similarity)."""
    if k1 != k2:
        return k1 < k2
    if i1 != i2:
        return i1 < i2
    return j1 < j2


@njit(cache=True)
def _heap_push(key, hi, hj, n, k, i, j):
    """Insert (k, i, j) into the binary min-heap of n entries; returns the (grown) arrays."""
    if n == key.shape[0]:                     # full: double the capacity
        key = np.concatenate((key, np.empty_like(key)))
        hi = np.concatenate((hi, np.empty_like(hi)))
        hj = np.concatenate((hj, np.empty_like(hj)))
    c = n                                     # sift up: parent of slot c is (c - 1) // 2
    while c > 0:
        p = (c - 1) // 2
        if not _before(k, i, j, key[p], hi[p], hj[p]):
            break
        key[c], hi[c], hj[c] = key[p], hi[p], hj[p]
        c = p
    key[c], hi[c], hj[c] = k, i, j
    return key, hi, hj


@njit(cache=True)
def _heap_pop(key, hi, hj, n):
    """Remove the smallest of n entries; returns it (the caller decrements n)."""
    top_k, top_i, top_j = key[0], hi[0], hj[0]
    k, i, j = key[n - 1], hi[n - 1], hj[n - 1]  # the last entry sifts down from the root
    m = n - 1
    c = 0
    while True:                               # children of slot c: 2c + 1 and 2c + 2
        child = 2 * c + 1
        if child >= m:
            break
        if child + 1 < m and _before(key[child + 1], hi[child + 1], hj[child + 1],
                                     key[child], hi[child], hj[child]):
            child += 1
        if not _before(key[child], hi[child], hj[child], k, i, j):
            break
        key[c], hi[c], hj[c] = key[child], hi[child], hj[child]
        c = child
    if m > 0:
        key[c], hi[c], hj[c] = k, i, j
    return top_k, top_i, top_j


@njit(cache=True)
def _add_neighbour(head, node, nxt, count, r, k):
    """Prepend k to region r's neighbour list (flat linked lists); returns grown arrays."""
    if count == node.shape[0]:
        node = np.concatenate((node, np.empty_like(node)))
        nxt = np.concatenate((nxt, np.empty_like(nxt)))
    node[count] = k
    nxt[count] = head[r]
    head[r] = count
    return node, nxt


@njit(cache=True)
def _hierarchical_grouping(size0, box0, colour0, texture0, pairs, im_size,
                           use_c, use_t, use_s, use_f):
    """Greedy merging of the most similar neighbours; boxes of all 2n-1 regions + merges.

    Data structures: a binary min-heap of (-similarity, i, j) in three flat arrays, with
    lazy deletion (entries whose i or j is dead are skipped when popped); and one
    neighbour list per region as linked lists in flat arrays (``head[r]`` is the first
    entry of r, ``node[e]`` its region, ``nxt[e]`` the next entry, -1 ends the list).
    """
    n = size0.shape[0]
    cap = 2 * n - 1                           # n initial regions + n - 1 merges at most
    size = np.zeros(cap, np.int64)
    box = np.zeros((cap, 4), np.int64)
    colour = np.zeros((cap, colour0.shape[1]), np.float32)
    texture = np.zeros((cap, texture0.shape[1]), np.float32)
    size[:n] = size0
    box[:n] = box0
    colour[:n] = colour0
    texture[:n] = texture0
    alive = np.zeros(cap, np.bool_)
    alive[:n] = True
    merged = np.full((cap, 2), -1, np.int64)  # the two children of each merged region
    m = pairs.shape[0]
    head = np.full(cap, -1, np.int64)
    node = np.empty(max(2 * m, 4), np.int64)
    nxt = np.empty(max(2 * m, 4), np.int64)
    n_entries = 0
    key = np.empty(max(m, 4), np.float64)
    hi = np.empty(max(m, 4), np.int64)
    hj = np.empty(max(m, 4), np.int64)
    n_heap = 0
    for e in range(m):
        i, j = pairs[e, 0], pairs[e, 1]
        node, nxt = _add_neighbour(head, node, nxt, n_entries, i, j)
        node, nxt = _add_neighbour(head, node, nxt, n_entries + 1, j, i)
        n_entries += 2
        sim = _similarity(i, j, size, box, colour, texture, im_size, use_c, use_t, use_s, use_f)
        key, hi, hj = _heap_push(key, hi, hj, n_heap, -sim, i, j)
        n_heap += 1
    stamp = np.full(cap, -1, np.int64)        # stamp[k] == t: k already listed for t
    t = n
    while n_heap > 0:
        _, i, j = _heap_pop(key, hi, hj, n_heap)
        n_heap -= 1
        if not (alive[i] and alive[j]):       # a stale entry: i or j was merged already
            continue
        # r_t = r_i u r_j: sizes add, histograms are size-weighted means, boxes unite
        size[t] = size[i] + size[j]
        wi, wj = size[i] / size[t], size[j] / size[t]
        for k in range(colour.shape[1]):
            colour[t, k] = wi * colour[i, k] + wj * colour[j, k]
        for k in range(texture.shape[1]):
            texture[t, k] = wi * texture[i, k] + wj * texture[j, k]
        box[t, 0] = min(box[i, 0], box[j, 0])
        box[t, 1] = min(box[i, 1], box[j, 1])
        box[t, 2] = max(box[i, 2], box[j, 2])
        box[t, 3] = max(box[i, 3], box[j, 3])
        merged[t, 0] = i
        merged[t, 1] = j
        alive[i] = False
        alive[j] = False
        alive[t] = True
        # t's neighbours: the living neighbours of i and of j, each once
        stamp[i] = t
        stamp[j] = t
        for src in (i, j):
            e = head[src]
            while e >= 0:
                k = node[e]
                e = nxt[e]
                if alive[k] and stamp[k] != t:
                    stamp[k] = t
                    node, nxt = _add_neighbour(head, node, nxt, n_entries, t, k)
                    node, nxt = _add_neighbour(head, node, nxt, n_entries + 1, k, t)
                    n_entries += 2
                    sim = _similarity(k, t, size, box, colour, texture, im_size,
                                      use_c, use_t, use_s, use_f)
                    key, hi, hj = _heap_push(key, hi, hj, n_heap, -sim, k, t)
                    n_heap += 1
        t += 1
    return box[:t].copy(), merged[:t].copy()


def region_features_reference(labels: np.ndarray, colour_bins: np.ndarray,
                              texture_bins: np.ndarray):
    """Sizes, boxes, colour and texture histograms, neighbour pairs, in NumPy."""
    h, w = labels.shape
    flat = labels.reshape(-1)
    n = int(flat.max()) + 1
    size = np.bincount(flat, minlength=n).astype(np.int64)
    ys, xs = np.divmod(np.arange(h * w), w)
    box = np.empty((n, 4), np.int64)
    for r in range(n):
        sel = flat == r
        box[r] = xs[sel].min(), ys[sel].min(), xs[sel].max() + 1, ys[sel].max() + 1
    hists = []
    for bins, n_bins in ((colour_bins, COLOR_BINS), (texture_bins, TEXTURE_BINS)):
        hist = np.zeros((n, bins.shape[0] * n_bins), np.float32)
        for g in range(bins.shape[0]):
            np.add.at(hist, (flat, g * n_bins + bins[g].astype(np.int64)), 1.0)
        hists.append(hist / (size[:, None] * bins.shape[0]).astype(np.float32))
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        touch = a != b
        pairs |= set(zip(np.minimum(a, b)[touch].tolist(), np.maximum(a, b)[touch].tolist()))
    pairs = np.array(sorted(pairs), np.int64).reshape(-1, 2)
    return size, box, hists[0], hists[1], pairs


def hierarchical_grouping_reference(size0, box0, colour0, texture0, pairs, im_size,
                                    use_c, use_t, use_s, use_f):
    """The paper's Algorithm 1 in plain Python: a dict of similarities, argmax, merge.

    Ties go to the pair (i, j) with the lowest i, then the lowest j, as the heap does.
    """
    n = len(size0)
    cap = max(2 * n - 1, 1)
    size = np.zeros(cap, np.int64)
    box = np.zeros((cap, 4), np.int64)
    colour = np.zeros((cap, colour0.shape[1]), np.float32)
    texture = np.zeros((cap, texture0.shape[1]), np.float32)
    size[:n], box[:n], colour[:n], texture[:n] = size0, box0, colour0, texture0
    sim = _similarity.py_func     # the same scalar helper, interpreted

    def s(i, j):
        return sim(i, j, size, box, colour, texture, im_size, use_c, use_t, use_s, use_f)

    S = {(int(i), int(j)): s(i, j) for i, j in pairs}
    merged = [(-1, -1)] * n
    t = n
    while S:
        i, j = max(S, key=lambda p: (S[p], -p[0], -p[1]))
        size[t] = size[i] + size[j]
        wi, wj = size[i] / size[t], size[j] / size[t]          # numpy float64 scalars
        colour[t] = wi * colour[i] + wj * colour[j]
        texture[t] = wi * texture[i] + wj * texture[j]
        box[t, :2] = np.minimum(box[i, :2], box[j, :2])
        box[t, 2:] = np.maximum(box[i, 2:], box[j, 2:])
        merged.append((i, j))
        nbrs = set()
        for p in [p for p in S if i in p or j in p]:
            nbrs |= set(p) - {i, j}
            del S[p]
        for k in nbrs:
            S[(k, t)] = s(k, t)
        t += 1
    return box[:t].copy(), np.array(merged, np.int64).reshape(-1, 2)


def region_features(labels: np.ndarray, colour_bins: np.ndarray, texture_bins: np.ndarray,
                    impl: str = "numba"):
    """Features of the initial regions of an (H, W) int64 label image (ids 0..n-1).

    Returns ``(size (n,), box (n, 4), colour (n, C*25), texture (n, C*80), pairs (M, 2))``:
    pixel counts, pixel-edge boxes, L1-normalised histograms and the sorted neighbour pairs
    (i < j). ``colour_bins`` (C, H*W) and ``texture_bins`` (C*8, H*W) come from
    ``feature_bins``.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if impl == "reference":
        return region_features_reference(labels, colour_bins, texture_bins)
    if impl != "numba":
        raise ValueError(f"region_features: impl must be 'numba' or 'reference', got {impl!r}")
    n = int(labels.max()) + 1
    size, box, colour, texture = _region_features(labels.reshape(-1), labels.shape[1], n,
                                                  colour_bins, texture_bins)
    return size, box, colour, texture, _neighbour_pairs(labels)


def group_regions(features, im_size: float, similarity: str = "CTSF",
                  impl: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Hierarchical grouping of regions described by ``region_features``; see below."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"hierarchical_grouping: unknown similarity set {similarity!r}; "
                         f"choose from {sorted(SIMILARITIES)}")
    use = SIMILARITIES[similarity]
    if impl == "reference":
        return hierarchical_grouping_reference(*features, float(im_size), *use)
    if impl != "numba":
        raise ValueError(f"hierarchical_grouping: impl must be 'numba' or 'reference', "
                         f"got {impl!r}")
    return _hierarchical_grouping(*features, float(im_size), *use)


def hierarchical_grouping(labels: np.ndarray, colour_bins: np.ndarray,
                          texture_bins: np.ndarray, similarity: str = "CTSF",
                          impl: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Run one grouping of an initial segmentation.

    Parameters
    ----------
    labels : (H, W) int64 region ids 0..n-1 (e.g. from ``felzenszwalb``).
    colour_bins : (C, H*W) uint8 colour bin of each pixel and channel (0..24).
    texture_bins : (C*8, H*W) uint8 texture bin of each pixel, channel and orientation (0..9).
    similarity : a key of ``SIMILARITIES``.
    impl : 'numba' or 'reference' (both the features and the grouping).

    Returns
    -------
    boxes : (n + merges, 4) int64 pixel-edge boxes of every region in order of creation.
    merged : (n + merges, 2) int64 children of each merged region (-1 for initial ones).
    """
    features = region_features(labels, colour_bins, texture_bins, impl)
    return group_regions(features, labels.shape[0] * labels.shape[1], similarity, impl)


# --------------------------------------------------------------------------------------------
# the public API
# --------------------------------------------------------------------------------------------

@dataclass
class SelectiveSearch:
    """Selective Search with a fixed strategy; call it on RGB uint8 images.

    Parameters
    ----------
    strategy : 'single', 'fast' or 'quality' (the paper's), used for every field left None.
    color_spaces, ks, similarities : override the strategy's lists (colour spaces from
        ``COLOR_SPACES``, Felzenszwalb k values, keys of ``SIMILARITIES``).
    sigma : Felzenszwalb smoothing (0.8 in the paper).
    min_size : Felzenszwalb min_size; None means ``min_size = k`` (the authors' code).
    seed : seed of the random ranking.
    num_threads : Numba threads for the call (None: Numba's current setting). The parallel
        loops here are short (about 16 per image for 'fast'), so on a busy machine, where
        each fork/join can cost milliseconds, ``num_threads=1`` is much faster; the
        setting is thread-local and restored after the call.

    After a call, ``segmentations`` holds the (colour space, k, labels) of the initial
    regions, for pictures.
    """

    strategy: str = "fast"
    color_spaces: tuple | None = None
    ks: tuple | None = None
    similarities: tuple | None = None
    sigma: float = 0.8
    min_size: int | None = None
    seed: int = 0
    num_threads: int | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"selective_search: unknown strategy {self.strategy!r}; "
                             f"choose from {sorted(STRATEGIES)}")
        spaces, ks, sims = STRATEGIES[self.strategy]
        self.color_spaces = tuple(self.color_spaces or spaces)
        self.ks = tuple(self.ks or ks)
        self.similarities = tuple(self.similarities or sims)
        for cs in self.color_spaces:
            if cs not in COLOR_SPACES:
                raise ValueError(f"selective_search: unknown colour space {cs!r}; "
                                 f"choose from {COLOR_SPACES}")
        for s in self.similarities:
            if s not in SIMILARITIES:
                raise ValueError(f"selective_search: unknown similarity set {s!r}; "
                                 f"choose from {sorted(SIMILARITIES)}")
        for k in self.ks:
            if not (isinstance(k, (int, float, np.integer, np.floating)) and k >= 0
                    and math.isfinite(k)):
                raise ValueError(f"selective_search: every k must be a number >= 0, got {k!r}")
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise ValueError(f"selective_search: sigma must be >= 0, got {self.sigma}")
        if self.min_size is not None and (int(self.min_size) != self.min_size
                                          or self.min_size < 0):
            raise ValueError(f"selective_search: min_size must be an integer >= 0 or None, "
                             f"got {self.min_size}")
        if self.num_threads is not None and (int(self.num_threads) != self.num_threads
                                             or self.num_threads < 1):
            raise ValueError(f"selective_search: num_threads must be an integer >= 1 or "
                             f"None, got {self.num_threads}")
        self.segmentations: list[tuple[str, float, np.ndarray]] = []

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB image -> (K, 4) float32 xyxy boxes, best ranked first."""
        _validate_image(image)
        if self.num_threads is None:
            return self._run(image)
        before = numba.get_num_threads()
        numba.set_num_threads(min(int(self.num_threads), numba.config.NUMBA_NUM_THREADS))
        try:
            return self._run(image)
        finally:
            numba.set_num_threads(before)

    def _run(self, image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        rng = np.random.default_rng(self.seed)
        all_boxes, all_rank = [], []
        self.segmentations = []
        for cs in self.color_spaces:
            img = convert_color(image, cs)                      # (H, W, C) uint8
            a, b, wt = build_graph(img.astype(np.float32), self.sigma)
            colour_bins, texture_bins = feature_bins(img)
            for k in self.ks:
                min_size = int(k) if self.min_size is None else int(self.min_size)
                labels = segment_graph(h, w, a, b, wt, float(k), min_size)
                self.segmentations.append((cs, k, labels))
                features = region_features(labels, colour_bins, texture_bins)
                for sim in self.similarities:
                    boxes, _ = group_regions(features, h * w, sim)
                    # position in the hierarchy: N for the first region ... 1 for the last
                    position = np.arange(len(boxes), 0, -1, dtype=np.float64)
                    all_rank.append(position * rng.random(len(boxes)))
                    all_boxes.append(boxes)
        boxes = np.concatenate(all_boxes)
        order = np.argsort(np.concatenate(all_rank), kind="stable")
        boxes = boxes[order]
        _, first = np.unique(boxes, axis=0, return_index=True)   # drop exact duplicates
        return boxes[np.sort(first)].astype(np.float32)


def _validate_image(image) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"selective_search: image must be a numpy array, "
                        f"got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"selective_search: image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"selective_search: image must have shape (H, W, 3) with H, W >= 1, "
                         f"got {image.shape}")


def selective_search(image_rgb_uint8: np.ndarray, strategy: str = "fast", seed: int = 0,
                     **kwargs) -> np.ndarray:
    """Selective Search object proposals for one RGB image.

    Parameters
    ----------
    image_rgb_uint8 : (H, W, 3) uint8 RGB image.
    strategy : 'single', 'fast' (default) or 'quality', as in the paper.
    seed : seed of the random part of the ranking (same seed, same boxes).
    **kwargs : ``color_spaces``, ``ks``, ``similarities``, ``sigma``, ``min_size``,
        ``num_threads``: see ``SelectiveSearch``.

    Returns
    -------
    boxes : (K, 4) float32 ``(x1, y1, x2, y2)`` on pixel edges, best ranked first, no two
        equal.
    """
    return SelectiveSearch(strategy=strategy, seed=seed, **kwargs)(image_rgb_uint8)
