"""``one_hot``: class indices -> one-hot rows, as torch.nn.functional.one_hot.

Index tensors carry no gradient, so this is an array computation wrapped in a Tensor:
``out[..., c] = (tensor[...] == c)``, int64 like torch's LongTensor.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd.tensor import Tensor
from scratchvision.functional.activation import _as_tensor


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encode integer class indices.

    Parameters
    ----------
    tensor : (*) integer class indices in [0, num_classes)
    num_classes : the number of classes; -1 infers it as ``tensor.max() + 1``

    Returns
    -------
    (*, num_classes) int64 Tensor, 1 at each index and 0 elsewhere.
    """
    t = _as_tensor(tensor)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensor (integer dtype), got "
                        f"dtype {t.dtype}")
    xp = t.xp
    idx = t.data
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError("one_hot: can not infer total number of classes from empty "
                             "tensor")
        num_classes = int(idx.max()) + 1
    elif num_classes < 1 and not (num_classes == 0 and idx.size == 0):
        raise ValueError(f"one_hot: num_classes should be positive or -1, got {num_classes}")
    if idx.size:
        if int(idx.min()) < 0:
            raise ValueError("one_hot: class values must be non-negative")
        if int(idx.max()) >= num_classes:
            raise ValueError(f"one_hot: class values must be smaller than num_classes "
                             f"({num_classes}); the largest is {int(idx.max())}")
    classes = xp.arange(num_classes, dtype=np.int64)
    out = (idx[..., None] == classes).astype(np.int64)      # (*, num_classes)
    return Tensor._make(out, False)
