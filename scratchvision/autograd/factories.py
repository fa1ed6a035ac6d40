"""Tensor factories (``sv.tensor``, ``zeros``, ``randn`` ...) and the global seed.

Random factories draw from one NumPy ``Generator`` seeded by ``manual_seed``; on the GPU
they draw on the CPU and copy, so a seed gives the same numbers on every device.

Arguments are checked as torch checks them, before anything is allocated: sizes are ints
(``zeros(2.5)``, ``empty(True)`` raise ``TypeError``), never negative (``ValueError``; torch's
is a RuntimeError), and within ``validation.LIMITS['max_elements']``; ``arange`` needs a
finite, nonzero step whose sign agrees with ``end - start``; ``full`` needs a scalar fill;
``tensor`` refuses strings, object arrays and ragged lists (see ``Tensor``).
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from scratchvision import backend
from scratchvision.autograd import promotion
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.ops import Cat, Stack, Where
from scratchvision.autograd.tensor import Tensor, _shape_arg
from scratchvision.validation import check_int, check_limit, check_number

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


def _new(shape, fill, dtype, device, requires_grad, what: str = "factory") -> Tensor:
    """A new tensor of ``shape`` made by ``fill(xp, shape, dtype)``, after the checks."""
    xp = backend.array_module_for_device(device or "cpu")
    dtype = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{what}(): size must be a tuple of ints, got {shape!r} "
                        f"({type(shape).__name__})")
    shape = _shape_arg(shape, f"{what}()")
    if any(s < 0 for s in shape):
        raise ValueError(f"{what}(): trying to create a tensor with negative dimension "
                         f"{min(shape)}: {shape}")
    check_limit(shape, f"{what}()")
    t = Tensor._make(fill(xp, shape, dtype), False)
    return t.requires_grad_(requires_grad) if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(size, lambda xp, s, d: xp.zeros(s, d), dtype, device, requires_grad,
                "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(size, lambda xp, s, d: xp.ones(s, d), dtype, device, requires_grad,
                "ones")


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Filled with ``fill_value``; the dtype follows it as torch: bool, int64 or float32."""
    if isinstance(fill_value, (Tensor, np.ndarray)) and fill_value.ndim == 0:
        fill_value = fill_value.item()
    if not isinstance(fill_value, (numbers.Number, np.generic)) or \
            isinstance(fill_value, (np.str_, np.bytes_)):
        raise TypeError(f"full(): fill_value must be a number, got {fill_value!r} "
                        f"({type(fill_value).__name__})")
    if dtype is None:
        dtype = promotion.result_type(fill_value.item() if isinstance(fill_value, Tensor)
                                      else fill_value)
    fill_value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    return _new(size, lambda xp, s, d: xp.full(s, fill_value, d), dtype, device, requires_grad,
                "full")


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uninitialised in torch; zeros here (deterministic, and just as fast for NumPy)."""
    return _new(size, lambda xp, s, d: xp.zeros(s, d), dtype, device, requires_grad,
                "empty")


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    n = check_int(n, "eye(): n", minimum=0)
    m = None if m is None else check_int(m, "eye(): m", minimum=0)
    return _new((n, n if m is None else m), lambda xp, s, d: xp.eye(s[0], s[1], dtype=d),
                dtype, device, requires_grad, "eye")


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` points evenly from ``start`` to ``end`` inclusive."""
    steps = check_int(steps, "linspace(): steps", minimum=0)
    start, end = (v.item() if isinstance(v, Tensor) else v for v in (start, end))
    check_number(start, "linspace(): start", finite=False)
    check_number(end, "linspace(): end", finite=False)
    return _new((steps,), lambda xp, s, d: xp.linspace(start, end, steps).astype(d), dtype,
                device, requires_grad, "linspace")


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None,
             requires_grad=False) -> Tensor:
    steps = check_int(steps, "logspace(): steps", minimum=0)
    return _new((steps,), lambda xp, s, d: (base ** xp.linspace(start, end, steps)).astype(d),
                dtype, device, requires_grad, "logspace")


def meshgrid(*tensors, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors; ``indexing='ij'`` (matrix, torch's default) or
    ``'xy'`` (Cartesian: the first two outputs' dims swapped). Differentiable (expand)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    for t in tensors:
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-D or 1-D tensors, got shape {t.shape}")
    tensors = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:
        tensors[0], tensors[1] = tensors[1], tensors[0]
    shape = tuple(t.shape[0] for t in tensors)
    grids = []
    for i, t in enumerate(tensors):
        view = [1] * len(tensors)
        view[i] = -1
        grids.append(t.reshape(view).expand(shape))
    if swap:  # built as (y, x, ...) in 'ij' order: hand back the x grid first
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Integers uniform on [low, high): ``randint(high, size)`` or ``randint(low, high,
    size)``, int64 unless ``dtype`` is given."""
    if size is None:                 # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: missing the size argument")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    return _new(size, lambda xp, s, d: xp.asarray(_rng.integers(low, high, s).astype(d)),
                np.int64 if dtype is None else dtype, device, requires_grad, "randint")


def randperm(n: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of 0 .. n-1 (int64)."""
    n = check_int(n, "randperm(): n", minimum=0)
    return _new((n,), lambda xp, s, d: xp.asarray(_rng.permutation(n).astype(d)),
                np.int64 if dtype is None else dtype, device, requires_grad, "randperm")


def randint_like(t, low, high=None, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, t.shape, dtype=dtype or t.dtype, device=device or t.device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array``'s memory (and keeps its dtype), as torch.from_numpy."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._make(array, False)


def as_tensor(data: Any, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but without a copy when ``data`` already has the dtype and device."""
    if isinstance(data, Tensor):
        return data.to(*(a for a in (device, dtype) if a is not None))
    if (isinstance(data, np.ndarray) or backend.is_cupy_array(data)) and \
            (dtype is None or np.dtype(dtype) == data.dtype) and \
            (device is None or backend.check_device(str(device)) == backend.device_of(data)):
        return Tensor._make(data, False)
    return Tensor(data, dtype=dtype, device=None if device is None else str(device))


def _random(fill, size, dtype, device, requires_grad, what: str) -> Tensor:
    def make(xp, s, d):
        return xp.asarray(fill(s).astype(d, copy=False))
    return _new(size, make, dtype, device, requires_grad, what)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1)."""
    return _random(lambda s: _rng.random(s), size, dtype, device, requires_grad, "rand")


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    return _random(lambda s: _rng.standard_normal(s), size, dtype, device, requires_grad,
                   "randn")


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
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    for name, v in (("start", start), ("end", end), ("step", step)):
        check_number(v, f"arange(): {name}")        # torch: "unsupported range: 0 -> nan"
    if step == 0:
        raise ValueError("arange(): step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange(): upper bound and lower bound inconsistent with step sign: "
                         f"start={start}, end={end}, step={step}")
    check_limit(int(np.ceil((end - start) / step)), "arange()")
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


def where(condition, input=None, other=None) -> Tensor:  # noqa: A002
    """Elementwise ``condition ? input : other``, differentiable in input and other; the
    dtype is promoted as torch (``where(c, 1.0, 0.0)`` is float32). With only a condition,
    the indices of its nonzero elements (``nonzero(as_tuple=True)``)."""
    if input is None and other is None:
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.nonzero(condition, as_tuple=True)
    cond = condition.data if isinstance(condition, Tensor) else condition
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    if like is None:
        dtype = promotion.result_type(input, other)
        cond = xp_of(cond).asarray(cond)
        xp = xp_of(cond)
        return Tensor._make(xp.where(cond, xp.asarray(input, dtype), xp.asarray(other, dtype)),
                            False)
    from scratchvision.autograd.tensor import _promoted  # noqa: PLC0415
    if backend.device_of(cond) != like.device:  # a mask made on the host, used on the GPU
        cond = backend.to_device(cond, like.device)
    if getattr(cond, "dtype", None) != np.bool_:
        cond = like.xp.asarray(cond).astype(bool)
    return Where.apply(cond, *_promoted(input, other))


__all__ = ["Function", "arange", "as_tensor", "cat", "default_generator", "empty", "eye",
           "from_numpy", "full", "full_like", "linspace", "logspace", "manual_seed", "meshgrid",
           "ones", "ones_like", "rand", "rand_like", "randint", "randint_like", "randn",
           "randn_like", "randperm", "stack", "tensor", "where", "zeros", "zeros_like"]
