"""Shared test helpers: per-dtype tolerances, comparisons, and the OpTestCase base.

``OpTestCase`` keeps each kernel's test file short: a subclass names the op's versions
and how to make inputs; ``check_versions`` runs every version against ``reference``.
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


class OpTestCase:
    """Base for kernel tests: ``versions`` maps a name to a callable with the op's signature.

    Subclasses set ``versions`` (including ``"reference"``) and call
    ``self.check_versions(args, kwargs)``, which runs each version on the same inputs and
    compares every output with the reference's.
    """

    versions: dict = {}

    def check_versions(self, *args, scale: float = 1.0, **kwargs) -> dict:
        ref = self.versions["reference"](*args, **kwargs)
        outs = {"reference": ref}
        for name, fn in self.versions.items():
            if name == "reference":
                continue
            out = fn(*args, **kwargs)
            refs = ref if isinstance(ref, tuple) else (ref,)
            got = out if isinstance(out, tuple) else (out,)
            assert len(refs) == len(got), f"{name}: {len(got)} outputs, reference {len(refs)}"
            for k, (g, r) in enumerate(zip(got, refs)):
                assert_close(g, r, scale=scale, err_msg=f"{name} output {k}")
            outs[name] = out
        return outs
