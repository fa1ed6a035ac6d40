"""The one dispatch mechanism of every kernel family: which version runs, on what arrays.

Every family folder ``kernels/<family>/`` holds ``reference.py`` (the textbook loops, the
test oracle), ``cpu.py`` (the Numba version; for a family with several CPU algorithms it
picks one per call) and, where the family runs on a GPU, ``cuda.py`` (numba.cuda). A
family may add named algorithms (conv: ``im2col``, ``direct``, ``winograd``; indexing:
``numpy``) in modules of their own. Its ``__init__.py`` declares one ``KernelFamily``::

    VERSIONS = KernelFamily("pool", gpu=("cuda", "cuda_atomic"))
    ...
    VERSIONS.module(impl, x).max_pool2d_forward(...)

and every public op of the family, down to the Tensor API (``F.max_pool2d(...,
impl="reference")``), takes the same ``impl=`` names:

* ``None`` -- the default: ``cuda`` for CuPy arrays (``cuda_atomic`` after
  ``scratchvision.use_deterministic_algorithms(False)``, where the family has it), ``cpu``
  otherwise;
* ``"reference"``, ``"cpu"``, the family's algorithms -- CPU versions, NumPy arrays only;
* ``"cuda"`` (deterministic backward) and ``"cuda_atomic"`` (scattering backward passes
  with atomic adds: faster, not bit-reproducible) -- numba.cuda, on CuPy arrays (or NumPy
  arrays under Numba's CUDA simulator, as the simulator tests do).

A wrong name, or a CPU version asked to run on CuPy arrays, is a ``ValueError`` naming the
family and the allowed names.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from scratchvision.backend import default_gpu_impl, get_array_module, is_cupy_array

GPU_IMPLS = ("cuda", "cuda_atomic")


class KernelFamily:
    """The versions of one kernel family and the rule that picks one.

    ``name`` is the folder under ``scratchvision.kernels``; ``algorithms`` maps extra CPU
    version names to their module names in that folder (``{"numpy": "vectorized"}``);
    ``gpu`` lists the GPU versions the family has (``()``, ``("cuda",)`` for a family with
    no scattering backward, or both); ``on_cupy`` names the versions written in array
    expressions that run on CuPy arrays too (``("numpy",)`` for indexing: a family without
    GPU kernels whose CuPy arrays take the first of them); ``default_cpu`` may be a function
    of the arrays that names the version ``impl=None`` runs on NumPy arrays (indexing picks
    ``numpy`` for dtypes Numba does not compile).
    """

    def __init__(self, name: str, algorithms: dict[str, str] | None = None,
                 gpu: tuple[str, ...] = GPU_IMPLS, default_cpu=None,
                 on_cupy: tuple[str, ...] = ()) -> None:
        self.name = name
        self.algorithms = dict(algorithms or {})
        self.gpu = tuple(gpu)
        self.on_cupy = tuple(on_cupy)
        self.cpu_impls = ("reference", "cpu", *self.algorithms)
        self.impls = (*self.cpu_impls, *self.gpu)
        self._default_cpu = default_cpu

    def resolve(self, impl: str | None, *arrays, op: str | None = None) -> str:
        """The version name this call runs (``impl`` validated, ``None`` resolved); ``op``
        names the caller in the errors (default: the family)."""
        on_gpu = any(is_cupy_array(a) for a in arrays)
        name = op or self.name
        if impl is None:
            if on_gpu and self.gpu:
                return default_gpu_impl() if default_gpu_impl() in self.gpu else self.gpu[0]
            if on_gpu and self.on_cupy:
                return self.on_cupy[0]
            return self._default_cpu(*arrays) if self._default_cpu else "cpu"
        if impl not in self.impls:
            raise ValueError(f"{name}: impl must be one of {self.impls} or None, got "
                             f"{impl!r}")
        if on_gpu and impl in self.cpu_impls and impl not in self.on_cupy:
            if self.gpu:
                raise ValueError(f"{name}: impl={impl!r} is a CPU version but the arrays are "
                                 f"CuPy arrays; use impl=None or one of {self.gpu}")
            if self.on_cupy:
                raise ValueError(f"{name}: impl={impl!r} runs on NumPy arrays only; CuPy "
                                 f"arrays use impl={self.on_cupy[0]!r} (the default for them)")
        return impl

    def module(self, impl: str | None, *arrays) -> ModuleType:
        """The module (or namespace) that runs ``impl`` for these arrays."""
        impl = self.resolve(impl, *arrays)
        if impl == "cuda_atomic":
            return importlib.import_module(f"scratchvision.kernels.{self.name}.cuda").ATOMIC
        return importlib.import_module(
            f"scratchvision.kernels.{self.name}.{self.algorithms.get(impl, impl)}")

    def __repr__(self) -> str:
        return f"KernelFamily({self.name!r}, impls={self.impls})"


def contiguous(a):
    """``a`` as a C-contiguous array of its own module (None stays None)."""
    return None if a is None else get_array_module(a).ascontiguousarray(a)

