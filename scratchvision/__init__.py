"""scratchvision: object detection and segmentation built from the kernels up.

A small define-by-run autograd engine over NumPy (CPU) and CuPy (GPU), hand-written Numba
and CUDA kernels, and on top of them the classic detectors and segmenters. Names and
semantics follow PyTorch / torchvision, so ``import scratchvision as sv`` reads like
``import torch``.
"""
__version__ = "0.1.0"

from scratchvision.backend import get_default_dtype, gpu_available, set_default_dtype
from scratchvision.autograd import (Function, Tensor, arange, cat, enable_grad, full, full_like,
                                    is_grad_enabled, manual_seed, no_grad, ones, ones_like, rand,
                                    rand_like, randn, randn_like, split, stack, tensor, where,
                                    zeros, zeros_like)
from scratchvision import functional, nn, ops  # noqa: E402  (layers above must import first)

float32 = "float32"
float64 = "float64"
int64 = "int64"

__all__ = [
    "Function", "Tensor", "arange", "cat", "enable_grad", "full", "full_like", "functional",
    "get_default_dtype", "gpu_available", "is_grad_enabled", "manual_seed", "nn", "no_grad",
    "ones", "ones_like", "rand", "rand_like", "randn", "randn_like", "set_default_dtype",
    "split", "stack", "tensor", "where", "zeros", "zeros_like",
]
