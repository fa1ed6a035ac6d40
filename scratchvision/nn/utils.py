"""clip_grad_norm_ and saving/loading weights as .npz.

``save(module_or_state_dict, path)`` writes the state_dict with ``scratchvision.save``
(the pickle-free checkpoint format described in ``scratchvision/serialization.py``): a
standard ``.npz`` whose members are the arrays under their dotted names, plus an
``index.json``, so saved weights round-trip bit for bit and ``np.load(path)["conv1.weight"]``
reads them without scratchvision. ``load(path)`` returns the state_dict to pass to
``load_state_dict``; it also reads the plain ``.npz`` weight files (arrays only, no index)
that ``numpy.savez`` and earlier versions of ``save`` wrote.
"""
from __future__ import annotations

import math
import os
import zipfile
from collections import OrderedDict

import numpy as np

from scratchvision import serialization
from scratchvision.autograd.tensor import Tensor
from scratchvision.backend import is_cupy_array


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
    The total norm before clipping, a 0-d tensor on the host (as torch; ``float()`` it).
    """
    from scratchvision.backend import get_array_module  # noqa: PLC0415

    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    grads = [p.grad.data for p in params if p.grad is not None and p.grad.numel()]
    if not grads:
        return _norm_tensor(0.0, params)
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
        for p in params:
            if p.grad is not None and p.grad.numel():
                p.grad.data *= coef
                p.grad._version_counter.value += 1
    return _norm_tensor(total, params)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient elementwise to [-clip_value, clip_value], in place (as torch)."""
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    for p in params:
        if p.grad is not None:
            p.grad.clamp_(-float(clip_value), float(clip_value))


def _norm_tensor(total: float, params):
    """The total norm as torch returns it: a 0-d tensor (of the first gradient's dtype)."""
    from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
    dtype = next((p.grad.dtype for p in params if p.grad is not None), np.float32)
    return Tensor._make(np.asarray(total, dtype=dtype), False)


def save(obj, path: str | os.PathLike) -> None:
    """Save a Module's state_dict (or a dict of name -> Tensor or array) to ``path``.

    The file is a ``scratchvision.save`` checkpoint whose root is the flat dict, written
    atomically, to exactly the path given (no ``.npz`` appended). Values that are neither
    Tensors nor arrays go through ``np.asarray``; CuPy arrays are copied to the host.
    """
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not hasattr(state, "items"):
        raise TypeError(f"nn.save: expected a Module or a dict of name -> Tensor, got "
                        f"{type(state).__name__}")
    flat = {}
    for k, v in state.items():
        if not isinstance(k, str):
            raise TypeError(f"nn.save: state_dict keys must be str, got {k!r}")
        keep = isinstance(v, (Tensor, np.ndarray)) or is_cupy_array(v)
        flat[k] = v if keep else np.asarray(v)
    serialization.save(flat, path)


def load(path) -> OrderedDict[str, Tensor | np.ndarray]:
    """Read a state_dict saved with ``save``: name -> Tensor, in the saved order.

    Plain ``.npz`` weight files (arrays only, as ``numpy.savez`` and earlier versions of
    ``save`` wrote them; e.g. older files in ``runs/``) load too: name -> NumPy array.
    Either way the result goes straight into ``module.load_state_dict``. A checkpoint
    holding more than a flat dict of arrays (the trainer's ``checkpoint.npz``) is refused
    with a ``ValueError`` that says to read it with ``scratchvision.load``.
    """
    try:
        state = serialization.load(path)
    except serialization.PlainNpzError:   # the older format: one array per name, no index
        if hasattr(path, "seek"):
            path.seek(0)
        try:
            with np.load(path, allow_pickle=False) as data:
                return OrderedDict((k, data[k]) for k in data.files)
        except (ValueError, OSError, zipfile.BadZipFile) as e:   # a damaged member (CRC, ...)
            raise serialization.CheckpointError(
                f"nn.load: {path}: a plain .npz whose arrays cannot be read ({e})") from None
    if not isinstance(state, dict):      # a ValueError: what the file holds is wrong
        raise ValueError(f"nn.load: {path} holds a {type(state).__name__}, not a "  # noqa: TRY004
                         "state_dict of name -> Tensor; read it with scratchvision.load(path)")
    bad = [f"{k!r} ({type(v).__name__})" for k, v in state.items()
           if not isinstance(k, str) or not isinstance(v, (Tensor, np.ndarray))]
    if bad:
        hint = "; the model's weights are scratchvision.load(path)['model']" \
            if "model" in state else ""
        raise ValueError(f"nn.load: {path} is not a state_dict of name -> Tensor: "
                         f"{', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''} are not "
                         f"arrays; read it with scratchvision.load(path){hint}")
    return OrderedDict(state)
