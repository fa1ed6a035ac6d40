"""The basic differentiable ops behind Tensor's operators and methods.

Each class is one ``Function``: ``forward`` on raw arrays, ``backward`` returning one
gradient per argument. Binary arithmetic broadcasts like NumPy, so each gradient is summed
back to its input's shape with ``unbroadcast``. Reductions that pick elements (amax, max)
split the gradient evenly among ties, as PyTorch's ``amax`` does; ``max(dim)`` routes it
to the one index it returns.
"""
from __future__ import annotations

import numpy as np

from scratchvision import backend
from scratchvision.autograd.function import Function, unbroadcast, xp_of
from scratchvision.kernels import activation, gemm


def _needs(fn: Function, i: int) -> bool:
    return fn.needs_input_grad[i]


class Add(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, gy):
        return (unbroadcast(gy, self.shapes[0]) if _needs(self, 0) else None,
                unbroadcast(gy, self.shapes[1]) if _needs(self, 1) else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy):
        return (unbroadcast(gy, self.shapes[0]) if _needs(self, 0) else None,
                unbroadcast(-gy, self.shapes[1]) if _needs(self, 1) else None)


class Mul(Function):
    """Saves only what the gradients need (b for a's, a for b's), as torch does, so that
    modifying the other operand in place afterwards is allowed."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        self.save_for_backward(b if _needs(self, 0) else None, a if _needs(self, 1) else None)
        return a * b

    def backward(self, gy):
        b, a = self.saved_tensors
        return (unbroadcast(gy * b, self.shapes[0]) if _needs(self, 0) else None,
                unbroadcast(gy * a, self.shapes[1]) if _needs(self, 1) else None)


class Div(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        self.save_for_backward(a if _needs(self, 1) else None, b)
        return a / b

    def backward(self, gy):
        a, b = self.saved_tensors
        ga = unbroadcast(gy / b, self.shapes[0]) if _needs(self, 0) else None
        gb = unbroadcast(-gy * a / (b * b), self.shapes[1]) if _needs(self, 1) else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, gy):
        return (-gy,)


class PowScalar(Function):
    def forward(self, a, exponent):
        self.save_for_backward(a)
        self.exponent = exponent
        return a ** exponent

    def backward(self, gy):
        (a,) = self.saved_tensors
        p = self.exponent
        return (gy * p * a ** (p - 1) if p != 0 else gy * 0,)


class PowTensor(Function):
    def forward(self, a, b):
        y = a ** b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved_tensors
        xp = xp_of(a)
        ga = unbroadcast(gy * b * a ** (b - 1), a.shape) if _needs(self, 0) else None
        gb = None
        if _needs(self, 1):  # d(a^b)/db = a^b log a, taken as 0 where a == 0
            log_a = xp.log(xp.where(a > 0, a, 1))
            gb = unbroadcast(gy * y * log_a, b.shape)
        return ga, gb


class MatMul(Function):
    """Batched matrix product with NumPy's rules (1-D operands get a dim added and removed)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dim, got shapes "
                             f"{a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                             f"(inner dims {ka} != {kb})")
        self.save_for_backward(a, b)
        return gemm.product(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        xp = xp_of(a)
        a2 = a[None, :] if a.ndim == 1 else a      # (1, K)
        b2 = b[:, None] if b.ndim == 1 else b      # (K, 1)
        g2 = gy
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if _needs(self, 0):
            ga = gemm.product(g2, xp.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if _needs(self, 1):
            gb = gemm.product(xp.swapaxes(a2, -1, -2), g2)
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


class Exp(Function):
    def forward(self, a):
        y = xp_of(a).exp(a)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (gy * y,)


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return xp_of(a).log(a)

    def backward(self, gy):
        (a,) = self.saved_tensors
        return (gy / a,)


class Sqrt(Function):
    def forward(self, a):
        y = xp_of(a).sqrt(a)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (gy / (2 * y),)


class Abs(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return xp_of(a).abs(a)

    def backward(self, gy):
        (a,) = self.saved_tensors
        return (gy * xp_of(a).sign(a),)


class Clamp(Function):
    """Gradient passes where lo <= x <= hi (inclusive, as torch.clamp)."""

    def forward(self, a, lo=None, hi=None):
        self.save_for_backward(a)
        self.lo, self.hi = lo, hi
        return xp_of(a).clip(a, lo, hi)

    def backward(self, gy):
        (a,) = self.saved_tensors
        mask = np.True_
        if self.lo is not None:
            mask = a >= self.lo
        if self.hi is not None:
            mask = mask & (a <= self.hi)
        return (gy * mask,)


class ReLU(Function):
    def forward(self, a):
        y = xp_of(a).maximum(a, 0)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (activation.relu_backward(gy, y),)      # gy * (y > 0), one pass


class LeakyReLU(Function):
    def forward(self, a, negative_slope=0.01):
        self.save_for_backward(a)
        self.slope = negative_slope
        return activation.leaky_relu_forward(a, negative_slope)   # where(a > 0, a, s a)

    def backward(self, gy):
        (a,) = self.saved_tensors
        return (activation.leaky_relu_backward(gy, a, self.slope),)


class Sigmoid(Function):
    def forward(self, a):
        xp = xp_of(a)
        # Stable in both tails: exp of a non-positive number only.
        e = xp.exp(-xp.abs(a))
        y = xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (gy * y * (1 - y),)


class Tanh(Function):
    def forward(self, a):
        y = xp_of(a).tanh(a)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (gy * (1 - y * y),)


def _expand_back(g, in_shape, dim, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input."""
    if dim is None:
        return g.reshape((1,) * len(in_shape)) if not keepdim else g
    if keepdim:
        return g
    shape = list(in_shape)
    for d in dim:
        shape[d] = 1
    return g.reshape(shape)


def _count(shape, dim) -> int:
    if dim is None:
        return int(np.prod(shape))
    return int(np.prod([shape[d] for d in dim]))


class Sum(Function):
    def forward(self, a, dim=None, keepdim=False):
        self.in_shape, self.dim, self.keepdim = a.shape, dim, keepdim
        return xp_of(a).asarray(a.sum(axis=dim, keepdims=keepdim))

    def backward(self, gy):
        g = _expand_back(gy, self.in_shape, self.dim, self.keepdim)
        return (xp_of(gy).broadcast_to(g, self.in_shape).copy(),)


class Mean(Function):
    def forward(self, a, dim=None, keepdim=False):
        self.in_shape, self.dim, self.keepdim = a.shape, dim, keepdim
        return xp_of(a).asarray(a.mean(axis=dim, keepdims=keepdim))

    def backward(self, gy):
        g = _expand_back(gy, self.in_shape, self.dim, self.keepdim) / _count(self.in_shape,
                                                                             self.dim)
        return (xp_of(gy).broadcast_to(g, self.in_shape).astype(gy.dtype),)


class Var(Function):
    """Variance with Bessel's ``correction`` (1 = unbiased, torch's default)."""

    def forward(self, a, dim=None, correction=1, keepdim=False):
        self.in_shape, self.dim, self.keepdim = a.shape, dim, keepdim
        n = _count(a.shape, dim)
        self.denom = max(n - correction, 0)
        centred = a - a.mean(axis=dim, keepdims=True)
        self.save_for_backward(centred)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp_of(a).asarray((centred * centred).sum(axis=dim, keepdims=keepdim)
                                    / self.denom).astype(a.dtype)

    def backward(self, gy):
        (centred,) = self.saved_tensors
        g = _expand_back(gy, self.in_shape, self.dim, self.keepdim)
        return (g * 2 * centred / self.denom,)


class AMax(Function):
    """amax/amin over dims; the gradient is shared evenly among tied extreme elements."""

    def forward(self, a, dim=None, keepdim=False, mode="max"):
        if a.size == 0:
            raise ValueError(f"a{mode}() of an empty tensor of shape {a.shape}")
        self.in_shape, self.dim, self.keepdim = a.shape, dim, keepdim
        y = a.max(axis=dim, keepdims=True) if mode == "max" else a.min(axis=dim, keepdims=True)
        self.save_for_backward(a, y)
        out = y if keepdim else (y.reshape(()) if dim is None else y.squeeze(axis=dim))
        return xp_of(a).asarray(out)

    def backward(self, gy):
        a, y = self.saved_tensors
        hit = a == y
        ties = hit.sum(axis=self.dim, keepdims=True)
        g = _expand_back(gy, self.in_shape, self.dim, self.keepdim)
        return ((g * hit / ties).astype(gy.dtype),)


class MaxAlongDim(Function):
    """max/min along one dim returning values; ``self.indices`` holds the argmax (first tie)."""

    def forward(self, a, dim, keepdim=False, mode="max"):
        xp = xp_of(a)
        if a.shape[dim] == 0:
            raise ValueError(f"{mode}(dim={dim}) over an empty dim of shape {a.shape}")
        idx = a.argmax(axis=dim) if mode == "max" else a.argmin(axis=dim)
        idx = xp.expand_dims(idx, dim)
        values = xp.take_along_axis(a, idx, axis=dim)
        self.in_shape, self.dim, self.idx = a.shape, dim, idx
        self.keepdim = keepdim
        self.indices = (idx if keepdim else idx.squeeze(axis=dim)).astype(np.int64)
        return values if keepdim else values.squeeze(axis=dim)

    def backward(self, gy):
        xp = xp_of(gy)
        g = gy if self.keepdim else xp.expand_dims(gy, self.dim)
        ga = xp.zeros(self.in_shape, dtype=gy.dtype)
        xp.put_along_axis(ga, self.idx, g, axis=self.dim)
        return (ga,)


class Reshape(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: shape {tuple(shape)} is invalid for a tensor of shape "
                             f"{a.shape} ({a.size} elements)") from None

    def backward(self, gy):
        return (gy.reshape(self.in_shape),)


class Permute(Function):
    def forward(self, a, dims):
        self.inverse = tuple(np.argsort(dims))
        return a.transpose(dims)

    def backward(self, gy):
        return (gy.transpose(self.inverse),)


class Expand(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return xp_of(a).broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {a.shape} to {tuple(shape)}") from None

    def backward(self, gy):
        return (unbroadcast(gy, self.in_shape),)


class GetItem(Function):
    """Indexing by ints, slices, None, Ellipsis, integer and boolean arrays.

    Backward scatters the gradient back with ``add.at``, so an index that selects the
    same element twice accumulates twice, as it must.
    """

    def forward(self, a, index):
        if backend.is_cupy_array(a):  # numpy index arrays must move to the device too
            xp = xp_of(a)
            items = index if isinstance(index, tuple) else (index,)
            items = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in items)
            index = items if isinstance(index, tuple) else items[0]
        self.in_shape, self.index, self.dtype = a.shape, index, a.dtype
        if _is_basic_index(index) and not _has_ellipsis(index):
            # x[0, 1] would give a NumPy scalar (a copy); with a trailing Ellipsis it is a
            # 0-d view, so in-place ops on x[0, 1] write through to x, as in torch
            return a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return a[index]

    def backward(self, gy):
        xp = xp_of(gy)
        ga = xp.zeros(self.in_shape, dtype=gy.dtype)
        if _is_basic_index(self.index):
            ga[self.index] = gy  # views never repeat an element: plain assignment
        elif backend.is_cupy_array(gy):
            import cupyx  # noqa: PLC0415
            cupyx.scatter_add(ga, self.index, gy)
        else:
            np.add.at(ga, self.index, gy)
        return (ga,)


def _has_ellipsis(index) -> bool:
    return any(i is Ellipsis for i in (index if isinstance(index, tuple) else (index,)))


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items)


class Cat(Function):
    def forward(self, *arrays, dim=0):
        xp = xp_of(*arrays)
        self.sizes = [a.shape[dim] for a in arrays]
        self.dim = dim
        return xp.concatenate(arrays, axis=dim)

    def backward(self, gy):
        xp = xp_of(gy)
        bounds = np.cumsum(self.sizes)[:-1].tolist()
        pieces = xp.split(gy, bounds, axis=self.dim)
        return tuple(p if n else None for p, n in zip(pieces, self.needs_input_grad))


class Stack(Function):
    def forward(self, *arrays, dim=0):
        self.dim = dim
        return xp_of(*arrays).stack(arrays, axis=dim)

    def backward(self, gy):
        xp = xp_of(gy)
        return tuple(xp.take(gy, i, axis=self.dim) if n else None
                     for i, n in enumerate(self.needs_input_grad))


class Where(Function):
    def forward(self, cond, a, b):
        self.cond = cond
        self.shapes = (a.shape, b.shape)
        return xp_of(a, b).where(cond, a, b)

    def backward(self, gy):
        xp = xp_of(gy)
        zero = xp.zeros((), dtype=gy.dtype)
        ga = unbroadcast(xp.where(self.cond, gy, zero), self.shapes[0]) if _needs(self, 1) \
            else None
        gb = unbroadcast(xp.where(self.cond, zero, gy), self.shapes[1]) if _needs(self, 2) \
            else None
        return None, ga, gb


class Pad(Function):
    """Constant, reflect or replicate padding; ``pad`` lists (before, after) from the last dim."""

    def forward(self, a, pad, mode="constant", value=0.0):
        xp = xp_of(a)
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ValueError(f"pad: {pad} must list an even number of sizes for at most "
                             f"{a.ndim} dims")
        widths = [(0, 0)] * a.ndim
        for i in range(len(pad) // 2):
            widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        self.widths, self.mode, self.in_shape = widths, mode, a.shape
        if any(lo < 0 or hi < 0 for lo, hi in widths):
            raise ValueError(f"pad: negative sizes {pad} are not supported")
        if mode == "constant":
            return xp.pad(a, widths, mode="constant", constant_values=value)
        if mode == "reflect":
            for (lo, hi), n in zip(widths, a.shape):
                if lo >= n or hi >= n:
                    raise ValueError(f"pad: reflect padding {pad} must be smaller than the "
                                     f"input size, got shape {a.shape}")
            return xp.pad(a, widths, mode="reflect")
        if mode == "replicate":
            return xp.pad(a, widths, mode="edge")
        raise ValueError(f"pad: unknown mode {mode!r} (constant, reflect, replicate)")

    def backward(self, gy):
        xp = xp_of(gy)
        if self.mode == "constant":
            inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.widths, self.in_shape))
            return (gy[inner].copy(),)
        # reflect/replicate: every output element came from one input element; add them back
        index = xp.arange(int(np.prod(self.in_shape))).reshape(self.in_shape)
        src = xp.pad(index, self.widths, mode="reflect" if self.mode == "reflect" else "edge")
        ga = xp.zeros(int(np.prod(self.in_shape)), dtype=gy.dtype)
        if backend.is_cupy_array(gy):
            import cupyx  # noqa: PLC0415
            cupyx.scatter_add(ga, src.ravel(), gy.ravel())
        else:
            np.add.at(ga, src.ravel(), gy.ravel())
        return (ga.reshape(self.in_shape),)


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, gy):
        return (gy,)


class Cast(Function):
    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, gy):
        return (gy.astype(self.in_dtype),)


class ToDevice(Function):
    def forward(self, a, device):
        self.in_device = backend.device_of(a)
        return backend.to_device(a, device)

    def backward(self, gy):
        return (backend.to_device(gy, self.in_device),)


class Remainder(Function):
    """``a % b`` with the sign of ``b`` (Python's and torch's rule); d/da = 1,
    d/db = -floor(a / b)."""

    def forward(self, a, b):
        xp = xp_of(a, b)
        self.save_for_backward(a, b)
        self.shapes = (a.shape, b.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.asarray(xp.remainder(a, b))

    def backward(self, gy):
        a, b = self.saved_tensors
        xp = xp_of(gy)
        ga = unbroadcast(gy, self.shapes[0]) if _needs(self, 0) else None
        gb = None
        if _needs(self, 1):
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(-gy * xp.floor(a / b), self.shapes[1])
        return ga, gb


class Rounding(Function):
    """floor, ceil, trunc, round (half to even) and sign: piecewise constant, so the
    gradient is zero everywhere (torch's convention, also at the jumps)."""

    def forward(self, a, kind, decimals=0):
        xp = xp_of(a)
        self.in_shape = a.shape
        if kind == "sign":
            return xp.sign(a)
        if a.dtype.kind != "f":        # rounding an integer tensor leaves it as it is
            return a.copy()
        if kind == "round":
            return xp.round(a, decimals)
        return {"floor": xp.floor, "ceil": xp.ceil, "trunc": xp.trunc}[kind](a)

    def backward(self, gy):
        return (xp_of(gy).zeros(self.in_shape, dtype=gy.dtype),)


class Maximum(Function):
    """Elementwise maximum/minimum of two tensors; where they tie, each gets half the
    gradient (as torch.maximum). NaN propagates."""

    def forward(self, a, b, mode="max"):
        xp = xp_of(a, b)
        self.save_for_backward(a, b)
        self.mode = mode
        return xp.maximum(a, b) if mode == "max" else xp.minimum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        wins_a = (a > b) if self.mode == "max" else (a < b)
        tie = a == b
        share_a = wins_a + 0.5 * tie                  # 1, 0.5 or 0
        ga = unbroadcast(gy * share_a, a.shape) if _needs(self, 0) else None
        gb = unbroadcast(gy * (1 - share_a), b.shape) if _needs(self, 1) else None
        return (ga.astype(gy.dtype) if ga is not None else None,
                gb.astype(gy.dtype) if gb is not None else None)


class Norm(Function):
    """The p-norm over ``dim``: (sum |x|^p)^(1/p); p = inf is max |x|.

    d/dx = sign(x) |x|^(p-1) / y^(p-1). Where y = 0 the gradient is 0 (torch's
    subgradient); for p = inf it is shared evenly among the tied largest |x|."""

    def forward(self, a, p=2.0, dim=None, keepdim=False):
        xp = xp_of(a)
        self.in_shape, self.dim, self.keepdim, self.p = a.shape, dim, keepdim, p
        absa = xp.abs(a)
        if p == np.inf:
            y = absa.max(axis=dim, keepdims=True) if a.size else xp.zeros((1,) * a.ndim,
                                                                           a.dtype)
        elif p == 2.0:
            y = xp.sqrt((a * a).sum(axis=dim, keepdims=True))
        elif p == 1.0:
            y = absa.sum(axis=dim, keepdims=True)
        else:
            y = (absa ** p).sum(axis=dim, keepdims=True) ** (1.0 / p)
        self.save_for_backward(a, y)
        out = y if keepdim else (y.reshape(()) if dim is None else y.squeeze(axis=dim))
        return xp.asarray(out).astype(a.dtype, copy=False)

    def backward(self, gy):
        a, y = self.saved_tensors
        xp = xp_of(gy)
        g = _expand_back(gy, self.in_shape, self.dim, self.keepdim)
        safe_y = xp.where(y == 0, 1, y)
        if self.p == np.inf:
            hit = (xp.abs(a) == y) & (y > 0)
            ga = g * xp.sign(a) * hit / xp.maximum(hit.sum(axis=self.dim, keepdims=True), 1)
        elif self.p == 2.0:
            ga = g * a / safe_y
        elif self.p == 1.0:
            ga = g * xp.sign(a)
        else:
            ga = g * xp.sign(a) * xp.abs(a) ** (self.p - 1) / safe_y ** (self.p - 1)
        ga = xp.where(y == 0, 0, ga) if self.p != 1.0 else ga
        return (xp.broadcast_to(ga, self.in_shape).astype(gy.dtype),)


class IndexPut(Function):
    """``out = a.copy(); out[index] = value``: the op behind ``x[index] = value`` in the
    graph. The old value's gradient is zero where it was overwritten; ``value`` gets the
    gradient of the positions it was written to (summed over broadcast dims)."""

    def forward(self, a, value, index):
        out = a.copy()
        out[index] = value
        self.index, self.value_shape = index, value.shape
        return out

    def backward(self, gy):
        ga = gv = None
        if _needs(self, 0):
            ga = gy.copy()
            ga[self.index] = 0
        if _needs(self, 1):
            gv = unbroadcast(gy[self.index], self.value_shape)
        return ga, gv


class Einsum(Function):
    """``einsum(equation, *operands)`` in explicit form (``'ij,jk->ik'``; the caller
    normalises implicit forms and ellipses). The gradient of operand i is itself an
    einsum: the output gradient contracted with the other operands, back to operand i's
    subscripts; letters that appear only in operand i were summed away, so that gradient
    is broadcast back along them."""

    def forward(self, *operands, equation):
        xp = xp_of(*operands)
        inputs, output = equation.split("->")
        self.subs, self.out_sub = inputs.split(","), output
        for sub in self.subs:
            if len(set(sub)) != len(sub):
                raise ValueError(f"einsum: repeated subscripts within one operand ({sub!r}, "
                                 "a diagonal) are not differentiable here")
        self.save_for_backward(*operands)
        return xp.asarray(xp.einsum(equation, *operands))

    def backward(self, gy):
        operands = self.saved_tensors
        xp = xp_of(gy)
        grads = []
        for i, sub in enumerate(self.subs):
            if not _needs(self, i):
                grads.append(None)
                continue
            others = [(s, op) for j, (s, op) in enumerate(zip(self.subs, operands)) if j != i]
            present = set(self.out_sub).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in sub if c in present)
            eq = ",".join([self.out_sub] + [s for s, _ in others]) + "->" + kept
            g = xp.einsum(eq, gy, *[op for _, op in others])   # letters of `kept`
            # letters summed only inside operand i: size-1 axes, then broadcast back
            shape = operands[i].shape
            g = g.reshape([n if c in present else 1 for n, c in zip(shape, sub)])
            full = xp.broadcast_to(g, shape).astype(gy.dtype)
            grads.append(full)
        return tuple(grads)


class Sin(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return xp_of(a).sin(a)

    def backward(self, gy):
        (a,) = self.saved_tensors
        return (gy * xp_of(a).cos(a),)


class Cos(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return xp_of(a).cos(a)

    def backward(self, gy):
        (a,) = self.saved_tensors
        return (-gy * xp_of(a).sin(a),)


class Atan2(Function):
    """atan2(a, b), the angle of the point (b, a); d/da = b / r^2, d/db = -a / r^2."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return xp_of(a, b).arctan2(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        r2 = a * a + b * b
        r2 = xp_of(r2).where(r2 == 0, 1, r2)
        return (unbroadcast(gy * b / r2, a.shape) if _needs(self, 0) else None,
                unbroadcast(-gy * a / r2, b.shape) if _needs(self, 1) else None)


class Log1p(Function):
    """log(1 + x), accurate for small x (``1 + x`` would round x away in float32)."""

    def forward(self, a):
        self.save_for_backward(a)
        return xp_of(a).log1p(a)

    def backward(self, gy):
        (a,) = self.saved_tensors
        return (gy / (1 + a),)


class Expm1(Function):
    """exp(x) - 1, accurate for small x."""

    def forward(self, a):
        y = xp_of(a).expm1(a)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return (gy * (y + 1),)
