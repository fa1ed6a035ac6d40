"""ONNX operators on scratchvision Tensors: elementwise maths, shapes, indexing, reductions.

One function per ONNX operator, named exactly as the operator (``Add``, ``Reshape``): it is
a *builder*, called once per node while converting (``convert.py``). It reads and checks
the node's attributes (``node.py``: an attribute it does not read is refused), marks the
inputs it reads on the host (``n.static``), and returns ``run(*inputs)``, which the module
calls on every forward. Everything ``run`` does is a differentiable Tensor op (or host
integer arithmetic on shapes), so imported models train and move to the GPU like ours.
``OPS`` at the bottom maps operator names to builders; the layer operators (Conv, pooling,
normalisation, Resize, RoiAlign, NonMaxSuppression) live in ``onnx_nn_ops.py``.

Conventions shared by the operators (the ONNX spec's, and where they differ from torch):

* **Broadcasting** is NumPy's (multidirectional) for the elementwise operators since
  opset 7; opset < 7's ``broadcast=1, axis=k`` aligns B's dims with A's from dim k.
* **Integer division** truncates towards zero (``-7 / 2 = -3``, C's rule), not torch's floor.
* **Axes** may be negative (counted from the end); a list of axes arrives as an attribute
  before some opset and as an input after it (Squeeze/Unsqueeze/ReduceSum/Split 13,
  Slice 10, the other Reduce* 18): both forms are read.
* **Shapes are values**: ``Shape`` returns an int64 host Tensor, so Gather/Concat/Reshape
  chains that compute a shape from the input's size run as small host arithmetic each
  forward, and dynamic input sizes work wherever the graph computes its shapes that way.
"""
from __future__ import annotations

import math

import numpy as np

import scratchvision.functional as F
from scratchvision.autograd.factories import arange, cat, where
from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.functions import einsum
from scratchvision.autograd.tensor import Tensor, split
from scratchvision.functional.activation import _erf
from scratchvision.onnx.node import (
    Node,
    align,
    axis_of,
    host,
    host_ints,
    host_scalar,
    like,
    on_host,
)


# ---------------------------------------------------------------------- helpers
def _np_dtype(n: Node, code: int, attr: str = "to") -> np.dtype:
    """The NumPy dtype of an ONNX TensorProto element type (strings/bfloat16 refused)."""
    from onnx import TensorProto, helper
    if code in (TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.UNDEFINED) or \
            code >= TensorProto.FLOAT8E4M3FN:
        n.fail(f"element type {TensorProto.DataType.Name(code)} is not supported", attr)
    return np.dtype(helper.tensor_dtype_to_np_dtype(code))


def _legacy_broadcast(n: Node):
    """Opset < 7 ``broadcast``/``axis``: a function that reshapes B to align with A."""
    bc, axis = n.int("broadcast", 0), n.int("axis", None)
    if not bc or axis is None:
        return lambda a, b: b

    def fit(a, b):   # B's dims start at A's dim `axis`: pad B with trailing size-1 dims
        ax = axis_of(axis, a.ndim, n)
        return b.reshape(tuple(b.shape) + (1,) * (a.ndim - ax - b.ndim))
    return fit


def _binary(n: Node, fn):
    fit = _legacy_broadcast(n) if n.opset < 7 else (lambda a, b: b)

    def run(a, b):
        a, b = align(a, b)
        return fn(a, fit(a, b))
    return run


def _floating(n: Node, x: Tensor) -> Tensor:
    if x.dtype.kind != "f":
        raise TypeError(f"{n.where()}: needs a floating-point input, got {x.dtype}")
    return x


def _int_divide(a: Tensor, b: Tensor) -> Tensor:
    """a / b for integers, truncated towards zero as C (and ONNX) do."""
    xp = a.xp
    q = xp.floor_divide(a.data, b.data)
    q = q + ((q < 0) & (q * b.data != a.data))       # -7 // 2 = -4 -> -3
    return Tensor._make(q.astype(np.result_type(a.data, b.data), copy=False), False)


def _variadic(n: Node, fn):
    """Min/Max/Sum/Mean: fold ``fn`` over any number of broadcast inputs."""
    n.need_inputs(1)

    def run(*xs):
        xs = align(*xs)
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return run


class _ErfFn(Function):
    """erf(x), d/dx = 2/sqrt(pi) exp(-x^2)."""

    def forward(self, x):
        self.x = x
        return _erf(x)

    def backward(self, gy):
        xp = xp_of(gy)
        return (gy * (2 / math.sqrt(math.pi)) * xp.exp(-self.x * self.x).astype(gy.dtype),)


# ---------------------------------------------------------------------- elementwise
def Add(n: Node):
    """a + b, broadcast (see the module docstring for opset < 7's ``broadcast``/``axis``)."""
    return _binary(n, lambda a, b: a + b)


def Sub(n: Node):
    """a - b, broadcast."""
    return _binary(n, lambda a, b: a - b)


def Mul(n: Node):
    """a * b, broadcast."""
    return _binary(n, lambda a, b: a * b)


def Div(n: Node):
    """a / b, broadcast; integers truncate towards zero (C's rule, not torch's floor)."""
    def div(a, b):
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            return _int_divide(a, b)
        return a / b
    return _binary(n, div)


def Pow(n: Node):
    """a ** b, broadcast; the result has a's dtype (ONNX), even for an integer exponent."""
    def power(a, b):
        if b.ndim == 0 and not b.requires_grad:     # a literal exponent: x ** 2.0
            e = host_scalar(b)
            out = a ** (float(e) if a.dtype.kind == "f" else int(e))
        else:
            out = a ** (b if b.dtype == a.dtype else b.to(a.dtype))
        return out if out.dtype == a.dtype else out.to(a.dtype)
    return _binary(n, power)


def Mod(n: Node):
    """Remainder: ``fmod=0`` (integers only) takes the divisor's sign as Python's ``%``;
    ``fmod=1`` the dividend's, as C's fmod."""
    fmod = n.choice("fmod", 0, (0, 1))

    def mod(a, b):
        if fmod:
            return Tensor._make(a.xp.fmod(a.data, b.data), False) if a.dtype.kind != "f" \
                else a - (a / b).trunc() * b
        return a % b
    return _binary(n, mod)


def Max(n: Node):
    """Elementwise maximum of any number of broadcast inputs."""
    return _variadic(n, lambda a, b: a.maximum(b))


def Min(n: Node):
    """Elementwise minimum of any number of broadcast inputs."""
    return _variadic(n, lambda a, b: a.minimum(b))


def Sum(n: Node):
    """Elementwise sum of any number of broadcast inputs."""
    return _variadic(n, lambda a, b: a + b)


def Mean(n: Node):
    """Elementwise mean of any number of broadcast inputs."""
    k = len([i for i in n.inputs if i])
    run = _variadic(n, lambda a, b: a + b)
    return lambda *xs: run(*xs) / k


def Relu(n: Node):
    """max(x, 0): ``F.relu``."""
    return F.relu


def LeakyRelu(n: Node):
    """x if x >= 0 else alpha * x (``alpha`` default 0.01): ``F.leaky_relu``."""
    alpha = n.float("alpha", 0.01)
    return lambda x: F.leaky_relu(x, alpha)


def PRelu(n: Node):
    """x if x >= 0 else slope * x, the slope broadcast to x (e.g. (C, 1, 1) per channel);
    the slope is a learnable Parameter whatever its size."""
    n.params(1)

    def run(x, slope):
        x, slope = align(x, slope)
        return where(x >= 0, x, x * slope)
    return run


def Sigmoid(n: Node):
    """1 / (1 + exp(-x)): ``F.sigmoid``."""
    return F.sigmoid


def HardSigmoid(n: Node):
    """clamp(alpha * x + beta, 0, 1), ``alpha`` default 0.2, ``beta`` 0.5 (ONNX's defaults,
    not torch's hardsigmoid, which is alpha = 1/6)."""
    alpha, beta = n.float("alpha", 0.2), n.float("beta", 0.5)
    return lambda x: (x * alpha + beta).clamp(0.0, 1.0)


def HardSwish(n: Node):
    """x * clamp(x / 6 + 0.5, 0, 1): ``F.hardswish``."""
    return F.hardswish


def Tanh(n: Node):
    """tanh(x): ``F.tanh``."""
    return F.tanh


def Softplus(n: Node):
    """log(1 + exp(x)): ``F.softplus``."""
    return F.softplus


def Softsign(n: Node):
    """x / (1 + |x|)."""
    return lambda x: x / (x.abs() + 1)


def Elu(n: Node):
    """x if x > 0 else alpha * (exp(x) - 1), ``alpha`` default 1: ``F.elu``."""
    alpha = n.float("alpha", 1.0)
    return lambda x: F.elu(x, alpha)


def Selu(n: Node):
    """gamma * (x if x > 0 else alpha * (exp(x) - 1)) with ONNX's default constants."""
    alpha = n.float("alpha", 1.67326319217681884765625)
    gamma = n.float("gamma", 1.05070102214813232421875)
    return lambda x: where(x > 0, x, (x.exp() - 1) * alpha) * gamma


def Celu(n: Node):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), ``alpha`` default 1."""
    alpha = n.float("alpha", 1.0)
    return lambda x: x.relu() + (((x / alpha).exp() - 1) * alpha).clamp(max=0.0)


def ThresholdedRelu(n: Node):
    """x if x > alpha else 0, ``alpha`` default 1."""
    alpha = n.float("alpha", 1.0)
    return lambda x: where(x > alpha, x, x * 0)


def Mish(n: Node):
    """x * tanh(softplus(x)): ``F.mish``."""
    return F.mish


def Gelu(n: Node):
    """x * Phi(x) (opset 20); ``approximate`` 'none' (erf) or 'tanh': ``F.gelu``."""
    approximate = n.choice("approximate", "none", ("none", "tanh"))
    return lambda x: F.gelu(x, approximate)


def Erf(n: Node):
    """The error function, differentiable (computed in float64 on the CPU)."""
    return lambda x: _ErfFn.apply(_floating(n, x))


def Clip(n: Node):
    """clamp(x, min, max). Opset < 11: ``min``/``max`` attributes (default: unbounded);
    opset >= 11: optional inputs 1 and 2, read on the host (so not learnable)."""
    if n.opset < 11:
        lo, hi = n.float("min", None), n.float("max", None)
        return lambda x: x if lo is None and hi is None else x.clamp(lo, hi)
    n.static(1, 2)

    def run(x, lo=None, hi=None):
        lo = None if lo is None else host_scalar(lo)
        hi = None if hi is None else host_scalar(hi)
        return x if lo is None and hi is None else x.clamp(lo, hi)
    return run


def Exp(n: Node):
    """exp(x)."""
    return lambda x: x.exp()


def Log(n: Node):
    """Natural logarithm."""
    return lambda x: x.log()


def Sqrt(n: Node):
    """Square root."""
    return lambda x: x.sqrt()


def Reciprocal(n: Node):
    """1 / x."""
    return lambda x: 1 / x


def Neg(n: Node):
    """-x."""
    return lambda x: -x


def Abs(n: Node):
    """|x|."""
    return lambda x: x.abs()


def Sign(n: Node):
    """-1, 0 or 1."""
    return lambda x: x.sign()


def Floor(n: Node):
    """Round down (gradient 0)."""
    return lambda x: x.floor()


def Ceil(n: Node):
    """Round up (gradient 0)."""
    return lambda x: x.ceil()


def Round(n: Node):
    """Round half to even (ONNX's rule, which NumPy shares)."""
    return lambda x: x.round()


def Sin(n: Node):
    """sin(x)."""
    return lambda x: x.sin()


def Cos(n: Node):
    """cos(x)."""
    return lambda x: x.cos()


def Tan(n: Node):
    """tan(x)."""
    return lambda x: x.tan()


def Atan(n: Node):
    """atan(x), via atan2(x, 1)."""
    return lambda x: x.atan2(x * 0 + 1)


def IsNaN(n: Node):
    """Boolean: x is NaN."""
    return lambda x: x.isnan()


def IsInf(n: Node):
    """Boolean: x is +inf (``detect_positive``) or -inf (``detect_negative``)."""
    pos, neg = n.int("detect_positive", 1), n.int("detect_negative", 1)

    def run(x):
        xp = x.xp
        out = xp.zeros(x.shape, bool)
        if pos:
            out |= xp.isposinf(x.data)
        if neg:
            out |= xp.isneginf(x.data)
        return Tensor._make(out, False)
    return run


def _compare(op):
    def build(n: Node):
        return _binary(n, op)
    build.__doc__ = "Elementwise comparison, broadcast; a bool Tensor."
    return build


Equal = _compare(lambda a, b: a == b)
Greater = _compare(lambda a, b: a > b)
Less = _compare(lambda a, b: a < b)
GreaterOrEqual = _compare(lambda a, b: a >= b)
LessOrEqual = _compare(lambda a, b: a <= b)
And = _compare(lambda a, b: a.logical_and(b))
Or = _compare(lambda a, b: a.logical_or(b))
Xor = _compare(lambda a, b: a.logical_xor(b))


def Not(n: Node):
    """Logical not."""
    return lambda x: x.logical_not()


def Where(n: Node):
    """condition ? x : y, the three broadcast together; differentiable in x and y."""
    def run(c, x, y):
        c, x, y = align(c, x, y)
        return where(c, x, y)
    return run


# ---------------------------------------------------------------------- types and copies
def Identity(n: Node):
    """x itself (the converter aliases Identity outputs away; this is the fallback)."""
    return lambda x: x


def Dropout(n: Node):
    """Inference: the input unchanged, and an all-True mask when the node asks for one
    (opset 12's ``ratio``/``training_mode`` inputs are ignored: a converted model runs the
    graph as exported for inference)."""
    n.attr("ratio")      # opset < 12 attribute
    n.attr("is_test")    # opset < 7
    n.attr("seed")
    n.static(1, 2)
    outs = len(n.outputs)

    def run(x, ratio=None, training_mode=None):
        if training_mode is not None and bool(host_scalar(training_mode)):
            raise ValueError(f"{n.where()}: training_mode=True is not supported")
        if outs == 1:
            return x
        return x, Tensor._make(x.xp.ones(x.shape, bool), False)
    return run


def Cast(n: Node):
    """Convert to the ``to`` element type. Float to float is differentiable; float to
    integer truncates towards zero (C's cast); to bool is ``x != 0``."""
    dtype = _np_dtype(n, n.int("to"))
    n.forbid("saturate", (1,), " (float8 types only)")
    return lambda x: _cast(x, dtype)


def _cast(x: Tensor, dtype: np.dtype) -> Tensor:
    if x.dtype == dtype:
        return x
    if dtype == np.bool_:
        return Tensor._make(x.data != 0, False)
    return x.to(dtype)


def CastLike(n: Node):
    """Convert x to the element type of the second input."""
    n.forbid("saturate", (1,), " (float8 types only)")
    return lambda x, t: _cast(x, t.dtype)


# ---------------------------------------------------------------------- shapes
def Shape(n: Node):
    """The input's shape as an int64 host Tensor; ``start``/``end`` (opset 15) slice it with
    Python's rules (negative from the end, clamped)."""
    start, end = n.int("start", 0), n.int("end", None)
    return lambda x: on_host(np.array(x.shape[start:end], np.int64))


def Size(n: Node):
    """The number of elements, an int64 scalar on the host."""
    return lambda x: on_host(np.array(x.numel(), np.int64))


def Reshape(n: Node):
    """x viewed with the ``shape`` input (host): -1 is inferred, 0 copies the input's dim
    at that position unless ``allowzero=1`` (opset 14), where 0 is a real zero size.
    Opset < 5 takes ``shape`` as an attribute."""
    allowzero = n.int("allowzero", 0)
    if n.opset < 5:
        fixed = n.ints("shape")
        n.forbid("consumed_inputs")
    else:
        fixed = None
        n.static(1)

    def run(x, shape=None):
        s = fixed if fixed is not None else host_ints(shape)
        if not allowzero:
            s = [x.shape[i] if v == 0 else v for i, v in enumerate(s)]
        return x.reshape(tuple(s))
    return run


def Flatten(n: Node):
    """(d0 * ... * d_{axis-1}, d_axis * ... * d_n): a 2-D view; ``axis`` default 1,
    negative from opset 11."""
    axis = n.int("axis", 1)

    def run(x):
        a = axis if axis >= 0 else axis + x.ndim
        if not 0 <= a <= x.ndim:
            raise ValueError(f"{n.where()}: axis {axis} out of range for {x.ndim} dims")
        return x.reshape(int(np.prod(x.shape[:a])), int(np.prod(x.shape[a:])))
    return run


def Transpose(n: Node):
    """Permute the dims by ``perm`` (default: reversed)."""
    perm = n.ints("perm", None)

    def run(x):
        p = perm if perm is not None else list(range(x.ndim))[::-1]
        return x.permute(*p) if p != list(range(x.ndim)) else x
    return run


def _axes_arg(n: Node, since: int, pos: int = 1):
    """Axes from the ``axes`` attribute (opset < since) or the static input ``pos``."""
    if n.opset < since:
        fixed = n.ints("axes", None)
        return lambda t: fixed
    n.static(pos)
    return lambda t: None if t is None else host_ints(t)


def Unsqueeze(n: Node):
    """Insert size-1 dims at ``axes``, positions in the *output* (negative allowed);
    attribute before opset 13, input after."""
    axes_of = _axes_arg(n, 13)

    def run(x, axes=None):
        ax = axes_of(axes)
        rank = x.ndim + len(ax)
        ax = sorted(axis_of(a, rank, n, "axes") for a in ax)
        shape = list(x.shape)
        for a in ax:
            shape.insert(a, 1)
        return x.reshape(tuple(shape))
    return run


def Squeeze(n: Node):
    """Remove the size-1 dims at ``axes`` (all size-1 dims when absent); attribute before
    opset 13, input after. A listed dim that is not 1 is an error."""
    axes_of = _axes_arg(n, 13)

    def run(x, axes=None):
        ax = axes_of(axes)
        if ax is None or len(ax) == 0:
            return x.reshape(tuple(s for s in x.shape if s != 1))
        ax = {axis_of(a, x.ndim, n, "axes") for a in ax}
        for a in ax:
            if x.shape[a] != 1:
                raise ValueError(f"{n.where()}: cannot squeeze dim {a} of shape {x.shape}")
        return x.reshape(tuple(s for i, s in enumerate(x.shape) if i not in ax))
    return run


def Expand(n: Node):
    """Broadcast x to ``shape`` (host), NumPy's bidirectional rule: the output shape is
    broadcast(x.shape, shape), so a 1 in ``shape`` keeps x's size."""
    n.static(1)

    def run(x, shape):
        target = np.broadcast_shapes(x.shape, tuple(host_ints(shape)))
        if target == x.shape:
            return x
        x = x.reshape((1,) * (len(target) - x.ndim) + x.shape)
        return x.expand(*target)
    return run


def Tile(n: Node):
    """Repeat x ``repeats[i]`` times along dim i (``Tensor.repeat``)."""
    n.static(1)
    return lambda x, repeats: x.repeat(*host_ints(repeats))


def Concat(n: Node):
    """Concatenate along ``axis`` (negative from opset 11): ``sv.cat``."""
    axis = n.int("axis", 1 if n.opset < 4 else None)
    if axis is None:
        n.fail("the attribute is required", "axis")

    def run(*xs):
        xs = align(*xs)
        return cat(xs, axis_of(axis, xs[0].ndim, n))
    return run


def Split(n: Node):
    """Split along ``axis`` into the sizes of ``split`` (attribute before opset 13, input
    after); without it into len(outputs) equal parts, or (opset 18 ``num_outputs``) parts
    of ceil(size / num_outputs) with a smaller last one."""
    axis = n.int("axis", 0)
    fixed = n.ints("split", None) if n.opset < 13 else None
    num = n.int("num_outputs", None)
    k = len(n.outputs)
    if n.opset < 2 or n.opset >= 13:
        n.static(1)

    def run(x, s=None):
        a = axis_of(axis, x.ndim, n)
        sizes = host_ints(s) if s is not None else fixed
        if not sizes:
            dim = x.shape[a]
            if num is not None:
                chunk = -(-dim // num)
                sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(num)]
            else:
                if dim % k:
                    raise ValueError(f"{n.where()}: size {dim} of axis {a} does not split "
                                     f"into {k} equal parts")
                sizes = [dim // k] * k
        return tuple(split(x, sizes, a))
    return run


def Slice(n: Node):
    """x[starts:ends:steps] on ``axes`` (default all, in order). Indices are clamped the
    ONNX way: negative ones count from the end; for step > 0 into [0, dim], for step < 0
    starts into [0, dim-1] and ends into [-1, dim-1] (-1: run past the first element).
    Opset < 10 takes starts/ends/axes as attributes, later all four are inputs."""
    if n.opset < 10:
        a_starts, a_ends, a_axes = n.ints("starts"), n.ints("ends"), n.ints("axes", None)
    else:
        n.static(1, 2, 3, 4)

    def run(x, starts=None, ends=None, axes=None, steps=None):
        if n.opset < 10:
            st, en, ax, sp = a_starts, a_ends, a_axes, None
        else:
            st, en = host_ints(starts), host_ints(ends)
            ax = None if axes is None else host_ints(axes)
            sp = None if steps is None else host_ints(steps)
        ax = list(range(len(st))) if ax is None else ax
        sp = [1] * len(st) if sp is None else sp
        index = [slice(None)] * x.ndim
        for s, e, a, step in zip(st, en, ax, sp):
            a = axis_of(a, x.ndim, n, "axes")
            dim = x.shape[a]
            if step == 0:
                raise ValueError(f"{n.where()}: step 0 on axis {a}")
            s = s + dim if s < 0 else s
            e = e + dim if e < 0 else e
            if step > 0:
                s, e = min(max(s, 0), dim), min(max(e, 0), dim)
                index[a] = slice(s, e, step)
            else:
                s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
                index[a] = slice(s, None if e < 0 else e, step)
        return x[tuple(index)]
    return run


def Gather(n: Node):
    """Pick entries of x along ``axis`` (default 0) by an integer index tensor of any
    shape (negative counts from the end): out.shape = x.shape[:axis] + idx.shape +
    x.shape[axis+1:]. ``index_select`` + reshape, so differentiable in x."""
    axis = n.int("axis", 0)

    def run(x, idx):
        a = axis_of(axis, x.ndim, n)
        dim = x.shape[a]
        i = idx.data
        if (i < 0).any():
            i = i + dim * (i < 0)
        i = like(Tensor._make(i.reshape(-1).astype(np.int64, copy=False), False), x)
        out = x.index_select(a, i)
        return out.reshape(x.shape[:a] + tuple(idx.shape) + x.shape[a + 1:])
    return run


def GatherElements(n: Node):
    """out[i][j][k] = x[idx[i][j][k]][j][k] along ``axis``: ``Tensor.gather``."""
    axis = n.int("axis", 0)

    def run(x, idx):
        a = axis_of(axis, x.ndim, n)
        i = idx.data
        i = i + x.shape[a] * (i < 0)
        return x.gather(a, like(Tensor._make(i.astype(np.int64, copy=False), False), x))
    return run


def GatherND(n: Node):
    """x[idx[..., 0], idx[..., 1], ...] (``batch_dims=0`` only): advanced indexing."""
    n.forbid("batch_dims", (0,))

    def run(x, idx):
        i = host(idx).astype(np.int64)
        k = i.shape[-1]
        i = np.where(i < 0, i + np.array(x.shape[:k]), i)
        return x[tuple(i[..., j] for j in range(k))]
    return run


def ConstantOfShape(n: Node):
    """A tensor of shape ``input`` (host) filled with ``value`` (a one-element tensor
    attribute; default float32 0)."""
    from onnx import numpy_helper
    v = n.attr("value", None)
    value = np.zeros(1, np.float32) if v is None else numpy_helper.to_array(v).reshape(-1)
    if value.size != 1:
        n.fail(f"must hold one element, got {value.size}", "value")
    n.static(0)
    return lambda shape: on_host(np.full(tuple(host_ints(shape)), value[0], value.dtype))


def Range(n: Node):
    """start, start + delta, ... below limit (scalars, host), in the inputs' dtype:
    max(ceil((limit - start) / delta), 0) elements."""
    n.static(0, 1, 2)

    def run(start, limit, delta):
        s, lim, d = host(start), host(limit), host(delta)
        count = max(math.ceil((float(lim) - float(s)) / float(d)), 0)
        return on_host((s + d * np.arange(count)).astype(s.dtype))
    return run


def NonZero(n: Node):
    """Indices of the nonzero elements, shape (rank, count) int64 (transpose of torch's)."""
    def run(x):
        idx = np.stack(np.nonzero(host(x)), 0) if x.ndim else \
            np.zeros((0, int(bool(host(x)))), np.int64)
        return on_host(idx.astype(np.int64))
    return run


def Pad(n: Node):
    """Pad (or crop, for negative sizes) every dim: ``pads`` lists all begins then all
    ends, [b0, b1, ..., e0, e1, ...]. Modes 'constant' (``value`` / ``constant_value``),
    'reflect' (mirror without the edge), 'edge' (repeat the edge: torch's 'replicate') and
    'wrap' (opset 19, periodic). Opset < 11: ``pads``/``value`` attributes; >= 11 inputs
    1 and 2; opset 18 adds ``axes`` (input 3): ``pads`` then covers those axes only."""
    mode = n.choice("mode", "constant", ("constant", "reflect", "edge", "wrap"))
    if n.opset < 11:
        fixed = n.ints("pads" if n.opset >= 2 else "paddings")
        value0 = n.float("value", 0.0)
    else:
        fixed, value0 = None, 0.0
        n.static(1, 2, 3)

    def run(x, pads=None, value=None, axes=None):
        p = fixed if fixed is not None else host_ints(pads)
        v = value0 if value is None else host_scalar(value)
        ax = list(range(x.ndim)) if axes is None else \
            [axis_of(a, x.ndim, n, "axes") for a in host_ints(axes)]
        if len(p) != 2 * len(ax):
            raise ValueError(f"{n.where()}: {len(p)} pads for {len(ax)} axes")
        begin, end = [0] * x.ndim, [0] * x.ndim
        for k, a in enumerate(ax):
            begin[a], end[a] = p[k], p[k + len(ax)]
        return _pad(x, begin, end, mode, v)
    return run


def _pad(x: Tensor, begin, end, mode: str, value) -> Tensor:
    """Crop the negative sizes, then pad the positive ones with F.pad (or, for 'wrap',
    with an index_select of periodic indices)."""
    if any(b < 0 or e < 0 for b, e in zip(begin, end)):
        index = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0))
                      for i, (b, e) in enumerate(zip(begin, end)))
        x = x[index]
        begin, end = [max(b, 0) for b in begin], [max(e, 0) for e in end]
    if not any(begin) and not any(end):
        return x
    if mode == "wrap":
        for a in range(x.ndim):
            if begin[a] or end[a]:
                idx = np.arange(-begin[a], x.shape[a] + end[a]) % x.shape[a]
                x = x.index_select(a, idx)
        return x
    widths = []
    for a in reversed(range(x.ndim)):
        widths += [begin[a], end[a]]
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode]
    return F.pad(x, tuple(widths), mode=torch_mode, value=value)


def DepthToSpace(n: Node):
    """(N, C*b*b, H, W) -> (N, C, H*b, W*b); ``mode`` 'DCR' (depth-column-row, the
    default: channel = (by*b + bx)*C + c) or 'CRD' (column-row-depth: c*b*b + by*b + bx,
    torch's pixel_shuffle)."""
    b = n.int("blocksize")
    mode = n.choice("mode", "DCR", ("DCR", "CRD"))

    def run(x):
        N, C, H, W = x.shape
        c = C // (b * b)
        if mode == "DCR":
            y = x.reshape(N, b, b, c, H, W).permute(0, 3, 4, 1, 5, 2)
        else:
            y = x.reshape(N, c, b, b, H, W).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(N, c, H * b, W * b)
    return run


def SpaceToDepth(n: Node):
    """(N, C, H*b, W*b) -> (N, C*b*b, H, W), channel = (by*b + bx)*C + c (DCR order)."""
    b = n.int("blocksize")

    def run(x):
        N, C, H, W = x.shape
        y = x.reshape(N, C, H // b, b, W // b, b).permute(0, 3, 5, 1, 2, 4)
        return y.reshape(N, C * b * b, H // b, W // b)
    return run


# ---------------------------------------------------------------------- reductions
def _reduce(n: Node, since: int, fn):
    """ReduceX: ``axes`` (attribute before opset ``since``, input after; empty = all dims
    unless ``noop_with_empty_axes=1``, then the input unchanged), ``keepdims`` default 1."""
    keep = bool(n.int("keepdims", 1))
    noop = n.int("noop_with_empty_axes", 0)
    axes_of = _axes_arg(n, since)

    def run(x, axes=None):
        ax = axes_of(axes)
        if not ax:
            if noop:
                return x
            dims = tuple(range(x.ndim))
        else:
            dims = tuple(sorted({axis_of(a, x.ndim, n, "axes") for a in ax}))
        return fn(x, dims, keep)
    return run


def _drop(x: Tensor, dims, keep: bool) -> Tensor:
    return x if keep else x.reshape(tuple(s for i, s in enumerate(x.shape) if i not in dims))


def ReduceMean(n: Node):
    """Mean over ``axes`` (attribute before opset 18, input after)."""
    return _reduce(n, 18, lambda x, d, k: x.mean(dim=d, keepdim=k))


def ReduceSum(n: Node):
    """Sum over ``axes`` (attribute before opset 13, input after)."""
    return _reduce(n, 13, lambda x, d, k: x.sum(dim=d, keepdim=k))


def ReduceMax(n: Node):
    """Maximum over ``axes`` (attribute before opset 18, input after)."""
    return _reduce(n, 18, lambda x, d, k: x.amax(dim=d, keepdim=k))


def ReduceMin(n: Node):
    """Minimum over ``axes`` (attribute before opset 18, input after)."""
    return _reduce(n, 18, lambda x, d, k: x.amin(dim=d, keepdim=k))


def ReduceProd(n: Node):
    """Product over ``axes`` (attribute before opset 18, input after)."""
    def prod(x, dims, keep):
        for d in dims:
            x = x.prod(d, keepdim=True)
        return _drop(x, dims, keep)
    return _reduce(n, 18, prod)


def ReduceL1(n: Node):
    """Sum of |x| over ``axes``."""
    return _reduce(n, 18, lambda x, d, k: x.abs().sum(dim=d, keepdim=k))


def ReduceL2(n: Node):
    """sqrt(sum(x^2)) over ``axes``."""
    return _reduce(n, 18, lambda x, d, k: (x * x).sum(dim=d, keepdim=k).sqrt())


def ReduceSumSquare(n: Node):
    """sum(x^2) over ``axes``."""
    return _reduce(n, 18, lambda x, d, k: (x * x).sum(dim=d, keepdim=k))


def ReduceLogSum(n: Node):
    """log(sum(x)) over ``axes``."""
    return _reduce(n, 18, lambda x, d, k: x.sum(dim=d, keepdim=k).log())


def ReduceLogSumExp(n: Node):
    """log(sum(exp(x))) over ``axes``, shifted by the maximum for stability."""
    def lse(x, dims, keep):
        m = x.amax(dim=dims, keepdim=True).detach()
        return _drop((x - m).exp().sum(dim=dims, keepdim=True).log() + m, dims, keep)
    return _reduce(n, 18, lse)


def _arg(n: Node, largest: bool):
    axis, keep = n.int("axis", 0), bool(n.int("keepdims", 1))
    last = n.int("select_last_index", 0)

    def run(x):
        a = axis_of(axis, x.ndim, n)
        xs = x.flip(a) if last else x
        i = xs.argmax(a, keepdim=keep) if largest else xs.argmin(a, keepdim=keep)
        return (x.shape[a] - 1 - i) if last else i
    return run


def ArgMax(n: Node):
    """Index of the maximum along ``axis`` (int64); ties give the first index, or the last
    with ``select_last_index=1``; ``keepdims`` default 1."""
    return _arg(n, True)


def ArgMin(n: Node):
    """Index of the minimum along ``axis`` (as ArgMax)."""
    return _arg(n, False)


def TopK(n: Node):
    """The k largest (``largest=1``) or smallest values along ``axis`` (default -1) and
    their int64 indices, sorted. ``k``: attribute before opset 10, input after."""
    axis = n.int("axis", -1)
    largest = bool(n.int("largest", 1))
    n.int("sorted", 1)    # unsorted output may be in any order: sorted is a valid answer
    fixed_k = n.int("k") if n.opset < 10 else None
    if fixed_k is None:
        n.static(1)

    def run(x, k=None):
        kk = fixed_k if fixed_k is not None else int(host_scalar(k))
        a = axis_of(axis, x.ndim, n)
        values, indices = x.topk(kk, a, largest, True)
        return values, indices
    return run


def CumSum(n: Node):
    """Running sum along the ``axis`` input; ``exclusive=1`` leaves out the element
    itself, ``reverse=1`` sums from the end."""
    exclusive, reverse = n.int("exclusive", 0), n.int("reverse", 0)
    n.static(1)

    def run(x, axis):
        a = axis_of(int(host_scalar(axis)), x.ndim, n)
        y = x.flip(a) if reverse else x
        s = y.cumsum(a)
        if exclusive:
            s = s - y
        return s.flip(a) if reverse else s
    return run


# ---------------------------------------------------------------------- linear algebra
def MatMul(n: Node):
    """NumPy's matmul (batched, broadcast, 1-D operands promoted): ``x @ y``."""
    n.params(1)

    def run(a, b):
        a, b = align(a, b)
        return a @ b
    return run


def Gemm(n: Node):
    """alpha * A' @ B' + beta * C, A' = A.T if ``transA``, B' = B.T if ``transB``, C
    broadcast to (M, N). The usual ``transB=1``, alpha = beta = 1 with a (N,) bias is
    ``F.linear`` (one fused node); B and C are Parameters when they are constants."""
    alpha, beta = n.float("alpha", 1.0), n.float("beta", 1.0)
    ta, tb = n.int("transA", 0), n.int("transB", 0)
    n.attr("broadcast")   # opset < 7: C is broadcast anyway
    n.params(1, 2)

    def run(a, b, c=None):
        a, b, c = align(a, b, c)
        if ta:
            a = a.T
        if tb and alpha == 1.0 and (c is None or beta == 1.0 and c.shape == (b.shape[0],)):
            return F.linear(a, b, c)
        y = a @ (b.T if tb else b)
        if alpha != 1.0:
            y = y * alpha
        if c is not None:
            y = y + (c * beta if beta != 1.0 else c)
        return y
    return run


def Einsum(n: Node):
    """Einstein summation with the ``equation`` attribute: ``sv.einsum``."""
    eq = n.attr("equation")

    def run(*xs):
        return einsum(eq, *align(*xs))
    return run


def _softmax(n: Node, log: bool, hard: bool = False):
    """Opset < 13: flatten to 2-D at ``axis`` (default 1) and normalise each row;
    opset >= 13: normalise along the one dim ``axis`` (default -1)."""
    legacy = n.opset < 13
    axis = n.int("axis", 1 if legacy else -1)

    def one_dim(x, d):
        if hard:
            i = x.argmax(d, keepdim=True)
            return (arange(x.shape[d]).reshape([-1 if k == d else 1 for k in range(x.ndim)])
                    .to(x.device) == i).to(x.dtype)
        return F.log_softmax(x, d) if log else F.softmax(x, d)

    def run(x):
        a = axis_of(axis, x.ndim, n) if x.ndim else 0
        if legacy and a != x.ndim - 1:
            rows = int(np.prod(x.shape[:a]))
            return one_dim(x.reshape(rows, -1), 1).reshape(x.shape)
        return one_dim(x, a)
    return run


def Softmax(n: Node):
    """exp(x) / sum(exp(x)); see ``_softmax`` for the opset-dependent ``axis``."""
    return _softmax(n, False)


def LogSoftmax(n: Node):
    """log(softmax(x)); the same axis rules as Softmax."""
    return _softmax(n, True)


def Hardmax(n: Node):
    """1 at the (first) maximum along the axis, 0 elsewhere; Softmax's axis rules."""
    return _softmax(n, False, hard=True)


def _nn_ops() -> dict:
    from scratchvision.onnx import onnx_nn_ops as nn_ops
    return {name: getattr(nn_ops, name) for name in nn_ops.OPS}


_TENSOR_OPS = [
    Abs, Add, And, ArgMax, ArgMin, Atan, Cast, CastLike, Ceil, Celu, Clip, Concat,
    ConstantOfShape, Cos, CumSum, DepthToSpace, Div, Dropout, Einsum, Elu, Equal, Erf, Exp,
    Expand, Flatten, Floor, Gather, GatherElements, GatherND, Gelu, Gemm, Greater,
    GreaterOrEqual, HardSigmoid, HardSwish, Hardmax, Identity, IsInf, IsNaN, LeakyRelu, Less,
    LessOrEqual, Log, LogSoftmax, MatMul, Max, Mean, Min, Mish, Mod, Mul, Neg, NonZero, Not,
    Or, PRelu, Pad, Pow, Range, Reciprocal, ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp,
    ReduceMax, ReduceMean, ReduceMin, ReduceProd, ReduceSum, ReduceSumSquare, Relu, Reshape,
    Round, Selu, Shape, Sigmoid, Sign, Sin, Size, Slice, Softmax, Softplus, Softsign,
    SpaceToDepth, Split, Sqrt, Squeeze, Sub, Sum, Tan, Tanh, ThresholdedRelu, Tile, TopK,
    Transpose, Unsqueeze, Where, Xor,
]
_COMPARE_NAMES = {Equal: "Equal", Greater: "Greater", Less: "Less",
                  GreaterOrEqual: "GreaterOrEqual", LessOrEqual: "LessOrEqual",
                  And: "And", Or: "Or", Xor: "Xor"}

#: ONNX operator name -> builder (``Constant`` is folded by the converter).
OPS: dict = {_COMPARE_NAMES.get(f, f.__name__): f for f in _TENSOR_OPS}
OPS.update(_nn_ops())
