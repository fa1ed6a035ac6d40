"""COCO mask formats: run-length encoding (RLE) and polygons, decoded and encoded by our own code.

COCO stores an instance mask in one of three forms:

* **polygons** ``[[x0, y0, x1, y1, ...], ...]`` in pixel coordinates (several parts are
  united);
* **uncompressed RLE** ``{'size': [h, w], 'counts': [c0, c1, c2, ...]}``;
* **compressed RLE** ``{'size': [h, w], 'counts': 'PRS0...'}`` (a string, or bytes).

Run-length encoding reads the mask in **column-major** (Fortran) order, i.e. pixel
``(y, x)`` is at flat index ``x * h + y``; ``counts`` alternates run lengths of 0s and 1s
and always starts with a run of 0s (possibly of length 0). Example, the 3x2 mask
``[[0, 1], [1, 1], [0, 0]]`` reads column by column as ``0 1 0 | 1 1 0`` -> counts
``[1, 1, 1, 2, 1]``.

The compressed string (pycocotools' ``rleToString``) stores each count as a signed
variable-length integer, 5 bits per character (plus a continuation bit 0x20, the sign
carried by bit 0x10 of the last character), offset by 48 to stay printable. From the
fourth count on, the *difference* to the count two places before is stored (runs of 0s
and of 1s each tend to be similar), so small numbers dominate.

Polygons are rasterised exactly like pycocotools' ``rleFrPoly``: vertices are scaled by 5
and rounded, the boundary is traced densely with a DDA line walk, the points where the
(up-sampled) boundary crosses a pixel column centre give, per column, the rows where the
mask switches on or off; sorting those flat indices ``x * h + y`` and differencing gives
the RLE counts directly. Matching that rule bit for bit matters because COCO areas and
mask IoUs are computed on these rasterisations.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit


# ----------------------------------------------------------------------------- RLE <-> mask
def mask_to_counts(mask: np.ndarray) -> np.ndarray:
    """Uncompressed RLE counts (int64) of a 2-D binary mask, column-major, 0-run first."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    flat = (mask.T.reshape(-1) != 0).astype(np.int8)       # column-major: index x * h + y
    if flat.size == 0:
        return np.zeros(1, np.int64)
    change = np.flatnonzero(np.diff(flat)) + 1               # first index of each new run
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).astype(np.int64)
    if flat[0] == 1:                                         # counts start with a 0-run
        counts = np.concatenate(([0], counts))
    return counts


def counts_to_mask(counts: np.ndarray, h: int, w: int) -> np.ndarray:
    """Decode uncompressed RLE counts to a uint8 (h, w) mask."""
    counts = np.asarray(counts, np.int64)
    if counts.size and (counts < 0).any():
        raise ValueError("RLE counts must be non-negative")
    if int(counts.sum()) != h * w:
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, but size {h}x{w} "
                         f"has {h * w} pixels")
    values = (np.arange(counts.size) % 2).astype(np.uint8)   # 0, 1, 0, 1 ...
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def counts_to_string(counts) -> str:
    """Compress RLE counts to the COCO string form (pycocotools ``rleToString``)."""
    counts = [int(c) for c in counts]
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]                               # delta to the same-kind run
        more = True
        while more:
            c = x & 0x1F
            x >>= 5                                          # arithmetic shift (sign kept)
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(s: str | bytes) -> np.ndarray:
    """Decompress a COCO RLE string to int64 counts (pycocotools ``rleFrString``)."""
    if isinstance(s, bytes):
        s = s.decode("ascii")
    counts: list[int] = []
    p = 0
    n = len(s)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError(f"truncated compressed RLE string {s[:40]!r}")
            c = ord(s[p]) - 48
            if c < 0 or c > 63:
                raise ValueError(f"invalid character {s[p]!r} in compressed RLE string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)                           # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return np.asarray(counts, np.int64)


# ----------------------------------------------------------------------------- polygons
@njit(cache=True)
def _poly_counts(xy, h, w):  # pragma: no cover - compiled
    """pycocotools' rleFrPoly: RLE counts of one polygon (xy: float64 (2k,))."""
    k = xy.size // 2
    scale = 5.0
    x = np.empty(k + 1, np.int64)
    y = np.empty(k + 1, np.int64)
    for j in range(k):
        x[j] = int(scale * xy[2 * j] + 0.5)                  # C cast: truncation toward 0
        y[j] = int(scale * xy[2 * j + 1] + 0.5)
    x[k] = x[0]
    y[k] = y[0]
    m = 0
    for j in range(k):
        m += max(abs(x[j] - x[j + 1]), abs(y[j] - y[j + 1])) + 1
    u = np.empty(m, np.int64)
    v = np.empty(m, np.int64)
    m = 0
    # trace each edge with a DDA walk in the up-sampled grid (one point per major-axis step)
    for j in range(k):
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx = abs(xe - xs)
        dy = abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe = xe, xs
            ys, ye = ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx > 0 else 0.0
            for d in range(dx + 1):
                t = dx - d if flip else d
                u[m] = t + xs
                v[m] = int(ys + s * t + 0.5)
                m += 1
        else:
            s = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v[m] = t + ys
                u[m] = int(xs + s * t + 0.5)
                m += 1
    # keep the points where the boundary crosses a pixel-column centre; down-sample
    kk = m
    xo = np.empty(kk, np.int64)
    yo = np.empty(kk, np.int64)
    m = 0
    for j in range(1, kk):
        if u[j] != u[j - 1]:
            xd = float(u[j] if u[j] < u[j - 1] else u[j] - 1)
            xd = (xd + 0.5) / scale - 0.5
            if math.floor(xd) != xd or xd < 0 or xd > w - 1:
                continue
            yd = float(v[j] if v[j] < v[j - 1] else v[j - 1])
            yd = (yd + 0.5) / scale - 0.5
            if yd < 0:
                yd = 0.0
            elif yd > h:
                yd = float(h)
            yd = math.ceil(yd)
            xo[m] = int(xd)
            yo[m] = int(yd)
            m += 1
    # each crossing toggles the mask at flat index x * h + y: sort, difference -> counts
    a = np.empty(m + 1, np.int64)
    for j in range(m):
        a[j] = xo[j] * h + yo[j]
    a[m] = h * w
    a.sort()
    prev = 0
    for j in range(m + 1):
        t = a[j]
        a[j] -= prev
        prev = t
    b = np.empty(m + 1, np.int64)
    nb = 0
    j = 0
    b[nb] = a[j]
    nb += 1
    j += 1
    while j < m + 1:
        if a[j] > 0:
            b[nb] = a[j]
            nb += 1
            j += 1
        else:                                                # two toggles at one pixel cancel
            j += 1
            if j < m + 1:
                b[nb - 1] += a[j]
                j += 1
    return b[:nb].copy()


def polygon_to_counts(polygon, h: int, w: int) -> np.ndarray:
    """RLE counts of one polygon ``[x0, y0, x1, y1, ...]`` rasterised as pycocotools does."""
    xy = np.asarray(polygon, np.float64).reshape(-1)
    if xy.size % 2 or xy.size < 4:
        raise ValueError(f"a polygon needs an even number (>= 4) of coordinates, "
                         f"got {xy.size}")
    if not np.isfinite(xy).all():
        raise ValueError("polygon coordinates must be finite")
    return _poly_counts(xy, int(h), int(w))


def polygons_to_mask(polygons, h: int, w: int) -> np.ndarray:
    """Union of the polygons' masks, uint8 (h, w)."""
    mask = np.zeros((h, w), np.uint8)
    for poly in polygons:
        mask |= counts_to_mask(polygon_to_counts(poly, h, w), h, w)
    return mask


# ----------------------------------------------------------------------------- any form
def _rle_size(rle: dict) -> tuple[int, int]:
    size = rle.get("size")
    if size is None or len(size) != 2:
        raise ValueError(f"RLE needs 'size': [h, w], got {size!r}")
    return int(size[0]), int(size[1])


def segmentation_to_counts(segm: Any, h: int, w: int) -> np.ndarray:
    """Uncompressed counts of a COCO segmentation (polygons, RLE or compressed RLE)."""
    if isinstance(segm, dict):
        rh, rw = _rle_size(segm)
        if (rh, rw) != (h, w):
            raise ValueError(f"RLE size {[rh, rw]} differs from the image size {[h, w]}")
        counts = segm.get("counts")
        if isinstance(counts, (str, bytes)):
            return string_to_counts(counts)
        if counts is None:
            raise ValueError("RLE without 'counts'")
        counts = np.asarray(counts, np.int64)
        if counts.sum() != h * w:
            raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {h * w}")
        return counts
    if isinstance(segm, (list, tuple)):
        if len(segm) == 1:
            return polygon_to_counts(segm[0], h, w)
        return mask_to_counts(polygons_to_mask(segm, h, w))
    raise TypeError(f"segmentation must be a list of polygons or an RLE dict, "
                    f"got {type(segm).__name__}")


def segmentation_to_mask(segm: Any, h: int, w: int) -> np.ndarray:
    """Decode any COCO segmentation to a uint8 (h, w) mask."""
    return counts_to_mask(segmentation_to_counts(segm, h, w), h, w)


def encode(mask: np.ndarray, compressed: bool = True) -> dict:
    """RLE of a binary (h, w) mask: ``{'size': [h, w], 'counts': str | list[int]}``."""
    mask = np.asarray(mask)
    counts = mask_to_counts(mask)
    h, w = mask.shape
    return {"size": [int(h), int(w)],
            "counts": counts_to_string(counts) if compressed else [int(c) for c in counts]}


def decode(rle: dict) -> np.ndarray:
    """Decode an RLE dict (compressed or not) to a uint8 (h, w) mask."""
    h, w = _rle_size(rle)
    return segmentation_to_mask(rle, h, w)


def counts_area(counts: np.ndarray) -> int:
    """Number of foreground pixels: the sum of the odd-position runs."""
    return int(np.asarray(counts)[1::2].sum())


def counts_to_bbox(counts: np.ndarray, h: int) -> list[float]:
    """Tight box ``[x, y, w, h]`` of an RLE, as pycocotools ``toBbox`` ([0]*4 when empty)."""
    counts = np.asarray(counts, np.int64)
    m = (counts.size // 2) * 2                               # ignore a trailing 0-run
    if m == 0:
        return [0.0, 0.0, 0.0, 0.0]
    j = np.arange(m)
    t = np.cumsum(counts[:m]) - (j % 2)                      # first / last index of fg runs
    y, x = t % h, t // h
    x0, x1, y0, y1 = x.min(), x.max(), y.min(), y.max()
    if (x[1::2] > x[0::2]).any():                            # a run wraps to a new column
        y0, y1 = 0, h - 1
    return [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]
