"""The autograd engine: Tensor, Function, backward, no_grad, gradcheck.

Read in this order: ``function.py`` (what a node is, version counters), ``tensor.py`` (the
array that remembers its node; in-place ops), ``engine.py`` (the backward walk,
``autograd.grad``), ``ops.py`` (the basic ops), ``promotion.py`` (torch's dtype rules),
``indexing.py`` (sort, topk, gather, scatter ... over the kernels of
``kernels/indexing``), ``functions.py`` (the ``sv.*`` functions), ``gradcheck.py`` (how
every op's backward is verified).
"""
from scratchvision.autograd.function import (Function, enable_grad, inference_mode,
                                             is_grad_enabled, no_grad, set_grad_enabled,
                                             unbroadcast)
from scratchvision.autograd.tensor import MaxResult, Tensor, split
from scratchvision.autograd.factories import (arange, as_tensor, cat, default_generator, empty,
                                              eye, from_numpy, full, full_like, linspace,
                                              logspace, manual_seed, meshgrid, ones, ones_like,
                                              rand, rand_like, randint, randint_like, randn,
                                              randn_like, randperm, stack, tensor, where, zeros,
                                              zeros_like)
from scratchvision.autograd.gradcheck import GradcheckError, gradcheck, register_gradcheck
from scratchvision.autograd.engine import grad
from scratchvision.autograd import op_checks  # noqa: F401,E402  (registers the basic ops)
from scratchvision.autograd import indexing_checks  # noqa: F401,E402  (indexing, sorting)

__all__ = ["Function", "GradcheckError", "MaxResult", "Tensor", "arange", "as_tensor", "cat",
           "default_generator", "empty", "enable_grad", "eye", "from_numpy", "full",
           "full_like", "grad", "gradcheck", "inference_mode", "is_grad_enabled", "linspace",
           "logspace", "manual_seed", "meshgrid", "no_grad", "ones", "ones_like", "rand",
           "rand_like", "randint", "randint_like", "randn", "randn_like", "randperm",
           "register_gradcheck", "set_grad_enabled", "split", "stack", "tensor", "unbroadcast",
           "where", "zeros", "zeros_like"]
