"""``Optimizer`` base: parameter groups, per-parameter state, zero_grad, state_dict.

Updates are written in place into ``p.data`` with array arithmetic (no graph), so the
same code runs on NumPy and CuPy arrays.
"""
from __future__ import annotations

from typing import Any, Iterable

from scratchvision.backend import to_device


class Optimizer:
    def __init__(self, params: Iterable, defaults: dict) -> None:
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        for g in groups:
            group = dict(defaults)
            group.update(g)
            group["params"] = list(group["params"])
            for p in group["params"]:
                if not getattr(p, "requires_grad", False):
                    raise ValueError("optimizer can only optimize tensors that require grad")
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
        before anything changes: a refused dict leaves the optimiser as it was.
        """
        from scratchvision.autograd.tensor import Tensor

        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"optimizer state_dict has {len(saved_groups)} parameter "
                             f"groups, this optimizer {len(self.param_groups)}")
        by_index = {}          # saved parameter index -> this optimizer's parameter
        position = 0
        for i, (g, saved) in enumerate(zip(self.param_groups, saved_groups)):
            ids = saved.get("params", range(position, position + len(g["params"])))
            if len(ids) != len(g["params"]):
                raise ValueError(f"optimizer state_dict: parameter group {i} has "
                                 f"{len(ids)} parameters, this optimizer's "
                                 f"{len(g['params'])}")
            by_index.update(zip((int(k) for k in ids), g["params"]))
            position += len(g["params"])
        state = {}
        for i, s in state_dict["state"].items():
            if int(i) not in by_index:
                raise ValueError(f"optimizer state_dict has state for parameter {i}, "
                                 f"this optimizer has {len(by_index)} parameters")
            p = by_index[int(i)]
            values = {}
            for n, v in s.items():
                v = v.data if isinstance(v, Tensor) else v
                if not hasattr(v, "shape"):
                    values[n] = v
                elif n == "step":                    # a counter (torch keeps a 0-d tensor)
                    values[n] = int(v.item())
                else:                                # a copy: steps update state in place
                    v = to_device(v, str(p.device))
                    values[n] = p.xp.array(v, dtype=p.dtype if v.dtype.kind == "f" else None,
                                           copy=True)
            state[id(p)] = values
        for g, saved in zip(self.param_groups, saved_groups):
            g.update({k: v for k, v in saved.items() if k != "params"})
        self.state = state
