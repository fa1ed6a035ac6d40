"""``sv.save`` / ``sv.load``: a whole training state round-trips bit for bit (every dtype,
0-d, empty and non-contiguous arrays, big ints, non-finite floats, unicode, int keys,
tuples), the file is a plain ``.npz`` that ``np.load(allow_pickle=False)`` opens, what
cannot be stored is refused at save time naming its key path, a file that is not a
checkpoint is refused at load time naming the file, writes are atomic, ``nn.save`` /
``nn.load`` use the format and still read the older flat weight files, the optimiser's
state is Tensors, and a trainer resumed from its checkpoint gives the same bits."""
import io
import json
import math
import os
import re
import struct
import zipfile
from collections import OrderedDict, defaultdict

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn
from scratchvision.serialization import CheckpointError, PlainNpzError
from tests.test_trainer import make_model, trainer


# ---------------------------------------------------------------------------- helpers
def assert_same(a, b, where="obj"):
    """Equal in type and in every bit, recursively (nan == nan, -0.0 != 0.0)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, sv.Tensor):
        assert (a.dtype, a.shape, a.requires_grad, a.device) == \
            (b.dtype, b.shape, b.requires_grad, b.device), where
        assert_same(a.numpy(), b.numpy(), where + ".data")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and
                                                                 math.isnan(b)), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        assert [type(k) for k in a] == [type(k) for k in b], where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def round_trip(obj, tmp_path, name="state.npz"):
    path = tmp_path / name
    sv.save(obj, path)
    return sv.load(path)


def training_state():
    """Model + optimizer + scheduler + counters + every random state, after 3 steps."""
    sv.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    opt = nn.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    sched = nn.optim.lr_scheduler.SequentialLR(
        opt, [nn.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, 2),
              nn.optim.lr_scheduler.CosineAnnealingLR(opt, 5)], milestones=[2])
    for _ in range(3):
        loss = (model(sv.randn(8, 4)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    legacy = np.random.RandomState(5)
    legacy.standard_normal(3)
    return {"epoch": 3, "step": 3, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": {"scratchvision": sv.autograd.factories.default_generator()
                    .bit_generator.state,
                    "numpy": legacy.get_state(),                 # a tuple with an array
                    "pcg64dxsm": np.random.Generator(np.random.PCG64DXSM(7))
                    .bit_generator.state},
            "history": [{"epoch": 1, "loss": 0.5, "losses": [0.6, 0.4]}],
            "best": None, "settings": {"data": "shapes", "size": [64, 64]}}


# ---------------------------------------------------------------------------- round trips
def test_full_training_state_round_trips_bit_exact(tmp_path):
    state = training_state()
    # the big ints are there: PCG64's 128-bit state and increment
    assert state["rng"]["scratchvision"]["state"]["state"] > 2 ** 64
    back = round_trip(state, tmp_path)
    assert_same(state, back)
    # optimizer state: int keys, Tensors, betas stay a tuple, param indices as torch
    assert list(back["optimizer"]["state"]) == [0, 1, 2, 3, 4, 5]
    assert isinstance(back["optimizer"]["state"][0]["exp_avg"], sv.Tensor)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3, 4, 5]
    # the restored random state draws the same numbers
    g = np.random.default_rng()
    g.bit_generator.state = back["rng"]["scratchvision"]
    assert np.array_equal(g.standard_normal(4),
                          sv.autograd.factories.default_generator().standard_normal(4))
    legacy = np.random.RandomState()
    legacy.set_state(back["rng"]["numpy"])
    ref = np.random.RandomState(5)
    ref.standard_normal(3)
    assert np.array_equal(legacy.standard_normal(5), ref.standard_normal(5))


def test_loaded_state_restores_model_optimizer_and_scheduler(tmp_path):
    state = round_trip(training_state(), tmp_path)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    opt = nn.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    sched = nn.optim.lr_scheduler.SequentialLR(
        opt, [nn.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, 2),
              nn.optim.lr_scheduler.CosineAnnealingLR(opt, 5)], milestones=[2])
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    assert_same(model.state_dict(), state["model"])
    assert_same(opt.state_dict(), state["optimizer"])
    assert_same(sched.state_dict(), state["scheduler"])


DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
          np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128]


def test_every_dtype_and_shape_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for dt in DTYPES:
        size = 24 * np.dtype(dt).itemsize                            # arbitrary bits
        raw = rng.integers(0, 2 if dt is np.bool_ else 256, size=size, dtype=np.uint8)
        arrays[np.dtype(dt).name] = raw.view(dt).reshape(2, 3, 4)
    f32 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    arrays.update({
        "zero_d": np.array(3.5, np.float16), "zero_d_int": np.array(-7, np.int64),
        "empty": np.zeros((0, 3), np.float32), "empty_3d": np.zeros((2, 0, 5), np.int64),
        "strided": f32[:, ::2, ::-1], "transposed": f32.T, "broadcast":
        np.broadcast_to(np.arange(3.0), (4, 3)), "big_endian": np.arange(5, dtype=">i4"),
        "text": np.array(["a", "héllo", "🙂"]), "bytes": np.array([b"ab", b"\x00\xff"]),
        "dates": np.array(["2024-01-01", "1970-01-01T00:00:01"], "datetime64[s]"),
        "nan_payload": np.array([0x7FC00001, 0xFF800000], np.uint32).view(np.float32),
    })
    assert not arrays["strided"].flags.c_contiguous and arrays["transposed"].flags.f_contiguous
    scalars = [np.dtype(dt).type(1) for dt in DTYPES] + [np.float16(-0.0), np.float64("nan"),
                                                        np.str_("x"), np.datetime64(1, "D")]
    tensors = [sv.tensor(np.float16([1.5, -2.0]), requires_grad=True),
               sv.tensor(np.array([True, False])), sv.tensor(np.int64(2 ** 62)),
               sv.zeros(0, 4), sv.tensor(f32).permute(2, 0, 1), nn.Parameter(f32[0].copy()),
               nn.Parameter(np.ones(2), requires_grad=False)]
    obj = {"arrays": arrays, "scalars": scalars, "tensors": tensors}
    back = round_trip(obj, tmp_path)
    assert_same(obj, back)
    assert type(back["tensors"][5]) is nn.Parameter and back["tensors"][5].requires_grad
    assert type(back["tensors"][6]) is nn.Parameter and not back["tensors"][6].requires_grad
    assert back["arrays"]["big_endian"].dtype.str == ">i4"
    back["arrays"]["broadcast"][0, 0] = 9.0                   # loaded arrays are writable


@pytest.mark.parametrize("value", [
    0, -1, 2 ** 53 - 1, 2 ** 53, -2 ** 53, 2 ** 63, 2 ** 64 + 1, -2 ** 127, 3 ** 200,
    0.0, -0.0, 1e-310, 1.7976931348623157e308, 0.1, math.pi, math.inf, -math.inf, math.nan,
    True, False, None, "", "unicode: héllo wörld ✓ 🙂 \u0000 \ud800 \n\"'\\",
])
def test_python_scalars_round_trip_exactly(value, tmp_path):
    assert_same(round_trip({"v": value, "in_list": [value], 7: (value,)}, tmp_path),
                {"v": value, "in_list": [value], 7: (value,)})


def test_containers_keys_and_order(tmp_path):
    obj = OrderedDict([("z", 1), ("a", {}), (3, []), (-2, ()), (2 ** 70, "big key"),
                       ("3", "a str key beside the int key 3"),
                       ("nested", [(1, [2, (3, {"k": [None]})]), [[], [[]]]])])
    back = round_trip(obj, tmp_path)
    assert_same(obj, back)                     # an OrderedDict stays one
    back = round_trip(defaultdict(list, {"a": [1]}), tmp_path)
    assert type(back) is dict and back == {"a": [1]}   # other dict subclasses: plain dicts
    shared = [1, 2]
    back = round_trip({"a": shared, "b": shared}, tmp_path)   # shared, not a cycle
    assert back == {"a": [1, 2], "b": [1, 2]}


def test_file_object_and_exact_path(tmp_path):
    buffer = io.BytesIO()
    sv.save({"w": np.arange(3)}, buffer)
    buffer.seek(0)
    assert_same(sv.load(buffer), {"w": np.arange(3)})
    sv.save([1], tmp_path / "weights.bin")                   # no '.npz' appended
    assert os.listdir(tmp_path) == ["weights.bin"]          # and no temporary left behind
    assert sv.load(str(tmp_path / "weights.bin")) == [1]


# ---------------------------------------------------------------------------- the file
def test_file_is_a_plain_npz_with_a_json_index(tmp_path):
    state = {"model": OrderedDict([("conv.weight", sv.ones(2, 3)), ("fc.bias", sv.zeros(2))]),
             "optimizer": {"state": {0: {"momentum_buffer": sv.ones(2)}}},
             "odd/key": np.arange(2), "ümlaut": np.arange(3), "epoch": 4}
    path = tmp_path / "checkpoint.npz"
    sv.save(state, path)
    with np.load(path, allow_pickle=False) as data:           # no pickle needed
        assert sorted(data.files) == sorted([
            "index.json", "model/conv.weight", "model/fc.bias",
            "optimizer/state/0/momentum_buffer", "arr", "arr~1"])
        assert np.array_equal(data["model/conv.weight"], np.ones((2, 3), np.float32))
        index = json.loads(data["index.json"])
    assert index["format"] == "scratchvision.checkpoint" and index["version"] == 1
    items = dict(index["root"]["items"])
    assert items["epoch"] == 4
    assert items["odd/key"] == {"type": "ndarray", "array": "arr", "dtype": "<i8",
                                "shape": [2]}
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "index.json"
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    first = path.read_bytes()
    sv.save(state, path)                                      # the same state, the same bytes
    assert path.read_bytes() == first


# ---------------------------------------------------------------------------- refusals
def _state_with(leaf):
    return {"model": {"w": np.zeros(2)}, "optimizer": {"param_groups": [{"lr": 0.1,
                                                                         "foo": leaf}]}}


@pytest.mark.parametrize("leaf, what", [
    (lambda x: x, "function"), ({1, 2}, "set"), (object(), "object"),
    (np.array([1, "a"], dtype=object), "dtype object"), (b"bytes", "bytes"),
    (np.ma.masked_array([1.0]), "MaskedArray"), (1 + 2j, "complex"),
])
def test_save_refuses_what_it_cannot_store_naming_the_key(leaf, what, tmp_path):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(b"the previous checkpoint")
    with pytest.raises(TypeError, match=re.escape(
            "obj['optimizer']['param_groups'][0]['foo']") + f".*{what}"):
        sv.save(_state_with(leaf), path)
    assert path.read_bytes() == b"the previous checkpoint"    # untouched
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("key", [1.5, (1, 2), None, True, b"k"])
def test_save_refuses_other_dict_keys(key, tmp_path):
    with pytest.raises(TypeError, match=re.escape("obj['optimizer']") + ".*key.*str or int"):
        sv.save({"optimizer": {key: 1}}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_save_refuses_a_cycle(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(TypeError, match=re.escape("obj['a'][0]") + ".*cycle"):
        sv.save(loop, tmp_path / "x.npz")


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    sv.save({"v": 1}, path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(OSError, match="disk full"):
        sv.save({"v": 2, "a": np.zeros(3)}, path)
    monkeypatch.undo()
    assert sv.load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def _rewrite(src, dst, index=None, drop=()):
    """Copy the archive with the index edited by ``index(dict)`` or members dropped."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in drop:
                continue
            if info.filename == "index.json" and index is not None:
                data = json.dumps(index(json.loads(data))).encode()
            zout.writestr(info, data)
    return dst


def _tamper(key, value):
    def edit(index):
        node = index["root"]["items"][0][1]          # the node of obj['w']
        node[key] = value
        return index
    return edit


def test_load_refuses_files_that_are_not_checkpoints(tmp_path):
    good = tmp_path / "good.npz"
    sv.save({"w": np.arange(6.0), "n": 1}, good)
    raw = good.read_bytes()
    cases = {}

    def case(name, data, pattern):
        path = tmp_path / name
        path.write_bytes(data)
        cases[path] = pattern

    case("truncated.npz", raw[:len(raw) // 2],
         r"truncated file \(zip central directory missing\).*was the save interrupted")
    case("empty.npz", b"", r"empty file \(0 bytes\)")
    case("random.npz", np.random.default_rng(0).bytes(1000), "not a zip archive")
    case("text.npz", b"epoch 3, lr 0.001\n", "a text file .*'epoch 3")
    case("legacy.pt", b"\x80\x02}q\x00.", "pickle.*load_torch")
    torch_zip = io.BytesIO()                                 # torch.save's layout since 1.6
    with zipfile.ZipFile(torch_zip, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/version", "3\n")
    case("model.pt", torch_zip.getvalue(), "PyTorch file.*load_torch")
    case("cut_head.npz", raw[raw.index(b"\x93NUMPY"):], "damaged")   # its start cut off
    foreign = io.BytesIO()
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("README.txt", "hello")
    case("foreign.zip", foreign.getvalue(), "zip archive without index.json.*README.txt")
    case("not_json.npz", _zip_with_index(b"{not json"), "not JSON")
    case("other_format.npz", _zip_with_index(b'{"format": "torch", "version": 1}'),
         "format 'torch'")
    case("list_index.npz", _zip_with_index(b"[1, 2]"), "format 'list'")
    case("new_version.npz", _zip_with_index(
        b'{"format": "scratchvision.checkpoint", "version": 9, "root": null}'), "version 9")
    case("no_root.npz", _zip_with_index(
        b'{"format": "scratchvision.checkpoint", "version": 1}'), "no 'root'")
    case("unknown_node.npz", _zip_with_index(
        b'{"format": "scratchvision.checkpoint", "version": 1, "root": {"type": "pickle"}}'),
        "not a node this version knows")
    for name, edit, pattern in [
            ("missing_array.npz", _tamper("array", "nowhere"),
             r"obj\['w'\] names the array 'nowhere', which the archive does not hold"),
            ("wrong_shape.npz", _tamper("shape", [2, 3]), r"declares float64 \(2, 3\)"),
            ("too_big.npz", _tamper("shape", [10 ** 9]), "cannot hold"),
            ("wrong_dtype.npz", _tamper("dtype", "<f4"), "declares float32"),
            ("object_dtype.npz", _tamper("dtype", "|O"), "cannot hold"),
            ("bad_dtype.npz", _tamper("dtype", "nonsense"), "unknown dtype"),
            ("bad_type.npz", _tamper("type", "module"), "not a node"),
            ("bad_shape.npz", _tamper("shape", "six"), "needs 'shape' as a list")]:
        cases[_rewrite(good, tmp_path / name, index=edit)] = pattern
    cases[_rewrite(good, tmp_path / "no_index.npz", drop=("index.json",))] = \
        "plain .npz.*nn.load"
    for path, pattern in cases.items():
        with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*" + pattern):
            sv.load(path)
        assert issubclass(CheckpointError, ValueError)


def test_load_refuses_corrupted_array_bytes(tmp_path):
    good = tmp_path / "good.npz"
    sv.save({"w": np.arange(100.0)}, good)
    raw = bytearray(good.read_bytes())
    at = raw.index(np.arange(100.0).tobytes()) + 400         # inside w's data
    raw[at] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=re.escape(str(bad)) + ".*cannot be read.*CRC"):
        sv.load(bad)


def _zip_with_index(index: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("index.json", index)
    return out.getvalue()


def test_sv_load_refuses_a_flat_npz_and_nn_load_reads_it(tmp_path):
    path = tmp_path / "old_weights.npz"
    weights = {"linear.weight": np.ones((1, 3), np.float32), "linear.bias": np.zeros(1)}
    with open(path, "wb") as f:                               # as older nn.save wrote them
        np.savez(f, **weights)
    with pytest.raises(PlainNpzError, match=re.escape(str(path)) + ".*plain .npz.*nn.load"):
        sv.load(path)
    state = nn.load(path)
    assert isinstance(state, OrderedDict) and list(state) == list(weights)
    assert_same(dict(state), weights)
    model = make_model()
    model.load_state_dict(state)
    assert np.array_equal(model.linear.weight.numpy(), weights["linear.weight"])


def test_nn_save_writes_the_format_and_nn_load_reads_it(tmp_path):
    model = make_model()
    path = tmp_path / "model.npz"
    nn.save(model, path)
    state = nn.load(path)
    assert isinstance(state, OrderedDict) and list(state) == ["linear.weight", "linear.bias"]
    assert_same(dict(state), dict(model.state_dict()))
    assert sv.load(path).keys() == state.keys()               # the same file for sv.load
    with np.load(path, allow_pickle=False) as data:           # and for NumPy alone
        assert np.array_equal(data["linear.weight"], model.linear.weight.numpy())
    nn.save({"a": [1.0, 2.0], "b": np.float32(3)}, path)      # array-likes: np.asarray
    assert_same(dict(nn.load(path)), {"a": np.array([1.0, 2.0]), "b": np.array(3, np.float32)})
    sv.save({"model": model.state_dict(), "epoch": 1}, path)
    with pytest.raises(ValueError, match=r"not a state_dict.*scratchvision.load\(path\)"
                                         r"\['model'\]"):
        nn.load(path)


def test_map_location(tmp_path):
    path = tmp_path / "t.npz"
    sv.save({"t": sv.ones(2, requires_grad=True)}, path)
    assert sv.load(path, map_location="cpu")["t"].device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        sv.load(path, map_location="tpu")
    if not sv.gpu_available():                     # a GPU tensor's file, on a CPU machine
        gpu = _rewrite(path, tmp_path / "gpu.npz", index=_tamper("device", "cuda"))
        with pytest.raises(RuntimeError, match="no usable GPU.*map_location='cpu'"):
            sv.load(gpu)
        t = sv.load(gpu, map_location="cpu")["t"]
        assert t.device == "cpu" and t.requires_grad


@pytest.mark.gpu
def test_gpu_tensors_and_cupy_arrays(tmp_path):
    import cupy as cp
    path = tmp_path / "g.npz"
    t = sv.randn(3, 2).cuda().requires_grad_()
    sv.save({"t": t, "a": cp.arange(4)}, path)
    back = sv.load(path)
    assert back["t"].device == "cuda" and back["t"].requires_grad
    assert np.array_equal(back["t"].numpy(), t.numpy())
    assert type(back["a"]) is np.ndarray and back["a"].tolist() == [0, 1, 2, 3]
    assert sv.load(path, map_location="cpu")["t"].device == "cpu"
    assert sv.load(tmp_path / "g.npz", map_location="cuda")["t"].device == "cuda"


# ---------------------------------------------------------------------------- optimizer
@pytest.mark.parametrize("make", [
    lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: nn.optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1),
])
@pytest.mark.parametrize("as_arrays", [False, True])
def test_optimizer_state_is_tensors_and_resumes_exactly_through_a_file(make, as_arrays,
                                                                       tmp_path):
    def run(split):
        rng = np.random.default_rng(0)
        params = [nn.Parameter(np.linspace(-1, 1, 6).reshape(2, 3)),
                  nn.Parameter(np.array([0.5, -0.5], np.float32))]
        opt = make(params)
        for i in range(6):
            if i == split:
                state = opt.state_dict()
                values = [v for s in state["state"].values() for v in s.values()]
                assert all(isinstance(v, (sv.Tensor, int)) for v in values)
                sv.save(state, tmp_path / "opt.npz")
                state = sv.load(tmp_path / "opt.npz")
                if as_arrays:                            # load_state_dict takes arrays too
                    for s in state["state"].values():
                        for k, v in s.items():
                            s[k] = v.numpy() if isinstance(v, sv.Tensor) else v
                params = [nn.Parameter(p.numpy().copy()) for p in params]
                opt = make(params)
                opt.load_state_dict(state)
            for p in params:
                p.grad = rng.standard_normal(p.shape).astype(p.dtype)
            opt.step()
        return [p.numpy() for p in params]

    for a, b in zip(run(None), run(3)):
        assert a.tobytes() == b.tobytes()


def test_optimizer_load_state_dict_checks_before_changing(tmp_path):
    p = nn.Parameter(np.zeros(2))
    opt = nn.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    state = opt.state_dict()
    other = nn.optim.SGD([nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))], lr=0.2)
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 0.2 and other.state == {}
    fresh = nn.optim.SGD([nn.Parameter(np.zeros(2))], lr=0.3, momentum=0.9)
    fresh.load_state_dict(state)
    buf = state["state"][0]["momentum_buffer"]
    (q,) = fresh.param_groups[0]["params"]
    q.grad = np.ones(2)
    fresh.step()                                   # updates its own copy, not the dict's
    assert buf.tolist() == [1.0, 1.0] and fresh.param_groups[0]["lr"] == 0.1


# ---------------------------------------------------------------------------- trainer
def test_trainer_checkpoint_holds_the_whole_state_and_round_trips(tmp_path):
    first = trainer(tmp_path / "a", optimizer="sgd", settings={"seed": 0})
    first.fit(stop_after=2)
    path = tmp_path / "a" / "checkpoint.npz"
    ckpt = sv.load(path)
    assert ckpt["format"] == "scratchvision.trainer" and ckpt["version"] == 2
    assert (ckpt["epoch"], ckpt["step"]) == (2, 8)
    assert_same(ckpt["model"], first.model.state_dict())
    assert_same(ckpt["optimizer"], first.optimizer.state_dict())
    assert_same(ckpt["scheduler"], first.scheduler.state_dict())
    assert ckpt["rng"]["scratchvision"] == \
        sv.autograd.factories.default_generator().bit_generator.state
    assert ckpt["history"] == first.history and ckpt["settings"] == {"seed": 0}
    assert ckpt["trainer"] == first.hyper
    # a fresh trainer restores all of it: written again, the file is the same, byte for byte
    second = trainer(tmp_path / "b", optimizer="sgd", settings={"seed": 0})
    sv.manual_seed(12345)                               # the restore must undo this
    second.load_checkpoint(path)
    second.save_checkpoint(tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == path.read_bytes()
    assert nn.load(tmp_path / "a" / "model.npz").keys() == first.model.state_dict().keys()


def test_trainer_resume_with_sgd_momentum_gives_the_same_bits(tmp_path):
    kw = {"optimizer": "sgd", "clip_grad_norm": 1.0}
    straight = trainer(tmp_path / "a", **kw).fit()
    trainer(tmp_path / "b", **kw).fit(stop_after=1)
    resumed = trainer(tmp_path / "b", **kw).fit(resume=True)
    assert [h["losses"] for h in straight] == [h["losses"] for h in resumed]
    a, b = nn.load(tmp_path / "a" / "model.npz"), nn.load(tmp_path / "b" / "model.npz")
    assert_same(dict(a), dict(b))


def test_trainer_refuses_a_checkpoint_of_the_previous_format(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / "checkpoint.npz", "wb") as f:                # the old trainer's layout
        np.savez(f, **{"model/linear.weight": np.zeros((1, 3), np.float32),
                       "meta": np.array(json.dumps({"epoch": 1}))})
    with pytest.raises(ValueError, match="earlier version of the trainer.*no longer reads"):
        trainer(out).fit(resume=True)
    sv.save({"epoch": 1}, out / "checkpoint.npz")                # some other checkpoint
    with pytest.raises(ValueError, match="not a trainer checkpoint"):
        trainer(out).fit(resume=True)



def test_damaged_plain_npz_names_the_file(tmp_path):
    """A plain numpy .npz (the older weight format) with a damaged array: nn.load names the
    file and the cause instead of numpy's bare zip error."""
    from scratchvision import nn
    path = tmp_path / "old.npz"
    np.savez(path, w=np.arange(1000, dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF                       # inside the stored array: its CRC no longer holds
    path.write_bytes(bytes(raw))
    with pytest.raises(sv.serialization.CheckpointError, match=r"old\.npz: a plain \.npz"):
        nn.load(path)
