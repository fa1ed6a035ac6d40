"""scratchvision: object detection and segmentation built from the kernels up.

A small define-by-run autograd engine over NumPy (CPU) and CuPy (GPU), hand-written Numba
and CUDA kernels, and on top of them the classic detectors and segmenters. Names and
semantics follow PyTorch / torchvision, so ``import scratchvision as sv`` reads like
``import torch``.
"""
__version__ = "0.1.0"

import os as _os

# Numba's OpenMP worker threads and OpenBLAS's GEMM threads take turns in every conv
# (im2col, GEMM, col2im). Spinning while waiting (OpenMP's default) makes each pool steal
# the other's cores; sleeping makes a training step ~1.5x faster on 2 cores. Set before
# Numba starts its thread pool; an explicit OMP_WAIT_POLICY in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The other side of the same contention: after each GEMM, OpenBLAS's threads spin for up
# to 2**28 cycles (its default THREAD_TIMEOUT) before sleeping, through the im2col/col2im
# that follow. 4 (2**4, its minimum) lets them sleep at once: on 2 cores a training step in
# benchmarks/train_step.py went from ~4.4x to ~2.7x PyTorch's time (FCN-8s) and from ~3.1x
# to ~2.4x (U-Net), medians of 4-6 runs each way. OpenBLAS reads this when NumPy loads,
# so it only takes effect if scratchvision is imported before NumPy (as
# ``python -m scratchvision`` does); an explicit value in the environment wins.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from scratchvision.backend import (are_deterministic_algorithms_enabled, get_default_dtype,
                                   gpu_available, set_default_dtype,
                                   use_deterministic_algorithms)
from scratchvision.autograd import (Function, Tensor, arange, cat, enable_grad, full, full_like,
                                    is_grad_enabled, manual_seed, no_grad, ones, ones_like, rand,
                                    rand_like, randn, randn_like, split, stack, tensor, where,
                                    zeros, zeros_like)
from scratchvision import functional, nn, ops  # noqa: E402  (layers above must import first)

float32 = "float32"
float64 = "float64"
int64 = "int64"

__all__ = [
    "Function", "Tensor", "arange", "are_deterministic_algorithms_enabled", "cat", "enable_grad", "full", "full_like", "functional",
    "get_default_dtype", "gpu_available", "is_grad_enabled", "manual_seed", "nn", "no_grad",
    "ones", "ones_like", "rand", "rand_like", "randn", "randn_like", "set_default_dtype",
    "split", "stack", "tensor", "use_deterministic_algorithms", "where", "zeros", "zeros_like",
]
