"""``Tensor``: an array (numpy or cupy) with a gradient and the Function that made it.

The class is thin on purpose: arithmetic and methods call the Functions of
``autograd/ops.py``; the backward pass lives in ``autograd/engine.py``. Method names,
arguments and semantics mirror ``torch.Tensor`` (``dim``/``keepdim``, with numpy's
``axis``/``keepdims`` accepted as aliases).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from scratchvision import backend
from scratchvision.autograd import engine


def _resolve_dim(dim, axis, name: str = "dim"):
    if axis is not None:
        if dim is not None:
            raise TypeError(f"pass only one of {name}= and axis=")
        return axis
    return dim


class Tensor:
    """A multi-dimensional array that records the ops applied to it for ``backward()``.

    Parameters
    ----------
    data : array-like (numpy or cupy array, nested lists, scalar, or Tensor)
    requires_grad : bool
        Accumulate d(output)/d(self) into ``.grad`` on ``backward()``; floating dtypes only.
    dtype : dtype, optional. Python floats and lists of floats become the default dtype
        (float32); numpy/cupy arrays keep their dtype, as ``torch.from_numpy`` does.
    device : 'cpu' or 'cuda', optional. Defaults to where ``data`` lives.
    """

    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to Tensor operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if device is None:
            device = backend.device_of(data)
        xp = backend.array_module_for_device(device)
        if backend.is_cupy_array(data) != (device == "cuda"):
            data = backend.to_device(data, device)
        from_python = not hasattr(data, "dtype")
        arr = xp.asarray(data, dtype=dtype)
        if dtype is None and from_python and arr.dtype == np.float64:
            arr = arr.astype(backend.get_default_dtype())
        self.data = arr
        self.grad = None
        self.grad_fn = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: Any, requires_grad: bool) -> "Tensor":
        """Wrap an array produced by an op (no copy, no dtype change)."""
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t.grad_fn = None
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def xp(self):
        """The array module (numpy or cupy) that holds this tensor."""
        return backend.get_array_module(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The data as a numpy array (shares memory on the CPU; copied from the GPU)."""
        return backend.to_device(self.data, "cpu")

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no grad)."""
        return Tensor._make(self.data, False)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retains_grad = True

    def to(self, *args: Any, dtype: Any = None, device: str | None = None) -> "Tensor":
        """Move to a device ('cpu'/'cuda') and/or cast to a dtype; differentiable."""
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in backend.DEVICES + ("gpu",):
                device = a
            elif isinstance(a, str) and a not in ("float32", "float64", "float16", "int64",
                                                  "int32", "uint8", "bool"):
                backend.check_device(a)  # raises a clear "unknown device"
            else:
                dtype = a
        out = self
        if device is not None and backend.check_device(device) != self.device:
            out = ops.ToDevice.apply(out, device=backend.check_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = ops.Cast.apply(out, dtype=np.dtype(dtype))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def clone(self) -> "Tensor":
        return ops.Clone.apply(self)

    def copy_(self, src: Any) -> "Tensor":
        """Overwrite the data in place (no graph)."""
        src = src.data if isinstance(src, Tensor) else src
        self.data[...] = self.xp.asarray(src)
        return self

    def zero_(self) -> "Tensor":
        self.data[...] = 0
        return self

    def fill_(self, value: float) -> "Tensor":
        self.data[...] = value
        return self

    # ----------------------------------------------------------------- backward
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have "
                               "a grad_fn: nothing to differentiate")
        engine.backward(self, grad, retain_graph=retain_graph)

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other): return ops.Add.apply(self, _lift(other, self))
    def __radd__(self, other): return ops.Add.apply(_lift(other, self), self)
    def __sub__(self, other): return ops.Sub.apply(self, _lift(other, self))
    def __rsub__(self, other): return ops.Sub.apply(_lift(other, self), self)
    def __mul__(self, other): return ops.Mul.apply(self, _lift(other, self))
    def __rmul__(self, other): return ops.Mul.apply(_lift(other, self), self)
    def __truediv__(self, other): return ops.Div.apply(self, _lift(other, self))
    def __rtruediv__(self, other): return ops.Div.apply(_lift(other, self), self)
    def __neg__(self): return ops.Neg.apply(self)
    def __matmul__(self, other): return ops.MatMul.apply(self, _lift(other, self))
    def __rmatmul__(self, other): return ops.MatMul.apply(_lift(other, self), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return ops.PowTensor.apply(self, exponent)
        return ops.PowScalar.apply(self, exponent=exponent)

    def __rpow__(self, base):
        return ops.PowTensor.apply(_lift(base, self), self)

    def __iadd__(self, other):
        return self._inplace(self + other)

    def __isub__(self, other):
        return self._inplace(self - other)

    def __imul__(self, other):
        return self._inplace(self * other)

    def __itruediv__(self, other):
        return self._inplace(self / other)

    def _inplace(self, result: "Tensor") -> "Tensor":
        if self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf tensor that requires grad is used in an in-place "
                               "operation: wrap it in `with sv.no_grad():` or use .data")
        # Rebind to the out-of-place result: the graph stays correct, as for a new node.
        self.data, self.grad_fn, self.requires_grad = (result.data, result.grad_fn,
                                                       result.requires_grad)
        return self

    # comparisons: tensors of bools, never part of the graph
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(op(self.data, other), False)

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)  # type: ignore
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)  # type: ignore
    def __invert__(self): return Tensor._make(~self.data, False)
    def __and__(self, other): return self._compare(other, lambda a, b: a & b)
    def __or__(self, other): return self._compare(other, lambda a, b: a | b)
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.data.size} elements is "
                               "ambiguous: use .any() or .all()")
        return bool(self.data.reshape(()).item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other

    def any(self) -> "Tensor":
        return Tensor._make(self.xp.asarray(self.data.any()), False)

    def all(self) -> "Tensor":
        return Tensor._make(self.xp.asarray(self.data.all()), False)

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis=None):
        dim = _resolve_dim(dim, axis)
        out = self.data.argmax(axis=dim)
        if keepdim and dim is not None:
            out = self.xp.expand_dims(out, dim)
        return Tensor._make(self.xp.asarray(out, dtype=np.int64), False)

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis=None):
        dim = _resolve_dim(dim, axis)
        out = self.data.argmin(axis=dim)
        if keepdim and dim is not None:
            out = self.xp.expand_dims(out, dim)
        return Tensor._make(self.xp.asarray(out, dtype=np.int64), False)

    # ----------------------------------------------------------------- elementwise
    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)
    def abs(self): return ops.Abs.apply(self)
    def relu(self): return ops.ReLU.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def tanh(self): return ops.Tanh.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01):
        return ops.LeakyReLU.apply(self, negative_slope=negative_slope)

    def clamp(self, min: float | None = None, max: float | None = None):  # noqa: A002
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return ops.Clamp.apply(self, lo=min, hi=max)

    clip = clamp

    def pow(self, exponent): return self ** exponent

    # ----------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return ops.Sum.apply(self, dim=_norm_dims(_resolve_dim(dim, axis), self.ndim),
                             keepdim=keepdim if keepdims is None else keepdims)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return ops.Mean.apply(self, dim=_norm_dims(_resolve_dim(dim, axis), self.ndim),
                              keepdim=keepdim if keepdims is None else keepdims)

    def var(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: int | None = None, axis=None, keepdims=None, ddof=None):
        if correction is None:
            correction = ddof if ddof is not None else (1 if unbiased in (None, True) else 0)
        return ops.Var.apply(self, dim=_norm_dims(_resolve_dim(dim, axis), self.ndim),
                             correction=correction,
                             keepdim=keepdim if keepdims is None else keepdims)

    def std(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, **kw):
        return self.var(dim, unbiased, keepdim, **kw).sqrt()

    def amax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return ops.AMax.apply(self, dim=_norm_dims(_resolve_dim(dim, axis), self.ndim),
                              keepdim=keepdim if keepdims is None else keepdims, mode="max")

    def amin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return ops.AMax.apply(self, dim=_norm_dims(_resolve_dim(dim, axis), self.ndim),
                              keepdim=keepdim if keepdims is None else keepdims, mode="min")

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """Like torch: no dim -> the maximum (a 0-d tensor); with dim -> (values, indices)."""
        return self._max_min(dim, keepdim, axis, keepdims, "max")

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return self._max_min(dim, keepdim, axis, keepdims, "min")

    def _max_min(self, dim, keepdim, axis, keepdims, mode):
        dim = _resolve_dim(dim, axis)
        keepdim = keepdim if keepdims is None else keepdims
        if dim is None:
            return ops.AMax.apply(self, dim=None, keepdim=False, mode=mode)
        if not isinstance(dim, int):
            raise TypeError(f"{mode}(dim) takes one int dim, got {dim!r}: use amax for several")
        fn = ops.MaxAlongDim()
        values = fn.run(self, dim=_norm_dims(dim, self.ndim)[0], keepdim=keepdim, mode=mode)
        return MaxResult(values, Tensor._make(fn.indices, False))

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape):
        return ops.Reshape.apply(self, shape=_shape_arg(shape))

    def view(self, *shape):
        return ops.Reshape.apply(self, shape=_shape_arg(shape))

    def view_as(self, other: "Tensor"):
        return self.reshape(other.shape)

    def reshape_as(self, other: "Tensor"):
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return self.reshape(shape)

    def permute(self, *dims):
        dims = _shape_arg(dims)
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dims")
        return ops.Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int, dim1: int):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return ops.Permute.apply(self, dims=tuple(dims))

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dims, got shape {self.shape}")
        return self.T

    def squeeze(self, dim: int | None = None):
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            d = dim % self.ndim
            shape = self.shape if self.shape[d] != 1 else self.shape[:d] + self.shape[d + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim: int):
        d = dim % (self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *sizes):
        sizes = _shape_arg(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes for a tensor of shape {self.shape}")
        target = tuple(self.shape[i - lead] if (s == -1 and i >= lead) else s
                       for i, s in enumerate(sizes))
        return ops.Expand.apply(self, shape=target)

    def expand_as(self, other: "Tensor"):
        return self.expand(other.shape)

    def split(self, split_size_or_sections, dim: int = 0):
        return split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0):
        size = -(-self.shape[dim] // chunks)
        return split(self, size, dim)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_index_arg(index))

    def __setitem__(self, index, value):
        if self.requires_grad:
            raise RuntimeError("in-place assignment into a tensor that requires grad is not "
                               "supported: build the result with sv.where or sv.cat")
        self.data[_index_arg(index)] = value.data if isinstance(value, Tensor) else value

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), precision=4, separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != backend.get_default_dtype() and self.dtype.kind == "f":
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


class MaxResult(tuple):
    """(values, indices), as ``torch.max(x, dim)`` returns."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


# ---------------------------------------------------------------------- helpers
def _lift(value: Any, like: Tensor) -> Tensor:
    """Turn a Python scalar or array into a Tensor of ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        return value
    xp = like.xp
    if np.isscalar(value) or getattr(value, "ndim", None) == 0:
        dtype = like.dtype if like.dtype.kind == "f" or isinstance(value, (int, np.integer)) \
            else backend.get_default_dtype()
        return Tensor._make(xp.asarray(value, dtype=dtype), False)
    return Tensor(value, device=like.device)


def _shape_arg(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _norm_dims(dim, ndim: int):
    """None stays None; an int or sequence of ints becomes a sorted tuple of positive dims."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dims")
        out.append(int(d) % max(ndim, 1))
    return tuple(sorted(out))


def _index_arg(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> list[Tensor]:
    """Split into pieces of ``split_size`` (last may be smaller) or of the listed sizes."""
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split_size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split sections {sizes} do not sum to the size {n} of dim {dim}")
    d = dim % tensor.ndim
    pieces, start = [], 0
    for s in sizes:
        index = (slice(None),) * d + (slice(start, start + s),)
        pieces.append(tensor[index])
        start += s
    return pieces


from scratchvision.autograd import ops  # noqa: E402  (ops needs Tensor defined first)


def _raw(value: Any) -> Any:
    """The array inside a Tensor; anything else unchanged (numpy's own ``.data`` is a
    memoryview, so ``getattr(x, 'data', x)`` would be wrong for arrays)."""
    return value.data if isinstance(value, Tensor) else value
