"""RoI Align (He et al., "Mask R-CNN", ICCV 2017), differentiable, as ``torchvision.ops``.

Each RoI is cut into ``output_size`` bins; each bin averages ``grid_h x grid_w`` bilinear
samples of the feature map at the centres of a regular sub-grid::

    y[r, c, ph, pw] = 1/count * sum_{iy, ix} bilinear(x[n_r, c], ys, xs)
    ys = y1 * s - o + ph * bin_h + (iy + 0.5) * bin_h / grid_h        (s = spatial_scale)
    bin_h = (y2 - y1) * s / out_h;   grid_h = sampling_ratio, or ceil(bin_h) when <= 0

``o = 0.5`` when ``aligned=True`` (pixel centres sit at integer + 0.5: the half-pixel
model, which makes a box map exactly onto the pixels it covers); ``o = 0`` and RoIs at
least 1x1 when ``aligned=False`` (legacy Detectron). Unlike RoI pooling there is no
rounding, so the output varies smoothly with the box. The gradient flows to the input
(not to the boxes). Kernels and the exact pixel rules: ``kernels/roi_align``.
"""
from __future__ import annotations

import numpy as np

from scratchvision.autograd.function import Function
from scratchvision.autograd.gradcheck import register_gradcheck
from scratchvision.autograd.tensor import Tensor
from scratchvision.kernels import roi_align as K
from scratchvision.nn.module import Module
from scratchvision.ops._rois import convert_boxes_to_roi_format
from scratchvision.validation import pair


class RoIAlignFunction(Function):
    """y = roi_align(x, rois); backward scatters gy through the same bilinear weights."""

    def forward(self, x, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned,
                impl=None):
        self.rois, self.x_shape, self.impl = rois, x.shape, impl
        self.args = (spatial_scale, sampling_ratio, aligned)
        return K.roi_align_forward(x, rois, out_h, out_w, spatial_scale, sampling_ratio,
                                   aligned, impl=impl)

    def backward(self, gy):
        gx = None
        if self.needs_input_grad[0]:
            gx = K.roi_align_backward(gy, self.rois, self.x_shape, *self.args, impl=self.impl)
        return (gx,) + (None,) * 6


def roi_align(input, boxes, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False, *, impl: str | None = None):
    """RoI Align.

    Parameters
    ----------
    input : (N, C, H, W) Tensor or array.
    boxes : (K, 5) rows ``[batch_index, x1, y1, x2, y2]``, or a list of N arrays (K_i, 4).
    output_size : int or (out_h, out_w).
    spatial_scale : feature-map size / image size (e.g. 1/16 for a stride-16 map).
    sampling_ratio : samples per bin along each axis; <= 0 means ``ceil(bin size)``.
    aligned : shift boxes by -0.5 pixel (the half-pixel model); False is the legacy mode.
    impl : kernel version for the forward and the backward pass: None (``cpu`` for NumPy,
        ``cuda`` for CuPy data) or one of ``kernels.roi_align.VERSIONS.impls``
        (``"reference"``, ``"cpu"``, ``"cuda"``, ``"cuda_atomic"``).

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
        return RoIAlignFunction.apply(input, rois, out_h, out_w, spatial_scale,
                                      sampling_ratio, aligned, impl=impl)
    return K.roi_align_forward(input, rois, out_h, out_w, spatial_scale, sampling_ratio,
                               aligned, impl=impl)


class RoIAlign(Module):
    """Module form of ``roi_align`` (torchvision.ops.RoIAlign)."""

    def __init__(self, output_size, spatial_scale: float, sampling_ratio: int,
                 aligned: bool = False, *, impl: str | None = None) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.impl = impl                     # the kernel version (see ``roi_align``)

    def forward(self, input, rois):
        return roi_align(input, rois, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


@register_gradcheck("roi_align")
def _gradcheck_case(rng):
    x = rng.standard_normal((2, 2, 6, 7))
    rois = np.array([[0, 0.3, 0.7, 4.1, 5.2],      # inside
                     [1, 1.2, -0.6, 6.3, 3.9],     # crosses the top edge
                     [0, 2.0, 2.0, 2.0, 3.5],      # zero width
                     [1, 4.5, 3.0, 9.0, 8.0]])     # crosses the right/bottom edges
    cases = []
    for aligned in (False, True):
        for sampling_ratio in (-1, 1, 2):
            cases.append((lambda x, a=aligned, s=sampling_ratio:
                          roi_align(x, x.xp.asarray(rois), (2, 3), 0.9, s, a), [x]))
    return cases
