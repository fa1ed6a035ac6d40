"""Gradient checking: the analytic backward against float64 central differences.

For a function ``f`` of tensors, pick a fixed random direction ``v`` for each output and
form the scalar ``L = sum_k <v_k, f_k(x)>``. The analytic gradient ``dL/dx`` comes from one
``backward()``: it is the vector-Jacobian product ``J^T v`` that every op's backward
computes. The numerical gradient perturbs each input element by ``±eps``::

    dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)       error O(eps^2)

An element fails when ``|analytic - numeric| > atol + rtol * |numeric|`` (numpy's allclose).
Because ``v`` is random, a wrong backward passes only by a coincidence of measure zero.

Two errors are reported over every checked element, whether it passed or not:
``max_abs_err = max |a - n|`` and ``max_rel_err = max |a - n| / max(|n|, |a|, atol)``
(``a`` analytic, ``n`` numeric). The floor ``atol`` in the denominator keeps elements whose
derivatives are both about zero (where central differences leave only rounding noise)
from reporting huge relative errors; above it the value is the plain relative error, at
most 1 when the signs agree. The report does not change pass/fail, which is the tolerance
test above.

Every differentiable op registers a small example with ``@register_gradcheck(name)``;
``python -m scratchvision gradcheck [name ...]`` runs them all and prints a table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from scratchvision import backend


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when analytic and numerical gradients differ."""


@dataclass
class GradcheckResult:
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst: str = ""          # "input 1 element (0, 2, 3): analytic ... numeric ..."
    checked: int = 0         # number of input elements checked
    details: list = field(default_factory=list)


def _to_inputs(inputs: Sequence[Any], device: str | None):
    from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            if x.dtype.kind == "f":
                t = Tensor._make(x.data.astype(np.float64), False)
                out.append(t.requires_grad_(x.requires_grad))
            else:
                out.append(x)
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f" or backend.is_cupy_array(x):
            out.append(Tensor(np.asarray(x, np.float64) if device is None else x,
                              dtype=np.float64, device=device).requires_grad_(True))
        else:
            out.append(x)
    return out


def _outputs(result) -> list:
    from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
    items = result if isinstance(result, (tuple, list)) else [result]
    return [r for r in items if isinstance(r, Tensor) and r.dtype.kind == "f"]


def gradcheck(fn: Callable, inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0, raise_exception: bool = True,
              device: str | None = None, max_elements: int | None = None) -> GradcheckResult:
    """Check ``fn``'s backward against central differences in float64.

    Parameters
    ----------
    fn : callable taking the inputs (Tensors where floating) and returning a Tensor or a
        tuple of Tensors (non-floating outputs such as indices are ignored).
    inputs : sequence of arrays, Tensors or other arguments. Floating numpy arrays become
        float64 Tensors that require grad; Tensors keep their ``requires_grad``; anything
        else (ints, index arrays, boxes given as int arrays) is passed through unchanged.
    eps, atol, rtol : step and tolerances (see module docstring).
    raise_exception : raise ``GradcheckError`` naming the input and element on failure.
    device : move the floating arrays to this device first ('cuda': check on the GPU).
    max_elements : check at most this many elements of each input, drawn at random
        (seeded); None checks them all. For slow devices (the CUDA simulator).

    Returns
    -------
    GradcheckResult with ``ok``, ``max_abs_err``, ``max_rel_err`` and the worst element.
    """
    from scratchvision.autograd.function import no_grad  # noqa: PLC0415
    args = _to_inputs(inputs, device)
    outs = _outputs(fn(*args))
    if not outs:
        raise ValueError("gradcheck: fn returned no floating-point Tensor")
    rng = np.random.default_rng(seed)
    directions = [outs[0].xp.asarray(rng.standard_normal(o.shape)) for o in outs]

    def objective(values) -> float:
        total = 0.0
        for o, v in zip(_outputs(fn(*values)), directions):
            total += float((o.data.astype(np.float64) * v).sum())
        return total

    loss = None
    for o, v in zip(outs, directions):
        from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415
        term = (o * Tensor._make(v, False)).sum()
        loss = term if loss is None else loss + term
    checked_inputs = [i for i, a in enumerate(args)
                      if hasattr(a, "requires_grad") and a.requires_grad]
    if not checked_inputs:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked_inputs:
        args[i].grad = None
    if loss.requires_grad:
        loss.backward()

    result = GradcheckResult(ok=True, max_abs_err=0.0, max_rel_err=0.0)
    worst_excess = -np.inf
    with no_grad():
        for i in checked_inputs:
            x = args[i]
            analytic = x.grad.data if x.grad is not None else x.xp.zeros_like(x.data)
            analytic = backend.to_device(analytic, "cpu")
            positions = list(np.ndindex(*x.shape))
            if max_elements is not None and len(positions) > max_elements:
                pick = np.sort(rng.choice(len(positions), max_elements, replace=False))
                positions = [positions[k] for k in pick]
            numeric = np.zeros(x.shape)
            checked = np.zeros(x.shape, bool)
            for idx in positions:  # perturb in place (works for strided data too)
                orig = x.data[idx].item()
                x.data[idx] = orig + eps
                up = objective(args)
                x.data[idx] = orig - eps
                down = objective(args)
                x.data[idx] = orig
                numeric[idx] = (up - down) / (2 * eps)
                checked[idx] = True
            err = np.where(checked, np.abs(analytic - numeric), 0.0)
            # relative to the larger derivative, floored at atol (see the module docstring)
            floor = max(atol, np.finfo(np.float64).tiny)     # atol=0: no 0 / 0
            rel = err / np.maximum(np.maximum(np.abs(numeric), np.abs(analytic)), floor)
            excess = np.where(checked, err - (atol + rtol * np.abs(numeric)), -np.inf)
            result.checked += len(positions)
            if positions:
                result.max_abs_err = max(result.max_abs_err, float(err.max()))
                result.max_rel_err = max(result.max_rel_err, float(rel.max()))
                k = int(np.argmax(excess))
                if excess.reshape(-1)[k] > worst_excess:
                    worst_excess = float(excess.reshape(-1)[k])
                    idx = np.unravel_index(k, x.shape)
                    result.worst = (f"input {i} (shape {x.shape}) element {tuple(map(int, idx))}:"
                                    f" analytic {analytic[idx]:.8g}, numeric {numeric[idx]:.8g}")
                if (excess > 0).any():
                    result.ok = False
    if not result.ok and raise_exception:
        raise GradcheckError(f"gradcheck failed: {result.worst} "
                             f"(max abs err {result.max_abs_err:.3g}, atol {atol}, rtol {rtol})")
    return result


# ---------------------------------------------------------------------- registry
@dataclass
class GradcheckCase:
    name: str
    factory: Callable[[np.random.Generator], Any]
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3


_REGISTRY: dict[str, GradcheckCase] = {}


def register_gradcheck(name: str, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3):
    """Decorator: register ``factory(rng) -> (fn, inputs)`` (or a list of such pairs).

    Example::

        @register_gradcheck("conv2d")
        def _case(rng):
            x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
            return lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w]
    """
    def decorate(factory):
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"gradcheck case {name!r} is registered twice")
        _REGISTRY[name] = GradcheckCase(name, factory, eps, atol, rtol)
        return factory
    return decorate


def registered_gradchecks() -> dict[str, GradcheckCase]:
    """All registered cases by name (import ``scratchvision`` first so every op registers)."""
    return dict(sorted(_REGISTRY.items()))


def run_case(case: GradcheckCase, seed: int = 0, device: str | None = None,
             max_elements: int | None = None) -> GradcheckResult:
    """Run one registered case (all its variants); returns the worst result."""
    made = case.factory(np.random.default_rng(seed))
    variants = made if isinstance(made, list) else [made]
    total = GradcheckResult(ok=True, max_abs_err=0.0, max_rel_err=0.0)
    for fn, inputs in variants:
        r = gradcheck(fn, inputs, eps=case.eps, atol=case.atol, rtol=case.rtol, seed=seed,
                      raise_exception=False, device=device, max_elements=max_elements)
        total.checked += r.checked
        total.max_abs_err = max(total.max_abs_err, r.max_abs_err)
        total.max_rel_err = max(total.max_rel_err, r.max_rel_err)
        if not r.ok and total.ok:
            total.ok, total.worst = False, r.worst
    return total
