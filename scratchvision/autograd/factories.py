"""Tensor factories (``sv.tensor``, ``zeros``, ``randn`` ...) and the global seed.

Random factories draw from one NumPy ``Generator`` seeded by ``manual_seed``; on the GPU
they draw on the CPU and copy, so a seed gives the same numbers on every device.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from scratchvision import backend
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.ops import Cat, Stack, Where
from scratchvision.autograd.tensor import Tensor, _shape_arg

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed scratchvision's random number generator (factories, dropout, init)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_generator() -> np.random.Generator:
    """The generator that ``manual_seed`` seeds."""
    return _rng


def tensor(data: Any, dtype: Any = None, device: str | None = None,
           requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data``."""
    if isinstance(data, Tensor):
        data = data.data
    t = Tensor(data, requires_grad=False, dtype=dtype, device=device)
    if t.data is data:
        t.data = t.data.copy()
    return t.requires_grad_(requires_grad) if requires_grad else t


def _new(shape, fill, dtype, device, requires_grad) -> Tensor:
    xp = backend.array_module_for_device(device or "cpu")
    dtype = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    shape = _shape_arg(shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in size {shape}")
    t = Tensor._make(fill(xp, shape, dtype), False)
    return t.requires_grad_(requires_grad) if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(size, lambda xp, s, d: xp.zeros(s, d), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(size, lambda xp, s, d: xp.ones(s, d), dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(size, lambda xp, s, d: xp.full(s, fill_value, d), dtype, device, requires_grad)


def _random(fill, size, dtype, device, requires_grad) -> Tensor:
    def make(xp, s, d):
        return xp.asarray(fill(s).astype(d, copy=False))
    return _new(size, make, dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1)."""
    return _random(lambda s: _rng.random(s), size, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    return _random(lambda s: _rng.standard_normal(s), size, dtype, device, requires_grad)


def _like(fn, t: Tensor, dtype, device, requires_grad):
    return fn(t.shape, dtype=dtype or t.dtype, device=device or t.device,
              requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return _like(ones, t, dtype, device, requires_grad)


def rand_like(t, dtype=None, device=None, requires_grad=False):
    return _like(rand, t, dtype, device, requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False):
    return _like(randn, t, dtype, device, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Like torch.arange: int64 for integer arguments, else the default float dtype."""
    if end is None:
        start, end = 0, start
    xp = backend.array_module_for_device(device or "cpu")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else backend.get_default_dtype()
    t = Tensor._make(xp.arange(start, end, step, dtype=dtype), False)
    return t.requires_grad_(requires_grad) if requires_grad else t


def _as_tensors(tensors) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("expected a non-empty sequence of tensors")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dim; shapes must match elsewhere."""
    tensors = _as_tensors(tensors)
    ndim = tensors[0].ndim
    d = dim % ndim
    for t in tensors[1:]:
        if t.ndim != ndim or t.shape[:d] + t.shape[d + 1:] != \
                tensors[0].shape[:d] + tensors[0].shape[d + 1:]:
            raise ValueError(f"cat: shapes {[x.shape for x in tensors]} differ outside dim {dim}")
    return Cat.apply(*tensors, dim=d)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack along a new dim; all shapes must be equal."""
    tensors = _as_tensors(tensors)
    if len({t.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all shapes must be equal, got {[t.shape for t in tensors]}")
    return Stack.apply(*tensors, dim=dim % (tensors[0].ndim + 1))


def where(condition, input, other) -> Tensor:  # noqa: A002
    """Elementwise ``condition ? input : other``, differentiable in input and other."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    if like is None:
        return Tensor(xp_of(cond).where(cond, input, other))
    from scratchvision.autograd.tensor import _lift  # noqa: PLC0415
    if backend.device_of(cond) != like.device:  # a mask made on the host, used on the GPU
        cond = backend.to_device(cond, like.device)
    return Where.apply(cond, _lift(input, like), _lift(other, like))


__all__ = ["Function", "arange", "cat", "default_generator", "full", "full_like", "manual_seed",
           "ones", "ones_like", "rand", "rand_like", "randn", "randn_like", "stack", "tensor",
           "where", "zeros", "zeros_like"]
