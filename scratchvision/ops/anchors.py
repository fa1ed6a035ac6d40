"""Anchor (prior/default) boxes, as torchvision's ``AnchorGenerator`` and
``DefaultBoxGenerator``.

**AnchorGenerator** (Faster R-CNN, Ren et al. 2015). For each feature map level with
sizes ``S`` and aspect ratios ``A`` (ratio = height / width), the cell anchors centred
at 0 are, for every ratio ``a`` (outer) and size ``s`` (inner)::

    h_ratio = sqrt(a),  w_ratio = 1 / h_ratio
    w = w_ratio * s,    h = h_ratio * s           (so w * h = s^2 and h / w = a)
    cell anchor = round([-w, -h, w, h] / 2)       (round half to even, as torch.round)

The level's stride is ``image_size // feature_size`` (per axis, integer division) and its
anchors are every cell anchor shifted to every grid point ``(j * stride_w, i * stride_h)``,
ordered by grid row, grid column, then cell anchor. The levels are concatenated; every
image of the batch gets the same anchors. Arithmetic in float32, as torchvision.

**DefaultBoxGenerator** (SSD, Liu et al. 2016). With ``m`` feature maps the scales are
``s_k = min_ratio + (max_ratio - min_ratio) * k / (m - 1)``, k = 0..m-1, plus ``s_m = 1``
(or ``[min_ratio, max_ratio]`` for one map, or the given ``scales``). Level k has the
(width, height) pairs (relative to the image)::

    (s_k, s_k), (s'_k, s'_k) with s'_k = sqrt(s_k * s_{k+1}),
    then (s_k sqrt(r), s_k / sqrt(r)) and (s_k / sqrt(r), s_k sqrt(r)) for each ratio r

clipped to [0, 1] when ``clip``. Centres are ``((j + 0.5) / f_w, (i + 0.5) / f_h)`` with
``f = image_size / step`` when ``steps`` are given, else the feature map size. Boxes are
returned in image pixels, xyxy: ``(centre -/+ wh / 2) * (W, H)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.nn.module import Module
from scratchvision.ops._utils import unwrap, wrap


def _image_size(images):
    """(H, W) of the padded batch: an (N, C, H, W) array/Tensor or an ImageList-like."""
    tensors = getattr(images, "tensors", images)
    arr, _ = unwrap(tensors)
    if len(arr.shape) < 2:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(arr.shape)}")
    n = len(getattr(images, "image_sizes", [])) or (arr.shape[0] if len(arr.shape) == 4 else 1)
    return int(arr.shape[-2]), int(arr.shape[-1]), n


class AnchorGenerator(Module):
    """Faster R-CNN anchors: ``sizes[l] x aspect_ratios[l]`` per feature map level l.

    Parameters
    ----------
    sizes : tuple per level of anchor sizes (square side in pixels), e.g. ((128, 256, 512),).
    aspect_ratios : tuple per level of height/width ratios, e.g. ((0.5, 1.0, 2.0),).
    """

    def __init__(self, sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)) -> None:
        super().__init__()
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"sizes ({len(sizes)} levels) and aspect_ratios "
                             f"({len(aspect_ratios)} levels) must have one entry per level")
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        self.cell_anchors = [self.generate_anchors(s, a) for s, a in zip(sizes, aspect_ratios)]

    @staticmethod
    def generate_anchors(scales: Sequence[float], aspect_ratios: Sequence[float],
                         dtype=np.float32) -> np.ndarray:
        """(len(ratios) * len(scales), 4) zero-centred anchors (see module docstring)."""
        scales = np.asarray(scales, dtype)
        ratios = np.asarray(aspect_ratios, dtype)
        h_ratios = np.sqrt(ratios)
        w_ratios = (1 / h_ratios).astype(dtype)
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        base = np.stack([-ws, -hs, ws, hs], axis=1) / dtype(2)
        return np.round(base).astype(dtype)

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes, strides, xp=np) -> list:
        """Anchors of every level: (h * w * A, 4) each, for grids (h, w) and strides (sh, sw)."""
        if len(grid_sizes) != len(self.cell_anchors):
            raise ValueError(f"{len(grid_sizes)} feature maps given but the generator has "
                             f"{len(self.cell_anchors)} levels of sizes/aspect_ratios")
        out = []
        for (gh, gw), (sh, sw), base in zip(grid_sizes, strides, self.cell_anchors):
            shifts_x = np.arange(gw, dtype=np.float32) * sw
            shifts_y = np.arange(gh, dtype=np.float32) * sh
            sy, sx = np.meshgrid(shifts_y, shifts_x, indexing="ij")      # (gh, gw)
            shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], axis=1)
            anchors = (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)  # (gh*gw*A, 4)
            out.append(xp.asarray(anchors))
        return out

    def forward(self, images, feature_maps) -> list:
        """List (one per image) of (sum_l h_l * w_l * A_l, 4) anchors, xyxy pixels."""
        height, width, batch = _image_size(images)
        maps = [unwrap(f) for f in feature_maps]
        xp = get_array_module(maps[0][0]) if maps else np
        grid_sizes = [(int(m.shape[-2]), int(m.shape[-1])) for m, _ in maps]
        strides = [(height // gh, width // gw) for gh, gw in grid_sizes]
        dtype = maps[0][0].dtype if maps and maps[0][0].dtype.kind == "f" else np.float32
        anchors = xp.concatenate(self.grid_anchors(grid_sizes, strides, xp)).astype(dtype)
        as_tensor = bool(maps) and maps[0][1]
        return [wrap(anchors.copy(), as_tensor) for _ in range(batch)]

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, aspect_ratios={self.aspect_ratios}"


class DefaultBoxGenerator(Module):
    """SSD default boxes (see module docstring for the formulas).

    Parameters
    ----------
    aspect_ratios : per feature map, the extra ratios (e.g. [[2], [2, 3], ...]).
    min_ratio, max_ratio : smallest and largest scale when ``scales`` is not given.
    scales : explicit scales, one more than the number of feature maps.
    steps : per feature map, the stride in pixels used for the centres (else the grid).
    clip : clip the relative widths and heights to [0, 1].
    """

    def __init__(self, aspect_ratios, min_ratio: float = 0.15, max_ratio: float = 0.9,
                 scales=None, steps=None, clip: bool = True) -> None:
        super().__init__()
        if steps is not None and len(aspect_ratios) != len(steps):
            raise ValueError("aspect_ratios and steps must have the same length, got "
                             f"{len(aspect_ratios)} and {len(steps)}")
        self.aspect_ratios = aspect_ratios
        self.steps = steps
        self.clip = clip
        m = len(aspect_ratios)
        if scales is None:
            if m > 1:
                span = max_ratio - min_ratio
                self.scales = [min_ratio + span * k / (m - 1.0) for k in range(m)] + [1.0]
            else:
                self.scales = [min_ratio, max_ratio]
        else:
            if len(scales) != m + 1:
                raise ValueError(f"scales must have len(aspect_ratios) + 1 = {m + 1} entries, "
                                 f"got {len(scales)}")
            self.scales = list(scales)
        self._wh_pairs = self._generate_wh_pairs(m)

    def _generate_wh_pairs(self, num_outputs: int, dtype=np.float32) -> list:
        pairs_per_level = []
        for k in range(num_outputs):
            s_k = self.scales[k]
            s_prime_k = math.sqrt(self.scales[k] * self.scales[k + 1])   # the extra scale
            wh = [[s_k, s_k], [s_prime_k, s_prime_k]]
            for ar in self.aspect_ratios[k]:
                sq = math.sqrt(ar)
                w, h = s_k * sq, s_k / sq
                wh.extend([[w, h], [h, w]])
            pairs_per_level.append(np.asarray(wh, dtype))
        return pairs_per_level

    def num_anchors_per_location(self) -> list[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def _grid_default_boxes(self, grid_sizes, image_size, dtype=np.float32) -> np.ndarray:
        """(sum_k f_k^2 * A_k, 4) boxes (cx, cy, w, h), relative to the image."""
        boxes = []
        for k, (fh, fw) in enumerate(grid_sizes):
            if self.steps is not None:
                x_f = image_size[1] / self.steps[k]
                y_f = image_size[0] / self.steps[k]
            else:
                y_f, x_f = fh, fw
            shifts_x = ((np.arange(fw) + 0.5) / x_f).astype(dtype)
            shifts_y = ((np.arange(fh) + 0.5) / y_f).astype(dtype)
            sy, sx = np.meshgrid(shifts_y, shifts_x, indexing="ij")
            wh = self._wh_pairs[k]
            centres = np.repeat(np.stack([sx.ravel(), sy.ravel()], axis=1), len(wh), axis=0)
            wh = np.clip(wh, 0, 1) if self.clip else wh
            boxes.append(np.concatenate([centres, np.tile(wh, (fh * fw, 1))], axis=1))
        return np.concatenate(boxes, axis=0).astype(dtype)

    def forward(self, images, feature_maps) -> list:
        """List (one per image) of (sum_k f_k^2 * A_k, 4) default boxes, xyxy pixels."""
        height, width, batch = _image_size(images)
        maps = [unwrap(f) for f in feature_maps]
        if len(maps) != len(self.aspect_ratios):
            raise ValueError(f"{len(maps)} feature maps given, the generator was built for "
                             f"{len(self.aspect_ratios)}")
        xp = get_array_module(maps[0][0])
        dtype = maps[0][0].dtype if maps[0][0].dtype.kind == "f" else np.float32
        grid_sizes = [(int(m.shape[-2]), int(m.shape[-1])) for m, _ in maps]
        d = self._grid_default_boxes(grid_sizes, (height, width), np.float32)
        size = np.array([width, height], np.float32)
        xyxy = np.concatenate([(d[:, :2] - np.float32(0.5) * d[:, 2:]) * size,
                               (d[:, :2] + np.float32(0.5) * d[:, 2:]) * size], axis=1)
        xyxy = xp.asarray(xyxy.astype(dtype))
        return [wrap(xyxy.copy(), maps[0][1]) for _ in range(batch)]

    def extra_repr(self) -> str:
        return (f"aspect_ratios={self.aspect_ratios}, clip={self.clip}, "
                f"scales={self.scales}, steps={self.steps}")
