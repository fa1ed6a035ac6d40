"""Pooling, unpooling and upsampling layers with torch.nn's constructor arguments:
MaxPool2d, AvgPool2d, MaxUnpool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, Upsample,
PixelShuffle, PixelUnshuffle. Parameter-free; each
``forward`` calls the op of ``scratchvision.functional`` of the same name.

The constructors check their sizes (with ``scratchvision.validation``) and keep them as
given, so ``extra_repr`` prints what the user wrote: a layer that could never run
(``MaxPool2d(0)``, a padding above half the kernel, ``Upsample`` without a size) is refused
when it is built, with the layer, the argument and the value in the message, rather than at
its first ``forward``.
"""
from __future__ import annotations

from scratchvision import functional as F
from scratchvision.nn.module import Module
from scratchvision.validation import check_int, check_number, pair


def _check_window(layer: str, kernel_size, stride, padding, dilation=1) -> None:
    """Refuse impossible pooling windows: sizes >= 1 (padding >= 0), and a padding of at
    most half the (dilated) kernel, the bound torch's pooling kernels enforce."""
    kernel = pair(kernel_size, f"{layer}: kernel_size", minimum=1)
    if stride is not None:
        pair(stride, f"{layer}: stride", minimum=1)
    pads = pair(padding, f"{layer}: padding", minimum=0)
    dilations = pair(dilation, f"{layer}: dilation", minimum=1)
    for k, p, d in zip(kernel, pads, dilations):
        if p > ((k - 1) * d + 1) // 2:
            raise ValueError(f"{layer}: padding should be at most half of the effective "
                             f"kernel size, got padding={padding!r}, kernel_size="
                             f"{kernel_size!r}" + (f", dilation={dilation!r}" if d > 1 else ""))


def _check_output_size(layer: str, output_size) -> None:
    """An adaptive pool's output size: an int >= 1, or a pair of ints >= 1 or None."""
    items = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
    if isinstance(output_size, (tuple, list)) and len(output_size) not in (1, 2):
        raise TypeError(f"{layer}: output_size must be an int or a pair, got {output_size!r}")
    for v in items:
        if v is not None or not isinstance(output_size, (tuple, list)):
            check_int(v, f"{layer}: output_size", minimum=1)

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "MaxPool2d", "MaxUnpool2d",
           "PixelShuffle", "PixelUnshuffle", "Upsample"]


class MaxPool2d(Module):
    """2-D max pooling (see ``F.max_pool2d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        _check_window("MaxPool2d", kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):  # noqa: A002
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f", dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """2-D average pooling (see ``F.avg_pool2d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        _check_window("AvgPool2d", kernel_size, stride, padding)
        if divisor_override is not None and \
                check_int(divisor_override, "AvgPool2d: divisor_override") == 0:
            raise ValueError("AvgPool2d: divisor_override must be non-zero, got 0")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):  # noqa: A002
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(Module):
    """Inverse of MaxPool2d by its indices (see ``F.max_unpool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        pair(kernel_size, "MaxUnpool2d: kernel_size", minimum=1)
        if stride is not None:
            pair(stride, "MaxUnpool2d: stride", minimum=1)
        pair(padding, "MaxUnpool2d: padding", minimum=0)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, input, indices, output_size=None):  # noqa: A002
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output grid (see ``F.adaptive_avg_pool2d``)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        _check_output_size("AdaptiveAvgPool2d", output_size)
        self.output_size = output_size

    def forward(self, input):  # noqa: A002
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output grid (see ``F.adaptive_max_pool2d``)."""

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        _check_output_size("AdaptiveMaxPool2d", output_size)
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):  # noqa: A002
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class PixelShuffle(Module):
    """(*, C*r^2, H, W) -> (*, C, H*r, W*r) (see ``F.pixel_shuffle``)."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = check_int(upscale_factor, "PixelShuffle: upscale_factor",
                                        minimum=1)

    def forward(self, input):  # noqa: A002
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H*r, W*r) -> (*, C*r^2, H, W) (see ``F.pixel_unshuffle``)."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = check_int(downscale_factor, "PixelUnshuffle: downscale_factor",
                                          minimum=1)

    def forward(self, input):  # noqa: A002
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` (see ``F.interpolate``)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(f"Upsample: give exactly one of size and scale_factor, got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if size is not None:
            pair(size, "Upsample: size", minimum=1)
        else:
            factors = scale_factor if isinstance(scale_factor, (tuple, list)) \
                else (scale_factor,)
            if len(factors) not in (1, 2):
                raise TypeError(f"Upsample: scale_factor must be a number or a pair, got "
                                f"{scale_factor!r}")
            for f in factors:
                check_number(f, "Upsample: scale_factor", minimum=0.0, strict_minimum=True)
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
        if align_corners is not None and mode == "nearest":
            raise ValueError("Upsample: align_corners can only be set with the interpolating "
                             "mode 'bilinear', not 'nearest'")
        self.size, self.mode = size, mode
        self.scale_factor = (tuple(float(f) for f in scale_factor)
                             if isinstance(scale_factor, (tuple, list))
                             else (float(scale_factor) if scale_factor is not None else None))
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input):  # noqa: A002
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = (f"size={self.size}" if self.scale_factor is None
                else f"scale_factor={self.scale_factor}")
        return info + f", mode={self.mode!r}"
