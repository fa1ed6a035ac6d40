"""``unfold`` (im2col) and ``fold`` (col2im) as differentiable ops, torch's layout.

``unfold(x, kernel_size)`` turns a (N, C, H, W) batch into (N, C*kh*kw, L): column
``p = oy*ow + ox`` lists the C*kh*kw input values that the kernel placed at output pixel
(oy, ox) reads, row ``r = (c*kh + i)*kw + j`` being channel c, tap (i, j): exactly the
column matrix that ``kernels/conv/im2col.py`` builds for convolution, which is why a
convolution is ``W.reshape(Co, -1) @ unfold(x)``. ``fold`` is its adjoint: each column entry
is added back onto the pixel it came from, so ``fold(unfold(x))`` multiplies every pixel by
the number of windows that cover it. Each is the other's backward.

The kernels are Numba's (CPU); a CuPy input is computed on the host and copied back.
Arguments are checked with ``scratchvision.validation`` (float32/float64 input only, as
conv2d; the output is bounded by ``LIMITS["max_elements"]``).
"""
from __future__ import annotations

import numpy as np

from scratchvision import backend
from scratchvision.autograd.function import Function
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels.conv._common import ConvGeometry, conv_geometry, conv_output_size
from scratchvision.kernels.conv.im2col import col2im, im2col
from scratchvision.validation import check_array, check_limit, pair


def _window(kernel_size, dilation, padding, stride):
    """The validated (kernel, stride, padding, dilation) pairs."""
    return (pair(kernel_size, "kernel_size", minimum=1), pair(stride, "stride", minimum=1),
            pair(padding, "padding", minimum=0), pair(dilation, "dilation", minimum=1))


def _conv_geometry(window, hw) -> ConvGeometry:
    """The ConvGeometry of the window sliding over an image of size ``hw``."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = window
    oh, ow = conv_output_size(hw[0], kh, sh, ph, dh), conv_output_size(hw[1], kw, sw, pw, dw)
    return conv_geometry((kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow))


def _on_host(fn, a, *args):
    """Run a Numba kernel on ``a`` (moved to the host if it lives on the GPU)."""
    if backend.is_cupy_array(a):
        return backend.to_device(fn(backend.to_device(a, "cpu"), *args), "cuda")
    return fn(np.ascontiguousarray(a), *args)


def _im2col(x, window):
    n, c, h, w = x.shape
    g = _conv_geometry(window, (h, w))
    col = np.empty((n, c * g.kh * g.kw, g.oh * g.ow), x.dtype)
    return im2col(x, g, col)


def _col2im(col, window, out_hw):
    n, ckk, _ = col.shape
    g = _conv_geometry(window, out_hw)
    gx = np.empty((n, ckk // (g.kh * g.kw), *out_hw), col.dtype)
    return col2im(col.reshape(n, ckk, g.oh * g.ow), g, gx)


class Unfold(Function):
    def forward(self, x, geometry):
        self.geometry, self.hw = geometry, x.shape[2:]
        return _on_host(_im2col, x, geometry)

    def backward(self, gy):
        return (_on_host(_col2im, gy, self.geometry, self.hw),)


class Fold(Function):
    def forward(self, col, geometry, out_hw):
        self.geometry = geometry
        return _on_host(_col2im, col, geometry, out_hw)

    def backward(self, gy):
        return (_on_host(_im2col, gy, self.geometry),)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:  # noqa: A002
    """Sliding local blocks: (N, C, H, W) -> (N, C*kh*kw, L), as torch.nn.functional.unfold.

    ``L = oh*ow`` with ``oh = (H + 2*ph - dh*(kh-1) - 1) // sh + 1`` (likewise ow)."""
    x = input if isinstance(input, Tensor) else Tensor(input)
    check_array(x.data, "unfold: input", ndim=4, layout="(N, C, H, W)")
    window = _window(kernel_size, dilation, padding, stride)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = window
    for size, k, s, p, d, name in ((x.shape[2], kh, sh, ph, dh, "height"),
                                   (x.shape[3], kw, sw, pw, dw, "width")):
        if conv_output_size(size, k, s, p, d) < 1:
            raise ValueError(f"unfold: the input {name} {size} (padding {p}) is smaller than "
                             f"the dilated kernel {d * (k - 1) + 1}")
    g = _conv_geometry(window, x.shape[2:])
    check_limit((x.shape[0], x.shape[1] * kh * kw, g.oh * g.ow), "unfold's output")
    return Unfold.apply(x, geometry=window)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0,  # noqa: A002
         stride=1) -> Tensor:
    """The adjoint of ``unfold``: (N, C*kh*kw, L) -> (N, C, H, W), overlapping values summed."""
    col = input if isinstance(input, Tensor) else Tensor(input)
    check_array(col.data, "fold: input", ndim=3, layout="(N, C*kh*kw, L)")
    window = _window(kernel_size, dilation, padding, stride)
    h, w = pair(output_size, "output_size", minimum=1)
    g = _conv_geometry(window, (h, w))
    kh, kw, oh, ow = g.kh, g.kw, g.oh, g.ow
    if col.shape[1] % (kh * kw) or col.shape[2] != oh * ow:
        raise ValueError(f"fold: expects (N, C*{kh}*{kw}, {oh * ow}) for output_size {(h, w)}, "
                         f"got shape {col.shape}")
    check_limit((col.shape[0], col.shape[1] // (kh * kw), h, w), "fold's output")
    return Fold.apply(col, geometry=window, out_hw=(h, w))


@register_gradcheck("unfold_fold")
def _case(rng):
    x = rng.standard_normal((2, 3, 5, 6))
    col = rng.standard_normal((1, 2 * 4, 6))            # C=2, 2x2 kernel, 2x3 windows on 3x4
    return [((lambda t: unfold(t, 3, padding=1, stride=2)), [x]),
            ((lambda t: unfold(t, (2, 3), dilation=(2, 1))), [x]),
            ((lambda t: fold(t, (3, 4), 2)), [col])]
