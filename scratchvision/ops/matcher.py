"""Matcher of Faster R-CNN: assigns each prediction (anchor/proposal) to a ground truth.

Given the quality matrix ``Q (M gt, N predictions)`` (usually IoU), prediction j gets
``m_j = argmax_i Q[i, j]`` (the first on ties) and is then labelled by its best quality
``q_j = max_i Q[i, j]``::

    q_j <  low_threshold                   -> BELOW_LOW_THRESHOLD  (-1, background)
    low_threshold <= q_j < high_threshold  -> BETWEEN_THRESHOLDS   (-2, ignored)
    q_j >= high_threshold                  -> m_j                  (foreground)

With ``allow_low_quality_matches`` every ground truth also keeps the predictions that
match it best (all ties of its row maximum), even below the thresholds, so no object is
left without a positive (Faster R-CNN section 3.1.2). As torchvision's ``Matcher``.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.ops._utils import unwrap, wrap


class Matcher:
    """Match predictions to ground truths by a quality matrix (see module docstring)."""

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float,
                 allow_low_quality_matches: bool = False) -> None:
        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold ({low_threshold}) must be <= high_threshold "
                             f"({high_threshold})")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix):
        """(M, N) quality -> (N,) int64: gt index, -1 (below low) or -2 (between)."""
        q, t = unwrap(match_quality_matrix)
        xp = get_array_module(q)
        q = xp.asarray(q)
        if q.ndim != 2:
            raise ValueError(f"match_quality_matrix must be (M gt, N predictions), got "
                             f"{tuple(q.shape)}")
        if q.size == 0:
            if q.shape[0] == 0:
                raise ValueError("No ground-truth boxes available for one of the images "
                                 "during training")
            raise ValueError("No proposal boxes available for one of the images during "
                             "training")
        matches = xp.argmax(q, axis=0).astype(np.int64)           # (N,) first best gt
        matched_vals = q[matches, xp.arange(q.shape[1])]
        all_matches = matches.copy() if self.allow_low_quality_matches else None
        below = matched_vals < self.low_threshold
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(matches, all_matches, q)
        return wrap(matches, t)

    @staticmethod
    def set_low_quality_matches_(matches, all_matches, match_quality_matrix) -> None:
        """Give back its original match to every prediction that is some gt's best."""
        xp = get_array_module(match_quality_matrix)
        best_per_gt = match_quality_matrix.max(axis=1)            # (M,)
        _, preds = xp.nonzero(match_quality_matrix == best_per_gt[:, None])
        matches[preds] = all_matches[preds]
