"""RoI Align kernels: ``roi_align_forward`` and ``roi_align_backward`` on arrays.

Every version has the signature::

    roi_align_forward(x, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned) -> y
    roi_align_backward(gy, rois, x_shape, spatial_scale, sampling_ratio, aligned) -> gx

with ``x (N, C, H, W)``, ``rois (R, 5)`` rows ``[batch_index, x1, y1, x2, y2]`` and
``y (R, C, out_h, out_w)``. Conventions: ``scalar.py``; the algorithm: ``reference.py``.

Dispatch: ``VERSIONS``, the family's ``KernelFamily`` (``kernels/versions.py``):
``impl=None`` runs ``cpu`` (Numba) on NumPy arrays and ``cuda`` on CuPy arrays (the
deterministic backward; ``cuda_atomic`` after ``use_deterministic_algorithms(False)``);
``impl="reference"``, ``"cpu"``, ``"cuda"`` or ``"cuda_atomic"`` forces one.

Before dispatch this module checks, with ``scratchvision.validation``:

* **dtypes.** The feature map ``x`` and the gradient ``gy`` are float32 or float64 (a
  ``TypeError`` for int, bool and float16 maps: nothing is cast silently). The RoIs are
  coordinates: any real dtype (ints included) is converted to float64, as the versions
  take them; bool and non-numeric RoIs are a ``TypeError``.
* shapes, integer batch indices inside the batch, finite RoIs, sizes and scales;
* **bounded work.** With ``sampling_ratio <= 0`` the number of samples per bin grows with
  the box (``ceil(roi_size / out_size)`` per axis), so one huge box could ask for more
  work and memory than the machine has. ``_check_work`` counts the samples every version
  takes (``C * out_h * out_w * sum_r grid_h[r] * grid_w[r]``, ``max_work``) and the
  entries of the CPU version's per-RoI tables (``sum_r 2 * (out_h * grid_h[r] + out_w *
  grid_w[r])``, ``max_elements``) and raises ``validation.LimitError`` before anything
  runs (one device-to-host read on a GPU, for adaptive sampling only).

It returns early for zero RoIs or zero channels and hands the versions a C-contiguous
``x``/``gy`` and float64 C-contiguous RoIs.
"""
from __future__ import annotations

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_array, check_int, check_limit, check_number, pair

VERSIONS = KernelFamily("roi_align")


def check_feature_map(x, name: str = "input"):
    """A 4-D (N, C, H, W) float32/float64 array, C-contiguous (``TypeError`` otherwise)."""
    check_array(x, name, ndim=4, layout="(N, C, H, W)")
    return get_array_module(x).ascontiguousarray(x)


def check_rois(rois, batch: int):
    """Validate (R, 5) RoIs [batch_index, x1, y1, x2, y2]; return a float64 C-contiguous copy."""
    xp = get_array_module(rois)
    rois = xp.asarray(rois)
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError("rois must have shape (R, 5) [batch_index, x1, y1, x2, y2], got "
                         f"{tuple(rois.shape)}")
    if rois.dtype.kind not in "iuf":         # coordinates: ints convert, bools do not
        raise TypeError(f"rois must have a real (float or integer) dtype, got {rois.dtype}")
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


def check_output_size(out_h, out_w) -> tuple[int, int]:
    """Positive int output sizes (``TypeError`` for floats and bools)."""
    return pair((out_h, out_w), "output_size", minimum=1)


def check_scale(spatial_scale) -> float:
    """A positive finite spatial_scale."""
    return check_number(spatial_scale, "spatial_scale", minimum=0.0, strict_minimum=True)


def _sample_grids(rois, out_h: int, out_w: int, spatial_scale: float, aligned: bool):
    """(grid_h, grid_w): (R,) float64 adaptive samples per bin of each RoI along each axis,
    as ``scalar.roi_align_geometry`` computes them for ``sampling_ratio <= 0`` (negative
    sizes of inverted aligned boxes count 0, as the versions clip them)."""
    xp = get_array_module(rois)
    roi_h = (rois[:, 4] - rois[:, 2]) * spatial_scale        # (R,), the offset cancels
    roi_w = (rois[:, 3] - rois[:, 1]) * spatial_scale
    if not aligned:                          # legacy: RoIs at least 1x1
        roi_h, roi_w = xp.maximum(roi_h, 1.0), xp.maximum(roi_w, 1.0)
    return (xp.maximum(xp.ceil(roi_h / out_h), 0.0), xp.maximum(xp.ceil(roi_w / out_w), 0.0))


def _check_work(rois, channels: int, out_h: int, out_w: int, spatial_scale: float,
                sampling_ratio: int, aligned: bool) -> None:
    """``LimitError`` before a call whose samples or CPU tables exceed ``LIMITS``."""
    n_rois = rois.shape[0]
    if sampling_ratio > 0:                   # fixed grids: counted without reading the RoIs
        grid_area = float(n_rois) * sampling_ratio * sampling_ratio
        table = 2.0 * n_rois * sampling_ratio * (out_h + out_w)
    else:
        grid_h, grid_w = _sample_grids(rois, out_h, out_w, spatial_scale, aligned)
        xp = get_array_module(rois)
        # float64 sums: a 1e9-pixel box would overflow int64 products; one read on a GPU
        grid_area, table = (float(v) for v in xp.stack(
            [(grid_h * grid_w).sum(), 2.0 * (out_h * grid_h + out_w * grid_w).sum()]).tolist())
    check_limit(min(grid_area * channels * out_h * out_w, 2.0 ** 62),
                "roi_align: bilinear samples (RoIs x channels x bins x samples per bin)",
                limit="max_work")
    check_limit(min(table, 2.0 ** 62), "roi_align: the per-RoI sample tables",
                limit="max_elements")


def roi_align_forward(x, rois, out_h, out_w, spatial_scale=1.0, sampling_ratio=-1,
                      aligned=False, impl=None):
    """x (N, C, H, W), rois (R, 5) -> y (R, C, out_h, out_w)."""
    check_same_device("roi_align", input=x, rois=rois)
    x = check_feature_map(x)
    rois = check_rois(rois, x.shape[0])
    out_h, out_w = check_output_size(out_h, out_w)
    spatial_scale = check_scale(spatial_scale)
    sampling_ratio = check_int(sampling_ratio, "sampling_ratio")
    aligned = bool(aligned)
    module = VERSIONS.module(impl, x)        # a wrong impl fails before any work
    xp = get_array_module(x)
    check_limit((rois.shape[0], x.shape[1], out_h, out_w), "roi_align output")
    if rois.shape[0] == 0 or x.shape[1] == 0:
        return xp.zeros((rois.shape[0], x.shape[1], out_h, out_w), x.dtype)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"input has an empty spatial size {tuple(x.shape)}")
    _check_work(rois, x.shape[1], out_h, out_w, spatial_scale, sampling_ratio, aligned)
    return module.roi_align_forward(x, rois, out_h, out_w, spatial_scale, sampling_ratio,
                                    aligned)


def roi_align_backward(gy, rois, x_shape, spatial_scale=1.0, sampling_ratio=-1,
                       aligned=False, impl=None):
    """gy (R, C, out_h, out_w) -> gx of shape x_shape."""
    check_same_device("roi_align backward", grad_output=gy, rois=rois)
    gy = check_feature_map(gy, "grad_output")
    x_shape = tuple(check_int(s, "x_shape", minimum=0) for s in x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape}")
    rois = check_rois(rois, x_shape[0])
    if gy.shape[:2] != (rois.shape[0], x_shape[1]):
        raise ValueError(f"grad_output shape {tuple(gy.shape)} does not match "
                         f"(R={rois.shape[0]}, C={x_shape[1]}, out_h, out_w)")
    spatial_scale = check_scale(spatial_scale)
    sampling_ratio = check_int(sampling_ratio, "sampling_ratio")
    aligned = bool(aligned)
    module = VERSIONS.module(impl, gy)
    xp = get_array_module(gy)
    check_limit(x_shape, "roi_align input gradient")
    if rois.shape[0] == 0 or x_shape[1] == 0 or x_shape[2] == 0 or x_shape[3] == 0:
        return xp.zeros(x_shape, gy.dtype)
    _check_work(rois, x_shape[1], gy.shape[2], gy.shape[3], spatial_scale, sampling_ratio,
                aligned)
    return module.roi_align_backward(gy, rois, x_shape, spatial_scale, sampling_ratio,
                                     aligned)
