"""2-D convolution and transposed convolution kernels: validation, dispatch, algorithm choice.

Arrays in, arrays out (NCHW, float32 or float64). Every algorithm module (``reference``,
``im2col``, ``direct``, ``winograd``, ``cuda``) has the same three functions with the same
signatures::

    conv2d_forward(x, W, b, stride, padding, dilation, groups) -> y
    conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups) -> gx
    conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups) -> gW

(the bias gradient is ``gy.sum((0, 2, 3))``). The functions here add ``impl=`` and own the
input checks, the empty-input early returns and contiguity, so the algorithms stay pure
arithmetic.

**Transposed convolution is conv2d's adjoint.** A convolution is a linear map
``y = C x`` from ``(N, Cin, H, W)`` to ``(N, Cout, oh, ow)``; ``conv2d_backward_input`` applies
``C^T``. ``conv_transpose2d(x, W)`` is *defined* as ``C^T x`` for the convolution ``C`` whose
weight is ``W`` (shape ``(Cin_t, Cout_t/groups, kh, kw)`` = conv2d's ``(Cout, Cin/groups, ..)``
with the roles of the channels exchanged). Each input pixel of the transposed conv is an
output pixel of ``C``, and ``C^T`` sends it back to the ``kh*kw`` pixels that ``C`` read from,
weighted by ``W``: exactly the "scatter a copy of the kernel at stride spacing" picture. So::

    conv_transpose2d_forward(x, W)     = conv2d_backward_input(gy=x, W, y_shape)
    its input gradient  (C^T)^T gy     = conv2d_forward(gy, W)
    its weight gradient                = conv2d_backward_weight(gy=x, x=gy, W_shape)
                                         (conv2d's roles swapped: x plays the output)

The output size inverts conv2d's ``oh = (H + 2p - d(k-1) - 1) // s + 1``. Solving for the
input size gives ``(oh-1)*s - 2p + d(k-1) + 1`` plus a remainder ``r`` in ``[0, s)`` lost to
the floor division; ``output_padding`` picks it::

    H_out = (H - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1

(torch accepts ``output_padding < max(stride, dilation)``; the extra rows then simply get
no contribution from rows of ``C`` that do not exist, and the adjoint view still holds.)

**Default algorithm**: ``choose_algorithm`` holds the rule and the measurements behind it
(``benchmarks/conv.py`` times every algorithm on the issue's shapes beside torch).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from scratchvision.backend import (check_same_device, default_gpu_impl, get_array_module,
                                   is_cupy_array)
from scratchvision.kernels.versions import contiguous
from scratchvision.kernels.conv import direct, im2col, reference, winograd
from scratchvision.kernels.conv._common import conv_output_size, conv_transpose_output_size
from scratchvision.kernels.conv.im2col import (release_workspace, set_workspace_limit,
                                               workspace_limit)

ALGORITHMS = ("reference", "im2col", "direct", "winograd", "cuda", "cuda_atomic")
CPU_ALGORITHMS = ("reference", "im2col", "direct", "winograd")

__all__ = ["ALGORITHMS", "CPU_ALGORITHMS", "choose_algorithm", "conv2d_backward_input",
           "conv2d_backward_weight", "conv2d_forward", "conv2d_output_shape",
           "conv_transpose2d_backward_input", "conv_transpose2d_backward_weight",
           "conv_transpose2d_forward", "conv_transpose2d_output_shape",
           "conv_output_size", "conv_transpose_output_size", "release_workspace",
           "set_workspace_limit",
           "winograd_applicable", "workspace_limit"]


# ----------------------------------------------------------------------------- checks
def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints -> (int, int), each >= minimum, else a clear error."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (isinstance(value, Sequence) and len(value) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _shape4(shape, name: str, layout: str) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"{name} must be 4-D {layout}, got shape {shape}")
    if min(shape) < 0:
        raise ValueError(f"{name} has a negative dimension: {shape}")
    return shape  # type: ignore[return-value]


def _float_dtype(*named) -> np.dtype:
    """The common floating dtype of the named arrays (float32/float64), else TypeError;
    arrays on different devices are a ValueError."""
    check_same_device("conv", **{name: a for name, a in named})
    dtypes = {name: np.dtype(a.dtype) for name, a in named if a is not None}
    first = next(iter(dtypes.values()))
    if first not in (np.float32, np.float64) or len(set(dtypes.values())) != 1:
        raise TypeError("conv2d needs float32 or float64 arrays of one dtype, got "
                        + ", ".join(f"{k} {v}" for k, v in dtypes.items()))
    return first


def _check_conv(x_shape, W_shape, stride, padding, dilation, groups):
    """Validate conv2d geometry; returns normalised (stride, padding, dilation, groups, y_shape)."""
    x_shape = _shape4(x_shape, "input", "(N, C, H, W)")
    W_shape = _shape4(W_shape, "weight", "(out_channels, in_channels/groups, kH, kW)")
    stride = _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C, H, Wd = x_shape
    Co, Cg, kh, kw = W_shape
    if C % groups or Co % groups:
        raise ValueError(f"in_channels ({C}) and out_channels ({Co}) must both be divisible "
                         f"by groups ({groups}); input {x_shape}, weight {W_shape}")
    if Cg * groups != C:
        raise ValueError(f"weight {W_shape} expects {Cg * groups} input channels "
                         f"(in_channels/groups = {Cg}, groups = {groups}), input {x_shape} "
                         f"has {C}")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be >= 1, got weight {W_shape}")
    eff = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if eff[0] > H + 2 * padding[0] or eff[1] > Wd + 2 * padding[1]:
        raise ValueError(f"kernel {kh}x{kw} with dilation {dilation} spans {eff[0]}x{eff[1]} "
                         f"pixels, larger than the padded input {H + 2 * padding[0]}x"
                         f"{Wd + 2 * padding[1]} (input {x_shape}, padding {padding})")
    oh = conv_output_size(H, kh, stride[0], padding[0], dilation[0])
    ow = conv_output_size(Wd, kw, stride[1], padding[1], dilation[1])
    return stride, padding, dilation, groups, (N, Co, oh, ow)


def _check_transpose(x_shape, W_shape, stride, padding, output_padding, groups, dilation):
    """Validate conv_transpose2d geometry; returns normalised params and the output shape."""
    x_shape = _shape4(x_shape, "input", "(N, C_in, H, W)")
    W_shape = _shape4(W_shape, "weight", "(in_channels, out_channels/groups, kH, kW)")
    stride = _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    output_padding = _pair(output_padding, "output_padding", 0)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C, H, Wd = x_shape
    Ci, Cog, kh, kw = W_shape
    if C != Ci:
        raise ValueError(f"weight {W_shape} expects {Ci} input channels, input {x_shape} has {C}")
    if C % groups:
        raise ValueError(f"in_channels ({C}) must be divisible by groups ({groups})")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be >= 1, got weight {W_shape}")
    for a in range(2):
        if output_padding[a] >= max(stride[a], dilation[a]):
            raise ValueError(f"output_padding {output_padding} must be smaller than "
                             f"max(stride, dilation) = max({stride}, {dilation}) per axis")
    Ho = conv_transpose_output_size(H, kh, stride[0], padding[0], output_padding[0],
                                    dilation[0])
    Wo = conv_transpose_output_size(Wd, kw, stride[1], padding[1], output_padding[1],
                                    dilation[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv_transpose2d output size {Ho}x{Wo} is not positive (input "
                         f"{x_shape}, weight {W_shape}, stride {stride}, padding {padding}, "
                         f"dilation {dilation}, output_padding {output_padding})")
    return stride, padding, output_padding, groups, dilation, (N, Cog * groups, Ho, Wo)


# -------------------------------------------------------------------------- dispatch
def winograd_applicable(W_shape, stride, dilation) -> bool:
    """True for 3x3 kernels at stride 1 and dilation 1 (what F(2x2,3x3) computes)."""
    return (tuple(W_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1))


def choose_algorithm(x_shape, W_shape, stride, padding, dilation, groups,
                     which: str = "forward") -> str:
    """The default CPU algorithm for one call: a fixed rule from measurements.

    ``which`` is ``'forward'``, ``'input'`` (input gradient) or ``'weight'``.

    Measured 2026-11-26 on the 2-core dev machine (OpenBLAS SGEMM ~100 GFLOP/s per core),
    single-threaded CPU time (the machine was shared, so wall-clock was too noisy), batch
    2, float32; milliseconds forward / input grad / weight grad:

    ======================================  ===============  ===============  ===============
    shape (C->Cout, HxW, k3 s1 p1)          im2col           winograd         direct
    ======================================  ===============  ===============  ===============
    64->64, 56x56                           7.2 / 6.3 / 8.1  6.7 / 7.0 / -    -
    128->128, 28x28                         6.3 / 5.6 / 7.0  4.6 / 4.7 / -    -
    256->256, 14x14                         6.4 / 5.7 / 7.0  4.2 / 5.4 / -    -
    32->32, 56x56                           2.3 / 1.9 / 2.9  2.2 / 2.4 / -    -
    16->16, 56x56                           0.5 / 0.5 / 0.9  1.1 / 0.8 / -    1.3 / 1.4 / 2.2
    depthwise 64, 56x56 (Cg = 1)            1.2 / 5.2 / 1.7  -                0.5 / 0.4 / 0.6
    depthwise 64->128, stride 2 (Cg = 1)    0.4 / 1.0 / 0.4  -                0.6 / 1.7 / 0.8
    groups 16 (Cg = 4), 56x56               2.0 / 2.1 / 1.7  -                1.6 / 1.5 / 2.3
    groups 8 (Cg = 8), 56x56                2.8 / 1.8 / 3.9  -                2.8 / 2.6 / 4.7
    ======================================  ===============  ===============  ===============

    Rule:

    * grouped, stride 1, at most 4 input channels per group (depthwise included):
      ``direct`` for the forward pass and the input gradient (no 9x column copy, no GEMM
      with a 9-long inner dimension), and for the weight gradient when depthwise
      (``Cg = 1``). At stride > 1 the direct loops lose their unit-stride vectorisation
      and im2col wins;
    * 3x3, stride 1, dilation 1 with at least 64 input and output channels per group:
      ``winograd`` forward; for the input gradient only from 128 channels (its flipped
      filters cost a second transform, which only wide layers amortise);
    * everything else, and the other weight gradients (Winograd's is im2col's):
      ``im2col``.
    """
    Co, Cg = int(W_shape[0]), int(W_shape[1])
    Cog = Co // groups
    if groups > 1 and tuple(stride) == (1, 1) and Cg <= (1 if which == "weight" else 4):
        return "direct"
    if which == "weight":
        return "im2col"
    wide = 64 if which == "forward" else 128
    if winograd_applicable(W_shape, stride, dilation) and Cg >= wide and Cog >= wide:
        return "winograd"
    return "im2col"


def _module(impl, arr, x_shape, W_shape, stride, padding, dilation, groups, which):
    """The algorithm module for this call (validating ``impl``)."""
    if impl is None:
        impl = default_gpu_impl() if is_cupy_array(arr) else choose_algorithm(
            x_shape, W_shape, stride, padding, dilation, groups, which)
    if impl not in ALGORITHMS:
        raise ValueError(f"impl must be None or one of {ALGORITHMS}, got {impl!r}")
    if impl in ("cuda", "cuda_atomic"):
        from scratchvision.kernels.conv import cuda  # noqa: PLC0415  (numba.cuda on demand)
        return cuda if impl == "cuda" else cuda.ATOMIC
    if is_cupy_array(arr):
        raise ValueError(f"impl={impl!r} is a CPU algorithm but the arrays are CuPy arrays; "
                         "use impl=None or 'cuda'")
    if impl == "winograd" and not winograd_applicable(W_shape, stride, dilation):
        raise ValueError(f"impl='winograd' needs a 3x3 kernel, stride 1 and dilation 1; got "
                         f"weight {tuple(W_shape)}, stride {stride}, dilation {dilation}")
    return {"reference": reference, "im2col": im2col, "direct": direct,
            "winograd": winograd}[impl]


_contig = contiguous


# ---------------------------------------------------------------------- conv2d API
def conv2d_output_shape(x_shape, W_shape, stride=1, padding=0, dilation=1, groups=1):
    """Shape of conv2d's output (validating the geometry like ``conv2d_forward``)."""
    return _check_conv(x_shape, W_shape, stride, padding, dilation, groups)[4]


def conv2d_forward(x, W, b, stride, padding, dilation, groups, impl=None):
    """2-D convolution (cross-correlation) of x (N, C, H, W) with W (Cout, C/groups, kH, kW).

    ``b`` is (Cout,) or None; stride/padding/dilation are ints or (h, w) pairs. Returns
    y (N, Cout, oh, ow) with ``oh = (H + 2*ph - dh*(kH-1) - 1) // sh + 1``.
    """
    dtype = _float_dtype(("input", x), ("weight", W), ("bias", b))
    stride, padding, dilation, groups, y_shape = _check_conv(x.shape, W.shape, stride, padding,
                                                             dilation, groups)
    if b is not None and tuple(b.shape) != (W.shape[0],):
        raise ValueError(f"bias must have shape ({W.shape[0]},), got {tuple(b.shape)}")
    xp = get_array_module(x)
    if x.size == 0 or W.size == 0:
        y = xp.zeros(y_shape, dtype)
        return y + b.reshape(1, -1, 1, 1) if b is not None and y.size else y
    mod = _module(impl, x, x.shape, W.shape, stride, padding, dilation, groups, "forward")
    return mod.conv2d_forward(_contig(x), _contig(W), _contig(b), stride, padding, dilation,
                              groups)


def _backward_input(gy, W, x_shape, stride, padding, dilation, groups, impl):
    """Dispatch the input gradient (checked geometry; gy may be smaller than conv's output)."""
    if gy.size == 0 or W.size == 0 or int(np.prod(x_shape)) == 0:
        return get_array_module(gy).zeros(x_shape, gy.dtype)
    mod = _module(impl, gy, x_shape, W.shape, stride, padding, dilation, groups, "input")
    return mod.conv2d_backward_input(_contig(gy), _contig(W), tuple(x_shape), stride, padding,
                                     dilation, groups)


def _backward_weight(gy, x, W_shape, stride, padding, dilation, groups, impl):
    """Dispatch the weight gradient (checked geometry)."""
    if gy.size == 0 or x.size == 0 or int(np.prod(W_shape)) == 0:
        return get_array_module(x).zeros(W_shape, x.dtype)
    mod = _module(impl, x, x.shape, W_shape, stride, padding, dilation, groups, "weight")
    return mod.conv2d_backward_weight(_contig(gy), _contig(x), tuple(W_shape), stride, padding,
                                      dilation, groups)


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups, impl=None):
    """Gradient of conv2d with respect to its input: gx of shape ``x_shape``."""
    _float_dtype(("grad_output", gy), ("weight", W))
    stride, padding, dilation, groups, y_shape = _check_conv(x_shape, W.shape, stride, padding,
                                                             dilation, groups)
    if tuple(gy.shape) != y_shape:
        raise ValueError(f"grad_output must have conv2d's output shape {y_shape}, got "
                         f"{tuple(gy.shape)}")
    return _backward_input(gy, W, tuple(int(s) for s in x_shape), stride, padding, dilation,
                           groups, impl)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups, impl=None):
    """Gradient of conv2d with respect to its weight: gW of shape ``W_shape``."""
    _float_dtype(("grad_output", gy), ("input", x))
    stride, padding, dilation, groups, y_shape = _check_conv(x.shape, W_shape, stride, padding,
                                                             dilation, groups)
    if tuple(gy.shape) != y_shape:
        raise ValueError(f"grad_output must have conv2d's output shape {y_shape}, got "
                         f"{tuple(gy.shape)}")
    return _backward_weight(gy, x, tuple(int(s) for s in W_shape), stride, padding, dilation,
                            groups, impl)


# ------------------------------------------------------------ conv_transpose2d API
def conv_transpose2d_output_shape(x_shape, W_shape, stride=1, padding=0, output_padding=0,
                                  groups=1, dilation=1):
    """Shape of conv_transpose2d's output (validating the geometry)."""
    return _check_transpose(x_shape, W_shape, stride, padding, output_padding, groups,
                            dilation)[5]


def conv_transpose2d_forward(x, W, b, stride, padding, output_padding, groups, dilation,
                             impl=None):
    """Transposed convolution of x (N, Cin, H, W) with W (Cin, Cout/groups, kH, kW).

    Computed as conv2d's input gradient (see the module docstring). Returns
    y (N, Cout, Ho, Wo) with ``Ho = (H-1)*sh - 2*ph + dh*(kH-1) + output_padding + 1``.
    """
    dtype = _float_dtype(("input", x), ("weight", W), ("bias", b))
    stride, padding, output_padding, groups, dilation, y_shape = _check_transpose(
        x.shape, W.shape, stride, padding, output_padding, groups, dilation)
    if b is not None and tuple(b.shape) != (y_shape[1],):
        raise ValueError(f"bias must have shape ({y_shape[1]},), got {tuple(b.shape)}")
    y = _backward_input(x, W, y_shape, stride, padding, dilation, groups, impl)
    if y.dtype != dtype:
        y = y.astype(dtype)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def conv_transpose2d_backward_input(gy, W, x_shape, stride, padding, output_padding, groups,
                                    dilation, impl=None):
    """Gradient of conv_transpose2d with respect to its input: conv2d of gy with W."""
    _float_dtype(("grad_output", gy), ("weight", W))
    stride, padding, output_padding, groups, dilation, y_shape = _check_transpose(
        x_shape, W.shape, stride, padding, output_padding, groups, dilation)
    if tuple(gy.shape) != y_shape:
        raise ValueError(f"grad_output must have conv_transpose2d's output shape {y_shape}, "
                         f"got {tuple(gy.shape)}")
    x_shape = tuple(int(s) for s in x_shape)
    if gy.size == 0 or W.size == 0 or int(np.prod(x_shape)) == 0:
        return get_array_module(gy).zeros(x_shape, gy.dtype)
    mod = _module(impl, gy, y_shape, W.shape, stride, padding, dilation, groups, "forward")
    gx = mod.conv2d_forward(_contig(gy), _contig(W), None, stride, padding, dilation, groups)
    # with output_padding >= stride (allowed when dilation > stride) conv2d of gy has more
    # rows than x: those rows are outputs of a convolution the transposed one never used
    return gx[:, :, :x_shape[2], :x_shape[3]] if gx.shape != x_shape else gx


def conv_transpose2d_backward_weight(gy, x, W_shape, stride, padding, output_padding, groups,
                                     dilation, impl=None):
    """Gradient of conv_transpose2d with respect to W: conv2d's weight gradient, roles swapped.

    In the adjoint picture the transposed conv's output gradient ``gy`` plays conv2d's input
    and its input ``x`` plays conv2d's output gradient.
    """
    _float_dtype(("grad_output", gy), ("input", x))
    stride, padding, output_padding, groups, dilation, y_shape = _check_transpose(
        x.shape, W_shape, stride, padding, output_padding, groups, dilation)
    if tuple(gy.shape) != y_shape:
        raise ValueError(f"grad_output must have conv_transpose2d's output shape {y_shape}, "
                         f"got {tuple(gy.shape)}")
    return _backward_weight(x, gy, tuple(int(s) for s in W_shape), stride, padding, dilation,
                            groups, impl)
