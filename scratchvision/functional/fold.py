"""``unfold`` (im2col) and ``fold`` (col2im) as differentiable ops, torch's layout.

``unfold(x, kernel_size)`` turns a (N, C, H, W) batch into (N, C*kh*kw, L): column
``p = oy*ow + ox`` lists the C*kh*kw input values that the kernel placed at output pixel
(oy, ox) reads, row ``r = (c*kh + i)*kw + j`` being channel c, tap (i, j): exactly the
column matrix that ``kernels/conv/im2col.py`` builds for convolution, which is why a
convolution is ``W.reshape(Co, -1) @ unfold(x)``. ``fold`` is its adjoint: each column entry
is added back onto the pixel it came from, so ``fold(unfold(x))`` multiplies every pixel by
the number of windows that cover it. Each is the other's backward.

The kernels are Numba's (CPU); a CuPy input is computed on the host and copied back.
"""
from __future__ import annotations

import numpy as np

from scratchvision import backend
from scratchvision.autograd.function import Function
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.functional.conv import _pair
from scratchvision.kernels.conv._common import conv_output_size
from scratchvision.kernels.conv.im2col import col2im, im2col


def _geometry(kernel_size, dilation, padding, stride):
    (kh, kw), (dh, dw) = (map(int, _pair(kernel_size, "kernel_size")),
                          map(int, _pair(dilation, "dilation")))
    (ph, pw), (sh, sw) = map(int, _pair(padding, "padding")), map(int, _pair(stride, "stride"))
    if min(kh, kw, dh, dw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"kernel_size {kernel_size}, dilation {dilation} and stride {stride} "
                         f"must be positive and padding {padding} non-negative")
    return kh, kw, sh, sw, ph, pw, dh, dw


def _on_host(fn, a, *args):
    """Run a Numba kernel on ``a`` (moved to the host if it lives on the GPU)."""
    if backend.is_cupy_array(a):
        return backend.to_device(fn(backend.to_device(a, "cpu"), *args), "cuda")
    return fn(np.ascontiguousarray(a), *args)


def _im2col(x, g):
    kh, kw, sh, sw, ph, pw, dh, dw = g
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    col = np.empty((n, c * kh * kw, oh * ow), x.dtype)
    return im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, col)


def _col2im(col, g, out_hw):
    kh, kw, sh, sw, ph, pw, dh, dw = g
    n, ckk, _ = col.shape
    h, w = out_hw
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    gx = np.empty((n, ckk // (kh * kw), h, w), col.dtype)
    return col2im(col.reshape(n, ckk, oh * ow), kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx)


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
    if x.ndim != 4:
        raise ValueError(f"unfold: expects a (N, C, H, W) input, got shape {x.shape}")
    g = _geometry(kernel_size, dilation, padding, stride)
    kh, kw, sh, sw, ph, pw, dh, dw = g
    for size, k, s, p, d, name in ((x.shape[2], kh, sh, ph, dh, "height"),
                                   (x.shape[3], kw, sw, pw, dw, "width")):
        if conv_output_size(size, k, s, p, d) < 1:
            raise ValueError(f"unfold: the input {name} {size} (padding {p}) is smaller than "
                             f"the dilated kernel {d * (k - 1) + 1}")
    return Unfold.apply(x, geometry=g)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0,  # noqa: A002
         stride=1) -> Tensor:
    """The adjoint of ``unfold``: (N, C*kh*kw, L) -> (N, C, H, W), overlapping values summed."""
    col = input if isinstance(input, Tensor) else Tensor(input)
    g = _geometry(kernel_size, dilation, padding, stride)
    kh, kw, sh, sw, ph, pw, dh, dw = g
    h, w = map(int, _pair(output_size, "output_size"))
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    if col.ndim != 3 or col.shape[1] % (kh * kw) or col.shape[2] != oh * ow:
        raise ValueError(f"fold: expects (N, C*{kh}*{kw}, {oh * ow}) for output_size {(h, w)}, "
                         f"got shape {col.shape}")
    return Fold.apply(col, geometry=g, out_hw=(h, w))


@register_gradcheck("unfold_fold")
def _case(rng):
    x = rng.standard_normal((2, 3, 5, 6))
    col = rng.standard_normal((1, 2 * 4, 6))            # C=2, 2x2 kernel, 2x3 windows on 3x4
    return [((lambda t: unfold(t, 3, padding=1, stride=2)), [x]),
            ((lambda t: unfold(t, (2, 3), dilation=(2, 1))), [x]),
            ((lambda t: fold(t, (3, 4), 2)), [col])]
