"""SGD with momentum, dampening, Nesterov and weight decay, exactly as torch.optim.SGD:

    g = grad + weight_decay * p
    b = g                                  (first step)
    b = momentum * b + (1 - dampening) * g (later steps)
    g = g + momentum * b if nesterov else b
    p = p - lr * g
"""
from __future__ import annotations

from scratchvision.nn.optim.optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        lr = check_hyperparameter(lr, "Invalid learning rate")
        momentum = check_hyperparameter(momentum, "Invalid momentum value")
        dampening = check_hyperparameter(dampening, "Invalid dampening value")
        weight_decay = check_hyperparameter(weight_decay, "Invalid weight_decay value")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def step(self) -> None:
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in self._params_with_grad(group):
                g = -p.grad.data if group["maximize"] else p.grad.data
                if wd:
                    g = g + wd * p.data
                if mom:
                    state = self.state.setdefault(id(p), {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.copy()
                    else:
                        buf *= mom
                        buf += (1 - damp) * g
                    g = g + mom * buf if nesterov else buf
                p.data -= lr * g
                p._version_counter.value += 1  # an in-place update, as torch counts it
