"""Convolution layers (``Conv2d``, ``ConvTranspose2d``) and FCN's bilinear initialisation.

Constructor arguments, defaults, parameter shapes and initialisation follow torch.nn:
the weight gets ``kaiming_uniform_(a=sqrt(5))``, which is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
with ``fan_in = weight.shape[1] * kH * kW``, and the bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
with the same ``fan_in`` (for ``ConvTranspose2d``, whose weight is ``(C_in, C_out/groups,
kH, kW)``, torch's fan_in is therefore ``C_out/groups * kH * kW``; kept for parity).
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision import functional as F
from scratchvision.autograd.tensor import Tensor
from scratchvision.backend import get_default_dtype
from scratchvision.kernels.conv import conv_transpose_output_size
from scratchvision.nn import init
from scratchvision.nn.module import Module, Parameter
from scratchvision.validation import check_int, check_limit, pair


class _ConvNd(Module):
    """Shared constructor checks, parameters and initialisation of Conv2d/ConvTranspose2d.

    Every size is checked here, before any weight is allocated, and the error names the
    layer, the argument and its value (``Conv2d: kernel_size must be >= 1, got 0``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, dtype, transposed) -> None:
        super().__init__()
        layer = type(self).__name__
        in_channels = check_int(in_channels, f"{layer}: in_channels", minimum=1)
        out_channels = check_int(out_channels, f"{layer}: out_channels", minimum=1)
        groups = check_int(groups, f"{layer}: groups", minimum=1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{layer}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{layer}: only padding_mode='zeros' is supported, "
                             f"got {padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, f"{layer}: kernel_size", minimum=1)
        self.stride = pair(stride, f"{layer}: stride", minimum=1)
        self.dilation = pair(dilation, f"{layer}: dilation", minimum=1)
        if isinstance(padding, str):
            if transposed or padding not in ("same", "valid"):
                raise ValueError(f"{layer}: invalid padding string {padding!r}")
            if padding == "same" and self.stride != (1, 1):   # torch refuses it too
                raise ValueError(f"{layer}: padding='same' is not supported for strided "
                                 f"convolutions, got stride={stride!r}")
            self.padding = padding
        else:
            self.padding = pair(padding, f"{layer}: padding", minimum=0)
        self.groups, self.padding_mode, self.transposed = groups, padding_mode, transposed
        # (C_out, C_in/groups, kH, kW) for Conv2d, (C_in, C_out/groups, kH, kW) transposed
        weight_shape = ((in_channels, out_channels // groups) if transposed
                        else (out_channels, in_channels // groups))
        check_limit(weight_shape + self.kernel_size, f"{layer} weight")
        dtype = dtype or get_default_dtype()
        self.weight = Parameter(np.empty(weight_shape + self.kernel_size, dtype))
        self.bias = Parameter(np.empty(out_channels, dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) \
                else f", padding={self.padding}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution layer: ``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int); padding : int, (int, int), 'same' or 'valid'
    groups : int; bias : bool; padding_mode : 'zeros' only
    dtype : float32 (default dtype) or float64

    Shapes: input (N, C_in, H, W) -> output (N, C_out, H_out, W_out);
    weight (C_out, C_in/groups, kH, kW), bias (C_out,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, transposed=False)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer ("deconvolution", learnable upsampling).

    Parameters as torch: ``in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros'``.
    Weight (C_in, C_out/groups, kH, kW), bias (C_out,). ``forward(input, output_size=None)``:
    ``output_size`` (H, W) (or a full (N, C, H, W) shape) picks the ``output_padding`` that
    yields that size, as torch does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", dtype=None) -> None:
        # output_padding is checked first, so a refused layer allocates no weight
        output_padding = pair(output_padding, "ConvTranspose2d: output_padding", minimum=0)
        strides = pair(stride, "ConvTranspose2d: stride", minimum=1)
        dilations = pair(dilation, "ConvTranspose2d: dilation", minimum=1)
        for a in range(2):
            if output_padding[a] >= max(strides[a], dilations[a]):
                raise ValueError(f"ConvTranspose2d: output_padding {output_padding} must "
                                 f"be smaller than max(stride, dilation) per axis (stride "
                                 f"{strides}, dilation {dilations})")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, transposed=True)
        self.output_padding = output_padding

    def _output_padding(self, input_hw, output_size) -> tuple[int, int]:
        """torch's rule: output_size must lie in [min_size, min_size + stride - 1]."""
        size = tuple(int(s) for s in output_size)[-2:]
        if len(size) != 2:
            raise ValueError(f"output_size must end with (H, W), got {output_size!r}")
        pads = []
        for a in range(2):
            lo = conv_transpose_output_size(input_hw[a], self.kernel_size[a], self.stride[a],
                                            self.padding[a], 0, self.dilation[a])
            hi = lo + self.stride[a] - 1
            if not lo <= size[a] <= hi:
                raise ValueError(f"requested output size {size} is not reachable: axis {a} "
                                 f"must be in [{lo}, {hi}] for input size {tuple(input_hw)}")
            pads.append(size[a] - lo)
        return tuple(pads)

    def forward(self, input: Tensor, output_size=None) -> Tensor:  # noqa: A002
        op = self.output_padding if output_size is None else \
            self._output_padding(input.shape[-2:], output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  op, self.groups, self.dilation)


def bilinear_upsampling_(weight):
    """Fill a transposed-conv weight with FCN's bilinear interpolation kernel, in place.

    FCN (Long, Shelhamer & Darrell 2015) initialises its upsampling layers so that, before
    training, a ``ConvTranspose2d(C, C, kernel_size=2f - f % 2, stride=f, padding=...)``
    performs bilinear interpolation by ``f`` channel by channel. The kernel is the outer
    product of two triangles ``1 - |t - center| / factor`` with ``factor = ceil(k / 2)`` and
    ``center = factor - 1`` (odd k) or ``factor - 0.5`` (even k). Channel ``c`` maps only to
    channel ``c``: every other weight is 0.

    Parameters
    ----------
    weight : Tensor/Parameter or ndarray of shape (C, C, kH, kW) (groups=1) or (C, 1, kH, kW)
        (groups=C, one filter per channel).

    Returns
    -------
    ``weight``, filled.
    """
    data = weight.data if isinstance(weight, Tensor) else weight
    if data.ndim != 4 or data.shape[1] not in (1, data.shape[0]):
        raise ValueError(f"bilinear_upsampling_: weight must be (C, C, kH, kW) or (C, 1, kH, "
                         f"kW), got shape {tuple(data.shape)}")
    filt = np.ones((1, 1), np.float64)
    for axis, k in enumerate(data.shape[2:]):
        factor = (k + 1) // 2
        center = factor - 1 if k % 2 == 1 else factor - 0.5
        tri = 1 - np.abs(np.arange(k) - center) / factor     # (k,)
        filt = filt * (tri[:, None] if axis == 0 else tri[None, :])
    values = np.zeros(data.shape, np.float64)
    C = data.shape[0]
    if data.shape[1] == 1:
        values[:, 0] = filt
    else:
        values[np.arange(C), np.arange(C)] = filt
    xp = weight.xp if isinstance(weight, Tensor) else np
    data[...] = xp.asarray(values.astype(data.dtype))
    return weight
