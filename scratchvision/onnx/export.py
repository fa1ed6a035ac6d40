"""``export(module, example_input, path)``: write a scratchvision model as an ONNX graph.

There is no tracer or symbolic graph to read: the model is Python code calling
``Function``s. What is written out is the **autograd graph of one forward pass**, the
same graph that ``backward`` walks. Five steps:

1. **Trace.** The module goes into eval mode (batch norm on running statistics, dropout
   off, so dropout leaves no node at all) and runs once on a copy of ``example_input``
   that requires grad. Because an input requires grad, every result keeps its
   ``grad_fn`` and every Function its ``inputs`` edges: per argument, the Function that
   produced it, the leaf Tensor itself, or None (``autograd/function.py``). Those edges
   are the dataflow of the forward pass, and they stay right across in-place ops
   (``relu_`` gives the tensor a new ``grad_fn``; the consumers of the old value keep
   their edge to the old one).

2. **Record the calls.** A Function keeps what its *backward* needs, not what its
   *forward* was called with: BatchNorm keeps neither eps nor the running mean, Pad not
   its fill value, and a frozen weight (``requires_grad=False``) is no edge at all
   (``inputs[i]`` is None). So, while tracing, ``Function.run`` is wrapped (and restored
   afterwards) to write down each call's arguments exactly as given (Tensors, arrays,
   strides, eps ...), and the module it ran in (forward pre-/post-hooks keep a stack of
   module paths). A call none of whose inputs requires grad (the reshape of a frozen
   weight) makes a result outside the graph; those results are remembered with their
   Function, so a later call that consumes one is still traced back to its op. This is
   why export does not need attributes added to every Function: the call *is* the op's
   specification, as ``torch.onnx`` reads a traced op's arguments.

3. **Walk.** From the output Tensors' ``grad_fn``s the Functions are listed in
   topological order (an iterative depth-first search, as ``engine.topological_order``;
   a deep net is past Python's recursion limit). Each argument of each call becomes an
   ONNX value:

   ==============================================  ===================================
   argument                                        ONNX value
   ==============================================  ===================================
   output of another Function (edge or recorded)   that node's output
   the example input                               the graph input
   a Parameter or buffer of the module (Tensor      an initializer named by its
   or its array, e.g. BN's running_var)             ``state_dict`` key
   another Tensor or array made during forward      a constant initializer
   (a Python number lifted to a 0-d Tensor)        (``const``, ``const_1`` ...)
   Python values (stride, eps, mode ...)           attributes of the node
   ==============================================  ===================================

4. **Map.** One converter per Function class emits one or a few ONNX nodes (table below;
   ``_CONVERTERS``). Outputs are named ``<module path>/<ONNX op>``
   (``backbone.stages.0.0.0/Conv``), so a viewer such as Netron shows the model's own
   structure, and the weights keep their ``state_dict`` names.

5. **Check and save.** ``onnx.checker.check_model(full_check=True)`` also runs ONNX's
   shape inference over the whole graph; then ``onnx.save(model, path)``.

Function -> ONNX
----------------
======================================  ==============================================
Conv2d (incl. padding='same')           Conv (asymmetric 'same' as begin/end pads)
ConvTranspose2d                         ConvTranspose (output_padding, dilations)
BatchNorm (eval: running stats)         BatchNormalization
LayerNorm                               LayerNormalization (opset >= 17)
Linear                                  Gemm (2-D input) or MatMul + Add
MaxPool2d                               MaxPool (its Indices output when unpooled)
MaxUnpool2d                             MaxUnpool (indices from that MaxPool; output
                                        shape = Shape of the pooled input)
AvgPool2d                               AveragePool
AdaptiveAvg/MaxPool2d                   GlobalAverage/MaxPool, or Average/MaxPool when
                                        the input is a multiple of the output
Interpolate                             Resize (bilinear: half_pixel or align_corners;
                                        nearest: asymmetric + floor, torch's legacy)
ReLU, Sigmoid, Tanh, Exp, Log, Sqrt,    Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Abs, Neg,
Abs, Neg, Clone                         Identity
LeakyReLU; Hardtanh, Clamp              LeakyRelu; Clip
SiLU; GELU (exact)                      Sigmoid + Mul; Div + Erf + Add + Mul
Softmax, LogSoftmax                     Softmax, LogSoftmax (axis)
Add, Sub, Mul, Div, MatMul, PowScalar,  Add, Sub, Mul, Div, MatMul, Pow, Max/Min
Maximum
Sum, Mean                               ReduceSum, ReduceMean
Reshape, Permute, Expand, Cast          Reshape, Transpose, Expand, Cast
GetItem (ints, slices, None, ...)       Slice (+ Squeeze / Unsqueeze)
Cat, Stack                              Concat (+ Unsqueeze)
Pad (constant, reflect, replicate)      Pad (constant, reflect, edge)
======================================  ==============================================

Pooling indices. ``max_pool2d(return_indices=True)`` returns an int64 Tensor made outside
the graph (indices have no gradient); the exporter recognises its array as the one the
MaxPool2d call kept and uses the ONNX MaxPool's second output. ONNX counts those indices
over the whole (N, C, H, W) tensor, scratchvision (as torch) within each (H, W) plane; the
ONNX pair MaxPool -> MaxUnpool is self-consistent, and where our per-plane indices are a
graph output they are ``Mod(onnx_index, H * W)``. MaxUnpool is exported when it restores
the pooled input's size (DeconvNet's and SegNet's use), the one case where the two
numberings place every value in the same cell.

``dynamic_batch=True`` names the first input dim ``batch`` (and each output's first dim
that derives from it); ops whose recorded sizes contain the batch size are written to
take it from the data: Reshape copies dim 0 (``0``), MaxUnpool and Resize read the shape
with ``Shape``. An op that mixes the batch dim into others (a reshape over it, a slice or
permutation of it) is refused with ``dynamic_batch``.

What is not followed: a value computed in ``forward`` *outside* any Function (a
comparison ``x > 0``, an ``argmax``, a Python ``if`` on a tensor's value) is not in the
graph. Integer and boolean tensors of that kind raise an error (they are masks or indices,
almost surely derived from the input); floating ones are written as constants, as a
tracer would bake them in. Shapes are those of the example (spatial sizes fixed; only the
batch can be dynamic). Nearest resizing computes ``floor(dst / scale)`` in ONNX where we
compute ``floor(dst * (1 / scale))``: for a ratio that is not exact in floating point the
two can pick a different source pixel at rare positions.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from scratchvision.autograd import ops
from scratchvision.autograd.function import Function, enable_grad, root_array
from scratchvision.autograd.tensor import Tensor
from scratchvision.functional import activation, conv, normalization, pooling
from scratchvision.functional.interpolate import Interpolate
from scratchvision.functional.linear import Linear  # (the package's `linear` is the function)
from scratchvision.nn.module import Module
from scratchvision.validation import pair, to_numpy

__all__ = ["UnsupportedOperatorError", "export"]

MIN_OPSET = 13       # Resize, Slice/Squeeze with axes as inputs, Softmax along one axis


class UnsupportedOperatorError(NotImplementedError):
    """A Function (or a use of one) that has no ONNX conversion here."""


def export(module, example_input, path, opset_version: int = 17, input_names=None,
           output_names=None, dynamic_batch: bool = False):
    """Write ``module`` as an ONNX model at ``path``, traced on ``example_input``.

    Parameters
    ----------
    module : an ``nn.Module`` (``module(example_input)`` is traced), or a bound method of
        one (``model.score_map``, ``model.classify_windows``): the method is traced and the
        module provides the weight names and the eval mode.
    example_input : Tensor or array (N, C, H, W) ..., or a tuple/list of them for a module
        with several inputs. Its shapes (and dtype) become the graph's.
    path : where to write the .onnx file (exactly this path).
    opset_version : ONNX opset of the default domain, >= 13.
    input_names, output_names : graph input/output names; default ``input`` (``input_0``
        ...) and ``output`` (``output_0`` ...). Outputs are the Tensors of the module's
        return value in order, nested tuples/lists/dicts flattened; non-Tensor entries (a
        size tuple) are left out.
    dynamic_batch : make dim 0 of the inputs and outputs symbolic (``batch``).

    Returns
    -------
    the ``onnx.ModelProto`` that was checked and saved.

    Raises
    ------
    UnsupportedOperatorError naming the Function and the module it ran in, for an op with
    no ONNX conversion (or an unsupported use of one); ValueError for bad arguments.
    """
    import onnx  # the optional dependency, imported on use

    top_opset = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= int(opset_version) <= top_opset:
        raise ValueError(f"export: opset_version must be in {MIN_OPSET}..{top_opset} (this "
                         f"onnx package's newest), got {opset_version}")
    fn, owner = _callable_and_module(module)
    inputs = _example_inputs(example_input)
    input_names = _names(input_names, len(inputs), "input", "input_names")
    trace = _Trace(owner)
    modes = [(m, m.training) for m in owner.modules()]
    try:
        owner.eval()
        with trace, enable_grad():
            out = fn(*inputs)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    flat = [(key, t) for key, t in _flatten(out, ()) if isinstance(t, Tensor)]
    if not flat:
        raise ValueError(f"export: {type(owner).__name__} returned no Tensor "
                         f"({type(out).__name__})")
    if output_names is None and len(flat) > 1 and all(isinstance(k, str) for k, _ in flat):
        output_names = [k for k, _ in flat]          # a dict's keys
    output_names = _names(output_names, len(flat), "output", "output_names")
    builder = _Builder(onnx, trace, owner, int(opset_version), dynamic_batch)
    model = builder.build(list(zip(input_names, inputs)),
                          list(zip(output_names, (t for _, t in flat))))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(path))
    return model


# ------------------------------------------------------------------------------ tracing
_TRACE_LOCK = threading.Lock()     # one export at a time: Function.run is patched


class _Call(NamedTuple):
    """One recorded Function call: the arguments as given, and where it ran."""
    fn: Function
    args: tuple
    kwargs: dict
    path: str           # module path ('' at the top), e.g. 'backbone.stages.0.0.0'
    module: str         # that module's class name
    out_shape: tuple    # the result's shape and dtype (a Function outside the graph
    out_dtype: Any      # has no out_shape of its own)

    @property
    def where(self) -> str:
        return f"module '{self.path}' ({self.module})" if self.path else \
            f"the top-level module ({self.module})"

    def arg(self, i: int, name: str, default=None):
        """Argument ``i`` (positional) or ``name`` (keyword)."""
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(name, default)


class _Trace:
    """While entered, every ``Function.run`` records its call (``calls``) and the module
    path it ran in; results made outside the graph are kept in ``made``."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.calls: dict[int, _Call] = {}
        self.made: dict[int, Function] = {}   # id(result) -> Function, outside the graph
        self._alive: list = []                 # those results, so their ids stay unique
        self._stack: list[tuple[str, str]] = []
        self._handles: list = []
        self.thread = threading.get_ident()     # calls made by other threads are not ours

    def __enter__(self) -> _Trace:  # noqa: PYI034  (typing.Self is 3.11+)
        _TRACE_LOCK.acquire()
        try:
            self._patch()
        except BaseException:
            _TRACE_LOCK.release()
            raise
        return self

    def _patch(self) -> None:
        trace, original = self, Function.run
        self._original = original

        def run(fn, *args, **kwargs):
            result = original(fn, *args, **kwargs)
            if threading.get_ident() != trace.thread:
                return result
            path, cls = trace._stack[-1] if trace._stack else ("", type(trace.module).__name__)
            trace.calls[id(fn)] = _Call(fn, args, kwargs, path, cls, tuple(result.shape),
                                        result.dtype)
            if result.grad_fn is not fn:
                trace.made[id(result)] = fn
                trace._alive.append((fn, result))
            return result

        Function.run = run
        seen: set[int] = set()
        for name, m in self.module.named_modules():
            if id(m) in seen:
                continue
            seen.add(id(m))
            self._handles.append(m.register_forward_pre_hook(self._enter_hook(name, m)))
            self._handles.append(m.register_forward_hook(self._exit_hook, always_call=True))

    def _enter_hook(self, name: str, m: Module):
        entry = (name, type(m).__name__)

        def hook(_module, _args) -> None:      # None: the arguments stay as they are
            self._stack.append(entry)
        return hook

    def _exit_hook(self, _module, _args, _out) -> None:   # None: the output stays
        self._stack.pop()

    def __exit__(self, *exc: object) -> None:
        Function.run = self._original
        for h in self._handles:
            h.remove()
        _TRACE_LOCK.release()


# ------------------------------------------------------------------------ graph building
class _Indices(NamedTuple):
    """The indices a MaxPool2d call returned (made outside the graph)."""
    pool: Function


class _Builder:
    """Turns a ``_Trace`` into an ONNX ``ModelProto``: resolves every argument to an ONNX
    value name, and calls one converter per Function in topological order."""

    def __init__(self, onnx, trace: _Trace, module: Module, opset: int,
                 dynamic_batch: bool) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.trace, self.opset, self.dynamic = trace, opset, dynamic_batch
        self.nodes: list = []
        self.initializers: list = []
        self.used: set[str] = set()
        self.out_name: dict[int, str] = {}        # id(Function) -> its output's name
        self.leaf_name: dict[int, str] = {}       # id(array) -> initializer / input name
        self.pool_indices: dict[int, str] = {}    # id(MaxPool2d) -> ONNX Indices output
        self.want_indices: set[int] = set()
        self.plane_names: dict[int, str] = {}     # id(MaxPool2d) -> its per-plane indices
        self.batched: set[int] = set()            # ids of values whose dim 0 is the batch
        self.state_names: dict[int, str] = {}
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            self.state_names.setdefault(id(t), name)
            self.state_names.setdefault(id(t.data), name)
            self.used.add(name)
        self.pools = {id(root_array(c.fn.indices)): c.fn for c in trace.calls.values()
                      if type(c.fn) is pooling.MaxPool2d}
        self.call: _Call | None = None            # the call being converted
        self.batch = 0

    # ----------------------------------------------------------------- names and values
    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def node(self, op: str, inputs: list, n_out: int = 1, **attrs):
        """Append an ONNX node of the call being converted; its output name(s)."""
        outs = [self.fresh(self.prefixed(op))]
        outs += [self.fresh(f"{outs[0]}:{k}") for k in range(1, n_out)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=outs[0],
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def prefixed(self, name: str) -> str:
        """``<module path>/name`` for the call being converted."""
        path = self.call.path if self.call is not None else ""
        return f"{path}/{name}" if path else name

    def const(self, value, dtype=None, name: str = "const") -> str:
        """A constant initializer (numbers are given ``dtype``)."""
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        n = self.fresh(self.prefixed(name))
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, n))
        return n

    def ints(self, values, name: str = "const") -> str:
        return self.const(np.asarray(list(values), np.int64), name=name)

    def source(self, call: _Call, i: int):
        """What argument ``i`` of a call is: a Function (its output), ``_Indices``, a leaf
        Tensor/array, or a plain Python value."""
        a = call.args[i]
        edges = call.fn.inputs
        if edges and edges[i] is not None:
            return edges[i]
        if isinstance(a, Tensor):
            made = self.trace.made.get(id(a))
            if made is not None:
                return made
            if a.grad_fn is not None:
                return a.grad_fn
        if hasattr(a, "shape") and hasattr(a, "dtype"):
            raw = a.data if isinstance(a, Tensor) else a
            pool = self.pools.get(id(root_array(raw)))
            if pool is not None:
                return _Indices(pool)
        return a

    def deps(self, call: _Call):
        for i in range(len(call.args)):
            s = self.source(call, i)
            if isinstance(s, Function):
                yield s
            elif isinstance(s, _Indices):
                self.want_indices.add(id(s.pool))
                yield s.pool

    def value(self, call: _Call, i: int) -> str:
        """The ONNX name of argument ``i`` of ``call`` ("" for None)."""
        return self.name_of(self.source(call, i))

    def name_of(self, s) -> str:
        if s is None:
            return ""
        if isinstance(s, Function):
            return self.out_name[id(s)]
        if isinstance(s, _Indices):
            return self.plane_indices(s.pool)
        if isinstance(s, Tensor) or (hasattr(s, "shape") and hasattr(s, "dtype")):
            return self.leaf(s)
        floating = isinstance(s, float) and self.call is not None
        return self.const(s, self.call.out_dtype if floating else None)

    def leaf(self, t) -> str:
        """An input, a named Parameter/buffer, or a constant."""
        raw = t.data if isinstance(t, Tensor) else t
        key = id(raw)
        if key in self.leaf_name:
            return self.leaf_name[key]
        name = self.state_names.get(id(t)) or self.state_names.get(key)
        arr = to_numpy(raw)
        if name is None:
            if arr.dtype.kind in "biu" and arr.size > 1:
                raise UnsupportedOperatorError(
                    f"export: {type(self.call.fn).__name__} in {self.call.where} reads an "
                    f"{arr.dtype} tensor of shape {arr.shape} that was computed outside the "
                    f"autograd graph (a mask or indices, e.g. from a comparison or argmax); "
                    f"its values cannot be traced to the input, so it cannot be exported")
            name = self.fresh(self.prefixed("const"))
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.ascontiguousarray(arr), name))
        self.leaf_name[key] = name
        return name

    def is_batched(self, s) -> bool:
        if isinstance(s, Function):
            return id(s) in self.batched
        if isinstance(s, _Indices):
            return id(s.pool) in self.batched
        if isinstance(s, Tensor):
            return id(s.data) in self.batched
        return False

    def batched_arg(self, call: _Call, i: int) -> bool:
        return self.dynamic and self.is_batched(self.source(call, i))

    def leading_shape(self, name: str, k: int) -> str:
        """The first ``k`` dims of value ``name``'s shape (an int64 1-D tensor)."""
        if self.opset >= 15:
            return self.node("Shape", [name], start=0, end=k)
        shape = self.node("Shape", [name])
        return self.node("Slice", [shape, self.ints([0]), self.ints([k]), self.ints([0])])

    def plane_indices(self, pool: Function) -> str:
        """Our per-plane indices ``h * W + w`` from ONNX's whole-tensor ones."""
        if id(pool) not in self.plane_names:
            h, w = self.trace.calls[id(pool)].args[0].shape[-2:]
            self.plane_names[id(pool)] = self.node("Mod", [self.pool_indices[id(pool)],
                                                           self.ints([h * w])])
        return self.plane_names[id(pool)]

    def unsupported(self, what: str) -> UnsupportedOperatorError:
        c = self.call
        return UnsupportedOperatorError(f"export: {type(c.fn).__name__} in {c.where}: {what}")

    # ----------------------------------------------------------------------- the walk
    def order(self, roots: list[Function]) -> list[Function]:
        """Functions reachable from ``roots``, each after every Function it consumes."""
        order: list[Function] = []
        seen: set[int] = set()
        stack = [(r, False) for r in reversed(roots)]
        while stack:
            fn, expanded = stack.pop()
            if expanded:
                order.append(fn)
                continue
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            call = self.trace.calls.get(id(fn))
            if call is None:
                raise UnsupportedOperatorError(
                    f"export: the output depends on a {type(fn).__name__} computed before "
                    f"the traced forward pass (a tensor cached from an earlier call?); "
                    f"only what forward computes can be exported")
            stack.append((fn, True))
            for dep in reversed(list(self.deps(call))):
                if id(dep) not in seen:
                    stack.append((dep, False))
        return order

    def output_source(self, t: Tensor, inputs: dict):
        if id(t) in inputs:
            return t
        s = t.grad_fn or self.trace.made.get(id(t))
        if s is None:
            pool = self.pools.get(id(root_array(t.data)))
            if pool is not None:
                self.want_indices.add(id(pool))
                return _Indices(pool)
            raise ValueError(f"export: an output of shape {t.shape} does not depend on the "
                             f"input (a constant); nothing to export for it")
        return s

    def build(self, inputs: list, outputs: list):
        helper = self.helper
        graph_inputs, by_id = [], {}
        self.batch = inputs[0][1].shape[0] if inputs[0][1].ndim else 0
        for name, t in inputs:
            self.used.add(name)
            self.leaf_name[id(t.data)] = name
            by_id[id(t)] = name
            if self.dynamic:
                if t.ndim == 0:
                    raise ValueError("export: dynamic_batch needs inputs with a batch dim")
                self.batched.add(id(t.data))
            graph_inputs.append(self._value_info(name, t.dtype, t.shape, self.dynamic))
        for name, _ in outputs:
            if name in self.used:
                raise ValueError(f"export: output name {name!r} is already an input or "
                                 f"weight name")
            self.used.add(name)
        sources = [self.output_source(t, by_id) for _, t in outputs]
        roots = [s.pool if isinstance(s, _Indices) else s for s in sources
                 if isinstance(s, (Function, _Indices))]
        for fn in self.order(roots):
            self.convert(self.trace.calls[id(fn)])
        self.call = None
        graph_outputs = self._outputs(outputs, sources)
        graph = helper.make_graph(self.nodes, "scratchvision", graph_inputs, graph_outputs,
                                  initializer=self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="scratchvision",
                                 ir_version=helper.find_min_ir_version_for(opsets))

    def convert(self, call: _Call) -> None:
        self.call = call
        converter = _CONVERTERS.get(type(call.fn))
        if type(call.fn) is activation.Dropout:
            raise self.unsupported("dropout in training mode: export runs module.eval(), "
                                   "so this dropout is called with training=True whatever "
                                   "the module's mode")
        if converter is None:
            raise UnsupportedOperatorError(
                f"export: no ONNX conversion for Function {type(call.fn).__name__} (called "
                f"in {call.where}); supported: "
                f"{', '.join(sorted(c.__name__ for c in _CONVERTERS))}")
        name = converter(self, call)
        self.out_name[id(call.fn)] = name
        if self.dynamic:
            fed = [i for i in range(len(call.args)) if self.batched_arg(call, i)]
            if fed:
                shape = call.out_shape
                if not shape or shape[0] != self.batch:
                    raise self.unsupported(
                        f"its output {tuple(shape)} does not keep the batch dim "
                        f"({self.batch}) of its input first; export with "
                        f"dynamic_batch=False")
                self.batched.add(id(call.fn))

    def _outputs(self, outputs: list, sources: list) -> list:
        """Graph outputs: a node's output is renamed to the output name (its first use as
        an output); an input, an initializer or a repeat goes through an Identity."""
        produced = {o for n in self.nodes for o in n.output}
        infos, renames = [], {}
        for (name, t), s in zip(outputs, sources):
            value = self.leaf_name[id(s.data)] if isinstance(s, Tensor) else self.name_of(s)
            if value in produced and value not in renames:
                renames[value] = name
            else:
                self.nodes.append(self.helper.make_node("Identity", [value], [name],
                                                        name=self.fresh(f"{name}/Identity")))
            batched = self.dynamic and self.is_batched(s)
            infos.append(self._value_info(name, t.dtype, t.shape, batched))
        for node in self.nodes:
            node.input[:] = [renames.get(v, v) for v in node.input]
            node.output[:] = [renames.get(v, v) for v in node.output]
        return infos

    def _value_info(self, name: str, dtype, shape, batched: bool):
        elem = self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        dims: list = list(shape)
        if batched and dims:
            dims[0] = "batch"
        return self.helper.make_tensor_value_info(name, elem, dims)


# ----------------------------------------------------------------------------- helpers
def _pair(v, name: str) -> list[int]:
    """An int or a pair of ints as the ``[h, w]`` list an ONNX attribute takes."""
    return list(pair(v, name))


def _callable_and_module(module) -> tuple[Callable, Module]:
    if isinstance(module, Module):
        return module, module
    owner = getattr(module, "__self__", None)
    if callable(module) and isinstance(owner, Module):
        return module, owner
    raise TypeError(f"export: expected an nn.Module or a bound method of one, got "
                    f"{type(module).__name__}")


def _example_inputs(example) -> list[Tensor]:
    items = list(example) if isinstance(example, (tuple, list)) else [example]
    inputs = []
    for k, x in enumerate(items):
        data = x.data if isinstance(x, Tensor) else x
        if not hasattr(data, "dtype"):
            data = np.asarray(data)
        if data.dtype.kind != "f":
            raise TypeError(f"export: example input {k} must be floating point (it is "
                            f"traced as a tensor that requires grad), got {data.dtype}")
        inputs.append(Tensor._make(data, True))
    return inputs


def _names(names, n: int, stem: str, what: str) -> list[str]:
    if names is None:
        return [stem] if n == 1 else [f"{stem}_{k}" for k in range(n)]
    names = [names] if isinstance(names, str) else [str(s) for s in names]
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"export: {what} must be {n} distinct names, got {names}")
    return names


def _flatten(out, key):
    """(key, leaf) pairs of nested tuples, lists and dicts, in order."""
    if isinstance(out, (tuple, list)):
        for k, o in enumerate(out):
            yield from _flatten(o, key + (k,))
    elif isinstance(out, dict):
        for k, o in out.items():
            yield from _flatten(o, k)
    else:
        yield key, out


# -------------------------------------------------------------------------- converters
def _check_4d(b: _Builder, call: _Call) -> None:
    if len(call.args[0].shape) != 4:
        raise b.unsupported(f"only (N, C, H, W) inputs are exported, got shape "
                            f"{tuple(call.args[0].shape)}")


def _conv2d(b: _Builder, call: _Call) -> str:
    _check_4d(b, call)
    k = call.kwargs
    ph, pw = _pair(k["padding"], "padding")
    eh, ew = _pair(k.get("extra", (0, 0)), "extra")   # padding='same': odd pixel bottom/right
    inputs = [b.value(call, i) for i in range(len(call.args))]
    return b.node("Conv", inputs, kernel_shape=list(call.args[1].shape[2:]),
                  strides=_pair(k["stride"], "stride"), pads=[ph, pw, ph + eh, pw + ew],
                  dilations=_pair(k["dilation"], "dilation"), group=int(k["groups"]))


def _conv_transpose2d(b: _Builder, call: _Call) -> str:
    _check_4d(b, call)
    k = call.kwargs
    ph, pw = _pair(k["padding"], "padding")
    inputs = [b.value(call, i) for i in range(len(call.args))]
    return b.node("ConvTranspose", inputs, kernel_shape=list(call.args[1].shape[2:]),
                  strides=_pair(k["stride"], "stride"), pads=[ph, pw, ph, pw],
                  output_padding=_pair(k["output_padding"], "output_padding"),
                  dilations=_pair(k["dilation"], "dilation"),
                  group=int(k["groups"]))


def _batch_norm(b: _Builder, call: _Call) -> str:
    x, gamma, beta, _, _, training, momentum, eps = call.args
    if training:
        raise b.unsupported("batch statistics (training=True, or a BatchNorm with "
                            "track_running_stats=False) have no ONNX inference form; "
                            "export uses running statistics")
    c, dtype = x.shape[1], x.dtype
    scale = b.value(call, 1) if gamma is not None else b.const(np.ones(c, dtype))
    shift = b.value(call, 2) if beta is not None else b.const(np.zeros(c, dtype))
    # ONNX's momentum weighs the old statistic (torch's weighs the new one); training only
    return b.node("BatchNormalization", [b.value(call, 0), scale, shift, b.value(call, 3),
                                         b.value(call, 4)],
                  epsilon=float(eps), momentum=1.0 - float(momentum))


def _layer_norm(b: _Builder, call: _Call) -> str:
    x, gamma, beta, k, eps = call.args
    if b.opset < 17:
        raise b.unsupported("LayerNormalization needs opset_version >= 17")
    shape, dtype = tuple(x.shape[len(x.shape) - k:]), x.dtype
    scale = b.value(call, 1) if gamma is not None else b.const(np.ones(shape, dtype))
    shift = b.value(call, 2) if beta is not None else b.const(np.zeros(shape, dtype))
    return b.node("LayerNormalization", [b.value(call, 0), scale, shift], axis=-int(k),
                  epsilon=float(eps))


def _linear(b: _Builder, call: _Call) -> str:
    x, w = b.value(call, 0), b.value(call, 1)
    bias = b.value(call, 2) if len(call.args) > 2 and call.args[2] is not None else None
    if len(call.args[0].shape) == 2:
        return b.node("Gemm", [x, w] + ([bias] if bias else []), transB=1)
    y = b.node("MatMul", [x, b.node("Transpose", [w], perm=[1, 0])])
    return b.node("Add", [y, bias]) if bias else y


def _pool_attrs(kernel_size, stride, padding, dilation=1) -> dict:
    kernel = _pair(kernel_size, "kernel_size")
    p = _pair(padding, "padding")
    attrs = {"kernel_shape": kernel, "pads": p + p,
             "strides": kernel if stride is None else _pair(stride, "stride")}
    if _pair(dilation, "dilation") != [1, 1]:
        attrs["dilations"] = _pair(dilation, "dilation")
    return attrs


def _max_pool2d(b: _Builder, call: _Call) -> str:
    _check_4d(b, call)
    _, kernel_size, stride, padding, dilation, ceil_mode = call.args
    attrs = _pool_attrs(kernel_size, stride, padding, dilation)
    x = b.value(call, 0)
    if id(call.fn) not in b.want_indices:
        return b.node("MaxPool", [x], ceil_mode=int(bool(ceil_mode)), **attrs)
    y, idx = b.node("MaxPool", [x], n_out=2, ceil_mode=int(bool(ceil_mode)), **attrs)
    b.pool_indices[id(call.fn)] = idx
    return y


def _max_unpool2d(b: _Builder, call: _Call) -> str:
    _check_4d(b, call)
    s = b.source(call, 1)
    if not isinstance(s, _Indices):
        raise b.unsupported("its indices must come from a max_pool2d(return_indices=True) "
                            "of the same forward pass")
    pool = b.trace.calls[id(s.pool)]
    pooled_in = pool.args[0]
    if tuple(call.out_shape) != tuple(pooled_in.shape):
        raise b.unsupported(f"its output {tuple(call.out_shape)} must be the size of the "
                            f"pooled input {tuple(pooled_in.shape)} (ONNX numbers the indices "
                            f"over the whole tensor, scratchvision per plane)")
    _, kernel_size, stride, padding, _, _ = pool.args
    if b.dynamic:
        shape = b.node("Shape", [b.value(pool, 0)])
    else:
        shape = b.ints(call.out_shape)
    return b.node("MaxUnpool", [b.value(call, 0), b.pool_indices[id(s.pool)], shape],
                  **_pool_attrs(kernel_size, stride, padding))


def _avg_pool2d(b: _Builder, call: _Call) -> str:
    _check_4d(b, call)
    _, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor = call.args
    if divisor is not None:
        raise b.unsupported("divisor_override has no ONNX equivalent")
    return b.node("AveragePool", [b.value(call, 0)], ceil_mode=int(bool(ceil_mode)),
                  count_include_pad=int(bool(count_include_pad)),
                  **_pool_attrs(kernel_size, stride, padding))


def _adaptive_pool(op: str):
    def convert(b: _Builder, call: _Call) -> str:
        _check_4d(b, call)
        in_hw, out_hw = tuple(call.args[0].shape[2:]), tuple(call.out_shape[2:])
        x = b.value(call, 0)
        if out_hw == (1, 1):
            return b.node(f"Global{op}Pool", [x])
        if any(i % o for i, o in zip(in_hw, out_hw)):
            raise b.unsupported(f"output {out_hw} does not divide the input {in_hw}: its "
                                f"bins overlap, which no ONNX pooling expresses")
        kernel = [i // o for i, o in zip(in_hw, out_hw)]
        return b.node(f"{op}Pool", [x], kernel_shape=kernel, strides=kernel)
    return convert


def _interpolate(b: _Builder, call: _Call) -> str:
    _check_4d(b, call)
    _, _, scales, mode, align_corners = call.args
    x = b.value(call, 0)
    if mode == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode":
                 "align_corners" if align_corners else "half_pixel"}
    else:   # torch's legacy nearest: src = floor(dst * in / out)
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    dtype = np.float32
    if scales is not None and all(s is not None for s in scales) and not align_corners:
        # a scale factor steps the source by 1/scale (not in/out): pass the factor itself
        factors = b.const(np.asarray([1, 1, *scales], dtype))
        return b.node("Resize", [x, "", factors], **attrs)
    out_hw = list(call.out_shape[2:])
    if b.dynamic:
        sizes = b.node("Concat", [b.leading_shape(x, 2), b.ints(out_hw)], axis=0)
    else:
        sizes = b.ints(call.out_shape)
    return b.node("Resize", [x, "", "", sizes], **attrs)


def _unary(op: str):
    def convert(b: _Builder, call: _Call) -> str:
        return b.node(op, [b.value(call, 0)])
    return convert


def _binary(op: str):
    def convert(b: _Builder, call: _Call) -> str:
        return b.node(op, [b.value(call, 0), b.value(call, 1)])
    return convert


def _leaky_relu(b: _Builder, call: _Call) -> str:
    return b.node("LeakyRelu", [b.value(call, 0)], alpha=float(call.fn.slope))


def _clip(b: _Builder, call: _Call, lo, hi) -> str:
    dtype = call.out_dtype
    bounds = [b.const(v, dtype) if v is not None else "" for v in (lo, hi)]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return b.node("Clip", [b.value(call, 0), *bounds])


def _clamp(b: _Builder, call: _Call) -> str:
    return _clip(b, call, call.fn.lo, call.fn.hi)


def _hardtanh(b: _Builder, call: _Call) -> str:
    return _clip(b, call, *call.fn.bounds)


def _pow_scalar(b: _Builder, call: _Call) -> str:
    return b.node("Pow", [b.value(call, 0), b.const(call.fn.exponent, call.out_dtype)])


def _maximum(b: _Builder, call: _Call) -> str:
    op = "Max" if call.fn.mode == "max" else "Min"
    return b.node(op, [b.value(call, 0), b.value(call, 1)])


def _silu(b: _Builder, call: _Call) -> str:
    x = b.value(call, 0)
    return b.node("Mul", [x, b.node("Sigmoid", [x])])


def _gelu(b: _Builder, call: _Call) -> str:
    if call.fn.approximate != "none":
        raise b.unsupported(f"approximate={call.fn.approximate!r} (only the exact erf form)")
    x, dtype = b.value(call, 0), call.out_dtype
    erf = b.node("Erf", [b.node("Div", [x, b.const(math.sqrt(2.0), dtype)])])
    half = b.node("Mul", [x, b.const(0.5, dtype)])
    return b.node("Mul", [half, b.node("Add", [erf, b.const(1.0, dtype)])])


def _softmax(op: str):
    def convert(b: _Builder, call: _Call) -> str:
        return b.node(op, [b.value(call, 0)], axis=int(call.fn.dim))
    return convert


def _reduce(op: str):
    def convert(b: _Builder, call: _Call) -> str:
        fn = call.fn
        ndim = len(fn.in_shape)
        dims = list(range(ndim)) if fn.dim is None else [int(d) % ndim for d in fn.dim]
        if b.batched_arg(call, 0) and 0 in dims:
            raise b.unsupported("it reduces over the batch dim; export with "
                                "dynamic_batch=False")
        keep = int(bool(fn.keepdim))
        x = b.value(call, 0)
        if op == "ReduceSum" or b.opset >= 18:
            return b.node(op, [x, b.ints(dims)], keepdims=keep)
        return b.node(op, [x], axes=dims, keepdims=keep)
    return convert


def _reshape(b: _Builder, call: _Call) -> str:
    shape = [int(d) for d in call.out_shape]
    if b.batched_arg(call, 0):
        if not shape or shape[0] != call.fn.in_shape[0]:
            raise b.unsupported(f"it reshapes {tuple(call.fn.in_shape)} to {tuple(shape)} "
                                f"across the batch dim; export with dynamic_batch=False")
        shape[0] = 0                      # ONNX: copy dim 0 from the input
    return b.node("Reshape", [b.value(call, 0), b.ints(shape)])


def _permute(b: _Builder, call: _Call) -> str:
    perm = [int(d) for d in call.arg(1, "dims")]
    if b.batched_arg(call, 0) and perm[0] != 0:
        raise b.unsupported("it moves the batch dim; export with dynamic_batch=False")
    return b.node("Transpose", [b.value(call, 0)], perm=perm)


def _expand(b: _Builder, call: _Call) -> str:
    shape = [int(d) for d in call.out_shape]
    in_shape = call.fn.in_shape
    lead = len(shape) - len(in_shape)
    # ONNX Expand broadcasts both ways: 1 keeps a dim, so dims the input already has stay
    shape = [1 if i >= lead and in_shape[i - lead] == s else s for i, s in enumerate(shape)]
    return b.node("Expand", [b.value(call, 0), b.ints(shape)])


def _cast(b: _Builder, call: _Call) -> str:
    to = b.helper.np_dtype_to_tensor_dtype(np.dtype(call.out_dtype))
    return b.node("Cast", [b.value(call, 0)], to=to)


def _cat(b: _Builder, call: _Call) -> str:
    ndim = len(call.out_shape)
    return b.node("Concat", [b.value(call, i) for i in range(len(call.args))],
                  axis=int(call.fn.dim) % ndim)


def _stack(b: _Builder, call: _Call) -> str:
    axis = int(call.fn.dim) % len(call.out_shape)
    parts = [b.node("Unsqueeze", [b.value(call, i), b.ints([axis])])
             for i in range(len(call.args))]
    return b.node("Concat", parts, axis=axis)


def _pad(b: _Builder, call: _Call) -> str:
    fn = call.fn
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[fn.mode]
    pads = [lo for lo, _ in fn.widths] + [hi for _, hi in fn.widths]
    inputs = [b.value(call, 0), b.ints(pads)]
    if mode == "constant":
        inputs.append(b.const(call.kwargs.get("value", 0.0), call.out_dtype, "value"))
    return b.node("Pad", inputs, mode=mode)


def _getitem(b: _Builder, call: _Call) -> str:
    """Basic indexing: each int or slice is one Slice axis (ints then squeezed), None adds
    an axis (Unsqueeze), Ellipsis stands for the dims it spans."""
    index = call.kwargs["index"] if "index" in call.kwargs else call.args[1]
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items):
        raise b.unsupported("only ints, slices, None and Ellipsis are exported (no index "
                            "arrays or masks)")
    shape = call.fn.in_shape
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    rest = (slice(None),) * (len(shape) - n_real)       # the dims not named by an item
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + rest + tuple(i for i in items[k + 1:] if i is not Ellipsis)
    else:
        items = items + rest
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = out_dim = 0
    for item in items:
        if item is None:
            unsqueeze.append(out_dim)
            out_dim += 1
            continue
        n = shape[dim]
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            full = (start, stop, step) == (0, n, 1)
            out_dim += 1
        else:
            start = int(item) % n
            stop, step, full = start + 1, 1, False
            squeeze.append(dim)
        if not full:
            if dim == 0 and b.batched_arg(call, 0):
                raise b.unsupported("it indexes the batch dim; export with "
                                    "dynamic_batch=False")
            starts.append(start)
            ends.append(stop if stop >= 0 else -n - 1)   # a negative step down to index 0
            axes.append(dim)
            steps.append(step)
        dim += 1
    x = y = b.value(call, 0)
    if axes:
        y = b.node("Slice", [y, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if squeeze:
        y = b.node("Squeeze", [y, b.ints(squeeze)])
    if unsqueeze:
        y = b.node("Unsqueeze", [y, b.ints(unsqueeze)])
    return y if y != x else b.node("Identity", [x])


_CONVERTERS: dict[type, Callable[[_Builder, _Call], str]] = {
    conv.Conv2d: _conv2d,
    conv.ConvTranspose2d: _conv_transpose2d,
    normalization.BatchNorm: _batch_norm,
    normalization.LayerNorm: _layer_norm,
    Linear: _linear,
    pooling.MaxPool2d: _max_pool2d,
    pooling.MaxUnpool2d: _max_unpool2d,
    pooling.AvgPool2d: _avg_pool2d,
    pooling.AdaptiveAvgPool2d: _adaptive_pool("Average"),
    pooling.AdaptiveMaxPool2d: _adaptive_pool("Max"),
    Interpolate: _interpolate,
    ops.ReLU: _unary("Relu"),
    ops.Sigmoid: _unary("Sigmoid"),
    ops.Tanh: _unary("Tanh"),
    ops.Exp: _unary("Exp"),
    ops.Log: _unary("Log"),
    ops.Sqrt: _unary("Sqrt"),
    ops.Abs: _unary("Abs"),
    ops.Neg: _unary("Neg"),
    ops.Clone: _unary("Identity"),
    ops.LeakyReLU: _leaky_relu,
    ops.Clamp: _clamp,
    activation.Hardtanh: _hardtanh,
    activation.SiLU: _silu,
    activation.GELU: _gelu,
    activation.Softmax: _softmax("Softmax"),
    activation.LogSoftmax: _softmax("LogSoftmax"),
    ops.Add: _binary("Add"),
    ops.Sub: _binary("Sub"),
    ops.Mul: _binary("Mul"),
    ops.Div: _binary("Div"),
    ops.MatMul: _binary("MatMul"),
    ops.PowScalar: _pow_scalar,
    ops.Maximum: _maximum,
    ops.Sum: _reduce("ReduceSum"),
    ops.Mean: _reduce("ReduceMean"),
    ops.Reshape: _reshape,
    ops.Permute: _permute,
    ops.Expand: _expand,
    ops.Cast: _cast,
    ops.GetItem: _getitem,
    ops.Cat: _cat,
    ops.Stack: _stack,
    ops.Pad: _pad,
}
