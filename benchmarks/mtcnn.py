"""MTCNN face detection end to end: ``nets.MTCNN.detect`` vs facenet-pytorch's MTCNN (CPU).

Both run the same three networks with facenet-pytorch 2.6.0's weights (ours read by
``scratchvision.io.load_torch``) on scikit-image's astronaut photo (512x512 RGB), the
whole cascade per call: image pyramid, P-Net, NMS, R-Net, O-Net, landmarks. The peer is
imported with a stub ``torchvision`` (only ``ops.boxes.batched_nms``, in plain torch), as
in tests/nets/test_mtcnn.py, since torchvision is not installed here. The note gives the
largest difference of the box corners and landmarks, in pixels. Skips (no rows) when
torch, facenet-pytorch or the wheels are missing.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np

from benchmarks.harness import Row, timed_row, try_import


def _facenet_mtcnn_class(torch):
    """facenet_pytorch.models.mtcnn.MTCNN, imported without its package __init__."""
    from tests.nets.test_mtcnn import _torchvision_stub
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        return None
    saved = {k: sys.modules.get(k) for k in ("torchvision", "facenet_pytorch")}
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules.update(_torchvision_stub(torch))
    sys.modules["facenet_pytorch"] = pkg
    try:
        return importlib.import_module("facenet_pytorch.models.mtcnn").MTCNN
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def run(quick: bool = False) -> list[Row]:
    import cv2

    from scratchvision.data.wheel_files import WheelUnavailable, wheel_file
    from scratchvision.nets.mtcnn import MTCNN
    try:
        path = wheel_file("scikit-image", "0.25.2", "skimage/data/astronaut.png")
        ours = MTCNN(weights="facenet")
    except WheelUnavailable as e:
        print(f"mtcnn: {e}")
        return []
    image = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])    # RGB uint8
    timing = {"warmup": 1, "repeat": 2} if quick else {"warmup": 2, "repeat": 7}
    boxes, probs, marks = ours.detect(image)
    note = f"{len(boxes)} face(s)"
    torch = try_import("torch")
    peer = _facenet_mtcnn_class(torch) if torch is not None else None
    rows = []
    if peer is not None:
        theirs = peer(device="cpu")
        tb, tp, tm = theirs.detect(image, landmarks=True)
        if tb is not None and len(tb) == len(boxes):
            diff = max(float(np.abs(boxes - tb).max()), float(np.abs(marks - tm).max()))
            note += f", max diff vs facenet-pytorch {diff:.2g} px"
    case = "astronaut 512x512, min face 20"
    rows.append(timed_row(case, "scratchvision", lambda: ours.detect(image), work=1,
                          work_unit="images/s", note=note, **timing))
    if peer is not None:
        torch.set_num_threads(2)
        rows.append(timed_row(case, "facenet-pytorch",
                              lambda: theirs.detect(image, landmarks=True), peer=True,
                              work=1, work_unit="images/s", **timing))
    return rows
