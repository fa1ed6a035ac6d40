"""clip_grad_norm_ and saving/loading weights as .npz.

``save(module_or_state_dict, path)`` writes every array under its dotted name with
``numpy.savez`` (no pickle), so saved weights round-trip bit for bit and can be opened
without scratchvision. ``load(path)`` returns the state_dict to pass to
``load_state_dict``.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    Returns the total norm before clipping (as torch).
    """
    params = [p for p in (parameters if not hasattr(parameters, "grad") else [parameters])
              if p.grad is not None]
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(abs(p.grad).max()) for p in params)
    else:
        total = float(sum(float((abs(p.grad) ** norm_type).sum()) for p in params)
                      ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in params:
            p.grad *= coef
    return total


def save(obj, path: str | os.PathLike) -> None:
    """Save a Module's state_dict (or a dict of arrays) to ``path`` (.npz)."""
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    arrays = {k: np.asarray(v.get() if hasattr(v, "get") and not isinstance(v, dict) else v)
              for k, v in state.items()}
    with open(path, "wb") as f:  # exactly the path given, no '.npz' appended
        np.savez(f, **arrays)


def load(path: str | os.PathLike) -> "OrderedDict[str, np.ndarray]":
    """Read a state_dict saved with ``save``."""
    with np.load(path, allow_pickle=False) as data:
        return OrderedDict((k, data[k]) for k in data.files)
