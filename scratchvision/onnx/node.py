"""One ONNX node as the operator builders see it, and the helpers they share.

An operator builder (``onnx_ops.py``, ``onnx_nn_ops.py``) is called once per node while
the model is converted. It reads the node's attributes through ``Node`` (``n.ints``,
``n.choice`` ...), which checks them and remembers which were read; attributes a builder
never reads are refused afterwards (``Node.check_all_read``), so an attribute the code
does not implement is an error at convert time, never a silent difference at run time.
The builder returns ``run(*inputs)``, the function the module calls on every forward
with one Tensor (or None for an omitted optional input) per node input.

Values that steer the computation rather than flow through it (Reshape's shape, Resize's
scales, Slice's starts, Clip's bounds ...) are *static* inputs: the builder marks their
positions with ``n.static(...)`` and reads them on the host with ``host_ints`` /
``host_floats`` at run time, so they may come from constants or from ``Shape`` chains
computed from the input's size (dynamic input sizes). When a static input is a constant,
``n.const(i)`` gives its value at convert time for early checks.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from scratchvision.autograd.tensor import Tensor


class OnnxConversionError(NotImplementedError):
    """An ONNX operator, attribute value or graph feature that the converter does not
    support (raised while converting, with the op type, node name and attribute)."""


class Node:
    """The attributes, inputs and opset of one ONNX ``NodeProto`` (see module docstring)."""

    def __init__(self, proto, opset: int, constants: dict[int, np.ndarray] | None = None):
        from onnx import helper
        self.op_type: str = proto.op_type
        self.name: str = proto.name
        self.domain: str = proto.domain
        self.inputs: list[str] = list(proto.input)
        self.outputs: list[str] = list(proto.output)
        self.opset = int(opset)
        self._attrs: dict[str, Any] = {}
        for a in proto.attribute:
            if a.type in (a.GRAPH, a.GRAPHS):
                self.fail(f"attribute {a.name!r} holds a subgraph (control flow is not "
                          f"supported)", a.name)
            self._attrs[a.name] = helper.get_attribute_value(a)
        self._read: set[str] = set()
        self.constants = constants or {}
        self.static_inputs: set[int] = set()
        self.param_inputs: set[int] = set()
        self.buffer_inputs: set[int] = set()

    # ------------------------------------------------------------------ errors
    def where(self) -> str:
        """``Conv node 'conv1'`` (or the first output's name for an unnamed node)."""
        if self.name:
            return f"{self.op_type} node {self.name!r}"
        first = self.outputs[0] if self.outputs else "?"
        return f"{self.op_type} node (unnamed, output {first!r})"

    def fail(self, message: str, attr: str | None = None):
        """Raise OnnxConversionError naming this node (and the attribute, when given)."""
        what = f" attribute {attr!r}:" if attr else ":"
        raise OnnxConversionError(f"ONNX {self.where()} (opset {self.opset}){what} {message}")

    # ------------------------------------------------------------------ attributes
    def has(self, name: str) -> bool:
        return name in self._attrs

    def attr(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        value = self._attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def int(self, name: str, default: int | None = None) -> int | None:
        v = self.attr(name, default)
        return None if v is None else int(v)

    def float(self, name: str, default: float | None = None) -> float | None:
        v = self.attr(name, default)
        return None if v is None else float(v)

    def ints(self, name: str, default=None) -> list[int] | None:
        v = self.attr(name, default)
        return None if v is None else [int(i) for i in v]

    def floats(self, name: str, default=None) -> list[float] | None:
        v = self.attr(name, default)
        return None if v is None else [float(i) for i in v]

    def choice(self, name: str, default: Any, supported: tuple, known: tuple = ()) -> Any:
        """The attribute's value, which must be one of ``supported``; a value in ``known``
        (valid ONNX, not implemented here) gets a 'not supported' error, anything else an
        'invalid value' one."""
        v = self.attr(name, default)
        if v not in supported:
            kind = "is not supported" if v in known else "is not a valid value"
            self.fail(f"value {v!r} {kind} (supported: {', '.join(map(repr, supported))})",
                      name)
        return v

    def forbid(self, name: str, allowed: tuple = (), why: str = "") -> None:
        """Refuse the attribute unless absent or equal to one of ``allowed``."""
        self._read.add(name)
        if name in self._attrs:
            v = self.attr(name)
            if v not in allowed:
                self.fail(f"value {v!r} is not supported{why}", name)

    def check_all_read(self) -> None:
        """Refuse attributes the builder did not read (they would be silently ignored)."""
        unread = sorted(set(self._attrs) - self._read)
        if unread:
            self.fail(f"unsupported attribute(s) {unread} for this operator", unread[0])

    # ------------------------------------------------------------------ inputs
    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def const(self, i: int) -> np.ndarray | None:
        """The value of input ``i`` if it is a constant of the graph, else None."""
        return self.constants.get(i) if self.has_input(i) else None

    def static(self, *positions: int) -> None:
        """Mark inputs read on the host at run time (shapes, axes, scales, bounds)."""
        self.static_inputs.update(positions)

    def params(self, *positions: int) -> None:
        """Mark inputs that are learnable weights when they are constants (always
        Parameters, whatever their size)."""
        self.param_inputs.update(positions)

    def buffers(self, *positions: int) -> None:
        """Mark inputs that are non-learnable state (BatchNormalization's statistics)."""
        self.buffer_inputs.update(positions)

    def need_inputs(self, low: int, high: int | None = None) -> None:
        n = len(self.inputs)
        while n and self.inputs[n - 1] == "":
            n -= 1
        if n < low or (high is not None and n > high):
            want = f"{low}" if high == low else f"{low} to {high}" if high else f">= {low}"
            self.fail(f"expects {want} inputs, got {n}")


# ---------------------------------------------------------------------- host values
def host(t) -> np.ndarray:
    """A static input as a NumPy array on the host (copied from the GPU if there)."""
    if isinstance(t, Tensor):
        return t.numpy()
    return np.asarray(t)


def host_ints(t) -> list[int]:
    return [int(v) for v in host(t).reshape(-1)]


def host_floats(t) -> list[float]:
    return [float(v) for v in host(t).reshape(-1)]


def host_scalar(t):
    a = host(t)
    if a.size != 1:
        raise ValueError(f"expected a one-element tensor, got shape {a.shape}")
    return a.reshape(()).item()


def on_host(a: np.ndarray) -> Tensor:
    """Wrap a host array (shape arithmetic, indices) as a CPU Tensor without a graph."""
    return Tensor._make(np.asarray(a), False)


def like(t: Tensor, ref: Tensor) -> Tensor:
    """``t`` on ``ref``'s device (small host values meet device tensors here)."""
    if t.device != ref.device:
        return t.to(ref.device)
    return t


def align(*ts: Tensor | None) -> list[Tensor | None]:
    """The tensors on one device: host tensors move to the device of any GPU tensor."""
    dev = next((t.device for t in ts if t is not None and t.device != "cpu"), None)
    if dev is None:
        return list(ts)
    return [t if t is None or t.device == dev else t.to(dev) for t in ts]


def axis_of(axis: int, ndim: int, n: Node | None = None, name: str = "axis") -> int:
    """A possibly negative ONNX axis as an index into ``ndim`` dims (ValueError if out)."""
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        where = f"{n.where()}: " if n is not None else ""
        raise ValueError(f"{where}{name} {axis} is out of range for a tensor with {ndim} dims")
    return axis % max(ndim, 1)
