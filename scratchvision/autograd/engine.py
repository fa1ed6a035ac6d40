"""The backward pass: reverse-mode differentiation over the recorded graph.

The graph's nodes are Functions; each one's ``inputs`` names, per argument, the Function
that made it, or the leaf tensor itself, or None (see ``function.py``). ``backward(root,
grad)`` first lists the Functions in topological order with an **iterative** depth-first
search (a deep net is thousands of nodes deep, past Python's recursion limit), then walks
that list from the root down. Each Function's output gradient is complete when it is
reached, because every Function that consumed its output comes earlier in the walk; it is
handed to ``backward``, whose results are added (``+``) into the gradients of its inputs.
Leaves that require grad accumulate into ``.grad`` (a Tensor, as in torch). Before a
Function's backward runs, the tensors it saved are checked against in-place changes
(their version counters). Unless ``retain_graph`` is set, each Function's saved values
are freed once used.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from scratchvision.autograd.function import Function, no_grad

if TYPE_CHECKING:
    from scratchvision.autograd.tensor import Tensor

# Leaves with post-accumulate-grad hooks (``Tensor.register_post_accumulate_grad_hook``),
# keyed by id (a Tensor's == is elementwise, so it cannot be a set member); a leaf leaves
# it with its last hook, and while it is empty backward does no hook bookkeeping at all.
leaves_with_hooks: "weakref.WeakValueDictionary[int, Tensor]" = weakref.WeakValueDictionary()
# Callbacks queued during a backward (``queue_callback``): run when it ends, in order.
_final_callbacks: list = []
_backward_depth = 0


def topological_order(root_fn: Function) -> list[Function]:
    """Functions of the graph ending at ``root_fn``, each after all Functions it consumed."""
    order: list = []
    visited: set[int] = set()
    stack = [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:  # all its inputs are placed: the Function may follow them
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for edge in _inputs_of(fn):
            if isinstance(edge, Function) and id(edge) not in visited:
                stack.append((edge, False))
    return order


def _inputs_of(fn: Function) -> tuple:
    if getattr(fn, "released", False):
        raise RuntimeError("trying to backward through the graph a second time (or directly "
                           "access saved tensors after they have already been freed): call "
                           "backward(retain_graph=True) the first time")
    return fn.inputs


def _accumulate(leaf: "Tensor", g) -> None:
    """Add ``g`` into ``leaf.grad`` (a new Tensor the first time, in place afterwards)."""
    from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
    if g.dtype != leaf.dtype:
        g = g.astype(leaf.dtype)
    if leaf.grad is None:
        leaf.grad = Tensor._make(g.copy(), False)
    else:
        leaf.grad.data = leaf.grad.data + g
        leaf.grad._version_counter.value += 1


def backward(root: "Tensor", grad=None, retain_graph: bool = False,
             capture: list | None = None) -> list | None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    With ``capture`` (a list of tensors), no ``.grad`` is touched: the gradient reaching
    each listed tensor is returned instead, one array (or None) per tensor, in order
    (what ``autograd.grad`` gives back).
    """
    xp = root.xp
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, "
                               f"got output of shape {root.shape}: pass backward(grad)")
        grad = xp.ones_like(root.data)
    else:
        grad = grad.data if hasattr(grad, "grad_fn") else xp.asarray(grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"backward: grad has shape {grad.shape} but the output has "
                             f"shape {root.shape}")
    captured: dict[int, object] = {}
    by_fn: dict[int, int] = {}          # id(Function) -> id(tensor) of a non-leaf to capture
    if capture is not None:
        captured = {id(t): None for t in capture}
        by_fn = {id(t.grad_fn): id(t) for t in capture if t.grad_fn is not None}

    def deliver(key: int, leaf, g) -> None:
        if capture is None:
            _accumulate(leaf, g)
        elif key in captured:
            captured[key] = g.copy() if captured[key] is None else captured[key] + g

    global _backward_depth
    _backward_depth += 1
    try:
        if root.grad_fn is None:  # the root is a leaf: d(root)/d(root) = grad
            deliver(id(root), root, grad)
            if capture is None:
                _fire_hooks(root)
        else:
            _walk(root.grad_fn, grad, retain_graph, capture is None, deliver, by_fn)
        if _backward_depth == 1:
            while _final_callbacks:
                _final_callbacks.pop(0)()
    finally:
        _backward_depth -= 1
        if _backward_depth == 0:
            _final_callbacks.clear()
    return None if capture is None else [captured[id(t)] for t in capture]


def queue_callback(callback) -> None:
    """Run ``callback()`` when the backward pass now running ends (after every leaf's
    gradient and hook); torch's ``Variable._execution_engine.queue_callback``. Only valid
    from inside a backward (a hook); a callback may queue another."""
    if _backward_depth == 0:
        raise RuntimeError("queue_callback: no backward pass is running")
    _final_callbacks.append(callback)


def _fire_hooks(leaf) -> None:
    for hook in list(leaf.__dict__.get("_post_accumulate_grad_hooks", {}).values()):
        hook(leaf)


def _last_uses(order: list) -> dict:
    """Position in the walk (``reversed(order)``) of the last Function that takes each
    hooked leaf as an input: after it, that leaf's gradient is complete."""
    last: dict[int, int] = {}
    n = len(order)
    for k, fn in enumerate(order):      # order is the reverse of the walk: first = last
        for edge in fn.inputs:
            if edge is not None and not isinstance(edge, Function) and \
                    id(edge) not in last and id(edge) in leaves_with_hooks:
                last[id(edge)] = n - 1 - k
    return last


def _walk(root_fn: Function, grad, retain_graph: bool, retain_grads: bool, deliver,
          by_fn: dict) -> None:
    grads = {id(root_fn): grad}
    order = topological_order(root_fn)
    # leaves whose hooks fire after the step of their last use, if they received a gradient
    hooked = _last_uses(order) if retain_grads and len(leaves_with_hooks) else {}
    due: dict[int, list] = {}
    if hooked:
        inner = deliver

        def deliver(key, leaf, g):  # noqa: F811  (the same delivery, noting who received)
            inner(key, leaf, g)
            if key in hooked:
                due.setdefault(hooked.pop(key), []).append(leaf)
    with no_grad():  # gradients are plain arrays; nothing here is recorded
        for step, fn in enumerate(reversed(order)):
            if due:
                for leaf in due.pop(step - 1, ()):
                    _fire_hooks(leaf)
            g = grads.pop(id(fn), None)
            if g is None:
                continue
            if id(fn) in by_fn:
                deliver(by_fn[id(fn)], None, g)
            if retain_grads and "_output_retains_grad" in fn.__dict__:
                out = fn.output_tensor()
                if out is not None and out._retains_grad:
                    _accumulate(out, g)
            if "_saved_versions" in fn.__dict__:
                fn.check_saved_versions()
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            inputs = fn.inputs
            if len(input_grads) != len(inputs):
                raise RuntimeError(f"{type(fn).__name__}.backward returned {len(input_grads)} "
                                   f"gradients for {len(inputs)} inputs")
            for edge, ig in zip(inputs, input_grads):
                if edge is None or ig is None:
                    continue
                if isinstance(edge, Function):
                    _route(fn, edge, ig, grads)
                else:  # a leaf tensor
                    if ig.shape != edge.shape:
                        raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient "
                                           f"of shape {ig.shape} for an input of shape "
                                           f"{edge.shape}")
                    deliver(id(edge), edge, ig if ig.dtype == edge.dtype
                            else ig.astype(edge.dtype))
            if not retain_graph:
                fn.release()
        for step in sorted(due):        # the leaves last used by the walk's final steps
            for leaf in due[step]:
                _fire_hooks(leaf)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False):
    """``torch.autograd.grad``: d(outputs)/d(inputs) returned as a tuple of Tensors, without
    touching any ``.grad``. ``grad_outputs`` weights each output (needed for non-scalar
    ones). ``allow_unused=False`` raises for an input the outputs do not depend on.
    ``create_graph`` (higher-order gradients) is not supported here."""
    from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
    if create_graph:
        raise NotImplementedError("autograd.grad(create_graph=True): gradients are computed "
                                  "as plain arrays here, so they cannot be differentiated")
    single_in = isinstance(inputs, Tensor)
    inputs = [inputs] if single_in else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: an input of shape {t.shape} does not require "
                               "grad")
    total = [None] * len(inputs)
    for k, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError("autograd.grad: an output does not require grad")
        keep = bool(retain_graph) or k < len(outputs) - 1
        parts = backward(out, g, retain_graph=keep, capture=inputs)
        total = [p if t is None else t if p is None else t + p for t, p in zip(total, parts)]
    result = []
    for t, g in zip(inputs, total):
        if g is None and not allow_unused:
            raise RuntimeError(f"autograd.grad: one of the inputs (shape {t.shape}) was not "
                               "used to compute the outputs: pass allow_unused=True")
        result.append(None if g is None else Tensor._make(g, False))
    return tuple(result)


def _route(fn: Function, edge: Function, ig, grads: dict) -> None:
    """Add ``ig`` to the gradient waiting for Function ``edge``'s output."""
    shape = getattr(edge, "out_shape", None)
    if shape is not None and ig.shape != shape:
        raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape "
                           f"{ig.shape} for an input of shape {shape}")
    dtype = getattr(edge, "out_dtype", None)
    if dtype is not None and ig.dtype != dtype:
        ig = ig.astype(dtype)
    key = id(edge)
    grads[key] = ig if key not in grads else grads[key] + ig
