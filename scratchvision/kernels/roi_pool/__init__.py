"""RoI max-pooling kernels: ``roi_pool_forward`` and ``roi_pool_backward`` on arrays.

Every version has the signature::

    roi_pool_forward(x, rois, out_h, out_w, spatial_scale) -> (y, argmax)
    roi_pool_backward(gy, argmax, rois, x_shape) -> gx

``argmax`` (int64, same shape as ``y``) holds the in-plane offset ``h * W + w`` of each
bin's maximum, -1 for empty bins. Validation and dispatch as in ``kernels/roi_align``.
"""
from __future__ import annotations

import operator

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.roi_align import check_float_map, check_rois, check_scale, check_size
from scratchvision.kernels.versions import IMPLS, load_version  # noqa: F401


def _module(impl, x):
    return load_version("roi_pool", impl, x)


def roi_pool_forward(x, rois, out_h, out_w, spatial_scale=1.0, impl=None):
    """x (N, C, H, W), rois (R, 5) -> (y (R, C, out_h, out_w), argmax int64)."""
    check_same_device("roi_pool", input=x, rois=rois)
    x = check_float_map(x)
    rois = check_rois(rois, x.shape[0])
    out_h, out_w = check_size(out_h, out_w)
    spatial_scale = check_scale(spatial_scale)
    xp = get_array_module(x)
    if rois.shape[0] == 0 or x.shape[1] == 0:
        shape = (rois.shape[0], x.shape[1], out_h, out_w)
        return xp.zeros(shape, x.dtype), xp.full(shape, -1, np.int64)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"input has an empty spatial size {tuple(x.shape)}")
    return _module(impl, x).roi_pool_forward(x, rois, out_h, out_w, spatial_scale)


def roi_pool_backward(gy, argmax, rois, x_shape, impl=None):
    """gy, argmax (R, C, out_h, out_w) -> gx of shape x_shape."""
    check_same_device("roi_pool backward", grad_output=gy, argmax=argmax, rois=rois)
    gy = check_float_map(gy, "grad_output")
    xp = get_array_module(gy)
    x_shape = tuple(operator.index(s) for s in x_shape)
    rois = check_rois(rois, x_shape[0])
    argmax = xp.ascontiguousarray(argmax, dtype=np.int64)
    if argmax.shape != gy.shape or gy.shape[:2] != (rois.shape[0], x_shape[1]):
        raise ValueError(f"grad_output {tuple(gy.shape)} and argmax {tuple(argmax.shape)} "
                         f"must both be (R={rois.shape[0]}, C={x_shape[1]}, out_h, out_w)")
    if rois.shape[0] == 0 or x_shape[1] == 0 or x_shape[2] * x_shape[3] == 0:
        return xp.zeros(x_shape, gy.dtype)
    return _module(impl, gy).roi_pool_backward(gy, argmax, rois, x_shape)
