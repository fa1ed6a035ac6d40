"""Indexing kernels on arrays: gather, scatter, scatter_add, index_select, index_add,
masked_fill (torch semantics), plus the stable sorts and top-k of ``sorting.py``.

Every version has the same signature, on canonical 3-D arrays (see ``reference.py`` for
the index arithmetic)::

    gather(x, index) -> y                 x (O, N, I), index (O, J, I) -> y (O, J, I)
    scatter_add(x, index, src) -> y       index, src (O, J, I) -> y (O, N, I)
    scatter(x, index, src) -> y           the same, last j wins
    index_select(x, index) -> y           index (J,) -> y (O, J, I)
    index_add(x, index, src) -> y         index (J,), src (O, J, I) -> y (O, N, I)
    masked_fill(x, mask, value) -> y      flat (T,) arrays

Versions: ``reference`` (plain loops, the specification), ``numpy`` (fancy indexing:
``take_along_axis``, ``add.at``; ``vectorized.py``, it runs on CuPy arrays too) and ``cpu``
(Numba, parallel and deterministic). Dispatch is the family's ``KernelFamily``
(``kernels/versions.py``): ``VERSIONS`` for the copying ops, ``ADD_VERSIONS`` for the adding
ones, the same versions with two ``default_cpu`` rules. ``impl=None`` picks ``cpu`` for
NumPy arrays of the dtypes Numba compiles (bool only for copies) and ``numpy`` otherwise
(CuPy arrays, float16, ...); there is no GPU version, CuPy arrays run ``numpy`` and any
other ``impl`` on them is a ``ValueError``. ``impl='cpu'`` on a dtype Numba does not
compile is a ``TypeError``. ``masked_fill``'s broadcast output is checked against
``validation.LIMITS["max_elements"]`` (a small input and mask can broadcast to a huge one).

The public functions below take N-d arrays and a ``dim`` as torch does, and own the
validation, done on the host before any compiled kernel runs: ``dim`` in range (a 0-d
array counts as 1-d), integer index dtypes (converted to int64), every index inside its
dim (one device-to-host read on a GPU), shapes as torch requires them. Then they return
early for empty work, cut ``x``/``src`` down to the index's extent where torch allows a
smaller index, and hand the versions C-contiguous 3-D views.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from scratchvision.backend import check_same_device, get_array_module, is_cupy_array
from scratchvision.kernels.indexing.sorting import argsort, check_k, sort, topk
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_limit

__all__ = ["IMPLS", "argsort", "check_bounds", "check_index", "check_k", "gather", "index_add",
           "index_select", "masked_fill", "normalize_dim", "scatter", "scatter_add", "sort",
           "topk"]

# dtypes the Numba version is compiled for; the adds need arithmetic (no bool)
_NUMBA_KINDS = {"copy": "biuf", "add": "iuf"}


def _numba_compiles(x, kind: str) -> bool:
    """Whether the ``cpu`` (Numba) version handles ``x``'s dtype for a ``kind`` op."""
    return x.dtype.kind in _NUMBA_KINDS[kind] and x.dtype != np.float16


def _default_for(kind: str):
    """The ``default_cpu`` rule of ``kind`` ops on NumPy arrays: ``cpu`` where Numba
    compiles the dtype, else ``numpy``."""
    def default(x, *others):
        return "cpu" if _numba_compiles(x, kind) else "numpy"
    return default


# One family, two default rules: copies (gather, scatter, index_select, masked_fill) run
# bool arrays in Numba, adds (scatter_add, index_add) do not. No GPU version: CuPy arrays
# run ``numpy`` (CuPy's fancy indexing).
VERSIONS = KernelFamily("indexing", algorithms={"numpy": "vectorized"}, gpu=(),
                        on_cupy=("numpy",), default_cpu=_default_for("copy"))
ADD_VERSIONS = KernelFamily("indexing", algorithms={"numpy": "vectorized"}, gpu=(),
                            on_cupy=("numpy",), default_cpu=_default_for("add"))
IMPLS = VERSIONS.impls


def _version(impl: str | None, x, op: str, kind: str = "copy"):
    """The module that runs ``impl`` (None: the default of ``kind`` ops) for array ``x``."""
    family = ADD_VERSIONS if kind == "add" else VERSIONS
    impl = family.resolve(impl, x, op=op)                # CuPy arrays: 'numpy' only
    if impl == "cpu" and not _numba_compiles(x, kind):
        raise TypeError(f"{op}: impl='cpu' does not support dtype {x.dtype}; use "
                        "impl='numpy'")
    return family.module(impl, x)


# ---------------------------------------------------------------------- validation
def normalize_dim(dim, ndim: int, op: str, shape=None) -> int:
    """``dim`` as an int in [0, max(ndim, 1)) (a 0-d array has one dim, as in torch)."""
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    n = max(ndim, 1)
    if not -n <= d < n:
        where = f" of shape {tuple(shape)}" if shape is not None else f" with {ndim} dims"
        raise IndexError(f"{op}: dim {d} is out of range for an input{where} "
                         f"(expected in [{-n}, {n - 1}])")
    return d % n


def check_index(index, op: str, name: str = "index"):
    """An integer index array as int64 (TypeError for any other dtype)."""
    xp = get_array_module(index)
    index = xp.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must have an integer dtype (int64), got "
                        f"{index.dtype}")
    return index.astype(np.int64, copy=False)


def check_bounds(index, size: int, dim: int, op: str, shape, name: str = "index") -> None:
    """IndexError unless every element of ``index`` is in [0, size)."""
    if index.size == 0:
        return
    if is_cupy_array(index):     # one device-to-host read for both
        lo, hi = (int(v) for v in get_array_module(index).stack([index.min(),
                                                                 index.max()]).tolist())
    else:
        lo, hi = int(index.min()), int(index.max())
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise IndexError(f"{op}: {name} {bad} is out of bounds for dim {dim} with size {size} "
                         f"(input shape {tuple(shape)})")


def _atleast_1d(a):
    return a.reshape(1) if a.ndim == 0 else a


def _outer_inner(shape, dim: int) -> tuple[int, int]:
    return math.prod(shape[:dim]), math.prod(shape[dim + 1:])


def _region(index_shape, dim: int):
    """The part of the input an index of ``index_shape`` addresses: all of ``dim``, the
    index's extent in every other dim (torch lets the index be smaller there)."""
    return tuple(slice(None) if d == dim else slice(0, s) for d, s in enumerate(index_shape))


def _check_like(index, other, op: str, dim: int, names: tuple[str, str], skip_dim: bool):
    """index.shape[d] <= other.shape[d] (except at ``dim`` when ``skip_dim``)."""
    if index.ndim != other.ndim:
        raise ValueError(f"{op}: {names[0]} must have as many dims as {names[1]}, got "
                         f"{names[0]} shape {tuple(index.shape)} and {names[1]} shape "
                         f"{tuple(other.shape)}")
    for d, (s, t) in enumerate(zip(index.shape, other.shape)):
        if s > t and not (skip_dim and d == dim):
            allowed = f" (only dim {dim} may be larger)" if skip_dim else ""
            raise ValueError(f"{op}: {names[0]} shape {tuple(index.shape)} is larger than "
                             f"{names[1]} shape {tuple(other.shape)} in dim {d}{allowed}")


# ---------------------------------------------------------------------- gather / scatter
def gather(x, dim: int, index, impl: str | None = None):
    """``y[..., j, ...] = x[..., index[..., j, ...], ...]`` along ``dim``: y has index's shape.

    ``index`` has as many dims as ``x`` and is no larger than ``x`` in the other dims.
    """
    check_same_device("gather", input=x, index=index)
    xp = get_array_module(x)
    x, index = xp.asarray(x), check_index(index, "gather")
    d = normalize_dim(dim, x.ndim, "gather", x.shape)
    x1, idx1 = _atleast_1d(x), _atleast_1d(index)
    _check_like(idx1, x1, "gather", d, ("index", "input"), skip_dim=True)
    if index.size == 0:
        return xp.empty(index.shape, x.dtype)
    check_bounds(idx1, x1.shape[d], d, "gather", x.shape)
    n_outer, n_inner = _outer_inner(idx1.shape, d)
    x3 = xp.ascontiguousarray(x1[_region(idx1.shape, d)]).reshape(n_outer, -1, n_inner)
    i3 = xp.ascontiguousarray(idx1).reshape(n_outer, -1, n_inner)
    return _version(impl, x, "gather").gather(x3, i3).reshape(index.shape)


def _scatter(op: str, x, dim, index, src, impl, kind: str):
    check_same_device(op, input=x, index=index, src=src)
    xp = get_array_module(x)
    x, index = xp.asarray(x), check_index(index, op)
    d = normalize_dim(dim, x.ndim, op, x.shape)
    if np.isscalar(src):                         # a scalar value: one per index element
        src = xp.full(index.shape, src, dtype=x.dtype)
    src = xp.asarray(src)
    if src.dtype != x.dtype:
        raise TypeError(f"{op}: src dtype {src.dtype} must match input dtype {x.dtype}")
    x1, idx1, src1 = _atleast_1d(x), _atleast_1d(index), _atleast_1d(src)
    _check_like(idx1, x1, op, d, ("index", "input"), skip_dim=True)
    _check_like(idx1, src1, op, d, ("index", "src"), skip_dim=False)
    if index.size == 0:
        return x.copy()
    check_bounds(idx1, x1.shape[d], d, op, x.shape)
    n_outer, n_inner = _outer_inner(idx1.shape, d)
    region = _region(idx1.shape, d)
    part = x1[region]
    x3 = xp.ascontiguousarray(part).reshape(n_outer, -1, n_inner)
    i3 = xp.ascontiguousarray(idx1).reshape(n_outer, -1, n_inner)
    s3 = xp.ascontiguousarray(src1[tuple(slice(0, s) for s in idx1.shape)])
    s3 = s3.reshape(n_outer, -1, n_inner)
    y3 = getattr(_version(impl, x, op, kind), op)(x3, i3, s3)
    if part.shape == x1.shape:
        return y3.reshape(x.shape)
    y = x1.copy()
    y[region] = y3.reshape(part.shape)
    return y.reshape(x.shape)


def scatter_add(x, dim: int, index, src, impl: str | None = None):
    """``y = x`` copied, then ``y[..., index[..., j, ...], ...] += src[..., j, ...]``.

    ``index``, ``x`` and ``src`` have the same number of dims; ``index`` is no larger than
    ``src`` in any dim and no larger than ``x`` except along ``dim``; only the first
    ``index.shape`` elements of ``src`` are used. Repeated targets sum in index order.
    """
    return _scatter("scatter_add", x, dim, index, src, impl, "add")


def scatter(x, dim: int, index, src, impl: str | None = None):
    """Like ``scatter_add`` but writing instead of adding; ``src`` may be a scalar.

    Several writes to one element: the last one in row-major order of ``index`` wins
    (torch leaves this case unspecified), on every version and device.
    """
    return _scatter("scatter", x, dim, index, src, impl, "copy")


# ---------------------------------------------------------------------- index_select / add
def _check_vector_index(index, x, op: str):
    if index.ndim > 1:
        raise IndexError(f"{op}: index must be 0-d or 1-D, got shape {tuple(index.shape)}")
    if x.ndim == 0 and index.size != 1:
        raise IndexError(f"{op}: the index into a 0-d input must have one element, got "
                         f"{index.size}")
    return _atleast_1d(index)


def index_select(x, dim: int, index, impl: str | None = None):
    """Whole slices ``x.select(dim, index[j])`` stacked along ``dim`` (index 0-d or 1-D)."""
    check_same_device("index_select", input=x, index=index)
    xp = get_array_module(x)
    x, index = xp.asarray(x), check_index(index, "index_select")
    d = normalize_dim(dim, x.ndim, "index_select", x.shape)
    idx1 = _check_vector_index(index, x, "index_select")
    x1 = _atleast_1d(x)
    out_shape = x1.shape[:d] + (idx1.shape[0],) + x1.shape[d + 1:]
    if x.ndim == 0:
        out_shape = ()
    if math.prod(out_shape) == 0:
        return xp.empty(out_shape, x.dtype)
    check_bounds(idx1, x1.shape[d], d, "index_select", x.shape)
    n_outer, n_inner = _outer_inner(x1.shape, d)
    x3 = xp.ascontiguousarray(x1).reshape(n_outer, -1, n_inner)
    y3 = _version(impl, x, "index_select").index_select(x3, xp.ascontiguousarray(idx1))
    return y3.reshape(out_shape)


def index_add(x, dim: int, index, src, impl: str | None = None):
    """``y = x`` copied, then ``y.select(dim, index[j]) += src.select(dim, j)``.

    ``src`` has ``x``'s shape with ``dim`` of size ``len(index)``; repeated indices sum in
    index order.
    """
    check_same_device("index_add", input=x, index=index, src=src)
    xp = get_array_module(x)
    x, index, src = xp.asarray(x), check_index(index, "index_add"), xp.asarray(src)
    d = normalize_dim(dim, x.ndim, "index_add", x.shape)
    idx1 = _check_vector_index(index, x, "index_add")
    if src.dtype != x.dtype:
        raise TypeError(f"index_add: src dtype {src.dtype} must match input dtype {x.dtype}")
    x1 = _atleast_1d(x)
    want = x1.shape[:d] + (idx1.shape[0],) + x1.shape[d + 1:]
    if tuple(_atleast_1d(src).shape) != want:
        raise ValueError(f"index_add: src must have shape {want} (input shape "
                         f"{tuple(x.shape)} with dim {d} of size len(index) = "
                         f"{idx1.shape[0]}), got {tuple(src.shape)}")
    if src.size == 0:
        return x.copy()
    check_bounds(idx1, x1.shape[d], d, "index_add", x.shape)
    n_outer, n_inner = _outer_inner(x1.shape, d)
    x3 = xp.ascontiguousarray(x1).reshape(n_outer, -1, n_inner)
    s3 = xp.ascontiguousarray(src).reshape(n_outer, -1, n_inner)
    y3 = _version(impl, x, "index_add", "add").index_add(x3, xp.ascontiguousarray(idx1), s3)
    return y3.reshape(x.shape)


# ---------------------------------------------------------------------- masked_fill
def masked_fill(x, mask, value, impl: str | None = None):
    """``value`` where ``mask`` is True, ``x`` elsewhere; ``x`` and ``mask`` broadcast (the
    result has the broadcast shape and ``x``'s dtype). ``mask`` must be bool."""
    check_same_device("masked_fill", input=x, mask=mask)
    xp = get_array_module(x)
    x, mask = xp.asarray(x), xp.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must have dtype bool, got {mask.dtype}")
    if getattr(value, "ndim", 0) != 0:
        raise ValueError(f"masked_fill: value must be a scalar or a 0-d array, got shape "
                         f"{tuple(value.shape)}")
    try:
        shape = np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast "
                         f"with input of shape {tuple(x.shape)}") from None
    value = x.dtype.type(value.item() if hasattr(value, "item") else value)
    check_limit(shape, "masked_fill output (input and mask broadcast)")
    if math.prod(shape) == 0:
        return xp.empty(shape, x.dtype)
    xf = xp.ascontiguousarray(xp.broadcast_to(x, shape)).reshape(-1)
    mf = xp.ascontiguousarray(xp.broadcast_to(mask, shape)).reshape(-1)
    return _version(impl, x, "masked_fill").masked_fill(xf, mf, value).reshape(shape)
