"""RoI max-pooling kernels: ``roi_pool_forward`` and ``roi_pool_backward`` on arrays.

Every version has the signature::

    roi_pool_forward(x, rois, out_h, out_w, spatial_scale) -> (y, argmax)
    roi_pool_backward(gy, argmax, rois, x_shape) -> gx

``argmax`` (int64, same shape as ``y``) holds the in-plane offset ``h * W + w`` of each
bin's maximum, -1 for empty bins.

Dispatch: ``VERSIONS``, the family's ``KernelFamily`` (``kernels/versions.py``):
``impl=None`` runs ``cpu`` on NumPy arrays and ``cuda`` on CuPy arrays (``cuda_atomic``
after ``use_deterministic_algorithms(False)``); ``impl=`` forces one of
``VERSIONS.impls``.

Validation is RoI Align's (``kernels/roi_align``): float32/float64 feature maps and
gradients only (a ``TypeError`` for int, bool and float16 maps, no silent cast), RoIs of
any real dtype converted to float64, batch indices inside the batch. **Bounded work**:
the bins of one RoI are clipped to the map and consecutive bins overlap by at most one
pixel, so one (RoI, channel) plane visits at most ``(H + out_h) * (W + out_w)`` pixels
however large the box is; that bound times ``R * C`` is checked against ``max_work``
before dispatch (no device read needed).
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.roi_align import (
    check_feature_map,
    check_output_size,
    check_rois,
    check_scale,
)
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_array, check_int, check_limit

VERSIONS = KernelFamily("roi_pool")


def roi_pool_forward(x, rois, out_h, out_w, spatial_scale=1.0, impl=None):
    """x (N, C, H, W), rois (R, 5) -> (y (R, C, out_h, out_w), argmax int64)."""
    check_same_device("roi_pool", input=x, rois=rois)
    x = check_feature_map(x)
    rois = check_rois(rois, x.shape[0])
    out_h, out_w = check_output_size(out_h, out_w)
    spatial_scale = check_scale(spatial_scale)
    module = VERSIONS.module(impl, x)        # a wrong impl fails before any work
    xp = get_array_module(x)
    shape = (rois.shape[0], x.shape[1], out_h, out_w)
    check_limit(shape, "roi_pool output")
    if rois.shape[0] == 0 or x.shape[1] == 0:
        return xp.zeros(shape, x.dtype), xp.full(shape, -1, np.int64)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"input has an empty spatial size {tuple(x.shape)}")
    check_limit(rois.shape[0] * x.shape[1] * (x.shape[2] + out_h) * (x.shape[3] + out_w),
                "roi_pool: pixels visited (RoIs x channels x bins clipped to the map)",
                limit="max_work")
    return module.roi_pool_forward(x, rois, out_h, out_w, spatial_scale)


def roi_pool_backward(gy, argmax, rois, x_shape, impl=None):
    """gy, argmax (R, C, out_h, out_w) -> gx of shape x_shape."""
    check_same_device("roi_pool backward", grad_output=gy, argmax=argmax, rois=rois)
    gy = check_feature_map(gy, "grad_output")
    check_array(argmax, "argmax", dtypes=(np.int64, np.int32))
    xp = get_array_module(gy)
    x_shape = tuple(check_int(s, "x_shape", minimum=0) for s in x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape}")
    rois = check_rois(rois, x_shape[0])
    argmax = xp.ascontiguousarray(argmax, dtype=np.int64)
    if argmax.shape != gy.shape or gy.shape[:2] != (rois.shape[0], x_shape[1]):
        raise ValueError(f"grad_output {tuple(gy.shape)} and argmax {tuple(argmax.shape)} "
                         f"must both be (R={rois.shape[0]}, C={x_shape[1]}, out_h, out_w)")
    module = VERSIONS.module(impl, gy)
    check_limit(x_shape, "roi_pool input gradient")
    if rois.shape[0] == 0 or x_shape[1] == 0 or x_shape[2] * x_shape[3] == 0:
        return xp.zeros(x_shape, gy.dtype)
    if argmax.size:                          # the versions write gx at argmax: in bounds
        lo, hi = (int(v) for v in xp.stack([argmax.min(), argmax.max()]).tolist())
        if lo < -1 or hi >= x_shape[2] * x_shape[3]:
            raise ValueError(f"argmax must hold offsets h * W + w in [0, "
                             f"{x_shape[2] * x_shape[3]}) or -1 for an input of shape "
                             f"{x_shape}, got {lo if lo < -1 else hi}")
    return module.roi_pool_backward(gy, argmax, rois, x_shape)
