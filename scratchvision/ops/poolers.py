"""Multi-scale RoI Align: pool each box from the FPN level its size calls for (Lin et al.,
"Feature Pyramid Networks for Object Detection", CVPR 2017, eq. 1), exactly as
``torchvision.ops.MultiScaleRoIAlign``.

A box of w x h image pixels goes to pyramid level

    k = floor(k0 + log2(sqrt(w h) / s0) + 1e-6),   clamped to [k_min, k_max]

(``s0 = canonical_scale = 224``, the ImageNet size, lands on ``k0 = canonical_level = 4``;
twice the size, one level coarser). A level's scale is the power of two nearest its
feature-map height over the largest image height, ``2 ** round(log2(feat_h / img_h))``
(e.g. 1/4 for a stride-4 map), and ``k_min = -log2(scale of the first map)``,
``k_max = -log2(scale of the last)``: the maps are given finest first. Each box is then
RoI-aligned on its level with ``aligned=False`` (torchvision's choice here) and the given
``sampling_ratio``; the outputs come back in the order of the boxes.

As in torchvision, the scales and the level mapper are inferred on the first ``forward``
and kept (``self.scales``, ``self.map_levels``): later calls with other image sizes reuse
them. Set ``self.scales = None`` to infer them again.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision.autograd.factories import cat
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.nn.module import Module
from scratchvision.ops._utils import unwrap
from scratchvision.ops.roi_align import roi_align


class LevelMapper:
    """Map boxes to FPN levels with eq. 1 of the FPN paper (torchvision's LevelMapper):
    returns, per box, ``level - k_min`` (an index into the list of feature maps)."""

    def __init__(self, k_min: int, k_max: int, canonical_scale: int = 224,
                 canonical_level: int = 4, eps: float = 1e-6) -> None:
        self.k_min, self.k_max = k_min, k_max
        self.s0, self.lvl0, self.eps = canonical_scale, canonical_level, eps

    def __call__(self, boxlists) -> np.ndarray:
        boxes = [_box_array(b, i) for i, b in enumerate(boxlists)]
        b = np.concatenate(boxes, axis=0) if boxes else np.zeros((0, 4), np.float32)
        dtype = b.dtype if b.dtype.kind == "f" else np.dtype(np.float32)
        b = b.astype(dtype, copy=False)
        # in the boxes' dtype, as torch computes it (float32 for float32 boxes)
        s = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))           # (K,)
        with np.errstate(divide="ignore"):   # a zero-area box: log2(0) = -inf -> k_min
            target = np.floor(self.lvl0 + np.log2(s / dtype.type(self.s0))
                              + dtype.type(self.eps))
        target = np.clip(target, self.k_min, self.k_max)
        return target.astype(np.int64) - self.k_min


def _box_array(b, i: int) -> np.ndarray:
    """Boxes i as a host (K_i, 4) array."""
    a, _ = unwrap(b)
    a = np.asarray(a.get() if hasattr(a, "get") else a)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"boxes[{i}] must have shape (K_i, 4) [x1, y1, x2, y2], got "
                         f"{a.shape}")
    return a


def _infer_scale(feature, original_size) -> float:
    """The power of two nearest feature size / image size, from the heights (as
    torchvision, whose log2 runs in float32)."""
    possible = []
    for s1, s2 in zip(feature.shape[-2:], original_size):
        approx = float(s1) / float(s2)
        possible.append(2.0 ** float(np.round(np.log2(np.float32(approx)))))
    return possible[0]


def _setup_scales(features, image_shapes, canonical_scale: int, canonical_level: int):
    if not image_shapes:
        raise ValueError("images list should not be empty")
    max_h = max(int(s[0]) for s in image_shapes)
    max_w = max(int(s[1]) for s in image_shapes)
    scales = [_infer_scale(f, (max_h, max_w)) for f in features]
    lvl_min = -math.log2(scales[0])
    lvl_max = -math.log2(scales[-1])
    return scales, LevelMapper(int(lvl_min), int(lvl_max), canonical_scale, canonical_level)


class MultiScaleRoIAlign(Module):
    """RoI Align over a feature pyramid, each box on its FPN level, as torchvision.

    Parameters
    ----------
    featmap_names : names of the maps of ``x`` to pool from (the others are ignored),
        finest first in ``x``'s order
    output_size : int or (out_h, out_w)
    sampling_ratio : samples per bin along each axis (<= 0: ceil(bin size))
    canonical_scale, canonical_level : ``s0`` and ``k0`` of the level mapping
        (keyword-only, as torchvision)
    impl : RoI Align's kernel version (keyword-only): None or one of
        ``kernels.roi_align.VERSIONS.impls``

    Example::

        m = ops.MultiScaleRoIAlign(["feat1", "feat3"], 3, 2)
        x = {"feat1": sv.rand(1, 5, 64, 64), "feat2": sv.rand(1, 5, 32, 32),
             "feat3": sv.rand(1, 5, 16, 16)}
        out = m(x, [boxes], [(512, 512)])              # (K, 5, 3, 3)
    """

    def __init__(self, featmap_names, output_size, sampling_ratio: int, *,
                 canonical_scale: int = 224, canonical_level: int = 4,
                 impl: str | None = None) -> None:
        super().__init__()
        self.impl = impl                     # RoI Align's kernel version (see roi_align)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.featmap_names = featmap_names
        self.sampling_ratio = sampling_ratio
        self.output_size = tuple(output_size)
        self.scales = None
        self.map_levels = None
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def forward(self, x: dict, boxes, image_shapes) -> Tensor:
        """Pool every box.

        Parameters
        ----------
        x : dict name -> (N, C, H_l, W_l) feature maps (the same C on every level)
        boxes : list of N (K_i, 4) Tensors/arrays, x1y1x2y2 in image pixels
        image_shapes : list of N (height, width) of the images before the backbone

        Returns
        -------
        (sum K_i, C, out_h, out_w) Tensor, the boxes of image 0 first, each image's in
        their order; differentiable in the feature maps.
        """
        feats = [v for k, v in x.items() if k in self.featmap_names]
        if not feats:
            raise ValueError(f"MultiScaleRoIAlign: none of featmap_names "
                             f"{list(self.featmap_names)} is among the feature maps "
                             f"{list(x)}")
        if not isinstance(boxes, (list, tuple)):
            raise TypeError("MultiScaleRoIAlign: boxes must be a list of (K_i, 4) Tensors, "
                            f"one per image, got {type(boxes).__name__}")
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                feats, image_shapes, self.canonical_scale, self.canonical_level)
        host = [_box_array(b, i) for i, b in enumerate(boxes)]
        rois = np.concatenate([np.concatenate([np.full((len(b), 1), float(i)),
                                               b.astype(np.float64)], axis=1)
                               for i, b in enumerate(host)], axis=0) if host else \
            np.zeros((0, 5))                                          # (K, 5)
        first = _as_tensor(feats[0])
        if len(feats) == 1:
            return roi_align(first, first.xp.asarray(rois), self.output_size,
                             self.scales[0], self.sampling_ratio, aligned=False,
                             impl=self.impl)
        if len(rois) == 0:
            return Tensor(first.xp.zeros((0, first.shape[1]) + self.output_size, first.dtype))
        levels = self.map_levels(host)                                # (K,)
        pieces, order = [], []
        for level, (feature, scale) in enumerate(zip(feats, self.scales)):
            idx = np.flatnonzero(levels == level)                     # boxes of this level
            if len(idx) == 0:
                continue
            feature = _as_tensor(feature)
            level_rois = feature.xp.asarray(rois[idx])
            pieces.append(roi_align(feature, level_rois, self.output_size, scale,
                                    self.sampling_ratio, aligned=False,
                                    impl=self.impl).to(first.dtype))
            order.append(idx)
        pooled = pieces[0] if len(pieces) == 1 else cat(pieces, dim=0)
        order = np.concatenate(order)
        if np.array_equal(order, np.arange(len(order))):
            return pooled
        # pooled row j holds box order[j]: gather the rows back into the boxes' order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return pooled[first.xp.asarray(inverse)]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(featmap_names={self.featmap_names}, "
                f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio})")


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


@register_gradcheck("multi_scale_roi_align")
def _gradcheck_case(rng):
    # a 32x32 image, maps at strides 4 and 8 (levels 2 and 3); s0 = 16 sends a 16x16 box
    # to level 3 and an 8x8 box to level 2; the boxes of two images interleave levels
    boxes = [np.array([[1.3, 2.2, 17.6, 18.1], [4.0, 3.5, 11.5, 12.0]]),
             np.array([[2.5, 0.7, 10.1, 9.2], [8.2, 6.1, 30.0, 25.3], [0.0, 0.0, 3.0, 3.0]])]
    pool = MultiScaleRoIAlign(["p2", "p3"], 2, 2, canonical_scale=16, canonical_level=3)

    def fn(p2, p3):
        return pool({"p2": p2, "p3": p3}, boxes, [(32, 32), (30, 28)])
    return fn, [rng.standard_normal((2, 2, 8, 8)), rng.standard_normal((2, 2, 4, 4))]
