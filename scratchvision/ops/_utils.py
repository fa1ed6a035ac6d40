"""Helpers shared by the ops: Tensor/array in, the same kind out."""
from __future__ import annotations

from typing import Any

from scratchvision.autograd.tensor import Tensor


def unwrap(x: Any):
    """(raw array, was_tensor): the data of a Tensor, or the array itself."""
    if isinstance(x, Tensor):
        return x.data, True
    return x, False


def wrap(array: Any, as_tensor: bool):
    """A Tensor without grad when ``as_tensor``, else the array."""
    return Tensor._make(array, False) if as_tensor else array
