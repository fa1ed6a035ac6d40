"""``convert``: an ONNX model as an ``nn.Module`` that runs on scratchvision's kernels.

How an ONNX graph maps onto the module:

* **Values.** An ONNX graph is a list of nodes in topological order; each node reads
  named values and writes named values. ``forward`` keeps a dict from value names to
  Tensors: it starts with the graph inputs (in ``graph.input`` order, the positional
  arguments of ``forward``) and the constants, runs every node's ``run`` function in
  order, drops each value after its last use, and returns the graph outputs (one Tensor,
  or a tuple of several).
* **Constants.** Initializers and ``Constant`` nodes are folded at convert time. A float
  constant that a node consumes as data becomes an ``nn.Parameter`` (so the imported net
  can be fine-tuned and has a ``state_dict``), except one-element literals (the 0.5 of
  ``x * 0.5``), which stay fixed; a few inputs are always Parameters (Conv/Gemm/MatMul
  weights, PRelu slopes) and BatchNormalization's statistics are buffers. Constants read
  as shapes, axes, scales or bounds (*static* inputs, ``node.py``) stay host arrays, as
  do all integer constants. State-dict keys are the ONNX names: a dotted name such as
  ``layer1.0.conv1.weight`` becomes nested sub-modules, so the keys read as the
  exporter's (torch) module paths.
* **Operators.** ``onnx_ops.OPS`` maps each operator type to a builder; the builder is
  called once per node here, so an unknown operator, an unsupported attribute or
  attribute value fails at convert time with the op type, node name and attribute.
  Identity nodes become aliases and cost nothing at run time.
* **Fusions** (what onnxruntime's graph optimiser does too, numerically equivalent to
  ~1e-6): a Conv whose only reader is an ``Add`` of a per-channel constant takes that
  constant as its bias, and a Conv whose only reader is a BatchNormalization is run as one
  conv with the folded weights ``W * scale / sqrt(var + eps)``. The folding is computed
  from the Parameters on each call, so gradients and the state_dict are those of the
  unfused layers.
* **Devices, dtypes and gradients.** Every op is a device-agnostic Tensor/F op, so
  ``module.to('cuda')`` moves the Parameters, buffers and float constants and the inputs
  follow (host arrays passed to a GPU module are moved); after ``.double()`` float inputs
  are cast to float64. Shape arithmetic stays on the host, so dynamic input sizes cost no
  device round trips.

Graph features that are refused (at convert time): control flow (If/Loop/Scan
subgraphs), model-local functions, non-default operator domains, sparse initializers,
string tensors.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scratchvision import backend
from scratchvision.autograd.tensor import Tensor
from scratchvision.nn.module import Module, Parameter
from scratchvision.onnx.node import Node, OnnxConversionError


def convert(model: Any) -> OnnxModule:
    """Build an ``nn.Module`` that computes an ONNX model with scratchvision's ops.

    Parameters
    ----------
    model : path (str or PathLike) of a ``.onnx`` file, its bytes, a file object, or an
        ``onnx.ModelProto``.

    Returns
    -------
    OnnxModule
        ``module(*inputs)`` takes arrays or Tensors in the order of the graph's inputs and
        returns a Tensor (one output) or a tuple of Tensors. ``module.input_names`` and
        ``module.output_names`` list the ONNX names.

    Raises
    ------
    OnnxConversionError
        (a ``NotImplementedError``) for an operator, attribute value or graph feature
        that is not supported, naming the op type, node and attribute.
    """
    return OnnxModule(_load(model))


def _load(model: Any):
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model))
    if hasattr(model, "read"):
        return onnx.load(model)
    raise TypeError(f"convert: expected a path, bytes, a file object or an onnx.ModelProto, "
                    f"got {type(model).__name__}")


def _constant_value(node) -> np.ndarray:
    """The value of a ``Constant`` node (tensor, or scalar/list attributes)."""
    if len(node.attribute) != 1:
        raise OnnxConversionError(f"ONNX Constant node {node.name!r}: expects exactly one "
                                  f"value attribute, got {[a.name for a in node.attribute]}")
    a = node.attribute[0]
    if a.name == "value":
        return _tensor_value(a.t, f"Constant node {node.name!r}")
    if a.name == "value_float":
        return np.array(a.f, np.float32)
    if a.name == "value_floats":
        return np.array(list(a.floats), np.float32)
    if a.name == "value_int":
        return np.array(a.i, np.int64)
    if a.name == "value_ints":
        return np.array(list(a.ints), np.int64)
    raise OnnxConversionError(f"ONNX Constant node {node.name!r} attribute {a.name!r}: "
                              f"{a.name} constants are not supported")


def _tensor_value(t, where: str) -> np.ndarray:
    from onnx import TensorProto, numpy_helper
    if t.data_type in (TensorProto.STRING, TensorProto.BFLOAT16) or \
            t.data_type >= TensorProto.FLOAT8E4M3FN:
        raise OnnxConversionError(f"ONNX {where}: tensors of type "
                                  f"{TensorProto.DataType.Name(t.data_type)} are not supported")
    return np.array(numpy_helper.to_array(t))   # a writable copy, C-contiguous


@dataclass
class _Step:
    """One node to run: its builder's ``run`` and the value names in and out."""
    run: Callable
    inputs: list[str]
    outputs: list[str]
    where: str
    op: str = ""
    free: list[str] = field(default_factory=list)


class _Holder(Module):
    """A sub-module that only holds Parameters/buffers of dotted ONNX names."""

    def forward(self, *args):  # pragma: no cover  (never called)
        raise RuntimeError("a parameter holder is not callable")


class OnnxModule(Module):
    """An ONNX graph as a Module (built by ``convert``; see the module docstring)."""

    def __init__(self, model) -> None:
        super().__init__()
        g = model.graph
        opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
        opsets.setdefault("", opsets.get("ai.onnx", 1))
        if len(g.sparse_initializer):
            raise OnnxConversionError("ONNX graph: sparse initializers are not supported")
        local = {f.domain + "." + f.name for f in model.functions}

        consts: dict[str, np.ndarray] = {}
        for t in g.initializer:
            consts[t.name] = _tensor_value(t, f"initializer {t.name!r}")
        inputs = [v for v in g.input if v.name not in consts]
        self.input_names = [v.name for v in inputs]
        self.output_names = [v.name for v in g.output]
        self._input_types = [_declared(v) for v in inputs]
        self.opset = opsets[""]

        alias: dict[str, str] = {}

        def resolve(name: str) -> str:
            while name in alias:
                name = alias[name]
            return name

        from scratchvision.onnx.onnx_ops import OPS
        steps: list[_Step] = []
        nodes: list[Node] = []
        for proto in _toposort(g, set(consts) | set(self.input_names)):
            domain = proto.domain or ""
            if domain not in ("", "ai.onnx"):
                kind = "a model-local function" if f"{domain}.{proto.op_type}" in local \
                    else f"an operator of domain {domain!r}"
                raise OnnxConversionError(f"ONNX {proto.op_type} node {proto.name!r}: "
                                          f"{kind} is not supported")
            if proto.op_type == "Constant":
                consts[proto.output[0]] = _constant_value(proto)
                continue
            ins = [resolve(i) if i else "" for i in proto.input]
            if proto.op_type == "Identity":
                alias[proto.output[0]] = ins[0]
                continue
            node = Node(proto, opsets[""],
                        {i: consts[name] for i, name in enumerate(ins) if name in consts})
            builder = OPS.get(proto.op_type)
            if builder is None:
                node.fail(f"operator {proto.op_type!r} is not supported (supported: "
                          f"{', '.join(sorted(OPS))})")
            run = builder(node)
            node.check_all_read()
            nodes.append(node)
            steps.append(_Step(run, ins, list(proto.output), f"ONNX {node.where()}",
                               proto.op_type))
        self.output_names = [resolve(o) for o in self.output_names]
        self._graph_output_names = [v.name for v in g.output]

        self._state: dict[str, Tensor] = {}          # value name -> Parameter/buffer/const
        self._fixed = _Holder()                      # fixed float constants (moved by .to)
        self._host: dict[str, Tensor] = {}           # integer and static constants
        self._register_constants(consts, nodes, steps)
        if self.opset >= 7:
            steps = _fold_bias_adds(steps, set(self.output_names), self._state)
        self._steps = _fold_batch_norms(steps, set(self.output_names))
        self._plan_frees()
        self._device = "cpu"
        self._float: np.dtype | None = None      # set by .to(dtype) / .double()

    # ------------------------------------------------------------------ building
    def _register_constants(self, consts, nodes, steps) -> None:
        """Decide for each constant: Parameter, buffer, fixed float constant or host value
        (see the module docstring), and register it."""
        use: dict[str, set[str]] = {}
        for node, step in zip(nodes, steps):
            for i, name in enumerate(step.inputs):
                if name not in consts:
                    continue
                kind = "static" if i in node.static_inputs else "param" if \
                    i in node.param_inputs else "buffer" if i in node.buffer_inputs else "data"
                use.setdefault(name, set()).add(kind)
        for name in self.output_names:
            if name in consts:
                use.setdefault(name, set()).add("data")
        n_fixed = 0
        for name, value in consts.items():
            kinds = use.get(name)
            if not kinds:
                continue
            floating = value.dtype.kind == "f"
            if floating and "param" in kinds or floating and "data" in kinds and value.size > 1:
                t = Parameter(value)
                self._place(name, t, "param")
            elif floating and "buffer" in kinds:
                t = Tensor(value)
                self._place(name, t, "buffer")
            elif floating and kinds - {"static"}:
                t = Tensor(value)
                self._fixed.register_buffer(f"c{n_fixed}", t, persistent=False)
                n_fixed += 1
            else:
                self._host[name] = Tensor._make(value, False)
                continue
            self._state[name] = t

    def _place(self, name: str, t: Tensor, kind: str) -> None:
        """Register under the ONNX name: ``a.b.c`` -> sub-module a, b, tensor c."""
        parts = name.split(".")
        store = "_parameters" if kind == "param" else "_buffers"
        mod: Module = self
        ok = all(parts)
        if ok:
            for p in parts[:-1]:
                child = mod._modules.get(p)
                if child is None:
                    if p in mod._parameters or p in mod._buffers:
                        ok = False
                        break
                    child = _Holder()
                    mod._modules[p] = child
                mod = child
        leaf = parts[-1]
        if not ok or leaf in mod._modules or leaf in mod._parameters or leaf in mod._buffers:
            mod, leaf = self, name.replace(".", "_")
            while leaf in self._parameters or leaf in self._buffers or leaf in self._modules:
                leaf += "_"
        getattr(mod, store)[leaf] = t

    def _plan_frees(self) -> None:
        """After each step, the values no later step (nor the output) reads."""
        keep = set(self.output_names)
        last: dict[str, int] = {}
        for k, step in enumerate(self._steps):
            for name in step.inputs:
                if name:
                    last[name] = k
        for name, k in last.items():
            if name not in keep and name not in self._state and name not in self._host:
                self._steps[k].free.append(name)

    # ------------------------------------------------------------------ running
    def to(self, *args: Any, **kwargs: Any) -> OnnxModule:
        super().to(*args, **kwargs)       # also moves self._fixed, a sub-module
        for a in list(args) + [kwargs.get("device"), kwargs.get("dtype")]:
            if isinstance(a, str) and a.split(":")[0] in backend.DEVICES + ("gpu",):
                self._device = backend.check_device(a)
            elif a is not None and (not isinstance(a, str) or hasattr(np, a)) and \
                    np.dtype(a).kind == "f":
                self._float = np.dtype(a)       # float inputs follow the module's dtype
        return self

    def forward(self, *inputs: Any):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"the ONNX model takes {len(self.input_names)} inputs "
                            f"{self.input_names}, got {len(inputs)}")
        env: dict[str, Tensor] = dict(self._host)
        env.update(self._state)
        for name, x, declared in zip(self.input_names, inputs, self._input_types):
            env[name] = self._input(name, x, declared)
        for step in self._steps:
            args = [env[i] if i else None for i in step.inputs]
            try:
                out = step.run(*args)
            except (TypeError, ValueError, IndexError, RuntimeError) as e:
                if str(e).startswith("ONNX "):
                    raise
                raise _with_context(e, step.where) from e
            if len(step.outputs) == 1:
                env[step.outputs[0]] = out[0] if isinstance(out, tuple) else out
            else:
                out = out if isinstance(out, tuple) else (out,)
                for name, value in zip(step.outputs, out):
                    if name:
                        env[name] = value
            for name in step.free:
                del env[name]
        outs = tuple(env[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def _input(self, name: str, x: Any, declared) -> Tensor:
        """A graph input as a Tensor on the module's device, checked against the declared
        rank and fixed dims (as onnxruntime checks), floats cast to the declared type (or
        to the module's float type after ``.double()`` / ``.to(dtype)``)."""
        t = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
        dtype, dims = declared
        if self._float is not None and dtype is not None and dtype.kind == "f":
            dtype = self._float
        if dtype is not None and t.dtype != dtype and t.dtype.kind == "f" and \
                dtype.kind == "f":
            t = t.to(dtype)
        if dims is not None and (len(dims) != t.ndim or any(d is not None and d != s
                                      for d, s in zip(dims, t.shape))):
            shown = ["?" if d is None else d for d in dims]
            raise ValueError(f"ONNX input {name!r} expects shape {shown}, got "
                             f"{tuple(t.shape)}")
        if t.device != self._device and (t.is_floating_point() or self._device != "cpu"):
            t = t.to(self._device)
        return t

    def extra_repr(self) -> str:
        ops = OrderedDict()
        for step in self._steps:
            ops[step.op] = ops.get(step.op, 0) + 1
        body = ", ".join(f"{k}: {v}" for k, v in ops.items())
        return (f"opset={self.opset}, inputs={self.input_names}, outputs="
                f"{self._graph_output_names}, nodes={len(self._steps)} ({body})")

    def __repr__(self) -> str:
        return f"OnnxModule({self.extra_repr()})"


def _readers(steps: list[_Step]) -> dict[str, int]:
    count: dict[str, int] = {}
    for step in steps:
        for name in step.inputs:
            count[name] = count.get(name, 0) + 1
    return count


def _fuse_with_next(steps: list[_Step], outputs: set[str], fuse) -> list[_Step]:
    """Walk the steps and replace each foldable Conv and the step after it by
    ``fuse(conv, nxt, y)`` (a new step, or None to keep both), where the Conv's output ``y``
    is read by that next step only and is not a graph output."""
    readers = _readers(steps)
    out, skip = [], set()
    for k, step in enumerate(steps):
        if k in skip:
            continue
        nxt = steps[k + 1] if k + 1 < len(steps) else None
        y = step.outputs[0] if step.outputs else ""
        fused = None
        if getattr(step.run, "foldable", False) and nxt is not None and \
                readers.get(y) == 1 and y not in outputs:
            fused = fuse(step, nxt, y)
        if fused is not None:
            out.append(fused)
            skip.add(k + 1)
        else:
            out.append(step)
    return out


def _fold_bias_adds(steps: list[_Step], outputs: set[str], state: dict) -> list[_Step]:
    """Fuse each Conv whose only consumer is an Add of a per-channel constant (how Paddle
    exports conv biases) into one conv with that bias (``onnx_nn_ops.fold_bias_add``)."""
    from scratchvision.onnx.onnx_nn_ops import fold_bias_add

    def fuse(step, nxt, y):
        if nxt.op != "Add" or y not in nxt.inputs:
            return None
        c = nxt.inputs[1 - nxt.inputs.index(y)]
        w = state.get(step.inputs[1]) if len(step.inputs) > 1 else None
        t = state.get(c)
        if w is None or t is None or t.dtype != w.dtype or \
                tuple(t.shape) not in ((1, w.shape[0], 1, 1), (w.shape[0], 1, 1)):
            return None
        ins = (step.inputs + [""] * 3)[:3] + [c]
        return _Step(fold_bias_add(step.run), ins, nxt.outputs, f"{step.where} + {nxt.where}",
                     "Conv+Add")
    return _fuse_with_next(steps, outputs, fuse)


def _fold_batch_norms(steps: list[_Step], outputs: set[str]) -> list[_Step]:
    """Fuse each Conv whose only consumer is a BatchNormalization into one step
    (``onnx_nn_ops.fold_batch_norm``): one pass over the activations instead of two."""
    from scratchvision.onnx.onnx_nn_ops import fold_batch_norm

    def fuse(step, nxt, y):
        if nxt.op != "BatchNormalization" or nxt.inputs[:1] != [y] or \
                len(nxt.inputs) != 5 or not all(nxt.inputs) or any(nxt.outputs[1:]):
            return None
        ins = (step.inputs + [""] * 3)[:3] + nxt.inputs[1:]
        return _Step(fold_batch_norm(step.run, nxt.run.epsilon), ins, nxt.outputs[:1],
                     f"{step.where} + {nxt.where}", "Conv+BatchNormalization")
    return _fuse_with_next(steps, outputs, fuse)


def _with_context(e: Exception, where: str) -> Exception:
    """The same kind of exception, its message prefixed with the failing node."""
    try:
        return type(e)(f"{where}: {e}")
    except TypeError:  # an exception type with another constructor
        return RuntimeError(f"{where}: {type(e).__name__}: {e}")


def _declared(v):
    """(dtype or None, dims or None) of a graph input's declared type (None: unknown)."""
    from onnx import helper
    tt = v.type.tensor_type
    dtype = None
    if tt.elem_type:
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, TypeError):
            dtype = None
    if not tt.HasField("shape"):
        return dtype, None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    return dtype, dims


def _toposort(g, available: set[str]):
    """The graph's nodes in an order where every input is produced first (ONNX requires
    sorted graphs; this also accepts unsorted ones)."""
    produced = set(available) | {""}
    order, pending = [], list(g.node)
    while pending:
        progress, rest = False, []
        for n in pending:
            if all(i in produced for i in n.input):
                order.append(n)
                produced.update(n.output)
                progress = True
            else:
                rest.append(n)
        if not progress:
            missing = sorted({i for n in rest for i in n.input if i not in produced})
            raise OnnxConversionError(f"ONNX graph: values {missing[:5]} are used but never "
                                      f"produced (node {rest[0].op_type} {rest[0].name!r})")
        pending = rest
    return order
