"""RoI Align kernels: ``roi_align_forward`` and ``roi_align_backward`` on arrays.

Every version has the signature::

    roi_align_forward(x, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned) -> y
    roi_align_backward(gy, rois, x_shape, spatial_scale, sampling_ratio, aligned) -> gx

with ``x (N, C, H, W)``, ``rois (R, 5)`` rows ``[batch_index, x1, y1, x2, y2]`` and
``y (R, C, out_h, out_w)``. Conventions: ``scalar.py``; the algorithm: ``reference.py``.

This module validates (shapes, batch indices, sizes, finiteness), returns early for
zero RoIs or empty maps, converts RoIs to float64 and makes ``x``/``gy`` C-contiguous
float32/float64, then dispatches: ``cpu`` for NumPy, ``cuda`` for CuPy, or ``impl=``.
"""
from __future__ import annotations

import operator

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.versions import IMPLS, load_version  # noqa: F401


def _module(impl, x):
    return load_version("roi_align", impl, x)


def check_float_map(x, name: str = "input"):
    """A 4-D float32/float64 C-contiguous array (other floats/ints become float32)."""
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    return xp.ascontiguousarray(x)


def check_rois(rois, batch: int):
    """Validate (R, 5) RoIs [batch_index, x1, y1, x2, y2]; return a float64 C-contiguous copy."""
    xp = get_array_module(rois)
    rois = xp.asarray(rois)
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError("rois must have shape (R, 5) [batch_index, x1, y1, x2, y2], got "
                         f"{tuple(rois.shape)}")
    rois = xp.ascontiguousarray(rois, dtype=np.float64)
    if rois.shape[0]:
        idx = rois[:, 0]
        wrong_index = (idx != xp.floor(idx)) | (idx < 0) | (idx >= batch)
        # one device-to-host read per call on a GPU (bad values would index out of bounds)
        if bool(~xp.isfinite(rois).all() | wrong_index.any()):
            if not bool(xp.isfinite(rois).all()):
                raise ValueError("rois contain NaN or infinite values")
            bad = float(idx[wrong_index][0])
            raise ValueError(f"rois[:, 0] must be integer batch indices in [0, {batch}) for "
                             f"an input of batch size {batch}, got {bad}")
    return rois


def check_size(out_h, out_w):
    """Positive integer output sizes."""
    try:
        out_h, out_w = operator.index(out_h), operator.index(out_w)
    except TypeError:
        raise TypeError(f"output_size must be integers, got ({out_h!r}, {out_w!r})") from None
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"output_size must be positive, got ({out_h}, {out_w})")
    return out_h, out_w


def check_sampling_ratio(sampling_ratio) -> int:
    """An integer sampling_ratio (<= 0 means adaptive)."""
    try:
        return operator.index(sampling_ratio)
    except TypeError:
        raise TypeError(f"sampling_ratio must be an int (<= 0 for adaptive), got "
                        f"{sampling_ratio!r}") from None


def check_scale(spatial_scale) -> float:
    """A positive finite spatial_scale."""
    spatial_scale = float(spatial_scale)
    if not np.isfinite(spatial_scale) or spatial_scale <= 0:
        raise ValueError(f"spatial_scale must be a positive finite number, got {spatial_scale}")
    return spatial_scale


def roi_align_forward(x, rois, out_h, out_w, spatial_scale=1.0, sampling_ratio=-1,
                      aligned=False, impl=None):
    """x (N, C, H, W), rois (R, 5) -> y (R, C, out_h, out_w)."""
    check_same_device("roi_align", input=x, rois=rois)
    x = check_float_map(x)
    rois = check_rois(rois, x.shape[0])
    out_h, out_w = check_size(out_h, out_w)
    spatial_scale = check_scale(spatial_scale)
    sampling_ratio = check_sampling_ratio(sampling_ratio)
    xp = get_array_module(x)
    if rois.shape[0] == 0 or x.shape[1] == 0:
        return xp.zeros((rois.shape[0], x.shape[1], out_h, out_w), x.dtype)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"input has an empty spatial size {tuple(x.shape)}")
    return _module(impl, x).roi_align_forward(x, rois, out_h, out_w, spatial_scale,
                                              sampling_ratio, bool(aligned))


def roi_align_backward(gy, rois, x_shape, spatial_scale=1.0, sampling_ratio=-1,
                       aligned=False, impl=None):
    """gy (R, C, out_h, out_w) -> gx of shape x_shape."""
    check_same_device("roi_align backward", grad_output=gy, rois=rois)
    gy = check_float_map(gy, "grad_output")
    x_shape = tuple(int(s) for s in x_shape)
    rois = check_rois(rois, x_shape[0])
    if gy.shape[:2] != (rois.shape[0], x_shape[1]):
        raise ValueError(f"grad_output shape {tuple(gy.shape)} does not match "
                         f"(R={rois.shape[0]}, C={x_shape[1]}, out_h, out_w)")
    spatial_scale = check_scale(spatial_scale)
    xp = get_array_module(gy)
    if rois.shape[0] == 0 or x_shape[1] == 0 or x_shape[2] == 0 or x_shape[3] == 0:
        return xp.zeros(x_shape, gy.dtype)
    return _module(impl, gy).roi_align_backward(gy, rois, x_shape, spatial_scale,
                                                check_sampling_ratio(sampling_ratio),
                                                bool(aligned))
