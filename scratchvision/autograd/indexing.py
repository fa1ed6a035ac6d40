"""Indexing, sorting and scanning ops with torch's signatures, results and dtypes:
``topk``, ``sort``, ``argsort``, ``nonzero``, ``unique``, ``masked_fill``, ``gather``,
``scatter``, ``scatter_add``, ``index_select``, ``index_add``, ``cumsum``, ``cumprod``,
``prod``, ``repeat``, ``flip``, ``roll``, ``unbind``.

Each differentiable op is one ``Function`` (forward on raw arrays, backward returning one
gradient per argument) and a snake_case wrapper that takes Tensors (or array-likes) and
returns Tensors. The array work is in ``scratchvision.kernels.indexing``, which also
validates (dims, index dtypes and bounds, shapes) before any compiled kernel runs.

The backward passes pair up:

* ``gather``  <-> ``scatter_add``: ``y[.., j, ..] = x[.., index[.., j, ..], ..]`` sends
  ``gy[.., j, ..]`` back to ``x[.., index[.., j, ..], ..]``; a repeated index adds up.
* ``index_select`` <-> ``index_add`` the same way, for whole slices.
* ``scatter``: the input's gradient is ``gy`` with the overwritten positions zeroed; each
  source element gets ``gy`` at its target, **if it is the element that was written**.
* ``sort``/``topk`` send each gradient back to the index it came from.
* ``cumsum``: ``gx = reversed cumsum of gy``;  ``repeat``: the tiles' gradients summed.
* ``prod``/``cumprod`` are exact with zeros: they use products of the *other* elements
  (exclusive prefix and suffix products), never a division by zero.

Conventions where torch leaves the result open, chosen once for every device:

* **Ties** in ``sort``, ``argsort`` and ``topk`` go to the lower index first, ascending and
  descending (``stable`` is accepted and always on). torch's CPU ``topk`` may order tied
  values otherwise (``topk([1, 3, 3, 2, 3], 2)`` gives indices ``[2, 4]`` there, ``[1, 2]``
  here). ``topk(sorted=False)`` returns the sorted order too. NaN counts as the largest.
* **scatter with a repeated target**: the last source in row-major order of ``index``
  wins, and only it receives a gradient (torch gives every duplicate one, which is not
  the derivative of any of its forward results).
* ``unique`` is always sorted (torch's CPU result for ``sorted=False`` is sorted too), and
  every NaN is its own value (as in torch).
"""
from __future__ import annotations

import operator
from typing import Any, NamedTuple

import numpy as np

from scratchvision import backend
from scratchvision.autograd import ops
from scratchvision.autograd.function import Function, unbroadcast, xp_of
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels import indexing as K

__all__ = ["ValuesIndices", "argsort", "cumprod", "cumsum", "flip", "gather", "index_add",
           "index_select", "masked_fill", "nonzero", "prod", "repeat", "roll", "scatter",
           "scatter_add", "sort", "topk", "unbind", "unique"]


class ValuesIndices(NamedTuple):
    """(values, indices), as ``torch.sort`` and ``torch.topk`` return them."""

    values: Any
    indices: Any


# ---------------------------------------------------------------------- helpers
def _tensor(x: Any) -> Tensor:
    """A Tensor as is; anything else (array, list, scalar) wrapped, as torch.as_tensor."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _array_on(a: Any, like: Tensor, op: str, name: str):
    """``a`` as a Tensor (kept) or an array (from an array-like) on ``like``'s device."""
    device = a.device if isinstance(a, Tensor) else backend.device_of(a)
    if device != like.device and (isinstance(a, Tensor) or device == "cuda"):
        raise ValueError(f"{op}: {name} is on '{device}' but input is on '{like.device}'")
    return a if isinstance(a, Tensor) else like.xp.asarray(a)


def _int_result(xp, array) -> Tensor:
    return Tensor._make(xp.asarray(array).astype(np.int64, copy=False), False)


def _needs(fn: Function, i: int) -> bool:
    return fn.needs_input_grad[i]


def _cut_to(g, shape, full_shape):
    """``g`` (of ``shape``) placed at the start of zeros of ``full_shape``."""
    if tuple(shape) == tuple(full_shape):
        return g
    out = xp_of(g).zeros(full_shape, g.dtype)
    out[tuple(slice(0, s) for s in shape)] = g
    return out


def _sum_dtype(dtype) -> np.dtype:
    """torch's accumulation dtype of sum/prod/cumsum: int64 for bool and integers."""
    dtype = np.dtype(dtype)
    return np.dtype(np.int64) if dtype.kind in "biu" else dtype


# ---------------------------------------------------------------------- sort / topk
class Sort(Function):
    """Values of the stable sort along ``dim``; ``self.indices`` holds the int64 indices."""

    def forward(self, a, dim, descending=False):
        values, self.indices = K.sort(a, dim, descending)
        self.in_shape, self.dim = a.shape, dim
        return values

    def backward(self, gy):
        return (_route_back(gy, self.in_shape, self.dim, self.indices),)


class TopK(Function):
    """The k best values along ``dim``; ``self.indices`` holds their int64 indices."""

    def forward(self, a, k, dim, largest=True):
        a1 = a.reshape(1) if a.ndim == 0 else a
        values, idx = K.topk(a1, k, dim, largest)
        if a.ndim == 0 and k == 1:
            values, idx = values.reshape(()), idx.reshape(())
        self.in_shape, self.dim, self.indices = a.shape, dim, idx
        return values

    def backward(self, gy):
        return (_route_back(gy, self.in_shape, self.dim, self.indices),)


def _route_back(gy, in_shape, dim, indices):
    """Each gradient back to the (distinct) index along ``dim`` it was taken from."""
    xp = xp_of(gy)
    if len(in_shape) == 0:
        return gy.reshape(()) if gy.size else xp.zeros((), gy.dtype)
    return K.scatter_add(xp.zeros(in_shape, gy.dtype), dim, indices, gy)


def sort(input: Any, dim: int = -1, descending: bool = False,
         stable: bool = False) -> ValuesIndices:
    """Sort along ``dim``: ``(values, indices)`` with ``values = input.gather(dim, indices)``.

    Parameters
    ----------
    input : Tensor of any shape (a 0-d tensor sorts as one element).
    dim : the dim to sort along (negative counts from the end).
    descending : largest first.
    stable : accepted for torch's signature; the sort is always stable: equal elements keep
        their index order in both directions. NaN sorts as the largest value.

    Returns
    -------
    ValuesIndices (values: input's shape and dtype, differentiable; indices: int64).
    """
    x = _tensor(input)
    d = K.normalize_dim(dim, x.ndim, "sort", x.shape)
    fn = Sort()
    values = fn.run(x, dim=d, descending=bool(descending))
    return ValuesIndices(values, _int_result(x.xp, fn.indices))


def argsort(input: Any, dim: int = -1, descending: bool = False,
            stable: bool = False) -> Tensor:
    """int64 indices that sort ``input`` along ``dim`` (stable, ties by lower index)."""
    x = _tensor(input)
    d = K.normalize_dim(dim, x.ndim, "argsort", x.shape)
    return _int_result(x.xp, K.argsort(x.data, d, bool(descending)))


def topk(input: Any, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim``.

    Parameters
    ----------
    input : Tensor (..., n, ...) with ``n`` along ``dim``.
    k : 0 <= k <= n, else ValueError.
    largest : pick the largest (True) or the smallest.
    sorted : accepted for torch's signature; the result is always sorted best first.

    Returns
    -------
    ValuesIndices, each of input's shape with ``dim`` of size k: values (differentiable)
    and int64 indices. Ties go to the lower index; NaN counts as the largest value. A 0-d
    input counts as one element (k=1 gives 0-d results, k=0 empty ones of shape (0,),
    where torch returns the element itself).
    """
    x = _tensor(input)
    d = K.normalize_dim(dim, x.ndim, "topk", x.shape)
    n = x.shape[d] if x.ndim else 1
    k = K.check_k(k, n, d, x.shape)
    fn = TopK()
    values = fn.run(x, k=k, dim=d, largest=bool(largest))
    return ValuesIndices(values, _int_result(x.xp, fn.indices))


# ---------------------------------------------------------------------- nonzero / unique
def nonzero(input: Any, *, as_tuple: bool = False):
    """Indices of the nonzero elements, in row-major order.

    Returns
    -------
    ``as_tuple=False``: an int64 Tensor (N, ndim), one row per nonzero element (a 0-d input
    gives (N, 0)). ``as_tuple=True``: a tuple of ndim int64 Tensors (N,), one per dim (a 0-d
    input counts as 1-d).
    """
    x = _tensor(input)
    xp = x.xp
    data = x.data.reshape(1) if x.ndim == 0 else x.data
    coords = xp.nonzero(data)
    if as_tuple:
        return tuple(_int_result(xp, c) for c in coords)
    if x.ndim == 0:
        return Tensor._make(xp.zeros((int(coords[0].shape[0]), 0), np.int64), False)
    return _int_result(xp, xp.stack(coords, axis=1))


def unique(input: Any, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None):
    """The distinct elements (or, with ``dim``, distinct slices along ``dim``), sorted.

    Returns
    -------
    ``output`` alone, or the tuple ``(output, inverse, counts)`` with only the requested
    parts: ``inverse`` (int64) maps each element of ``input`` to its place in ``output``
    and has input's shape (with ``dim``: shape (input.shape[dim],)); ``counts`` (int64)
    counts each output element. ``sorted=False`` is accepted and sorts too (as torch's CPU
    result). Not differentiable. Each NaN is a distinct value.
    """
    x = _tensor(input)
    xp = x.xp
    kwargs = {"return_inverse": True, "return_counts": True}
    if dim is None:
        data = x.data.reshape(-1)
    else:
        d = K.normalize_dim(dim, x.ndim, "unique", x.shape)
        if any(s == 0 for i, s in enumerate(x.shape) if i != d):
            raise ValueError(f"unique: input of shape {x.shape} has zero-sized dims other "
                             f"than dim {d}: there are no slices to compare")
        data = x.data.reshape(1) if x.ndim == 0 else x.data
        kwargs["axis"] = d
    try:
        out, inverse, counts = xp.unique(data, equal_nan=False, **kwargs)
    except TypeError:  # an array library without equal_nan
        out, inverse, counts = xp.unique(data, **kwargs)
    inverse = inverse.reshape(x.shape if dim is None else (-1,))
    result = [Tensor._make(out, False)]
    if return_inverse:
        result.append(_int_result(xp, inverse))
    if return_counts:
        result.append(_int_result(xp, counts))
    return result[0] if len(result) == 1 else tuple(result)


# ---------------------------------------------------------------------- masked_fill
class MaskedFill(Function):
    """``value`` where ``mask``, ``a`` elsewhere (broadcast); differentiable in a and value."""

    def forward(self, a, mask, value, impl=None):
        self.mask, self.in_shape, self.impl = mask, a.shape, impl
        self.value_dtype = getattr(value, "dtype", None)
        return K.masked_fill(a, mask, value, impl=impl)

    def backward(self, gy):
        xp = xp_of(gy)
        ga = gv = None
        if _needs(self, 0):   # filled positions do not depend on a
            ga = unbroadcast(K.masked_fill(gy, self.mask, 0, impl=self.impl), self.in_shape)
        if _needs(self, 2):   # value feeds every filled position
            gv = xp.asarray(xp.where(xp.broadcast_to(self.mask, gy.shape), gy, 0).sum())
            gv = gv.astype(self.value_dtype or gy.dtype)
        return ga, None, gv


def masked_fill(input: Any, mask: Any, value: Any, *, impl: str | None = None) -> Tensor:
    """``value`` where ``mask`` is True, ``input`` elsewhere.

    Parameters
    ----------
    input : Tensor.
    mask : bool Tensor broadcastable with input (the result has the broadcast shape).
    value : a number or a 0-d Tensor (cast to input's dtype); a 0-d Tensor that requires
        grad receives the sum of the gradient over the filled positions.
    impl : kernel version of the forward and backward passes (keyword-only): None, or
        one of ``kernels.indexing.VERSIONS.impls`` (``"reference"``, ``"cpu"``, ``"numpy"``).
    """
    x = _tensor(input)
    m = _array_on(mask, x, "masked_fill", "mask")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got a "
                             f"tensor of shape {value.shape}")
        if not value.requires_grad:
            value = value.item()
        elif value.device != x.device:
            raise ValueError(f"masked_fill: value is on '{value.device}' but input is on "
                             f"'{x.device}'")
    return MaskedFill.apply(x, m, value, impl=impl)


# ---------------------------------------------------------------------- gather / scatter
class Gather(Function):
    def forward(self, a, index, dim, impl=None):
        self.in_shape, self.dim, self.impl = a.shape, dim, impl
        self.save_for_backward(index)
        return K.gather(a, dim, index, impl=impl)

    def backward(self, gy):
        (index,) = self.saved_tensors
        xp = xp_of(gy)
        return K.scatter_add(xp.zeros(self.in_shape, gy.dtype), self.dim, index, gy,
                             impl=self.impl), None


def gather(input: Any, dim: int, index: Any, *, sparse_grad: bool = False,
           impl: str | None = None) -> Tensor:
    """``out[i][j][k] = input[index[i][j][k]][j][k]`` for dim 0 (and so on for other dims).

    Parameters
    ----------
    input : Tensor (..., n, ...).
    dim : the dim the index runs along.
    index : integer Tensor with input's number of dims, no larger than input in the other
        dims (it may be larger along ``dim``); every value in [0, n).
    sparse_grad : accepted for torch's signature (the gradient is always dense).
    impl : kernel version of the forward and backward passes (keyword-only): None, or
        one of ``kernels.indexing.VERSIONS.impls`` (``"reference"``, ``"cpu"``, ``"numpy"``).

    Returns
    -------
    Tensor of index's shape and input's dtype; its gradient is added back (scatter_add)
    to the gathered positions, so a repeated index accumulates.
    """
    x = _tensor(input)
    idx = _array_on(index, x, "gather", "index")
    return Gather.apply(x, idx, dim=K.normalize_dim(dim, x.ndim, "gather", x.shape), impl=impl)


class ScatterAdd(Function):
    def forward(self, a, index, src, dim, impl=None):
        self.dim, self.src_shape, self.impl = dim, src.shape, impl
        self.save_for_backward(index)
        return K.scatter_add(a, dim, index, src, impl=impl)

    def backward(self, gy):
        (index,) = self.saved_tensors
        gsrc = None
        if _needs(self, 2):   # every source element's gradient is gy at its target
            gsrc = _cut_to(K.gather(gy, self.dim, index, impl=self.impl), index.shape,
                           self.src_shape)
        return (gy if _needs(self, 0) else None), None, gsrc


class Scatter(Function):
    """Write ``src`` (an array or a scalar) at ``index``; ``reduce`` None, 'add', 'multiply'."""

    def forward(self, a, index, src, dim, reduce=None, impl=None):
        self.dim, self.reduce, self.impl = dim, reduce, impl
        self.in_shape, self.src_shape = a.shape, getattr(src, "shape", None)
        self.save_for_backward(index)
        if reduce is None:
            return K.scatter(a, dim, index, src, impl=impl)
        if reduce == "add":
            return K.scatter_add(a, dim, index, src, impl=impl)
        return _scatter_multiply(a, dim, index, src)

    def backward(self, gy):
        if self.reduce == "multiply":
            raise RuntimeError("scatter(reduce='multiply') is not differentiable (as in torch)")
        (index,) = self.saved_tensors
        xp = xp_of(gy)
        ga = gsrc = None
        if _needs(self, 0):   # overwritten positions no longer depend on the input
            ga = gy if self.reduce == "add" else K.scatter(gy, self.dim, index, 0,
                                                           impl=self.impl)
        if _needs(self, 2):
            g = K.gather(gy, self.dim, index, impl=self.impl)   # (index shape)
            if self.reduce is None:   # only the element that was written gets a gradient
                pos = xp.arange(index.size, dtype=np.int64).reshape(index.shape)
                owner = K.scatter(xp.full(self.in_shape, -1, np.int64), self.dim, index,
                                  pos, impl=self.impl)          # the last writer per target
                won = K.gather(owner, self.dim, index, impl=self.impl) == pos
                g = xp.where(won, g, xp.zeros((), g.dtype))
            gsrc = _cut_to(g, index.shape, self.src_shape)
        return ga, None, gsrc


def _scatter_multiply(a, dim: int, index, src):
    """y = a; y[target] *= src (torch's deprecated reduce='multiply'), on the host."""
    K.scatter(a, dim, index, src)              # validates shapes, bounds and dtypes
    y = backend.to_device(a, "cpu").copy()
    idx = backend.to_device(K.check_index(index, "scatter"), "cpu")
    if idx.size:
        y1, idx1 = y.reshape(-1) if y.ndim == 0 else y, idx.reshape(-1) if idx.ndim == 0 else idx
        coords = list(np.indices(idx1.shape, sparse=True))
        coords[dim] = idx1                     # element (.., j, ..) -> y[.., index, ..]
        if np.isscalar(src):
            values = src
        else:
            values = backend.to_device(src, "cpu")
            values = (values.reshape(1) if values.ndim == 0 else values)[
                tuple(slice(0, n) for n in idx1.shape)]
        np.multiply.at(y1, tuple(coords), values)
    return backend.to_device(y, backend.device_of(a))


def scatter(input: Any, dim: int, index: Any, src: Any = None, value: Any = None,
            reduce: str | None = None, *, impl: str | None = None) -> Tensor:
    """Copy of ``input`` with ``src[i][j][k]`` written at ``out[index[i][j][k]][j][k]``
    (dim 0; likewise for other dims), or the scalar ``value`` at every index.

    Parameters
    ----------
    input : Tensor.
    dim : the dim the index runs along.
    index : integer Tensor with input's number of dims, no larger than ``src`` in any dim
        and no larger than input except along ``dim``.
    src : Tensor of input's dtype (only its first index.shape elements are used), or a
        number (as torch's ``scatter(dim, index, 0.5)``).
    value : a number written at every index (instead of ``src``).
    reduce : None (overwrite), 'add' or 'multiply' (torch's deprecated reductions; 'add'
        is differentiable here, 'multiply' is not).
    impl : kernel version of the forward and backward passes (keyword-only): None, or
        one of ``kernels.indexing.VERSIONS.impls`` (``"reference"``, ``"cpu"``, ``"numpy"``).

    Several writes to one element: the last in row-major order of ``index`` wins and only
    that source element receives a gradient. The input's gradient is zero at the
    overwritten positions.
    """
    x = _tensor(input)
    op = "scatter"
    if reduce not in (None, "add", "multiply"):
        raise ValueError(f"{op}: reduce must be None, 'add' or 'multiply', got {reduce!r}")
    if src is not None and value is not None:
        raise ValueError(f"{op}: pass src or value, not both")
    if src is None and value is None:
        raise ValueError(f"{op}: pass src (a tensor) or value (a number)")
    idx = _array_on(index, x, op, "index")
    if src is None or np.isscalar(src):
        source = value if src is None else src
        if isinstance(source, Tensor):
            source = source.item()
    else:
        source = src if isinstance(src, Tensor) else _array_on(src, x, op, "src")
    return Scatter.apply(x, idx, source, dim=K.normalize_dim(dim, x.ndim, op, x.shape),
                         reduce=reduce, impl=impl)


def scatter_add(input: Any, dim: int, index: Any, src: Any, *,
                impl: str | None = None) -> Tensor:
    """Copy of ``input`` with ``src[i][j][k]`` added at ``out[index[i][j][k]][j][k]``
    (dim 0; likewise for other dims). Repeated targets sum, in row-major order of index.

    ``index`` has input's number of dims and is no larger than ``src`` in any dim and no
    larger than input except along ``dim``; ``src`` has input's dtype. Differentiable in
    input (gradient ``gy``) and src (``gy`` gathered at index). ``impl``: the kernel
    version of both passes, as in ``gather``.
    """
    x = _tensor(input)
    idx = _array_on(index, x, "scatter_add", "index")
    s = src if isinstance(src, Tensor) else _array_on(src, x, "scatter_add", "src")
    return ScatterAdd.apply(x, idx, s, dim=K.normalize_dim(dim, x.ndim, "scatter_add",
                                                            x.shape), impl=impl)


# ---------------------------------------------------------------------- index_select / add
class IndexSelect(Function):
    def forward(self, a, index, dim, impl=None):
        self.in_shape, self.dim, self.impl = a.shape, dim, impl
        self.save_for_backward(index)
        return K.index_select(a, dim, index, impl=impl)

    def backward(self, gy):
        (index,) = self.saved_tensors
        xp = xp_of(gy)
        if len(self.in_shape) == 0:
            return gy.reshape(()), None
        return K.index_add(xp.zeros(self.in_shape, gy.dtype), self.dim, index, gy,
                           impl=self.impl), None


def index_select(input: Any, dim: int, index: Any, *, impl: str | None = None) -> Tensor:
    """The slices ``input.select(dim, i)`` for ``i`` in ``index`` (0-d or 1-D integer),
    stacked along ``dim``; repeated indices accumulate their gradients (index_add).
    ``impl``: the kernel version of both passes, as in ``gather``."""
    x = _tensor(input)
    idx = _array_on(index, x, "index_select", "index")
    return IndexSelect.apply(x, idx, dim=K.normalize_dim(dim, x.ndim, "index_select",
                                                          x.shape), impl=impl)


class IndexAdd(Function):
    def forward(self, a, index, src, dim, alpha=1, impl=None):
        self.dim, self.alpha, self.impl = dim, alpha, impl
        self.save_for_backward(index)
        if alpha != 1:
            src = (src * alpha).astype(src.dtype, copy=False)
        return K.index_add(a, dim, index, src, impl=impl)

    def backward(self, gy):
        (index,) = self.saved_tensors
        gsrc = None
        if _needs(self, 2):
            gsrc = K.index_select(gy, self.dim, index, impl=self.impl)
            if self.alpha != 1:
                gsrc = gsrc * self.alpha
        return (gy if _needs(self, 0) else None), None, gsrc


def index_add(input: Any, dim: int, index: Any, source: Any, *,
              alpha: float = 1, impl: str | None = None) -> Tensor:
    """Copy of ``input`` with ``alpha * source.select(dim, j)`` added to the slice
    ``index[j]`` along ``dim``; ``source`` has input's shape with ``dim`` of len(index).
    ``impl``: the kernel version of both passes, as in ``gather``."""
    x = _tensor(input)
    idx = _array_on(index, x, "index_add", "index")
    s = source if isinstance(source, Tensor) else _array_on(source, x, "index_add", "source")
    return IndexAdd.apply(x, idx, s, dim=K.normalize_dim(dim, x.ndim, "index_add", x.shape),
                          alpha=alpha, impl=impl)


# ---------------------------------------------------------------------- cumsum / cumprod
def _flip1(a, dim):
    return xp_of(a).flip(a, axis=dim)


class Cumsum(Function):
    def forward(self, a, dim, dtype):
        self.dim, self.in_dtype, self.in_shape = dim, a.dtype, a.shape
        a1 = a.reshape(1) if a.ndim == 0 else a
        return xp_of(a).cumsum(a1, axis=dim, dtype=dtype).reshape(a.shape)

    def backward(self, gy):   # x_k feeds y_i for every i >= k: a reversed cumsum
        xp = xp_of(gy)
        g1 = gy.reshape(1) if gy.ndim == 0 else gy
        g = _flip1(xp.cumsum(_flip1(g1, self.dim), axis=self.dim), self.dim)
        return (g.reshape(self.in_shape).astype(self.in_dtype, copy=False),)


def cumsum(input: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sums along ``dim``: ``y_i = x_0 + ... + x_i``. Integer and bool inputs give
    int64 (as torch), unless ``dtype`` says otherwise."""
    x = _tensor(input)
    d = K.normalize_dim(dim, x.ndim, "cumsum", x.shape)
    out = np.dtype(dtype) if dtype is not None else _sum_dtype(x.dtype)
    return Cumsum.apply(x, dim=d, dtype=out)


def _exclusive_cumprod(a, dim: int, reverse: bool = False):
    """Products of the elements before (reverse: after) each one along ``dim``: 1 at the
    start. Used for gradients that must stay exact when some elements are zero."""
    xp = xp_of(a)
    if reverse:
        return _flip1(_exclusive_cumprod(_flip1(a, dim), dim), dim)
    ones = xp.ones_like(xp.take(a, xp.arange(min(a.shape[dim], 1)), axis=dim))
    head = xp.take(a, xp.arange(max(a.shape[dim] - 1, 0)), axis=dim)
    return xp.concatenate([ones, xp.cumprod(head, axis=dim)], axis=dim)


class Cumprod(Function):
    def forward(self, a, dim, dtype):
        self.dim, self.in_dtype, self.in_shape = dim, a.dtype, a.shape
        a1 = a.reshape(1) if a.ndim == 0 else a
        self.save_for_backward(a1)
        return xp_of(a).cumprod(a1, axis=dim, dtype=dtype).reshape(a.shape)

    def backward(self, gy):
        # dy_i/dx_k = prod_{j <= i, j != k} x_j = P_k * prod_{k < j <= i} x_j with P_k the
        # product before k, so gx_k = P_k * S_k with S_k = gy_k + x_{k+1} * S_{k+1}: a
        # reversed linear recurrence, exact with zeros (no division).
        (a,) = self.saved_tensors
        xp = xp_of(gy)
        g = (gy.reshape(1) if gy.ndim == 0 else gy).astype(a.dtype, copy=False)
        dim = self.dim
        n = a.shape[dim]
        s = xp.empty_like(g)
        take = [slice(None)] * a.ndim

        def at(k):
            take[dim] = k
            return tuple(take)
        if n:
            s[at(n - 1)] = g[at(n - 1)]
        for k in range(n - 2, -1, -1):
            s[at(k)] = g[at(k)] + a[at(k + 1)] * s[at(k + 1)]
        gx = _exclusive_cumprod(a, dim) * s
        return (gx.reshape(self.in_shape).astype(self.in_dtype, copy=False),)


def cumprod(input: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running products along ``dim``: ``y_i = x_0 * ... * x_i`` (integer/bool inputs give
    int64). The gradient is exact when some ``x`` are zero."""
    x = _tensor(input)
    d = K.normalize_dim(dim, x.ndim, "cumprod", x.shape)
    out = np.dtype(dtype) if dtype is not None else _sum_dtype(x.dtype)
    return Cumprod.apply(x, dim=d, dtype=out)


# ---------------------------------------------------------------------- prod
class Prod(Function):
    def forward(self, a, dim, keepdim, dtype):
        xp = xp_of(a)
        self.dim, self.keepdim, self.in_shape, self.in_dtype = dim, keepdim, a.shape, a.dtype
        a1 = a.reshape(1) if a.ndim == 0 and dim is not None else a
        y = xp.asarray(xp.prod(a1, axis=dim, keepdims=keepdim and dim is not None,
                               dtype=dtype))
        if a.ndim == 0 and keepdim:
            y = y.reshape(())
        self.save_for_backward(a, y)
        return y

    def backward(self, gy):
        a, y = self.saved_tensors
        xp = xp_of(gy)
        # a (flattened for dim=None) with the reduced dim at `dim`; y, gy broadcast against it
        flat = a.reshape(-1) if self.dim is None or a.ndim == 0 else a
        d = 0 if self.dim is None or a.ndim == 0 else self.dim
        keep = (1,) * flat.ndim if self.dim is None or a.ndim == 0 else \
            flat.shape[:d] + (1,) + flat.shape[d + 1:]
        g, yk = gy.reshape(keep), y.reshape(keep).astype(gy.dtype, copy=False)
        zero = flat == 0
        if not bool(zero.any()):   # d prod / d x_k = prod / x_k (torch's formula)
            gx = g * yk / flat
        else:                      # the product of the others: exact with zeros
            others = _exclusive_cumprod(flat, d) * _exclusive_cumprod(flat, d, reverse=True)
            gx = g * xp.where(zero, others, yk / xp.where(zero, 1, flat))
        return (gx.reshape(self.in_shape).astype(self.in_dtype, copy=False),)


def prod(input: Any, dim: int | None = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """Product of all elements (``dim=None``, a 0-d result) or along one int ``dim``.

    Integer and bool inputs give int64 (as torch). The gradient is exact with zeros: an
    element's gradient is the product of the *other* elements of its slice.
    """
    x = _tensor(input)
    if dim is not None:
        if not isinstance(dim, (int, np.integer)):
            raise TypeError(f"prod: dim must be one int (or None), got {dim!r}")
        dim = K.normalize_dim(dim, x.ndim, "prod", x.shape)
    out = np.dtype(dtype) if dtype is not None else _sum_dtype(x.dtype)
    return Prod.apply(x, dim=dim, keepdim=bool(keepdim), dtype=out)


# ---------------------------------------------------------------------- repeat / flip / roll
class Repeat(Function):
    def forward(self, a, sizes):
        self.in_shape, self.sizes = a.shape, sizes
        return xp_of(a).tile(a, sizes)

    def backward(self, gy):
        # output dim k has sizes[k] tiles of length n_k: view it as (sizes[k], n_k), sum tiles
        shape = (1,) * (len(self.sizes) - len(self.in_shape)) + tuple(self.in_shape)
        split = [v for s, n in zip(self.sizes, shape) for v in (s, n)]
        g = gy.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (g.reshape(self.in_shape),)


def repeat(input: Any, *sizes: int) -> Tensor:
    """Tile ``input`` ``sizes[k]`` times along dim k (torch's ``Tensor.repeat``, NumPy's
    ``tile``). ``sizes`` (ints, or one tuple) has at least input's number of dims; extra
    leading sizes add leading dims. Differentiable: the tiles' gradients are summed."""
    x = _tensor(input)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not sizes:
        raise TypeError("repeat: missing the repeat sizes")
    sizes = tuple(operator.index(s) for s in sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} sizes {sizes} for an input of shape {x.shape}: "
                         f"the number of sizes can not be smaller than the number of dims")
    if any(s < 0 for s in sizes):
        raise ValueError(f"repeat: sizes must be non-negative, got {sizes}")
    return Repeat.apply(x, sizes=sizes)


class Flip(Function):
    def forward(self, a, dims):
        self.dims = dims
        return xp_of(a).flip(a, axis=dims).copy() if dims else a.copy()

    def backward(self, gy):
        return (xp_of(gy).flip(gy, axis=self.dims) if self.dims else gy,)


def _dims(dims, x: Tensor, op: str) -> tuple[int, ...]:
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    out = tuple(K.normalize_dim(d, x.ndim, op, x.shape) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dims {dims} name a dim more than once")
    return out


def flip(input: Any, dims) -> Tensor:
    """Reverse the order of the elements along ``dims`` (a tuple of ints; one int is
    accepted too). Returns a copy, as torch."""
    x = _tensor(input)
    dims = _dims(dims, x, "flip")
    if x.ndim == 0:
        dims = ()
    return Flip.apply(x, dims=dims)


class Roll(Function):
    def forward(self, a, shifts, dims):
        self.shifts, self.dims, self.in_shape = shifts, dims, a.shape
        xp = xp_of(a)
        if dims is None:
            return xp.roll(a.reshape(-1), shifts).reshape(a.shape)
        return xp.roll(a, shifts, axis=dims)

    def backward(self, gy):
        xp = xp_of(gy)
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        if self.dims is None:
            return (xp.roll(gy.reshape(-1), back).reshape(self.in_shape),)
        return (xp.roll(gy, back, axis=self.dims),)


def roll(input: Any, shifts, dims=None) -> Tensor:
    """Shift elements along ``dims`` by ``shifts`` (wrapping around); ``dims=None`` rolls the
    flattened tensor and restores the shape."""
    x = _tensor(input)
    if dims is None:
        if not isinstance(shifts, (int, np.integer)):
            shifts = tuple(shifts)
            if len(shifts) != 1:
                raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}")
            shifts = shifts[0]
        return Roll.apply(x, shifts=int(shifts), dims=None)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts and dims must align, got shifts {shifts} and "
                         f"dims {dims}")
    dims = tuple(K.normalize_dim(d, x.ndim, "roll", x.shape) for d in dims)
    if x.ndim == 0:
        return Roll.apply(x, shifts=0, dims=None)
    return Roll.apply(x, shifts=tuple(int(s) for s in shifts), dims=dims)


# ---------------------------------------------------------------------- unbind
def unbind(input: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim`` as a tuple of tensors (each one dim less), differentiable
    (each slice is an indexing op)."""
    x = _tensor(input)
    if x.ndim == 0:
        raise IndexError("unbind: a 0-d tensor has no dim to unbind")
    d = K.normalize_dim(dim, x.ndim, "unbind", x.shape)
    lead = (slice(None),) * d
    return tuple(ops.GetItem.apply(x, index=lead + (i,)) for i in range(x.shape[d]))
