"""``Module`` and ``Parameter``: the containers that hold a model's weights.

A Module registers its Parameters and sub-Modules by attribute assignment
(``self.conv = Conv2d(...)``), as in PyTorch, so ``parameters()``, ``state_dict()``,
``train()``/``eval()`` and ``to(device)`` walk the tree without any registration code in
the model. ``state_dict`` keys are dotted paths (``backbone.conv1.weight``); buffers
(running statistics) are saved beside parameters.

Forward hooks run around ``forward`` exactly as torch's ``Module.__call__`` runs them
(pre-hooks may replace the arguments, hooks may replace the output); with no hook
registered, ``__call__`` is one dictionary check and the call of ``forward``.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from scratchvision import backend
from scratchvision.autograd.hooks import RemovableHandle  # noqa: F401  (nn.module.RemovableHandle)
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


class _IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: the model's keys the state_dict lacked, and the
    state_dict's keys the model does not have (torch's named tuple of the same name)."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")

    __str__ = __repr__


class Module:
    """Base class of every layer and model. Subclasses define ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        # id -> (hook, with_kwargs) and id -> (hook, with_kwargs, always_call)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attribute {name!r}")
        buffers = self.__dict__.get("_buffers", {})
        if name in buffers and (value is None or isinstance(value, Tensor)) and \
                not isinstance(value, Parameter):
            buffers[name] = value        # m.running_mean = t replaces the buffer, as torch
            return
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

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Keep a non-learnable array (running mean, ...): moved by ``to()``, and saved in
        the state_dict unless ``persistent=False`` (torch's semantics: a non-persistent
        buffer is neither written by ``state_dict`` nor expected by ``load_state_dict``).
        ``tensor`` may be a Tensor, an array (wrapped in a Tensor) or None."""
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f"buffer name can't contain \".\", got: {name}")
        if name == "":
            raise KeyError("buffer name can't be empty string \"\"")
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    @property
    def _non_persistent(self) -> set:
        """The names of this module's non-persistent buffers (torch's
        ``_non_persistent_buffers_set``; created on first use for modules unpickled from
        before it existed)."""
        d = self.__dict__
        if "_non_persistent_buffers_set" not in d:
            object.__setattr__(self, "_non_persistent_buffers_set", set())
        return d["_non_persistent_buffers_set"]

    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, tensor) of the state_dict, in torch's order: module by module
        (pre-order), each module's parameters then its persistent buffers."""
        seen: set[int] = set()
        for mname, m in self.named_modules():
            skip = m.__dict__.get("_non_persistent_buffers_set", ())
            own = [(k, p) for k, p in m._parameters.items() if p is not None]
            own += [(k, b) for k, b in m._buffers.items() if b is not None and k not in skip]
            for k, t in own:
                if id(t) in seen:        # a tensor shared by two modules is saved once
                    continue
                seen.add(id(t))
                yield (f"{mname}.{k}" if mname else k), t

    def _persistent_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) of every buffer that the state_dict holds."""
        for mname, m in self.named_modules():
            skip = m.__dict__.get("_non_persistent_buffers_set", ())
            for k, b in m._buffers.items():
                if b is not None and k not in skip:
                    yield (f"{mname}.{k}" if mname else k), b

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        if value is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, value)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register ``module`` (or None) as the child ``name``, with torch's checks."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f"module name can't contain \".\", got: {name}")
        if name == "":
            raise KeyError("module name can't be empty string \"\"")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """torch's ``Module._call_impl``, less the global and backward hooks."""
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {res}.")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        result = None
        called: set[int] = set()
        try:
            result = self.forward(*args, **kwargs)
            for hook_id, (hook, with_kwargs, _) in list(self._forward_hooks.items()):
                called.add(hook_id)
                res = hook(self, args, kwargs, result) if with_kwargs else \
                    hook(self, args, result)
                if res is not None:
                    result = res
        except Exception:
            # the hooks registered with always_call=True run even when forward raised
            for hook_id, (hook, with_kwargs, always) in list(self._forward_hooks.items()):
                if not always or hook_id in called:
                    continue
                try:
                    res = hook(self, args, kwargs, result) if with_kwargs else \
                        hook(self, args, result)
                    if res is not None:
                        result = res
                except Exception as e:  # noqa: BLE001  (torch silences it too)
                    warnings.warn("module forward hook with ``always_call=True`` raised an "
                                  f"exception that was silenced as another error was raised "
                                  f"in forward: {e}", stacklevel=2)
            raise
        return result

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``, as torch.

        ``args`` is the tuple of positional arguments; a hook that returns something other
        than None replaces them (a non-tuple return value becomes a 1-tuple). With
        ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and returns None or
        ``(new_args, new_kwargs)``. Hooks run in registration order (``prepend=True``: this
        one first). Returns a handle whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = (hook, with_kwargs)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``, as torch.

        ``args`` are the positional arguments ``forward`` received (after the pre-hooks); a
        hook that returns something other than None replaces the output, which the later
        hooks then see. ``with_kwargs=True``: ``hook(module, args, kwargs, output)``.
        ``always_call=True``: the hook also runs when ``forward`` raises (its own errors are
        then turned into warnings, and the original error propagates). Returns a handle
        whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = (hook, with_kwargs, always_call)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

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
                p.grad.zero_()

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
                    t.grad.data = backend.to_device(t.grad.data, device)
            if dtype is not None and t.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad.data = t.grad.data.astype(dtype)
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
    def state_dict(self, *, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Dotted names -> every parameter and persistent buffer, as Tensors without grad.

        Unlike torch, which returns detached *views* sharing the parameters' storage, the
        values are **copies on the CPU**: a caller that keeps a state_dict (the trainer's
        "best" weights, a snapshot to compare against) keeps those numbers even after the
        optimiser goes on updating the parameters in place, and a model on the GPU gives
        host arrays that a checkpoint writer can save directly. ``np.asarray(v)`` and
        ``v.numpy()`` read a value as a NumPy array. ``keep_vars=True`` returns the
        Parameters and buffers themselves instead (no copy, on their device), as torch.
        ``prefix`` is put in front of every key; ``destination`` is filled and returned.
        """
        out: OrderedDict[str, Tensor] = OrderedDict() if destination is None else destination
        for k, t in self._state_items():
            if keep_vars:
                out[prefix + k] = t
                continue
            host = backend.to_device(t.data, "cpu")
            out[prefix + k] = Tensor._make(host.copy() if host is t.data else host, False)
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> _IncompatibleKeys:
        """Copy the values (Tensors or arrays, on any device) into the parameters and
        persistent buffers of the same names, cast to each one's dtype and moved to its
        device (a non-persistent buffer's key in ``state_dict`` is unexpected, as torch).

        Returns ``_IncompatibleKeys(missing_keys, unexpected_keys)`` as torch. With
        ``strict`` (the default) missing or unexpected keys raise ``RuntimeError`` listing
        them; a shape mismatch always raises ``RuntimeError``, with the key and both shapes
        (torch's messages). Every check runs before anything is copied, so a refused
        state_dict leaves the model as it was (torch may have copied part of it).
        """
        own = dict(self.named_parameters())
        own.update(dict(self._persistent_buffers()))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []  # in torch's order: missing, unexpected, then size mismatches
        if strict and missing:
            errors.append("Missing key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in missing) + ". ")
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        values = {}
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = np.asarray(backend.to_device(_raw(state_dict[k]), "cpu"))
            if value.shape != target.shape:
                errors.append(f"size mismatch for {k}: copying a param with shape "
                              f"{value.shape} from checkpoint, the shape in current model "
                              f"is {target.shape}.")
            values[k] = value
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:"
                               + "".join("\n\t" + e for e in errors))
        for k, value in values.items():
            target = own[k]
            target.data = target.xp.asarray(value.astype(target.dtype, copy=True))
        return _IncompatibleKeys(missing, unexpected)

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
