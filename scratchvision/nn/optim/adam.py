"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as torch.optim:

    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Adam adds ``weight_decay * p`` to the gradient (L2); AdamW instead decays the weights
directly, ``p = p * (1 - lr * weight_decay)``, before the Adam step.
"""
from __future__ import annotations

import math

from scratchvision.nn.optim.optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def step(self) -> None:
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], \
                group["weight_decay"]
            for p in self._params_with_grad(group):
                g = p.grad
                if wd and self._decoupled:
                    p.data *= 1 - lr * wd
                elif wd:
                    g = g + wd * p.data
                xp = p.xp
                state = self.state.setdefault(id(p), {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                if group["amsgrad"]:
                    xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
                denom = xp.sqrt(v) / math.sqrt(bias2) + eps
                p.data -= (lr / bias1) * m / denom


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
