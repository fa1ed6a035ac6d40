"""``scratchvision.io.load_torch``: files written by hand and by torch, and facenet's weights.

Four parts:
1. files laid out by hand (no torch needed): a 3x4 ``arange`` storage seen through
   contiguous, transposed, sliced, expanded and 0-d tensors, in both formats;
2. safety: pickles that call ``os.system`` / ``builtins.eval``, in a torch-like zip and a
   legacy file, are refused and their payload never runs; bad files give clear errors;
3. files written by ``torch.save`` (both formats), compared bit for bit with ``torch.load``;
4. the real MTCNN weights shipped in the facenet-pytorch 2.6.0 wheel (legacy format).
"""
from __future__ import annotations

import builtins
import collections
import hashlib
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from scratchvision.io import load_torch
from scratchvision.io.torch_pickle import LEGACY_MAGIC, TorchFileError

SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


# --------------------------------------------------------------------------- crafting files

class Global:
    """Pickles as the global ``module.name`` without importing it (torch need not exist)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):          # pickle only requires reduce functions be callable
        raise AssertionError("never called")


class Call:
    """Pickles as ``func(*args)`` (a REDUCE of a Global)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class PersistentId:
    """Pickles as the persistent id ``pid`` (how torch refers to a storage)."""

    def __init__(self, pid):
        self.pid = pid


class CraftPickler(pickle._Pickler):
    """The pure-Python pickler, writing Global and PersistentId the way torch's files have."""

    dispatch = pickle._Pickler.dispatch.copy()

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, PersistentId) else None


def _save_global(self, obj):
    self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())


CraftPickler.dispatch[Global] = _save_global


def craft_pickle(obj) -> bytes:
    buf = io.BytesIO()
    CraftPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def storage(key, numel, kind="FloatStorage", legacy=False):
    """The persistent id of storage ``key`` (legacy ids carry a sixth field: view_metadata)."""
    pid = ("storage", Global("torch", kind), key, "cpu", numel)
    return PersistentId(pid + (None,) if legacy else pid)


def tensor(st, offset, size, stride):
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, hooks)``."""
    hooks = collections.OrderedDict()
    return Call(Global("torch._utils", "_rebuild_tensor_v2"), st, offset, size, stride, False,
                hooks)


def write_zip(path, data_pkl: bytes, storages: dict, top="archive", byteorder=b"little"):
    """A zip laid out like torch's: <top>/data.pkl, byteorder, data/<key>, version."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{top}/data.pkl", data_pkl)
        z.writestr(f"{top}/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"{top}/data/{key}", raw)
        z.writestr(f"{top}/version", b"3\n")


def write_legacy(path, obj_pickle: bytes, storages: dict):
    """Magic, version, sys_info, the object, the sorted keys, then numel + bytes per key.

    ``storages`` maps key -> (numel, raw bytes).
    """
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, 1001, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        f.write(obj_pickle)
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            numel, raw = storages[key]
            f.write(struct.pack("<q", numel) + raw)


def write_both(tmp_path, make_obj, raws: dict, **zip_kwargs):
    """The same object in a zip file and a legacy file; ``raws`` maps key -> (numel, bytes)."""
    zpath, lpath = tmp_path / "new.pt", tmp_path / "legacy.pt"
    write_zip(zpath, craft_pickle(make_obj(False)), {k: r for k, (_, r) in raws.items()},
              **zip_kwargs)
    write_legacy(lpath, craft_pickle(make_obj(True)), raws)
    return zpath, lpath


# --------------------------------------------------------------------------- 1. by hand

def _views(legacy):
    """Tensors over one storage holding 0, 1, ..., 11 (float32)."""
    st = storage("0", 12, legacy=legacy)
    return collections.OrderedDict([
        ("a", tensor(st, 0, (3, 4), (4, 1))),        # [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
        ("aT", tensor(st, 0, (4, 3), (1, 4))),       # its transpose: element (i, j) = 4j + i
        ("slice", tensor(st, 5, (2,), (3,))),        # offset 5, step 3: [5, 8]
        ("col", tensor(st, 2, (3, 1), (4, 1))),      # a[:, 2:3]: [[2] [6] [10]]
        ("expand", tensor(st, 1, (2, 3), (0, 1))),   # stride 0 repeats the row [1 2 3]
        ("scalar", tensor(st, 7, (), ())),           # 0-d: 7
        ("empty", tensor(st, 0, (0, 4), (4, 1))),
        ("epoch", 3),
        ("name", "hand-made"),
    ])


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_hand_made_views_of_one_storage(tmp_path, fmt):
    raw = np.arange(12, dtype="<f4").tobytes()
    paths = dict(zip(["zip", "legacy"], write_both(tmp_path, _views, {"0": (12, raw)})))
    sd = load_torch(paths[fmt])
    assert type(sd) is collections.OrderedDict
    assert list(sd) == ["a", "aT", "slice", "col", "expand", "scalar", "empty", "epoch", "name"]
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(sd["a"], a)
    np.testing.assert_array_equal(sd["aT"], a.T)
    np.testing.assert_array_equal(sd["slice"], [5.0, 8.0])
    np.testing.assert_array_equal(sd["col"], a[:, 2:3])
    np.testing.assert_array_equal(sd["expand"], [[1, 2, 3], [1, 2, 3]])
    assert sd["scalar"].shape == () and sd["scalar"] == 7.0
    assert sd["empty"].shape == (0, 4) and sd["empty"].dtype == np.float32
    assert sd["epoch"] == 3 and sd["name"] == "hand-made"
    for k in ("a", "aT", "slice", "expand", "scalar"):
        assert sd[k].dtype == np.float32 and sd[k].flags.owndata and sd[k].flags.writeable
    sd["a"][0, 0] = 99.0                             # copies: the views are independent
    assert sd["aT"][0, 0] == 0.0


def test_top_folder_name_varies(tmp_path):
    raw = np.arange(12, dtype="<f4").tobytes()
    write_zip(tmp_path / "m.pt", craft_pickle(_views(False)), {"0": raw}, top="m")
    assert load_torch(tmp_path / "m.pt")["slice"].tolist() == [5.0, 8.0]


def test_file_objects_are_accepted(tmp_path):
    raw = np.arange(12, dtype="<f4").tobytes()
    zpath, lpath = write_both(tmp_path, _views, {"0": (12, raw)})
    for path in (zpath, lpath):
        with open(path, "rb") as f:
            assert load_torch(io.BytesIO(f.read()))["slice"].tolist() == [5.0, 8.0]


def test_bfloat16_widens_exactly(tmp_path):
    # bf16 bits are the top half of a float32: 0x3f80 -> 1.0, 0xc020 -> -2.5, 0x7f80 -> inf,
    # 0x0001 -> the smallest bf16 subnormal 2**-133
    bits = np.array([0x3F80, 0xC020, 0x7F80, 0x0001], "<u2")

    def make(legacy):
        return {"w": tensor(storage("0", 4, "BFloat16Storage", legacy), 0, (4,), (1,))}

    for path in write_both(tmp_path, make, {"0": (4, bits.tobytes())}):
        w = load_torch(path)["w"]
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, [1.0, -2.5, np.inf, 2.0 ** -133])


def test_storage_types_give_dtypes(tmp_path):
    kinds = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
             "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
             "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
             "ComplexFloatStorage": "<c8", "ComplexDoubleStorage": "<c16"}
    values = {k: (np.arange(5) % 2 == 1 if v == "?" else np.arange(-2, 3) * (1 + 1j)
                  if v[-2] == "c" or v[-3:] == "c16" else np.arange(-2, 3)).astype(v)
              for k, v in kinds.items()}
    raws = {str(i): (5, values[k].tobytes()) for i, k in enumerate(kinds)}

    def make(legacy):
        return {k: tensor(storage(str(i), 5, k, legacy), 0, (5,), (1,))
                for i, k in enumerate(kinds)}

    for path in write_both(tmp_path, make, raws):
        out = load_torch(path)
        for k, v in values.items():
            assert out[k].dtype == v.dtype.newbyteorder("="), k
            np.testing.assert_array_equal(out[k], v, err_msg=k)


def test_big_endian_zip_is_swapped(tmp_path):
    f32, c64 = np.array([1.5, -2.0, 3.25], ">f4"), np.array([1 + 2j, -3j], ">c8")
    obj = {"f": tensor(storage("0", 3), 0, (3,), (1,)),
           "c": tensor(storage("1", 2, "ComplexFloatStorage"), 0, (2,), (1,)),
           "bf": tensor(storage("2", 1, "BFloat16Storage"), 0, (), ())}
    write_zip(tmp_path / "be.pt", craft_pickle(obj),
              {"0": f32.tobytes(), "1": c64.tobytes(), "2": np.array([0xC020], ">u2").tobytes()},
              byteorder=b"big")
    out = load_torch(tmp_path / "be.pt")
    np.testing.assert_array_equal(out["f"], [1.5, -2.0, 3.25])
    np.testing.assert_array_equal(out["c"], [1 + 2j, -3j])
    assert out["bf"] == -2.5
    assert out["f"].dtype.isnative and out["c"].dtype == np.complex64


def test_legacy_storage_views_and_cuda_storages(tmp_path):
    # torch < 0.4: the sixth field (view_key, offset, size) makes storage "1" the slice
    # [4, 10) of root storage "0"; a tensor at offset 1 of that view starts at element 5.
    # Storages saved from a GPU are named torch.cuda.FloatStorage and located at "cuda:0".
    root = ("storage", Global("torch.cuda", "FloatStorage"), "0", "cuda:0", 12)
    obj = {"v": tensor(PersistentId(root + (("1", 4, 6),)), 1, (3,), (1,)),
           "all": tensor(PersistentId(root + (None,)), 0, (12,), (1,)),
           "over": tensor(PersistentId(root + (("1", 4, 6),)), 4, (3,), (1,))}
    write_legacy(tmp_path / "old.pt", craft_pickle(obj),
                 {"0": (12, np.arange(12, dtype="<f4").tobytes())})
    with pytest.raises(TorchFileError, match=r"\['over'\] .*needs 7 elements of view 1"):
        load_torch(tmp_path / "old.pt")
    del obj["over"]
    write_legacy(tmp_path / "old.pt", craft_pickle(obj),
                 {"0": (12, np.arange(12, dtype="<f4").tobytes())})
    out = load_torch(tmp_path / "old.pt")
    assert out["v"].tolist() == [5.0, 6.0, 7.0] and out["all"].tolist() == list(range(12))


def test_set_of_tensors_is_an_error(tmp_path):
    obj = {"s": Call(Global("__builtin__", "set"), [tensor(storage("0", 2), 0, (2,), (1,))])}
    write_zip(tmp_path / "set.pt", craft_pickle(obj), {"0": np.zeros(2, "<f4").tobytes()})
    with pytest.raises(TorchFileError, match=r"\['s'\] is a set of tensors"):
        load_torch(tmp_path / "set.pt")


def test_nests_keep_their_shape(tmp_path):
    raw = np.arange(12, dtype="<f4").tobytes()

    def make(legacy):
        st = storage("0", 12, legacy=legacy)
        t = tensor(st, 0, (3, 4), (4, 1))
        return {"model": {"w": t}, "epoch": 3, "hist": [1.5, t, (tensor(st, 5, (2,), (3,)), "s")],
                "best": None, "tags": {"a", "b"}}

    for path in write_both(tmp_path, make, {"0": (12, raw)}):
        out = load_torch(path)
        assert out["epoch"] == 3 and out["best"] is None and out["tags"] == {"a", "b"}
        assert out["hist"][0] == 1.5 and isinstance(out["hist"][2], tuple)
        assert out["hist"][2][1] == "s" and out["hist"][2][0].tolist() == [5.0, 8.0]
        # one tensor pickled twice (the pickle's memo) is one array, as torch gives one tensor
        assert out["hist"][1] is out["model"]["w"]


# --------------------------------------------------------------------------- 2. safety, errors

class _SystemPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvalPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload,name", [(_SystemPayload, "system"), (_EvalPayload, "eval")])
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path, payload, name, fmt):
    marker = tmp_path / "pwned"
    # a real state_dict entry first, then the payload, as an attacker would hide it
    obj = collections.OrderedDict(w=tensor(storage("0", 2, legacy=fmt == "legacy"), 0, (2,),
                                           (1,)), evil=payload(marker))
    data = craft_pickle(obj)
    assert b"system" in data or b"eval" in data
    path = tmp_path / "evil.pt"
    raw = np.zeros(2, "<f4").tobytes()
    if fmt == "zip":
        write_zip(path, data, {"0": raw})
    else:
        write_legacy(path, data, {"0": (2, raw)})
    # protocol 2 spells builtins the Python 2 way; os.system is posix.system on Linux
    module = "__builtin__" if name == "eval" else os.system.__module__
    with pytest.raises(pickle.UnpicklingError, match=rf"{module}\.{name}") as err:
        load_torch(path)
    assert str(path) in str(err.value)
    assert not marker.exists(), "the payload ran"
    # the payload is real: an unrestricted unpickler would have run it
    pickle.loads(pickle.dumps(payload(marker)))
    assert marker.exists()


def test_whole_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "obj.pt"
    write_zip(path, craft_pickle({"args": Call(Global("argparse", "Namespace"))}), {})
    with pytest.raises(pickle.UnpicklingError, match=r"argparse\.Namespace.*state_dict"):
        load_torch(path)


def _legacy_bytes(tmp_path):
    raw = np.arange(12, dtype="<f4").tobytes()
    _, lpath = write_both(tmp_path, _views, {"0": (12, raw)})
    return lpath.read_bytes()


def test_truncated_legacy_file(tmp_path):
    full = _legacy_bytes(tmp_path)
    path = tmp_path / "cut.pt"
    # inside the magic number, the pickled object, the key list, the numel, the storage bytes
    for cut in (5, 200, len(full) - 48 - 8 - 4, len(full) - 48 - 3, len(full) - 1):
        path.write_bytes(full[:cut])
        with pytest.raises(TorchFileError, match="truncated") as err:
            load_torch(path)
        assert str(path) in str(err.value), cut


def test_truncated_zip_file(tmp_path):
    raw = np.arange(12, dtype="<f4").tobytes()
    zpath, _ = write_both(tmp_path, _views, {"0": (12, raw)})
    full = zpath.read_bytes()
    for cut in (10, len(full) // 2, len(full) - 10):
        zpath.write_bytes(full[:cut])
        with pytest.raises(TorchFileError, match="truncated or corrupt") as err:
            load_torch(zpath)
        assert str(zpath) in str(err.value)


def test_non_torch_files(tmp_path):
    cases = {"empty.pt": (b"", "empty file"),
             "text.pt": (b"hello, world\n" * 10, "not a torch.save file"),
             "plain.pkl": (pickle.dumps({"a": 1}, protocol=2), "no magic number"),
             "proto4.pkl": (pickle.dumps([1, 2], protocol=4), "no magic number")}
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    cases["a.npy"] = (buf.getvalue(), "NumPy .npy")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    cases["other.zip"] = (zbuf.getvalue(), "expected one <folder>/data.pkl")
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(TorchFileError, match=message) as err:
            load_torch(tmp_path / name)
        assert name in str(err.value)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_storage_shorter_than_tensor(tmp_path, fmt):
    def make(legacy):          # a 3x4 tensor over a storage that declares only 10 elements
        return {"w": tensor(storage("0", 10, legacy=legacy), 0, (3, 4), (4, 1))}

    raw = np.arange(10, dtype="<f4").tobytes()
    path = dict(zip(["zip", "legacy"], write_both(tmp_path, make, {"0": (10, raw)})))[fmt]
    with pytest.raises(TorchFileError, match=r"\['w'\].*needs 12 elements.*holds 10") as err:
        load_torch(path)
    assert str(path) in str(err.value)


def test_zip_storage_entry_shorter_than_declared(tmp_path):
    obj = {"w": tensor(storage("0", 12), 0, (3, 4), (4, 1))}
    write_zip(tmp_path / "short.pt", craft_pickle(obj), {"0": np.zeros(5, "<f4").tobytes()})
    with pytest.raises(TorchFileError, match=r"archive/data/0 holds 20 bytes.*48 bytes"):
        load_torch(tmp_path / "short.pt")


def test_legacy_numel_mismatch(tmp_path):
    obj = craft_pickle({"w": tensor(storage("0", 12, legacy=True), 0, (12,), (1,))})
    write_legacy(tmp_path / "bad.pt", obj, {"0": (11, np.zeros(12, "<f4").tobytes())})
    with pytest.raises(TorchFileError, match="holds 11 elements, but the pickle declares 12"):
        load_torch(tmp_path / "bad.pt")


# --------------------------------------------------------------------------- 3. torch.save

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _as_numpy(t):
    """A torch tensor as the array load_torch should give (bfloat16 widened to float32)."""
    import torch
    t = t.detach().resolve_conj().resolve_neg()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def assert_same(ours, theirs, path="obj"):
    """``ours`` is ``theirs`` with each tensor an ndarray equal bit for bit."""
    import torch
    if isinstance(theirs, torch.Tensor):
        want = _as_numpy(theirs)
        assert isinstance(ours, np.ndarray), path
        assert ours.dtype == want.dtype, f"{path}: {ours.dtype} != {want.dtype}"
        assert ours.shape == want.shape, f"{path}: {ours.shape} != {want.shape}"
        assert ours.tobytes() == want.tobytes(), path
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs), path
        assert list(ours) == list(theirs), path
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{path}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, path


def roundtrip(torch, obj, tmp_path, new_zip):
    path = tmp_path / f"obj_{new_zip}.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=new_zip)
    assert zipfile.is_zipfile(path) == new_zip
    ours = load_torch(path)
    assert_same(ours, torch.load(path, weights_only=False))
    return ours


NEW_ZIP = pytest.mark.parametrize("new_zip", [True, False], ids=["zip", "legacy"])


def _small_model(torch):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 5))
    model(torch.randn(2, 3, 5, 5))              # train mode: running stats and the counter move
    return model


@NEW_ZIP
def test_model_state_dict(torch, tmp_path, new_zip):
    sd = _small_model(torch).state_dict()
    ours = roundtrip(torch, sd, tmp_path, new_zip)
    assert list(ours) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                          "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias"]
    assert ours["0.weight"].shape == (4, 3, 3, 3) and ours["4.weight"].shape == (5, 36)
    nbt = ours["1.num_batches_tracked"]
    assert nbt.dtype == np.int64 and nbt.shape == () and nbt == 1


@NEW_ZIP
def test_every_dtype(torch, tmp_path, new_zip):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, generator=g) * 100
    x[0, 0], x[0, 1], x[0, 2] = float("nan"), float("inf"), -0.0
    obj = {str(dt): x.to(dt) for dt in (torch.float32, torch.float64, torch.float16,
                                        torch.bfloat16)}
    for dt in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
        obj[str(dt)] = x.nan_to_num(0, 0, 0).to(dt)
    obj["complex64"] = torch.complex(x, -x).to(torch.complex64)
    obj["complex128"] = torch.complex(x.double(), x.double() * 2)
    ours = roundtrip(torch, obj, tmp_path, new_zip)
    assert ours["torch.bfloat16"].dtype == np.float32
    assert ours["torch.float16"].dtype == np.float16 and ours["torch.bool"].dtype == np.bool_


@NEW_ZIP
def test_unsigned_dtypes_of_torch_2(torch, tmp_path, new_zip):
    if not hasattr(torch, "uint16"):
        pytest.skip("torch < 2.3 has no uint16/uint32/uint64")
    obj = {"u16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
           "u32": torch.tensor([0, 2**32 - 1], dtype=torch.uint32),
           "u64": torch.tensor([0, 2**64 - 1], dtype=torch.uint64)}
    path = tmp_path / "u.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=new_zip)
    ours = load_torch(path)       # compared with what was saved: torch 2.x's own torch.load
    for k, dt in (("u16", np.uint16), ("u32", np.uint32), ("u64", np.uint64)):  # fails on
        assert ours[k].dtype == dt                                            # legacy files
        assert ours[k].tolist() == [int(v) for v in obj[k].tolist()]


@NEW_ZIP
def test_0d_empty_and_non_contiguous(torch, tmp_path, new_zip):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"scalar": torch.tensor(2.5), "long0d": torch.tensor(7), "empty": torch.zeros(0),
           "empty2": torch.zeros(2, 0, 3), "transposed": base.t(),
           "sliced": base[1:, 2:5],                    # storage offset 8, strides (6, 1)
           "stepped": base[:, ::2], "expanded": torch.arange(3.0).expand(4, 3),
           "permuted": torch.randn(2, 3, 4).permute(2, 0, 1)}
    assert obj["sliced"].storage_offset() == 8
    ours = roundtrip(torch, obj, tmp_path, new_zip)
    assert ours["scalar"].shape == () and ours["long0d"].dtype == np.int64
    assert ours["empty2"].shape == (2, 0, 3)
    np.testing.assert_array_equal(ours["sliced"], base.numpy()[1:, 2:5])


@NEW_ZIP
def test_shared_storage(torch, tmp_path, new_zip):
    w = torch.randn(4, 6)
    obj = {"w": w, "wT": w.t(), "row": w[2], "flat": w.view(-1)[5:17]}
    path = tmp_path / "shared.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=new_zip)
    if new_zip:                                   # one storage entry for all four tensors
        assert sum("/data/" in n for n in zipfile.ZipFile(path).namelist()) == 1
    ours = load_torch(path)
    assert_same(ours, torch.load(path, weights_only=False))
    assert not np.shares_memory(ours["w"], ours["wT"])


@NEW_ZIP
def test_nested_checkpoint(torch, tmp_path, new_zip):
    model = _small_model(torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
            "name": "tiny", "history": [0.5, 0.25, {"best": torch.tensor(0.125)}],
            "pair": (torch.ones(2), "x"), "nothing": None, "flag": True}
    ours = roundtrip(torch, ckpt, tmp_path, new_zip)
    assert ours["optimizer"]["param_groups"][0]["lr"] == 1e-3
    assert set(ours["optimizer"]["state"]) == set(range(len(list(model.parameters()))))


@NEW_ZIP
def test_parameter(torch, tmp_path, new_zip):
    p = torch.nn.Parameter(torch.randn(3, 2))
    ours = roundtrip(torch, {"p": p, "frozen": torch.nn.Parameter(torch.ones(2), False)},
                     tmp_path, new_zip)
    assert isinstance(ours["p"], np.ndarray)
    ours = roundtrip(torch, p, tmp_path, new_zip)           # a Parameter at the top level
    assert ours.shape == (3, 2)


@NEW_ZIP
def test_conj_and_neg_bits(torch, tmp_path, new_zip):
    z = torch.complex(torch.randn(4), torch.randn(4))
    zc = z.conj()
    assert zc.is_conj()
    roundtrip(torch, {"conj": zc}, tmp_path, new_zip)
    assert zc.imag.is_neg()              # the imaginary part of a conj view: the neg bit
    roundtrip(torch, {"neg": zc.imag}, tmp_path, new_zip)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")      # torch.jit.script / save
def test_whole_module_and_torchscript_are_refused(torch, tmp_path):
    for new_zip in (True, False):
        torch.save(torch.nn.Linear(2, 2), tmp_path / "m.pt",
                   _use_new_zipfile_serialization=new_zip)
        with pytest.raises(pickle.UnpicklingError, match=r"torch\.nn\.modules\.linear\.Linear"
                           r".*state_dict"):
            load_torch(tmp_path / "m.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "s.pt")
    with pytest.raises(TorchFileError, match="TorchScript"):
        load_torch(tmp_path / "s.pt")


# --------------------------------------------------------------------------- 4. facenet

# The MTCNN weights in facenet-pytorch 2.6.0's wheel: legacy-format (pre-1.6) state_dicts of
# float32 tensors, keys and shapes as read from the files (conv: (out, in, kh, kw);
# PReLU: one slope per channel; dense: (out, in)). The digest is sha256 over each key, its
# shape and its bytes in file order, so the values are checked without torch.
FACENET = {
    "pnet": ({"conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
              "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
              "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
              "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
              "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,)},
             "d5aedfbb9aabbafb8b947032562a43d6e68660c7ca9b6f8cc396abeecfa9eb33"),
    "rnet": ({"conv1.weight": (28, 3, 3, 3), "conv1.bias": (28,), "prelu1.weight": (28,),
              "conv2.weight": (48, 28, 3, 3), "conv2.bias": (48,), "prelu2.weight": (48,),
              "conv3.weight": (64, 48, 2, 2), "conv3.bias": (64,), "prelu3.weight": (64,),
              "dense4.weight": (128, 576), "dense4.bias": (128,), "prelu4.weight": (128,),
              "dense5_1.weight": (2, 128), "dense5_1.bias": (2,),
              "dense5_2.weight": (4, 128), "dense5_2.bias": (4,)},
             "00721e2dc40b930e9e5ce0e5c658fdad234bbf68dd94bfdd8e55430117b5c342"),
    "onet": ({"conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "prelu1.weight": (32,),
              "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,), "prelu2.weight": (64,),
              "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,), "prelu3.weight": (64,),
              "conv4.weight": (128, 64, 2, 2), "conv4.bias": (128,), "prelu4.weight": (128,),
              "dense5.weight": (256, 1152), "dense5.bias": (256,), "prelu5.weight": (256,),
              "dense6_1.weight": (2, 256), "dense6_1.bias": (2,),
              "dense6_2.weight": (4, 256), "dense6_2.bias": (4,),
              "dense6_3.weight": (10, 256), "dense6_3.bias": (10,)},
             "f534a9d74700a575a11f36ec0a9e2d896a1b3eccdd551465d2e582910fa940b9"),
}


@pytest.mark.parametrize("net", sorted(FACENET))
def test_facenet_mtcnn_weights(net):
    from scratchvision.data.wheel_files import WheelUnavailable, wheel_file
    try:
        path = wheel_file("facenet-pytorch", "2.6.0", f"facenet_pytorch/data/{net}.pt")
    except WheelUnavailable as e:
        pytest.skip(str(e))
    head = path.read_bytes()[:12]
    assert head == pickle.dumps(LEGACY_MAGIC, protocol=2)[:12], "expected the legacy format"
    sd = load_torch(path)
    shapes, digest = FACENET[net]
    assert type(sd) is collections.OrderedDict
    assert {k: v.shape for k, v in sd.items()} == shapes and list(sd) == list(shapes)
    h = hashlib.sha256()
    for k, v in sd.items():
        assert v.dtype == np.float32 and np.isfinite(v).all(), k
        h.update(k.encode())
        h.update(repr(v.shape).encode())
        h.update(v.tobytes())
    assert h.hexdigest() == digest
    try:
        import torch
    except ImportError:
        return
    assert_same(sd, torch.load(path, weights_only=False))
