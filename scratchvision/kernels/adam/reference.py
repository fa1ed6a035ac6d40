"""Adam / AdamW in array expressions over the bucket raveled into flat arrays (see the
family's ``__init__``). Runs on NumPy and CuPy arrays; the test oracle of ``cpu.py``."""
from __future__ import annotations

import math

from scratchvision.backend import get_array_module


def _concat(xp, arrays):
    """The arrays raveled into one new flat array (a copy even for a single array)."""
    if len(arrays) == 1:
        return arrays[0].ravel().copy()
    return xp.concatenate([a.ravel() for a in arrays])


def update(params, grads, m, v, v_max, lr, b1, b2, eps, wd, decoupled, t) -> None:
    xp = get_array_module(params[0])
    p = _concat(xp, params)
    g = _concat(xp, grads)
    if wd and decoupled:
        p *= 1 - lr * wd
    elif wd:
        g = g + wd * p
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
    denom = xp.sqrt(v) / math.sqrt(bias2) + eps
    p -= (lr / bias1) * m / denom
    offset = 0
    for a in params:                         # write the new values back, one copy each
        a[...] = p[offset:offset + a.size].reshape(a.shape)
        offset += a.size
