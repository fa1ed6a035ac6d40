"""2-D convolution and transposed convolution kernels: validation, dispatch, algorithm choice.

Arrays in, arrays out (NCHW, float32 or float64). Every version module (``reference``,
``cpu``, ``im2col``, ``direct``, ``winograd``, ``winograd_f4``, ``cuda``) has the same three
functions with the same signatures::

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

**Dispatch.** ``VERSIONS`` (a ``kernels.versions.KernelFamily``) names the versions every
function here takes as ``impl=``: ``reference`` (the textbook loops), ``cpu`` (``cpu.py``:
per call the algorithm ``choose_algorithm`` picks for the shape; what ``impl=None`` runs on
NumPy arrays), the algorithms ``im2col``, ``direct``, ``winograd`` (F(2x2,3x3)) and
``winograd_f4`` (F(4x4,3x3)) (both 3x3 and stride 1 only, dilated or not: anything else is
a ``ValueError`` saying so), and on CuPy arrays ``cuda``
(the default there) and ``cuda_atomic`` (atomic col2im scatter: faster, not
bit-reproducible). ``choose_algorithm`` (in ``cpu.py``) holds the rule and the measurements
behind it (``benchmarks/conv.py`` times every algorithm on the issue's shapes beside torch).

**Bounded work.** The output shape (conv2d's and conv_transpose2d's, which grow with the
padding and the stride) and one image's im2col column matrix are checked against
``validation.LIMITS["max_elements"]`` before anything is allocated (a ``LimitError``).
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import get_array_module
from scratchvision.kernels.conv import winograd
from scratchvision.kernels.conv._common import conv_output_size, conv_transpose_output_size
from scratchvision.kernels.conv.cpu import choose_algorithm
from scratchvision.kernels.conv.im2col import (release_workspace, set_workspace_limit,
                                               workspace_limit)
from scratchvision.kernels.conv.winograd import winograd_applicable
from scratchvision.kernels.versions import KernelFamily, contiguous
from scratchvision.validation import check_float_arrays, check_int, check_limit, pair

VERSIONS = KernelFamily("conv", algorithms={"im2col": "im2col", "direct": "direct",
                                            "winograd": "winograd",
                                            "winograd_f4": "winograd_f4"})

__all__ = ["VERSIONS", "choose_algorithm", "conv2d_backward_input",
           "conv2d_backward_weight", "conv2d_forward", "conv2d_output_shape",
           "conv_transpose2d_backward", "conv_transpose2d_backward_input",
           "conv_transpose2d_backward_weight",
           "conv_transpose2d_forward", "conv_transpose2d_output_shape",
           "conv_output_size", "conv_transpose_output_size", "release_workspace",
           "set_workspace_limit", "winograd_applicable", "workspace_limit"]


# ----------------------------------------------------------------------------- checks
def _shape4(shape, name: str, layout: str) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"{name} must be 4-D {layout}, got shape {shape}")
    if min(shape) < 0:
        raise ValueError(f"{name} has a negative dimension: {shape}")
    return shape  # type: ignore[return-value]


def _conv_args(stride, padding, dilation, groups):
    """stride (>= 1), padding (>= 0) and dilation (>= 1) as pairs, groups as an int >= 1."""
    return (pair(stride, "stride", minimum=1), pair(padding, "padding", minimum=0),
            pair(dilation, "dilation", minimum=1), check_int(groups, "groups", minimum=1))


def _check_conv(x_shape, W_shape, stride, padding, dilation, groups):
    """Validate conv2d geometry; returns normalised (stride, padding, dilation, groups, y_shape)."""
    x_shape = _shape4(x_shape, "input", "(N, C, H, W)")
    W_shape = _shape4(W_shape, "weight", "(out_channels, in_channels/groups, kH, kW)")
    stride, padding, dilation, groups = _conv_args(stride, padding, dilation, groups)
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
    check_limit((N, Co, oh, ow), f"conv2d's output (input {x_shape}, weight {W_shape}, "
                                 f"padding {padding})")
    return stride, padding, dilation, groups, (N, Co, oh, ow)


def _check_transpose(x_shape, W_shape, stride, padding, output_padding, groups, dilation):
    """Validate conv_transpose2d geometry; returns normalised params and the output shape."""
    x_shape = _shape4(x_shape, "input", "(N, C_in, H, W)")
    W_shape = _shape4(W_shape, "weight", "(in_channels, out_channels/groups, kH, kW)")
    stride, padding, dilation, groups = _conv_args(stride, padding, dilation, groups)
    output_padding = pair(output_padding, "output_padding", minimum=0)
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
    check_limit((N, Cog * groups, Ho, Wo), f"conv_transpose2d's output (input {x_shape}, "
                                           f"weight {W_shape}, stride {stride})")
    return stride, padding, output_padding, groups, dilation, (N, Cog * groups, Ho, Wo)


def _check_grad_output(gy, y_shape, op: str) -> None:
    if tuple(gy.shape) != y_shape:
        raise ValueError(f"grad_output must have {op}'s output shape {y_shape}, got "
                         f"{tuple(gy.shape)}")


# -------------------------------------------------------------------------- dispatch
def _version(impl, arr, W_shape, stride, dilation):
    """The module that runs ``impl`` on ``arr``'s device (``impl`` validated by ``VERSIONS``;
    ``winograd`` only where it applies)."""
    name = VERSIONS.resolve(impl, arr)
    if name == "winograd":
        winograd.check_applicable(W_shape, stride, dilation)
    return VERSIONS.module(name, arr)


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
    dtype = check_float_arrays("conv2d", input=x, weight=W, bias=b)
    stride, padding, dilation, groups, y_shape = _check_conv(x.shape, W.shape, stride, padding,
                                                             dilation, groups)
    if b is not None and tuple(b.shape) != (W.shape[0],):
        raise ValueError(f"bias must have shape ({W.shape[0]},), got {tuple(b.shape)}")
    mod = _version(impl, x, W.shape, stride, dilation)
    if x.size == 0 or W.size == 0:
        y = get_array_module(x).zeros(y_shape, dtype)
        return y + b.reshape(1, -1, 1, 1) if b is not None and y.size else y
    return mod.conv2d_forward(_contig(x), _contig(W), _contig(b), stride, padding, dilation,
                              groups)


def _backward_input(gy, W, x_shape, stride, padding, dilation, groups, impl):
    """Dispatch the input gradient (checked geometry; gy may be smaller than conv's output)."""
    mod = _version(impl, gy, W.shape, stride, dilation)
    if gy.size == 0 or W.size == 0 or int(np.prod(x_shape)) == 0:
        return get_array_module(gy).zeros(x_shape, gy.dtype)
    return mod.conv2d_backward_input(_contig(gy), _contig(W), tuple(x_shape), stride, padding,
                                     dilation, groups)


def _backward_weight(gy, x, W_shape, stride, padding, dilation, groups, impl):
    """Dispatch the weight gradient (checked geometry)."""
    mod = _version(impl, x, W_shape, stride, dilation)
    if gy.size == 0 or x.size == 0 or int(np.prod(W_shape)) == 0:
        return get_array_module(x).zeros(W_shape, x.dtype)
    return mod.conv2d_backward_weight(_contig(gy), _contig(x), tuple(W_shape), stride, padding,
                                      dilation, groups)


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups, impl=None):
    """Gradient of conv2d with respect to its input: gx of shape ``x_shape``."""
    check_float_arrays("conv2d backward", grad_output=gy, weight=W)
    stride, padding, dilation, groups, y_shape = _check_conv(x_shape, W.shape, stride, padding,
                                                             dilation, groups)
    _check_grad_output(gy, y_shape, "conv2d")
    return _backward_input(gy, W, tuple(int(s) for s in x_shape), stride, padding, dilation,
                           groups, impl)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups, impl=None):
    """Gradient of conv2d with respect to its weight: gW of shape ``W_shape``."""
    check_float_arrays("conv2d backward", grad_output=gy, input=x)
    stride, padding, dilation, groups, y_shape = _check_conv(x.shape, W_shape, stride, padding,
                                                             dilation, groups)
    _check_grad_output(gy, y_shape, "conv2d")
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
    dtype = check_float_arrays("conv_transpose2d", input=x, weight=W, bias=b)
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
    check_float_arrays("conv_transpose2d backward", grad_output=gy, weight=W)
    stride, padding, output_padding, groups, dilation, y_shape = _check_transpose(
        x_shape, W.shape, stride, padding, output_padding, groups, dilation)
    _check_grad_output(gy, y_shape, "conv_transpose2d")
    x_shape = tuple(int(s) for s in x_shape)
    mod = _version(impl, gy, W.shape, stride, dilation)
    if gy.size == 0 or W.size == 0 or int(np.prod(x_shape)) == 0:
        return get_array_module(gy).zeros(x_shape, gy.dtype)
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
    check_float_arrays("conv_transpose2d backward", grad_output=gy, input=x)
    stride, padding, output_padding, groups, dilation, y_shape = _check_transpose(
        x.shape, W_shape, stride, padding, output_padding, groups, dilation)
    _check_grad_output(gy, y_shape, "conv_transpose2d")
    return _backward_weight(x, gy, tuple(int(s) for s in W_shape), stride, padding, dilation,
                            groups, impl)


def conv_transpose2d_backward(gy, x, W, stride, padding, output_padding, groups, dilation,
                              impl=None):
    """Both gradients of conv_transpose2d, ``(gx, gW)``: what
    ``conv_transpose2d_backward_input`` and ``conv_transpose2d_backward_weight`` return,
    bit for bit. Both are products with the same column matrix of ``gy`` (conv2d's forward
    of ``gy``, and conv2d's weight gradient with ``gy`` as its input), so when im2col
    computes both (``impl='im2col'``, or the CPU default when it picks im2col for both) the
    matrix is built once (``im2col.conv2d_forward_and_weight_grad``); otherwise the two
    functions run one after the other."""
    check_float_arrays("conv_transpose2d backward", grad_output=gy, input=x, weight=W)
    stride_, padding_, _, groups_, dilation_, y_shape = _check_transpose(
        x.shape, W.shape, stride, padding, output_padding, groups, dilation)
    _check_grad_output(gy, y_shape, "conv_transpose2d")
    name = VERSIONS.resolve(impl, gy)
    if name == "cpu":
        rule = (choose_algorithm(gy.shape, W.shape, stride_, padding_, dilation_, groups_,
                                 "forward"),
                choose_algorithm(gy.shape, W.shape, stride_, padding_, dilation_, groups_,
                                 "weight"))
        name = "im2col" if rule == ("im2col", "im2col") else name
    same_rows = conv2d_output_shape(gy.shape, W.shape, stride_, padding_, dilation_,
                                    groups_) == tuple(x.shape)   # not with output_padding >= s
    if name == "im2col" and same_rows and gy.size and x.size and W.size:
        from scratchvision.kernels.conv import im2col  # noqa: PLC0415
        return im2col.conv2d_forward_and_weight_grad(_contig(gy), _contig(W), _contig(x),
                                                     stride_, padding_, dilation_, groups_)
    return (conv_transpose2d_backward_input(gy, W, x.shape, stride, padding, output_padding,
                                            groups, dilation, impl=impl),
            conv_transpose2d_backward_weight(gy, x, W.shape, stride, padding, output_padding,
                                             groups, dilation, impl=impl))
