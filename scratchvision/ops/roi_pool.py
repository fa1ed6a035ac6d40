"""RoI max pooling (Girshick, "Fast R-CNN", ICCV 2015), differentiable, as torchvision.

Each RoI is scaled by ``spatial_scale`` and **rounded** to whole pixels (C's round, half
away from zero), made at least 1x1 pixel, and cut into ``output_size`` bins: bin ``p`` of
a RoI ``L`` pixels long covers pixels ``[floor(p L / out), ceil((p + 1) L / out))`` from the
RoI start, clipped to the map. Each output is the max over its bin (0 for an empty bin).
The quantisation is why RoI Align was invented: the output does not move smoothly with
the box. The gradient goes to the argmax pixel of each bin (the first maximum in row-major
order). Kernels: ``kernels/roi_pool``.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd.function import Function
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels import roi_pool as K
from scratchvision.nn.module import Module
from scratchvision.ops._rois import convert_boxes_to_roi_format
from scratchvision.validation import pair


class RoIPoolFunction(Function):
    """y = roi_pool(x, rois); backward routes gy to each bin's argmax."""

    def forward(self, x, rois, out_h, out_w, spatial_scale, impl=None):
        y, self.argmax = K.roi_pool_forward(x, rois, out_h, out_w, spatial_scale, impl=impl)
        self.rois, self.x_shape, self.impl = rois, x.shape, impl
        return y

    def backward(self, gy):
        gx = None
        if self.needs_input_grad[0]:
            gx = K.roi_pool_backward(gy, self.argmax, self.rois, self.x_shape, impl=self.impl)
        return (gx,) + (None,) * 4


def roi_pool(input, boxes, output_size, spatial_scale: float = 1.0, *,
             impl: str | None = None):
    """RoI max pooling.

    Parameters
    ----------
    input : (N, C, H, W) Tensor or array.
    boxes : (K, 5) rows ``[batch_index, x1, y1, x2, y2]``, or a list of N arrays (K_i, 4).
    output_size : int or (out_h, out_w).
    spatial_scale : feature-map size / image size.
    impl : kernel version for the forward and the backward pass: None (``cpu`` for NumPy,
        ``cuda`` for CuPy data) or one of ``kernels.roi_pool.VERSIONS.impls``.

    The feature map must be float32 or float64 (a ``TypeError`` otherwise); boxes of any
    real dtype are converted to float64.

    Returns
    -------
    (K, C, out_h, out_w): a Tensor (differentiable in ``input``) for a Tensor input, else
    an array.
    """
    out_h, out_w = pair(output_size, "output_size", minimum=1)
    rois = convert_boxes_to_roi_format(boxes)
    if isinstance(input, Tensor):
        return RoIPoolFunction.apply(input, rois, out_h, out_w, spatial_scale, impl=impl)
    return K.roi_pool_forward(input, rois, out_h, out_w, spatial_scale, impl=impl)[0]


class RoIPool(Module):
    """Module form of ``roi_pool`` (torchvision.ops.RoIPool)."""

    def __init__(self, output_size, spatial_scale: float, *, impl: str | None = None) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.impl = impl                     # the kernel version (see ``roi_pool``)

    def forward(self, input, rois):
        return roi_pool(input, rois, self.output_size, self.spatial_scale, impl=self.impl)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


@register_gradcheck("roi_pool")
def _gradcheck_case(rng):
    # distinct values 0.01 apart in random places: no two pixels of a bin are within the
    # finite-difference step of each other, so the argmax never flips during the check
    x = (rng.permutation(2 * 2 * 6 * 7) * 0.01).reshape(2, 2, 6, 7)
    rois = np.array([[0, 0.3, 0.7, 4.1, 5.2], [1, 1.2, -0.6, 6.3, 3.9],
                     [0, 2.0, 2.0, 2.0, 3.5], [1, 4.5, 3.0, 9.0, 8.0]])
    return [(lambda x: roi_pool(x, x.xp.asarray(rois), (2, 3), 1.0), [x]),  # rois on x's device
            (lambda x: roi_pool(x, x.xp.asarray(rois), 3, 0.5), [x])]
