"""Batch norm kernels on ``(N, C, ...)`` arrays: the statistics, the normalisation and the
backward of ``functional.batch_norm``, fused per channel.

Versions (``impl=``): ``reference`` (array expressions, ``reference.py``; it also runs on
CuPy arrays, which take it by default: the family has no CUDA kernels of its own) and
``cpu`` (Numba, two passes per direction, parallel over channels, ``cpu.py``). The
functions here flatten the spatial dims to ``(N, C, S)``, make the arrays C-contiguous,
and dispatch through ``VERSIONS``.
"""
from __future__ import annotations

from scratchvision.backend import get_array_module
from scratchvision.kernels.versions import KernelFamily

VERSIONS = KernelFamily("batch_norm", gpu=(), on_cupy=("reference",))


def _flat(a):
    """(N, C, ...) -> C-contiguous (N, C, S) (``S`` written out: -1 fails for N = 0)."""
    spatial = 1
    for d in a.shape[2:]:
        spatial *= int(d)
    return get_array_module(a).ascontiguousarray(a.reshape(a.shape[0], a.shape[1], spatial))


def batch_norm_forward(x, gamma, beta, mean=None, var=None, eps: float = 1e-5, impl=None):
    """``(y, x_hat, mean, var, inv_std)`` for ``x (N, C, ...)``; with ``mean``/``var``
    None they are the batch's statistics (training), else the given ones (evaluation).
    ``y`` and ``x_hat`` have x's shape; the others are ``(C,)``."""
    version = VERSIONS.module(impl, x)
    y, x_hat, mean, var, inv_std = version.forward(_flat(x), gamma, beta, mean, var, float(eps))
    return y.reshape(x.shape), x_hat.reshape(x.shape), mean, var, inv_std


def batch_norm_backward(gy, x_hat, scale, training: bool, impl=None):
    """``(gx, sum gy, sum gy * x_hat)``: the input gradient (``scale = gamma * inv_std``)
    and the per-channel sums that are beta's and gamma's gradients."""
    version = VERSIONS.module(impl, gy)
    gx, gy_sum, gyx_sum = version.backward(_flat(gy), _flat(x_hat), scale, bool(training))
    return gx.reshape(gy.shape), gy_sum, gyx_sum
