"""The default CPU convolution: for each call, the algorithm that is fastest for its shape.

``impl="cpu"`` (and ``impl=None`` on NumPy arrays) runs this module. It has the three
functions every algorithm module has, with the same signatures; each asks
``choose_algorithm`` which of ``im2col``, ``direct``, ``winograd`` and ``winograd_f4``
suits the call and runs that module's version. ``choose_algorithm`` holds the rule and
the measurements behind it (``benchmarks/conv.py`` times every algorithm on the issue's
shapes beside torch).
"""
from __future__ import annotations

from scratchvision.kernels import gemm
from scratchvision.kernels.conv import direct, im2col, winograd, winograd_f4
from scratchvision.kernels.conv._common import conv_output_size
from scratchvision.kernels.conv.winograd import winograd_applicable

__all__ = ["choose_algorithm", "conv2d_backward_input", "conv2d_backward_weight",
           "conv2d_forward"]

_ALGORITHMS = {"im2col": im2col, "direct": direct, "winograd": winograd,
               "winograd_f4": winograd_f4}


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

    Re-measured 2026-12-02 after the Winograd transforms were rewritten to work a row of
    tiles at a time, with F(4x4,3x3) (``winograd_f4``) and dilated layers added; one
    thread (``taskset``, the other core busy), batch 8, float32, median of 7, milliseconds
    forward / input grad::

        shape (C->Cout, HxW, k3 s1)   im2col         winograd       winograd_f4
        64->64,   56x56               32.1 / 29.5    23.1 / 23.5    19.4 / 20.1
        256->256, 14x14               17.6 / 16.9    13.7 / 13.9    14.4 / 14.9
        128->128, 28x28               22.8 / 22.2    18.2 / 18.4    15.0 / 13.4
        32->32,   56x56               14.8 / 13.3    10.9 / 10.2     8.9 / 10.0
        16->16,   64x64                7.7 /  6.5     5.8 /  4.5     4.7 /  4.5
        128->128, 16x16                7.6 /  6.5     6.2 /  5.9     4.8 /  5.2
        512->512, 7x7                 23.3 / 21.7    19.5 / 26.8    34.8 / 40.0
        64->64, 56x56, dilation 2     40.6 / 37.5    33.0 / 32.2    25.9 / 23.9
        64->64, 28x28, dilation 4      7.7 /  7.5    10.2 /  9.4     8.2 /  8.1

    Re-measured 2026-12-03 with OpenBLAS's AVX-512 kernels (``OPENBLAS_CORETYPE`` unset,
    SkylakeX kernels, SGEMM ~380 GFLOP/s on 2 cores against ~130 with the Haswell ones the
    machine image pins), 2 threads, batch 8, median of 7 in each of 4 alternating rounds,
    milliseconds forward / input grad (the ratio: winograd / im2col, paired by round)::

        shape (C->Cout, HxW, k3 s1)   im2col         winograd              winograd_f4
        64->64,   56x56               11.8 / 11.5    13.4 / 15.0 (1.10)    11.4
        256->256, 14x14                7.9 /  7.2     7.9 /  8.4 (1.03)     9.7
        128->128, 28x28                8.9 /  8.2     8.9 /  8.9 (1.02)     8.6
        32->32,   56x56                5.3 /  4.9     5.6 /  6.4 (1.06)     6.5
        512->512, 7x7                 13.9 / 12.9    13.9 / 15.7 (1.02)    18.5
        64->64, 56x56, dilation 2     11.4 / 11.8    14.8 / 15.0 (1.30)    11.6
        64->64, 28x28, dilation 4      3.3 /  3.2     5.6 /  6.5 (1.70)     6.8

    With GEMMs three times as fast the Winograd transforms (memory-bound loops) are most of
    its time, and F(2x2) no longer wins anywhere; F(4x4) ties im2col at best.

    Before the fused loops (second table, Haswell kernels) the transforms cost about as
    much as the GEMMs, so Winograd won from 16 channels on; F(4x4) won where each phase of
    the output (``ceil(oh / d)`` rows, the sub-grid that one phase of a dilated layer
    covers; the whole output at dilation 1) is at least 16 wide, and lost on small maps,
    where its 4x4 tiles hang far past the edge (7x7: 2x2 tiles cover 8x8).

    Re-measured 2026-12-03 once im2col ran fused loops (its column blocks multiplied while
    in cache), with the image's Haswell (AVX2) kernels, 2 threads, batch 8, 3 alternating
    rounds, winograd / im2col time forward / input grad::

        64->64,   56x56               0.90 / 1.07
        128->128, 28x28               0.84 / 0.92
        256->256, 14x14               0.59 / 0.81
        32->32,   56x56               1.26 / 1.52
        64->64, 56x56, dilation 2     1.11 / 1.17

    So the rule that gave Winograd every 3x3 stride-1 layer from 16 channels on (dilated
    too) went: it is the forward from 64 channels and the input gradient from 128, undilated.
    F(4x4) is faster than F(2x2) in the tables but rounds ~2.4x torch's float32 error on
    ResNet's c3 (tests/nets/test_torchvision_weights.py), so it stays opt-in
    (``impl="winograd_f4"``).

    Rule:

    * grouped, stride 1, at most 4 input channels per group (depthwise included):
      ``direct`` for the forward pass and the input gradient (no 9x column copy, no GEMM
      with a 9-long inner dimension), and for the weight gradient when depthwise
      (``Cg = 1``). At stride > 1 the direct loops lose their unit-stride vectorisation
      and im2col wins;
    * 3x3, stride 1, dilation 1 and at least 64 channels per group: ``winograd``
      (F(2x2)) forward, and for the input gradient from 128 channels on phases at least 8
      wide (the input gradient's output, the input);
    * everything else, and the other weight gradients (Winograd's is im2col's):
      ``im2col``;
    * and when OpenBLAS runs AVX-512 kernels (``gemm.AVX512_KERNELS``), ``im2col`` wherever
      the Winograd rule above would pick ``winograd`` (third table).
    """
    Co, Cg = int(W_shape[0]), int(W_shape[1])
    Cog = Co // groups
    if groups > 1 and tuple(stride) == (1, 1) and Cg <= (1 if which == "weight" else 4):
        return "direct"
    if (which == "weight" or gemm.AVX512_KERNELS
            or not winograd_applicable(W_shape, stride, dilation)):
        return "im2col"
    if which == "forward":
        rows = (conv_output_size(int(x_shape[2]), 3, 1, int(padding[0]), int(dilation[0])),
                conv_output_size(int(x_shape[3]), 3, 1, int(padding[1]), int(dilation[1])))
    else:
        rows = (int(x_shape[2]), int(x_shape[3]))
    phase = min(-(-rows[0] // int(dilation[0])), -(-rows[1] // int(dilation[1])))
    undilated = tuple(dilation) == (1, 1)
    if which == "forward" and undilated and min(Cg, Cog) >= 64:
        return "winograd"
    if which == "input" and undilated and min(Cg, Cog) >= 128 and phase >= 8:
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
