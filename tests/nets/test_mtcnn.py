"""MTCNN (nets/mtcnn.py): the three nets' shapes and facenet-pytorch state_dict layout; the
score-map-to-box arithmetic, 'Min' NMS, rerec and pad on hand-worked cases; the astronaut
photo (one face); equality with facenet-pytorch 2.6.0's MTCNN (nets and whole detector);
the ``detect --model mtcnn`` command."""
import importlib
import importlib.util
import json
import sys
import types

import numpy as np
import pytest

import scratchvision as sv
from scratchvision.data.wheel_files import WheelUnavailable, wheel_file
from scratchvision.nets.mtcnn import (
    MTCNN,
    ONet,
    PNet,
    RNet,
    generate_boxes,
    nms_min,
    pad,
    pyramid_scales,
    rerec,
)

# facenet-pytorch's state_dict layout: name -> shape (pnet.pt, rnet.pt, onet.pt)
FACENET_KEYS = {
    "pnet": {"conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
             "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
             "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
             "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
             "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,)},
    "rnet": {"conv1.weight": (28, 3, 3, 3), "conv1.bias": (28,), "prelu1.weight": (28,),
             "conv2.weight": (48, 28, 3, 3), "conv2.bias": (48,), "prelu2.weight": (48,),
             "conv3.weight": (64, 48, 2, 2), "conv3.bias": (64,), "prelu3.weight": (64,),
             "dense4.weight": (128, 576), "dense4.bias": (128,), "prelu4.weight": (128,),
             "dense5_1.weight": (2, 128), "dense5_1.bias": (2,),
             "dense5_2.weight": (4, 128), "dense5_2.bias": (4,)},
    "onet": {"conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "prelu1.weight": (32,),
             "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,), "prelu2.weight": (64,),
             "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,), "prelu3.weight": (64,),
             "conv4.weight": (128, 64, 2, 2), "conv4.bias": (128,), "prelu4.weight": (128,),
             "dense5.weight": (256, 1152), "dense5.bias": (256,), "prelu5.weight": (256,),
             "dense6_1.weight": (2, 256), "dense6_1.bias": (2,),
             "dense6_2.weight": (4, 256), "dense6_2.bias": (4,),
             "dense6_3.weight": (10, 256), "dense6_3.bias": (10,)},
}


def _wheel(*args):
    try:
        return wheel_file(*args)
    except WheelUnavailable as e:
        pytest.skip(f"wheel not available: {e}")


@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's astronaut photo, (512, 512, 3) uint8 RGB."""
    cv2 = pytest.importorskip("cv2")
    bgr = cv2.imread(str(_wheel("scikit-image", "0.25.2", "skimage/data/astronaut.png")))
    return np.ascontiguousarray(bgr[..., ::-1])


@pytest.fixture(scope="module")
def model():
    """MTCNN with facenet-pytorch's weights, read by scratchvision.io.load_torch."""
    return _facenet_mtcnn()


def _facenet_mtcnn(**kwargs):
    try:
        return MTCNN(weights="facenet", **kwargs)
    except WheelUnavailable as e:
        pytest.skip(f"facenet-pytorch wheel not available: {e}")


# ------------------------------------------------------------------------------ the nets
def test_layer_shapes_and_facenet_state_dict_layout():
    sv.manual_seed(0)
    with sv.no_grad():
        reg, prob = PNet()(sv.randn(2, 3, 31, 40))
        # conv3: 29 x 38, pool 2/2 rounding up: 15 x 19, two conv3: 11 x 15
        assert reg.shape == (2, 4, 11, 15) and prob.shape == (2, 2, 11, 15)
        np.testing.assert_allclose(prob.numpy().sum(axis=1), 1, rtol=1e-6)
        reg, prob = PNet()(sv.randn(1, 3, 12, 12))           # one 12x12 window: one cell
        assert reg.shape == (1, 4, 1, 1) and prob.shape == (1, 2, 1, 1)
        reg, prob = RNet()(sv.randn(3, 3, 24, 24))
        assert reg.shape == (3, 4) and prob.shape == (3, 2)
        reg, marks, prob = ONet()(sv.randn(2, 3, 48, 48))
        assert reg.shape == (2, 4) and marks.shape == (2, 10) and prob.shape == (2, 2)
    m = MTCNN()
    for name, keys in FACENET_KEYS.items():
        sd = getattr(m, name).state_dict()
        assert {k: tuple(v.shape) for k, v in sd.items()} == keys


def test_pyramid_scales():
    # 12 / 20 = 0.6, then x 0.709 while min(h, w) * scale >= 12: 100 px -> 60, 42.5, 30.2,
    # 21.4, 15.2, (10.8 stops)
    s = pyramid_scales(100, 300, 20, 0.709)
    np.testing.assert_allclose(s, 0.6 * 0.709 ** np.arange(5))
    assert pyramid_scales(19, 300, 20, 0.709) == []      # 19 * 0.6 = 11.4 < 12


# -------------------------------------------------------------- the cascade's arithmetic
def test_score_map_cell_to_image_box():
    prob = np.zeros((4, 6), np.float32)
    prob[3, 5] = 0.9                      # row i = 3, column j = 5
    prob[0, 0] = 0.6                      # exactly at the threshold: kept (>=)
    prob[1, 1] = 0.59                     # below: dropped
    reg = np.arange(4 * 4 * 6, dtype=np.float32).reshape(4, 4, 6) / 100
    b = generate_boxes(reg, prob, 0.5, 0.6)
    # row-major order: (0, 0) then (3, 5). At s = 0.5:
    #   (0, 0): x1 = y1 = floor(1 / 0.5) = 2, x2 = y2 = floor(12 / 0.5) = 24
    #   (3, 5): x1 = floor((2*5 + 1) / 0.5) = 22, y1 = floor((2*3 + 1) / 0.5) = 14,
    #           x2 = floor((2*5 + 12) / 0.5) = 44, y2 = floor((2*3 + 12) / 0.5) = 36
    np.testing.assert_array_equal(b[:, :5], np.float32([[2, 2, 24, 24, 0.6],
                                                        [22, 14, 44, 36, 0.9]]))
    np.testing.assert_array_equal(b[:, 5:], [reg[:, 0, 0], reg[:, 3, 5]])
    # float32 arithmetic, as torch: 18 / float32(0.6) = 29.9999988 -> 29 (float64 gives
    # 30.000000000000004 -> 30); the cell (3, 0) at s = 0.6 has y2 = floor(18 / 0.6) = 29
    prob = np.zeros((4, 1), np.float32)
    prob[3, 0] = 1
    b = generate_boxes(np.zeros((4, 4, 1), np.float32), prob, 0.6, 0.6)
    # x1 = floor(1 / 0.6) = 1, y1 = floor(7 / 0.6) = 11, x2 = floor(12 / 0.6) = 20 (here
    # 12 / float32(0.6) = 19.9999992 is nearer to 20.0 than to the float32 below it)
    np.testing.assert_array_equal(b[0, :4], [1, 11, 20, 29])
    assert generate_boxes(reg, np.zeros((4, 6), np.float32), 0.5, 0.6).shape == (0, 9)


def test_nms_min_overlap():
    boxes = np.array([[0, 0, 9, 9],      # A, area (9 - 0 + 1)^2 = 100
                      [5, 5, 14, 14],    # B: intersection with A 5 x 5 = 25, 25 / 100 = 0.25
                      [2, 2, 7, 7],      # C inside A: 36 / min(100, 36) = 1 > 0.7: dropped
                      [20, 0, 29, 9],    # E, area 100
                      [23, 0, 32, 9]],   # F: intersection with E 7 x 10 = 70 / 100 = 0.7
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    # C's IoU with A is 36 / 100 = 0.36: plain NMS at 0.7 would keep it; F's 'Min' overlap
    # is exactly 0.7, and a box is dropped only above the threshold
    np.testing.assert_array_equal(nms_min(boxes, scores, 0.7), [0, 1, 3, 4])
    np.testing.assert_array_equal(nms_min(boxes, scores, 0.69), [0, 1, 3])
    # ranks by score, not by index
    np.testing.assert_array_equal(nms_min(boxes[[2, 0]], scores[[2, 0]], 0.7), [1])
    assert nms_min(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.7).shape == (0,)


def test_rerec_and_pad():
    # w = 20, h = 40, side 40: x1 = 10 + 10 - 20 = 0, y1 = 20 + 20 - 20 = 20
    sq = rerec(np.array([[10, 20, 30, 60, 0.5]], np.float32))
    np.testing.assert_array_equal(sq, [[0, 20, 40, 60, 0.5]])
    # truncated toward zero (-3.7 -> -3), then x1, y1 >= 1 and x2 <= W = 40, y2 <= H = 50
    y1, y2, x1, x2 = pad(np.array([[-3.7, 2.2, 50.9, 60.1]], np.float32), 40, 50)
    assert (y1[0], y2[0], x1[0], x2[0]) == (2, 50, 1, 40)


def test_bad_input():
    m = MTCNN()
    with pytest.raises(ValueError, match="uint8"):
        m.detect(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        m.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="weights"):
        MTCNN(weights="vggface2")


def test_no_face_gives_empty_arrays():
    m = MTCNN(thresholds=(1.01, 0.7, 0.7))          # nothing passes stage 1
    boxes, probs, marks = m.detect(np.zeros((40, 50, 3), np.uint8))
    assert boxes.shape == (0, 4) and probs.shape == (0,) and marks.shape == (0, 5, 2)


# --------------------------------------------------------------------- a real photograph
def test_astronaut_has_one_face(model, astronaut):
    boxes, probs, marks = model.detect(astronaut)
    assert boxes.shape == (1, 4) and probs.shape == (1,) and marks.shape == (1, 5, 2)
    assert probs[0] > 0.99
    x1, y1, x2, y2 = boxes[0]
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 200        # Eileen Collins' face
    assert ((marks[0] > [x1, y1]) & (marks[0] < [x2, y2])).all()
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = marks[0]
    assert lex < nx < rex and lmx < rmx and max(ley, rey) < ny < min(lmy, rmy)


def test_stage3_threshold_can_reject_everything(model, astronaut):
    m = _facenet_mtcnn(thresholds=(0.6, 0.7, 1.0))   # p > 1 is impossible
    boxes, probs, marks = m.detect(astronaut)
    assert boxes.shape == (0, 4) and probs.shape == (0,) and marks.shape == (0, 5, 2)


# ----------------------------------------------------------------- against facenet-pytorch
def _torchvision_stub(torch) -> dict:
    """The two torchvision modules facenet-pytorch's detect_face.py imports: ops.boxes
    (batched_nms, written here in plain torch as torchvision's CPU kernel: sort by score,
    stable; drop IoU > threshold) and transforms.functional (only used by extract_face)."""

    def nms(boxes, scores, thr):
        order = torch.sort(scores, descending=True, stable=True).indices
        x1, y1, x2, y2 = boxes.unbind(1)
        area = (x2 - x1) * (y2 - y1)
        alive, keep = torch.ones(len(boxes), dtype=torch.bool), []
        for i in order.tolist():
            if alive[i]:
                keep.append(i)
                iw = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
                ih = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
                inter = iw * ih
                alive &= ~(inter / (area[i] + area - inter) > thr)
        return torch.tensor(keep, dtype=torch.int64)

    def batched_nms(boxes, scores, idxs, thr):
        if boxes.numel() == 0:
            return torch.empty(0, dtype=torch.int64)
        offsets = idxs.to(boxes) * (boxes.max() + 1)     # torchvision's coordinate trick
        return nms(boxes + offsets[:, None], scores, thr)

    mods = {n: types.ModuleType(n) for n in
            ("torchvision", "torchvision.ops", "torchvision.ops.boxes",
             "torchvision.transforms", "torchvision.transforms.functional")}
    for name, mod in mods.items():
        parent, _, child = name.rpartition(".")
        if parent:
            mods[parent].__path__ = []
            setattr(mods[parent], child, mod)
    mods["torchvision.ops.boxes"].batched_nms = batched_nms
    return mods


@pytest.fixture(scope="module")
def facenet():
    """facenet_pytorch.models.mtcnn, imported with a stub torchvision (not installed here).

    The package's ``__init__`` is bypassed (it also imports InceptionResnetV1, which needs
    ``requests``); the stubs and the package leave ``sys.modules`` when the import is done
    (the imported modules keep their references), so no other test sees them."""
    torch = pytest.importorskip("torch")
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        pytest.skip("facenet-pytorch is not installed (pip install --no-deps "
                    "facenet-pytorch==2.6.0)")
    before = set(sys.modules)
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = list(spec.submodule_search_locations)
    with pytest.MonkeyPatch.context() as mp:
        for name, mod in _torchvision_stub(torch).items():
            mp.setitem(sys.modules, name, mod)
        mp.setitem(sys.modules, "facenet_pytorch", pkg)
        try:
            mod = importlib.import_module("facenet_pytorch.models.mtcnn")
        except Exception as e:  # noqa: BLE001  (any import failure is a reason to skip)
            pytest.skip(f"facenet_pytorch.models.mtcnn cannot be imported: {e!r}")
        finally:
            for name in set(sys.modules) - before:
                if name.startswith("facenet_pytorch"):
                    del sys.modules[name]
    # detect_face.py's functions (generateBoundingBox, nms_numpy, ...) by their module dict
    return types.SimpleNamespace(mtcnn=mod, utils=mod.detect_face.__globals__)


@pytest.mark.peers
def test_nets_equal_facenet_pytorch(facenet, model):
    import torch
    rng = np.random.default_rng(0)
    for name, shape in (("pnet", (2, 3, 37, 50)), ("rnet", (5, 3, 24, 24)),
                        ("onet", (3, 3, 48, 48))):
        theirs = getattr(facenet.mtcnn, name[0].upper() + "Net")().eval()  # its own .pt
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in theirs(torch.from_numpy(x))]
        with sv.no_grad():
            got = [t.numpy() for t in getattr(model, name)(sv.tensor(x))]
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=2e-5, err_msg=name)


@pytest.mark.peers
def test_generate_boxes_equals_facenet_pytorch(facenet):
    import torch
    rng = np.random.default_rng(1)
    reg = rng.normal(0, 0.1, (1, 4, 40, 53)).astype(np.float32)
    prob = rng.uniform(0, 1, (1, 40, 53)).astype(np.float32)
    for scale in 0.6 * 0.709 ** np.arange(8):
        theirs, _ = facenet.utils["generateBoundingBox"](torch.from_numpy(reg),
                                                    torch.from_numpy(prob), scale, 0.6)
        np.testing.assert_array_equal(generate_boxes(reg[0], prob[0], scale, 0.6),
                                      theirs.numpy())


def _composite(astronaut):
    """Three faces: the photo at half size, a crop with the face whole, a crop with it
    cut by the right edge (the crops of the cascade are clipped there)."""
    import cv2
    half = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.hstack([half, astronaut[:256, 100:356],
                                           astronaut[:256, 150:250]]))


@pytest.mark.peers
@pytest.mark.parametrize("which", ["astronaut", "composite"])
def test_detect_equals_facenet_pytorch(facenet, model, astronaut, which):
    import torch
    image = astronaut if which == "astronaut" else _composite(astronaut)
    theirs = facenet.mtcnn.MTCNN()
    with torch.no_grad():
        e_boxes, e_probs, e_marks = theirs.detect(image, landmarks=True)
    boxes, probs, marks = model.detect(image)
    assert e_boxes is not None and len(boxes) == len(e_boxes)
    np.testing.assert_allclose(boxes, np.asarray(e_boxes, np.float32), atol=1.0)
    np.testing.assert_allclose(probs, np.asarray(e_probs, np.float32), atol=1e-3)
    np.testing.assert_allclose(marks, np.asarray(e_marks, np.float32), atol=1.0)


@pytest.mark.peers
def test_nms_min_equals_facenet_pytorch(facenet, rng):
    xy = rng.uniform(0, 100, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (60, 2))], axis=1).astype(np.float32)
    scores = rng.permutation(60).astype(np.float32)             # distinct: no ties
    for thr in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(nms_min(boxes, scores, thr),
                                      facenet.utils["nms_numpy"](boxes, scores, thr, "Min"))


# ------------------------------------------------------------------------------ the CLI
def test_detect_command_draws_faces_and_writes_json(model, astronaut, tmp_path):
    import cv2

    from scratchvision.cli import main as cli_main
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut[..., ::-1])
    out = tmp_path / "out"
    assert cli_main(["detect", "--model", "mtcnn", "--image", str(path), "--out", str(out),
                     "--quiet"]) == 0
    picture = cv2.imread(str(out / "astronaut.png"))
    assert picture.shape == astronaut.shape and (picture[..., ::-1] != astronaut).any()
    result = json.loads((out / "astronaut.json").read_text())
    boxes, probs, marks = model.detect(astronaut)
    assert len(result["detections"]) == 1
    face = result["detections"][0]
    np.testing.assert_allclose(face["box"], boxes[0], rtol=1e-6)
    np.testing.assert_allclose(face["score"], probs[0], rtol=1e-6)
    np.testing.assert_allclose(face["landmarks"], marks[0], rtol=1e-6)
    with pytest.raises(SystemExit, match="--image"):
        cli_main(["detect", "--model", "mtcnn", "--split", "val", "--out", str(out)])
