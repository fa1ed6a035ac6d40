"""The ``Function`` base class, grad mode, and the ``unbroadcast`` helper.

A Function is one node of the graph. ``forward`` works on raw arrays (numpy or cupy),
saves what ``backward`` needs, and returns one array; ``backward`` takes the gradient of
the output and returns one gradient per positional argument of ``forward`` (``None`` for
arguments that are not Tensors or need no gradient). ``Fn.apply(*args)`` unwraps the
Tensor arguments, runs ``forward``, and wraps the result in a Tensor whose ``grad_fn`` is
the Function, but only when grad mode is on and some input requires a gradient: under
``no_grad()`` nothing of the graph is kept.

Example (the whole of a differentiable exp)::

    class Exp(Function):
        def forward(self, x):
            y = xp_of(x).exp(x)
            self.save_for_backward(y)
            return y
        def backward(self, gy):
            (y,) = self.saved_tensors
            return (gy * y,)
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

from scratchvision.backend import get_array_module

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return getattr(_state, "enabled", True)


class _GradMode:
    """Context manager / decorator that sets grad mode and restores it on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _state.enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self.prev

    def __call__(self, fn):  # used as a decorator
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def no_grad(fn=None):
    """Context (or decorator, ``@no_grad()`` or bare ``@no_grad``) in which ops build no
    graph: inference without memory cost."""
    mode = _GradMode(False)
    return mode if fn is None else mode(fn)


def enable_grad() -> _GradMode:
    """Context (or decorator) that turns grad mode back on inside a ``no_grad`` block."""
    return _GradMode(True)


def inference_mode(mode: bool = True) -> _GradMode:
    """torch's faster ``no_grad``; here the same thing (there is no separate fast path)."""
    return _GradMode(not mode)


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` switches grad mode at once, as a function call; used as a
    context manager it restores the previous mode on exit (torch's two uses)."""

    def __init__(self, mode: bool) -> None:
        super().__init__(bool(mode))
        self.prev = is_grad_enabled()
        _state.enabled = self.enabled

    def __enter__(self) -> None:
        pass


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``.

    Broadcasting aligns shapes from the right: (3,1) + (2,1,4) -> (2,3,4). The gradient of
    the (3,1) input sums over the leading axis that was added (0) and over the axis of size
    1 that was stretched to 4 (keeping it as size 1).
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class VersionCounter:
    """How many times a tensor's array was modified in place; views share their base's."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def root_array(arr):
    """The array that owns ``arr``'s memory (``arr`` itself unless it is a view)."""
    base = getattr(arr, "base", None)
    while base is not None and hasattr(base, "shape"):
        arr, base = base, getattr(base, "base", None)
    return arr


class Function:
    """Base class of a differentiable op: subclass and define ``forward`` and ``backward``.

    Graph edges point at Functions, as in PyTorch: ``inputs[i]`` is the ``grad_fn`` of the
    i-th argument, or the argument itself when it is a leaf that requires grad (its
    gradient is accumulated into ``.grad``), or None. Because an edge names the Function
    that made a value and not the tensor object that holds it, an in-place op can give a
    tensor a new ``grad_fn`` without re-routing the ops that consumed its old value.
    """

    needs_input_grad: tuple[bool, ...] = ()
    inputs: tuple = ()

    def forward(self, *args: Any, **kwargs: Any):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for ``backward`` (freed after the backward pass unless retained).

        An array that is (a view of) an argument or the output is checked at backward
        time: if that tensor was modified in place since, backward raises instead of
        computing a wrong gradient."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        try:
            return self._saved
        except AttributeError:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time "
                "(or saved values were freed): call backward(retain_graph=True) the first "
                "time") from None

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        """Run the op on Tensors/arrays/scalars and return a Tensor that remembers how."""
        return cls().run(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any):
        """Like ``apply`` on an instance made by the caller (to read extra outputs after)."""
        raw = []
        needs = []
        tensors = []
        array_type = None                 # numpy.ndarray or cupy.ndarray: one device
        grad_mode = is_grad_enabled()
        for a in args:
            if isinstance(a, _Tensor()):
                if a._stale_history and a.requires_grad and grad_mode:
                    raise RuntimeError(
                        f"{type(self).__name__}: a tensor of shape {a.shape} was modified in "
                        "place through a view (v = x[i]; v.mul_(2)) and its graph no longer "
                        "matches its values: write the view back (x[i] = v, which is what "
                        "x[i] *= 2 does) or modify a clone")
                if array_type is None:
                    array_type = type(a.data)
                elif type(a.data) is not array_type and a.device != tensors[0].device:
                    raise ValueError(f"{type(self).__name__}: all tensors must be on one device, "
                                     f"got {tensors[0].device} and {a.device}")
                tensors.append(a)
                raw.append(a.data)
                needs.append(a.requires_grad)
            else:
                raw.append(a)
                needs.append(False)
        self.needs_input_grad = tuple(needs)
        out = self.forward(*raw, **kwargs)
        track = grad_mode and any(needs)
        result = _Tensor()._make(out, track)
        if getattr(out, "base", None) is not None:
            # A view of an argument shares its version counter, so modifying either in
            # place is seen by every Function that saved the other.
            out_root = root_array(out)
            for a in tensors:
                if root_array(a.data) is out_root:
                    result._version_counter = a._version_counter
                    result._base = a._base if a._base is not None else a
                    break
        if track:
            self.inputs = tuple(
                None if not (isinstance(a, _Tensor()) and a.requires_grad)
                else a.grad_fn if a.grad_fn is not None else a for a in args)
            saved = self.__dict__.get("_saved")
            if saved:
                self._record_saved_versions(saved, tensors, result)
            self._output = weakref.ref(result)
            self.out_shape, self.out_dtype = out.shape, out.dtype
            result.grad_fn = self
        return result

    def _record_saved_versions(self, saved, tensors, result) -> None:
        """Remember the version of every tensor whose array (or memory) ``forward`` saved."""
        roots = {id(s if s.base is None else root_array(s)) for s in saved
                 if hasattr(s, "shape") and hasattr(s, "base")}
        checks = []
        for t in (*tensors, result):
            d = t.data
            if id(d if d.base is None else root_array(d)) in roots:
                checks.append((t._version_counter, t._version_counter.value, t.dtype, t.shape))
        if checks:
            self._saved_versions = checks

    def check_saved_versions(self) -> None:
        """Raise if a tensor saved for backward was modified in place after it was saved."""
        for counter, expected, dtype, shape in getattr(self, "_saved_versions", ()):
            if counter.value != expected:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [{dtype} {list(shape)}], saved by "
                    f"{type(self).__name__} for its backward, is at version {counter.value}; "
                    f"expected version {expected} instead. Use .clone() before modifying it "
                    "in place, or an out-of-place op")

    def output_tensor(self):
        """The tensor this Function made, while it is alive and still holds this history."""
        ref = getattr(self, "_output", None)
        t = ref() if ref is not None else None
        return t if t is not None and t.grad_fn is self else None

    def release(self) -> None:
        """Drop saved values and graph links once backward has used them."""
        self.__dict__.clear()
        self.released = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _Tensor():
    """The Tensor class (imported late: tensor.py imports this module)."""
    global _TENSOR
    if _TENSOR is None:
        from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
        _TENSOR = Tensor
    return _TENSOR


_TENSOR = None


def xp_of(*arrays: Any):
    """Shorthand for ``backend.get_array_module``."""
    return get_array_module(*arrays)
