"""Box formats accepted by the RoI ops, as torchvision's ``convert_boxes_to_roi_format``."""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.ops._utils import unwrap


def convert_boxes_to_roi_format(boxes, xp=None):
    """(K, 5) [batch_index, x1, y1, x2, y2] from a (K, 5) array/Tensor or a list of (Ki, 4).

    In the list form, entry i holds the boxes of image i of the batch.
    """
    if isinstance(boxes, (list, tuple)):
        parts = [unwrap(b)[0] for b in boxes]
        xp = xp or (get_array_module(*parts) if parts else np)
        rows = []
        for i, b in enumerate(parts):
            b = xp.asarray(b)
            if b.dtype.kind not in "iuf":    # coordinates: ints convert, bools do not
                raise TypeError(f"boxes[{i}] must have a real (float or integer) dtype, got "
                                f"{b.dtype}")
            b = b.astype(np.float64, copy=False)
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}] must have shape (K_i, 4) [x1, y1, x2, y2], got "
                                 f"{tuple(b.shape)}")
            rows.append(xp.concatenate([xp.full((b.shape[0], 1), float(i)), b], axis=1))
        return xp.concatenate(rows, axis=0) if rows else xp.zeros((0, 5))
    rois, _ = unwrap(boxes)
    rois = (xp or get_array_module(rois)).asarray(rois)
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError("boxes must be a (K, 5) array [batch_index, x1, y1, x2, y2] or a "
                         f"list of (K_i, 4) arrays, got shape {tuple(rois.shape)}")
    return rois
