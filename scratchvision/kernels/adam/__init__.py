"""The Adam / AdamW update of a bucket of parameters (same device, dtype and step count),
written in place: ``nn.optim.Adam.step`` calls ``adam_update`` once per bucket.

    g = g + wd p                         (Adam: L2 added to the gradient)
    p = p (1 - lr wd)                    (AdamW: decoupled decay, instead)
    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,   v_max = max(v_max, v) (amsgrad)
    p = p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)

Versions (``impl=``): ``reference`` (array expressions on the bucket raveled into flat
arrays, ``reference.py``; it also runs on CuPy arrays, which take it by default: one
kernel launch per expression for the whole bucket, as PyTorch's ``foreach`` path) and
``cpu`` (Numba, ``cpu.py``: one pass over each parameter that reads p, g, m, v once and
writes them once, instead of ~10 passes and ~6 temporaries of the whole bucket plus the
two copies in and out of the flat arrays). Both round every operation to the parameters'
dtype in the same order, so their results have the same bits.
"""
from __future__ import annotations

from scratchvision.kernels.versions import KernelFamily

VERSIONS = KernelFamily("adam", gpu=(), on_cupy=("reference",))


def adam_update(params: list, grads: list, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *,
                lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                decoupled: bool, step: int, impl=None) -> None:
    """One Adam (``decoupled=False``) or AdamW step of the arrays ``params`` (all of one
    dtype; their gradients ``grads``), in place. The moments ``exp_avg``, ``exp_avg_sq``
    and, for amsgrad, the running maximum ``max_exp_avg_sq`` (None without) are flat
    contiguous arrays holding the parameters' entries one after another in list order;
    they are updated in place too. ``step`` is the bucket's step count t (>= 1)."""
    if not params:
        return
    total = sum(int(p.size) for p in params)
    for name, a in (("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq),
                    ("max_exp_avg_sq", max_exp_avg_sq)):
        if a is not None and (a.ndim != 1 or a.shape[0] != total
                              or not a.flags.c_contiguous):
            raise ValueError(f"adam_update: {name} must be a flat contiguous array of the "
                             f"parameters' {total} entries, got shape {tuple(a.shape)}")
    VERSIONS.module(impl, params[0]).update(
        params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, float(lr), float(beta1),
        float(beta2), float(eps), float(weight_decay), bool(decoupled), int(step))
