"""``Module`` and ``Parameter``: the containers that hold a model's weights.

A Module registers its Parameters and sub-Modules by attribute assignment
(``self.conv = Conv2d(...)``), as in PyTorch, so ``parameters()``, ``state_dict()``,
``train()``/``eval()`` and ``to(device)`` walk the tree without any registration code in
the model. ``state_dict`` keys are dotted paths (``backbone.conv1.weight``); buffers
(running statistics) are saved beside parameters.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from scratchvision import backend
from scratchvision.autograd.tensor import Tensor, _raw


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight (requires_grad by default)."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=False)
        if self.dtype.kind != "f":
            raise TypeError(f"Parameter needs floating-point data, got dtype {self.dtype}")
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses define ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attribute {name!r}")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any) -> None:
        """Keep a non-learnable array (running mean, ...) that is saved in the state_dict."""
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(value)
        self.__dict__.pop(name, None)
        self._buffers[name] = value

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        if value is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, value)

    def add_module(self, name: str, module: "Module | None") -> None:
        self._modules[name] = module

    # ------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        stack = [(prefix, self)]
        seen: set[int] = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for k, m in self._modules.items():
            if m is not None:
                yield k, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in modules:
            for k, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mname, m in self.named_modules(prefix):
            for k, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{k}" if mname else k), b

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    # ------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def apply(self, fn) -> "Module":
        for m in list(self.modules())[::-1]:
            fn(m)
        return self

    def to(self, *args: Any, device: str | None = None, dtype: Any = None) -> "Module":
        """Move every parameter and buffer to a device and/or cast the floating ones, in
        place: the Parameters stay the same objects, so an optimiser built before keeps
        working."""
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in backend.DEVICES:
                device = a
            elif isinstance(a, str) and not hasattr(np, a):
                backend.check_device(a)  # raises a clear "unknown device"
            else:
                dtype = a
        for t in list(self.parameters()) + list(self.buffers()):
            if device is not None:
                t.data = backend.to_device(t.data, device)
                if t.grad is not None:
                    t.grad = backend.to_device(t.grad, device)
            if dtype is not None and t.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self) -> "Module":
        return self.to("cuda")

    def float(self) -> "Module":
        return self.to(np.float32)

    def double(self) -> "Module":
        return self.to(np.float64)

    # ------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Dotted names -> copies of every parameter and buffer as NumPy arrays."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for k, p in self.named_parameters():
            out[k] = backend.to_device(p.data, "cpu").copy()
        for k, b in self.named_buffers():
            out[k] = backend.to_device(b.data, "cpu").copy()
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        """Copy arrays into the parameters/buffers of the same names (in place).

        ``strict`` refuses missing or unexpected keys; a shape mismatch is always refused,
        with the key and both shapes in the message. Returns (missing, unexpected) keys.
        """
        own = dict(self.named_parameters())
        own.update(dict(self.named_buffers()))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = np.asarray(backend.to_device(_raw(state_dict[k]),
                                                 "cpu"))
            if value.shape != target.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: size mismatch for "
                                 f"{k!r}: checkpoint has shape {value.shape}, the model has "
                                 f"{target.shape}")
            target.data = target.xp.asarray(value.astype(target.dtype, copy=True))
        return missing, unexpected

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def num_parameters(self) -> int:
        """Total number of learnable scalars."""
        return sum(p.numel() for p in self.parameters())
