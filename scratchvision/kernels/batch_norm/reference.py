"""Batch norm over the channel dim of ``(N, C, S)`` arrays (``S`` = the flattened spatial
dims), as the paper writes it: array expressions, the specification the Numba version is
tested against (and the version CuPy arrays run).

Training::

    mean_c = (1 / M) sum_{n, s} x[n, c, s]                 M = N * S values per channel
    var_c  = (1 / M) sum_{n, s} (x[n, c, s] - mean_c)^2     the biased variance
    x_hat  = (x - mean_c) / sqrt(var_c + eps),   y = gamma_c * x_hat + beta_c

and the backward, with ``scale_c = gamma_c / sqrt(var_c + eps)``::

    gx = scale_c * (gy - (1/M) sum gy - x_hat * (1/M) sum gy * x_hat)

(the sums over ``n, s`` for channel ``c``; they are also the gradients of beta and gamma).
"""
from __future__ import annotations

from scratchvision.backend import get_array_module


def channel_sum(a):
    """Sum over every dim but the channel dim 1, as ``a.sum(axis=(0, 2, 3, ...))``, in
    two steps: first along each contiguous plane, then over the batch. CuPy reduces a
    contiguous last axis several times faster than axes with strides in between (measured
    in the U-Net step on an H200), and NumPy is no slower. (Also the bias gradients of
    ``functional.conv`` and the statistics of ``SyncBatchNorm``.)"""
    n, c = a.shape[0], a.shape[1]
    return a.reshape(n, c, -1).sum(axis=2).sum(axis=0)


def forward(x, gamma, beta, mean, var, eps: float):
    """y, x_hat, mean, var, inv_std; ``mean``/``var`` None: computed from x (training)."""
    xp = get_array_module(x)
    count = x.shape[0] * x.shape[2]
    if mean is None:
        mean = channel_sum(x) / count
        centred = x - mean[None, :, None]
        var = channel_sum(centred * centred) / count
    else:
        centred = x - mean[None, :, None].astype(x.dtype)
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
    x_hat = centred * inv_std[None, :, None]
    y = x_hat if gamma is None else x_hat * gamma[None, :, None]
    if beta is not None:
        y = y + beta[None, :, None]
    return y, x_hat, mean, var, inv_std


def backward(gy, x_hat, scale, training: bool):
    """gx, sum(gy), sum(gy * x_hat) per channel (``training=False``: gx = gy * scale)."""
    gy_sum = channel_sum(gy)
    gyx_sum = channel_sum(gy * x_hat)
    if not training:
        return gy * scale[None, :, None], gy_sum, gyx_sum
    count = gy.shape[0] * gy.shape[2]
    gx = scale[None, :, None] * (gy - (gy_sum / count)[None, :, None]
                                 - x_hat * (gyx_sum / count)[None, :, None])
    return gx, gy_sum, gyx_sum
