"""Shared test helpers: per-dtype tolerances, comparisons, non-contiguous copies.

Each kernel test file loops over its family's versions itself and compares every one with
``reference`` through ``assert_close``.
"""
from __future__ import annotations

import numpy as np

# Tolerances for comparing a fast version with the reference. float32 sums in a
# different order (GEMM blocking, Winograd transforms) so it gets looser bounds.
TOL = {np.dtype(np.float32): dict(rtol=2e-4, atol=2e-4),
       np.dtype(np.float64): dict(rtol=1e-9, atol=1e-10)}


def tol(dtype, scale: float = 1.0) -> dict:
    """Tolerances for ``dtype``, multiplied by ``scale`` (for long sums)."""
    t = TOL[np.dtype(dtype)]
    return dict(rtol=t["rtol"] * scale, atol=t["atol"] * scale)


def assert_close(actual, expected, dtype=None, scale: float = 1.0, err_msg: str = "") -> None:
    """assert_allclose with per-dtype tolerances; also checks shape and dtype."""
    actual = np.asarray(getattr(actual, "get", lambda: actual)())
    expected = np.asarray(getattr(expected, "get", lambda: expected)())
    assert actual.shape == expected.shape, f"{err_msg} shape {actual.shape} != {expected.shape}"
    dtype = np.dtype(dtype or expected.dtype)
    if dtype.kind == "f":
        assert actual.dtype == dtype, f"{err_msg} dtype {actual.dtype} != {dtype}"
        np.testing.assert_allclose(actual, expected, err_msg=err_msg, **tol(dtype, scale))
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=err_msg)


def non_contiguous(x: np.ndarray) -> np.ndarray:
    """The same values as ``x`` in a non-contiguous (strided) array."""
    big = np.empty(x.shape[:-1] + (2 * x.shape[-1],), x.dtype) if x.ndim else x.copy()
    if not x.ndim:
        return big
    view = big[..., ::2]
    view[...] = x
    return view

