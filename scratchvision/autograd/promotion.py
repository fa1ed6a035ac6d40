"""Type promotion: the dtype of ``a op b``, by PyTorch's rules rather than NumPy's.

NumPy promotes by value range: int64 + float32 -> float64, and a 0-d float64 array
drags a float32 array up to float64. PyTorch instead ranks each operand by **category**
(bool < integer < floating) and by **kind of operand** (a tensor with dims > a 0-d tensor
> a Python number), and promotes only within the winning group:

1. the result's category is the highest category among the operands;
2. among the operands of that category, only those of the highest kind count, and their
   dtypes promote as usual (float32 with float64 -> float64, uint8 with int8 -> int16);
3. if that category is reached only through Python numbers, the result is the default
   dtype for floats (float32) and int64 for ints.

So ``int64 tensor + 0.5`` is float32 (rule 3), ``float32 tensor * 0-d float64 tensor`` is
float32 (rule 2: the dimensioned tensor wins), ``int tensor + 0-d float64 tensor`` is
float64 (rule 1, then rule 2 among the floats), and ``int64 tensor + 2`` stays int64.
True division always gives a floating result (the default dtype for integer operands).
"""
from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np

from scratchvision import backend

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_TENSOR, _ZERO_DIM, _NUMBER = 2, 1, 0   # kinds of operand, strongest first


def _describe(x: Any) -> tuple[int, int, np.dtype]:
    """(category, kind of operand, dtype) of one operand."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and hasattr(x, "shape"):        # a Tensor or an array
        kind = _TENSOR if len(x.shape) else _ZERO_DIM
        if isinstance(x, np.generic):                    # a NumPy scalar acts as a number
            kind = _NUMBER
        dtype = np.dtype(dtype)
        return _CATEGORY[dtype.kind], kind, dtype
    if isinstance(x, (bool, np.bool_)):
        return 0, _NUMBER, np.dtype(bool)
    if isinstance(x, (int, np.integer)):
        return 1, _NUMBER, np.dtype(np.int64)
    if isinstance(x, (float, np.floating)):
        return 2, _NUMBER, backend.get_default_dtype()
    raise TypeError(f"unsupported operand of type {type(x).__name__} in an arithmetic op")


def result_type(*operands: Any) -> np.dtype:
    """The dtype PyTorch gives an elementwise op on ``operands`` (Tensors, arrays, numbers)."""
    described = [_describe(x) for x in operands]
    category = max(c for c, _, _ in described)
    for kind in (_TENSOR, _ZERO_DIM, _NUMBER):
        group = [d for c, k, d in described if c == category and k == kind]
        if group:
            return np.dtype(reduce(np.promote_types, group))
    raise AssertionError("unreachable: some operand has the highest category")


def division_type(*operands: Any) -> np.dtype:
    """The dtype of true division: the promoted type, made floating if it is not."""
    dtype = result_type(*operands)
    return dtype if dtype.kind in "fc" else backend.get_default_dtype()


def can_cast_in_place(result: np.dtype, target: np.dtype) -> bool:
    """Whether an in-place op may write ``result`` into a tensor of ``target`` dtype.

    As in PyTorch: not into a lower category (a float result into an int tensor, an int
    into bool); within a category any narrowing is allowed (float64 into float32).
    """
    return _CATEGORY[np.dtype(result).kind] <= _CATEGORY[np.dtype(target).kind]
