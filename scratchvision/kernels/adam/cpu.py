"""Adam / AdamW fused into one Numba pass per parameter (see the family's ``__init__``).

Every scalar coefficient is rounded to the arrays' dtype before the loop and each
operation is written in the order of ``reference.py``'s expressions, so a float32 update
rounds exactly as NumPy's float32 array arithmetic does (NumPy rounds a Python float to
the array's dtype when it multiplies a float32 array; Numba would otherwise compute in
float64) and the two versions agree bit for bit. Elementwise and parallel over elements:
the same bits for any number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _step(p, g, m, v, v_max, amsgrad, decay, l2, factor, b1, c1, b2, c2, sqrt_bias2, lr_b1,
          eps):  # pragma: no cover (compiled)
    # decay: AdamW's p *= factor (= 1 - lr wd); l2: Adam's g += factor p (factor = wd);
    # c1 = 1 - b1, c2 = 1 - b2, sqrt_bias2 = sqrt(1 - b2^t), lr_b1 = lr / (1 - b1^t),
    # every scalar in p's dtype
    for i in prange(p.shape[0]):
        pi = p[i]
        gi = g[i]
        if decay:
            pi = pi * factor
        elif l2:
            gi = gi + factor * pi
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + (c2 * gi) * gi
        m[i] = mi
        v[i] = vi
        if amsgrad:
            if vi > v_max[i] or vi != vi:     # np.maximum: NaN wins
                v_max[i] = vi
            vi = v_max[i]
        p[i] = pi - (lr_b1 * mi) / (math.sqrt(vi) / sqrt_bias2 + eps)


def update(params, grads, m, v, v_max, lr, b1, b2, eps, wd, decoupled, t) -> None:
    dtype = params[0].dtype.type
    decay, l2 = bool(wd and decoupled), bool(wd and not decoupled)
    factor = dtype(1 - lr * wd) if decay else dtype(wd)       # what the branch multiplies
    scalars = (factor, dtype(b1), dtype(1 - b1), dtype(b2), dtype(1 - b2),
               dtype(math.sqrt(1 - b2 ** t)), dtype(lr / (1 - b1 ** t)), dtype(eps))
    amsgrad = v_max is not None
    offset = 0
    for p, g in zip(params, grads):
        span = slice(offset, offset + p.size)
        offset += p.size
        flat = p.reshape(-1) if p.flags.c_contiguous else np.ascontiguousarray(p).reshape(-1)
        g = np.ascontiguousarray(g, dtype=p.dtype).reshape(-1)
        _step(flat, g, m[span], v[span], v_max[span] if amsgrad else v[span], amsgrad,
              decay, l2, *scalars)
        if not p.flags.c_contiguous:          # a strided parameter: write the copy back
            p[...] = flat.reshape(p.shape)
