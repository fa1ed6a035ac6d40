"""Save and load nested training state without pickle: ``sv.save(obj, f)``, ``sv.load(f)``.

As ``torch.save`` / ``torch.load``: ``obj`` is a nest of dicts, lists and tuples whose
leaves are Tensors, arrays and plain Python values - a model's ``state_dict()``, an
optimiser's, a scheduler's, counters, random states - and ``load`` gives the same nest
back, every array bit for bit. Unlike torch's pickle files, loading runs no code from the
file, so a checkpoint from a stranger is safe to open.

What can be saved
-----------------
dicts (str or int keys, in order; an OrderedDict stays one, other dict subclasses come
back as dicts), lists, tuples (a namedtuple comes back as a plain tuple), ``Tensor``
(dtype, shape, ``requires_grad``; an ``nn.Parameter`` comes back as a Parameter; the
gradient is not saved, as in torch), NumPy arrays of any dtype except ``object`` (CuPy
arrays are copied to the host and come back as NumPy arrays), NumPy scalars, int (any
size), float, bool, str and None. NumPy's random states fit: a Generator's
``bit_generator.state`` is a dict of ints and strings (PCG64's are 128-bit ints), and
``RandomState.get_state()`` a tuple with an array. Anything else (an object, a function,
a set, a float dict key) raises ``TypeError`` naming where it sits, e.g.
``obj['optimizer']['param_groups'][0]['fn']``, before the file is touched. Each leaf is
stored on its own: two Tensors that shared memory come back as two separate Tensors.

The file
--------
A standard ``.npz``: a zip archive (uncompressed, as ``numpy.savez`` writes) of one
``.npy`` file per array leaf, plus one member ``index.json`` that describes the
structure::

    checkpoint.npz
      index.json                      {"format": "scratchvision.checkpoint", "version": 1,
                                       "root": <node>}
      model/linear.weight.npy         one .npy per Tensor / array / NumPy scalar
      optimizer/state/0/exp_avg.npy
      ...

so ``np.load(path, allow_pickle=False)`` opens it (``data["model/linear.weight"]``; the
index comes back as the bytes of the JSON), and so does any zip tool
(``unzip -p checkpoint.npz index.json``). An array member is named by the key path to
its leaf, joined with ``/``, where every key is made of letters, digits and ``_.-`` (not
starting with ``.``) and the name is not taken; otherwise ``arr``, each followed by ``~n``
until unique. The index names the member, so the name is only for human readers.

The root and every value inside it is a JSON *node*:

=====================================================  ====================================
node                                                   Python value
=====================================================  ====================================
``null``, ``true``, ``false``                          None, True, False
``"text"``                                             a str
``12``                                                 an int, ``|x| < 2**53``
``{"type": "int", "value": "3402823669209384634"}``    any other int, in decimal (JSON
                                                       readers lose digits beyond 2**53)
``1.5``                                                a finite float (shortest repr: exact)
``{"type": "float", "value": "nan"}``                  nan, ``"inf"``, ``"-inf"``
``[node, ...]``                                        a list
``{"type": "tuple", "items": [node, ...]}``            a tuple
``{"type": "dict", "items": [[key, node], ...]}``      a dict, in order; a key is a JSON
                                                       string (a str key) or an int node;
                                                       ``"ordered": true``: an OrderedDict
``{"type": "ndarray", "array": "a/b",``                a NumPy array, in member ``a/b.npy``
``"dtype": "<f4", "shape": [2, 3]}``
``{"type": "numpy_scalar", "array": .., "dtype": ..,`` a NumPy scalar, kept as a 0-d array
``"shape": []}``
``{"type": "tensor", "array": .., "dtype": ..,``       a Tensor (``"parameter": true``: an
``"shape": .., "requires_grad": false,``               ``nn.Parameter``), on ``device``
``"device": "cpu", "parameter": false}``               when it was saved
=====================================================  ====================================

``dtype`` is NumPy's ``dtype.str`` and ``shape`` a list of ints; the loader checks both
against the ``.npy`` header, so an index that disagrees with its arrays is refused. For
example ``sv.save({"w": sv.ones(2), "epoch": 3, 0: (1.5, None)}, "x.npz")`` writes the
members ``index.json`` and ``w.npy``, the index being (line breaks added)::

    {"format": "scratchvision.checkpoint", "version": 1, "root": {"type": "dict", "items": [
        ["w", {"type": "tensor", "array": "w", "dtype": "<f4", "shape": [2],
               "requires_grad": false, "device": "cpu", "parameter": false}],
        ["epoch", 3],
        [0, {"type": "tuple", "items": [1.5, null]}]]}}

Loading
-------
``load(f, map_location=None)`` puts Tensors back on the device they were saved from
(``map_location='cpu'`` or ``'cuda'`` moves them all there; arrays always come back as
NumPy arrays). A file that is not such a checkpoint - empty, truncated (the message
asks whether the save was interrupted), random bytes, a text file, a pickle or a PyTorch
``.pt`` (the message points to ``scratchvision.io.load_torch``), a zip of something else,
an index with another format name or a newer version, an index
that names an array the archive lacks, an array whose bytes fail the zip's CRC - raises
``CheckpointError`` (a ``ValueError``) naming the file and what is wrong. A plain
``.npz`` of arrays (weights written by ``numpy.savez`` or by earlier versions of
``nn.save``) raises its subclass ``PlainNpzError``: read those with ``nn.load``.

"Safe" means that no code from the file runs, as with ``np.load(allow_pickle=False)``; it
does not bound memory: like any ``.npz``, a hostile file can declare a huge array.

Writing to a path is atomic: the archive goes to a temporary file in the same folder,
which then replaces ``f`` (``os.replace``), so a crash never leaves half a checkpoint.
The path is used exactly as given (no ``.npz`` is appended). The members carry a fixed
date, so the same state gives the same bytes. This module sits above ``autograd`` and
below ``nn`` (``nn.save`` writes through it); it imports ``nn.Parameter`` only when one
is saved or loaded.
"""
from __future__ import annotations

import json
import math
import os
import re
import uuid
import zipfile
import zlib
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np

from scratchvision import backend
from scratchvision.autograd.tensor import Tensor

FORMAT, VERSION, INDEX = "scratchvision.checkpoint", 1, "index.json"
_SAFE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_EXACT_INT = 2 ** 53                    # JSON numbers are exact below this in every reader
_DATE = (1980, 1, 1, 0, 0, 0)           # the zip format's earliest date: reproducible bytes
_SUPPORTED = ("dicts (str or int keys), lists, tuples, Tensors, NumPy/CuPy arrays and "
              "scalars, int, float, bool, str and None")

__all__ = ["CheckpointError", "PlainNpzError", "load", "save"]


class CheckpointError(ValueError):
    """The file is not a readable scratchvision checkpoint (the message says why)."""


class PlainNpzError(CheckpointError):
    """The file is a plain ``.npz`` of arrays with no index: weights for ``nn.load``."""


# ---------------------------------------------------------------------------- saving
def save(obj: Any, f: str | os.PathLike | BinaryIO) -> None:
    """Write ``obj`` to ``f`` (a path, written atomically, or a binary file object).

    Raises ``TypeError`` naming the key path of the first value that cannot be stored;
    nothing is written then.
    """
    encoder = _Encoder()
    index = {"format": FORMAT, "version": VERSION, "root": encoder.node(obj, ())}
    text = json.dumps(index, ensure_ascii=True, allow_nan=False)
    if isinstance(f, (str, os.PathLike)):
        _atomic_write(os.fspath(f), lambda out: _write_zip(out, text, encoder.leaves))
    elif hasattr(f, "write"):
        _write_zip(f, text, encoder.leaves)
    else:
        raise TypeError(f"save: f must be a path or a binary file object, got "
                        f"{type(f).__name__}")


class _Encoder:
    """Turns a nest into its JSON node, collecting the array leaves as (name, array)."""

    def __init__(self) -> None:
        self.leaves: list[tuple[str, np.ndarray]] = []
        self.names: set[str] = set()
        self.open: set[int] = set()     # ids of the containers being encoded: cycles

    def node(self, obj: Any, path: tuple) -> Any:
        # order matters: np.float64 is a float, np.str_ a str, and bool an int
        if isinstance(obj, Tensor):
            return self.tensor(obj, path)
        if backend.is_cupy_array(obj):
            obj = obj.get()
        if isinstance(obj, np.ndarray):
            return self.array("ndarray", obj, path)
        if isinstance(obj, np.generic):
            return self.array("numpy_scalar", np.asarray(obj), path)
        if obj is None or isinstance(obj, bool):
            return obj
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, int):
            obj = int(obj)
            return obj if abs(obj) < _EXACT_INT else {"type": "int", "value": str(obj)}
        if isinstance(obj, float):
            obj = float(obj)
            return obj if math.isfinite(obj) else {"type": "float", "value": repr(obj)}
        if isinstance(obj, (list, tuple, dict)):
            if id(obj) in self.open:
                raise TypeError(f"save: {_where(path)} contains itself (a cycle)")
            self.open.add(id(obj))
            try:
                return self.container(obj, path)
            finally:
                self.open.discard(id(obj))
        hint = "; store a sorted list instead" if isinstance(obj, (set, frozenset)) else ""
        raise TypeError(f"save: cannot store {_where(path)}, a {type(obj).__name__}: only "
                        f"{_SUPPORTED} can be saved without pickle{hint}")

    def container(self, obj, path: tuple):
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise TypeError(f"save: {_where(path)} has the key {key!r} of type "
                                    f"{type(key).__name__}; dict keys must be str or int")
                k = str(key) if isinstance(key, str) else self.node(int(key), path)
                items.append([k, self.node(value, path + (key,))])
            node = {"type": "dict", "items": items}
            if isinstance(obj, OrderedDict):   # a state_dict comes back as an OrderedDict
                node["ordered"] = True
            return node
        items = [self.node(v, path + (i,)) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"type": "tuple", "items": items}

    def tensor(self, t: Tensor, path: tuple) -> dict:
        from scratchvision.nn.module import Parameter  # nn is above this module
        node = self.array("tensor", backend.to_device(t.data, "cpu"), path)
        node.update(requires_grad=bool(t.requires_grad), device=backend.device_of(t.data),
                    parameter=isinstance(t, Parameter))
        return node

    def array(self, kind: str, a: np.ndarray, path: tuple) -> dict:
        if type(a) not in (np.ndarray, np.memmap):
            raise TypeError(f"save: cannot store {_where(path)}, a {type(a).__name__} (an "
                            "ndarray subclass, whose extra parts would be lost); save "
                            "its parts as plain arrays")
        if a.dtype.hasobject:
            raise TypeError(f"save: cannot store {_where(path)}, an array of dtype "
                            f"{a.dtype} (Python objects need pickle)")
        name = self.member_name(path)
        self.leaves.append((name, a))
        return {"type": kind, "array": name, "dtype": a.dtype.str, "shape": list(a.shape)}

    def member_name(self, path: tuple) -> str:
        parts = [str(p) for p in path]
        name = "/".join(parts)
        if not parts or len(name) > 200 or not all(_SAFE_KEY.fullmatch(p) for p in parts):
            name = "arr"
        base, n = name, 0
        while name in self.names or name + ".npy" == INDEX:
            n += 1
            name = f"{base}~{n}"        # '~' is never in a key-path name: no collision
        self.names.add(name)
        return name


def _where(path: tuple) -> str:
    """``obj['optimizer']['param_groups'][0]``: how a reader would index the leaf."""
    return "obj" + "".join(f"[{p!r}]" for p in path)


def _zip_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16    # rw-r--r-- when unzipped
    return info


def _write_zip(out: BinaryIO, index_text: str, leaves) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_zip_member(INDEX), index_text.encode("ascii"))
        for name, a in leaves:
            with zf.open(_zip_member(name + ".npy"), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def _atomic_write(path: str, write) -> None:
    """``write(file)`` into a new file beside ``path``, then rename it over ``path``."""
    folder, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as open() would
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------- loading
def load(f: str | os.PathLike | BinaryIO, map_location: str | None = None) -> Any:
    """Read what ``save`` wrote. ``map_location``: None (each Tensor on the device it was
    saved from), ``'cpu'`` or ``'cuda'`` (every Tensor there).

    Raises ``CheckpointError`` (a ``ValueError``) naming the file and the problem when
    ``f`` is not a scratchvision checkpoint, ``PlainNpzError`` for a plain ``.npz`` of
    arrays (read it with ``nn.load``).
    """
    if map_location is not None:
        map_location = backend.check_device(str(map_location))
    label = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", None) \
        or f"<{type(f).__name__}>"
    # a missing file or a folder raises as open() does; only what is read is judged here
    fh = open(f, "rb") if isinstance(f, (str, os.PathLike)) else f  # noqa: SIM115
    try:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError):
            # empty, truncated, random bytes, a central directory pointing outside the file
            raise CheckpointError(f"load: {label}: {_not_a_zip(fh)}") from None
        with zf:
            index = _read_index(zf, label)
            try:
                return _Decoder(zf, label, map_location).node(index["root"], ())
            except RecursionError:
                raise CheckpointError(f"load: {label}: the index nests too deeply") from None
    finally:
        if fh is not f:
            fh.close()


def _not_a_zip(fh: BinaryIO) -> str:
    """Why a file that zipfile cannot open is no checkpoint, judged by its first bytes."""
    try:
        fh.seek(0)
        head = fh.read(64)
    except (OSError, ValueError):
        head = b""
    if not head:
        return "empty file (0 bytes), not a scratchvision checkpoint; was the save interrupted?"
    if head.startswith(b"PK\x03\x04"):       # a zip's first member, but no central directory
        return ("truncated file (zip central directory missing), not a complete scratchvision "
                "checkpoint; was the save interrupted?")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return ("a Python pickle (e.g. torch.save's legacy format), not a scratchvision "
                "checkpoint; pickles are never loaded here (scratchvision.io.load_torch "
                "reads PyTorch files without running their code)")
    text = head.decode("utf-8", errors="replace")[:60]   # 64 bytes may end mid-character
    if all((c.isprintable() or c in "\r\n\t") and c != "\ufffd" for c in text):
        return (f"a text file (it starts with {_short(text)}), not a scratchvision "
                "checkpoint (a zip archive)")
    return (f"not a zip archive (it starts with the bytes {head[:8].hex(' ')}), so not a "
            "scratchvision checkpoint")


def _read_index(zf: zipfile.ZipFile, label: str) -> dict:
    names = zf.namelist()
    if INDEX not in names and any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise CheckpointError(f"load: {label} is a PyTorch file (torch.save's zip of "
                              "pickles), not a scratchvision checkpoint; "
                              "scratchvision.io.load_torch reads its tensors without torch")
    if INDEX not in names:
        if names and all(n.endswith(".npy") for n in names):
            raise PlainNpzError(
                f"load: {label} is a plain .npz of arrays ({len(names)} of them, no "
                f"{INDEX}), not a scratchvision checkpoint; read weight files like it "
                "with scratchvision.nn.load(path), or np.load(path)")
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise CheckpointError(f"load: {label} is a zip archive without {INDEX}, not a "
                              f"scratchvision checkpoint (it holds: {shown or 'nothing'})")
    try:
        text = zf.read(INDEX)
    except (ValueError, OSError, zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise CheckpointError(f"load: {label}: the archive is damaged: {INDEX} cannot be "
                              f"read ({e})") from None
    try:
        index = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"load: {label}: {INDEX} is not JSON ({e})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise CheckpointError(f"load: {label}: {INDEX} has format {found!r}, not "
                              f"{FORMAT!r}: not a scratchvision checkpoint")
    if index.get("version") != VERSION:
        raise CheckpointError(f"load: {label}: format version {index.get('version')!r}; "
                              f"this scratchvision reads version {VERSION} (a newer one "
                              "may have written it)")
    if "root" not in index:
        raise CheckpointError(f"load: {label}: {INDEX} has no 'root' entry")
    return index


class _Decoder:
    """Turns the index's nodes back into Python values, reading the arrays they name."""

    def __init__(self, zf: zipfile.ZipFile, label: str, map_location: str | None) -> None:
        self.zf, self.label, self.map_location = zf, label, map_location

    def fail(self, path: tuple, what: str) -> CheckpointError:
        return CheckpointError(f"load: {self.label}: the index entry {_where(path)} "
                               f"{what}")

    def node(self, node: Any, path: tuple) -> Any:
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.node(v, path + (i,)) for i, v in enumerate(node)]
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "dict":
            out = OrderedDict() if node.get("ordered") is True else {}
            for item in self.field(node, "items", list, path):
                if not (isinstance(item, list) and len(item) == 2):
                    raise self.fail(path, f"has a malformed dict item {item!r}")
                key = item[0] if isinstance(item[0], str) else self.node(item[0], path)
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise self.fail(path, f"has a dict key {item[0]!r} that is not str/int")
                out[key] = self.node(item[1], path + (key,))
            return out
        if kind == "tuple":
            return tuple(self.node(v, path + (i,))
                         for i, v in enumerate(self.field(node, "items", list, path)))
        if kind in ("int", "float"):
            text = self.field(node, "value", str, path)
            try:
                return int(text) if kind == "int" else _nonfinite(text)
            except ValueError:
                raise self.fail(path, f"has an invalid {kind} {text!r}") from None
        if kind == "ndarray":
            return self.array(node, path)
        if kind == "numpy_scalar":
            return self.array(node, path)[()]
        if kind == "tensor":
            return self.tensor(node, path)
        raise self.fail(path, f"is not a node this version knows ({_short(node)})")

    def field(self, node: dict, key: str, kind: type, path: tuple):
        value = node.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(path, f"({node.get('type')}) needs {key!r} as a "
                                  f"{kind.__name__}, got {_short(value)}")
        return value

    def array(self, node: dict, path: tuple) -> np.ndarray:
        name = self.field(node, "array", str, path)
        shape = self.field(node, "shape", list, path)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise self.fail(path, f"has an invalid shape {shape!r}")
        try:
            dtype = np.dtype(self.field(node, "dtype", str, path))
        except (TypeError, ValueError):
            raise self.fail(path, f"has an unknown dtype {node['dtype']!r}") from None
        try:
            info = self.zf.getinfo(name + ".npy")
        except KeyError:
            raise self.fail(path, f"names the array {name!r}, which the archive does not "
                                  "hold") from None
        if dtype.hasobject or math.prod(shape) * dtype.itemsize > info.file_size:
            raise self.fail(path, f"declares {dtype} {tuple(shape)}, which the member "
                                  f"{name}.npy ({info.file_size} bytes) cannot hold")
        try:
            with self.zf.open(info) as member:
                a = np.lib.format.read_array(member, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise self.fail(path, f"names the array {name!r}, which cannot be read "
                                  f"({e})") from None
        if a.dtype != dtype or a.shape != tuple(shape):
            raise self.fail(path, f"declares {dtype} {tuple(shape)} but the array {name!r} "
                                  f"is {a.dtype} {a.shape}")
        return a

    def tensor(self, node: dict, path: tuple) -> Tensor:
        a = self.array(node, path)
        requires_grad = self.field(node, "requires_grad", bool, path)
        saved_on = node.get("device", "cpu")
        if saved_on not in backend.DEVICES:
            raise self.fail(path, f"has an unknown device {saved_on!r}")
        device = self.map_location or saved_on
        if device == "cuda":
            if self.map_location is None and not backend.gpu_available():
                raise RuntimeError(f"load: {self.label}: {_where(path)} was saved from a "
                                   "GPU tensor and this machine has no usable GPU; pass "
                                   "map_location='cpu'")
            a = backend.to_device(a, "cuda")
        if requires_grad and a.dtype.kind != "f":
            raise self.fail(path, f"asks requires_grad for dtype {a.dtype}")
        if node.get("parameter") is True:
            from scratchvision.nn.module import Parameter  # nn is above this module
            if a.dtype.kind != "f":
                raise self.fail(path, f"is a Parameter of dtype {a.dtype}")
            return Parameter(a, requires_grad=requires_grad)
        return Tensor._make(a, requires_grad)


def _nonfinite(text: str) -> float:
    if text not in ("nan", "inf", "-inf"):
        raise ValueError(text)
    return float(text)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
