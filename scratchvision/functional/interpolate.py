"""``interpolate``: nearest and bilinear resizing, as ``torch.nn.functional.interpolate``.

A thin ``Function`` over ``scratchvision.kernels.interpolate`` (whose ``weights.py`` states
the pixel conventions). The output size and the scale passed to the kernel follow torch:

* ``size`` given: that size; source step ``in/out`` (or the corner-aligned
  ``(in-1)/(out-1)``).
* ``scale_factor`` given: output ``floor(in * scale_factor)``; the kernel steps by
  ``1/scale_factor`` (not ``in/out``, which differs when the product was rounded) unless
  ``recompute_scale_factor=True``.

Bilinear with ``align_corners=False`` uses half-pixel centres (like OpenCV's ``resize``);
'nearest' is torch's legacy rule ``src = floor(dst * scale)`` (not 'nearest-exact').
"""
from __future__ import annotations

from scratchvision.autograd.function import Function
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels import interpolate as K

__all__ = ["interpolate"]

_MODES = ("nearest", "bilinear")
_LINEAR_MODES = ("linear", "bilinear", "bicubic", "trilinear")


class Interpolate(Function):
    def forward(self, x, size, scales, mode, align_corners, *, impl=None):
        self.x_shape, self.scales, self.impl = x.shape, scales, impl
        self.mode, self.align_corners = mode, align_corners
        if mode == "bilinear":
            return K.bilinear_forward(x, size, align_corners, scales, impl=impl)
        return K.nearest_forward(x, size, scales, impl=impl)

    def backward(self, gy):
        if self.mode == "bilinear":
            gx = K.bilinear_backward(gy, self.x_shape, self.align_corners, self.scales,
                                     impl=self.impl)
        else:
            gx = K.nearest_backward(gy, self.x_shape, self.scales, impl=self.impl)
        return (gx,) + (None,) * (len(self.needs_input_grad) - 1)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",  # noqa: A002
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False, *, impl: str | None = None) -> Tensor:
    """Resize a batch of images (N, C, H, W) by nearest or bilinear interpolation.

    Parameters
    ----------
    input : (N, C, H, W) Tensor, float32 or float64.
    size : int or (out_h, out_w). Exactly one of ``size`` and ``scale_factor``.
    scale_factor : float or (sh, sw); the output is ``floor(H * sh) x floor(W * sw)``.
    mode : 'nearest' (torch's legacy nearest: ``src = floor(dst * H / out_h)``) or
        'bilinear'.
    align_corners : bilinear only (a ValueError for 'nearest'). True: the centres of the
        corner pixels of input and output coincide, ``src = dst * (H-1)/(out_h-1)``.
        False (the default when None): half-pixel centres,
        ``src = max((dst + 0.5) * scale - 0.5, 0)``.
    recompute_scale_factor : with ``scale_factor``, True makes the kernel step by
        ``H / out_h`` (from the rounded size) instead of ``1 / scale_factor``.
    antialias : not supported (False only), as torch's default.
    impl : None (the default: 'cpu' on NumPy data, 'cuda' on CuPy data) or a kernel version
        of ``kernels.interpolate.VERSIONS.impls`` ('reference', 'cpu', 'cuda',
        'cuda_atomic'), used by the forward and the backward pass (scratchvision extension).

    Returns
    -------
    Tensor (N, C, out_h, out_w).

    Raises
    ------
    LimitError (a ValueError) when the output would exceed
    ``scratchvision.validation.LIMITS["max_elements"]`` (e.g. ``scale_factor=1e6``).
    """
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode {mode!r} is not supported; use one of {_MODES}")
    if align_corners is not None:
        if mode not in _LINEAR_MODES:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif mode == "bilinear":
        align_corners = False
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported")
    if input.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W) for mode {mode!r}, "
                         f"got shape {tuple(input.shape)}")
    out, scales = K.resolve_output_size(tuple(input.shape[2:]), size, scale_factor,
                                        recompute_scale_factor)
    return Interpolate.apply(input, out, scales, mode, bool(align_corners), impl=impl)


# ------------------------------------------------------------------------- gradchecks
@register_gradcheck("interpolate")
def _interpolate_case(rng):
    x = rng.standard_normal((1, 2, 4, 5))
    return [(lambda t: interpolate(t, size=(7, 9), mode="bilinear"), [x]),
            (lambda t: interpolate(t, size=(3, 2), mode="bilinear", align_corners=True), [x]),
            (lambda t: interpolate(t, scale_factor=1.7, mode="bilinear"), [x]),
            (lambda t: interpolate(t, scale_factor=(2, 0.6), mode="nearest"), [x]),
            (lambda t: interpolate(t, size=(6, 4)), [x])]
