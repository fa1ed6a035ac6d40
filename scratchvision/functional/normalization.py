"""Batch normalisation (Ioffe & Szegedy 2015) as one Function.

Training: statistics over every dim but the channel dim 1, ``x_hat = (x - mean) /
sqrt(var + eps)`` with the biased variance, ``y = gamma x_hat + beta``; the running stats
are updated in place with the *unbiased* variance, ``r = (1 - momentum) r + momentum s``
(PyTorch's convention). Evaluation: the running stats are used instead. The backward of
training mode is the compact form

    gx = gamma / sqrt(var + eps) * (gy - mean(gy) - x_hat * mean(gy * x_hat))

(means over the reduced dims), which follows from differentiating through mean and var.
"""
from __future__ import annotations

from scratchvision import backend
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor, _raw
from scratchvision.functional.activation import _as_tensor


def channel_sum(a):
    """Sum over every dim but the channel dim 1, as ``a.sum(axis=(0, 2, 3, ...))``, in
    two steps: first along each contiguous plane, then over the batch. CuPy reduces a
    contiguous last axis several times faster than axes with strides in between (measured
    in the U-Net step on an H200), and NumPy is no slower."""
    n, c = a.shape[0], a.shape[1]
    return a.reshape(n, c, -1).sum(axis=2).sum(axis=0)


class BatchNorm(Function):
    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        xp = xp_of(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            count = x.size // x.shape[1]
            if count <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                                 f"training, got input of shape {x.shape}")
            mean = channel_sum(x) / count
            centred = x - mean.reshape(shape)
            var = channel_sum(centred * centred) / count
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.astype(running_mean.dtype)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * (var * count / (count - 1)).astype(running_var.dtype)
        else:
            mean, var = running_mean, running_var
            centred = x - mean.reshape(shape).astype(x.dtype)
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
        x_hat = centred * inv_std.reshape(shape)
        self.saved = (x_hat, inv_std, gamma, shape, training)
        y = x_hat if gamma is None else x_hat * gamma.reshape(shape)
        if beta is not None:
            y = y + beta.reshape(shape)
        return y

    def backward(self, gy):
        x_hat, inv_std, gamma, shape, training = self.saved
        need_x, need_gamma, need_beta = self.needs_input_grad[:3]
        train_x = need_x and training
        gyx_sum = channel_sum(gy * x_hat) if need_gamma or train_x else None
        gy_sum = channel_sum(gy) if need_beta or train_x else None
        ggamma = gyx_sum if need_gamma else None
        gbeta = gy_sum if need_beta else None
        gx = None
        if need_x:
            scale = inv_std if gamma is None else inv_std * gamma
            if training:
                count = gy.size // gy.shape[1]
                gx = scale.reshape(shape) * (gy - (gy_sum / count).reshape(shape)
                                             - x_hat * (gyx_sum / count).reshape(shape))
            else:
                gx = gy * scale.reshape(shape)
        return gx, ggamma, gbeta, None, None, None, None, None


def batch_norm(input: Tensor, running_mean=None, running_var=None, weight=None,  # noqa: A002
               bias=None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) of an (N, C, ...) input.

    Parameters
    ----------
    input : (N, C) or (N, C, H, W) ...
    running_mean, running_var : (C,) Tensors/arrays updated in place when ``training``;
        used for normalisation when not training
    weight, bias : (C,) learnable scale gamma and shift beta, optional
    """
    x = _as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    rm = _raw(running_mean)
    rv = _raw(running_var)
    for name, v in (("running_mean", rm), ("running_var", rv), ("weight", weight),
                    ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(v.shape)}, expected ({c},) "
                             f"for input of shape {x.shape}")
    if not training and rm is not None and rv is not None:
        # evaluation only reads the running stats: a copy on the input's device will do
        rm, rv = backend.to_device(rm, x.device), backend.to_device(rv, x.device)
    for name, v in (("running_mean", rm), ("running_var", rv), ("weight", weight),
                    ("bias", bias)):
        if v is not None and backend.device_of(_raw(v)) != x.device:
            raise ValueError(f"batch_norm: {name} is on {backend.device_of(_raw(v))} but the "
                             f"input is on {x.device}: move it with .to('{x.device}')")
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: running_mean and running_var are needed when not "
                         "training")
    return BatchNorm.apply(x, weight, bias, rm, rv, training, momentum, eps)


@register_gradcheck("batch_norm")
def _bn_case(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    g, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5

    def train(x, g, b):
        return batch_norm(x, None, None, g, b, training=True)

    def evaluate(x, g, b):
        return batch_norm(x, rm, rv, g, b, training=False)
    return [(train, [x, g, b]), (evaluate, [x, g, b]),
            ((lambda x: batch_norm(x, None, None, training=True)), [x[:, :, 0, 0]])]
