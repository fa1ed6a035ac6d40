"""ONNX layer operators: convolution, pooling, normalisation, Resize, RoiAlign, NMS.

Builders as in ``onnx_ops.py`` (one per operator, named as the operator; read the
attributes at convert time, return ``run``). This file holds the operators whose
attributes need arithmetic to map onto ``scratchvision.functional``:

**Padding.** ONNX lists ``pads`` as all begins then all ends, ``[y_begin, x_begin, y_end,
x_end]``, and they may differ; F.conv2d / F.max_pool2d pad both sides alike. A layer
pads ``min(begin, end)`` itself and the rest (the asymmetric part) is added explicitly
with ``F.pad`` first (zeros for Conv, -inf for MaxPool). ``auto_pad``:

* ``SAME_UPPER`` / ``SAME_LOWER``: output = ceil(in / stride); the total padding
  ``(out - 1) * stride + (k - 1) * dilation + 1 - in`` is split in half, the odd pixel at
  the end (UPPER) or at the beginning (LOWER);
* ``VALID``: no padding; ``NOTSET``: the ``pads`` attribute.

**Pool output sizes** are ONNX's ``floor`` (or ``ceil`` with ``ceil_mode=1``) of
``(in + begin + end - ((k - 1) * d + 1)) / stride + 1``, where (as onnxruntime and torch
do) a ceil-mode window that would start in the end padding is dropped. They are computed
here and reached with explicit padding when F's pools cannot pad that way themselves
(unequal pads, pads above k/2, which torch refuses). AveragePool's
divisor follows onnxruntime: with ``count_include_pad=1`` it counts the window cells
inside ``[-begin, in + end)``, with 0 only the real input cells.

**Resize** maps each output coordinate ``x`` of an axis to an input coordinate with the
``coordinate_transformation_mode`` (``s`` = scale = out / in, or the given scale):
``half_pixel`` ``(x + 0.5) / s - 0.5``; ``pytorch_half_pixel`` the same but 0 when the
output has length 1; ``align_corners`` ``x * (in - 1) / (out - 1)``; ``asymmetric``
``x / s``; ``tf_half_pixel_for_nn`` ``(x + 0.5) / s``; ``half_pixel_symmetric``
(opset 19) the half-pixel map re-centred. 'nearest' then rounds with ``nearest_mode``
(``round_prefer_floor``: halves go down; ``round_prefer_ceil``: up; ``floor``; ``ceil``)
and clamps into the input; 'linear' interpolates between ``floor`` and ``floor + 1`` of
the coordinate clamped to ``[0, in - 1]``. The arithmetic is done in float32 exactly as
onnxruntime does it (an axis with scale 1 is copied unchanged), and the result is an
``index_select`` per axis (nearest) or two index_selects and a weighted sum (linear):
differentiable, on any device. When the indices or weights are those of
``F.interpolate`` (nearest at integer factors, half-pixel/align-corners bilinear) the
fused kernel runs instead. Opset 10's Resize and Upsample (7-9) use ``asymmetric`` and
onnxruntime's legacy rounding (ceil when downsampling, floor when upsampling).
"""
from __future__ import annotations

import math

import numpy as np

import scratchvision.functional as F
from scratchvision import ops
from scratchvision.autograd.factories import cat
from scratchvision.autograd.tensor import Tensor
from scratchvision.functional.interpolate import Interpolate
from scratchvision.onnx.node import (
    Node,
    align,
    axis_of,
    host,
    host_floats,
    host_ints,
    host_scalar,
    like,
    on_host,
)

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# ---------------------------------------------------------------------- geometry
class _Geometry:
    """The spatial attributes shared by Conv, ConvTranspose and the pools."""

    def __init__(self, n: Node, kernel_required: bool, dilations: bool = True):
        self.n = n
        self.auto_pad = n.choice("auto_pad", "NOTSET", _AUTO_PAD)
        self.kernel = n.ints("kernel_shape", None)
        if kernel_required and self.kernel is None:
            n.fail("the attribute is required", "kernel_shape")
        self.strides = n.ints("strides", None)
        self.pads = n.ints("pads", None)
        self.dilations = n.ints("dilations", None) if dilations else None
        rank = len(self.kernel) if self.kernel else None
        for name, v, per in (("strides", self.strides, 1), ("pads", self.pads, 2),
                             ("dilations", self.dilations, 1)):
            if v is not None and rank is not None and len(v) != per * rank:
                n.fail(f"{len(v)} values for a {rank}-D kernel", name)
            if v is not None and rank is None:
                rank = len(v) // per
        if rank is not None and rank not in (1, 2):
            n.fail(f"{rank}-D operators are not supported (1-D and 2-D only)",
                   "kernel_shape")

    def resolve(self, in_hw, k_hw):
        """(strides, dilations, begin, end) per spatial axis for an input of ``in_hw``."""
        r = len(in_hw)
        s = self.strides or [1] * r
        d = self.dilations or [1] * r
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            begin, end = [], []
            for i in range(r):
                out = -(-in_hw[i] // s[i])
                total = max((out - 1) * s[i] + (k_hw[i] - 1) * d[i] + 1 - in_hw[i], 0)
                small = total // 2
                if self.auto_pad == "SAME_UPPER":
                    begin.append(small), end.append(total - small)
                else:
                    begin.append(total - small), end.append(small)
        elif self.auto_pad == "VALID" or self.pads is None:
            begin, end = [0] * r, [0] * r
        else:
            begin, end = list(self.pads[:r]), list(self.pads[r:])
        return list(s), list(d), begin, end


def _spatial(n: Node, x: Tensor) -> int:
    r = x.ndim - 2
    if r not in (1, 2):
        raise ValueError(f"{n.where()}: needs a 3-D (N, C, L) or 4-D (N, C, H, W) input, got "
                         f"shape {x.shape}")
    return r


def _to2d(x: Tensor) -> Tensor:
    """(N, C, L) -> (N, C, 1, L): 1-D layers run as 2-D ones of height 1."""
    return x.reshape(x.shape[:2] + (1,) + x.shape[2:])


def _pad_arg(begin, end):
    """F.pad's (left, right, top, bottom) from per-axis begins/ends (H, W order)."""
    out = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [b, e]
    return tuple(out)


def _arg(v):
    """A per-axis pair for F's layers, as one int when both are equal (F's fast path)."""
    return int(v[0]) if len(v) == 2 and v[0] == v[1] else tuple(int(i) for i in v)


def _lift2(vals, fill):
    """Per-axis values for a 1-D layer run as 2-D: (fill, v)."""
    return [fill] + list(vals) if len(vals) == 1 else list(vals)


# ---------------------------------------------------------------------- convolution
def Conv(n: Node):
    """Cross-correlation, 1-D or 2-D: ``F.conv2d`` with ``strides``, ``dilations``,
    ``group`` (default 1), ``kernel_shape`` (checked against W) and the padding rules of
    the module docstring (asymmetric pads: the difference is added with F.pad first).
    W and B are Parameters when they are constants."""
    g = _Geometry(n, kernel_required=False)
    group = n.int("group", 1)
    n.params(1, 2)
    w0 = n.const(1)
    if w0 is not None and w0.ndim not in (3, 4):
        n.fail(f"a {w0.ndim - 2}-D kernel (weight shape {w0.shape}) is not supported "
               f"(1-D and 2-D only)")

    def run(x, w, b=None):
        x, w, b = align(x, w, b)
        r = _spatial(n, x)
        if g.kernel is not None and list(w.shape[2:]) != g.kernel:
            raise ValueError(f"{n.where()}: kernel_shape {g.kernel} does not match the "
                             f"weight shape {w.shape}")
        s, d, begin, end = g.resolve(x.shape[2:], w.shape[2:])
        if r == 1:
            x, w = _to2d(x), _to2d(w)
            s, d, begin, end = _lift2(s, 1), _lift2(d, 1), _lift2(begin, 0), _lift2(end, 0)
        common = [min(bb, e) for bb, e in zip(begin, end)]
        if begin != common or end != common:
            x = F.pad(x, _pad_arg([bb - c for bb, c in zip(begin, common)],
                                  [e - c for e, c in zip(end, common)]))
        y = F.conv2d(x, w, b, stride=_arg(s), padding=_arg(common), dilation=_arg(d),
                     groups=group)
        return y.reshape(y.shape[:2] + y.shape[3:]) if r == 1 else y
    run.foldable = True      # convert.py may fold a following BatchNormalization in
    return run


def fold_bias_add(conv_run):
    """Conv followed by ``Add`` of a per-channel constant c ((1, C, 1, 1) or (C, 1, 1)),
    as one conv with bias ``b + c``: the add happens in the conv's output pass. c stays
    its own Parameter (the gradient reaches it through the reshape)."""
    def run(x, w, b, c):
        x, w, b, c = align(x, w, b, c)
        bias = c.reshape(-1) if b is None else b + c.reshape(-1)
        return conv_run(x, w, bias.to(x.dtype) if bias.dtype != x.dtype else bias)
    return run


def fold_batch_norm(conv_run, eps: float):
    """Conv followed by inference BatchNormalization, as one conv (what onnxruntime's
    graph optimiser does): with ``a = scale / sqrt(var + eps)`` per output channel,
    ``W' = W * a`` and ``b' = (b - mean) * a + B``. W', b' are computed from the
    Parameters on every call, so the gradient still reaches W, b, scale and B, and the
    state_dict keeps both layers' names."""
    def run(x, w, b, scale, beta, mean, var):
        x, w, b, scale, beta, mean, var = align(x, w, b, scale, beta, mean, var)
        a = scale / (var + eps).sqrt()
        w2 = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
        b2 = beta - mean * a if b is None else (b - mean) * a + beta
        return conv_run(x, w2, b2)
    return run


def ConvTranspose(n: Node):
    """Transposed convolution, 1-D or 2-D: ``F.conv_transpose2d``. The output size is
    ``stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - begin - end``. With
    ``output_shape`` (or ``auto_pad`` SAME_*, which asks for ``in * stride``) the total
    padding ``full - output_shape`` is solved for and split as onnxruntime does: the odd
    pixel at the end for SAME_UPPER, at the beginning otherwise; a negative total (an
    output larger than the full one) extends the end with bias-only rows. Unequal pads
    crop the full output. W is (C_in, C_out / group, kH, kW) as in torch; W and B are
    Parameters."""
    g = _Geometry(n, kernel_required=False)
    group = n.int("group", 1)
    out_pad = n.ints("output_padding", None)
    out_shape = n.ints("output_shape", None)
    n.params(1, 2)

    def run(x, w, b=None):
        x, w, b = align(x, w, b)
        r = _spatial(n, x)
        k, ins = list(w.shape[2:]), list(x.shape[2:])
        s = g.strides or [1] * r
        d = g.dilations or [1] * r
        op = out_pad or [0] * r
        full = [(ins[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 for i in range(r)]
        if out_shape is not None or g.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            want = out_shape[-r:] if out_shape is not None else [ins[i] * s[i]
                                                                 for i in range(r)]
            begin, end = [], []
            for i in range(r):
                total = full[i] + op[i] - want[i]
                head = 0 if total < 0 else total // 2 if g.auto_pad == "SAME_UPPER" else \
                    total - total // 2
                begin.append(head), end.append(total - head)
        elif g.auto_pad == "VALID" or g.pads is None:
            begin, end = [0] * r, [0] * r
        else:
            begin, end = list(g.pads[:r]), list(g.pads[r:])
        out = [full[i] + op[i] - begin[i] - end[i] for i in range(r)]
        common = [max(0, min(bb, e)) for bb, e in zip(begin, end)]   # torch's padding
        lo = [begin[i] - common[i] for i in range(r)]                # the output starts
        ext = [lo[i] + out[i] - (full[i] - 2 * common[i]) for i in range(r)]  # rows short
        fused = all(e < max(si, di) for e, si, di in zip(ext, s, d))
        op_t = [max(e, 0) if fused else 0 for e in ext]
        if r == 1:
            x, w = _to2d(x), _to2d(w)
            s, d, common, op_t = _lift2(s, 1), _lift2(d, 1), _lift2(common, 0), \
                _lift2(op_t, 0)
        y = F.conv_transpose2d(x, w, b if fused else None, stride=_arg(s),
                               padding=_arg(common), output_padding=_arg(op_t),
                               groups=group, dilation=_arg(d))
        if r == 1:
            y = y.reshape(y.shape[:2] + y.shape[3:])
        if not fused:    # output_padding beyond torch's limit: zero rows, then the bias
            y = F.pad(y, _pad_arg([0] * r, [max(e, 0) for e in ext]))
            if b is not None:
                y = y + b.reshape((-1,) + (1,) * r)
        if any(lo[i] != 0 or out[i] != y.shape[2 + i] for i in range(r)):
            y = y[(slice(None), slice(None)) + tuple(slice(lo[i], lo[i] + out[i])
                                                     for i in range(r))]
        return y
    return run


# ---------------------------------------------------------------------- pooling
def _pool_sizes(n: Node, g: _Geometry, in_hw, k, ceil_mode: int):
    """(strides, dilations, begin, end, out) per axis: ONNX's (onnxruntime's) pool sizes."""
    s, d, begin, end = g.resolve(in_hw, k)
    out = []
    for i in range(len(in_hw)):
        span = in_hw[i] + begin[i] + end[i] - ((k[i] - 1) * d[i] + 1)
        o = (-(-span // s[i]) if ceil_mode else span // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= in_hw[i] + begin[i]:
            o -= 1        # a last window starting in the end padding is dropped (as torch)
        if o < 1:
            raise ValueError(f"{n.where()}: input size {in_hw[i]} is smaller than the "
                             f"kernel {k[i]} (dilation {d[i]})")
        out.append(o)
    return s, d, begin, end, out


def _torch_out(in_, k, s, p, d, ceil_mode):
    """torch's pool output size (ceil mode drops a window starting in the right pad)."""
    span = in_ + 2 * p - d * (k - 1) - 1
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= in_ + p:
        o -= 1
    return o


def _explicit(x: Tensor, begin, k, s, d, out, value: float):
    """Pad (or crop) x so that floor-mode pooling without padding gives ``out``."""
    lo, hi = [], []
    crop = []
    for i in range(len(k)):
        need = (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - x.shape[2 + i] - begin[i]
        lo.append(begin[i]), hi.append(max(need, 0))
        crop.append(min(need, 0))
    if any(crop):
        x = x[(slice(None), slice(None)) + tuple(slice(0, x.shape[2 + i] + crop[i])
                                                 for i in range(len(k)))]
    if any(lo) or any(hi):
        x = F.pad(x, _pad_arg(lo, hi), value=value)
    return x


def MaxPool(n: Node):
    """Max over windows (1-D as height 1) with ``kernel_shape``, ``strides`` (default 1,
    not the kernel as in torch), ``dilations``, ``ceil_mode`` and the padding rules of the
    module docstring (-inf padding). The optional Indices output holds flat indices into
    the whole input tensor, ``((n * C + c) * H + h) * W + w`` (``storage_order=0``; the
    column-major order 1 is refused): ``F.max_pool2d(return_indices=True)``. Without
    Indices, on the CPU, the maximum is taken over ``kh + kw - 2`` strided views
    (``_max_of_views``: elementwise maxima, separable), several times faster there than
    the pooling kernel; the gradient is the same except at ties, which share it."""
    g = _Geometry(n, kernel_required=True)
    ceil_mode = n.int("ceil_mode", 0)
    order = n.int("storage_order", 0)
    want_idx = len(n.outputs) > 1 and n.outputs[1] != ""
    if order != 0 and want_idx:
        n.fail("column-major indices (storage_order=1) are not supported", "storage_order")

    def run(x):
        r = _spatial(n, x)
        ins = list(x.shape[2:])
        s, d, begin, end, out = _pool_sizes(n, g, ins, g.kernel, ceil_mode)
        k = list(g.kernel)
        x4 = _to2d(x) if r == 1 else x
        if r == 1:
            s, d, begin, end, out, k, ins = (_lift2(s, 1), _lift2(d, 1), _lift2(begin, 0),
                                             _lift2(end, 0), _lift2(out, 1), _lift2(k, 1),
                                             [1] + ins)
        if not want_idx and x.device == "cpu":
            y = _max_of_views(_explicit(x4, begin, k, s, d, out, -math.inf), k, s, d, out)
            return y.reshape(y.shape[:2] + y.shape[3:]) if r == 1 else y
        direct = all(begin[i] == end[i] and begin[i] <= k[i] // 2 and
                     _torch_out(ins[i], k[i], s[i], begin[i], d[i], ceil_mode) == out[i]
                     for i in range(2))
        if direct:
            res = F.max_pool2d(x4, _arg(k), _arg(s), _arg(begin), _arg(d),
                               ceil_mode=bool(ceil_mode), return_indices=want_idx)
            offset = (0, 0)
        else:
            xpad = _explicit(x4, begin, k, s, d, out, -math.inf)
            res = F.max_pool2d(xpad, _arg(k), _arg(s), 0, _arg(d),
                               return_indices=want_idx)
            offset = (begin[0], begin[1])
        if not want_idx:
            return res.reshape(res.shape[:2] + res.shape[3:]) if r == 1 else res
        y, idx = res
        i = idx.data
        if not direct:     # indices into the padded plane -> into the input plane
            wp = xpad.shape[3]
            i = (i // wp - offset[0]) * ins[1] + (i % wp - offset[1])
        N, C = y.shape[:2]
        plane = ins[0] * ins[1]
        xpm = idx.xp
        i = i + (xpm.arange(N * C, dtype=np.int64).reshape(N, C, 1, 1) * plane)
        idx = Tensor._make(i.astype(np.int64, copy=False), False)
        if r == 1:
            y, idx = y.reshape(y.shape[:2] + y.shape[3:]), idx.reshape(idx.shape[:2] +
                                                                       idx.shape[3:])
        return y, idx
    return run


def _max_of_views(x: Tensor, k, s, d, out) -> Tensor:
    """Window maxima of a padded x as elementwise maxima of strided views, separably:
    the kh row taps first (output rows, every column), then the kw column taps."""
    rows = None
    for i in range(k[0]):
        v = x[:, :, i * d[0]:i * d[0] + (out[0] - 1) * s[0] + 1:s[0], :]
        rows = v if rows is None else rows.maximum(v)
    y = None
    for j in range(k[1]):
        v = rows[:, :, :, j * d[1]:j * d[1] + (out[1] - 1) * s[1] + 1:s[1]]
        y = v if y is None else y.maximum(v)
    return y


def AveragePool(n: Node):
    """Mean over windows: ``F.avg_pool2d`` with ``kernel_shape``, ``strides`` (default 1),
    ``ceil_mode``, ``count_include_pad`` (default 0: divide by the real input cells; 1:
    also count the padding cells, not the ceil-mode overhang) and the padding rules of
    the module docstring. ``dilations`` other than 1 (opset 19) are refused."""
    g = _Geometry(n, kernel_required=True)
    if g.dilations is not None and any(v != 1 for v in g.dilations):
        n.fail(f"dilated average pooling ({g.dilations}) is not supported", "dilations")
    ceil_mode = n.int("ceil_mode", 0)
    include = n.int("count_include_pad", 0)

    def run(x):
        r = _spatial(n, x)
        ins = list(x.shape[2:])
        s, _, begin, end, out = _pool_sizes(n, g, ins, g.kernel, ceil_mode)
        k = list(g.kernel)
        x4 = _to2d(x) if r == 1 else x
        if r == 1:
            s, begin, end, out, k, ins = (_lift2(s, 1), _lift2(begin, 0), _lift2(end, 0),
                                          _lift2(out, 1), _lift2(k, 1), [1] + ins)
        direct = all(begin[i] == end[i] and begin[i] <= k[i] // 2 and
                     _torch_out(ins[i], k[i], s[i], begin[i], 1, ceil_mode) == out[i]
                     for i in range(2))
        if direct:
            y = F.avg_pool2d(x4, _arg(k), _arg(s), _arg(begin), ceil_mode=bool(ceil_mode),
                             count_include_pad=bool(include))
        else:
            # window sums over an explicitly padded input, divided by the cell counts of a
            # mask: 1 on the input (and on the declared pads when they count), 0 elsewhere
            xpad = _explicit(x4, begin, k, s, [1, 1], out, 0.0)
            total = F.avg_pool2d(xpad, _arg(k), _arg(s), 0, divisor_override=1)
            mask = np.zeros((1, 1) + tuple(xpad.shape[2:]), x.dtype)
            if include:
                mask[:, :, :begin[0] + ins[0] + end[0], :begin[1] + ins[1] + end[1]] = 1
            else:
                mask[:, :, begin[0]:begin[0] + ins[0], begin[1]:begin[1] + ins[1]] = 1
            count = F.avg_pool2d(Tensor._make(mask, False), _arg(k), _arg(s), 0,
                                 divisor_override=1)
            y = total / like(count, total)
        return y.reshape(y.shape[:2] + y.shape[3:]) if r == 1 else y
    return run


def GlobalAveragePool(n: Node):
    """Mean over all spatial dims, kept as size 1: (N, C, 1, 1)."""
    return lambda x: x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)


def GlobalMaxPool(n: Node):
    """Maximum over all spatial dims, kept as size 1."""
    return lambda x: x.amax(dim=tuple(range(2, x.ndim)), keepdim=True)


def MaxUnpool(n: Node):
    """Scatter each value of X to the flat index (into the whole output, as MaxPool's
    Indices) given by I; zeros elsewhere. Output spatial size ``(in - 1) * stride + k -
    begin - end``, or the ``output_shape`` input. Differentiable in X (``Tensor.scatter``)."""
    g = _Geometry(n, kernel_required=True, dilations=False)
    if g.auto_pad != "NOTSET":
        n.fail("auto_pad is not used by MaxUnpool", "auto_pad")
    n.static(2)

    def run(x, idx, output_shape=None):
        r = x.ndim - 2
        s, _, begin, end = g.resolve(x.shape[2:], g.kernel)
        if output_shape is not None:
            shape = tuple(host_ints(output_shape))
        else:
            shape = x.shape[:2] + tuple((x.shape[2 + i] - 1) * s[i] + g.kernel[i] - begin[i]
                                        - end[i] for i in range(r))
        flat = x.new_zeros(int(np.prod(shape)))
        i = like(Tensor._make(idx.data.reshape(-1).astype(np.int64, copy=False), False), x)
        return flat.scatter(0, i, x.reshape(-1)).reshape(shape)
    return run


def LRN(n: Node):
    """Local response normalisation across channels: ``x / (bias + alpha / size *
    sum(x^2 over the window))^beta``, the window ``[c - floor((size-1)/2), c +
    ceil((size-1)/2)]``; defaults alpha 1e-4, beta 0.75, bias 1."""
    alpha, beta = n.float("alpha", 1e-4), n.float("beta", 0.75)
    bias, size = n.float("bias", 1.0), n.int("size")

    def run(x):
        N, C = x.shape[:2]
        sq = (x * x).reshape(N, 1, C, -1)
        lo = (size - 1) // 2
        sq = F.pad(sq, (0, 0, lo, size - 1 - lo))
        total = F.avg_pool2d(sq, (size, 1), (1, 1), 0, divisor_override=1).reshape(x.shape)
        return x / (total * (alpha / size) + bias) ** beta
    return run


# ---------------------------------------------------------------------- normalisation
def BatchNormalization(n: Node):
    """Inference batch norm, ``(x - mean) / sqrt(var + epsilon) * scale + B`` per channel
    (dim 1), computed as ``x * a + (B - mean * a)`` with ``a = scale / sqrt(var + eps)``
    (one pass over x instead of F.batch_norm's four; after a Conv it is folded into the
    conv, ``fold_batch_norm``). scale and B are Parameters, mean and var buffers (the
    state_dict holds all four). ``momentum`` only matters in training and is
    ignored; ``training_mode=1`` (opset 14) and ``spatial=0`` (opset < 9) are refused.
    Extra outputs of old opsets (running/saved statistics) are the stored statistics."""
    eps = n.float("epsilon", 1e-5)
    n.attr("momentum")
    n.forbid("spatial", (1,))
    n.forbid("training_mode", (0,))
    n.forbid("is_test", (0, 1))
    n.attr("consumed_inputs")
    n.params(1, 2)
    n.buffers(3, 4)
    extra = len(n.outputs) - 1

    def run(x, scale, b, mean, var):
        x, scale, b, mean, var = align(x, scale, b, mean, var)
        # one multiply-add per element: y = x * a + c, a = scale / sqrt(var + eps)
        a = scale / (var + eps).sqrt()
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = x * a.reshape(shape) + (b - mean * a).reshape(shape)
        return (y,) + (mean, var, mean, var)[:extra] if extra else y
    run.epsilon = eps
    return run


def InstanceNormalization(n: Node):
    """Normalise each (sample, channel) over its spatial dims, then scale and shift per
    channel: ``F.group_norm`` with one group per channel."""
    eps = n.float("epsilon", 1e-5)
    n.params(1, 2)

    def run(x, scale, b):
        x, scale, b = align(x, scale, b)
        return F.group_norm(x, x.shape[1], scale, b, eps)
    return run


def LayerNormalization(n: Node):
    """Normalise over the dims from ``axis`` (default -1) to the end, then ``* scale +
    B`` (broadcast); the optional Mean and InvStdDev outputs keep the reduced dims as 1.
    ``stash_type`` (the precision of the statistics) is read; they are computed in the
    input's dtype."""
    axis, eps = n.int("axis", -1), n.float("epsilon", 1e-5)
    n.int("stash_type", 1)
    n.params(1, 2)
    k = len(n.outputs)

    def run(x, scale, b=None):
        x, scale, b = align(x, scale, b)
        a = axis_of(axis, x.ndim, n)
        dims = tuple(range(a, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        xc = x - mean
        inv = 1 / ((xc * xc).mean(dim=dims, keepdim=True) + eps).sqrt()
        y = xc * inv * scale
        if b is not None:
            y = y + b
        return (y, mean, inv)[:k] if k > 1 else y
    return run


# ---------------------------------------------------------------------- resize
_CTM = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
        "tf_half_pixel_for_nn", "half_pixel_symmetric")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source_coords(ctm: str, out: int, in_: int, scale: np.float32) -> np.ndarray:
    """Input coordinate of each output index, in float32 as onnxruntime computes it."""
    f = np.float32
    x = np.arange(out, dtype=f)
    if ctm == "asymmetric":
        return x / scale
    if ctm == "pytorch_half_pixel":
        return (x + f(0.5)) / scale - f(0.5) if out > 1 else np.zeros(out, f)
    if ctm == "tf_half_pixel_for_nn":
        return (x + f(0.5)) / scale
    if ctm == "align_corners":
        return np.zeros(out, f) if out == 1 else x * f(in_ - 1) / f(out - 1)
    if ctm == "half_pixel_symmetric":
        adjust = f(out) / (scale * f(in_))
        offset = f(in_) / f(2) * (f(1) - adjust)
        return offset + (x + f(0.5)) / scale - f(0.5)
    return (x + f(0.5)) / scale - f(0.5)       # half_pixel


def _nearest_index(coord: np.ndarray, mode: str, downsample: bool, in_: int) -> np.ndarray:
    """Round source coordinates to pixels (``mode`` '' is the legacy opset < 11 rule)."""
    if mode == "":
        idx = np.ceil(coord) if downsample else np.trunc(coord)
    elif mode == "floor":
        idx = np.floor(coord)
    elif mode == "ceil":
        idx = np.ceil(coord)
    elif mode == "round_prefer_ceil":
        idx = np.sign(coord) * np.floor(np.abs(coord) + np.float32(0.5))  # C's round()
    else:                                   # round_prefer_floor: halves go down
        half = coord == np.trunc(coord) + np.float32(0.5)
        idx = np.where(half, np.floor(coord), np.sign(coord) *
                       np.floor(np.abs(coord) + np.float32(0.5)))
    return np.clip(idx.astype(np.int64), 0, in_ - 1)


def _linear_taps(coord: np.ndarray, in_: int):
    """(i0, i1, w0, w1): onnxruntime's two taps and weights of each coordinate."""
    c = np.clip(coord, np.float32(0), np.float32(in_ - 1))
    i0 = np.minimum(c.astype(np.int64), in_ - 1)
    i1 = np.minimum(i0 + 1, in_ - 1)
    w1 = np.abs(c - i0.astype(np.float32))
    w0 = np.abs(c - i1.astype(np.float32))
    same = i0 == i1
    w0, w1 = np.where(same, np.float32(0.5), w0), np.where(same, np.float32(0.5), w1)
    return i0, i1, w0.astype(np.float32), w1.astype(np.float32)


def _torch_nearest(out: int, in_: int) -> np.ndarray:
    """The source indices of F.interpolate's 'nearest' for a given output size."""
    dst = np.arange(out)
    if out == in_:
        return dst
    if out == 2 * in_:
        return dst >> 1
    ratio = np.float32(in_) / np.float32(out)
    return np.minimum(np.floor(dst.astype(np.float32) * ratio).astype(np.int64), in_ - 1)


def _resize(n: Node, x: Tensor, out: list[int], scales: list[np.float32], ctm: str,
            mode: str, nearest_mode: str) -> Tensor:
    """Resize every axis of x to ``out`` (see the module docstring)."""
    axes = [a for a in range(x.ndim) if not (scales[a] == 1 and out[a] == x.shape[a])]
    if not axes:
        return x
    spatial4 = x.ndim == 4 and all(a >= 2 for a in axes)
    if mode == "nearest":
        idx = {a: _nearest_index(_source_coords(ctm, out[a], x.shape[a], scales[a]),
                                 nearest_mode, bool(scales[a] < 1), x.shape[a]) for a in axes}
        if spatial4 and x.dtype.kind == "f" and all(
                np.array_equal(idx[a], _torch_nearest(out[a], x.shape[a])) for a in axes):
            return F.interpolate(x, size=(out[2], out[3]), mode="nearest")
        for a in axes:
            x = x.index_select(a, idx[a])
        return x
    if spatial4 and (ctm == "half_pixel" or ctm == "pytorch_half_pixel" and
                     min(out[2], out[3]) > 1):
        return Interpolate.apply(x, (out[2], out[3]), (float(scales[2]), float(scales[3])),
                                 "bilinear", False)
    if spatial4 and ctm == "align_corners":
        return Interpolate.apply(x, (out[2], out[3]), (None, None), "bilinear", True)
    for a in axes:
        i0, i1, w0, w1 = _linear_taps(_source_coords(ctm, out[a], x.shape[a], scales[a]),
                                      x.shape[a])
        shape = [1] * x.ndim
        shape[a] = out[a]
        w0t = like(on_host(w0.reshape(shape).astype(x.dtype)), x)
        w1t = like(on_host(w1.reshape(shape).astype(x.dtype)), x)
        x = x.index_select(a, i0) * w0t + x.index_select(a, i1) * w1t
    return x


def _resize_args(n: Node, x: Tensor, scales, sizes, axes, policy: str):
    """(out sizes, float32 scales) of every axis from the scales or sizes input."""
    r = x.ndim
    ax = list(range(r)) if axes is None else [axis_of(a, r, n, "axes") for a in axes]
    out, sc = list(x.shape), [np.float32(1)] * r
    if scales is not None and len(scales):
        if len(scales) != len(ax):
            raise ValueError(f"{n.where()}: {len(scales)} scales for {len(ax)} axes")
        for a, s in zip(ax, scales):
            sc[a] = np.float32(s)
            out[a] = int(np.float32(s) * np.float32(x.shape[a]))
        return out, sc
    if sizes is None or not len(sizes):
        raise ValueError(f"{n.where()}: neither scales nor sizes is given")
    if len(sizes) != len(ax):
        raise ValueError(f"{n.where()}: {len(sizes)} sizes for {len(ax)} axes")
    if policy != "stretch":
        ratios = [np.float32(s) / np.float32(x.shape[a]) for a, s in zip(ax, sizes)]
        common = min(ratios) if policy == "not_larger" else max(ratios)
        sizes = [math.floor(float(common) * x.shape[a] + 0.5) for a in ax]
        for a in ax:
            sc[a] = common
    for a, s in zip(ax, sizes):
        out[a] = int(s)
        if policy == "stretch":
            sc[a] = np.float32(s) / np.float32(x.shape[a]) if x.shape[a] else np.float32(1)
    return out, sc


def Resize(n: Node):
    """Resize with ``mode`` 'nearest' or 'linear' ('cubic' is refused), the
    ``coordinate_transformation_mode`` and ``nearest_mode`` of the module docstring
    (tf_crop_and_resize is refused), from the ``scales`` (output = floor(in * scale)) or
    ``sizes`` input (opset 11+: inputs X, roi, scales, sizes; opset 10: X, scales).
    Opset 18: ``axes`` and ``keep_aspect_ratio_policy`` (stretch / not_larger /
    not_smaller); ``antialias=1`` is refused."""
    mode = n.choice("mode", "nearest", ("nearest", "linear"), ("cubic",))
    if n.opset >= 11:
        ctm = n.choice("coordinate_transformation_mode", "half_pixel", _CTM,
                       ("tf_crop_and_resize",))
        nearest = n.choice("nearest_mode", "round_prefer_floor", _NEAREST)
        n.float("cubic_coeff_a", -0.75)
        n.forbid("exclude_outside", (0,), " (cubic mode only)")
        n.float("extrapolation_value", 0.0)
        scales_at, sizes_at = 2, 3
    else:
        ctm, nearest, scales_at, sizes_at = "asymmetric", "", 1, None
    n.forbid("antialias", (0,))
    axes = n.ints("axes", None)
    policy = n.choice("keep_aspect_ratio_policy", "stretch",
                      ("stretch", "not_larger", "not_smaller"))
    n.static(1, 2, 3)

    def run(x, *rest):
        scales = rest[scales_at - 1] if len(rest) >= scales_at else None
        sizes = rest[sizes_at - 1] if sizes_at and len(rest) >= sizes_at else None
        sc = None if scales is None else host_floats(scales)
        sz = None if sizes is None else host_ints(sizes)
        out, s = _resize_args(n, x, sc, sz, axes, policy)
        return _resize(n, x, out, s, ctm, mode, nearest)
    return run


def Upsample(n: Node):
    """Opset 7-9 upsampling: ``scales`` (attribute in 7-8, input in 9), ``mode`` 'nearest'
    or 'linear' with the asymmetric map and the legacy rounding; deprecated for Resize."""
    mode = n.choice("mode", "nearest", ("nearest", "linear", "bilinear"))
    mode = "linear" if mode == "bilinear" else mode
    fixed = n.floats("scales", None) if n.opset < 9 else None
    if n.opset < 7:
        n.fail("Upsample before opset 7 (width_scale/height_scale) is not supported")
    n.static(1)

    def run(x, scales=None):
        sc = fixed if fixed is not None else host_floats(scales)
        out, s = _resize_args(n, x, sc, None, None, "stretch")
        return _resize(n, x, out, s, "asymmetric", mode, "")
    return run


# ---------------------------------------------------------------------- detection
def RoiAlign(n: Node):
    """RoI Align: ``ops.roi_align`` on the rows ``[batch_indices, x1, y1, x2, y2]``.
    ``coordinate_transformation_mode`` 'half_pixel' (opset 16 default) is
    ``aligned=True`` (shift by -0.5 pixel); 'output_half_pixel' (opset 10's behaviour) is
    ``aligned=False`` (legacy, RoIs at least 1x1). ``sampling_ratio`` 0 means
    ceil(bin size) samples; ``spatial_scale`` maps box to feature coordinates. Only
    ``mode='avg'``: onnxruntime's 'max' is refused. Differentiable in X."""
    n.choice("mode", "avg", ("avg",), ("max",))
    ctm = n.choice("coordinate_transformation_mode",
                   "half_pixel" if n.opset >= 16 else "output_half_pixel",
                   ("half_pixel", "output_half_pixel"))
    oh, ow = n.int("output_height", 1), n.int("output_width", 1)
    ratio, scale = n.int("sampling_ratio", 0), n.float("spatial_scale", 1.0)

    def run(x, rois, batch_indices):
        x, rois = align(x, rois)
        bi = like(batch_indices, rois).to(rois.dtype).reshape(-1, 1)
        boxes = cat([bi, rois.detach()], 1)
        return ops.roi_align(x, boxes, (oh, ow), scale, ratio, aligned=ctm == "half_pixel")
    return run


def NonMaxSuppression(n: Node):
    """Greedy NMS per (batch, class): ``ops.nms`` on the boxes scoring above
    ``score_threshold`` (strictly), suppressing IoU > ``iou_threshold`` (default 0), at most
    ``max_output_boxes_per_class`` kept (default 0: none). Boxes (B, N, 4) are [y1, x1,
    y2, x2] (any two opposite corners) with ``center_point_box=0``, [x_c, y_c, w, h] with
    1; scores (B, C, N). Output: int64 (K, 3) rows [batch, class, box index], by batch,
    class, then decreasing score."""
    center = n.choice("center_point_box", 0, (0, 1))
    n.static(2, 3, 4)

    def run(boxes, scores, max_out=None, iou=None, score_thr=None):
        k = 0 if max_out is None else int(host_scalar(max_out))
        thr = 0.0 if iou is None else float(host_scalar(iou))
        st = None if score_thr is None else float(host_scalar(score_thr))
        b, s = host(boxes).astype(np.float64), host(scores)
        if center:
            xy, wh = b[..., :2], b[..., 2:]
            b = np.concatenate([xy - wh / 2, xy + wh / 2], -1)
        else:   # [y1, x1, y2, x2] -> [x1, y1, x2, y2], corners sorted
            b = np.stack([np.minimum(b[..., 1], b[..., 3]), np.minimum(b[..., 0], b[..., 2]),
                          np.maximum(b[..., 1], b[..., 3]), np.maximum(b[..., 0], b[..., 2])],
                         -1)
        rows = []
        if k > 0:
            for bi in range(s.shape[0]):
                for c in range(s.shape[1]):
                    sc = s[bi, c]
                    cand = np.arange(sc.shape[0]) if st is None else np.nonzero(sc > st)[0]
                    if not len(cand):
                        continue
                    keep = np.asarray(ops.nms(b[bi, cand], sc[cand].astype(np.float64),
                                              thr))[:k]
                    rows += [(bi, c, int(i)) for i in cand[keep]]
        return on_host(np.array(rows, np.int64).reshape(-1, 3))
    return run


#: The operators of this file, by ONNX name (merged into ``onnx_ops.OPS``).
OPS = ["AveragePool", "BatchNormalization", "Conv", "ConvTranspose", "GlobalAveragePool",
       "GlobalMaxPool", "InstanceNormalization", "LRN", "LayerNormalization", "MaxPool",
       "MaxUnpool", "NonMaxSuppression", "Resize", "RoiAlign", "Upsample"]
