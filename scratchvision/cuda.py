"""``sv.cuda``: the few ``torch.cuda`` queries code asks before choosing a device.

``is_available()`` is True only with CuPy importable and a real CUDA device (never under
Numba's CUDA simulator); see ``backend.gpu_available``.
"""
from __future__ import annotations

from scratchvision import backend


def is_available() -> bool:
    return backend.gpu_available()


def device_count() -> int:
    if not backend.gpu_available():
        return 0
    return int(backend.cupy_module().cuda.runtime.getDeviceCount())


def current_device() -> int:
    if not backend.gpu_available():
        raise RuntimeError("no CUDA device is available")
    return int(backend.cupy_module().cuda.runtime.getDevice())


def synchronize() -> None:
    """Wait for all queued GPU work (a no-op without a GPU)."""
    if backend.gpu_available():
        backend.cupy_module().cuda.runtime.deviceSynchronize()


def manual_seed(seed: int) -> None:
    """Random numbers are drawn on the host for every device, so this seeds that generator."""
    from scratchvision.autograd.factories import manual_seed as _seed  # noqa: PLC0415
    _seed(seed)


manual_seed_all = manual_seed
