"""Gradient-check cases for the ops of ``indexing.py`` (run by ``python -m scratchvision
gradcheck``). Repeated indices (gradients must accumulate), ties in sort/topk (every
element must get its gradient exactly once), zeros in prod/cumprod (no division by zero)
and an index smaller than the input (torch allows it) are included on purpose.
"""
import numpy as np

from scratchvision.autograd import indexing as ix
from scratchvision.autograd.gradcheck import register_gradcheck


@register_gradcheck("sort")
def _sort(rng):
    a = rng.permutation(24).reshape(2, 3, 4) / 4.0              # distinct values
    ties = np.array([[3.0, 1.0, 3.0, 2.0, 1.0], [0.5, 0.5, 0.5, 2.0, -1.0]])
    return [((lambda x: ix.sort(x, dim=1).values), [a]),
            ((lambda x: ix.sort(x, dim=-1, descending=True)[0]), [a]),
            ((lambda x: ix.sort(x, dim=0, descending=True).values), [a]),
            # ties: any symmetric function of the tied values is differentiable, and a
            # wrong routing (an index dropped or doubled) would still show up
            ((lambda x: (ix.sort(x, dim=1).values ** 2).sum(dim=1)), [ties]),
            ((lambda x: (ix.sort(x, dim=1, descending=True).values.exp()).sum(dim=1)), [ties])]


@register_gradcheck("topk")
def _topk(rng):
    a = rng.permutation(30).reshape(3, 10) / 3.0                # distinct values
    big = rng.permutation(200).astype(float).reshape(2, 100)     # the partition path
    ties = np.array([[5.0, 1.0, 5.0, 0.0, 5.0, -2.0], [2.0, 2.0, 7.0, 2.0, -1.0, -3.0]])
    return [((lambda x: ix.topk(x, 3).values), [a]),
            ((lambda x: ix.topk(x, 2, dim=0, largest=False).values), [a]),
            ((lambda x: ix.topk(x, 5, dim=1).values), [big]),
            ((lambda x: ix.topk(x, 4, dim=1).values.sum(dim=1)), [ties]),
            ((lambda x: (ix.topk(x, 4, largest=False).values ** 2).sum(dim=1)), [-ties])]


@register_gradcheck("masked_fill")
def _masked_fill(rng):
    a = rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.5
    row = np.array([True, False, True, False])
    return [((lambda x: ix.masked_fill(x, mask, -1.5)), [a]),
            ((lambda x: ix.masked_fill(x, row, 2.0)), [a]),
            ((lambda x, v: ix.masked_fill(x, mask, v)), [a, np.array(0.7)]),
            # input broadcast up to the mask's shape: its gradient sums back
            ((lambda x, v: ix.masked_fill(x, mask, v)), [rng.standard_normal((4,)),
                                                         np.array(-0.3)])]


@register_gradcheck("gather")
def _gather(rng):
    a = rng.standard_normal((3, 5))
    idx1 = np.array([[0, 4, 4, 1], [2, 2, 2, 2], [3, 0, 1, 0]])  # repeats accumulate
    idx0 = np.array([[2, 0, 1], [2, 2, 0]])                       # smaller than a in dim 1
    b = rng.standard_normal((2, 3, 4))
    idx2 = rng.integers(0, 4, (2, 2, 6))
    return [((lambda x: ix.gather(x, 1, idx1)), [a]),
            ((lambda x: ix.gather(x, 0, idx0)), [a]),
            ((lambda x: ix.gather(x, -1, idx2)), [b])]


@register_gradcheck("scatter")
def _scatter(rng):
    a = rng.standard_normal((3, 5))
    src = rng.standard_normal((3, 6))
    idx = np.array([[0, 4, 4], [2, 1, 3], [3, 0, 3]])   # repeated targets: the last wins
    return [((lambda x, s: ix.scatter(x, 1, idx, s)), [a, src]),
            ((lambda x: ix.scatter(x, 1, idx, value=0.25)), [a]),
            ((lambda x, s: ix.scatter(x, 0, idx[:2] % 3, s, reduce="add")), [a, src])]


@register_gradcheck("scatter_add")
def _scatter_add(rng):
    a = rng.standard_normal((3, 5))
    src = rng.standard_normal((4, 6))
    idx = np.array([[0, 4, 4], [2, 1, 3], [2, 2, 2]])  # repeated targets add up
    b = rng.standard_normal((2, 3))
    return [((lambda x, s: ix.scatter_add(x, 1, idx, s)), [a, src]),
            ((lambda x, s: ix.scatter_add(x, 0, idx % 3, s)), [a, src]),
            # an index smaller than src: only src[:1, :4] is read (b is an input so that
            # it lives on the device of the check)
            ((lambda y, s: ix.scatter_add(y, 1, np.array([[0, 0, 0, 2]]), s)), [b, src])]


@register_gradcheck("index_select")
def _index_select(rng):
    a = rng.standard_normal((4, 3, 2))
    rows = np.array([3, 0, 3, 3, 1])                    # repeated rows accumulate
    return [((lambda x: ix.index_select(x, 0, rows)), [a]),
            ((lambda x: ix.index_select(x, 1, np.array([2, 2]))), [a]),
            ((lambda x: ix.index_select(x, -1, np.array(1))), [a])]


@register_gradcheck("index_add")
def _index_add(rng):
    a = rng.standard_normal((4, 3))
    src = rng.standard_normal((5, 3))
    rows = np.array([3, 0, 3, 3, 1])
    return [((lambda x, s: ix.index_add(x, 0, rows, s)), [a, src]),
            ((lambda x, s: ix.index_add(x, 0, rows, s, alpha=-2.0)), [a, src])]


@register_gradcheck("cumsum_cumprod")
def _cumsum(rng):
    a = rng.standard_normal((3, 4))
    z = np.array([[2.0, 0.0, 3.0, 0.5], [1.5, -1.0, 0.0, 2.0], [0.0, 0.0, 1.2, -0.7]])
    return [((lambda x: ix.cumsum(x, 1)), [a]), ((lambda x: ix.cumsum(x, dim=0)), [a]),
            ((lambda x: ix.cumprod(x, 1)), [a]), ((lambda x: ix.cumprod(x, 0)), [a]),
            ((lambda x: ix.cumprod(x, 1)), [z])]           # zeros: one, two, leading


@register_gradcheck("prod")
def _prod(rng):
    a = rng.random((3, 4)) + 0.5
    z = np.array([[2.0, 0.0, 3.0, 0.5], [1.5, -1.0, 0.0, 0.0], [1.1, 0.9, 1.2, -0.7]])
    one_zero = a.copy()
    one_zero[1, 2] = 0.0
    return [((lambda x: ix.prod(x)), [a]), ((lambda x: ix.prod(x, 1)), [a]),
            ((lambda x: ix.prod(x, 0, keepdim=True)), [a]),
            ((lambda x: ix.prod(x, 1)), [z]),            # rows: one zero, two zeros, none
            ((lambda x: ix.prod(x, 0)), [z]),
            ((lambda x: ix.prod(x)), [one_zero]), ((lambda x: ix.prod(x)), [z])]


@register_gradcheck("repeat_flip_roll")
def _repeat(rng):
    a = rng.standard_normal((2, 3))
    return [((lambda x: ix.repeat(x, 2, 1)), [a]), ((lambda x: ix.repeat(x, 3, 2, 2)), [a]),
            ((lambda x: ix.flip(x, (0, 1))), [a]), ((lambda x: ix.flip(x, (1,))), [a]),
            ((lambda x: ix.roll(x, 1, 1)), [a]), ((lambda x: ix.roll(x, (1, -2), (0, 1))), [a]),
            ((lambda x: ix.roll(x, 4)), [a])]


@register_gradcheck("unbind")
def _unbind(rng):
    a = rng.standard_normal((3, 4))
    return [((lambda x: ix.unbind(x, 1)), [a]),
            ((lambda x: ix.unbind(x)[0] * ix.unbind(x)[2]), [a])]
