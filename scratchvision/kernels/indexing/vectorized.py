"""Gather, scatter, index-select and masked-fill with array-library fancy indexing: the
``numpy`` version (same results as ``reference.py``; it also runs on CuPy arrays).

Same canonical 3-D arrays as the reference (``x (O, N, I)``, ``index (O, J, I)`` or
``(J,)``). What each op becomes:

* ``gather`` is ``take_along_axis(x, index, axis=1)``; ``index_select`` is
  ``take(x, index, axis=1)``: one vectorised copy each.
* the adds go through a **flat target index**: source element ``(o, j, i)`` lands on the
  output element ``lin = (o * N + index[o, j, i]) * I + i`` of the flattened output, and
  ``np.add.at(y.ravel(), lin, src.ravel())`` adds them unbuffered (a repeated target
  receives every contribution). NumPy's ``add.at`` walks the sources in row-major
  ``(o, j, i)`` order, so each output element sums its contributions in increasing
  ``j``: the reference's order, the same bits. On CuPy ``cupyx.scatter_add`` does the
  adds with atomics: right to rounding, but the float summation order (and so the last
  bits) may change from run to run.
* ``scatter`` must keep the *last* writer of each target, which a plain fancy assignment
  does not promise (CuPy's is a race). So the writers are chosen first: a stable sort of
  the flat targets groups each target's sources in row-major order, the last of each
  group wins, and only the winners (distinct targets) are assigned. Deterministic on
  both libraries.
* ``masked_fill`` is ``where(mask, value, x)``, with ``value`` cast to ``x``'s dtype first
  so the result keeps that dtype.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module, is_cupy_array
from scratchvision.kernels.indexing.sorting import argsort


def _add_at(y_flat, lin, values) -> None:
    """y_flat[lin] += values, unbuffered (repeated targets add up)."""
    if is_cupy_array(y_flat):
        import cupyx
        cupyx.scatter_add(y_flat, lin, values)
    else:
        np.add.at(y_flat, lin, values)


def _targets(index, x_shape):
    """Flat output position of every source element (o, j, i): (o * N + index) * I + i."""
    xp = get_array_module(index)
    n_outer, n_out_dim, n_inner = x_shape
    o = xp.arange(n_outer, dtype=np.int64).reshape(-1, 1, 1)      # (O, 1, 1)
    i = xp.arange(n_inner, dtype=np.int64).reshape(1, 1, -1)      # (1, 1, I)
    if index.ndim == 1:                                          # index_add: (J,) -> (1, J, 1)
        index = index.reshape(1, -1, 1)
    return ((o * n_out_dim + index) * n_inner + i).reshape(-1)    # (O, J, I) -> flat


def gather(x, index):
    """x (O, N, I), index (O, J, I) int64 -> y (O, J, I)."""
    return get_array_module(x).take_along_axis(x, index, axis=1)


def scatter_add(x, index, src):
    """x (O, N, I), index and src (O, J, I) -> y = x + src added at index, in j order."""
    y = x.copy()
    _add_at(y.reshape(-1), _targets(index, x.shape),
            src.reshape(-1))
    return y


def scatter(x, index, src):
    """x (O, N, I), index and src (O, J, I) -> y = x with src written at index (last j wins)."""
    xp = get_array_module(x)
    y = x.copy()
    lin = _targets(index, x.shape)                  # (O*J*I,) in row-major (o, j, i) order
    order = argsort(lin, 0)                         # stable: a target's writers stay in order
    grouped = lin[order]
    last = xp.ones(grouped.shape, dtype=bool)       # the last writer of each target
    last[:-1] = grouped[1:] != grouped[:-1]
    won = order[last]
    y.reshape(-1)[lin[won]] = src.reshape(-1)[won]  # distinct targets: no race
    return y


def index_select(x, index):
    """x (O, N, I), index (J,) int64 -> y (O, J, I)."""
    return get_array_module(x).take(x, index, axis=1)


def index_add(x, index, src):
    """x (O, N, I), index (J,), src (O, J, I) -> y = x with src[:, j] added to y[:, index[j]]."""
    y = x.copy()
    _add_at(y.reshape(-1), _targets(index, x.shape),
            src.reshape(-1))
    return y


def masked_fill(x, mask, value):
    """x (T,), mask (T,) bool, value a scalar of x's dtype -> y (T,)."""
    xp = get_array_module(x)
    return xp.where(mask, xp.asarray(value, dtype=x.dtype), x)
