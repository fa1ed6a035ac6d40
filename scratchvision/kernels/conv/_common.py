"""Index arithmetic shared by every convolution algorithm: output sizes and valid ranges.

One output pixel ``oy`` of a convolution reads input row ``iy = oy*stride - pad + i*dilation``
for kernel tap ``i``. A tap contributes only when ``0 <= iy < H`` (outside is the zero
padding), which for a fixed tap holds for one contiguous range of ``oy``. The kernels
compute that range once per tap (``valid_range``) so their inner loops carry no branch.

The compiled kernels take the geometry of one call as a single ``ConvGeometry`` (a
NamedTuple of ints, which Numba passes by value) instead of ten positional scalars.
"""
from __future__ import annotations

from typing import NamedTuple

from numba import njit


class ConvGeometry(NamedTuple):
    """The index arithmetic of one convolution: kernel ``kh x kw``, stride ``(sh, sw)``,
    padding ``(ph, pw)``, dilation ``(dh, dw)`` and the output size ``oh x ow``."""
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    oh: int
    ow: int


def conv_geometry(kernel_hw, stride, padding, dilation, out_hw) -> ConvGeometry:
    """``ConvGeometry`` from ``(kh, kw)`` and the ``(h, w)`` pairs of one call."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = (kernel_hw, stride, padding, dilation,
                                                        out_hw)
    return ConvGeometry(int(kh), int(kw), int(sh), int(sw), int(ph), int(pw), int(dh),
                        int(dw), int(oh), int(ow))


def conv_output_size(size: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution: ``(size + 2*pad - dilation*(k-1) - 1) // stride + 1``."""
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def conv_transpose_output_size(size: int, k: int, stride: int, pad: int, output_padding: int,
                               dilation: int) -> int:
    """Output length of a transposed convolution (the inverse map of ``conv_output_size``).

    ``(size-1)*stride - 2*pad + dilation*(k-1) + output_padding + 1``: the last input pixel
    lands at ``(size-1)*stride`` in the full (unpadded) output, the kernel spans
    ``dilation*(k-1) + 1`` more pixels, the padding is cropped from both ends, and
    ``output_padding`` adds rows at the end that conv2d's floor division could not tell apart.
    """
    return (size - 1) * stride - 2 * pad + dilation * (k - 1) + output_padding + 1


@njit(cache=True)
def valid_range(out_size, in_size, stride, pad, offset):
    """Range ``[lo, hi)`` of output indices ``o`` with ``0 <= o*stride - pad + offset < in_size``.

    ``offset`` is ``tap*dilation``. Lower bound: ``o >= (pad - offset) / stride`` rounded up;
    upper bound: ``o <= (in_size - 1 + pad - offset) / stride`` rounded down. Python floor
    division (which Numba keeps) rounds negative numerators the right way.
    """
    lo = -((offset - pad) // stride)          # ceil((pad - offset) / stride)
    if lo < 0:
        lo = 0
    hi = (in_size - 1 + pad - offset) // stride + 1
    if hi > out_size:
        hi = out_size
    if hi < lo:
        hi = lo
    return lo, hi
