"""Balanced sampling of positives and negatives for training a detector head.

From each image's labels (``>= 1`` positive, ``0`` negative, ``-1`` ignored, as produced
from a ``Matcher``), draw at most ``batch_size_per_image * positive_fraction`` positives
at random, and fill the rest of the ``batch_size_per_image`` with random negatives (as
torchvision's ``BalancedPositiveNegativeSampler``). Faster R-CNN: 256 anchors at 0.5 for
the RPN, 512 RoIs at 0.25 for the box head.

Randomness comes from a NumPy ``Generator`` (``rng=`` an int seed or a Generator), so a
run is reproducible.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.ops._utils import unwrap, wrap
from scratchvision.validation import to_numpy


class BalancedPositiveNegativeSampler:
    """Sample a fixed-size, class-balanced subset of each image's labelled predictions."""

    def __init__(self, batch_size_per_image: int, positive_fraction: float, rng=None) -> None:
        if batch_size_per_image < 0:
            raise ValueError(f"batch_size_per_image must be >= 0, got {batch_size_per_image}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __call__(self, matched_idxs: list) -> tuple[list, list]:
        """Per image (N_i,) labels -> (positive masks, negative masks), uint8 (N_i,) each."""
        pos_masks, neg_masks = [], []
        for labels in matched_idxs:
            lab, t = unwrap(labels)
            xp = get_array_module(lab)
            lab = xp.asarray(lab)
            positive = np.flatnonzero(to_numpy(lab >= 1))
            negative = np.flatnonzero(to_numpy(lab == 0))
            num_pos = min(positive.size,
                          int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.size, self.batch_size_per_image - num_pos)
            pos = positive[self.rng.permutation(positive.size)[:num_pos]]
            neg = negative[self.rng.permutation(negative.size)[:num_neg]]
            pos_mask = np.zeros(lab.shape, np.uint8)
            neg_mask = np.zeros(lab.shape, np.uint8)
            pos_mask[pos] = 1
            neg_mask[neg] = 1
            pos_masks.append(wrap(xp.asarray(pos_mask), t))
            neg_masks.append(wrap(xp.asarray(neg_mask), t))
        return pos_masks, neg_masks

