"""The default CPU convolution: for each call, the algorithm that is fastest for its shape.

``impl="cpu"`` (and ``impl=None`` on NumPy arrays) runs this module. It has the three
functions every algorithm module has, with the same signatures; each asks
``choose_algorithm`` which of ``im2col``, ``direct`` and ``winograd`` suits the call and
runs that module's version. ``choose_algorithm`` holds the rule and the measurements
behind it (``benchmarks/conv.py`` times every algorithm on the issue's shapes beside torch).
"""
from __future__ import annotations

from scratchvision.kernels.conv import direct, im2col, winograd
from scratchvision.kernels.conv.winograd import winograd_applicable

__all__ = ["choose_algorithm", "conv2d_backward_input", "conv2d_backward_weight",
           "conv2d_forward"]

_ALGORITHMS = {"im2col": im2col, "direct": direct, "winograd": winograd}


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


def conv2d_forward(x, W, b, stride, padding, dilation, groups):
    """y = conv2d(x, W) + b by the algorithm ``choose_algorithm`` picks for the forward."""
    name = choose_algorithm(x.shape, W.shape, stride, padding, dilation, groups, "forward")
    return _ALGORITHMS[name].conv2d_forward(x, W, b, stride, padding, dilation, groups)


def conv2d_backward_input(gy, W, x_shape, stride, padding, dilation, groups):
    """gx by the algorithm ``choose_algorithm`` picks for the input gradient."""
    name = choose_algorithm(x_shape, W.shape, stride, padding, dilation, groups, "input")
    return _ALGORITHMS[name].conv2d_backward_input(gy, W, x_shape, stride, padding, dilation,
                                                   groups)


def conv2d_backward_weight(gy, x, W_shape, stride, padding, dilation, groups):
    """gW by the algorithm ``choose_algorithm`` picks for the weight gradient."""
    name = choose_algorithm(x.shape, W_shape, stride, padding, dilation, groups, "weight")
    return _ALGORITHMS[name].conv2d_backward_weight(gy, x, W_shape, stride, padding,
                                                    dilation, groups)
