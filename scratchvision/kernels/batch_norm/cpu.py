"""Batch norm fused into two passes over the data per direction (Numba, parallel over
channels). The array version (``reference.py``) makes about seven passes forward and eight
backward, each a single-threaded NumPy loop writing a temporary; here one thread owns a
channel and reads its ``N x S`` values twice:

* forward: pass 1 sums ``x`` (the mean), pass 2 sums ``(x - mean)^2`` (the variance: the
  two-pass form, as accurate as NumPy's), pass 3 writes ``x_hat`` and ``y`` together; in
  evaluation the statistics are given and only pass 3 runs;
* backward: pass 1 sums ``gy`` and ``gy * x_hat``, pass 2 writes ``gx``.

Sums accumulate in float64 in a fixed order (n, then s), so the result has the same bits on
every run and for any number of threads. Arrays are C-contiguous ``(N, C, S)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _statistics(x, mean, var):  # pragma: no cover (compiled)
    N, C, S = x.shape
    count = N * S
    for c in prange(C):
        s = 0.0
        for n in range(N):
            for i in range(S):
                s += x[n, c, i]
        m = s / count
        v = 0.0
        for n in range(N):
            for i in range(S):
                d = x[n, c, i] - m
                v += d * d
        mean[c] = m
        var[c] = v / count


@njit(parallel=True, cache=True)
def _normalise(x, mean, inv_std, gamma, beta, x_hat, y):  # pragma: no cover (compiled)
    N, C, S = x.shape
    for c in prange(C):
        m, r, g, b = mean[c], inv_std[c], gamma[c], beta[c]
        for n in range(N):
            for i in range(S):
                h = (x[n, c, i] - m) * r
                x_hat[n, c, i] = h
                y[n, c, i] = h * g + b


@njit(parallel=True, cache=True)
def _backward(gy, x_hat, scale, training, gx, gy_sum, gyx_sum):  # pragma: no cover
    N, C, S = gy.shape
    count = N * S
    for c in prange(C):
        s1 = 0.0
        s2 = 0.0
        for n in range(N):
            for i in range(S):
                g = gy[n, c, i]
                s1 += g
                s2 += g * x_hat[n, c, i]
        gy_sum[c] = s1
        gyx_sum[c] = s2
        k = scale[c]
        a, b = s1 / count, s2 / count
        for n in range(N):
            for i in range(S):
                if training:
                    gx[n, c, i] = k * (gy[n, c, i] - a - x_hat[n, c, i] * b)
                else:
                    gx[n, c, i] = k * gy[n, c, i]


def forward(x, gamma, beta, mean, var, eps: float):
    """As ``reference.forward``."""
    C = x.shape[1]
    if mean is None:
        mean, var = np.empty(C), np.empty(C)
        _statistics(x, mean, var)
    inv_std = (1.0 / np.sqrt(np.asarray(var, np.float64) + eps)).astype(x.dtype)
    gamma = np.ones(C, x.dtype) if gamma is None else gamma.astype(x.dtype, copy=False)
    beta = np.zeros(C, x.dtype) if beta is None else beta.astype(x.dtype, copy=False)
    x_hat, y = np.empty_like(x), np.empty_like(x)
    _normalise(x, np.asarray(mean, np.float64), inv_std, gamma, beta, x_hat, y)
    return y, x_hat, np.asarray(mean).astype(x.dtype), np.asarray(var).astype(x.dtype), inv_std


def backward(gy, x_hat, scale, training: bool):
    """As ``reference.backward``."""
    C = gy.shape[1]
    gx = np.empty_like(gy)
    gy_sum, gyx_sum = np.empty(C), np.empty(C)
    _backward(gy, x_hat, scale.astype(gy.dtype, copy=False), training, gx, gy_sum, gyx_sum)
    return gx, gy_sum.astype(gy.dtype), gyx_sum.astype(gy.dtype)


__all__ = ["backward", "forward"]
