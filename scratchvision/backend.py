"""Array-module dispatch: NumPy on the CPU, CuPy on the GPU.

Every layer above this one asks ``get_array_module(x)`` for the module that owns an array
(``numpy`` or ``cupy``) and writes ``xp.exp(...)`` instead of branching on the device.
CuPy is imported only when something asks for the GPU, so a CPU-only install never pays
for it and never needs it.

``gpu_available()`` is True only with CuPy importable *and* a real CUDA device. Under
Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) ``numba.cuda.is_available()`` says True
although there is no device, so the simulator is checked first and always means "no GPU".
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

DEVICES = ("cpu", "cuda")
_default_dtype = np.dtype(np.float32)
_cupy: ModuleType | None = None
_cupy_checked = False
_deterministic = True


def cuda_simulator_enabled() -> bool:
    """True when Numba's CUDA simulator is switched on for this process."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _import_cupy() -> ModuleType | None:
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy  # noqa: PLC0415  (imported lazily on purpose)
            _cupy = cupy
        except Exception:  # ImportError, or a CUDA library that fails to load
            _cupy = None
    return _cupy


def cupy_module() -> ModuleType:
    """Return the ``cupy`` module or raise a clear RuntimeError when the GPU is unusable."""
    if not gpu_available():
        raise RuntimeError(
            "device 'cuda' requested but no usable GPU: install the 'gpu' extra "
            "(cupy-cuda12x, numba-cuda) on a machine with an NVIDIA GPU"
            + (" (the Numba CUDA simulator is on, which has no real device)"
               if cuda_simulator_enabled() else ""))
    return _cupy  # type: ignore[return-value]


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device (never under the simulator)."""
    if cuda_simulator_enabled():
        return False
    cp = _import_cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def is_cupy_array(x: Any) -> bool:
    """True for a CuPy ndarray, without importing CuPy when it was never imported."""
    return type(x).__module__.startswith("cupy")


def get_array_module(*arrays: Any) -> ModuleType:
    """``numpy`` or ``cupy``: the module that owns the given arrays (numpy for scalars)."""
    for a in arrays:
        if is_cupy_array(a):
            return _import_cupy()  # type: ignore[return-value]
    return np


def device_of(x: Any) -> str:
    """'cuda' for a CuPy array, else 'cpu'."""
    return "cuda" if is_cupy_array(x) else "cpu"


def check_device(device: str) -> str:
    """Normalise a device name ('cpu', 'cuda', 'cuda:0') or raise ValueError naming it."""
    if not isinstance(device, str):
        raise TypeError("device must be a str such as 'cpu' or 'cuda', got "
                        f"{type(device).__name__}")
    name = device.split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return name


def to_device(array: Any, device: str) -> Any:
    """Copy an array to 'cpu' (numpy) or 'cuda' (cupy); returns it unchanged when already there."""
    device = check_device(device)
    if device == "cpu":
        return array.get() if is_cupy_array(array) else np.asarray(array)
    cp = cupy_module()
    return array if is_cupy_array(array) else cp.asarray(array)


def array_module_for_device(device: str) -> ModuleType:
    """``numpy`` for 'cpu', ``cupy`` for 'cuda'."""
    return np if check_device(device) == "cpu" else cupy_module()


def get_default_dtype() -> np.dtype:
    """The floating dtype new tensors get (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the floating dtype new tensors get: float32 or float64."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def check_same_device(op: str, **arrays: Any) -> None:
    """Raise ValueError naming the arguments when the given arrays are on different devices
    (None and Python scalars are ignored), as torch and torchvision ops do."""
    devices = {name: device_of(a) for name, a in arrays.items()
               if a is not None and hasattr(a, "shape")}
    if len(set(devices.values())) > 1:
        where = ", ".join(f"{name} on '{dev}'" for name, dev in devices.items())
        raise ValueError(f"{op}: expected all arrays on one device, got {where}; move them "
                         "with Tensor.to(device) or backend.to_device(array, device)")


def use_deterministic_algorithms(mode: bool) -> None:
    """Choose the GPU backward kernels that scatter (col2im, pooling, interpolation, RoI
    pooling/align): True (the default) runs the gathers, whose fixed summation order gives
    the same bits on every run; False runs the atomic-add scatters, often faster but with
    float sums in whatever order the threads land (as torch's CUDA kernels by default).
    The CPU kernels are deterministic either way. Like ``torch.use_deterministic_algorithms``
    (whose default is the opposite)."""
    global _deterministic
    if not isinstance(mode, bool):
        raise TypeError(f"mode must be a bool, got {type(mode).__name__}")
    _deterministic = mode


def are_deterministic_algorithms_enabled() -> bool:
    """True when the GPU's scattering backward passes run their deterministic gathers."""
    return _deterministic


def default_gpu_impl() -> str:
    """The kernel version a CuPy array gets when none is named: 'cuda' or 'cuda_atomic'."""
    return "cuda" if _deterministic else "cuda_atomic"
