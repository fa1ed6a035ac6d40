"""Box coding of Faster R-CNN (R-CNN's bounding-box regression targets), as torchvision's
``BoxCoder``.

A ground-truth box ``g`` is encoded relative to a reference (anchor/proposal) box ``p``
(widths ``w = x2 - x1``, centres ``cx = x1 + w / 2``), with weights ``(wx, wy, ww, wh)``::

    dx = wx * (g_cx - p_cx) / p_w        dy = wy * (g_cy - p_cy) / p_h
    dw = ww * log(g_w / p_w)             dh = wh * log(g_h / p_h)

Decoding inverts it, after clamping ``dw, dh`` to ``bbox_xform_clip = log(1000 / 16)``
so that ``exp`` cannot overflow for a wild prediction (a box at most 1000/16 times its
reference)::

    cx = dx / wx * p_w + p_cx     w = exp(min(dw / ww, clip)) * p_w
    x1 = cx - w / 2, x2 = cx + w / 2 (likewise y)

So ``decode(encode(g, p), p) == g`` up to rounding. Faster R-CNN uses weights
(1, 1, 1, 1) in the RPN and (10, 10, 5, 5) in the box head. Works on arrays (NumPy or
CuPy) and Tensors (no gradient: codes serve as targets, and decoding as post-processing).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.ops._utils import unwrap, wrap

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


class BoxCoder:
    """Encode boxes as (dx, dy, dw, dh) relative to reference boxes, and decode them back."""

    def __init__(self, weights: Sequence[float], bbox_xform_clip: float = BBOX_XFORM_CLIP):
        if len(weights) != 4:
            raise ValueError(f"weights must be 4 numbers (wx, wy, ww, wh), got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes: list, proposals: list) -> tuple:
        """Per-image targets: encode_single on each (gt boxes, proposals) pair."""
        sizes = [len(unwrap(b)[0]) for b in reference_boxes]
        ref = [unwrap(b) for b in reference_boxes]
        props = [unwrap(p)[0] for p in proposals]
        xp = get_array_module(ref[0][0]) if ref else np
        codes = self.encode_single(xp.concatenate([r for r, _ in ref]), xp.concatenate(props))
        out, start = [], 0
        for (_, t), n in zip(ref, sizes):
            out.append(wrap(codes[start:start + n], t))
            start += n
        return tuple(out)

    def encode_single(self, reference_boxes, proposals):
        """(N, 4) gt boxes and (N, 4) proposals -> (N, 4) codes (dx, dy, dw, dh)."""
        g, t = unwrap(reference_boxes)
        p, _ = unwrap(proposals)
        xp = get_array_module(g)
        g, p = xp.asarray(g), xp.asarray(p, dtype=xp.asarray(g).dtype)
        if g.shape != p.shape or g.ndim != 2 or g.shape[1] != 4:
            raise ValueError(f"reference_boxes {tuple(g.shape)} and proposals {tuple(p.shape)} "
                             "must both be (N, 4)")
        wx, wy, ww, wh = self.weights
        pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
        pcx, pcy = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
        gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        gcx, gcy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
        codes = xp.stack([wx * (gcx - pcx) / pw, wy * (gcy - pcy) / ph,
                          ww * xp.log(gw / pw), wh * xp.log(gh / ph)], axis=1)
        return wrap(codes.astype(g.dtype, copy=False), t)

    def decode(self, rel_codes, boxes: list):
        """Decode (sum K_i, 4 * C) codes against the concatenated per-image boxes.

        Returns (sum K_i, C, 4) boxes (torchvision's layout).
        """
        parts = [unwrap(b)[0] for b in boxes]
        codes, t = unwrap(rel_codes)
        xp = get_array_module(codes)
        concat = xp.concatenate([xp.asarray(b) for b in parts]) if parts else xp.zeros((0, 4))
        pred = self.decode_single(codes, concat)
        pred = unwrap(pred)[0]
        if concat.shape[0] > 0:
            pred = pred.reshape(concat.shape[0], -1, 4)
        return wrap(pred, t)

    def decode_single(self, rel_codes, boxes):
        """(N, 4 * C) codes and (N, 4) reference boxes -> (N, 4 * C) boxes xyxy."""
        codes, t = unwrap(rel_codes)
        b, _ = unwrap(boxes)
        xp = get_array_module(codes)
        codes = xp.asarray(codes)
        b = xp.asarray(b, dtype=codes.dtype)
        if codes.ndim != 2 or codes.shape[1] % 4 or b.ndim != 2 or b.shape[1] != 4 \
                or b.shape[0] != codes.shape[0]:
            raise ValueError(f"rel_codes {tuple(codes.shape)} must be (N, 4 * C) for boxes "
                             f"(N, 4), got boxes {tuple(b.shape)}")
        wx, wy, ww, wh = self.weights
        widths, heights = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        ctr_x, ctr_y = b[:, 0] + 0.5 * widths, b[:, 1] + 0.5 * heights
        dx, dy = codes[:, 0::4] / wx, codes[:, 1::4] / wy                  # (N, C)
        dw = xp.minimum(codes[:, 2::4] / ww, self.bbox_xform_clip)
        dh = xp.minimum(codes[:, 3::4] / wh, self.bbox_xform_clip)
        cx = dx * widths[:, None] + ctr_x[:, None]
        cy = dy * heights[:, None] + ctr_y[:, None]
        half_w = 0.5 * xp.exp(dw) * widths[:, None]
        half_h = 0.5 * xp.exp(dh) * heights[:, None]
        pred = xp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=2)
        return wrap(pred.reshape(codes.shape[0], -1).astype(codes.dtype, copy=False), t)
