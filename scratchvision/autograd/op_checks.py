"""Gradient-check cases for the basic ops of ``ops.py`` (run by ``python -m scratchvision
gradcheck``). Broadcast shapes, repeated indices and reused nodes are included on purpose:
they are where hand-written backward passes go wrong.
"""
import numpy as np

from scratchvision.autograd.factories import cat, stack, where
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import split


def _pair(rng, a=(2, 3, 4), b=(3, 1)):
    return [rng.standard_normal(a), rng.standard_normal(b)]


@register_gradcheck("add")
def _add(rng):
    return (lambda a, b: a + b), _pair(rng)


@register_gradcheck("sub")
def _sub(rng):
    return (lambda a, b: b - a + 2.0), _pair(rng)


@register_gradcheck("mul")
def _mul(rng):
    return [((lambda a, b: a * b), _pair(rng)), ((lambda a: 3.0 * a * a), [rng.random((2, 2))])]


@register_gradcheck("div")
def _div(rng):
    a, b = _pair(rng)
    return (lambda a, b: a / b), [a, np.sign(b) * (np.abs(b) + 0.5)]


@register_gradcheck("neg")
def _neg(rng):
    return (lambda a: -a), [rng.standard_normal((3,))]


@register_gradcheck("pow")
def _pow(rng):
    a = rng.random((3, 4)) + 0.5
    return [((lambda x: x ** 3), [a]), ((lambda x: x ** -0.5), [a]),
            ((lambda x, y: x ** y), [a, rng.standard_normal((4,))]),
            ((lambda y: 2.0 ** y), [rng.standard_normal((3,))])]


@register_gradcheck("matmul")
def _matmul(rng):
    return [((lambda a, b: a @ b), [rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))]),
            ((lambda a, b: a @ b), [rng.standard_normal((4,)), rng.standard_normal((2, 4, 3))]),
            ((lambda a, b: a @ b), [rng.standard_normal((3, 4)), rng.standard_normal((4,))]),
            ((lambda a, b: a @ b), [rng.standard_normal((2, 1, 3, 4)),
                                    rng.standard_normal((5, 4, 2))])]


@register_gradcheck("exp_log_sqrt")
def _unary(rng):
    a = rng.random((3, 4)) + 0.2
    return [((lambda x: x.exp()), [a]), ((lambda x: x.log()), [a]), ((lambda x: x.sqrt()), [a])]


@register_gradcheck("abs_clamp")
def _abs_clamp(rng):
    a = rng.standard_normal((4, 5))
    a[np.abs(a) < 0.05] = 0.3
    a[np.abs(np.abs(a) - 0.5) < 0.05] = 0.8
    return [((lambda x: x.abs()), [a]), ((lambda x: x.clamp(-0.5, 0.5)), [a]),
            ((lambda x: x.clamp(min=0.5)), [a])]


@register_gradcheck("sum_mean")
def _sum_mean(rng):
    a = rng.standard_normal((2, 3, 4))
    return [((lambda x: x.sum()), [a]), ((lambda x: x.sum(dim=(0, 2), keepdim=True)), [a]),
            ((lambda x: x.mean(axis=1)), [a]), ((lambda x: x.mean(dim=-1, keepdim=True)), [a])]


@register_gradcheck("var")
def _var(rng):
    a = rng.standard_normal((3, 5))
    return [((lambda x: x.var()), [a]), ((lambda x: x.var(dim=1, unbiased=False)), [a]),
            ((lambda x: x.std(dim=0, keepdim=True)), [a])]


@register_gradcheck("amax_amin_max")
def _extrema(rng):
    a = rng.permutation(24).reshape(2, 3, 4).astype(float)  # distinct values: no ties
    return [((lambda x: x.amax(dim=1)), [a]), ((lambda x: x.amin(dim=(0, 2))), [a]),
            ((lambda x: x.max()), [a]), ((lambda x: x.max(dim=2)[0]), [a]),
            ((lambda x: x.min(dim=0, keepdim=True).values), [a])]


@register_gradcheck("shape_ops")
def _shape(rng):
    a = rng.standard_normal((2, 3, 4))
    return [((lambda x: x.reshape(4, 6) * 2), [a]), ((lambda x: x.permute(2, 0, 1)), [a]),
            ((lambda x: x.transpose(0, 2).flatten()), [a]), ((lambda x: x.T), [a]),
            ((lambda x: x[:, :1].squeeze(1).unsqueeze(0)), [a]),
            ((lambda x: x[:, :, :1].expand(2, 3, 5)), [a])]


@register_gradcheck("getitem")
def _getitem(rng):
    a = rng.standard_normal((4, 5))
    idx = np.array([0, 2, 2, 3])  # a repeated row must receive two gradients
    mask = rng.random((4, 5)) > 0.5
    return [((lambda x: x[1:3, ::2]), [a]), ((lambda x: x[idx]), [a]),
            ((lambda x: x[mask]), [a]), ((lambda x: x[idx, np.array([1, 1, 4, 0])]), [a]),
            ((lambda x: x[..., None, 2]), [a])]


@register_gradcheck("cat_stack_split")
def _cat(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    c = rng.standard_normal((2, 3))
    return [((lambda x, y: cat([x, y], dim=1)), [a, b]),
            ((lambda x, y: stack([x, y, x], dim=1)), [a, c]),
            ((lambda x: split(x, [1, 3], dim=1)[1] * 2), [b])]


@register_gradcheck("where")
def _where(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    cond = rng.random((3, 4)) > 0.5
    return (lambda x, y: where(cond, x, y)), [a, b]


@register_gradcheck("diamond_graph")
def _diamond(rng):
    # x feeds two branches that meet again: its gradient is the sum over both paths
    def fn(x):
        h = x.exp()
        return (h * h + h.sqrt() * x).sum(dim=0)
    return fn, [rng.random((3, 2)) + 0.1]


@register_gradcheck("remainder")
def _remainder(rng):
    a = rng.standard_normal((3, 4)) * 5
    b = np.sign(rng.standard_normal((4,))) * (rng.random(4) + 1.5)
    a[np.abs(np.remainder(a, b) - np.abs(b) / 2) > np.abs(b) / 2 - 0.05] = 0.25  # off the jumps
    return [((lambda x, y: x % y), [a, b]), ((lambda x: x % 1.5), [a])]


@register_gradcheck("maximum_minimum")
def _maximum(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    tied = np.array([1.0, 2.0, 3.0])  # equal operands: each gets half the gradient
    return [((lambda x, y: x.maximum(y)), [a, b]), ((lambda x, y: x.minimum(y)), [a, b]),
            ((lambda x, y: x.max(y) * 2), [a, b]),
            ((lambda x, y: x.maximum(y)), [tied, tied.copy()])]


@register_gradcheck("clamp_tensor_bounds")
def _clamp_tensors(rng):
    a = rng.standard_normal((3, 4))
    lo, hi = rng.standard_normal((4,)) - 0.5, rng.standard_normal((3, 1)) + 0.5
    a[np.minimum(np.abs(a - lo), np.abs(a - hi)) < 0.05] += 0.2  # away from the kinks
    return [((lambda x, low, high: x.clamp(min=low, max=high)), [a, lo, hi]),
            ((lambda x, low: x.clamp(min=low)), [a, lo])]


@register_gradcheck("norm")
def _norm(rng):
    a = rng.standard_normal((3, 4))
    a[np.abs(a) < 0.05] = 0.3
    return [((lambda x: x.norm()), [a]), ((lambda x: x.norm(dim=1)), [a]),
            ((lambda x: x.norm(p=1, dim=0, keepdim=True)), [a]),
            ((lambda x: x.norm(p=3, dim=(0, 1))), [a]),
            ((lambda x: x.norm(p=float("inf"), dim=1)), [rng.permutation(12).reshape(3, 4)
                                                          .astype(float) - 5.5])]


@register_gradcheck("rounding")
def _rounding(rng):
    a = rng.standard_normal((3, 4)) * 3
    # floor/round are flat: the gradient is 0, and the sum with x keeps the check non-trivial
    return [((lambda x: x.floor() + x), [a]), ((lambda x: x.round() * x), [a]),
            ((lambda x: x - x.trunc()), [a]), ((lambda x: x.sign() * x), [a])]


@register_gradcheck("einsum")
def _einsum(rng):
    from scratchvision.autograd.functions import einsum  # noqa: PLC0415
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    c = rng.standard_normal((5, 2, 3))
    return [((lambda x, y: einsum("ij,jk->ik", x, y)), [a, b]),
            ((lambda x: einsum("bij->j", x)), [c]),
            ((lambda x, y: einsum("...ij,jk", x, y)), [c, b]),
            ((lambda x, y: einsum("ij,ij->i", x, y)), [a, a.copy() + 1])]


@register_gradcheck("inplace_ops")
def _inplace(rng):
    # in-place ops on non-leaf tensors: the gradient flows through the new history while
    # earlier consumers keep the old one (y used h before `h *= w`)
    def scaled(x, w):
        h = x * 2
        y = h + 1
        h *= w
        h += y
        return h

    def assigned(x, v):
        h = x * 3                     # (x.exp() would raise: exp saved its output)
        h[1:, 0] = v[:2] * 3          # IndexPut: v gets the gradient of those positions
        return h

    def clamped(x):
        h = x + 0
        h.clamp_(min=-0.5)
        h.pow_(2)
        return h
    a = rng.standard_normal((3, 4))
    a[np.abs(a + 0.5) < 0.05] = 0.2
    return [(scaled, [a, rng.standard_normal((4,))]), (assigned, [a, rng.standard_normal(3)]),
            (clamped, [a])]


@register_gradcheck("trig_atan2")
def _trig(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    return [((lambda x: x.sin()), [a]), ((lambda x: x.cos()), [a]),
            ((lambda x: x.log1p()), [np.abs(a)]), ((lambda x: x.expm1()), [a]),
            ((lambda x, y: x.atan2(y)), [a, b])]


@register_gradcheck("cummax_cummin")
def _cummax(rng):
    a = rng.permutation(24).reshape(2, 3, 4).astype(float)   # distinct: no ties
    return [((lambda x: x.cummax(2).values), [a]), ((lambda x: x.cummin(1)[0]), [a])]
