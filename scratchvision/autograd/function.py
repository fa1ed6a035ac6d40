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


def no_grad() -> _GradMode:
    """Context (or decorator) in which ops build no graph: inference without memory cost."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Context (or decorator) that turns grad mode back on inside a ``no_grad`` block."""
    return _GradMode(True)


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


class Function:
    """Base class of a differentiable op: subclass and define ``forward`` and ``backward``."""

    needs_input_grad: tuple[bool, ...] = ()
    parents: tuple = ()

    def forward(self, *args: Any, **kwargs: Any):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for ``backward`` (freed after the backward pass unless retained)."""
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
        from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415  (import cycle)

        raw = []
        needs = []
        device = None
        for a in args:
            if isinstance(a, Tensor):
                if device is None:
                    device = a.device
                elif a.device != device:
                    raise ValueError(f"{type(self).__name__}: all tensors must be on one device, "
                                     f"got {device} and {a.device}")
                raw.append(a.data)
                needs.append(a.requires_grad)
            else:
                raw.append(a)
                needs.append(False)
        self.needs_input_grad = tuple(needs)
        out = self.forward(*raw, **kwargs)
        track = any(needs) and is_grad_enabled()
        result = Tensor._make(out, track)
        if track:
            self.parents = tuple(a if isinstance(a, Tensor) else None for a in args)
            result.grad_fn = self
        return result

    def release(self) -> None:
        """Drop saved values and graph links once backward has used them."""
        self.__dict__.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def xp_of(*arrays: Any):
    """Shorthand for ``backend.get_array_module``."""
    return get_array_module(*arrays)
