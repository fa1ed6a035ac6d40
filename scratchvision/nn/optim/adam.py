"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as torch.optim:

    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Adam adds ``weight_decay * p`` to the gradient (L2); AdamW instead decays the weights
directly, ``p = p * (1 - lr * weight_decay)``, before the Adam step.

The update runs on all parameters of a bucket (same device, dtype and step count) at
once (``kernels/adam``): on NumPy arrays a Numba loop that passes over each parameter once
(``impl="cpu"``, the default); on CuPy arrays array expressions over the bucket raveled
into flat arrays, as PyTorch's ``foreach`` implementation does (``impl="reference"``): on
a GPU each array operation is a kernel launch, and a per-parameter loop launches ~13 per
parameter (the small U-Net has 64 parameter tensors: ~830 launches, of the ~2000 its GPU
training step made). The moments live in one flat array per bucket either way. The
elementwise arithmetic, and so every bit of the result, is that of the per-parameter loop
in both versions. ``impl=`` (constructor keyword, or the ``impl`` attribute) picks one.
"""
from __future__ import annotations

from scratchvision.kernels.adam import VERSIONS, adam_update
from scratchvision.nn.optim.optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 impl: str | None = None):
        lr = check_hyperparameter(lr, "Invalid learning rate")
        eps = check_hyperparameter(eps, "Invalid epsilon value")
        weight_decay = check_hyperparameter(weight_decay, "Invalid weight_decay value")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{type(self).__name__}: betas must be a pair of numbers, got "
                            f"{betas!r}")
        betas = tuple(check_hyperparameter(b, f"Invalid beta parameter at index {i}",
                                           maximum=1.0, below_maximum=True)
                      for i, b in enumerate(betas))
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))
        self._flat: dict[tuple, dict] = {}  # bucket's parameter ids -> flat moment arrays
        self.impl = VERSIONS.resolve(impl, op="Adam") if impl is not None else None

    def step(self) -> None:
        for group in self.param_groups:
            # parameters on one device, of one dtype and at the same step count are
            # updated together as one flat array: ~10 array operations per bucket
            # instead of ~13 per parameter (each one a kernel launch on the GPU)
            buckets: dict[tuple, list] = {}
            for p in self._params_with_grad(group):
                state = self.state.setdefault(id(p), {})
                if not state:
                    state["step"] = 0
                    for name in self._state_names(group):
                        state[name] = p.xp.zeros_like(p.data)
                state["step"] += 1
                key = (p.xp.__name__, _device_of(p.data), p.data.dtype.str, state["step"])
                buckets.setdefault(key, []).append(p)
            for (_, _, _, t), params in buckets.items():
                self._update(group, params, t)

    @staticmethod
    def _state_names(group) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _update(self, group, params, t: int) -> None:
        flat = self._flat_state(group, params)
        adam_update([p.data for p in params], [p.grad.data for p in params],
                    flat["exp_avg"], flat["exp_avg_sq"], flat.get("max_exp_avg_sq"),
                    lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                    eps=group["eps"], weight_decay=group["weight_decay"],
                    decoupled=self._decoupled, step=t, impl=self.impl)
        for p in params:
            p._version_counter.value += 1    # an in-place update, as torch counts it

    def _flat_state(self, group, params) -> dict:
        """The bucket's moments as flat arrays. Each parameter's ``state`` entries are
        views into them, so ``state_dict`` and the per-parameter state read the same
        numbers; when a view has been replaced (``load_state_dict``) or the bucket's
        parameters changed, the flat arrays are rebuilt from the per-parameter state."""
        key = tuple(id(p) for p in params)
        names = self._state_names(group)
        flat = self._flat.get(key)
        if flat is not None and all(self.state[id(p)][name].base is flat[name]
                                    for name in names for p in params):
            return flat
        xp = params[0].xp
        flat = {}
        for name in names:
            flat[name] = buffer = _concat(xp, [self.state[id(p)][name] for p in params])
            offset = 0
            for p in params:
                view = buffer[offset:offset + p.data.size].reshape(p.data.shape)
                self.state[id(p)][name] = view
                offset += p.data.size
        self._flat[key] = flat
        return flat


def _concat(xp, arrays):
    """The arrays raveled into one new flat array (a copy even for a single array)."""
    if len(arrays) == 1:
        return arrays[0].ravel().copy()
    return xp.concatenate([a.ravel() for a in arrays])


def _device_of(a):
    device = getattr(a, "device", None)     # a CuPy array's GPU; NumPy arrays: "cpu"
    return getattr(device, "id", str(device))


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 impl: str | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, impl)
