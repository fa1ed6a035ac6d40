"""Pooling ops: max_pool2d (with return_indices), avg_pool2d, max_unpool2d,
adaptive_avg_pool2d, adaptive_max_pool2d, as in ``torch.nn.functional``.

Each op but adaptive_max_pool2d is a thin ``Function`` over ``scratchvision.kernels.pool``
(reference, Numba CPU and CUDA versions; the kernels validate arguments and explain the
window arithmetic). Those ops take ``impl=`` (keyword-only, a scratchvision extension):
None, the default, runs 'cpu' on NumPy data and 'cuda' on CuPy data; 'reference', 'cpu',
'cuda' or 'cuda_atomic' (``kernels.pool.VERSIONS.impls``) forces that kernel version for
the forward and the backward pass; any other name is a ValueError listing them.
Inputs are (N, C, H, W) or unbatched (C, H, W), float32 or float64.

Backward passes:

* max_pool2d routes each output gradient to the input cell that won its window (the saved
  argmax indices); cells that win several overlapping windows receive the sum.
* avg_pool2d spreads ``gy / divisor`` over the window's real input cells.
* adaptive_avg_pool2d spreads ``gy / bin_area`` over the bin.
* max_unpool2d (its forward scatters by ``indices``) gathers: ``gx = gy.flat[indices]``.
* adaptive_max_pool2d routes each output gradient to its bin's argmax, like max_pool2d.

adaptive_max_pool2d is written in array code (NumPy or CuPy alike) rather than as a
kernel: one vectorised reduction over (N, C) per output bin, ``oh * ow`` of them, which is
cheap for the small grids it is used for (SPP-net's 1/2/4 pyramids, RoI heads' 7x7).
Within a bin the first maximum in row-major order wins, and a NaN wins over any number
(the last NaN of the bin), as in torch's CPU kernel.
"""
from __future__ import annotations

from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels import pool as K
from scratchvision.validation import check_images, check_limit

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "max_pool2d",
           "max_unpool2d"]


def _batched(x, name: str = "input"):
    """(x as 4-D, was it unbatched); raises on other ranks."""
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    return x, False


class MaxPool2d(Function):
    """y, indices = max over windows; backward routes gy to the argmax."""

    def forward(self, x, kernel_size, stride, padding, dilation, ceil_mode, *, impl=None):
        x4, self.unbatched = _batched(x)
        self.args = (kernel_size, stride, padding, dilation, ceil_mode)
        self.x_shape, self.impl = x4.shape, impl
        y, self.indices = K.max_pool2d_forward(x4, *self.args, impl=impl)
        if self.unbatched:
            y, self.indices = y[0], self.indices[0]
        return y

    def backward(self, gy):
        idx = self.indices
        if self.unbatched:
            gy, idx = gy[None], idx[None]
        gx = K.max_pool2d_backward(gy, idx, self.x_shape, *self.args, impl=self.impl)
        return (gx[0] if self.unbatched else gx,) + (None,) * (len(self.needs_input_grad) - 1)


class AvgPool2d(Function):
    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, *, impl=None):
        x4, self.unbatched = _batched(x)
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)
        self.x_shape, self.impl = x4.shape, impl
        y = K.avg_pool2d_forward(x4, *self.args, impl=impl)
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gx = K.avg_pool2d_backward(gy[None] if self.unbatched else gy, self.x_shape, *self.args,
                                   impl=self.impl)
        return (gx[0] if self.unbatched else gx,) + (None,) * (len(self.needs_input_grad) - 1)


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size, *, impl=None):
        x4, self.unbatched = _batched(x)
        self.x_shape, self.impl = x4.shape, impl
        y = K.adaptive_avg_pool2d_forward(x4, output_size, impl=impl)
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gx = K.adaptive_avg_pool2d_backward(gy[None] if self.unbatched else gy, self.x_shape,
                                            impl=self.impl)
        return (gx[0] if self.unbatched else gx,) + (None,) * (len(self.needs_input_grad) - 1)


class AdaptiveMaxPool2d(Function):
    """Max over each adaptive bin, looping over the ``oh * ow`` bins (each one reduction
    over all (n, c) planes at once); backward adds gy at the saved argmax of each bin."""

    def forward(self, x, output_size):
        x4, self.unbatched = _batched(x)
        check_images(x4)
        if x4.shape[1] == 0:
            raise ValueError(f"adaptive_max_pool2d: expected input to have non-zero size for "
                             f"non-batch dimensions, got shape {tuple(x.shape)}")
        oh, ow = K.adaptive_output_size(x4.shape, output_size)
        check_limit(x4.shape[:2] + (oh, ow), f"adaptive_max_pool2d's output (output_size "
                                             f"{(oh, ow)})")
        xp = xp_of(x4)
        n, c, h, w = x4.shape
        y = xp.empty((n, c, oh, ow), x4.dtype)
        idx = xp.empty((n, c, oh, ow), xp.int64)
        for i in range(oh):
            h0, h1 = K.adaptive_start(i, oh, h), K.adaptive_end(i, oh, h)  # floor, ceil
            for j in range(ow):
                w0, w1 = K.adaptive_start(j, ow, w), K.adaptive_end(j, ow, w)
                bw = w1 - w0
                win = x4[:, :, h0:h1, w0:w1].reshape(n, c, (h1 - h0) * bw)  # (N, C, area)
                k = win.argmax(axis=2)                               # first maximum
                nan = xp.isnan(win)
                last_nan = win.shape[2] - 1 - nan[..., ::-1].argmax(axis=2)
                k = xp.where(nan.any(axis=2), last_nan, k)          # torch: the last NaN
                y[:, :, i, j] = xp.take_along_axis(win, k[..., None], axis=2)[..., 0]
                idx[:, :, i, j] = (h0 + k // bw) * w + (w0 + k % bw)  # flat h * W + w
        self.x_shape, self.indices = x4.shape, idx
        if self.unbatched:
            return y[0]
        return y

    def backward(self, gy):
        xp = xp_of(gy)
        n, c, h, w = self.x_shape
        oh, ow = self.indices.shape[2:]
        gx = xp.zeros((n * c, h * w), gy.dtype)
        g = gy.reshape(n * c, oh * ow)
        idx = self.indices.reshape(n * c, oh * ow)
        rows = xp.arange(n * c)
        for b in range(oh * ow):     # one bin at a time: rows differ, so += is exact
            gx[rows, idx[:, b]] += g[:, b]
        gx = gx.reshape(self.x_shape)
        return gx[0] if self.unbatched else gx, None


class MaxUnpool2d(Function):
    def forward(self, x, indices, output_size, *, impl=None):
        x4, self.unbatched = _batched(x)
        if indices.shape != x.shape:
            raise ValueError(f"max_unpool2d: indices shape {tuple(indices.shape)} must equal "
                             f"input shape {tuple(x.shape)}")
        self.indices = indices[None] if self.unbatched else indices
        self.impl = impl
        y = K.max_unpool2d_forward(x4, self.indices, output_size, impl=impl)
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gx = K.max_unpool2d_backward(gy[None] if self.unbatched else gy, self.indices,
                                     impl=self.impl)
        return (gx[0] if self.unbatched else gx,) + (None,) * (len(self.needs_input_grad) - 1)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False, *,
               impl: str | None = None):
    """2-D max pooling over (N, C, H, W) or (C, H, W) input.

    Parameters
    ----------
    input : (N, C, H, W) or (C, H, W) Tensor.
    kernel_size : int or (kh, kw).
    stride : int or (sy, sx); default ``kernel_size``.
    padding : int or pair, implicit -inf padding on both sides, at most ``kernel_size // 2``.
    dilation : int or pair, the step between window taps.
    ceil_mode : use ceil instead of floor for the output size (a window that would start
        in the right padding alone is dropped).
    return_indices : also return the argmax of each window as a flat index ``h * W + w``
        into its (n, c) plane (input to ``max_unpool2d``).
    impl : None or a kernel version ('reference', 'cpu', 'cuda', 'cuda_atomic'; see the
        module docstring), for the forward and the backward pass.

    Returns
    -------
    Tensor (N, C, out_h, out_w), with
    ``out = floor((H + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1``;
    and an int64 Tensor of indices of the same shape when ``return_indices``.
    """
    fn = MaxPool2d()
    y = fn.run(input, kernel_size, stride, padding, dilation, ceil_mode, impl=impl)
    if return_indices:
        return y, Tensor._make(fn.indices, False)
    return y


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0,  # noqa: A002
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None, *, impl: str | None = None) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W) input.

    Parameters
    ----------
    input : (N, C, H, W) or (C, H, W) Tensor.
    kernel_size, stride (default ``kernel_size``), padding (zero padding, at most
        ``kernel_size // 2``) : int or pair.
    ceil_mode : ceil instead of floor for the output size.
    count_include_pad : divide by the window size including zero padding (but not the
        overhang of a ceil-mode window past the padding); False divides by the number of
        real input cells in the window.
    divisor_override : divide every window sum by this int instead.
    impl : None or a kernel version ('reference', 'cpu', 'cuda', 'cuda_atomic'; see the
        module docstring), for the forward and the backward pass.

    Returns
    -------
    Tensor (N, C, out_h, out_w), ``out = floor((H + 2*padding - kernel_size) / stride) + 1``.
    """
    return AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                           divisor_override, impl=impl)


def adaptive_avg_pool2d(input: Tensor, output_size, *,  # noqa: A002
                        impl: str | None = None) -> Tensor:
    """Average pooling to a fixed grid of ``output_size`` bins, whatever the input size.

    Bin ``i`` of an axis of length H covers rows ``floor(i*H/oh)`` to
    ``ceil((i+1)*H/oh) - 1`` (bins overlap when H is not a multiple of oh).

    Parameters
    ----------
    input : (N, C, H, W) or (C, H, W) Tensor.
    output_size : int or (oh, ow); a None entry keeps that input size.
    impl : None or a kernel version ('reference', 'cpu', 'cuda', 'cuda_atomic'; see the
        module docstring), for the forward and the backward pass.

    Returns
    -------
    Tensor (N, C, oh, ow).
    """
    return AdaptiveAvgPool2d.apply(input, output_size, impl=impl)


def adaptive_max_pool2d(input: Tensor, output_size,  # noqa: A002
                        return_indices: bool = False):
    """Max pooling to a fixed grid of ``output_size`` bins, whatever the input size.

    Bin ``i`` of an axis of length H covers rows ``floor(i*H/oh)`` to
    ``ceil((i+1)*H/oh) - 1``, as in ``adaptive_avg_pool2d`` (torch's boundaries).

    Parameters
    ----------
    input : (N, C, H, W) or (C, H, W) Tensor (floating point).
    output_size : int or (oh, ow); a None entry keeps that input size.
    return_indices : also return the argmax of each bin as a flat index ``h * W + w``
        into its (n, c) plane (int64), as ``max_pool2d``.

    Returns
    -------
    Tensor (N, C, oh, ow); and the int64 indices of the same shape when
    ``return_indices``.
    """
    x = input if isinstance(input, Tensor) else Tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_max_pool2d: input must be (N, C, H, W) or (C, H, W), got "
                         f"shape {tuple(x.shape)}")
    fn = AdaptiveMaxPool2d()
    y = fn.run(x, output_size)
    if return_indices:
        idx = fn.indices[0] if fn.unbatched else fn.indices
        return y, Tensor._make(idx, False)
    return y


def max_unpool2d(input: Tensor, indices, kernel_size, stride=None, padding=0,  # noqa: A002
                 output_size=None, *, impl: str | None = None) -> Tensor:
    """Partial inverse of ``max_pool2d``: each value goes back to the cell its argmax index
    names, every other cell is zero (the unpooling of DeconvNet / SegNet).

    Parameters
    ----------
    input : (N, C, H, W) or (C, H, W) Tensor, the pooled values.
    indices : int Tensor or array of the same shape, from ``max_pool2d(...,
        return_indices=True)``: flat indices ``h * out_w + w`` into each output plane.
    kernel_size, stride (default ``kernel_size``), padding : the pooling's arguments, used
        for the default output size ``(H - 1) * stride - 2 * padding + kernel_size``.
    output_size : (h, w) or (N, C, h, w), to undo the rounding of the pooling (e.g. an odd
        input size); must lie strictly within ``default ± stride``.
    impl : None or a kernel version ('reference', 'cpu', 'cuda', 'cuda_atomic'; see the
        module docstring), for the forward and the backward pass.

    Returns
    -------
    Tensor (N, C, h, w).
    """
    x_shape = (1,) + tuple(input.shape) if input.ndim == 3 else tuple(input.shape)
    if len(x_shape) != 4:
        raise ValueError(f"max_unpool2d: input must be (N, C, H, W) or (C, H, W), got shape "
                         f"{tuple(input.shape)}")
    out = K.unpool_output_size(x_shape, kernel_size, stride, padding, output_size)
    return MaxUnpool2d.apply(input, indices, out, impl=impl)


# ------------------------------------------------------------------------- gradchecks
@register_gradcheck("max_pool2d")
def _max_pool2d_case(rng):
    x = rng.standard_normal((1, 2, 7, 6))      # distinct values: no ties, argmax is stable
    return [(lambda t: max_pool2d(t, 2), [x]),
            (lambda t: max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True), [x]),
            (lambda t: max_pool2d(t, (3, 2), stride=1, padding=(1, 0), dilation=(2, 1)), [x]),
            (lambda t: max_pool2d(t, 2, return_indices=True)[0], [x[0]])]


@register_gradcheck("avg_pool2d")
def _avg_pool2d_case(rng):
    x = rng.standard_normal((1, 2, 7, 6))
    return [(lambda t: avg_pool2d(t, 2), [x]),
            (lambda t: avg_pool2d(t, 3, 2, 1, ceil_mode=True), [x]),
            (lambda t: avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x]),
            (lambda t: avg_pool2d(t, (2, 3), 1, (1, 0), divisor_override=4), [x[0]])]


@register_gradcheck("adaptive_avg_pool2d")
def _adaptive_avg_pool2d_case(rng):
    x = rng.standard_normal((1, 2, 7, 6))
    return [(lambda t: adaptive_avg_pool2d(t, (3, 4)), [x]),
            (lambda t: adaptive_avg_pool2d(t, 1), [x]),
            (lambda t: adaptive_avg_pool2d(t, (None, 5)), [x[0]])]


@register_gradcheck("max_unpool2d")
def _max_unpool2d_case(rng):
    x = rng.standard_normal((1, 2, 7, 6))
    y, idx = max_pool2d(Tensor(x), 2, return_indices=True)    # unique indices
    return [(lambda t: max_unpool2d(t, idx.to(t.device), 2), [y.numpy()]),
            (lambda t: max_unpool2d(t, idx.to(t.device), 2, output_size=(7, 6)), [y.numpy()])]


@register_gradcheck("adaptive_max_pool2d")
def _adaptive_max_pool2d_case(rng):
    x = rng.standard_normal((1, 2, 7, 6))      # distinct values: the argmax is stable
    return [(lambda t: adaptive_max_pool2d(t, (3, 4)), [x]),
            (lambda t: adaptive_max_pool2d(t, 1), [x]),
            (lambda t: adaptive_max_pool2d(t, (None, 4), return_indices=True)[0], [x[0]]),
            (lambda t: adaptive_max_pool2d(t, (5, 5)), [x])]
