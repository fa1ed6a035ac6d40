"""``Optimizer`` base: parameter groups, per-parameter state, zero_grad, state_dict.

Updates are written in place into ``p.data`` with array arithmetic (no graph), so the
same code runs on NumPy and CuPy arrays.

The parameter list is checked as torch checks it: a single Tensor instead of an iterable is
a ``TypeError``, an empty list or a parameter in two groups a ``ValueError``, and a
parameter listed twice in one group gets torch's warning (and is then updated once per
step, not twice). ``load_state_dict`` checks the whole saved state against this
optimiser's groups before it changes anything.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable

from scratchvision.backend import to_device
from scratchvision.validation import check_number


def check_hyperparameter(value, message: str, maximum: float | None = None,
                         below_maximum: bool = False) -> float:
    """A real number >= 0 (< ``maximum`` with ``below_maximum``, else <= it), else torch's
    ``ValueError(f"{message}: {value}")`` (e.g. "Invalid learning rate: -0.1")."""
    value = check_number(value, message.replace("Invalid ", ""))   # TypeError for "0.1"
    if value < 0 or maximum is not None and (value >= maximum if below_maximum
                                             else value > maximum):
        raise ValueError(f"{message}: {value}")
    return value


class Optimizer:
    def __init__(self, params: Iterable, defaults: dict) -> None:
        from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415

        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got a {type(params).__name__} of shape "
                            f"{params.shape}")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        seen: dict[int, int] = {}       # id(parameter) -> the group that holds it
        for i, g in enumerate(groups):
            if not isinstance(g, dict) or "params" not in g:
                raise TypeError(f"optimizer: parameter group {i} must be a dict with a "
                                f"'params' key, got {g!r:.80}")
            group = dict(defaults)
            group.update(g)
            ps = [group["params"]] if isinstance(group["params"], Tensor) \
                else list(group["params"])
            for p in ps:
                if not isinstance(p, Tensor):
                    raise TypeError(f"optimizer can only optimize Tensors, but group {i} "
                                    f"holds a {type(p).__name__}")
                if not getattr(p, "requires_grad", False):
                    raise ValueError("optimizer can only optimize tensors that require grad")
                if not p.is_leaf:
                    raise ValueError("can't optimize a non-leaf Tensor")
            unique = list({id(p): p for p in ps}.values())
            if len(unique) != len(ps):
                warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                              "in future, this will cause an error; see "
                              "github.com/pytorch/pytorch/issues/40967 for more information",
                              UserWarning, stacklevel=3)
            for p in unique:
                if id(p) in seen:
                    raise ValueError(f"some parameters appear in more than one parameter group "
                                     f"(a parameter of shape {p.shape} is in groups "
                                     f"{seen[id(p)]} and {i})")
                seen[id(p)] = i
            group["params"] = unique
            self.param_groups.append(group)
        self.state: dict[int, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self) -> None:
        raise NotImplementedError

    def _params_with_grad(self, group: dict):
        for p in group["params"]:
            if p.grad is not None:
                yield p

    def state_dict(self) -> dict[str, Any]:
        """Per-parameter state and hyper-parameters, in torch's layout::

            {"state": {0: {"momentum_buffer": Tensor}, ...},   # by parameter index
             "param_groups": [{"lr": 0.1, ..., "params": [0, 1, 2]}, ...]}

        Parameters are numbered across the groups in order. Array state (SGD's
        ``momentum_buffer``, Adam's ``exp_avg``/``exp_avg_sq``) comes as Tensors on the
        CPU, copied, so the dict keeps its numbers while training goes on; Adam's ``step``
        stays an int. ``scratchvision.save`` writes the dict as it is.
        """
        from scratchvision.autograd.tensor import Tensor

        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(saved)
        state = {index[k]: {n: (Tensor._make(to_device(v, "cpu").copy(), False)
                                if hasattr(v, "shape") else v) for n, v in s.items()}
                 for k, s in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` gave (values as Tensors or arrays, on any device).

        Parameters are matched by position, group by group, as torch does; each array is
        copied to its parameter's device (floating state cast to the parameter's dtype).
        The groups' hyper-parameters replace the current ones. Everything is checked
        before anything changes, and a state from another model raises one ``ValueError``
        that says what differs: the number of groups, a group's number of parameters, or a
        state array whose shape is not its parameter's (e.g. ``exp_avg`` (3,) for a (4,)
        parameter); a refused dict leaves the optimiser as it was.
        """
        from scratchvision.autograd.tensor import Tensor

        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            keys = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else None
            raise ValueError(f"optimizer state_dict must be a dict with 'state' and "
                             f"'param_groups', got "
                             f"{f'keys {keys}' if keys is not None else type(state_dict).__name__}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state, dict):
            raise ValueError("optimizer state_dict: 'param_groups' must be a list and 'state' "
                             "a dict")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"optimizer state_dict has {len(saved_groups)} parameter "
                             f"groups, this optimizer {len(self.param_groups)}")
        by_index = {}          # saved parameter index -> (group, this optimizer's parameter)
        position = 0
        for i, (g, saved) in enumerate(zip(self.param_groups, saved_groups)):
            ids = saved.get("params", range(position, position + len(g["params"])))
            if len(ids) != len(g["params"]):
                raise ValueError(f"optimizer state_dict: parameter group {i} has "
                                 f"{len(ids)} parameters, this optimizer's "
                                 f"{len(g['params'])}")
            by_index.update(zip((int(k) for k in ids), ((i, p) for p in g["params"])))
            position += len(g["params"])
        state = {}
        for j, s in saved_state.items():
            if int(j) not in by_index:
                raise ValueError(f"optimizer state_dict has state for parameter {j}, "
                                 f"this optimizer has {len(by_index)} parameters")
            group_index, p = by_index[int(j)]
            values = {}
            for n, v in s.items():
                v = v.data if isinstance(v, Tensor) else v
                if not hasattr(v, "shape"):
                    values[n] = v
                elif n == "step":                    # a counter (torch keeps a 0-d tensor)
                    values[n] = int(v.item())
                elif tuple(v.shape) != tuple(p.shape):
                    raise ValueError(f"optimizer state_dict: state {n!r} of parameter {j} "
                                     f"(group {group_index}) has shape {tuple(v.shape)}, but "
                                     f"the parameter has shape {tuple(p.shape)}")
                else:                                # a copy: steps update state in place
                    v = to_device(v, str(p.device))
                    values[n] = p.xp.array(v, dtype=p.dtype if v.dtype.kind == "f" else None,
                                           copy=True)
            state[id(p)] = values
        for g, saved in zip(self.param_groups, saved_groups):
            g.update({k: v for k, v in saved.items() if k != "params"})
        self.state = state
