"""Winograd convolution F(4x4, 3x3): 3x3, stride-1 layers (dilated too), 4x4 output tiles.

The same minimal filtering algorithm as ``winograd.py`` (read it first: the GEMM layout,
the phases of a dilated layer and the backward pass are shared, in
``winograd.winograd_forward`` / ``winograd_backward_input`` with ``m = 4``), on 6x6 input
tiles that give 4x4 outputs each (Lavin & Gray 2016, section 4.2)::

    Y (4x4) = A^T [ (G g G^T) * (B^T d B) ] A

    B^T = [[4,  0, -5,  0, 1, 0],   G = [[ 1/4,     0,    0],   A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],        [-1/6,  -1/6, -1/6],          [0, 1, -1, 2, -2, 0],
           [0,  4, -4, -1, 1, 0],        [-1/6,   1/6, -1/6],          [0, 1,  1, 4,  4, 0],
           [0, -2, -1,  2, 1, 0],        [1/24,  1/12,  1/6],          [0, 1, -1, 8, -8, 1]]
           [0,  2, -1, -2, 1, 0],        [1/24, -1/12,  1/6],
           [0,  4,  0, -5, 0, 1]]        [   0,     0,    1]]

(interpolation points 0, 1, -1, 2, -2 and infinity). **Cost**: 36 products per 16 outputs,
``2 * 36/16 = 4.5`` GEMM FLOPs per output and input-channel pair against F(2x2,3x3)'s 8 and
im2col's 18, i.e. 4x fewer than im2col and 1.78x fewer than F(2x2,3x3); ``V`` holds
36/16 = 2.25 values per input pixel (F(2x2): 4). The transforms cost more per tile (each
1-D transform is 6 combinations of 6 values), which wide layers amortise.
**Accuracy**: the larger points (up to 2 in B, 8 in A, 1/24 in G) amplify rounding; in
float32 the error against the direct sum is a few times F(2x2,3x3)'s (measured in the tests
at well under 1e-4 of the output's scale); float64 stays at ~1e-14. The weight gradient is
im2col's, as for F(2x2,3x3).
"""
from __future__ import annotations

from scratchvision.kernels.conv import im2col as _im2col
from scratchvision.kernels.conv.winograd import (check_applicable, winograd_backward_input,
                                                 winograd_forward)

_NAME = "winograd_f4 F(4x4,3x3)"


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by Winograd F(4x4,3x3)."""
    check_applicable(W.shape, stride, dilation, _NAME)
    return winograd_forward(x, W, b, padding, dilation, groups, 4)


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx = Winograd F(4x4,3x3) convolution of gy with the flipped, channel-swapped filters."""
    check_applicable(W.shape, stride, dilation, _NAME)
    return winograd_backward_input(gy, W, padding, dilation, groups, 4)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW from im2col (as winograd.py's)."""
    check_applicable(W_shape, stride, dilation, _NAME)
    return _im2col.conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups)
