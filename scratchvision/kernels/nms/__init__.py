"""NMS kernels: greedy ``nms`` and ``soft_nms`` on arrays (see ``reference.py`` for the
algorithms and the tie rule).

Dispatch: ``VERSIONS``, the family's ``KernelFamily`` (``kernels/versions.py``), with one
GPU version because nothing here scatters (``gpu=("cuda",)``): ``impl=None`` runs ``cpu``
on NumPy arrays and ``cuda`` on CuPy arrays; ``impl="reference"``, ``"cpu"`` or ``"cuda"``
forces one. (``cuda.soft_nms`` is the CPU kernel on host copies: Soft-NMS is sequential.)

This module validates the inputs, returns an empty int64 array for empty input, and hands
the versions C-contiguous float64 boxes and scores: boxes are tiny next to the O(N^2)
work, and one dtype means one compiled specialisation and the very same IoU arithmetic on
every device.

* **dtypes.** Boxes and scores are numbers, not images: any real dtype (ints included)
  is converted to float64; bool and non-numeric arrays are a ``TypeError``. NaN boxes or
  scores are a ``ValueError`` (one device-to-host read on a GPU).
* **thresholds** are real numbers, not NaN (``inf`` is allowed: nothing is suppressed).
* **Bounded memory.** The GPU version builds an ``N x ceil(N / 64)`` word suppression
  mask; its size is checked against ``validation.LIMITS["max_elements"]`` first.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvision.backend import check_same_device, get_array_module
from scratchvision.kernels.nms.reference import GAUSSIAN, LINEAR
from scratchvision.kernels.versions import KernelFamily
from scratchvision.validation import check_limit, check_number

VERSIONS = KernelFamily("nms", gpu=("cuda",))
METHODS = {"linear": LINEAR, "gaussian": GAUSSIAN}
MASK_BLOCK = 64                # boxes per word of the GPU mask (cuda.BLOCK)


def check_boxes_scores(boxes, scores):
    """Validate (N, 4) boxes and (N,) scores; return float64 C-contiguous copies."""
    check_same_device("nms", boxes=boxes, scores=scores)
    xp = get_array_module(boxes)
    boxes, scores = xp.asarray(boxes), xp.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) [x1, y1, x2, y2], got "
                         f"{tuple(boxes.shape)}")
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape (N,) with N = boxes.shape[0] = "
                         f"{boxes.shape[0]}, got {tuple(scores.shape)}")
    for name, a in (("boxes", boxes), ("scores", scores)):
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must have a real (float or integer) dtype, got {a.dtype}")
    boxes = xp.ascontiguousarray(boxes, dtype=np.float64)
    scores = xp.ascontiguousarray(scores, dtype=np.float64)
    # one device-to-host read per call on a GPU
    if boxes.size and bool(xp.isnan(boxes).any() | xp.isnan(scores).any()):
        raise ValueError("boxes contain NaN" if bool(xp.isnan(boxes).any())
                         else "scores contain NaN")
    return boxes, scores


def check_threshold(value, name: str) -> float:
    """A real number that is not NaN (infinities allowed) as float."""
    value = check_number(value, name, finite=False)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def nms(boxes, scores, iou_threshold: float, impl: str | None = None):
    """Greedy NMS -> int64 indices of the kept boxes by decreasing score (ties: lower index).

    A box is suppressed by a kept box when their IoU is greater than ``iou_threshold``.
    """
    iou_threshold = check_threshold(iou_threshold, "iou_threshold")
    boxes, scores = check_boxes_scores(boxes, scores)
    version = VERSIONS.resolve(impl, boxes)  # a wrong impl fails before any work
    if boxes.shape[0] == 0:
        return get_array_module(boxes).zeros(0, np.int64)
    if version == "cuda":
        words = -(-boxes.shape[0] // MASK_BLOCK)
        check_limit((words * MASK_BLOCK, words), "nms: the GPU suppression mask (N x N/64 "
                    "words)")
    return VERSIONS.module(version, boxes).nms(boxes, scores, iou_threshold)


def soft_nms(boxes, scores, sigma: float = 0.5, iou_threshold: float = 0.3,
             score_threshold: float = 0.001, method: str = "gaussian",
             impl: str | None = None):
    """Soft-NMS -> (kept int64 indices, their decayed float64 scores), best first."""
    if method not in METHODS:
        raise ValueError(f"method must be 'linear' or 'gaussian', got {method!r}")
    sigma = check_threshold(sigma, "sigma")
    if method == "gaussian" and sigma <= 0:
        raise ValueError(f"sigma must be > 0 for the gaussian method, got {sigma}")
    iou_threshold = check_threshold(iou_threshold, "iou_threshold")
    score_threshold = check_threshold(score_threshold, "score_threshold")
    boxes, scores = check_boxes_scores(boxes, scores)
    module = VERSIONS.module(impl, boxes)
    if boxes.shape[0] == 0:
        xp = get_array_module(boxes)
        return xp.zeros(0, np.int64), xp.zeros(0, np.float64)
    return module.soft_nms(boxes, scores, sigma, iou_threshold, score_threshold,
                           METHODS[method])
