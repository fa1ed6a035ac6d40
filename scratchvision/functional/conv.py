"""conv2d and conv_transpose2d: differentiable Functions over ``kernels.conv``.

Each Function's forward calls the kernel API (which validates and picks the algorithm),
and its backward calls the two adjoint kernels: for conv2d the input gradient
(``conv2d_backward_input``) and the weight gradient (``conv2d_backward_weight``); for
conv_transpose2d, which is conv2d's input gradient, the roles are exchanged (its input
gradient is a conv2d forward). When both of conv_transpose2d's gradients are needed they
come from one call, ``conv_transpose2d_backward``, which builds the column matrix of ``gy``
that both products read once. The bias gradient of both is ``gy.sum((0, 2, 3))``.
"""
from __future__ import annotations

from scratchvision.autograd.function import Function, xp_of
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels.batch_norm.reference import channel_sum
from scratchvision.kernels import conv as K
from scratchvision.validation import pair


def _batched(x, name: str):
    """(x as 4-D, whether a batch axis was added) for torch's unbatched (C, H, W) inputs."""
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                         f"shape {tuple(x.shape)}")
    return x, False


class _Convolution(Function):
    """The backward both convolutions share: the kernels' input and weight gradients
    (``_grad_input``/``_grad_weight``, on the 4-D ``gy``), the bias gradient
    ``gy.sum((0, 2, 3))``."""

    def backward(self, gy):
        if self.unbatched:
            gy = gy[None]
        needs = self.needs_input_grad
        gx, gW = self._grads(gy, needs[0], len(needs) > 1 and needs[1])
        gb = channel_sum(gy) if len(needs) > 2 and needs[2] else None
        return (gx, gW, gb)[:len(needs)]

    def _grads(self, gy, input_grad: bool, weight_grad: bool):
        """(gx, gW), None where not needed."""
        return (self._grad_input(gy) if input_grad else None,
                self._grad_weight(gy) if weight_grad else None)


class Conv2d(_Convolution):
    """y = conv2d(x, W) + b; ``extra`` pads the bottom/right by one more (asymmetric 'same')."""

    def forward(self, x, W, b=None, *, stride, padding, dilation, groups, extra=(0, 0),
                impl=None):
        x4, self.unbatched = _batched(x, "conv2d")
        if any(extra):
            xp = xp_of(x4)
            x4 = xp.pad(x4, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        self.args = (stride, padding, dilation, groups)
        self.extra, self.impl = extra, impl
        self.x, self.W, self.in_shape = x4, W, x.shape
        y = K.conv2d_forward(x4, W, b, stride, padding, dilation, groups, impl=impl)
        return y[0] if self.unbatched else y

    def _grad_input(self, gy):
        gx = K.conv2d_backward_input(gy, self.W, self.x.shape, *self.args, impl=self.impl)
        if any(self.extra):
            gx = gx[:, :, :gx.shape[2] - self.extra[0], :gx.shape[3] - self.extra[1]]
        return gx.reshape(self.in_shape)

    def _grad_weight(self, gy):
        return K.conv2d_backward_weight(gy, self.x, self.W.shape, *self.args, impl=self.impl)


class ConvTranspose2d(_Convolution):
    """y = conv_transpose2d(x, W) + b (conv2d's input gradient applied to x)."""

    def forward(self, x, W, b=None, *, stride, padding, output_padding, groups, dilation,
                impl=None):
        x4, self.unbatched = _batched(x, "conv_transpose2d")
        self.args = (stride, padding, output_padding, groups, dilation)
        self.impl, self.x, self.W = impl, x4, W
        y = K.conv_transpose2d_forward(x4, W, b, *self.args, impl=impl)
        return y[0] if self.unbatched else y

    def _grad_input(self, gy):
        gx = K.conv_transpose2d_backward_input(gy, self.W, self.x.shape, *self.args,
                                               impl=self.impl)
        return gx[0] if self.unbatched else gx

    def _grad_weight(self, gy):
        return K.conv_transpose2d_backward_weight(gy, self.x, self.W.shape, *self.args,
                                                  impl=self.impl)

    def _grads(self, gy, input_grad: bool, weight_grad: bool):
        if not (input_grad and weight_grad):
            return super()._grads(gy, input_grad, weight_grad)
        # both from one column matrix of gy (kernels.conv.conv_transpose2d_backward)
        gx, gW = K.conv_transpose2d_backward(gy, self.x, self.W, *self.args, impl=self.impl)
        return gx[0] if self.unbatched else gx, gW


def _same_padding(kernel_hw, dilation):
    """torch's padding='same': total d*(k-1) per axis, the odd pixel goes bottom/right."""
    pad, extra = [], []
    for k, d in zip(kernel_hw, dilation):
        total = d * (k - 1)
        pad.append(total // 2)
        extra.append(total - 2 * (total // 2))
    return tuple(pad), tuple(extra)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,  # noqa: A002
           padding=0, dilation=1, groups: int = 1, *, impl: str | None = None) -> Tensor:
    """2-D convolution (cross-correlation) over a batch of images, as ``torch.nn.functional``.

    ``y[n, o] = b[o] + sum_{c in group(o), i, j} W[o, c, i, j] * x[n, c, sh*oy + dh*i - ph,
    sw*ox + dw*j - pw]`` with zero padding outside the image.

    Parameters
    ----------
    input : Tensor (N, C_in, H, W), or (C_in, H, W) unbatched
    weight : Tensor (C_out, C_in / groups, kH, kW)
    bias : Tensor (C_out,), optional
    stride : int or (int, int), >= 1
    padding : int, (int, int), 'valid' (no padding) or 'same' (output size = input size,
        stride 1 only; an odd total padding puts the extra pixel at the bottom/right, as torch)
    dilation : int or (int, int), >= 1: spacing between kernel taps
    groups : int: C_in and C_out split into ``groups`` independent convolutions
        (``groups = C_in`` with ``C_out = m * C_in`` is depthwise)
    impl : None (the default: 'cpu' on NumPy arrays, 'cuda' on CuPy arrays), 'reference',
        'cpu' (the fastest algorithm for the shape: ``kernels.conv.choose_algorithm``),
        'im2col', 'direct', 'winograd', 'winograd_f4', 'cuda' or 'cuda_atomic'
        (scratchvision extension;
        ``kernels.conv.VERSIONS.impls``); used by the forward and both backward passes

    Returns
    -------
    Tensor (N, C_out, H_out, W_out), ``H_out = (H + 2*ph - dh*(kH-1) - 1) // sh + 1``.

    Raises
    ------
    ValueError for channels not divisible by groups, a weight of the wrong rank or channel
    count, a kernel larger than the padded input, or 'same' with stride > 1.
    """
    W_shape = tuple(weight.shape)
    if len(W_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, "
                         f"kW), got shape {W_shape}")
    stride = pair(stride, "stride", minimum=1)
    dilation = pair(dilation, "dilation", minimum=1)
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError(f"conv2d: padding='same' is not supported for strided "
                                 f"convolutions (stride {stride})")
            padding, extra = _same_padding(W_shape[2:], dilation)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
    else:
        padding = pair(padding, "padding")
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*args, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, extra=extra, impl=impl)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,  # noqa: A002
                     stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1,
                     *, impl: str | None = None) -> Tensor:
    """2-D transposed convolution ("deconvolution", "fractionally strided convolution").

    The adjoint of ``conv2d``: each input pixel adds a copy of the kernel, scaled by its
    value, into the output at ``stride`` spacing; ``padding`` then crops the output's border
    (it undoes the padding of the conv2d this one is the transpose of).

    Parameters
    ----------
    input : Tensor (N, C_in, H, W), or (C_in, H, W) unbatched
    weight : Tensor (C_in, C_out / groups, kH, kW) (note: in-channels first, as torch)
    bias : Tensor (C_out,), optional
    stride, padding, dilation : int or (int, int)
    output_padding : int or (int, int): extra rows/columns at the bottom/right, to choose
        among the input sizes that conv2d with this stride maps to the same size; must be
        smaller than ``max(stride, dilation)``
    groups : int
    impl : as for ``conv2d``

    Returns
    -------
    Tensor (N, C_out, H_out, W_out) with
    ``H_out = (H - 1)*sh - 2*ph + dh*(kH - 1) + output_padding_h + 1``.
    """
    if len(tuple(weight.shape)) != 4:
        raise ValueError(f"conv_transpose2d: weight must be 4-D (in_channels, "
                         f"out_channels/groups, kH, kW), got shape {tuple(weight.shape)}")
    args = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose2d.apply(*args, stride=pair(stride, "stride", minimum=1),
                                 padding=pair(padding, "padding"),
                                 output_padding=pair(output_padding, "output_padding"),
                                 groups=groups, dilation=pair(dilation, "dilation", minimum=1),
                                 impl=impl)


# ---------------------------------------------------------------------- gradient checks
@register_gradcheck("conv2d")
def _case_conv2d(rng):
    def case(x_shape, w_shape, b=True, cpu_impl=None, **kw):
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)

        def impl(t):  # a forced CPU algorithm applies to CPU runs of the check only
            return {"impl": cpu_impl} if cpu_impl and t.device == "cpu" else {}
        if b:
            bias = rng.standard_normal(w_shape[0])
            return (lambda x, w, bias: conv2d(x, w, bias, **kw, **impl(x))), [x, w, bias]
        return (lambda x, w: conv2d(x, w, **kw, **impl(x))), [x, w]
    return [case((2, 3, 6, 5), (4, 3, 3, 3), stride=2, padding=1),          # strided, padded
            case((1, 2, 7, 7), (3, 2, 3, 2), b=False, dilation=(2, 1), padding=(2, 0)),
            case((2, 4, 5, 5), (6, 2, 3, 3), groups=2, padding=1),          # grouped
            case((1, 3, 5, 6), (3, 1, 3, 3), groups=3, padding=1),          # depthwise
            case((1, 2, 5, 5), (3, 2, 4, 4), padding="same"),               # asymmetric pad
            case((1, 4, 4, 4), (5, 4, 3, 3), padding=1, cpu_impl="winograd")]


@register_gradcheck("conv_transpose2d")
def _case_conv_transpose2d(rng):
    def case(x_shape, w_shape, b=True, **kw):
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        if b:
            bias = rng.standard_normal(w_shape[1] * kw.get("groups", 1))
            return (lambda x, w, bias: conv_transpose2d(x, w, bias, **kw)), [x, w, bias]
        return (lambda x, w: conv_transpose2d(x, w, **kw)), [x, w]
    return [case((2, 3, 3, 4), (3, 2, 4, 4), stride=2, padding=1),          # FCN-style x2
            case((1, 4, 3, 3), (4, 1, 3, 3), b=False, stride=2, output_padding=1, groups=2),
            case((1, 2, 3, 3), (2, 3, 2, 3), dilation=2, output_padding=(1, 0)),
            case((1, 4, 2, 3), (4, 2, 3, 3), stride=(3, 2), padding=(1, 0), groups=4)]
