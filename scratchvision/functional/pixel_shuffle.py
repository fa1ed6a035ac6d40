"""pixel_shuffle and pixel_unshuffle (Shi et al. 2016, "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network").

pixel_shuffle moves an ``r x r`` block of channels into an ``r x r`` block of pixels:
output ``(c, h*r + i, w*r + j)`` is input channel ``c*r*r + i*r + j`` at ``(h, w)``.
It is a reshape, a permute and a reshape, so it is differentiable through those Tensor
ops (the gradient is the inverse permutation, which is pixel_unshuffle):

    (*, C*r*r, H, W) -> (*, C, r, r, H, W) -> (*, C, H, r, W, r) -> (*, C, H*r, W*r)

pixel_unshuffle is the inverse. Leading dims ``*`` are any batch dims (or none), as torch.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _check(x, factor, fn: str, arg: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if not isinstance(factor, (int, np.integer)) or isinstance(factor, bool):
        raise TypeError(f"{fn}(): argument '{arg}' must be int, not {type(factor).__name__}")
    if factor <= 0:
        raise ValueError(f"{fn} expects a positive {arg}, but got {factor}")
    if x.ndim < 3:
        raise ValueError(f"{fn} expects input to have at least 3 dimensions, but got input "
                         f"with {x.ndim} dimension(s)")
    return x


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:  # noqa: A002
    """Rearrange (*, C*r^2, H, W) into (*, C, H*r, W*r), r = ``upscale_factor``.

    Parameters
    ----------
    input : (*, C*r*r, H, W) Tensor
    upscale_factor : int r > 0

    Returns
    -------
    Tensor (*, C, H*r, W*r); ``out[..., c, h*r + i, w*r + j] = in[..., c*r*r + i*r + j, h, w]``.
    """
    x = _check(input, upscale_factor, "pixel_shuffle", "upscale_factor")
    r = int(upscale_factor)
    *batch, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                         f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                         f"is not divisible by {r * r}")
    b = len(batch)
    y = x.reshape(*batch, c // (r * r), r, r, h, w)                 # (*, C, r, r, H, W)
    y = y.permute(*range(b), b, b + 3, b + 1, b + 4, b + 2)         # (*, C, H, r, W, r)
    return y.reshape(*batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:  # noqa: A002
    """Rearrange (*, C, H*r, W*r) into (*, C*r^2, H, W), r = ``downscale_factor``: the
    inverse of ``pixel_shuffle``.

    Parameters
    ----------
    input : (*, C, H*r, W*r) Tensor
    downscale_factor : int r > 0 that divides the height and the width

    Returns
    -------
    Tensor (*, C*r*r, H, W).
    """
    x = _check(input, downscale_factor, "pixel_unshuffle", "downscale_factor")
    r = int(downscale_factor)
    *batch, c, h, w = x.shape
    for name, size, dim in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise ValueError(f"pixel_unshuffle expects {name} to be divisible by "
                             f"downscale_factor, but input.size({dim})={size} is not "
                             f"divisible by {r}")
    b = len(batch)
    y = x.reshape(*batch, c, h // r, r, w // r, r)                  # (*, C, H, r, W, r)
    y = y.permute(*range(b), b, b + 2, b + 4, b + 1, b + 3)         # (*, C, r, r, H, W)
    return y.reshape(*batch, c * r * r, h // r, w // r)


# ------------------------------------------------------------------------- gradchecks
@register_gradcheck("pixel_shuffle")
def _pixel_shuffle_case(rng):
    return [(lambda t: pixel_shuffle(t, 2), [rng.standard_normal((2, 8, 2, 3))]),
            (lambda t: pixel_shuffle(t, 3), [rng.standard_normal((9, 1, 2))])]


@register_gradcheck("pixel_unshuffle")
def _pixel_unshuffle_case(rng):
    return [(lambda t: pixel_unshuffle(t, 2), [rng.standard_normal((2, 2, 4, 6))]),
            (lambda t: pixel_unshuffle(t, 3), [rng.standard_normal((1, 2, 1, 3, 6))])]
