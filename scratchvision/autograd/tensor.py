"""``Tensor``: an array (numpy or cupy) with a gradient and the Function that made it.

The class is thin on purpose: arithmetic and methods call the Functions of
``autograd/ops.py``; the backward pass lives in ``autograd/engine.py``. Method names,
arguments and semantics mirror ``torch.Tensor`` (``dim``/``keepdim``, with numpy's
``axis``/``keepdims`` accepted as aliases).

Three pieces of bookkeeping make it behave like torch beyond the numerics:

- ``.grad`` is a Tensor (``p.grad.norm()``, ``p.grad.zero_()``); assigning an array wraps it.
- Every tensor carries a **version counter**, bumped by each in-place op; views share their
  base's counter. A Function that saved a tensor for backward checks the version when
  backward runs and raises instead of using overwritten values.
- **In-place ops** (``add_``, ``x += y``, ``x[i] = v`` ...) write into the tensor's own
  array, so views see the change. On a tensor in the graph they also give it a new
  ``grad_fn`` (the out-of-place op applied to a copy of the old value): earlier consumers
  keep pointing at the old history (graph edges name Functions, see ``function.py``).
  Binary ops promote dtypes by torch's rules (``promotion.py``), not NumPy's.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from scratchvision import backend
from scratchvision.autograd import engine, promotion
from scratchvision.autograd.function import VersionCounter, is_grad_enabled, no_grad
from scratchvision.autograd.hooks import RemovableHandle


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
        device = backend.device_of(data) if device is None else backend.check_device(str(device))
        xp = backend.array_module_for_device(device)
        if backend.is_cupy_array(data) != (device == "cuda"):
            data = backend.to_device(data, device)
        from_python = not hasattr(data, "dtype")
        arr = _as_numeric_array(xp, data, dtype)
        if dtype is None and from_python and arr.dtype == np.float64:
            arr = arr.astype(backend.get_default_dtype())
        self.data = arr
        self._grad = None
        self.grad_fn = None
        self._retains_grad = False
        self._version_counter = VersionCounter()
        self._base = None
        self._stale_history = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: Any, requires_grad: bool) -> "Tensor":
        """Wrap an array produced by an op (no copy, no dtype change)."""
        t = cls.__new__(cls)
        t.data = data
        t._grad = None
        t.grad_fn = None
        t._retains_grad = False
        t._version_counter = VersionCounter()
        t._base = None
        t._stale_history = False
        t.requires_grad = requires_grad
        return t

    # ----------------------------------------------------------------- grad and versions
    @property
    def grad(self) -> "Tensor | None":
        """The accumulated gradient (a Tensor of this tensor's shape), or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is None:
            self._grad = None
            return
        if not isinstance(value, Tensor):
            value = Tensor._make(self.xp.asarray(value), False)
        if value.shape != self.shape:
            raise RuntimeError(f"assigned grad has data of a different size: grad shape "
                               f"{value.shape}, tensor shape {self.shape}")
        if value.device != self.device:
            raise RuntimeError(f"assigned grad is on {value.device} but the tensor is on "
                               f"{self.device}")
        self._grad = value

    @property
    def _version(self) -> int:
        """How many in-place modifications this tensor (or a view of its memory) has seen."""
        return self._version_counter.value

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
    def device(self) -> "device":
        return _CPU if type(self.data) is np.ndarray else device(backend.device_of(self.data))

    @property
    def is_cuda(self) -> bool:
        return backend.is_cupy_array(self.data)

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def element_size(self) -> int:
        return int(self.data.dtype.itemsize)

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

    nelement = numel

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

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: the data on the host (what torch allows for CPU tensors)."""
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no grad); shares the version counter."""
        t = Tensor._make(self.data, False)
        t._version_counter = self._version_counter
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn, self.requires_grad = None, False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self.requires_grad = requires_grad
        return self

    def register_post_accumulate_grad_hook(self, hook) -> "RemovableHandle":
        """``hook(tensor)`` runs once per ``backward`` on this leaf, after the gradient
        of that backward has been accumulated into ``.grad`` in full (torch's hook of the
        same name; data-parallel training starts reducing a gradient there). Returns a
        handle whose ``remove()`` unregisters it."""
        from collections import OrderedDict  # noqa: PLC0415
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, "
                            f"got {type(hook).__name__}")
        hooks = self.__dict__.get("_post_accumulate_grad_hooks")
        if hooks is None:
            hooks = self._post_accumulate_grad_hooks = OrderedDict()
        key = id(self)    # the handle must not keep the tensor alive: no reference to self
        handle = RemovableHandle(hooks, on_empty=lambda: engine.leaves_with_hooks.pop(key,
                                                                                    None))
        hooks[handle.id] = hook
        engine.leaves_with_hooks[key] = self
        return handle

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retains_grad = True
        if self.grad_fn is not None:      # tells the backward walk to look for this tensor
            self.grad_fn._output_retains_grad = True

    def to(self, *args: Any, dtype: Any = None, device: str | None = None) -> "Tensor":
        """Move to a device ('cpu'/'cuda') and/or cast to a dtype; differentiable."""
        for a in args:
            if isinstance(a, Tensor):          # x.to(other): other's dtype and device
                dtype, device = a.dtype, a.device
            elif isinstance(a, str) and a.split(":")[0] in backend.DEVICES + ("gpu",):
                device = a
            else:
                try:
                    dtype = np.dtype(a)
                except TypeError:
                    backend.check_device(a)    # raises a clear "unknown device"
                    raise
        out = self
        if device is not None and backend.check_device(device) != self.device:
            out = ops.ToDevice.apply(out, device=backend.check_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            if np.dtype(dtype).kind == "f":
                out = ops.Cast.apply(out, dtype=np.dtype(dtype))
            else:  # integer and bool tensors carry no gradient
                out = Tensor._make(out.data.astype(dtype), False)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def half(self) -> "Tensor":
        return self.to(np.float16)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def short(self) -> "Tensor":
        return self.to(np.int16)

    def byte(self) -> "Tensor":
        return self.to(np.uint8)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    def type(self, dtype: Any = None) -> "Tensor | str":
        """With no argument the type name (``'scratchvision.FloatTensor'``), else a cast."""
        if dtype is None:
            return "scratchvision." + _TYPE_NAMES.get(self.dtype.name, self.dtype.name)
        return self.to(dtype)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def clone(self) -> "Tensor":
        return ops.Clone.apply(self)

    def contiguous(self) -> "Tensor":
        """This tensor if its array is C-contiguous, else a contiguous copy (differentiable)."""
        return self if self.data.flags.c_contiguous else ops.Clone.apply(self)

    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    # ----------------------------------------------------------------- new tensors like this
    def _new(self, fill, size, dtype, device_, requires_grad):
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        xp = self.xp if device_ is None else backend.array_module_for_device(
            backend.check_device(str(device_)))
        shape = _shape_arg(size, "new tensor")
        if any(n < 0 for n in shape):
            raise ValueError(f"new tensor: negative dimension in size {shape}")
        t = Tensor._make(fill(xp, shape, dtype), False)
        return t.requires_grad_(True) if requires_grad else t

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return self._new(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return self._new(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None,
                 requires_grad=False) -> "Tensor":
        return self._new(lambda xp, s, d: xp.full(s, fill_value, d), (size,), dtype, device,
                         requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False) -> "Tensor":
        """A copy of ``data`` with this tensor's dtype and device unless given."""
        data = data.data if isinstance(data, Tensor) else data
        t = Tensor(self.xp.array(backend.to_device(np.asarray(data), "cpu")
                                 if not backend.is_cupy_array(data) else data,
                                 dtype=self.dtype if dtype is None else dtype),
                   device=str(device) if device is not None else self.device)
        return t.requires_grad_(True) if requires_grad else t

    # ----------------------------------------------------------------- in-place ops
    def _modify(self, compute, *others) -> "Tensor":
        """Apply ``compute(value, *others)`` (an out-of-place op) and write the result into
        this tensor's array, as torch's in-place ops do.

        Outside the graph the array is simply overwritten. In the graph the op runs on a
        copy of the old value that keeps the old ``grad_fn`` (so the Functions that
        consumed the old value still point at the old history), and this tensor takes the
        new op's ``grad_fn``. Either way the version counter is bumped, so a Function that
        saved the old array raises at backward time instead of using the new values.
        """
        tracked = is_grad_enabled() and (self.requires_grad or any(
            isinstance(o, Tensor) and o.requires_grad for o in others))
        if tracked and self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an "
                               "in-place operation: wrap it in `with sv.no_grad():`, or "
                               "modify a clone")
        if tracked and self._base is not None and self._base.requires_grad and \
                self._base.is_leaf:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used "
                               "in an in-place operation")
        if tracked:
            old = Tensor._make(self.data.copy(), self.requires_grad)
            old.grad_fn = self.grad_fn
            result = compute(old, *others)
        else:
            with no_grad():
                result = compute(self, *others)
        if not promotion.can_cast_in_place(result.dtype, self.dtype):
            raise RuntimeError(f"result type {result.dtype} can't be cast to the desired "
                               f"output type {self.dtype} of an in-place operation")
        if result.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape {list(result.shape)}")
        try:
            self.data[...] = result.data
        except ValueError as e:  # read-only (an expanded view) or the like
            raise RuntimeError(f"in-place operation on a tensor whose memory cannot be "
                               f"written ({e}): use an out-of-place op or .clone()") from None
        self._version_counter.value += 1
        if result.grad_fn is not None:
            self.grad_fn, self.requires_grad = result.grad_fn, True
            result.grad_fn._output = _weakref(self)
            if self._retains_grad:
                result.grad_fn._output_retains_grad = True
            if self._base is not None:
                # The base's memory changed but its history did not (torch would rebase it;
                # here `base[i] = view`, which Python's `base[i] += v` does, rebases it).
                # Until then, using the base raises instead of giving a wrong gradient.
                self._base._stale_history = True
        return self

    def copy_(self, src: Any) -> "Tensor":
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor."""
        if not isinstance(src, Tensor):
            src = Tensor(backend.to_device(np.asarray(src), self.device)
                         if not backend.is_cupy_array(src) else src)
        elif src.device != self.device:
            src = src.to(self.device)

        def assign(value, src):
            if src.dtype != value.dtype:
                src = src.to(value.dtype)
            return src.expand(value.shape) if src.shape != value.shape else src.clone()
        return self._modify(assign, src)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value: Any) -> "Tensor":
        if not self.requires_grad and not (isinstance(value, Tensor) and value.requires_grad):
            self.data[...] = value.data if isinstance(value, Tensor) else value
            self._version_counter.value += 1
            return self
        return self._modify(lambda v, f: _where_all(v, f), _lift(value, self))

    def add_(self, other, *, alpha=1): return self._modify(
        lambda v, o: v + o * alpha if alpha != 1 else v + o, other)
    def sub_(self, other, *, alpha=1): return self._modify(
        lambda v, o: v - o * alpha if alpha != 1 else v - o, other)
    def mul_(self, other): return self._modify(lambda v, o: v * o, other)
    def div_(self, other): return self._modify(lambda v, o: v / o, other)
    def pow_(self, exponent): return self._modify(lambda v, e: v ** e, exponent)
    def neg_(self): return self._modify(lambda v: -v)
    def abs_(self): return self._modify(lambda v: v.abs())
    def exp_(self): return self._modify(lambda v: v.exp())
    def log_(self): return self._modify(lambda v: v.log())
    def sqrt_(self): return self._modify(lambda v: v.sqrt())
    def relu_(self): return self._modify(lambda v: v.relu())
    def sigmoid_(self): return self._modify(lambda v: v.sigmoid())
    def tanh_(self): return self._modify(lambda v: v.tanh())
    def floor_(self): return self._modify(lambda v: v.floor())
    def ceil_(self): return self._modify(lambda v: v.ceil())
    def round_(self, decimals: int = 0): return self._modify(lambda v: v.round(decimals))

    def clamp_(self, min=None, max=None):  # noqa: A002
        return self._modify(lambda v, lo, hi: v.clamp(lo, hi), min, max)

    clip_ = clamp_

    def masked_fill_(self, mask, value):
        return self._modify(lambda v, m, f: v.masked_fill(m, f), mask, value)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        if src is not None and not isinstance(src, Tensor):  # torch: scatter_(dim, i, 0.5)
            src, value = None, src
        return self._modify(lambda v, i, s: v.scatter(dim, i, src=s, value=value,
                                                      reduce=reduce), index, src)

    def scatter_add_(self, dim, index, src):
        return self._modify(lambda v, i, s: v.scatter_add(dim, i, s), index, src)

    def index_add_(self, dim, index, source, *, alpha=1):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return self._modify(lambda v, i, s: indexing.index_add(v, dim, i, s, alpha=alpha),
                            index, source)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> "Tensor":
        from scratchvision.autograd.factories import default_generator  # noqa: PLC0415
        return self._fill_random(default_generator().uniform(a, b, self.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> "Tensor":
        from scratchvision.autograd.factories import default_generator  # noqa: PLC0415
        return self._fill_random(default_generator().normal(mean, std, self.shape))

    def _fill_random(self, values: np.ndarray) -> "Tensor":
        if self.requires_grad and self.is_leaf and is_grad_enabled():
            return self._modify(lambda v: v)  # raises the leaf error
        self.data[...] = self.xp.asarray(values.astype(self.dtype))
        self._version_counter.value += 1
        return self

    # ----------------------------------------------------------------- backward
    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, *, grad: Any = None) -> None:
        """Accumulate the gradient of this tensor into every leaf that requires grad.

        ``gradient`` is d(loss)/d(self) for a non-scalar tensor (torch's name; ``grad=``
        is accepted too). ``create_graph`` (higher-order gradients) is not supported."""
        if create_graph:
            raise NotImplementedError("backward(create_graph=True): gradients are computed "
                                      "as plain arrays here, so they cannot be differentiated")
        grad = gradient if gradient is not None else grad
        retain_graph = bool(retain_graph)
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have "
                               "a grad_fn: nothing to differentiate")
        engine.backward(self, grad, retain_graph=retain_graph)

    # ----------------------------------------------------------------- arithmetic
    # Each binary op first brings both operands to torch's result dtype (promotion.py).
    def __add__(self, other): return ops.Add.apply(*_promoted(self, other))
    def __radd__(self, other): return ops.Add.apply(*_promoted(other, self))
    def __sub__(self, other): return ops.Sub.apply(*_promoted(self, other))
    def __rsub__(self, other): return ops.Sub.apply(*_promoted(other, self))
    def __mul__(self, other): return ops.Mul.apply(*_promoted(self, other))
    def __rmul__(self, other): return ops.Mul.apply(*_promoted(other, self))
    def __truediv__(self, other): return ops.Div.apply(*_promoted(self, other, divide=True))
    def __rtruediv__(self, other): return ops.Div.apply(*_promoted(other, self, divide=True))
    def __floordiv__(self, other): return _floor_divide(self, other)
    def __rfloordiv__(self, other): return _floor_divide(other, self)
    def __mod__(self, other): return ops.Remainder.apply(*_promoted(self, other))
    def __rmod__(self, other): return ops.Remainder.apply(*_promoted(other, self))
    def __neg__(self): return ops.Neg.apply(self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()
    def __matmul__(self, other): return ops.MatMul.apply(*_promoted(self, other))
    def __rmatmul__(self, other): return ops.MatMul.apply(*_promoted(other, self))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) and exponent.ndim > 0 or \
                isinstance(exponent, np.ndarray):
            return ops.PowTensor.apply(*_promoted(self, exponent))
        base, _ = _promoted(self, exponent)
        exponent = exponent.item() if isinstance(exponent, Tensor) else exponent
        return ops.PowScalar.apply(base, exponent=exponent)

    def __rpow__(self, base):
        return ops.PowTensor.apply(*_promoted(base, self))

    # x += y is in place, as in torch: views see it, and the graph stays right
    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)
    def __ipow__(self, other): return self.pow_(other)
    def __ifloordiv__(self, other): return self._modify(lambda v, o: v // o, other)
    def __imod__(self, other): return self._modify(lambda v, o: v % o, other)
    def __iand__(self, other): return self._modify(lambda v, o: v & o, other)
    def __ior__(self, other): return self._modify(lambda v, o: v | o, other)

    def add(self, other, *, alpha=1): return self + other * alpha if alpha != 1 else self + other
    def sub(self, other, *, alpha=1): return self - other * alpha if alpha != 1 else self - other
    def mul(self, other): return self * other
    def div(self, other, *, rounding_mode=None):
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":
            return (self / other).trunc().to(promotion.result_type(self, other))
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                         f"{rounding_mode!r}")
    true_divide = divide = div
    multiply = mul
    subtract = sub
    def floor_divide(self, other): return self // other
    def remainder(self, other): return self % other
    def fmod(self, other):
        a, b = _promoted(self, other)
        return a - (a / b).trunc().detach() * b if a.dtype.kind == "f" else \
            Tensor._make(self.xp.fmod(a.data, b.data), False)

    # comparisons and logic: tensors of bools, never part of the graph
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(self.xp.asarray(op(self.data, other)), False)

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)  # type: ignore
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)  # type: ignore

    def __invert__(self):
        if self.dtype.kind == "f":
            raise TypeError(f"~ (bitwise not) is only for bool and integer tensors, got "
                            f"{self.dtype}")
        return Tensor._make(~self.data, False)

    def __and__(self, other): return self._compare(other, lambda a, b: a & b)
    def __or__(self, other): return self._compare(other, lambda a, b: a | b)
    def __xor__(self, other): return self._compare(other, lambda a, b: a ^ b)
    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
    __hash__ = object.__hash__

    def logical_not(self): return Tensor._make(self.xp.logical_not(self.data), False)
    def logical_and(self, other): return self._compare(other, self.xp.logical_and)
    def logical_or(self, other): return self._compare(other, self.xp.logical_or)
    def logical_xor(self, other): return self._compare(other, self.xp.logical_xor)
    def bitwise_not(self): return ~self
    def isnan(self): return Tensor._make(self.xp.isnan(self.data), False)
    def isinf(self): return Tensor._make(self.xp.isinf(self.data), False)
    def isfinite(self): return Tensor._make(self.xp.isfinite(self.data), False)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return self._compare(other, lambda a, b: self.xp.isclose(a, b, rtol, atol, equal_nan))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        return bool(self.isclose(other, rtol, atol, equal_nan).all())

    def equal(self, other) -> bool:
        return self.shape == other.shape and bool((self == other).all())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.data.size} elements is "
                               "ambiguous: use .any() or .all()")
        return bool(self.data.reshape(()).item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to "
                            "an index")
        return int(self.item())

    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other

    def any(self, dim=None, keepdim: bool = False) -> "Tensor":
        return Tensor._make(self.xp.asarray(self.data.any(
            axis=_norm_dims(dim, self.ndim), keepdims=keepdim)), False)

    def all(self, dim=None, keepdim: bool = False) -> "Tensor":
        return Tensor._make(self.xp.asarray(self.data.all(
            axis=_norm_dims(dim, self.ndim), keepdims=keepdim)), False)

    def count_nonzero(self, dim=None) -> "Tensor":
        return Tensor._make(self.xp.asarray(self.xp.count_nonzero(
            self.data, axis=_norm_dims(dim, self.ndim)), dtype=np.int64), False)

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
    def exp(self): return ops.Exp.apply(_floating(self))
    def log(self): return ops.Log.apply(_floating(self))
    def sqrt(self): return ops.Sqrt.apply(_floating(self))
    def rsqrt(self): return 1 / self.sqrt()
    def log2(self): return self.log() / float(np.log(2.0))
    def log10(self): return self.log() / float(np.log(10.0))
    def log1p(self): return ops.Log1p.apply(_floating(self))
    def expm1(self): return ops.Expm1.apply(_floating(self))
    def square(self): return self * self
    def reciprocal(self): return 1 / self
    def abs(self): return ops.Abs.apply(self)
    absolute = abs
    def sign(self): return ops.Rounding.apply(self, kind="sign")
    def neg(self): return -self
    negative = neg
    def sin(self): return ops.Sin.apply(_floating(self))
    def cos(self): return ops.Cos.apply(_floating(self))
    def tan(self): return self.sin() / self.cos()
    def atan2(self, other): return ops.Atan2.apply(*_promoted(self, other, divide=True))
    arctan2 = atan2
    def relu(self): return ops.ReLU.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(_floating(self))
    def tanh(self): return ops.Tanh.apply(_floating(self))
    def floor(self): return ops.Rounding.apply(self, kind="floor")
    def ceil(self): return ops.Rounding.apply(self, kind="ceil")
    def trunc(self): return ops.Rounding.apply(self, kind="trunc")
    def frac(self): return self - self.trunc()

    def round(self, decimals: int = 0):
        """Round half to even (as torch); ``decimals`` digits after the point."""
        return ops.Rounding.apply(self, kind="round", decimals=decimals)

    def leaky_relu(self, negative_slope: float = 0.01):
        return ops.LeakyReLU.apply(self, negative_slope=negative_slope)

    def softmax(self, dim: int, dtype=None):
        from scratchvision.functional import softmax  # noqa: PLC0415
        return softmax(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim: int, dtype=None):
        from scratchvision.functional import log_softmax  # noqa: PLC0415
        return log_softmax(self if dtype is None else self.to(dtype), dim)

    def clamp(self, min=None, max=None):  # noqa: A002
        """Limit to [min, max]; bounds may be numbers or tensors (broadcast), as torch."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self
            if min is not None:   # the bound wins where x < min; x keeps ties, as torch
                out = where(out < min, *_promoted(min, out))
            if max is not None:
                out = where(out > max, *_promoted(max, out))
            return out
        x = self
        if x.dtype.kind != "f" and any(isinstance(v, float) for v in (min, max)):
            x = x.to(backend.get_default_dtype())
        return ops.Clamp.apply(x, lo=min, hi=max)

    clip = clamp

    def clamp_min(self, min): return self.clamp(min=min)  # noqa: A002
    def clamp_max(self, max): return self.clamp(max=max)  # noqa: A002

    def maximum(self, other): return ops.Maximum.apply(*_promoted(self, other), mode="max")
    def minimum(self, other): return ops.Maximum.apply(*_promoted(self, other), mode="min")

    def pow(self, exponent): return self ** exponent

    def lerp(self, end, weight): return self + (end - self) * weight

    def masked_fill(self, mask, value):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.masked_fill(self, mask, value)

    def where(self, condition, other): return where(condition, self, other)

    def masked_select(self, mask):
        """The elements where ``mask`` (broadcast to this shape) is True, as a 1-D tensor."""
        mask = mask.data if isinstance(mask, Tensor) else self.xp.asarray(mask)
        return self[self.xp.broadcast_to(mask, self.shape)]

    def tril(self, diagonal: int = 0):
        """The lower triangle of the last two dims (the rest zeroed); differentiable."""
        keep = self.xp.tri(*self.shape[-2:], k=diagonal, dtype=bool)
        return where(Tensor._make(keep, False), self, 0)

    def triu(self, diagonal: int = 0):
        keep = ~self.xp.tri(*self.shape[-2:], k=diagonal - 1, dtype=bool)
        return where(Tensor._make(keep, False), self, 0)

    def diag(self, diagonal: int = 0):
        """A 1-D tensor's square diagonal matrix, or a 2-D tensor's diagonal (as torch)."""
        if self.ndim == 1:
            n = self.shape[0] + abs(diagonal)
            out = self.new_zeros(n, n)
            i = self.xp.arange(self.shape[0])
            rows, cols = (i, i + diagonal) if diagonal >= 0 else (i - diagonal, i)
            out[rows, cols] = self
            return out
        if self.ndim != 2:
            raise RuntimeError(f"diag: expects a 1-D or 2-D tensor, got shape {self.shape}")
        return self.diagonal(diagonal)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1):
        x = self.movedim(dim1, -2).movedim(dim2 if dim2 > dim1 else dim2 + 1, -1) \
            if (dim1, dim2) != (self.ndim - 2, self.ndim - 1) else self
        h, w = x.shape[-2:]
        rows = self.xp.arange(max(0, -offset), min(h, w - offset)) if w - offset > 0 else \
            self.xp.arange(0)
        return x[..., rows, rows + offset]

    def bincount(self, weights=None, minlength: int = 0):
        """Occurrences of each value 0..max of a 1-D non-negative int tensor (not
        differentiable), weighted by ``weights`` if given."""
        if self.ndim != 1 or self.dtype.kind not in "iu":
            raise RuntimeError(f"bincount: expects a 1-D integer tensor, got shape "
                               f"{self.shape} of {self.dtype}")
        if self.numel() and int(self.data.min()) < 0:
            raise RuntimeError("bincount: the input must not contain negative values")
        w = weights.data if isinstance(weights, Tensor) else weights
        out = self.xp.bincount(self.data, weights=w, minlength=minlength)
        if w is None:
            out = out.astype(np.int64)
        elif getattr(w, "dtype", None) is not None and w.dtype == np.float32:
            out = out.astype(np.float32)
        return Tensor._make(out, False)

    def repeat_interleave(self, repeats, dim=None):
        """Repeat each element ``repeats`` times along ``dim`` (flattened when None)."""
        x = self.reshape(-1) if dim is None else self
        d = 0 if dim is None else dim % self.ndim
        reps = repeats.data if isinstance(repeats, Tensor) else repeats
        index = self.xp.repeat(self.xp.arange(x.shape[d]), reps)
        return x.index_select(d, Tensor._make(index.astype(np.int64), False))

    def argwhere(self): return self.nonzero()

    def median(self, dim=None, keepdim: bool = False):
        """The lower median (torch's: element (n-1)//2 of the sorted values); with ``dim``,
        (values, indices) as ``max(dim)`` returns. Differentiable in the values."""
        if dim is None:
            flat = self.reshape(-1)
            order = flat.sort(stable=True).indices
            return flat[order[(flat.shape[0] - 1) // 2]]
        d = dim % self.ndim
        order = self.sort(d, stable=True).indices
        pick = order.narrow(d, (self.shape[d] - 1) // 2, 1)
        values, indices = self.gather(d, pick), pick
        if not keepdim:
            values, indices = values.squeeze(d), indices.squeeze(d)
        return MaxResult(values, indices)

    def cummax(self, dim: int):
        """Running maximum along ``dim``: (values, indices); on ties the later index, as
        torch. The values are a gather, so the gradient goes to the element they came from."""
        return self._cumulative_extreme(dim, np.maximum)

    def cummin(self, dim: int):
        return self._cumulative_extreme(dim, np.minimum)

    def _cumulative_extreme(self, dim: int, ufunc):
        d = dim % max(self.ndim, 1)
        a = self.xp.moveaxis(self.data.reshape(self.shape or (1,)), d, -1)   # (..., n)
        running = ufunc.accumulate(a, axis=-1) if self.xp is np else \
            self.xp.asarray(ufunc.accumulate(backend.to_device(a, "cpu"), axis=-1))
        position = self.xp.arange(a.shape[-1])
        hit = self.xp.where(a == running, position, 0)          # the newest index at the max
        index = self.xp.asarray(np.maximum.accumulate(backend.to_device(hit, "cpu"), axis=-1))
        index = self.xp.moveaxis(index, -1, d).reshape(self.shape).astype(np.int64)
        index_t = Tensor._make(index, False)
        values = self.gather(d, index_t) if self.ndim else self.clone()
        return MaxResult(values, index_t)

    def std_mean(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, **kw):
        return self.std(dim, unbiased, keepdim, **kw), self.mean(dim, keepdim)

    def var_mean(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, **kw):
        return self.var(dim, unbiased, keepdim, **kw), self.mean(dim, keepdim)

    def cumprod(self, dim: int, dtype=None):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.cumprod(self, dim, dtype=dtype)

    def roll(self, shifts, dims=None):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.roll(self, shifts, dims)

    # ----------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return ops.Sum.apply(self, dim=_norm_dims(_resolve_dim(dim, axis), self.ndim),
                             keepdim=keepdim if keepdims is None else keepdims)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None):
        if dtype is not None:
            return self.to(dtype).mean(dim, keepdim, axis=axis, keepdims=keepdims)
        if self.dtype.kind not in "fc":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be "
                               f"floating point, got {self.dtype}: use .float().mean()")
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
        if isinstance(dim, (Tensor, np.ndarray)):  # torch.max(a, b): elementwise
            return self.maximum(dim) if mode == "max" else self.minimum(dim)
        dim = _resolve_dim(dim, axis)
        keepdim = keepdim if keepdims is None else keepdims
        if dim is None:
            return ops.AMax.apply(self, dim=None, keepdim=False, mode=mode)
        if not isinstance(dim, int):
            raise TypeError(f"{mode}(dim) takes one int dim, got {dim!r}: use amax for several")
        fn = ops.MaxAlongDim()
        values = fn.run(self, dim=_norm_dims(dim, self.ndim)[0], keepdim=keepdim, mode=mode)
        return MaxResult(values, Tensor._make(fn.indices, False))

    def prod(self, dim=None, keepdim: bool = False, dtype=None):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        x = self if dtype is None else self.to(dtype)
        return indexing.prod(x, dim, keepdim)

    def cumsum(self, dim: int, dtype=None):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.cumsum(self, dim, dtype=dtype)

    def norm(self, p="fro", dim=None, keepdim: bool = False, dtype=None):
        """The vector p-norm over ``dim`` (all elements by default); 'fro' is p = 2.

        The gradient at a zero vector is 0 (a subgradient), as torch gives."""
        x = self if dtype is None else self.to(dtype)
        p = 2.0 if p in ("fro", None) else float(p)
        return ops.Norm.apply(_floating(x), p=p, dim=_norm_dims(dim, self.ndim),
                              keepdim=keepdim)

    def logsumexp(self, dim, keepdim: bool = False):
        m = self.amax(dim, keepdim=True).detach()
        out = (self - m).exp().sum(dim, keepdim=True).log() + m
        return out if keepdim else out.squeeze(dim) if isinstance(dim, int) else \
            out.reshape([n for i, n in enumerate(out.shape) if i not in
                         _norm_dims(dim, self.ndim)])

    # ----------------------------------------------------------------- linear algebra
    def matmul(self, other): return self @ other

    def mm(self, mat2):
        if self.ndim != 2 or getattr(mat2, "ndim", 0) != 2:
            raise RuntimeError(f"mm: both arguments must be matrices, got shapes {self.shape} "
                               f"and {getattr(mat2, 'shape', None)}")
        return self @ mat2

    def bmm(self, mat2):
        if self.ndim != 3 or getattr(mat2, "ndim", 0) != 3 or self.shape[0] != mat2.shape[0]:
            raise RuntimeError(f"bmm: expects two 3-D tensors with the same batch size, got "
                               f"shapes {self.shape} and {getattr(mat2, 'shape', None)}")
        return self @ mat2

    def dot(self, other):
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: 1-D tensors expected, got shapes {self.shape} and "
                               f"{other.shape}")
        return self @ other

    def outer(self, vec2): return self.reshape(-1, 1) * vec2.reshape(1, -1)

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape):
        return ops.Reshape.apply(self, shape=_shape_arg(shape, "reshape"))

    def view(self, *shape):
        """A view with another shape, as torch: only where the elements' memory layout
        allows one without a copy (always for a contiguous tensor), else ``RuntimeError``
        saying to use ``reshape``, which copies when it must."""
        shape = _infer_shape(_shape_arg(shape, "view"), self.shape)
        if self.data.size and _view_strides(self.shape, _element_strides(self.data),
                                            shape) is None:
            raise RuntimeError(f"view size is not compatible with input tensor's size and "
                               f"stride (at least one dimension spans across two contiguous "
                               f"subspaces): a view {shape} of shape {self.shape} with strides "
                               f"{_element_strides(self.data)} needs a copy. Use "
                               f".reshape(...) instead.")
        return ops.Reshape.apply(self, shape=shape)

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
        dims = _shape_arg(dims, "permute")
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
        sizes = _shape_arg(sizes, "expand")
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

    def unbind(self, dim: int = 0):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.unbind(self, dim)

    def narrow(self, dim: int, start: int, length: int):
        d = dim % self.ndim
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def movedim(self, source: int, destination: int):
        dims = list(range(self.ndim))
        dims.insert(destination % self.ndim, dims.pop(source % self.ndim))
        return self.permute(dims)

    def swapaxes(self, axis0: int, axis1: int): return self.transpose(axis0, axis1)
    swapdims = swapaxes

    def flip(self, *dims, **kw):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        if "dims" in kw:                                  # x.flip(dims=[0])
            dims = (kw.pop("dims"),)
        if kw:
            raise TypeError(f"flip: unexpected arguments {sorted(kw)}")
        return indexing.flip(self, _shape_arg(dims))

    def fliplr(self): return self.flip(1)
    def flipud(self): return self.flip(0)

    def repeat(self, *sizes):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.repeat(self, *_shape_arg(sizes))

    def tile(self, *dims):
        dims = _shape_arg(dims)
        return self.repeat((1,) * (self.ndim - len(dims)) + dims)

    # ----------------------------------------------------------------- indexing, sorting
    # (the Functions and their kernels live in indexing.py)
    def gather(self, dim: int, index):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.gather(self, dim, index)

    def scatter(self, dim: int, index, src=None, *, value=None, reduce=None):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        if src is not None and not isinstance(src, Tensor):  # torch: x.scatter(0, i, 1.0)
            src, value = None, src
        return indexing.scatter(self, dim, index, src=src, value=value, reduce=reduce)

    def scatter_add(self, dim: int, index, src):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.index_select(self, dim, index)

    def index_add(self, dim: int, index, source, *, alpha=1):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.index_add(self, dim, index, source, alpha=alpha)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.argsort(self, dim, descending, stable)

    def nonzero(self, *, as_tuple: bool = False):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.nonzero(self, as_tuple=as_tuple)

    def unique(self, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
               return_counts: bool = False, dim=None):
        from scratchvision.autograd import indexing  # noqa: PLC0415
        return indexing.unique(self, sorted=sorted, return_inverse=return_inverse,
                               return_counts=return_counts, dim=dim)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_index_arg(index, self.device))

    def __setitem__(self, index, value):
        """``x[index] = value`` in place (value broadcast and cast to x's dtype).

        In the graph this is the op ``IndexPut``: the gradient of the old value is zero at
        the written positions, and ``value`` gets the gradient that reaches them."""
        index = _index_arg(index, self.device)
        if not isinstance(value, Tensor):
            value = _lift(value, self)
        if value.device != self.device:
            value = value.to(self.device)
        if not (is_grad_enabled() and (self.requires_grad or value.requires_grad)):
            self.data[index] = value.data
            self._version_counter.value += 1
            self._stale_history = False
            return
        self._stale_history = False     # the IndexPut below gives the base its new history
        self._modify(lambda v, val: ops.IndexPut.apply(
            v, val if val.dtype == v.dtype else val.to(v.dtype), index=index), value)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __format__(self, spec: str) -> str:
        """``f"{t:.3f}"`` formats a one-element tensor as its number, as torch does."""
        if self.data.size == 1 and spec:
            return format(self.item(), spec)
        return format(repr(self), spec)

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
    """Turn a Python number or array into a Tensor on ``like``'s device: a number takes
    ``like``'s dtype when that keeps its category (else the dtype torch would give it)."""
    if isinstance(value, Tensor):
        return value
    xp = like.xp
    if np.isscalar(value) or getattr(value, "ndim", None) == 0:
        dtype = promotion.result_type(like, value)
        return Tensor._make(xp.asarray(value, dtype=dtype), False)
    return Tensor(value, device=like.device)


def _promoted(a: Any, b: Any, divide: bool = False) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` as Tensors of torch's result dtype for ``a op b`` (one on a device)."""
    # the common cases first, without the general rules: two tensors of one floating
    # dtype; a floating tensor and a Python number (the number takes the tensor's dtype)
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb and a.data.dtype == b.data.dtype and a.data.dtype.kind == "f":
        return a, b
    if ta and not tb and a.data.dtype.kind == "f" and type(b) in (float, int):
        return a, Tensor._make(a.xp.asarray(b, dtype=a.data.dtype), False)
    if tb and not ta and b.data.dtype.kind == "f" and type(a) in (float, int):
        return Tensor._make(b.xp.asarray(a, dtype=b.data.dtype), False), b
    dtype = promotion.division_type(a, b) if divide else promotion.result_type(a, b)
    like = a if isinstance(a, Tensor) else b
    return _as_dtype(a, dtype, like), _as_dtype(b, dtype, like)


def _as_dtype(x: Any, dtype: np.dtype, like: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
            x = Tensor(x, device=like.device)
        else:
            return Tensor._make(like.xp.asarray(x, dtype=dtype), False)
    if x.dtype == dtype:
        return x
    if x.requires_grad and is_grad_enabled():
        return ops.Cast.apply(x, dtype=dtype)
    return Tensor._make(x.data.astype(dtype), False)


def _floating(x: Tensor) -> Tensor:
    """``x``, cast to the default dtype if it is not floating (torch.exp(int) is float)."""
    return x if x.dtype.kind == "f" else x.to(backend.get_default_dtype())


def _floor_divide(a: Any, b: Any) -> Tensor:
    """``a // b`` rounded towards minus infinity, as torch; not differentiable."""
    a, b = _promoted(a, b)
    xp = a.xp
    with np.errstate(divide="ignore", invalid="ignore"):
        return Tensor._make(xp.asarray(xp.floor_divide(a.data, b.data)), False)


def _where_all(value: Tensor, fill: Tensor) -> Tensor:
    """``fill`` everywhere, as an op whose gradient to ``value`` is zero (for fill_)."""
    xp = value.xp
    return where(Tensor._make(xp.ones(value.shape, dtype=bool), False), fill.to(value.dtype),
                 value)


def where(condition, input, other) -> Tensor:  # noqa: A002
    from scratchvision.autograd.factories import where as _where  # noqa: PLC0415
    return _where(condition, input, other)


def _weakref(t: Tensor):
    import weakref  # noqa: PLC0415
    return weakref.ref(t)


class device(str):
    """A device name as torch spells it: ``sv.device('cuda:0')``, with ``.type``/``.index``.

    It is a ``str``, so ``t.device == 'cpu'`` and ``t.to(d)`` keep working."""

    def __new__(cls, type: str, index: int | None = None):  # noqa: A002
        if isinstance(type, device) and index is None:
            return type
        name = str(type)
        if index is not None:
            name = f"{name}:{index}"
        kind = name.split(":")[0]
        if kind not in backend.DEVICES:
            backend.check_device(kind)  # the clear "unknown device" error
        return super().__new__(cls, name)

    @property
    def type(self) -> str:
        return self.split(":")[0]

    @property
    def index(self) -> int | None:
        parts = self.split(":")
        return int(parts[1]) if len(parts) > 1 else None

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (
            f", index={self.index})" if self.index is not None else ")")


_CPU = device("cpu")

_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


def _shape_arg(shape, what: str = "shape") -> tuple[int, ...]:
    """``(2, 3)`` from ``*size`` arguments as torch takes them: ``f(2, 3)`` or ``f((2, 3))``.

    Every size must be an int (Python, NumPy or a one-element integer Tensor); floats, bools
    and strings raise ``TypeError`` naming ``what`` (torch refuses ``zeros(2.5)`` too)."""
    given = shape
    if len(shape) == 1 and (isinstance(shape[0], (tuple, list))
                            or isinstance(shape[0], np.ndarray) and shape[0].ndim == 1):
        shape = shape[0]
    out = []
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not hasattr(type(s), "__index__"):
            raise TypeError(f"{what}: size must be a tuple of ints, got {given!r} (an element "
                            f"of type {type(s).__name__})")
        out.append(s.__index__())
    return tuple(out)


def _infer_shape(shape: tuple[int, ...], old_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with its one ``-1`` replaced by the size that keeps the element count;
    ``ValueError`` when that is impossible (two ``-1``, negative sizes, a wrong count)."""
    numel = int(np.prod(old_shape, dtype=np.int64))
    free = [i for i, s in enumerate(shape) if s == -1]
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    if len(free) > 1:
        raise ValueError(f"shape {shape}: only one dimension can be inferred")
    if any(s < -1 for s in shape):
        raise ValueError(f"shape {shape}: invalid negative size")
    if free and known and numel % known == 0:
        shape = shape[:free[0]] + (numel // known,) + shape[free[0] + 1:]
    if (free and not known) or int(np.prod(shape, dtype=np.int64)) != numel:
        raise ValueError(f"shape {shape} is invalid for a tensor of shape {old_shape} "
                         f"({numel} elements)")
    return shape


def _element_strides(array) -> tuple[int, ...]:
    """An array's strides in elements (NumPy and CuPy give bytes)."""
    return tuple(st // array.itemsize for st in array.strides)


def _view_strides(old_shape, old_strides, new_shape):
    """The strides of a ``new_shape`` view of memory laid out as (old_shape, old_strides),
    or None when no view exists (torch's ``computeStride``).

    Walking from the last dim, the old dims are cut into chunks that are contiguous with
    one another (``stride[d-1] == size[d] * stride[d]``); a view exists when the new dims
    split into groups that each cover exactly one chunk."""
    if not old_shape:                             # a 0-d tensor: any view of ones
        return (1,) * len(new_shape) if all(s == 1 for s in new_shape) else None
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1]
    tensor_numel = view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        chunk_ends = tensor_d == 0 or (old_shape[tensor_d - 1] != 1 and
                                       old_strides[tensor_d - 1] !=
                                       tensor_numel * chunk_base_stride)
        if not chunk_ends:
            continue
        while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
            new_strides[view_d] = view_numel * chunk_base_stride
            view_numel *= new_shape[view_d]
            view_d -= 1
        if view_numel != tensor_numel:
            return None
        if tensor_d > 0:
            chunk_base_stride = old_strides[tensor_d - 1]
            tensor_numel = view_numel = 1
    return tuple(new_strides) if view_d == -1 else None


# NumPy dtype kinds a Tensor can hold: bool, ints, unsigned ints, floats, complex
_NUMERIC_KINDS = "biufc"


def _as_numeric_array(xp, data, dtype):
    """``xp.asarray(data, dtype)`` for numeric data; ``TypeError`` for strings, objects and
    other non-numbers, ``ValueError`` for ragged nested lists (torch refuses them too)."""
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}' (a tensor holds "
                        f"numbers, got {data!r})")
    try:
        arr = xp.asarray(data, dtype=dtype)
    except ValueError as e:
        if isinstance(data, (list, tuple)) and "inhomogeneous" in str(e):
            raise ValueError(f"tensor data is a ragged nested sequence (the inner sequences "
                             f"differ in length): {e}") from None
        raise
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"can't convert data of type {type(data).__name__} holding "
                        f"numpy.{arr.dtype.type.__name__} to a tensor; the supported types are "
                        f"bool, integers, float16, float32, float64 and complex")
    return arr


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


def _index_arg(index, device: str = "cpu"):
    """Replace Tensors inside an index by their arrays (lists become arrays)."""
    def raw(i):
        if isinstance(i, Tensor):
            return i.data
        if isinstance(i, list):
            return np.asarray(i)
        return i
    if isinstance(index, tuple):
        return tuple(raw(i) for i in index)
    return raw(index)


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
