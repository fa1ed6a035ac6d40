"""Reading ``torch.save`` files with ``pickle`` and NumPy only: no torch is imported.

``load_torch(path)`` returns what ``torch.load(path)`` would, with every tensor replaced by a
NumPy array: for a ``state_dict`` an ``OrderedDict`` name -> array; for a checkpoint such as
``{"model": state_dict, "epoch": 3}`` or a list, the same nest (dicts, lists and tuples keep
their types; ints, floats, strings stay as they are) with arrays where the tensors were.

How ``torch.save`` lays out a file
==================================
``torch.save(obj, f)`` pickles ``obj`` (pickle protocol 2) with one twist: every *storage* --
the flat, typed buffer behind one or more tensors -- is replaced in the pickle by a small
tuple naming it (a pickle *persistent id*), and its bytes are written outside the pickle.
A tensor pickles as a call to a rebuild function::

    torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
                                    requires_grad, backward_hooks[, metadata])

so loading is: unpickle, resolve each persistent id to its bytes, and view those bytes as
the tensor. Element ``(i0, i1, ...)`` of the tensor is element
``storage_offset + i0*stride[0] + i1*stride[1] + ...`` of the storage (offset and strides
count elements, not bytes), which is exactly ``np.lib.stride_tricks.as_strided`` on the
storage; the result is then copied so it owns its memory. Views are therefore right for
free: the transpose of a (3, 4) tensor has strides ``(1, 4)``; a slice ``t[2:]`` has a
storage offset; two tensors that share a storage name the same storage key, whose bytes are
stored once.
An ``nn.Parameter`` pickles as ``torch._utils._rebuild_parameter(tensor, requires_grad,
hooks)`` around such a tensor. A state_dict is a ``collections.OrderedDict``.

The zip format (torch >= 1.6, the default)
------------------------------------------
A zip archive (entries stored uncompressed, aligned to 64 bytes) under one top folder,
named after the file (``model.pt`` -> ``model/``), or ``archive/`` when torch.save was given a
file object rather than a path::

    archive/data.pkl            the pickle of obj
    archive/byteorder           b"little" or b"big": byte order of the storages (absent in
                                the oldest zip files, which are little-endian)
    archive/data/0, data/1 ...  one entry per storage: its raw bytes and nothing else
    archive/version             the format version, e.g. b"3\\n"
    archive/.format_version, archive/.storage_alignment, archive/.data/serialization_id
                                (newer torch; not needed to read the tensors)

and the persistent id of a storage is::

    ("storage", storage_type, key, location, numel)

``storage_type`` is a global such as ``torch.FloatStorage`` (its name gives the dtype),
``key`` the entry name under ``data/`` ("0", "1", ...), ``location`` where the storage lived
("cpu", "cuda:0"), ``numel`` its length in elements of that dtype. Tensors of the dtypes
added in torch 2.x (uint16/32/64, float8 ...) use ``torch.UntypedStorage`` (bytes; numel is
the byte count) and ``torch._utils._rebuild_tensor_v3``, which takes the dtype
(``torch.uint16``, pickled as that global) as an extra argument after the hooks.

The legacy format (torch < 1.6, or ``_use_new_zipfile_serialization=False``)
----------------------------------------------------------------------------
A plain file holding, one after another::

    pickle   119547037146038801333356 (= 0x1950a86a20f9469cfc6c)   the magic number
    pickle   1001                                                  the protocol version
    pickle   {"protocol_version": 1001, "little_endian": True,
              "type_sizes": {"short": 2, "int": 4, "long": 4}}     sys_info
    pickle   obj, whose storages are the persistent ids
             ("storage", storage_type, key, location, numel, view_metadata)
    pickle   [key, key, ...]                                       the storage keys, sorted
    then, for each key of that list in order:
             8 bytes      numel as a little-endian int64 (elements, not bytes)
             numel * itemsize bytes: the elements, little-endian

Here ``key`` is the storage's address in the writer's memory as a decimal string (e.g.
"94897569342944"), and ``view_metadata`` is ``None``, or, in files of torch < 0.4, a triple
``(view_key, offset, size)`` (in elements) for a storage that is a slice of storage ``key``.
The storage bytes come after the pickle, so tensors can only be built once the whole pickle
has been read: both readers here first unpickle into placeholders, then fill them in.

Safety
------
Unpickling runs whatever callables a pickle names, so a checkpoint from the internet can run
``os.system``. The unpickler here resolves only the names torch files contain (see
``_allowed_global``), each to a local function that builds a placeholder or a plain Python
value; any other name raises ``UnsafePickleError`` (a ``pickle.UnpicklingError``) naming it,
before anything is called.
Whole pickled ``nn.Module`` objects, optimizers of custom classes, NumPy arrays inside
checkpoints, ``argparse.Namespace`` and the like are therefore refused (save a state_dict).

Dtypes
------
Float/Double/Half/Long/Int/Short/Char/Byte/Bool/ComplexFloat/ComplexDouble storages map to
the NumPy dtype of the same width. NumPy has no bfloat16, so ``BFloat16Storage`` tensors come
back as float32, widened exactly (the 16 bits become the top half of a float32). torch 2.x's
uint16/uint32/uint64 map to NumPy's; float8, complex32, bits and quantized tensors are
refused with an error. A tensor whose conj/neg bit is set (saved as ``metadata``) comes back
conjugated/negated, as torch reads it. Big-endian zip files are byte-swapped to native order.

Not supported (a clear error rather than a wrong answer): the tar format of torch < 0.4,
TorchScript archives (``torch.jit.save``), sparse/quantized/nested tensors, tensor
subclasses other than ``nn.Parameter``, and sets of tensors (arrays are not hashable).
``map_location`` is accepted for ``torch.load`` compatibility and ignored: every array is a
host NumPy array, wherever the storage lived.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any, BinaryIO

import numpy as np

__all__ = ["TorchFileError", "UnsafePickleError", "load_torch"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_MAGIC_PICKLE = pickle.dumps(LEGACY_MAGIC, protocol=2)    # how every legacy file begins


class TorchFileError(ValueError):
    """The file is not a ``torch.save`` file, is truncated, or is inconsistent."""


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global (or a pickled module) outside the allowed list."""


# --------------------------------------------------------------------------- dtypes

# torch dtype name -> NumPy dtype of its bytes (little-endian, as the readers leave them);
# None: a dtype NumPy has no twin for.
_DTYPES: dict[str, np.dtype | None] = {
    "float32": np.dtype("<f4"), "float64": np.dtype("<f8"), "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),          # read as bits, widened to float32 afterwards
    "int64": np.dtype("<i8"), "int32": np.dtype("<i4"), "int16": np.dtype("<i2"),
    "int8": np.dtype("i1"), "uint8": np.dtype("u1"), "bool": np.dtype("?"),
    "complex64": np.dtype("<c8"), "complex128": np.dtype("<c16"),
    "uint16": np.dtype("<u2"), "uint32": np.dtype("<u4"), "uint64": np.dtype("<u8"),
    # torch 2.x dtypes NumPy cannot hold: named so the error says what was met
    "complex32": None, "float8_e4m3fn": None, "float8_e5m2": None, "float8_e4m3fnuz": None,
    "float8_e5m2fnuz": None, "float8_e8m0fnu": None, "float4_e2m1fn_x2": None,
    "bits8": None, "bits16": None, "bits1x8": None, "bits2x4": None, "bits4x2": None,
    "qint8": None, "quint8": None, "qint32": None, "quint4x2": None, "quint2x4": None,
}
_ITEMSIZE = {"complex32": 4, "bits16": 2, "qint32": 4}   # of those, the rest take 1 byte
_ITEMSIZE.update({k: v.itemsize for k, v in _DTYPES.items() if v is not None})

# torch.<Name>Storage -> torch dtype name
_STORAGES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
    "QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
}


def _itemsize(dtype: str) -> int:
    """Bytes per element of a torch dtype name."""
    return _ITEMSIZE.get(dtype, 1)


# --------------------------------------------------------------------------- placeholders

class _DType:
    """A ``torch.<dtype>`` global (e.g. ``torch.uint16``) as met in the pickle."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageType:
    """A ``torch.<X>Storage`` global: only its dtype matters."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGES[name]

    def __repr__(self):
        return f"torch.{self.name}"


class _Marker:
    """A class global (``torch.Tensor``, ``torch.nn.Parameter``) that may only be named."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError(f"{self.name} may be named in a torch file, not called")


class _Storage:
    """One storage: its dtype, declared length and (once read) its bytes."""

    def __init__(self, key: str, dtype: str, numel: int, record: str):
        self.key, self.dtype, self.numel, self.record = key, dtype, numel, record
        self.data: np.ndarray | None = None      # (nbytes,) uint8, filled by the reader
        self.root: _Storage | None = None        # legacy storage views: a slice of root
        self.root_offset = 0                     # ... starting at this byte

    @property
    def nbytes(self) -> int:
        return self.numel * _itemsize(self.dtype)

    def raw(self) -> np.ndarray:
        """The storage's bytes as a (nbytes,) uint8 array."""
        if self.root is not None:
            return self.root.raw()[self.root_offset:self.root_offset + self.nbytes]
        if self.data is None:
            raise TorchFileError(f"{self.record} was never read")
        return self.data


class _TensorRef:
    """A tensor to build once its storage's bytes are known."""

    __slots__ = ("dtype", "metadata", "offset", "size", "storage", "stride")

    def __init__(self, storage, offset, size, stride, dtype, metadata):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.dtype, self.metadata = dtype, metadata


# --------------------------------------------------------------------------- rebuild functions
# Local stand-ins for the torch functions a pickle calls (same argument lists).

def _int_tuple(x: Any, what: str) -> tuple[int, ...]:
    """``x`` as a tuple of non-negative ints, or an UnpicklingError naming ``what``."""
    if not isinstance(x, (tuple, list)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in x):
        raise pickle.UnpicklingError(f"tensor {what} must be non-negative ints, got {x!r}")
    return tuple(x)


def _tensor_ref(storage, storage_offset, size, stride, dtype, metadata) -> _TensorRef:
    """Check a rebuild call's arguments and make the placeholder."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor storage must be a storage, got {storage!r}")
    (offset,) = _int_tuple((storage_offset,), "storage_offset")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} differ in length")
    if metadata is not None and not isinstance(metadata, dict):
        raise pickle.UnpicklingError(f"tensor metadata must be a dict, got {metadata!r}")
    return _TensorRef(storage, offset, size, stride, dtype, metadata or None)


def _rebuild_tensor(storage, storage_offset, size, stride):
    """``torch._utils._rebuild_tensor``: the dtype is the storage's."""
    return _tensor_ref(storage, storage_offset, size, stride, getattr(storage, "dtype", None),
                       None)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` (requires_grad and hooks are dropped)."""
    return _tensor_ref(storage, storage_offset, size, stride, getattr(storage, "dtype", None),
                       metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    """``torch._utils._rebuild_tensor_v3``: an untyped storage read as ``dtype``."""
    if not isinstance(dtype, _DType):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v3 needs a torch dtype, got {dtype!r}")
    return _tensor_ref(storage, storage_offset, size, stride, dtype.name, metadata)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None):
    """``torch._utils._rebuild_parameter``: an ``nn.Parameter`` is its tensor here."""
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError(f"nn.Parameter must wrap a tensor, got {data!r}")
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """``torch._utils._rebuild_parameter_with_state``: the Python attributes are dropped."""
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _rebuild_from_type_v2(func, new_type, args, state):
    """``torch._tensor._rebuild_from_type_v2``: a tensor with Python attributes (dropped)."""
    if not isinstance(new_type, _Marker) or not callable(func) or not isinstance(args, tuple):
        raise pickle.UnpicklingError(f"unsupported tensor subclass {new_type!r}")
    return func(*args)


def _rebuild_from_type(func, type_, args, dict_):
    """``torch._tensor._rebuild_from_type`` (older spelling of the same)."""
    return _rebuild_from_type_v2(func, type_, args, dict_)


def _size(dims=()):
    """``torch.Size``: a tuple."""
    return tuple(dims)


def _codecs_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol 2 uses it to pickle ``bytes``: latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode only for bytes, got {encoding!r}")
    return text.encode("latin1")


def _bytearray(data=b""):
    """``bytearray`` of bytes (never of a size, which could allocate without bound)."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("bytearray only from bytes in a torch file")
    return bytearray(data)


_TORCH_UTILS = {
    "_rebuild_tensor": _rebuild_tensor,
    "_rebuild_tensor_v2": _rebuild_tensor_v2,
    "_rebuild_tensor_v3": _rebuild_tensor_v3,
    "_rebuild_parameter": _rebuild_parameter,
    "_rebuild_parameter_with_state": _rebuild_parameter_with_state,
}
_BUILTINS = {"set": set, "frozenset": frozenset, "complex": complex, "slice": slice,
             "bytearray": _bytearray}
_MARKERS = {("torch", "Tensor"), ("torch._tensor", "Tensor"), ("torch.tensor", "Tensor"),
            ("torch.nn.parameter", "Parameter"), ("torch.nn", "Parameter")}


def _allowed_global(module: str, name: str) -> Any:
    """What ``module.name`` in a torch pickle resolves to here, or None if it is refused."""
    if module == "torch._utils":
        return _TORCH_UTILS.get(name)
    if module in ("torch._tensor", "torch.tensor"):
        return {"_rebuild_from_type_v2": _rebuild_from_type_v2,
                "_rebuild_from_type": _rebuild_from_type}.get(name)
    if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGES:
        return _StorageType(name)
    if module == "torch" and name in _DTYPES:
        return _DType(name)
    if module == "torch" and name == "Size":
        return _size
    if (module, name) in _MARKERS:
        return _Marker(f"{module}.{name}")
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module in ("builtins", "__builtin__"):
        return _BUILTINS.get(name)
    if module == "_codecs" and name == "encode":
        return _codecs_encode
    return None


class _Unpickler(pickle.Unpickler):
    """Resolves only the allowed globals; turns storage ids into ``_Storage`` objects."""

    def __init__(self, file: BinaryIO, where: str, storages: dict[str, _Storage],
                 record_prefix: str = ""):
        super().__init__(file, encoding="utf-8")
        self.where, self.storages, self.record_prefix = where, storages, record_prefix

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed_global(module, name)
        if found is None:
            special = module in ("torch._utils", "torch._tensor") and name.startswith("_rebuild")
            hint = (" (quantized, sparse and other special tensors are not supported)" if special
                    else " (a pickled nn.Module or other Python object? save a state_dict "
                    "instead)")
            raise UnsafePickleError(
                f"{self.where}: refusing to unpickle global {module}.{name}: only the names "
                f"torch.save writes for tensors are allowed{hint}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"bad persistent id {pid!r}")
        kind = _text(pid[0])
        if kind == "module":
            raise UnsafePickleError(f"{self.where}: a whole pickled nn.Module cannot be read "
                                    f"without torch; save and load its state_dict instead")
        if kind != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if isinstance(storage_type, _StorageType):
            dtype = storage_type.dtype
        elif isinstance(storage_type, _DType):         # a dtype given in place of a class
            dtype = storage_type.name
        else:
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r}")
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"bad storage length {numel!r}")
        key = _text(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = _Storage(key, dtype, numel, f"{self.record_prefix}{key}")
            self.storages[key] = storage
        if view is None:
            return storage
        # torch < 0.4 legacy files: a storage that is a slice [offset, offset + size) of key
        view_key, offset, size = view
        view_key = _text(view_key)
        _int_tuple((offset, size), "storage view offset and size")
        if view_key not in self.storages:
            part = _Storage(view_key, dtype, size, f"view {view_key} of {storage.record}")
            part.root, part.root_offset = storage, offset * _itemsize(dtype)
            self.storages[view_key] = part
        return self.storages[view_key]


def _text(x: Any) -> Any:
    """Python 2 pickles give bytes where Python 3 ones give str."""
    return x.decode("ascii") if isinstance(x, bytes) else x


def _unpickle(f: BinaryIO, where: str, storages: dict[str, _Storage], what: str,
              record_prefix: str = "") -> Any:
    """One pickle from ``f``; truncation and garbage become TorchFileError."""
    try:
        return _Unpickler(f, where, storages, record_prefix).load()
    except UnsafePickleError:
        raise
    except EOFError:
        raise TorchFileError(f"{where}: truncated: the file ends inside {what}") from None
    except pickle.UnpicklingError as e:
        if "truncated" in str(e):
            raise TorchFileError(f"{where}: truncated: the file ends inside {what}") from None
        raise TorchFileError(f"{where}: corrupt {what}: {e}") from e
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as e:
        raise TorchFileError(f"{where}: corrupt {what}: {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------- the two readers

def _load_zip(f: BinaryIO, where: str) -> tuple[Any, dict[str, _Storage]]:
    """Unpickle ``<top>/data.pkl`` and read each storage from ``<top>/data/<key>``."""
    try:
        zf = zipfile.ZipFile(f)
    except zipfile.BadZipFile as e:
        raise TorchFileError(f"{where}: truncated or corrupt zip archive ({e})") from None
    with zf:
        names = zf.namelist()
        if any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in names):
            raise TorchFileError(f"{where}: a TorchScript archive (torch.jit.save), not a "
                                 f"torch.save file")
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise TorchFileError(f"{where}: a zip archive but not a torch.save file: expected "
                                 f"one <folder>/data.pkl, found {pickles or 'none'}")
        top = pickles[0][: -len("data.pkl")]
        byteorder = b"little"
        if top + "byteorder" in names:
            byteorder = _read_member(zf, top + "byteorder", where).strip()
            if byteorder not in (b"little", b"big"):
                raise TorchFileError(f"{where}: unknown byte order {byteorder!r}")
        storages: dict[str, _Storage] = {}
        obj = _unpickle(io.BytesIO(_read_member(zf, pickles[0], where)), where, storages,
                        pickles[0], record_prefix=f"storage {top}data/")
        for storage in storages.values():
            if storage.root is not None:
                continue
            name = top + "data/" + storage.key
            if name not in names:
                raise TorchFileError(f"{where}: the pickle names storage {storage.key!r} but "
                                     f"the archive has no entry {name}")
            data = np.frombuffer(_read_member(zf, name, where), np.uint8)
            if data.size < storage.nbytes:
                raise TorchFileError(
                    f"{where}: storage {name} holds {data.size} bytes, but the pickle declares "
                    f"{storage.numel} elements of {storage.dtype} ({storage.nbytes} bytes)")
            storage.data = _to_native(data[: storage.nbytes], storage.dtype, byteorder)
    return obj, storages


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> bytes:
    """One zip entry's bytes; a bad CRC or a cut entry becomes TorchFileError."""
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise TorchFileError(f"{where}: corrupt or truncated zip entry {name}: {e}") from None


def _to_native(data: np.ndarray, dtype: str, byteorder: bytes) -> np.ndarray:
    """Storage bytes in little-endian element order (what the rest of this file assumes)."""
    size = _itemsize(dtype)
    if byteorder == b"little" or size == 1:
        return data
    if dtype.startswith("complex"):             # each half of a complex swaps on its own
        size //= 2
    swapped = data.reshape(-1, size)[:, ::-1]   # (numel, itemsize): reverse each element
    return np.ascontiguousarray(swapped).reshape(-1)


def _load_legacy(f: BinaryIO, where: str) -> tuple[Any, dict[str, _Storage]]:
    """Magic, version, sys_info, the object, the key list, then the storages in key order."""
    storages: dict[str, _Storage] = {}
    start = f.tell()
    try:
        magic = _unpickle(f, where, storages, "the magic number")
    except TorchFileError:
        f.seek(start)
        head = f.read(len(_MAGIC_PICKLE))
        if _MAGIC_PICKLE.startswith(head):
            raise TorchFileError(f"{where}: truncated: the file ends inside the magic "
                                 "number") from None
        raise TorchFileError(f"{where}: not a torch.save file (neither a zip archive nor a "
                             f"pickle of torch's magic number)") from None
    if magic != LEGACY_MAGIC:
        raise TorchFileError(f"{where}: a pickle, but not a torch.save file (no magic number)")
    version = _unpickle(f, where, storages, "the protocol version")
    if version != LEGACY_PROTOCOL_VERSION:
        raise TorchFileError(f"{where}: unknown legacy protocol version {version!r}")
    _unpickle(f, where, storages, "sys_info")
    obj = _unpickle(f, where, storages, "the pickled object", record_prefix="storage ")
    keys = _unpickle(f, where, storages, "the list of storage keys")
    if not isinstance(keys, list):
        raise TorchFileError(f"{where}: corrupt: expected the list of storage keys")
    for key in keys:
        key = _text(key)
        storage = storages.get(key)
        if storage is None:
            raise TorchFileError(f"{where}: storage {key!r} is listed but no tensor uses it")
        head = f.read(8)
        if len(head) < 8:
            raise TorchFileError(f"{where}: truncated: the file ends before storage {key}")
        numel = int.from_bytes(head, "little", signed=True)
        if numel != storage.numel:
            raise TorchFileError(f"{where}: storage {key} holds {numel} elements, but the "
                                 f"pickle declares {storage.numel}")
        data = f.read(storage.nbytes)
        if len(data) < storage.nbytes:
            raise TorchFileError(
                f"{where}: truncated: storage {key} needs {storage.nbytes} bytes "
                f"({numel} x {storage.dtype}) but only {len(data)} remain")
        storage.data = np.frombuffer(data, np.uint8)    # legacy storages are little-endian
    missing = [s.key for s in storages.values() if s.root is None and s.data is None]
    if missing:
        raise TorchFileError(f"{where}: corrupt: storages {missing} are used but not listed")
    return obj, storages


# --------------------------------------------------------------------------- building arrays

def _elements(raw: np.ndarray, dtype: str, what: str) -> np.ndarray:
    """A (n,) array of ``dtype`` elements over the bytes ``raw`` (bfloat16 still as bits)."""
    np_dtype = _DTYPES.get(dtype)
    if np_dtype is None:
        raise TorchFileError(f"{what} has dtype torch.{dtype}, which NumPy cannot represent")
    n = raw.size // np_dtype.itemsize
    return raw[: n * np_dtype.itemsize].view(np_dtype)


def _finish(a: np.ndarray, dtype: str, metadata: dict | None) -> np.ndarray:
    """Widen bfloat16 bits, go to native byte order, apply a saved conj/neg bit."""
    if dtype == "bfloat16":                 # bf16 is the top 16 bits of a float32
        a = (a.astype(np.uint32) << 16).view(np.float32)
    elif not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if metadata:
        if metadata.get("conj"):
            a = np.conj(a)
        if metadata.get("neg"):
            a = np.negative(a)
    return a


def _tensor_array(ref: _TensorRef, where: str, path: str) -> np.ndarray:
    """Element (i0, i1, ...) = storage[offset + sum(ik * stride[k])], copied."""
    what = f"{where}: tensor {path or '(top level)'}"
    elems = _elements(ref.storage.raw(), ref.dtype, what)
    if 0 in ref.size:                                        # empty: needs no storage
        return _finish(np.empty(ref.size, elems.dtype), ref.dtype, None)
    last = ref.offset + sum((s - 1) * k for s, k in zip(ref.size, ref.stride))
    if last >= elems.size:
        raise TorchFileError(
            f"{what} of shape {ref.size} (offset {ref.offset}, stride {ref.stride}) needs "
            f"{last + 1} elements of {ref.storage.record}, which holds "
            f"{elems.size}")
    view = np.lib.stride_tricks.as_strided(
        elems[ref.offset:], shape=ref.size,
        strides=tuple(k * elems.itemsize for k in ref.stride), writeable=False)
    return _finish(view.copy(), ref.dtype, ref.metadata)


def _materialize(obj: Any, where: str) -> Any:
    """``obj`` with every placeholder replaced by its array (dicts and lists in place)."""
    done: dict[int, Any] = {}                   # id -> result, so shared objects stay shared

    def visit(x: Any, path: str) -> Any:
        if id(x) in done:
            return done[id(x)]
        if isinstance(x, _TensorRef):
            done[id(x)] = out = _tensor_array(x, where, path)
        elif isinstance(x, _Storage):           # a storage saved on its own: its elements
            elems = _elements(x.raw(), x.dtype, f"{where}: storage {path}")
            done[id(x)] = out = _finish(elems.copy(), x.dtype, None)
        elif isinstance(x, (_DType, _StorageType, _Marker)):
            done[id(x)] = out = x
        elif isinstance(x, dict):
            done[id(x)] = out = x
            for k, v in x.items():
                x[k] = visit(v, f"{path}[{k!r}]")
        elif isinstance(x, list):
            done[id(x)] = out = x
            for i, v in enumerate(x):
                x[i] = visit(v, f"{path}[{i}]")
        elif isinstance(x, tuple) and type(x) is tuple:
            items = [visit(v, f"{path}[{i}]") for i, v in enumerate(x)]
            out = tuple(items) if any(a is not b for a, b in zip(items, x)) else x
            done[id(x)] = out
        elif isinstance(x, (set, frozenset)):
            if any(isinstance(v, (_TensorRef, _Storage)) for v in x):
                raise TorchFileError(f"{where}: {path} is a set of tensors, which cannot hold "
                                     f"NumPy arrays (they are not hashable)")
            out = x
        else:
            out = x
        return out

    return visit(obj, "")


# --------------------------------------------------------------------------- entry point

def load_torch(path: str | os.PathLike | BinaryIO, map_location: Any = None) -> Any:
    """The tensors of a ``torch.save`` file as NumPy arrays, without torch.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        A file written by ``torch.save`` in either format: the zip format (torch >= 1.6)
        or the legacy format (torch < 1.6, ``_use_new_zipfile_serialization=False``).
    map_location : any, optional
        Accepted for ``torch.load`` compatibility and ignored: the arrays are always host
        NumPy arrays, whatever device the tensors were saved from.

    Returns
    -------
    object
        What ``torch.load`` returns, with each tensor (and ``nn.Parameter``) replaced by a
        NumPy array of the same shape and values: for a state_dict an ``OrderedDict``
        ``name -> np.ndarray``; for nested objects (``{"model": state_dict, "epoch": 3}``,
        lists, tuples) the same nest, with dicts and lists keeping their types and ints,
        floats and strings unchanged. Each array owns its memory (views and shared storages
        are copied out). ``bfloat16`` tensors come back as float32, widened exactly; a
        storage saved on its own comes back as a 1-D array of its elements.

    Raises
    ------
    UnsafePickleError
        (a ``pickle.UnpicklingError``) the pickle names a global other than the
        tensor-rebuild names torch files contain (e.g. ``os.system``, or the class of a
        pickled ``nn.Module``); the message names it, and nothing it names has been run.
    TorchFileError
        (a ``ValueError``) the file is not a torch.save file, is truncated, or a storage
        is shorter than a tensor needs; the message names the file.
    """
    del map_location                                    # see the docstring
    if hasattr(path, "read"):
        where = str(getattr(path, "name", "<file object>"))
        return _load_file(path, where)
    where = os.fspath(path)
    with open(where, "rb") as f:
        return _load_file(f, where)


def _load_file(f: BinaryIO, where: str) -> Any:
    """Pick the reader by the first bytes, read, then build the arrays."""
    start = f.tell()
    head = f.read(512)
    f.seek(start)
    if not head:
        raise TorchFileError(f"{where}: empty file, not a torch.save file")
    if head[:4] == b"PK\x03\x04":
        obj, _ = _load_zip(f, where)
    elif len(head) > 262 and head[257:262] == b"ustar":
        raise TorchFileError(f"{where}: the tar format of torch < 0.4 is not supported")
    elif head[:6] == b"\x93NUMPY":
        raise TorchFileError(f"{where}: a NumPy .npy file, not a torch.save file (np.load)")
    else:                                   # a pickle (0x80 for protocol >= 2) or garbage
        obj, _ = _load_legacy(f, where)
    return _materialize(obj, where)
