"""Output-size arithmetic shared by every pooling version (plain Python, no arrays).

One pooling window of output row ``oh`` covers the input rows
``oh*sy - ph + i*dy`` for ``i = 0 .. kh-1`` (rows < 0 or >= h are padding). The number of
windows along an axis of length ``size`` is torch's ``pooling_output_shape``::

    span = dilation * (kernel - 1) + 1                      # rows one window touches
    out  = floor((size + 2*pad - span) / stride) + 1         # ceil_mode=False
    out  = ceil((size + 2*pad - span) / stride) + 1          # ceil_mode=True ...
    if ceil_mode and (out - 1) * stride >= size + pad:      # ... but the last window must
        out -= 1                                             # start inside the input or the
                                                             # left padding, never in the
                                                             # right padding alone
Example: size 5, kernel 2, stride 2, no padding: floor(3/2)+1 = 2 windows; ceil_mode gives
ceil(3/2)+1 = 3, and the third starts at row 4 < 5, so it stays (it covers row 4 only).
"""
from __future__ import annotations

from typing import NamedTuple


class PoolWindow(NamedTuple):
    """The window of one pooling call, as the compiled kernels take it (one argument, not
    eight): kernel ``kh x kw``, stride ``(sy, sx)``, padding ``(ph, pw)``, dilation
    ``(dy, dx)``."""
    kh: int
    kw: int
    sy: int
    sx: int
    ph: int
    pw: int
    dy: int
    dx: int


def pool_window(kernel_size, stride, padding, dilation=(1, 1)) -> PoolWindow:
    """``PoolWindow`` from the (h, w) pairs of one call."""
    (kh, kw), (sy, sx), (ph, pw), (dy, dx) = kernel_size, stride, padding, dilation
    return PoolWindow(int(kh), int(kw), int(sy), int(sx), int(ph), int(pw), int(dy), int(dx))


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int,
                     ceil_mode: bool) -> int:
    """Number of pooling windows along one axis (torch's ``pooling_output_shape``)."""
    span = dilation * (kernel - 1) + 1
    num = size + 2 * pad - span + (stride - 1 if ceil_mode else 0)
    out = num // stride + 1        # floor division rounds toward -inf, like torch's div_rtn
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_output_hw(hw, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[int, int]:
    """``(out_h, out_w)``: ``pool_output_size`` along both axes of an ``hw`` image."""
    return tuple(pool_output_size(hw[a], kernel_size[a], stride[a], padding[a], dilation[a],
                                  ceil_mode) for a in range(2))


def avg_window(o: int, stride: int, pad: int, kernel: int, size: int,
               count_include_pad: bool):
    """(first row, end row, divisor rows) of avg-pool window ``o`` along one axis.

    The window is clipped to the *padded* input first (so a ceil-mode window overhanging
    the padding does not count the overhang), which is the divisor with
    ``count_include_pad``; then to the real input, which is the divisor without it.
    Compiled by ``cpu.py`` (``njit``) and ``cuda.py`` (``cuda.jit(device=True)``).
    """
    start = o * stride - pad
    end = min(start + kernel, size + pad)
    padded_len = end - start
    start = max(start, 0)
    end = min(end, size)
    if count_include_pad:
        return start, end, padded_len
    return start, end, end - start


def adaptive_start(i: int, out_size: int, in_size: int) -> int:
    """First input row of adaptive bin ``i``: floor(i * in / out)."""
    return (i * in_size) // out_size


def adaptive_end(i: int, out_size: int, in_size: int) -> int:
    """One past the last input row of adaptive bin ``i``: ceil((i + 1) * in / out)."""
    return -((-(i + 1) * in_size) // out_size)


def first_empty_window(size: int, kernel: int, stride: int, pad: int, dilation: int,
                       out: int) -> int:
    """Index of the first window with no tap inside the input, or -1 when there is none.

    Only windows starting in the top/left padding can miss the input (the output-size rule
    makes every window start before ``size``), and only with dilation: kernel 2, dilation 2,
    padding 1 on a size-1 axis taps rows -1 and 1. torch returns -inf and an out-of-range
    index there; scratchvision rejects such a geometry instead.
    """
    o = 0
    while o < out and o * stride - pad < 0:
        start = o * stride - pad
        if not any(0 <= start + i * dilation < size for i in range(kernel)):
            return o
        o += 1
    return -1
