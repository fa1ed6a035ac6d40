"""The ``torch.*`` functions that are Tensor methods with the tensor as first argument.

``sv.exp(x)`` is ``x.exp()``, ``sv.topk(x, 5)`` is ``x.topk(5)``: each function here only
forwards, so the method (in ``tensor.py``) is the one place that defines the behaviour.
Python numbers and arrays are accepted where torch accepts them and become tensors.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from scratchvision.autograd import indexing
from scratchvision.autograd.ops import Einsum
from scratchvision.autograd.tensor import Tensor


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:  # noqa: A002
    return _t(input).numel()


def max(input, dim=None, keepdim: bool = False):  # noqa: A001,A002
    """``max(x)``, ``max(x, dim)`` -> (values, indices), or ``max(x, other)`` elementwise."""
    return _t(input).max(dim, keepdim)


def min(input, dim=None, keepdim: bool = False):  # noqa: A001,A002
    return _t(input).min(dim, keepdim)


def maximum(input, other): return _t(input).maximum(other)  # noqa: A002
def minimum(input, other): return _t(input).minimum(other)  # noqa: A002
def amax(input, dim=None, keepdim=False): return _t(input).amax(dim, keepdim)  # noqa: A002
def amin(input, dim=None, keepdim=False): return _t(input).amin(dim, keepdim)  # noqa: A002
def argmax(input, dim=None, keepdim=False): return _t(input).argmax(dim, keepdim)  # noqa: A002
def argmin(input, dim=None, keepdim=False): return _t(input).argmin(dim, keepdim)  # noqa: A002
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001,A002
    x = _t(input)
    return (x if dtype is None else x.to(dtype)).sum(dim, keepdim)
def mean(input, dim=None, keepdim=False): return _t(input).mean(dim, keepdim)  # noqa: A002
def prod(input, dim=None, keepdim=False): return _t(input).prod(dim, keepdim)  # noqa: A002
def std(input, dim=None, *args, **kw): return _t(input).std(dim, *args, **kw)  # noqa: A002
def var(input, dim=None, *args, **kw): return _t(input).var(dim, *args, **kw)  # noqa: A002
def norm(input, p="fro", dim=None, keepdim=False): return _t(input).norm(p, dim, keepdim)  # noqa: A002
def all(input, dim=None, keepdim=False): return _t(input).all(dim, keepdim)  # noqa: A001,A002
def any(input, dim=None, keepdim=False): return _t(input).any(dim, keepdim)  # noqa: A001,A002
def cumsum(input, dim, dtype=None): return _t(input).cumsum(dim, dtype=dtype)  # noqa: A002
def logsumexp(input, dim, keepdim=False): return _t(input).logsumexp(dim, keepdim)  # noqa: A002

def exp(input): return _t(input).exp()  # noqa: A002
def log(input): return _t(input).log()  # noqa: A002
def log2(input): return _t(input).log2()  # noqa: A002
def sqrt(input): return _t(input).sqrt()  # noqa: A002
def rsqrt(input): return _t(input).rsqrt()  # noqa: A002
def abs(input): return _t(input).abs()  # noqa: A001,A002
def sign(input): return _t(input).sign()  # noqa: A002
def sigmoid(input): return _t(input).sigmoid()  # noqa: A002
def tanh(input): return _t(input).tanh()  # noqa: A002
def relu(input): return _t(input).relu()  # noqa: A002
def floor(input): return _t(input).floor()  # noqa: A002
def ceil(input): return _t(input).ceil()  # noqa: A002
def trunc(input): return _t(input).trunc()  # noqa: A002
def round(input, decimals=0): return _t(input).round(decimals)  # noqa: A001,A002
def square(input): return _t(input).square()  # noqa: A002
def pow(input, exponent): return _t(input) ** exponent  # noqa: A002
def softmax(input, dim, dtype=None): return _t(input).softmax(dim, dtype)  # noqa: A002
def log_softmax(input, dim, dtype=None): return _t(input).log_softmax(dim, dtype)  # noqa: A002
def clamp(input, min=None, max=None): return _t(input).clamp(min, max)  # noqa: A001,A002
clip = clamp
def isnan(input): return _t(input).isnan()  # noqa: A002
def isinf(input): return _t(input).isinf()  # noqa: A002
def isfinite(input): return _t(input).isfinite()  # noqa: A002
def logical_not(input): return _t(input).logical_not()  # noqa: A002
def logical_and(input, other): return _t(input).logical_and(other)  # noqa: A002
def logical_or(input, other): return _t(input).logical_or(other)  # noqa: A002
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    return _t(input).isclose(other, rtol, atol, equal_nan)
def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    return _t(input).allclose(other, rtol, atol, equal_nan)
def equal(input, other): return _t(input).equal(_t(other))  # noqa: A002

def add(input, other, *, alpha=1): return _t(input).add(other, alpha=alpha)  # noqa: A002
def sub(input, other, *, alpha=1): return _t(input).sub(other, alpha=alpha)  # noqa: A002
def mul(input, other): return _t(input) * other  # noqa: A002
def div(input, other, *, rounding_mode=None):  # noqa: A002
    return _t(input).div(other, rounding_mode=rounding_mode)
def floor_divide(input, other): return _t(input) // other  # noqa: A002
def remainder(input, other): return _t(input) % other  # noqa: A002
def lerp(input, end, weight): return _t(input).lerp(end, weight)  # noqa: A002

def matmul(input, other): return _t(input) @ other  # noqa: A002
def mm(input, mat2): return _t(input).mm(mat2)  # noqa: A002
def bmm(input, mat2): return _t(input).bmm(mat2)  # noqa: A002
def dot(input, other): return _t(input).dot(other)  # noqa: A002
def outer(input, vec2): return _t(input).outer(vec2)  # noqa: A002

def flatten(input, start_dim=0, end_dim=-1): return _t(input).flatten(start_dim, end_dim)  # noqa: A002
def reshape(input, shape): return _t(input).reshape(shape)  # noqa: A002
def squeeze(input, dim=None): return _t(input).squeeze(dim)  # noqa: A002
def unsqueeze(input, dim): return _t(input).unsqueeze(dim)  # noqa: A002
def permute(input, dims): return _t(input).permute(dims)  # noqa: A002
def transpose(input, dim0, dim1): return _t(input).transpose(dim0, dim1)  # noqa: A002
def flip(input, dims): return _t(input).flip(dims)  # noqa: A002
def chunk(input, chunks, dim=0): return _t(input).chunk(chunks, dim)  # noqa: A002
def unbind(input, dim=0): return _t(input).unbind(dim)  # noqa: A002
def narrow(input, dim, start, length): return _t(input).narrow(dim, start, length)  # noqa: A002
def tile(input, dims): return _t(input).tile(dims)  # noqa: A002

def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    return _t(input).topk(k, dim, largest, sorted)
def sort(input, dim=-1, descending=False, stable=False):  # noqa: A002
    return _t(input).sort(dim, descending, stable)
def argsort(input, dim=-1, descending=False, stable=False):  # noqa: A002
    return _t(input).argsort(dim, descending, stable)
def nonzero(input, *, as_tuple=False): return _t(input).nonzero(as_tuple=as_tuple)  # noqa: A002
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    return _t(input).unique(sorted, return_inverse, return_counts, dim)
# The indexing functions take the kernels' impl= ('reference', 'cpu', 'numpy'), which the
# Tensor methods (torch's signatures) do not: they forward to autograd.indexing directly.
def gather(input, dim, index, *, sparse_grad=False, impl=None):  # noqa: A002
    return indexing.gather(_t(input), dim, index, sparse_grad=sparse_grad, impl=impl)
def scatter(input, dim, index, src=None, *, value=None, reduce=None, impl=None):  # noqa: A002
    if src is not None and not isinstance(src, Tensor):  # torch: scatter(x, 0, i, 1.0)
        src, value = None, src
    return indexing.scatter(_t(input), dim, index, src=src, value=value, reduce=reduce,
                            impl=impl)
def scatter_add(input, dim, index, src, *, impl=None):  # noqa: A002
    return indexing.scatter_add(_t(input), dim, index, src, impl=impl)
def index_select(input, dim, index, *, impl=None):  # noqa: A002
    return indexing.index_select(_t(input), dim, index, impl=impl)
def masked_fill(input, mask, value, *, impl=None):  # noqa: A002
    return indexing.masked_fill(_t(input), mask, value, impl=impl)
def count_nonzero(input, dim=None): return _t(input).count_nonzero(dim)  # noqa: A002
def masked_select(input, mask): return _t(input).masked_select(mask)  # noqa: A002
def argwhere(input): return _t(input).argwhere()  # noqa: A002
def bincount(input, weights=None, minlength=0):  # noqa: A002
    return _t(input).bincount(weights, minlength)
def repeat_interleave(input, repeats, dim=None):  # noqa: A002
    return _t(input).repeat_interleave(repeats, dim)
def median(input, dim=None, keepdim=False): return _t(input).median(dim, keepdim)  # noqa: A002
def std_mean(input, dim=None, *args, **kw): return _t(input).std_mean(dim, *args, **kw)  # noqa: A002
def var_mean(input, dim=None, *args, **kw): return _t(input).var_mean(dim, *args, **kw)  # noqa: A002
def cumprod(input, dim, dtype=None): return _t(input).cumprod(dim, dtype=dtype)  # noqa: A002
def roll(input, shifts, dims=None): return _t(input).roll(shifts, dims)  # noqa: A002
def tril(input, diagonal=0): return _t(input).tril(diagonal)  # noqa: A002
def triu(input, diagonal=0): return _t(input).triu(diagonal)  # noqa: A002
def diag(input, diagonal=0): return _t(input).diag(diagonal)  # noqa: A002
def diagonal(input, offset=0, dim1=0, dim2=1): return _t(input).diagonal(offset, dim1, dim2)  # noqa: A002
def t(input): return _t(input).t()  # noqa: A002
def movedim(input, source, destination): return _t(input).movedim(source, destination)  # noqa: A002
def fliplr(input): return _t(input).fliplr()  # noqa: A002
def flipud(input): return _t(input).flipud()  # noqa: A002
def log1p(input): return _t(input).log1p()  # noqa: A002
def expm1(input): return _t(input).expm1()  # noqa: A002
def sin(input): return _t(input).sin()  # noqa: A002
def cos(input): return _t(input).cos()  # noqa: A002
def neg(input): return -_t(input)  # noqa: A002
def atan2(input, other): return _t(input).atan2(other)  # noqa: A002
def cummax(input, dim): return _t(input).cummax(dim)  # noqa: A002
def cummin(input, dim): return _t(input).cummin(dim)  # noqa: A002


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, differentiable: ``einsum('nchw,kc->nkhw', x, w)``.

    Implicit output (``'ij,jk'``: the letters that appear once, in alphabetical order) and
    ``...`` are accepted, as in torch; a letter repeated inside one operand (a diagonal)
    is not.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = tuple(_t(o) for o in operands)
    equation = _explicit_einsum(equation.replace(" ", ""), [o.ndim for o in operands])
    dtype = np.result_type(*[o.dtype for o in operands])
    operands = tuple(o if o.dtype == dtype else o.to(dtype) for o in operands)
    return Einsum.apply(*operands, equation=equation)


def _explicit_einsum(equation: str, ndims: list[int]) -> str:
    """``'...ij,jk'`` -> ``'Aij,jk->Aik'``: ellipses spelled as unused capital letters and
    the output written out."""
    inputs, arrow, output = equation.partition("->")
    subs = inputs.split(",")
    if len(subs) != len(ndims):
        raise ValueError(f"einsum: {equation!r} names {len(subs)} operands, got {len(ndims)}")
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in equation]
    n_ellipsis = 0
    for i, (sub, nd) in enumerate(zip(subs, ndims)):
        if "..." in sub:
            k = nd - (len(sub) - 3)
            n_ellipsis = builtins.max(n_ellipsis, k)
            subs[i] = sub.replace("...", "".join(spare[n_ellipsis - k:n_ellipsis]))
        if len(subs[i]) != nd:
            raise ValueError(f"einsum: subscripts {sub!r} for an operand with {nd} dims")
    ell = "".join(spare[:n_ellipsis])
    if not arrow:
        letters = "".join(subs)
        output = ell + "".join(sorted(c for c in set(letters) - set(ell)
                                      if letters.count(c) == 1))
    else:
        output = output.replace("...", ell)
    return ",".join(subs) + "->" + output


def broadcast_tensors(*tensors):
    """Expand all tensors to their common broadcast shape (views, differentiable)."""
    tensors = [_t(t) for t in tensors]
    shape = np.broadcast_shapes(*[t.shape for t in tensors])
    return tuple(t.expand(shape) for t in tensors)


def broadcast_to(input, size): return _t(input).expand(size)  # noqa: A002
