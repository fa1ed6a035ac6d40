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
                    p.grad[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def _params_with_grad(self, group: dict):
        for p in group["params"]:
            if p.grad is not None:
                yield p

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters and per-parameter state (by position), as NumPy arrays."""
        index = {}
        for group in self.param_groups:
            for p in group["params"]:
                index[id(p)] = len(index)
        state = {index[k]: {n: (to_device(v, "cpu").copy() if hasattr(v, "shape") else v)
                            for n, v in s.items()}
                 for k, s in self.state.items() if k in index}
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        if len(state_dict["param_groups"]) != len(self.param_groups):
            raise ValueError("optimizer state_dict has a different number of parameter groups")
        for g, saved in zip(self.param_groups, state_dict["param_groups"]):
            g.update(saved)
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[id(p)] = {n: (p.xp.asarray(v) if hasattr(v, "shape") else v)
                                 for n, v in s.items()}
