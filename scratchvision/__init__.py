"""scratchvision: object detection and segmentation built from the kernels up.

A small define-by-run autograd engine over NumPy (CPU) and CuPy (GPU), hand-written Numba
and CUDA kernels, and on top of them the classic detectors and segmenters. Names and
semantics follow PyTorch / torchvision, so ``import scratchvision as sv`` reads like
``import torch``.
"""
__version__ = "0.1.0"

import os as _os

# The CPU kernels' speed used to depend on OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT being
# set before NumPy and torch loaded, which held only when scratchvision was imported first.
# Their GEMMs now run on Numba's own threads (kernels/gemm.py), so no second pool is left
# spinning whatever the import order (benchmarks/results/conv.md, import-order rows). What
# remains is a courtesy, not a speed-up on an idle machine: where scratchvision is the first
# to load OpenMP, Numba's threads sleep between parallel loops instead of spinning, which
# leaves the cores to other processes on a busy machine (an explicit value wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as _np

from scratchvision.backend import (are_deterministic_algorithms_enabled, get_default_dtype,
                                   gpu_available, set_default_dtype,
                                   use_deterministic_algorithms)
from scratchvision.autograd import (Function, Tensor, arange, as_tensor, cat, empty,
                                    enable_grad, eye, from_numpy, full, full_like,
                                    inference_mode, is_grad_enabled, linspace, logspace,
                                    manual_seed, meshgrid, no_grad, ones, ones_like, rand,
                                    rand_like, randint, randint_like, randn, randn_like,
                                    randperm, set_grad_enabled, split, stack, tensor, where,
                                    zeros, zeros_like)
from scratchvision.autograd.tensor import device
from scratchvision.autograd.functions import (  # noqa: A004  (torch's names, on purpose)
    abs, add, all, allclose, amax, amin, any, argmax, argmin, argsort, argwhere, atan2, bincount,
    bmm, broadcast_tensors, broadcast_to, ceil, chunk, clamp, clip, cos, count_nonzero, cummax,
    cummin, cumprod, cumsum, diag, diagonal, div, dot, einsum, equal, exp, expm1, flatten, flip,
    fliplr, flipud, floor, floor_divide, gather, index_select, is_tensor, isclose, isfinite, isinf,
    isnan, lerp, log, log1p, log2, log_softmax, logical_and, logical_not, logical_or, logsumexp,
    masked_fill, masked_select, matmul, max, maximum, mean, median, min, minimum, mm, movedim, mul,
    narrow, neg, nonzero, norm, numel, outer, permute, pow, prod, relu, remainder,
    repeat_interleave, reshape, roll, round, rsqrt, scatter, scatter_add, sigmoid, sign, sin,
    softmax, sort, sqrt, square, squeeze, std, std_mean, sub, sum, t, tanh, tile, topk, transpose,
    tril, triu, trunc, unbind, unique, unsqueeze, var, var_mean)
from scratchvision import cuda, functional, linalg, nn, ops  # noqa: E402  (layers above first)
from scratchvision.nn import optim  # noqa: E402  (sv.optim.SGD, as torch.optim)
from scratchvision.serialization import load, save  # noqa: E402

# dtypes are NumPy's dtype objects, so ``t.dtype == sv.float32`` and ``t.to(sv.long)`` read
# as in torch and ``np.asarray(t).dtype`` is the same object.
float32 = float = _np.dtype("float32")  # noqa: A001
float64 = double = _np.dtype("float64")
float16 = half = _np.dtype("float16")
int64 = long = _np.dtype("int64")
int32 = int = _np.dtype("int32")  # noqa: A001
int16 = short = _np.dtype("int16")
int8 = _np.dtype("int8")
uint8 = _np.dtype("uint8")
bool = _np.dtype("bool")  # noqa: A001
dtype = _np.dtype

__all__ = [
    "Function", "Tensor", "arange", "are_deterministic_algorithms_enabled", "as_tensor", "cat",
    "cuda", "device", "empty", "enable_grad", "eye", "from_numpy", "full", "full_like",
    "functional", "get_default_dtype", "gpu_available", "inference_mode", "is_grad_enabled",
    "linspace", "load", "logspace", "manual_seed", "meshgrid", "nn", "no_grad", "ones",
    "ones_like", "ops", "rand", "rand_like", "randint", "randint_like", "randn", "randn_like",
    "randperm", "save", "set_default_dtype", "set_grad_enabled", "split", "stack", "tensor",
    "use_deterministic_algorithms", "where", "zeros", "zeros_like",
]
