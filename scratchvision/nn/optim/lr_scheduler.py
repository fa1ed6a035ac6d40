"""Learning-rate schedules, stepped once per epoch (or per iteration) after ``opt.step()``.

Each scheduler computes the rate in closed form from ``last_epoch`` (no accumulated
rounding), so ``state_dict``/``load_state_dict`` resume exactly.
- StepLR: lr = base * gamma^(floor(epoch / step_size))
- MultiStepLR: lr = base * gamma^(number of milestones <= epoch)
- CosineAnnealingLR: lr = eta_min + (base - eta_min)(1 + cos(pi * epoch / T_max)) / 2
- LinearLR (warm-up): factor goes linearly from start_factor to end_factor over total_iters
- SequentialLR chains schedulers at milestones (e.g. warm-up then cosine).
- LambdaLR: lr = base * lr_lambda(epoch) (one function, or one per parameter group)
- PolynomialLR: lr = base * (1 - min(epoch, total_iters) / total_iters) ^ power
- OneCycleLR (Smith & Topin 2017, stepped per batch): from max_lr / div_factor up to
  max_lr over the first pct_start of the steps, then down to initial_lr /
  final_div_factor (cosine or linear annealing); the momentum (SGD's ``momentum``, Adam's
  beta1) cycles the other way between max_momentum and base_momentum.

Where torch steps a schedule recursively (PolynomialLR multiplies the previous rate by a
ratio each step), the closed form here equals it up to rounding (~1e-16 relative).
"""
from __future__ import annotations

import bisect
import math
import types


class LRScheduler:
    def __init__(self, optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def group_lr(self, i: int, base_lr: float, epoch: int) -> float:
        """The rate of parameter group ``i`` at ``epoch``; schedules that differ per group
        (LambdaLR with a list, OneCycleLR) override this rather than ``lr_at``."""
        return self.lr_at(base_lr, epoch)

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def step(self) -> None:
        self.last_epoch += 1
        for i, (g, base) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            g["lr"] = self.group_lr(i, base, self.last_epoch)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * min(epoch, self.T_max) / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up: the factor moves from start_factor to end_factor over total_iters."""

    def __init__(self, optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: factors must be in (0, 1]")
        self.start_factor, self.end_factor, self.total_iters = (start_factor, end_factor,
                                                                total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        t = min(epoch, self.total_iters) / max(self.total_iters, 1)
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * t)


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on, each with its own epoch count."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("SequentialLR: need len(schedulers) - 1 milestones")
        self.schedulers, self.milestones = schedulers, list(milestones)
        super().__init__(optimizer, last_epoch)

    def group_lr(self, group, base_lr, epoch):
        i = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i].group_lr(group, base_lr, epoch - start)

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": self.base_lrs,
                "_last_lr": self._last_lr}


def _per_group(name: str, optimizer, value) -> list:
    """One value per parameter group: a list/tuple of that length, or one value for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"expected {len(optimizer.param_groups)} values for {name}, got "
                             f"{len(value)}")
        return list(value)
    return [value] * len(optimizer.param_groups)


class LambdaLR(LRScheduler):
    """lr = initial lr * lr_lambda(epoch); ``lr_lambda`` is a function of the epoch count,
    or a list of such functions, one per parameter group (torch.optim.lr_scheduler.LambdaLR).

    ``state_dict`` leaves the functions out, as torch does (a lambda cannot be saved); for
    a callable object its ``__dict__`` is saved and restored instead.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got "
                                 f"{len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        super().__init__(optimizer, last_epoch)

    def group_lr(self, group, base_lr, epoch):
        return base_lr * self.lr_lambdas[group](epoch)

    def lr_at(self, base_lr, epoch):
        return self.group_lr(0, base_lr, epoch)

    def state_dict(self) -> dict:
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else
                               dict(fn.__dict__) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        saved = state.pop("lr_lambdas", None) or []
        self.__dict__.update(state)
        for fn, attrs in zip(self.lr_lambdas, saved):
            if attrs is not None:
                fn.__dict__.update(attrs)


class PolynomialLR(LRScheduler):
    """lr = initial lr * (1 - min(epoch, total_iters) / total_iters) ** power: a decay to
    0 over total_iters steps, then 0 (torch.optim.lr_scheduler.PolynomialLR)."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1):
        if total_iters <= 0:
            raise ValueError(f"PolynomialLR: total_iters must be positive, got {total_iters}")
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * (1.0 - min(self.total_iters, epoch) / self.total_iters) ** self.power


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2017), as torch.optim.lr_scheduler.OneCycleLR.

    Stepped once per batch, ``total_steps`` times in all (``epochs * steps_per_epoch``
    when ``total_steps`` is not given); stepping past ``total_steps`` raises. Each group's
    rate starts at ``initial_lr = max_lr / div_factor``, rises to ``max_lr`` at step
    ``pct_start * total_steps - 1``, then anneals to ``min_lr = initial_lr /
    final_div_factor`` at the last step. ``three_phase=True``: up, back down to initial_lr
    symmetrically, then to min_lr. ``anneal_strategy``: 'cos' or 'linear'. The group's own
    ``lr`` is overwritten: ``max_lr`` (a number or one per group) sets the scale.

    ``cycle_momentum`` (on by default, as torch) moves the optimiser's momentum the other
    way, from ``max_momentum`` down to ``base_momentum`` while the rate rises and back:
    SGD's ``momentum`` or, for Adam/AdamW, beta1 of ``betas``.
    """

    def __init__(self, optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got "
                                 f"{steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND "
                             "steps_per_epoch)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self.anneal_strategy = anneal_strategy
        # (end step, start key, end key, start momentum key, end momentum key): plain data
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            self.phases = [
                (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                 "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                 "max_momentum")]
        else:
            self.phases = [
                (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for lr, g in zip(max_lrs, optimizer.param_groups):
                g["initial_lr"] = lr / div_factor
                g["max_lr"] = lr
                g["min_lr"] = g["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            defaults = getattr(optimizer, "defaults", optimizer.param_groups[0])
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in defaults
            maxes = _per_group("max_momentum", optimizer, max_momentum)
            bases = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m_max, m_base, g in zip(maxes, bases, optimizer.param_groups):
                    if self.use_beta1:
                        g["betas"] = (m_max, *g["betas"][1:])
                    else:
                        g["momentum"] = m_max
                    g["max_momentum"], g["base_momentum"] = m_max, m_base
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, g: dict, step: int, keys: tuple) -> float:
        """The annealed value of g[keys[0]] -> g[keys[1]] over the phase holding step."""
        start_step = 0.0
        for i, phase in enumerate(self.phases):
            end_step = phase[0]
            if step <= end_step or i == len(self.phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                return self._anneal(g[phase[keys[0]]], g[phase[keys[1]]], pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def group_lr(self, group, base_lr, epoch):
        if epoch > self.total_steps:
            raise ValueError(f"Tried to step {epoch} times. The specified number of total "
                             f"steps is {self.total_steps}")
        g = self.optimizer.param_groups[group]
        if self.cycle_momentum:
            m = self._at(g, epoch, (3, 4))
            if self.use_beta1:
                g["betas"] = (m, *g["betas"][1:])
            else:
                g["momentum"] = m
        return self._at(g, epoch, (1, 2))

    def lr_at(self, base_lr, epoch):
        return self.group_lr(0, base_lr, epoch)
