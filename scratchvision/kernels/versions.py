"""The shared half of every kernel family's dispatch: which version runs, on what arrays.

``reference`` is the textbook loops, ``cpu`` the Numba version, ``cuda`` the numba.cuda
version (deterministic backward) and ``cuda_atomic`` its variant whose scattering
backward passes use atomic adds (faster, not bit-reproducible). ``impl=None`` picks
``cuda`` for CuPy arrays (``cuda_atomic`` after
``scratchvision.use_deterministic_algorithms(False)``) and ``cpu`` otherwise.
"""
from __future__ import annotations

import importlib

from scratchvision.backend import default_gpu_impl, get_array_module, is_cupy_array

IMPLS = ("reference", "cpu", "cuda", "cuda_atomic")
NO_SCATTER_IMPLS = ("reference", "cpu", "cuda")   # families with no scattering backward


def load_version(family: str, impl: str | None, *arrays, impls: tuple = IMPLS):
    """The module (or namespace) of ``scratchvision.kernels.<family>`` that runs ``impl``,
    one of the family's ``impls``."""
    if impl is None:
        impl = "cpu"
        if any(is_cupy_array(a) for a in arrays):
            impl = default_gpu_impl() if default_gpu_impl() in impls else "cuda"
    if impl not in impls:
        raise ValueError(f"impl must be one of {impls}, got {impl!r}")
    if impl == "cuda_atomic":
        return importlib.import_module(f"scratchvision.kernels.{family}.cuda").ATOMIC
    return importlib.import_module(f"scratchvision.kernels.{family}.{impl}")


def contiguous(a):
    """``a`` as a C-contiguous array of its own module (None stays None)."""
    return None if a is None else get_array_module(a).ascontiguousarray(a)
