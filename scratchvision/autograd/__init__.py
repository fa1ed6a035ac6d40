"""The autograd engine: Tensor, Function, backward, no_grad, gradcheck.

Read in this order: ``function.py`` (what a node is), ``tensor.py`` (the array that
remembers its node), ``engine.py`` (the backward walk), ``ops.py`` (the basic ops),
``gradcheck.py`` (how every op's backward is verified).
"""
from scratchvision.autograd.function import (Function, enable_grad, is_grad_enabled, no_grad,
                                             unbroadcast)
from scratchvision.autograd.tensor import MaxResult, Tensor, split
from scratchvision.autograd.factories import (arange, cat, default_generator, full, full_like,
                                              manual_seed, ones, ones_like, rand, rand_like,
                                              randn, randn_like, stack, tensor, where, zeros,
                                              zeros_like)
from scratchvision.autograd.gradcheck import GradcheckError, gradcheck, register_gradcheck
from scratchvision.autograd import op_checks  # noqa: F401,E402  (registers the basic ops)

__all__ = ["Function", "GradcheckError", "MaxResult", "Tensor", "arange", "cat",
           "default_generator", "enable_grad", "full", "full_like", "gradcheck",
           "is_grad_enabled", "manual_seed", "no_grad", "ones", "ones_like", "rand",
           "rand_like", "randn", "randn_like", "register_gradcheck", "split", "stack", "tensor",
           "unbroadcast", "where", "zeros", "zeros_like"]
