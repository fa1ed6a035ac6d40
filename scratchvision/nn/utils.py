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

    As ``torch.nn.utils.clip_grad_norm_``: the total norm is the ``norm_type``-norm of all
    gradients concatenated (``inf``: the largest absolute value); when it exceeds
    ``max_norm`` every gradient is multiplied in place by ``max_norm / (total + 1e-6)``.
    Parameters without a gradient are skipped. The gradients stay where they live (NumPy or
    CuPy): the per-array reductions run in the gradients' own array module and only the
    total comes back to the host, once per array module.

    Parameters
    ----------
    parameters : a Tensor or an iterable of Tensors
    max_norm : the largest total norm allowed
    norm_type : p of the p-norm (> 0), or ``math.inf``
    error_if_nonfinite : raise ``RuntimeError`` when the total norm is nan or inf (otherwise
        the gradients are scaled by a nan factor, as torch does)

    Returns
    -------
    The total norm before clipping, a Python float (torch returns a 0-d tensor).
    """
    from scratchvision.backend import get_array_module  # noqa: PLC0415

    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    grads = [p.grad for p in params if p.grad is not None and p.grad.size]
    if not grads:
        return 0.0
    by_module: dict[int, tuple] = {}     # id(array module) -> (module, [grads])
    for g in grads:
        xp = get_array_module(g)
        by_module.setdefault(id(xp), (xp, []))[1].append(g)
    partial = []                         # one host value per array module
    for xp, gs in by_module.values():
        if norm_type == math.inf:
            partial.append(float(xp.stack([xp.abs(g).max().astype(xp.float64)
                                           for g in gs]).max()))
        else:
            terms = [(g * g).sum() if norm_type == 2 else (xp.abs(g) ** norm_type).sum()
                     for g in gs]
            partial.append(float(xp.stack([t.astype(xp.float64) for t in terms]).sum()))
    total = max(partial) if norm_type == math.inf else sum(partial) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients is "
                           f"{total}; pass error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1 or math.isnan(coef):     # torch clamps the factor at 1 (a no-op there)
        for g in grads:
            g *= coef
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
