"""Selective Search's array work (Uijlings et al., IJCV 2013): the reference, read it first.

Given an over-segmentation of an image into initial regions R (Felzenszwalb's, one per
colour space and ``k``), Selective Search groups regions bottom-up and proposes the box of
every region it ever holds. This module is the specification of the three array steps:

1. ``feature_bins(img)``: per pixel and channel of a (H, W, C) uint8 image,
   - the colour bin ``value * 25 // 256`` (25 bins per channel), and
   - the texture bins: per channel, Gaussian derivatives (sigma = 1) in 8 orientations,
     each rectified and binned into 10 bins. The derivative in direction theta is steered
     from the two axis derivatives, ``cos(theta) Gx + sin(theta) Gy`` (a Gaussian first
     derivative is steerable), for theta = 0, 45, ..., 315 degrees; rectifying
     (``max(., 0)``) makes opposite orientations distinct. Each (channel, orientation)
     response is scaled by its maximum over the image before binning, so the 10 bins span
     the response range.
2. ``region_features(labels, colour_bins, texture_bins)``: every region r gets
   - ``size(r)``: its pixel count, and its bounding box on pixel edges
     ``(xmin, ymin, xmax + 1, ymax + 1)``;
   - a colour histogram ``C(r)``: 25 bins per channel, L1-normalised over all channels;
   - a texture histogram ``T(r)``: 10 bins per (channel, orientation), L1-normalised;
   - and the neighbour graph: regions i < j are neighbours when some pixel of i touches a
     pixel of j horizontally or vertically (4-connectivity).
3. ``group_regions(features, similarity)``: the paper's Algorithm 1.
   Similarity of neighbours is a sum of the measures the strategy switches on (each in
   [0, 1]):
   - colour  ``s_C = sum_k min(C_i[k], C_j[k])`` (histogram intersection);
   - texture ``s_T = sum_k min(T_i[k], T_j[k])``;
   - size    ``s_S = 1 - (size_i + size_j) / size(image)`` (merge small regions first);
   - fill    ``s_F = 1 - (size(BB_ij) - size_i - size_j) / size(image)``, with BB_ij the
     box around both (merge regions that fill each other's gaps).
   Greedy merging: take the most similar pair (i, j) (ties: lowest i, then lowest j),
   replace it by t = i u j with ``size_t = size_i + size_j``, ``C_t = (size_i C_i + size_j
   C_j) / size_t`` (the same for T; exact, since the histograms are normalised counts), the
   union box; t's neighbours are those of i and j. Remove the similarities involving i or
   j, add t's. Repeat until no neighbours are left (one region per connected part of the
   image: 2n - 1 regions for a connected image). Returns the boxes of every region in
   order of creation (initial ones first) and the two children of each merged one.

Two named tables travel between the steps and into the compiled versions (Numba accepts
NamedTuples), so that a reader sees what each array is: ``RegionFeatures`` (what step 2
returns) and ``Similarity`` (which measures step 3 sums, and the image size that
normalises ``s_S`` and ``s_F``). ``similarity(i, j, regions, measures)`` is the one scalar
helper, written here in plain Python and compiled by ``cpu.py``.

The versions share these signatures; this one is NumPy and plain Python (a dict of
similarities and ``max``), slow, for small images and as the test oracle. Its float32
operations are those of the Numba version in the same order, so both return identical
bins, features, boxes and merge trees.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

COLOR_BINS = 25        # colour histogram bins per channel
TEXTURE_BINS = 10      # texture histogram bins per (channel, orientation)
ORIENTATIONS = 8       # derivative directions 0, 45, ..., 315 degrees
TEXTURE_SIGMA = 1.0    # width of the Gaussian derivative filters


class RegionFeatures(NamedTuple):
    """The initial regions of one segmentation, n of them, and their neighbour pairs."""
    size: np.ndarray       # (n,) int64 pixel counts
    box: np.ndarray        # (n, 4) int64 pixel-edge boxes (xmin, ymin, xmax + 1, ymax + 1)
    colour: np.ndarray     # (n, C * 25) float32 colour histograms, rows sum to 1
    texture: np.ndarray    # (n, C * 80) float32 texture histograms, rows sum to 1
    pairs: np.ndarray      # (M, 2) int64 touching regions (i, j), i < j, sorted


class Similarity(NamedTuple):
    """Which measures s(r_i, r_j) sums, and the image size (pixels) that s_S and s_F use."""
    colour: bool
    texture: bool
    size: bool
    fill: bool
    image_size: float


# ------------------------------------------------------------------- 1. per-pixel feature bins
def gaussian_kernels(sigma: float = TEXTURE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Sampled Gaussian g and its derivative g' on [-3 sigma, 3 sigma], float32."""
    r = math.ceil(3 * sigma)
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    dg = -x / sigma ** 2 * g
    return g.astype(np.float32), dg.astype(np.float32)


def colour_bins(img: np.ndarray) -> np.ndarray:
    """(C, H*W) uint8 colour bins ``value * 25 // 256`` of a (H, W, C) uint8 image."""
    h, w, c = img.shape
    return np.ascontiguousarray(
        (img.reshape(h * w, c).T.astype(np.uint16) * COLOR_BINS // 256).astype(np.uint8))


def correlate(img: np.ndarray, kern: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along rows (axis=1) or columns (axis=0), borders clamped: tap t reads
    index x + t; summed tap by tap, the order of the Numba loops."""
    size, r = img.shape[axis], kern.shape[0] // 2
    idx = np.arange(size)
    acc = np.zeros_like(img)
    for t in range(-r, r + 1):
        acc = acc + kern[t + r] * np.take(img, np.clip(idx + t, 0, size - 1), axis=axis)
    return acc


def texture_bins(gx: np.ndarray, gy: np.ndarray, n_orient: int, n_bins: int) -> np.ndarray:
    """(C * n_orient, H*W) uint8: row ``ch * n_orient + o`` holds the bins of the rectified
    derivative ``max(cos(th) gx + sin(th) gy, 0)``, ``th = 2 pi o / n_orient``, scaled by
    that row's maximum over the image; gx, gy are (H, W, C) float32."""
    h, w, c = gx.shape
    out = np.zeros((c * n_orient, h * w), np.uint8)
    for g in range(c * n_orient):              # g = (ch, o) indexes one output row
        ch, th = g // n_orient, 2.0 * np.pi * (g % n_orient) / n_orient
        resp = np.float32(np.cos(th)) * gx[:, :, ch] + np.float32(np.sin(th)) * gy[:, :, ch]
        resp = np.maximum(resp, np.float32(0.0)).reshape(-1)
        peak = resp.max()
        if peak > 0:
            out[g] = np.minimum((resp * (n_bins / float(peak))).astype(np.int64), n_bins - 1)
    return out


def feature_bins(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour bins (C, H*W) and texture bins (C*8, H*W), uint8, of a (H, W, C) uint8 image."""
    g, dg = gaussian_kernels()
    f = np.ascontiguousarray(img, dtype=np.float32)
    gx = correlate(correlate(f, dg, 1), g, 0)     # d/dx: g' along rows, then g down columns
    gy = correlate(correlate(f, g, 1), dg, 0)     # d/dy: g along rows, then g' down columns
    return colour_bins(img), texture_bins(gx, gy, ORIENTATIONS, TEXTURE_BINS)


# ------------------------------------------------------------------ 2. features of the regions
def region_features(labels: np.ndarray, colour_bins: np.ndarray,
                    texture_bins: np.ndarray) -> RegionFeatures:
    """Sizes, boxes, histograms and neighbour pairs of the regions of an (H, W) int64 label
    image with ids 0..n-1 (every id used); bins from ``feature_bins``."""
    h, w = labels.shape
    flat = labels.reshape(-1)
    n = int(flat.max()) + 1
    size = np.bincount(flat, minlength=n).astype(np.int64)
    ys, xs = np.divmod(np.arange(h * w), w)                  # pixel p = y * w + x
    box = np.empty((n, 4), np.int64)
    for r in range(n):
        sel = flat == r
        box[r] = xs[sel].min(), ys[sel].min(), xs[sel].max() + 1, ys[sel].max() + 1
    hists = []
    for bins, n_bins in ((colour_bins, COLOR_BINS), (texture_bins, TEXTURE_BINS)):
        hist = np.zeros((n, bins.shape[0] * n_bins), np.float32)
        for g in range(bins.shape[0]):                       # channel g: columns g*n_bins..
            np.add.at(hist, (flat, g * n_bins + bins[g].astype(np.int64)), 1.0)
        # L1 over all channels: a region of s pixels has s counts per channel
        hists.append(hist / (size[:, None] * bins.shape[0]).astype(np.float32))
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        touch = a != b                                       # right and lower neighbours
        pairs |= set(zip(np.minimum(a, b)[touch].tolist(), np.maximum(a, b)[touch].tolist()))
    pairs = np.array(sorted(pairs), np.int64).reshape(-1, 2)
    return RegionFeatures(size, box, hists[0], hists[1], pairs)


# ------------------------------------------------------------------- 3. hierarchical grouping
def similarity(i, j, regions, measures):
    """s(r_i, r_j): the sum of the measures switched on in ``measures`` (a ``Similarity``),
    each in [0, 1]; ``regions`` has the fields size, box, colour, texture. Plain Python,
    compiled by ``cpu.py`` (float64 sums in both, float32 histogram intersections)."""
    size, box, colour, texture = regions.size, regions.box, regions.colour, regions.texture
    s = np.float64(0.0)
    if measures.colour:                         # histogram intersection of colours
        acc = np.float32(0.0)
        for k in range(colour.shape[1]):
            acc += min(colour[i, k], colour[j, k])
        s += acc
    if measures.texture:                        # histogram intersection of textures
        acc = np.float32(0.0)
        for k in range(texture.shape[1]):
            acc += min(texture[i, k], texture[j, k])
        s += acc
    if measures.size:                           # small regions merge first
        s += 1.0 - (size[i] + size[j]) / measures.image_size
    if measures.fill:                           # the gap the union box would leave
        bw = max(box[i, 2], box[j, 2]) - min(box[i, 0], box[j, 0])
        bh = max(box[i, 3], box[j, 3]) - min(box[i, 1], box[j, 1])
        s += 1.0 - (bw * bh - size[i] - size[j]) / measures.image_size
    return s


def group_regions(features: RegionFeatures,
                  measures: Similarity) -> tuple[np.ndarray, np.ndarray]:
    """The paper's Algorithm 1: a dict of similarities, argmax, merge.

    Returns ``boxes`` (n + merges, 4) int64 in order of creation and ``merged`` (n +
    merges, 2) int64, the children of each merged region (-1 for the initial ones).
    """
    n = len(features.size)
    cap = max(2 * n - 1, 1)                     # n initial regions + n - 1 merges at most
    size = np.zeros(cap, np.int64)
    box = np.zeros((cap, 4), np.int64)
    colour = np.zeros((cap, features.colour.shape[1]), np.float32)
    texture = np.zeros((cap, features.texture.shape[1]), np.float32)
    size[:n], box[:n] = features.size, features.box
    colour[:n], texture[:n] = features.colour, features.texture
    regions = RegionFeatures(size, box, colour, texture, features.pairs)

    S = {(int(i), int(j)): similarity(i, j, regions, measures) for i, j in features.pairs}
    merged = [(-1, -1)] * n
    t = n
    while S:
        i, j = max(S, key=lambda p: (S[p], -p[0], -p[1]))    # ties: lowest (i, j)
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
            S[(k, t)] = similarity(k, t, regions, measures)
        t += 1
    return box[:t].copy(), np.array(merged, np.int64).reshape(-1, 2)
