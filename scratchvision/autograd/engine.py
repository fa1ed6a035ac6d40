"""The backward pass: reverse-mode differentiation over the recorded graph.

``backward(root, grad)`` first lists the graph's tensors in topological order with an
**iterative** depth-first search (a deep net is thousands of nodes deep, past Python's
recursion limit), then walks that list from the root down. Each tensor's gradient is
complete when it is reached, because every tensor that consumed it comes earlier in the
walk; it is handed to the tensor's ``grad_fn.backward``, whose results are added (``+``)
into the gradients of its parents. Leaves that require grad accumulate into ``.grad``.
Unless ``retain_graph`` is set, each Function's saved values are freed once used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from scratchvision.autograd.function import no_grad

if TYPE_CHECKING:
    from scratchvision.autograd.tensor import Tensor


def topological_order(root: "Tensor") -> list["Tensor"]:
    """Tensors of the graph ending at ``root``, each after all tensors it depends on."""
    order: list = []
    visited: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:  # all parents are placed: the node may follow them
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.grad_fn is not None:
            for parent in node.grad_fn.parents:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def backward(root: "Tensor", grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
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
    grads = {id(root): grad}
    with no_grad():  # gradients are plain arrays; nothing here is recorded
        for node in reversed(topological_order(root)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            fn = node.grad_fn
            if fn is None or node._retains_grad:
                node.grad = g.copy() if node.grad is None else node.grad + g
            if fn is None:
                continue
            parent_grads = fn.backward(g)
            if not isinstance(parent_grads, tuple):
                parent_grads = (parent_grads,)
            parents = fn.parents
            if len(parent_grads) != len(parents):
                raise RuntimeError(f"{type(fn).__name__}.backward returned {len(parent_grads)} "
                                   f"gradients for {len(parents)} inputs")
            for parent, pg in zip(parents, parent_grads):
                if parent is None or pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of "
                                       f"shape {pg.shape} for an input of shape {parent.shape}")
                if pg.dtype != parent.dtype:
                    pg = pg.astype(parent.dtype)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:
                fn.release()
                node.grad_fn = _FREED
    return None


class _Freed:
    """Stands in for a Function whose graph was freed by an earlier backward."""

    parents = ()

    def backward(self, gy):
        raise RuntimeError("trying to backward through the graph a second time (or directly "
                           "access saved tensors after they have already been freed): call "
                           "backward(retain_graph=True) the first time")

    def release(self) -> None:
        pass

    def __repr__(self) -> str:
        return "<freed>"


_FREED = _Freed()
