"""linear (``x @ W.T + b``) and pad.

``linear`` is one Function rather than a matmul plus an add so that a training step pays
for one node and two GEMMs in backward: ``gx = gy @ W``, ``gW = gy.T @ x``,
``gb = gy.sum(0)`` (leading dims of x are flattened into the batch).
"""
from __future__ import annotations

from scratchvision.autograd import ops
from scratchvision.kernels import gemm
from scratchvision.autograd.function import Function
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor


class Linear(Function):
    def forward(self, x, W, b=None):
        if W.ndim != 2:
            raise ValueError(f"linear: weight must be 2-D (out_features, in_features), "
                             f"got shape {W.shape}")
        if x.ndim == 0 or x.shape[-1] != W.shape[1]:
            raise ValueError(f"linear: input shape {x.shape} does not match weight shape "
                             f"{W.shape} (last dim of input must be {W.shape[1]})")
        if b is not None and b.shape != (W.shape[0],):
            raise ValueError(f"linear: bias shape {b.shape} must be ({W.shape[0]},)")
        self.x, self.W = x, W
        y = gemm.product(x, W.T)
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, W = self.x, self.W
        gx = gemm.product(gy, W) if self.needs_input_grad[0] else None
        gW = gb = None
        if self.needs_input_grad[1]:
            gW = gemm.product(gy.reshape(-1, gy.shape[-1]).T, x.reshape(-1, x.shape[-1]))
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0)
        return (gx, gW, gb)[:len(self.needs_input_grad)]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """y = x W^T + b.

    Parameters
    ----------
    input : (*, in_features)
    weight : (out_features, in_features)
    bias : (out_features,), optional

    Returns
    -------
    (*, out_features)
    """
    if bias is None:
        return Linear.apply(input, weight)
    return Linear.apply(input, weight, bias)


def pad(input: Tensor, pad: tuple[int, ...], mode: str = "constant",  # noqa: A002
        value: float = 0.0) -> Tensor:
    """Pad the last dims: ``pad = (left, right, top, bottom, ...)`` as torch.nn.functional.pad.

    Modes 'constant' (with ``value``), 'reflect' and 'replicate'.
    """
    return ops.Pad.apply(input, pad=tuple(int(p) for p in pad), mode=mode, value=value)


@register_gradcheck("linear")
def _linear_case(rng):
    x, W, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    return [(linear, [x, W, b]), (linear, [x[0], W])]


@register_gradcheck("pad")
def _pad_case(rng):
    x = rng.standard_normal((1, 2, 4, 5))
    return [((lambda t: pad(t, (1, 2, 0, 1), value=3.0)), [x]),
            ((lambda t: pad(t, (2, 1, 1, 3), mode="reflect")), [x]),
            ((lambda t: pad(t, (2, 1, 1, 3), mode="replicate")), [x])]
