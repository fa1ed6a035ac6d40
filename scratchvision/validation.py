"""The one place where arguments are checked: every layer (kernels, functional, nn, ops,
data, eval, viz, the CLI) uses these helpers, so the same mistake gets the same message
everywhere and one rule holds throughout.

The rules
---------
* **Sizes** (kernel_size, stride, padding, dilation, output sizes) are Python or NumPy
  ints, or pairs of them; ``bool`` and ``float`` are refused (torch refuses ``2.0`` as a
  kernel size too). ``pair`` turns an int into ``(v, v)`` and checks a minimum.
* **Floating kernels take floating arrays.** A kernel documented as float32/float64
  refuses integer, boolean and float16 arrays with a ``TypeError`` naming the argument
  and its dtype; nothing is cast silently (torch refuses ``conv2d`` on an int tensor the
  same way). Callers that want a cast write ``x.astype(np.float32)`` themselves.
* **Probabilities** are real numbers in [0, 1]; **thresholds and scales** are finite.
* **Bounded work.** An op whose memory or work depends on input *values* (adaptive
  sampling grids, interpolation sizes, image sizes read from a file, proposals on a huge
  image) computes the count it is about to use and calls ``check_limit`` first, which
  raises a ``LimitError`` (a ``ValueError``) naming the op, the count and the limit, before
  anything is allocated. The limits live in ``LIMITS``; raise one for a session with
  ``with limits(max_elements=...):`` or ``set_limit``.

Errors name the argument and the value or shape that was wrong; ``TypeError`` for a wrong
kind of thing, ``ValueError`` for a wrong value, as Python and torch use them.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import operator
from typing import Any, Iterator, Sequence

import numpy as np

from scratchvision.backend import check_same_device, is_cupy_array

__all__ = ["FLOAT_DTYPES", "LIMITS", "LimitError", "check_array", "check_float_arrays",
           "check_images", "check_int", "check_limit", "check_number", "check_probability",
           "limits", "pair", "set_limit", "to_numpy"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The documented limits (see the module docstring). Elements are array elements, whatever
# their dtype; work is the number of inner-loop steps an op would take.
LIMITS: dict[str, int] = {
    # one array an op is about to allocate: 2**31 elements is 8 GiB of float32
    "max_elements": 2 ** 31,
    # inner-loop steps of one call (e.g. RoI Align's samples x channels): ~minutes on a CPU
    "max_work": 2 ** 40,
    # pixels of one decoded image (PIL's decompression-bomb error starts near 1.8e8)
    "max_image_pixels": 2 ** 27,
}


class LimitError(ValueError):
    """An op refused work or memory above one of ``LIMITS``."""


def set_limit(name: str, value: int) -> None:
    """Set ``LIMITS[name]`` (a positive int) for the rest of the process."""
    if name not in LIMITS:
        raise KeyError(f"unknown limit {name!r}; the limits are {sorted(LIMITS)}")
    LIMITS[name] = check_int(value, name, minimum=1)


@contextlib.contextmanager
def limits(**overrides: int) -> Iterator[None]:
    """Temporarily change some ``LIMITS``: ``with limits(max_elements=2**33): ...``."""
    saved = dict(LIMITS)
    try:
        for name, value in overrides.items():
            set_limit(name, value)
        yield
    finally:
        LIMITS.clear()
        LIMITS.update(saved)


def check_limit(count, what: str, limit: str = "max_elements") -> int:
    """``count`` (an int, or a shape whose product is the count) if within ``LIMITS[limit]``,
    else ``LimitError`` naming ``what``: call it *before* allocating or looping."""
    if isinstance(count, (tuple, list)):
        count = math.prod(int(c) for c in count)
    count = int(count)
    bound = LIMITS[limit]
    if count > bound:
        raise LimitError(f"{what} needs {count:,} {_UNITS.get(limit, 'units')}, above the "
                         f"limit of {bound:,} (scratchvision.validation.LIMITS[{limit!r}]; "
                         f"raise it with scratchvision.validation.limits({limit}=...))")
    return count


_UNITS = {"max_elements": "array elements", "max_work": "steps",
          "max_image_pixels": "pixels"}


# ---------------------------------------------------------------------------- numbers
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (Python or NumPy, not bool) within [minimum, maximum], else a clear error."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_number(value, name: str, minimum: float | None = None, maximum: float | None = None,
                 finite: bool = True, strict_minimum: bool = False) -> float:
    """A real number (not bool, not a string) as float, finite unless ``finite=False``,
    within [minimum, maximum] (``(minimum, maximum]`` with ``strict_minimum``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum}, "
                         f"got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_probability(p, name: str = "p") -> float:
    """A probability: a real number in [0, 1]."""
    return check_number(p, name, minimum=0.0, maximum=1.0)


def pair(value, name: str, minimum: int = 0) -> tuple[int, int]:
    """An int ``v`` -> ``(v, v)``; a sequence of one or two ints -> a pair; each >= minimum.

    ``TypeError`` for anything else (floats, bools, strings, three numbers)."""
    if _is_int(value):
        out = (int(value), int(value))
    elif (isinstance(value, Sequence) and not isinstance(value, str)
          and len(value) in (1, 2) and all(_is_int(v) for v in value)):
        out = (int(value[0]), int(value[-1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


# ----------------------------------------------------------------------------- arrays
def check_array(x, name: str, ndim: int | tuple[int, ...] | None = None,
                dtypes: tuple | None = FLOAT_DTYPES, layout: str = ""):
    """``x`` if it is a NumPy or CuPy array with ``ndim`` dims (an int or the allowed ints)
    and a dtype in ``dtypes`` (None: any), else ``TypeError``/``ValueError`` naming ``name``,
    its shape and dtype. ``layout`` (e.g. ``"(N, C, H, W)"``) goes into the shape message."""
    if not (isinstance(x, np.ndarray) or is_cupy_array(x)):
        raise TypeError(f"{name} must be a numpy or cupy array, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            dims = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {dims}{' ' + layout if layout else ''}, got "
                             f"shape {tuple(x.shape)}")
    if dtypes is not None and np.dtype(x.dtype) not in tuple(np.dtype(d) for d in dtypes):
        names = " or ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must be {names}, got {x.dtype} (cast it explicitly, e.g. "
                        f".astype(np.float32))")
    return x


def check_float_arrays(op: str, **named) -> np.dtype:
    """The one floating dtype (float32 or float64) shared by the named arrays (None ones are
    skipped): each must be a float32/float64 NumPy or CuPy array (``check_array``'s errors,
    naming it), all of one dtype (``TypeError`` naming each array's dtype) and on one
    device."""
    present = {k: v for k, v in named.items() if v is not None}
    for name, a in present.items():
        check_array(a, name)
    check_same_device(op, **named)
    dtypes = {k: np.dtype(v.dtype) for k, v in present.items()}
    if not dtypes:
        raise ValueError(f"{op}: no arrays given")
    if any(d not in FLOAT_DTYPES for d in dtypes.values()) or len(set(dtypes.values())) != 1:
        raise TypeError(f"{op} needs float32 or float64 arrays of one dtype, got "
                        + ", ".join(f"{k} {v}" for k, v in dtypes.items()))
    return next(iter(dtypes.values()))


def to_numpy(x) -> np.ndarray:
    """A NumPy array from a NumPy/CuPy array, a Tensor, a list or a scalar (one device-to-
    host copy for GPU data)."""
    from scratchvision.autograd.tensor import Tensor  # noqa: PLC0415  (kernels import us)
    if isinstance(x, Tensor):
        x = x.data
    if is_cupy_array(x):
        x = x.get()
    return np.asarray(x)


def check_images(x, name: str = "input"):
    """``x`` if it is a float32/float64 ``(N, C, H, W)`` array with ``H, W >= 1`` (the input
    of pooling and resizing kernels), else ``check_array``'s errors or a ValueError naming
    the empty shape."""
    check_array(x, name, ndim=4, layout="(N, C, H, W)")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} must have non-empty spatial dims, got shape {tuple(x.shape)}")
    return x
