"""A stand-in for CuPy that keeps "device" arrays in host memory: the ``gpu`` tests run on a
machine without a GPU, with the numba.cuda kernels under Numba's CUDA simulator.

What it checks is the *device discipline* of the code above the kernels, the part a real
GPU run catches and a CPU run cannot:

* a device array (``fake_cupy.ndarray``) refuses to mix with a NumPy array in any ufunc,
  NumPy function or ``fake_cupy`` function, with CuPy's own TypeError;
* ``numpy.asarray(device_array)`` raises, as CuPy's implicit conversion does, so host code
  that silently pulls device data (or hands it to a Numba CPU kernel) fails; ``.get()`` is
  the explicit way back;
* reductions and scalar indexing return 0-d device arrays, as CuPy's do;
* the arrays expose ``__cuda_array_interface__``, which is how the kernel launcher
  (``kernels/cuda_support.py``) passes them to the simulated kernels.

It does not check CuPy's API coverage (a function NumPy has and CuPy lacks passes here),
performance or numerics on a GPU. ``install()`` puts it in ``sys.modules`` as ``cupy`` and
``cupyx`` and makes ``scratchvision.backend`` report a GPU; ``tests/conftest.py`` calls it
when ``SCRATCHVISION_FAKE_CUPY=1`` (with ``NUMBA_ENABLE_CUDASIM=1``), see ``tests/run_all.sh``.
"""
from __future__ import annotations

import sys
import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

# NumPy functions that take host data and make a device array (a host-to-device copy)
_FROM_HOST = {"asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray"}


def _unsupported(a) -> TypeError:
    return TypeError(f"Unsupported type {type(a)}")   # CuPy's message for a NumPy operand


def _to_host(obj, strict=True):
    """Replace device arrays by their NumPy buffers, recursively; NumPy arrays raise when
    ``strict`` (CuPy refuses them), pass otherwise (indices, host-to-device copies)."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, np.ndarray):
        if strict:
            raise _unsupported(obj)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_host(o, strict) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_host(v, strict) for k, v in obj.items()}
    return obj


def _to_device(obj):
    """Wrap NumPy results as device arrays; NumPy scalars become 0-d arrays, as in CuPy."""
    if isinstance(obj, np.ndarray):
        return ndarray(obj)
    if isinstance(obj, np.generic):
        return ndarray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_to_device(o) for o in obj)
    if isinstance(obj, list):
        return [_to_device(o) for o in obj]
    return obj


class ndarray(NDArrayOperatorsMixin):                     # noqa: N801 (CuPy's name)
    """A device array: a NumPy array that refuses to meet host arrays."""
    __module__ = "cupy"          # backend.is_cupy_array looks at the type's module
    __array_priority__ = 100

    def __init__(self, a):
        self._a = a

    # --- the CuPy-only API -------------------------------------------------------------
    def get(self, stream=None, out=None):
        """Device to host: a NumPy copy."""
        return self._a.copy()

    def set(self, arr, stream=None):
        """Host to device, in place (CuPy's ``ndarray.set``): a NumPy array of this shape."""
        if not isinstance(arr, np.ndarray) or arr.shape != self._a.shape:
            raise ValueError(f"set: expected a NumPy array of shape {self._a.shape}")
        self._a[...] = arr

    @property
    def __cuda_array_interface__(self):
        iface = dict(self._a.__array_interface__)
        iface["version"] = 3
        iface["stream"] = None
        return iface

    @property
    def device(self):
        return types.SimpleNamespace(id=0)

    # --- what NumPy would do silently and CuPy refuses ---------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        kwargs = _to_host(kwargs)
        result = getattr(ufunc, method)(*_to_host(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _to_device(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _to_device(func(*_to_host(args), **_to_host(kwargs)))

    # --- the ndarray API, on the device ------------------------------------------------
    def __getattr__(self, name):
        if name == "_a":                          # not set yet (copy/pickle protocols)
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            def method(*args, **kwargs):
                return _to_device(attr(*_to_host(args), **_to_host(kwargs)))
            return method
        return _to_device(attr)

    def __getitem__(self, key):
        return _to_device(self._a[_to_host(key, strict=False)])

    def __setitem__(self, key, value):
        self._a[_to_host(key, strict=False)] = _to_host(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_to_device(row) for row in self._a)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __complex__(self):
        return complex(self._a)

    def __repr__(self):
        return repr(self._a).replace("array", "fake_cupy.array", 1)

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __reduce__(self):
        return ndarray, (self._a,)

    # attributes read so often that __getattr__'s wrapping would be noise
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: ndarray(self._a.T))


class _Ufunc:
    """A NumPy ufunc on device arrays (``xp.add.at`` and friends included)."""

    def __init__(self, ufunc):
        self._u = ufunc

    def __call__(self, *args, **kwargs):
        return _call(self._u, args, kwargs)

    def __getattr__(self, name):
        attr = getattr(self._u, name)
        if name in ("at", "reduce", "accumulate", "outer", "reduceat"):
            return lambda *args, **kwargs: _call(attr, args, kwargs)
        return attr


def _call(func, args, kwargs, strict=True):
    out = kwargs.get("out")
    result = func(*_to_host(args, strict), **_to_host(kwargs, strict))
    return out if out is not None else _to_device(result)


def _module_attr(name):
    obj = getattr(np, name)
    if isinstance(obj, np.ufunc):
        return _Ufunc(obj)
    if isinstance(obj, type) or not callable(obj):
        return obj                                # dtypes, constants (float32, inf, newaxis)
    if name in _FROM_HOST:
        def from_host(a, *args, **kwargs):
            return _to_device(func_from_host(obj, a, args, kwargs))
        return from_host

    def device_function(*args, **kwargs):
        return _call(obj, args, kwargs)
    device_function.__name__ = name
    return device_function


def func_from_host(func, a, args, kwargs):
    """asarray & co: host data is copied in, device arrays pass through."""
    if isinstance(a, ndarray):
        return func(a._a, *args, **kwargs)
    if isinstance(a, (list, tuple)):
        a = _to_host(a, strict=False)
    return np.array(func(a, *args, **kwargs), copy=True)


def _make_modules():
    cupy = types.ModuleType("cupy")
    cupy.__doc__ = __doc__
    cupy.ndarray = ndarray
    cupy.__getattr__ = _module_attr
    cupy.asnumpy = lambda a, stream=None: a.get() if isinstance(a, ndarray) else np.asarray(a)
    cupy.get_array_module = lambda *arrays: (cupy if any(isinstance(a, ndarray) for a in arrays)
                                             else np)
    stream = types.SimpleNamespace(ptr=0, synchronize=lambda: None)
    cupy.cuda = types.SimpleNamespace(
        get_current_stream=lambda: stream,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
        Device=lambda i=0: types.SimpleNamespace(synchronize=lambda: None, id=i,
                                                 use=lambda: None))
    cupyx = types.ModuleType("cupyx")

    def scatter_add(a, slices, value):
        np.add.at(a._a, _to_host(slices, strict=False), _to_host(value))
    cupyx.scatter_add = scatter_add
    return cupy, cupyx


def install():
    """Make ``import cupy`` give this stand-in and ``scratchvision`` see a GPU."""
    from scratchvision import backend  # noqa: PLC0415
    cupy, cupyx = _make_modules()
    sys.modules["cupy"] = cupy
    sys.modules["cupyx"] = cupyx
    backend._cupy, backend._cupy_checked = cupy, True
    backend.gpu_available = lambda: True
    import scratchvision  # noqa: PLC0415
    scratchvision.gpu_available = backend.gpu_available
    return cupy
