"""Parity suite: ordinary PyTorch idioms run on torch and on scratchvision.

Each idiom is a small function ``idiom_<name>(lib, F, nn)`` written once and run twice:
with ``(torch, torch.nn.functional, torch.nn)`` and with ``(scratchvision,
scratchvision.functional, scratchvision.nn)``. Inputs come from a seeded NumPy generator
and enter through ``lib.tensor(array)``, so both sides see the same numbers. An idiom
returns what a user would look at (tensors, Python numbers, bools, strings, shapes, dtypes,
or lists/tuples/dicts of them) and may wrap its result in ``Grads(value, *tensors)`` to
also compare the ``.grad`` of those tensors after a ``backward()`` inside the idiom.

``compare`` checks, for every tensor: that the other side gives a Tensor too, its shape,
dtype name, ``requires_grad`` and values (float32 within rtol 1e-5 / atol 1e-5, integers
and bools exactly); for every Python value its exact type and value (a NumPy scalar where
torch gives a Python float is a difference: ``isinstance(x, float)`` and ``json.dumps`` see
it). Lists and tuples are interchangeable (``torch.split`` gives a tuple, unpacking and
iterating treat both alike). ``.grad`` is compared by value; whether it is a Tensor is
checked by idioms of its own (``grad_is_tensor`` ...).

Idioms that raise in torch form the second table (``raises_<name>``): both sides must
raise, scratchvision with a deliberate error: an AttributeError, NameError or
NotImplementedError means the API is missing and counts as a difference.

torchvision is not installed, so the torch side of the ``ops`` idioms is ``_TorchOps``:
torchvision's formulas written out in torch.

``python -m tests.parity.report`` runs both tables without pytest and groups what differs.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.peers  # a cross-check against PyTorch (DESIGN.md, Tests)

import torch.nn.functional as tF

import scratchvision as sv
import scratchvision.functional as svF
from scratchvision import nn as svnn
from scratchvision import ops as svops

TORCH = (torch, tF, torch.nn)
SV = (sv, svF, svnn)
# Errors that mean "this name or feature does not exist" rather than "this input is bad".
GAP_ERRORS = (AttributeError, NameError, NotImplementedError)


# =============================================================================== harness
class Grads:
    """An idiom's result plus the tensors whose ``.grad`` is compared too."""

    def __init__(self, value, *tensors):
        self.value = value
        self.tensors = tensors


class Mismatch(AssertionError):
    """The two sides differ; ``kind`` names how (for grouping in the report)."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def _tname(v) -> str:
    t = type(v)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def dtype_name(d) -> str:
    """'float32' for torch.float32, numpy's float32, 'float32', or an sv dtype object."""
    if isinstance(d, torch.dtype):
        return str(d).removeprefix("torch.")
    try:
        return str(np.dtype(d))
    except (TypeError, ValueError):
        return str(getattr(d, "name", d)).split(".")[-1]


# (rtol, atol for an array whose largest |value| is <= 1)
_TOL = {"float16": (1e-3, 1e-3), "float32": (1e-5, 1e-5), "float64": (1e-10, 1e-12)}


def _compare_arrays(e: np.ndarray, g: np.ndarray, path: str, prefix: str = "") -> None:
    if e.shape != g.shape:
        raise Mismatch(prefix + "shape", f"{path}: torch {e.shape}, sv {g.shape}")
    if e.dtype != g.dtype:
        raise Mismatch(prefix + "dtype", f"{path}: torch {e.dtype}, sv {g.dtype}")
    if e.dtype.kind in "fc":
        rtol, atol = _TOL.get(str(e.dtype), (1e-5, 1e-5))
        # Rounding grows with the size of the terms summed, not of each result element
        # (a conv gradient of 0.4 next to ones of 150), so atol scales with the array.
        finite = np.abs(e[np.isfinite(e)])
        atol *= max(1.0, float(finite.max()) if finite.size else 1.0)
        close = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = g == e
    if not np.all(close):
        bad = np.argwhere(~np.asarray(close))
        where = tuple(int(i) for i in bad[0]) if bad.size else ()
        diff = ""
        if e.dtype.kind in "fc" and e.size:
            diff = f", max |diff| {np.nanmax(np.abs(g.astype(float) - e.astype(float))):.3g}"
        raise Mismatch(prefix + "value", f"{path}: first difference at {where}: torch "
                       f"{e[where] if e.ndim else e}, sv {g[where] if g.ndim else g}{diff}")


def _sv_array(v) -> np.ndarray:
    return np.asarray(v.numpy() if isinstance(v, sv.Tensor) else v)


def _compare_grad(e, g, path: str) -> None:
    if e is None or g is None:
        if (e is None) != (g is None):
            raise Mismatch("grad-missing", f"{path}: torch grad {_tname(e)}, sv {_tname(g)}")
        return
    _compare_arrays(e.detach().numpy(), _sv_array(g), path, prefix="grad-")


def compare(expected, got, path: str = "result") -> None:
    """Raise Mismatch where ``got`` (scratchvision) differs from ``expected`` (torch)."""
    if isinstance(expected, Grads):
        if not isinstance(got, Grads):
            raise Mismatch("type", f"{path}: torch Grads, sv {_tname(got)}")
        compare(expected.value, got.value, path)
        for i, (te, tg) in enumerate(zip(expected.tensors, got.tensors)):
            _compare_grad(te.grad, getattr(tg, "grad", None), f"{path}.grad[{i}]")
        return
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, sv.Tensor):
            raise Mismatch("type", f"{path}: torch gives a Tensor, sv gives {_tname(got)}")
        _compare_arrays(expected.detach().cpu().numpy(), _sv_array(got), path)
        if expected.requires_grad != bool(got.requires_grad):
            raise Mismatch("requires_grad", f"{path}: torch {expected.requires_grad}, "
                           f"sv {got.requires_grad}")
        return
    if isinstance(expected, torch.dtype):
        if dtype_name(expected) != dtype_name(got):
            raise Mismatch("dtype", f"{path}: torch {expected}, sv {got!r}")
        return
    if isinstance(expected, torch.device):
        if str(expected) != str(got):
            raise Mismatch("value", f"{path}: torch device {expected}, sv {got!r}")
        return
    if isinstance(expected, torch.Size):
        if not isinstance(got, tuple) or tuple(expected) != got \
                or any(type(g) is not int for g in got):
            raise Mismatch("shape", f"{path}: torch {tuple(expected)}, sv {got!r}")
        return
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            raise Mismatch("type", f"{path}: torch gives ndarray, sv gives {_tname(got)}")
        _compare_arrays(expected, got, path)
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise Mismatch("type", f"{path}: torch dict, sv {_tname(got)}")
        if list(expected) != list(got):
            raise Mismatch("keys", f"{path}: torch keys {list(expected)}, sv {list(got)}")
        for k in expected:
            compare(expected[k], got[k], f"{path}[{k!r}]")
        return
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            raise Mismatch("type", f"{path}: torch {_tname(expected)}, sv {_tname(got)}")
        if len(expected) != len(got):
            raise Mismatch("length", f"{path}: torch {len(expected)} items, sv {len(got)}")
        for i, (e, g) in enumerate(zip(expected, got)):
            compare(e, g, f"{path}[{i}]")
        return
    if expected is None or isinstance(expected, (bool, int, float, str)):
        if type(got) is not type(expected):
            raise Mismatch("type", f"{path}: torch {_tname(expected)} {expected!r}, "
                           f"sv {_tname(got)} {got!r}")
        if isinstance(expected, float):
            same = (math.isnan(expected) and math.isnan(got)) or math.isclose(
                expected, got, rel_tol=1e-5, abs_tol=1e-6)
        else:
            same = expected == got
        if not same:
            raise Mismatch("value", f"{path}: torch {expected!r}, sv {got!r}")
        return
    raise TypeError(f"harness: idiom returned {_tname(expected)} at {path} (torch side)")


def run_idiom(fn) -> None:
    """Run one idiom on torch then on scratchvision and compare."""
    expected = fn(*TORCH)
    got = fn(*SV)
    compare(expected, got)


def check_raises(fn):
    """Both sides must raise; returns (torch exception class, sv exception class)."""
    try:
        fn(*TORCH)
    except Exception as e:  # noqa: BLE001
        torch_exc = type(e)
    else:
        raise AssertionError(f"harness: {fn.__name__} does not raise on torch")
    try:
        fn(*SV)
    except GAP_ERRORS as e:
        raise Mismatch("api-gap", f"{type(e).__name__}: {e}") from e
    except Exception as e:  # noqa: BLE001
        return torch_exc, type(e)
    raise Mismatch("no-raise", f"torch raises {torch_exc.__name__}, sv does not raise")


# =============================================================================== inputs
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _f32(lib, a, grad: bool = False):
    """A float32 tensor from array-like ``a``."""
    return lib.tensor(np.asarray(a, dtype=np.float32), requires_grad=grad)


def _randn(lib, *shape, seed: int = 0, grad: bool = False):
    return _f32(lib, _rng(seed).standard_normal(shape), grad)


def _rand(lib, *shape, seed: int = 0, grad: bool = False):
    return _f32(lib, _rng(seed).uniform(0, 1, shape), grad)


def _ints(lib, low: int, high: int, shape, seed: int = 0):
    return lib.tensor(_rng(seed).integers(low, high, shape))  # int64


def _boxes_np(n: int, seed: int = 0, size: float = 32.0) -> np.ndarray:
    """(n, 4) float32 xyxy boxes inside [0, size], each at least 1x1."""
    r = _rng(seed)
    xy = r.uniform(0, size - 9, (n, 2))
    wh = r.uniform(1, 9, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def _boxes(lib, n: int, seed: int = 0, grad: bool = False):
    return _f32(lib, _boxes_np(n, seed), grad)


def _load_params(lib, module, seed: int = 0, scale: float = 0.5):
    """Copy the same random values into every parameter, in parameters() order."""
    r = _rng(seed)
    with lib.no_grad():
        for p in module.parameters():
            p.copy_(lib.tensor((r.standard_normal(tuple(p.shape)) * scale).astype(np.float32)))
    return module


class _TorchOps:
    """torchvision.ops, written out in torch (torchvision is not installed here)."""

    @staticmethod
    def box_area(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    @staticmethod
    def _inter_union(b1, b2):
        a1, a2 = _TorchOps.box_area(b1), _TorchOps.box_area(b2)
        lt = torch.max(b1[:, None, :2], b2[:, :2])
        rb = torch.min(b1[:, None, 2:], b2[:, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[:, :, 0] * wh[:, :, 1]
        return inter, a1[:, None] + a2 - inter

    @staticmethod
    def box_iou(boxes1, boxes2):
        inter, union = _TorchOps._inter_union(boxes1, boxes2)
        return inter / union

    @staticmethod
    def generalized_box_iou(boxes1, boxes2):
        inter, union = _TorchOps._inter_union(boxes1, boxes2)
        iou = inter / union
        lti = torch.min(boxes1[:, None, :2], boxes2[:, :2])
        rbi = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
        whi = (rbi - lti).clamp(min=0)
        areai = whi[:, :, 0] * whi[:, :, 1]
        return iou - (areai - union) / areai

    @staticmethod
    def box_convert(boxes, in_fmt, out_fmt):
        a, b, c, d = boxes.unbind(-1)
        if in_fmt == "xywh":
            c, d = a + c, b + d
        elif in_fmt == "cxcywh":
            a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
        if out_fmt == "xywh":
            c, d = c - a, d - b
        elif out_fmt == "cxcywh":
            a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
        return torch.stack((a, b, c, d), dim=-1)

    @staticmethod
    def clip_boxes_to_image(boxes, size):
        height, width = size
        boxes_x = boxes[..., 0::2].clamp(min=0, max=width)
        boxes_y = boxes[..., 1::2].clamp(min=0, max=height)
        return torch.stack((boxes_x, boxes_y), dim=-1).reshape(boxes.shape)

    @staticmethod
    def remove_small_boxes(boxes, min_size):
        ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (ws >= min_size) & (hs >= min_size)
        return torch.where(keep)[0]

    @staticmethod
    def nms(boxes, scores, iou_threshold):
        order = scores.argsort(descending=True)
        keep = []
        while order.numel() > 0:
            i = order[0]
            keep.append(i)
            ious = _TorchOps.box_iou(boxes[i][None], boxes[order[1:]])[0]
            order = order[1:][ious <= iou_threshold]
        return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.int64)

    @staticmethod
    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64)
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        return _TorchOps.nms(boxes + offsets[:, None], scores, iou_threshold)

    @staticmethod
    def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
        p = torch.sigmoid(inputs)
        ce_loss = tF.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = ce_loss * ((1 - p_t) ** gamma)
        if alpha >= 0:
            loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
        if reduction == "mean":
            return loss.mean()
        return loss.sum() if reduction == "sum" else loss


def _ops(lib):
    return svops if lib is sv else _TorchOps


# =============================================================================== idioms
# ------------------------------------------------------------------ creation, factories
def idiom_tensor_from_float_list(lib, F, nn):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
    return x, x.dtype, x.shape


def idiom_tensor_from_int_list(lib, F, nn):
    x = lib.tensor([1, 2, 3])
    return x, x.dtype


def idiom_tensor_from_bool_list(lib, F, nn):
    x = lib.tensor([True, False, True])
    return x, x.dtype


def idiom_tensor_dtype_kwarg(lib, F, nn):
    return lib.tensor([1, 2, 3], dtype=lib.float32), lib.tensor([0.7, 1.2], dtype=lib.int64)


def idiom_tensor_scalar_0d(lib, F, nn):
    x = lib.tensor(3.5)
    return x, x.dim(), x.shape, x.item()


def idiom_tensor_from_numpy_float64_keeps_dtype(lib, F, nn):
    x = lib.tensor(np.array([1.5, 2.5]))
    return x, x.dtype


def idiom_zeros_ones_sizes(lib, F, nn):
    return lib.zeros(2, 3), lib.ones((2, 3)), lib.zeros([4]), lib.ones(2, 3).shape


def idiom_zeros_dtype_int64_float64(lib, F, nn):
    return lib.zeros(3, dtype=lib.int64), lib.ones((2, 2), dtype=lib.float64)


def idiom_dtype_aliases_long_int_bool(lib, F, nn):
    return lib.zeros(2, dtype=lib.long), lib.ones(2, dtype=lib.bool), lib.zeros(2, dtype=lib.int32)


def idiom_dtype_aliases_float_double(lib, F, nn):
    return [lib.zeros(1, dtype=d).dtype for d in (lib.float, lib.double, lib.int)]


def idiom_full_int_fill_is_int64(lib, F, nn):
    x = lib.full((3,), 4)
    return x, x.dtype


def idiom_full_float_and_bool_fill(lib, F, nn):
    return lib.full((2, 2), 0.5), lib.full((2,), True)


def idiom_full_with_dtype(lib, F, nn):
    return lib.full((2, 3), -1, dtype=lib.float32)


def idiom_arange_int(lib, F, nn):
    x = lib.arange(5)
    return x, x.dtype, lib.arange(2, 8, 2)


def idiom_arange_float_step(lib, F, nn):
    return lib.arange(0, 1, 0.25), lib.arange(0.5, 3)


def idiom_arange_dtype_float32(lib, F, nn):
    return lib.arange(4, dtype=lib.float32), lib.arange(3, dtype=lib.float64)


def idiom_linspace(lib, F, nn):
    return lib.linspace(0, 1, 5), lib.linspace(-1, 1, steps=3)


def idiom_eye(lib, F, nn):
    return lib.eye(3), lib.eye(2, 3)


def idiom_empty_shape_dtype(lib, F, nn):
    x = lib.empty(2, 3)
    return x.shape, x.dtype, lib.empty((0, 4)).shape


def idiom_like_factories(lib, F, nn):
    x = _randn(lib, 2, 3)
    return lib.zeros_like(x), lib.ones_like(x), lib.full_like(x, 7.0)


def idiom_zeros_like_dtype(lib, F, nn):
    x = _randn(lib, 2, 3)
    return lib.zeros_like(x, dtype=lib.bool), lib.ones_like(x, dtype=lib.int64)


def idiom_new_zeros_ones_full(lib, F, nn):
    x = lib.tensor(np.ones((2, 2)))  # float64
    return x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2,), 3.0), x.new_zeros((1,)).dtype


def idiom_new_tensor(lib, F, nn):
    x = _randn(lib, 2)
    return x.new_tensor([1, 2]), x.new_tensor([0.5])


def idiom_factory_device_kwarg(lib, F, nn):
    return lib.zeros(2, 3, device="cpu"), lib.ones(2, device=lib.device("cpu"))


def idiom_device_of_tensor(lib, F, nn):
    x = lib.zeros(2)
    y = lib.ones(3, device=x.device)
    return str(x.device), x.is_cuda, y, x.to(x.device)


def idiom_device_type_attr(lib, F, nn):
    return lib.zeros(2).device.type


def idiom_cuda_is_available(lib, F, nn):
    return lib.cuda.is_available()


def idiom_from_numpy_shares_memory(lib, F, nn):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = lib.from_numpy(a)
    a[0, 0] = 100.0
    return t, t.dtype


def idiom_as_tensor(lib, F, nn):
    a = np.array([1, 2, 3])
    return lib.as_tensor(a), lib.as_tensor([1.5, 2.0]), lib.as_tensor(a, dtype=lib.float32)


def idiom_numpy_roundtrip(lib, F, nn):
    x = _randn(lib, 2, 3)
    return x.numpy(), x.detach().cpu().numpy()


def idiom_randint_shape_dtype_range(lib, F, nn):
    lib.manual_seed(0)
    x = lib.randint(0, 10, (3, 4))
    return x.shape, x.dtype, bool(((x >= 0) & (x < 10)).all())


def idiom_randint_high_only(lib, F, nn):
    x = lib.randint(5, (6,))
    return x.shape, x.dtype, bool((x < 5).all())


def idiom_randperm(lib, F, nn):
    p = lib.randperm(7)
    return p.dtype, p.shape, sorted(p.tolist())


def idiom_rand_randn_shapes_dtypes(lib, F, nn):
    return lib.rand(2, 3).shape, lib.randn(4).dtype, lib.rand(2, dtype=lib.float64).dtype


def idiom_rand_in_unit_interval(lib, F, nn):
    x = lib.rand(1000)
    return bool((x >= 0).all() and (x < 1).all())


def idiom_manual_seed_reproducible(lib, F, nn):
    lib.manual_seed(3)
    a = lib.randn(5)
    lib.manual_seed(3)
    b = lib.randn(5)
    return (a == b).all().item()


def idiom_is_tensor_numel(lib, F, nn):
    x = lib.zeros(2, 3)
    return lib.is_tensor(x), lib.is_tensor([1]), lib.numel(x), x.numel()


def idiom_nelement(lib, F, nn):
    return lib.zeros(2, 3).nelement()


def idiom_get_default_dtype(lib, F, nn):
    return lib.get_default_dtype()


def idiom_ones_requires_grad(lib, F, nn):
    w = lib.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    return Grads(w.requires_grad, w)


# ------------------------------------------------------------------ dtypes, promotion, casts
def idiom_int_plus_half_is_float32(lib, F, nn):
    y = lib.tensor([1, 2, 3]) + 0.5
    return y, y.dtype


def idiom_int_truediv_int_is_float32(lib, F, nn):
    a, b = lib.tensor([7, -7, 4]), lib.tensor([2, 2, 3])
    return a / b, a / 2


def idiom_int_floordiv(lib, F, nn):
    a = lib.tensor([7, -7, 5])
    return a // 2, a // lib.tensor([2, 2, -3])


def idiom_int_mod(lib, F, nn):
    a = lib.tensor([7, -7, 5])
    return a % 3, a % lib.tensor([2, 3, -3])


def idiom_float_floordiv_mod(lib, F, nn):
    x = lib.tensor([5.5, -2.5, 3.0])
    return x // 2, x % 2


def idiom_int_plus_python_int_stays_int64(lib, F, nn):
    x = lib.tensor([1, 2])
    return x + 3, (x * 2).dtype, (x - 1).dtype, (3 - x)


def idiom_int_times_python_float(lib, F, nn):
    return lib.tensor([1, 2]) * 1.5


def idiom_float32_times_0d_float64_tensor(lib, F, nn):
    y = _randn(lib, 3) * lib.tensor(2.0, dtype=lib.float64)
    return y, y.dtype


def idiom_float32_times_1d_float64_tensor(lib, F, nn):
    y = _randn(lib, 3) * lib.tensor([2.0], dtype=lib.float64)
    return y, y.dtype


def idiom_int_tensor_times_float_tensor(lib, F, nn):
    y = lib.tensor([1, 2, 3]) * _randn(lib, 3)
    return y, y.dtype


def idiom_bool_plus_bool(lib, F, nn):
    a, b = lib.tensor([True, False, True]), lib.tensor([True, True, False])
    return a + b


def idiom_bool_sum_is_int64(lib, F, nn):
    s = lib.tensor([True, False, True]).sum()
    return s, s.dtype, s.item()


def idiom_bool_float_mean(lib, F, nn):
    return lib.tensor([True, False, True, True]).float().mean()


def idiom_comparisons_are_bool(lib, F, nn):
    x = _randn(lib, 5)
    return x > 0, x <= 0.5, x == x.clone(), (x != 0).dtype, x.gt(0), x.le(x)


def idiom_where_python_scalars_float32(lib, F, nn):
    y = lib.where(_randn(lib, 5) > 0, 1.0, 0.0)
    return y, y.dtype


def idiom_where_tensor_and_scalar_grad(lib, F, nn):
    x = _randn(lib, 5, grad=True)
    y = lib.where(x > 0, x, 0.0)
    y.sum().backward()
    return Grads(y, x)


def idiom_where_two_tensors_grad(lib, F, nn):
    a, b = _randn(lib, 4, grad=True), _randn(lib, 4, seed=1, grad=True)
    y = lib.where(a > b, a * 2, b)
    y.sum().backward()
    return Grads(y, a, b)


def idiom_where_int_tensors(lib, F, nn):
    c = lib.tensor([True, False, True])
    return lib.where(c, lib.tensor([1, 2, 3]), lib.tensor([4, 5, 6]))


def idiom_where_single_arg(lib, F, nn):
    m = lib.tensor([[True, False], [False, True]])
    return lib.where(m)


def idiom_uint8_image_to_float(lib, F, nn):
    x = lib.tensor(_rng().integers(0, 256, (3, 4, 4)).astype(np.uint8))
    return x.dtype, x.float() / 255, x / 255


def idiom_int32_sum_promotes_to_int64(lib, F, nn):
    x = lib.tensor([1, 2, 3], dtype=lib.int32)
    return x.sum(), x.sum().dtype, (x + 1).dtype, (x + lib.tensor([1, 1, 1])).dtype


def idiom_float64_plus_python_float(lib, F, nn):
    x = lib.tensor([1.0], dtype=lib.float64) + 0.1
    return x, x.dtype


def idiom_cast_long_int(lib, F, nn):
    x = lib.tensor([-1.7, 0.2, 2.5])
    return x.long(), x.int()


def idiom_cast_double_float_bool(lib, F, nn):
    x = lib.tensor([-1.0, 0.0, 2.5])
    return x.double(), x.double().float(), x.bool(), lib.tensor([0, 3]).bool()


def idiom_cast_type_method(lib, F, nn):
    x = lib.tensor([1.5, 2.5])
    return x.type(lib.float64), x.type(lib.int64), x.type(lib.float64).dtype


def idiom_cast_to_dtype(lib, F, nn):
    x = lib.tensor([1.5, -2.5])
    return x.to(lib.int64), x.to(dtype=lib.float64), x.to(lib.float32) is x


def idiom_cast_type_as(lib, F, nn):
    return lib.tensor([1, 2]).type_as(_randn(lib, 2)), lib.tensor([1.5]).to(lib.tensor([1]))


def idiom_cast_keeps_grad(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = x.double()
    (y * y).sum().backward()
    return Grads((y.dtype, y.requires_grad), x)


def idiom_dtype_equality(lib, F, nn):
    x, i = _randn(lib, 2), lib.tensor([1])
    return (x.dtype == lib.float32, i.dtype == lib.int64, i.dtype == lib.long,
            (x > 0).dtype == lib.bool, x.dtype != lib.float64)


def idiom_dtype_in_tuple(lib, F, nn):
    return _randn(lib, 2).dtype in (lib.float32, lib.float64), lib.tensor([1]).dtype in (
        lib.float16, lib.float32)


def idiom_is_floating_point(lib, F, nn):
    x, i = _randn(lib, 2), lib.tensor([1])
    return x.is_floating_point(), i.is_floating_point(), x.dtype.is_floating_point


def idiom_mask_to_uint8(lib, F, nn):
    m = (_rand(lib, 3, 3) > 0.5).to(lib.uint8)
    return m, m.dtype


# ------------------------------------------------------------------ elementwise arithmetic
def idiom_broadcast_arith_grads(lib, F, nn):
    a, b = _randn(lib, 3, 1, grad=True), _randn(lib, 1, 4, seed=1, grad=True)
    y = (a + b) * a - b / (a.abs() + 1)
    y.sum().backward()
    return Grads(y, a, b)


def idiom_scalar_on_left(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    y = 1 - x + 2 * x - 3 / (x * x + 1)
    y.sum().backward()
    return Grads(y, x)


def idiom_method_arith(lib, F, nn):
    x, y = _randn(lib, 3), _rand(lib, 3, seed=1) + 1
    return x.add(y), x.sub(y), x.mul(2), x.div(y), x.add(y, alpha=0.5)


def idiom_neg_method(lib, F, nn):
    x = _randn(lib, 3)
    return x.neg(), lib.neg(x)


def idiom_pow_sqrt_exp_log_grads(lib, F, nn):
    x = _rand(lib, 5, grad=True)
    y = x ** 2 + x.sqrt() + x.exp() + (x + 1).log() + x.pow(3)
    y.sum().backward()
    return Grads(y, x)


def idiom_pow_tensor_exponent(lib, F, nn):
    x = _rand(lib, 3, grad=True)
    y = 2 ** x + x ** lib.tensor([1.0, 2.0, 3.0])
    y.sum().backward()
    return Grads(y, x)


def idiom_builtin_abs(lib, F, nn):
    x = _randn(lib, 5)
    return abs(x), x.abs(), lib.abs(x)


def idiom_neg_sign(lib, F, nn):
    x = lib.tensor([-2.0, 0.0, 3.0])
    return -x, x.sign(), lib.sign(x)


def idiom_round_floor_ceil(lib, F, nn):
    x = lib.tensor([-1.5, -0.5, 0.5, 1.5, 2.7, -2.2])
    return x.round(), x.floor(), x.ceil(), lib.round(x), lib.floor(x), x.trunc()


def idiom_round_floor_grad_zero(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    (x.round() + x.floor() + x).sum().backward()
    return Grads(None, x)


def idiom_clamp_min_grad(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    y = x.clamp(min=0)
    y.sum().backward()
    return Grads(y, x)


def idiom_clamp_variants(lib, F, nn):
    x = _randn(lib, 6)
    return x.clamp(max=0.5), x.clamp(-0.5, 0.5), x.clip(-1, 1), x.clamp(min=-0.1, max=0.1)


def idiom_clamp_tensor_bounds(lib, F, nn):
    x, lo = _randn(lib, 6, grad=True), _randn(lib, 6, seed=1) - 0.5
    y = x.clamp(min=lo, max=lo + 1)
    y.sum().backward()
    return Grads((y, lib.clamp(x, min=lo)), x)


def idiom_clamp_inplace(lib, F, nn):
    y = _randn(lib, 6)
    y.clamp_(min=0)
    z = _randn(lib, 6, seed=1).clamp_(-0.5, 0.5)
    return y, z


def idiom_module_clamp(lib, F, nn):
    x = _randn(lib, 6)
    return lib.clamp(x, 0, 1), lib.clamp(x, min=0.2), lib.clip(x, -0.3, 0.3)


def idiom_maximum_minimum_grads(lib, F, nn):
    a, b = _randn(lib, 5, grad=True), _randn(lib, 5, seed=1, grad=True)
    y = lib.maximum(a, b) + lib.minimum(a, b) * 2
    y.sum().backward()
    return Grads(y, a, b)


def idiom_max_with_other_tensor(lib, F, nn):
    a, b = _randn(lib, 5), _randn(lib, 5, seed=1)
    return a.max(b), lib.max(a, b), a.min(b), lib.min(a, b)


def idiom_module_level_elementwise(lib, F, nn):
    x = _randn(lib, 5)
    return (lib.exp(x), lib.log(x.abs() + 1), lib.sigmoid(x), lib.sqrt(x.abs()),
            lib.tanh(x), lib.relu(x))


def idiom_sigmoid_tanh_methods_grads(lib, F, nn):
    x = _randn(lib, 5, grad=True)
    y = x.sigmoid() * x.tanh()
    y.sum().backward()
    return Grads(y, x)


def idiom_isfinite_isnan_isinf(lib, F, nn):
    x = lib.tensor([1.0, float("inf"), float("nan"), -float("inf")])
    return lib.isfinite(x), x.isnan(), lib.isinf(x), lib.isnan(x).any().item()


def idiom_bool_logic_ops(lib, F, nn):
    a, b = lib.tensor([True, False, True, False]), lib.tensor([True, True, False, False])
    return ~a, a & b, a | b, a ^ b, a.logical_not(), lib.logical_and(a, b), lib.logical_or(a, b)


def idiom_float_times_bool_mask(lib, F, nn):
    x = _randn(lib, 5, grad=True)
    m = x > 0
    y = x * m
    y.sum().backward()
    return Grads((y, y.dtype, x * m.float()), x)


def idiom_square_rsqrt_reciprocal(lib, F, nn):
    x = _rand(lib, 4) + 0.5
    return x.square(), x.rsqrt(), x.reciprocal(), lib.rsqrt(x)


def idiom_log1p_expm1(lib, F, nn):
    x = _rand(lib, 4)
    return x.log1p(), x.expm1(), x.log2(), x.log10()


def idiom_module_level_log1p_expm1(lib, F, nn):
    x = _rand(lib, 4)
    return lib.log1p(x), lib.expm1(x)


def idiom_trig(lib, F, nn):
    x = _randn(lib, 4)
    return x.sin(), x.cos(), lib.atan2(x, x.abs() + 1)


# ------------------------------------------------------------------ reductions
def idiom_sum_dims(lib, F, nn):
    x = _randn(lib, 2, 3, 4)
    return x.sum(), x.sum(1), x.sum(dim=-1, keepdim=True), x.sum((1, 2)), x.sum(dim=[0, 2])


def idiom_module_sum_mean(lib, F, nn):
    x = _randn(lib, 2, 3)
    return lib.sum(x), lib.sum(x, dim=1), lib.mean(x), lib.mean(x, dim=0, keepdim=True)


def idiom_mean_dims_grad(lib, F, nn):
    x = _randn(lib, 2, 3, 4, 5, grad=True)
    y = x.mean(dim=(2, 3))
    y.sum().backward()
    return Grads(y, x)


def idiom_max_min_no_dim(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x.max(), x.min(), x.max().item(), lib.max(x), lib.min(x)


def idiom_max_dim_values_indices(lib, F, nn):
    x = _randn(lib, 3, 4)
    v, i = x.max(dim=1)
    return v, i, x.max(1).values, x.max(dim=1, keepdim=True).indices, x.max(-1)[0]


def idiom_min_dim(lib, F, nn):
    x = _randn(lib, 3, 4)
    return tuple(x.min(dim=0)), x.min(1, keepdim=True).values, lib.min(x, 1)[1]


def idiom_module_max_dim(lib, F, nn):
    x = _randn(lib, 3, 4)
    r = lib.max(x, dim=1)
    return r.values, r.indices, lib.max(x, 0, keepdim=True)[0]


def idiom_max_dim_grad(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    v, _ = x.max(dim=1)
    v.sum().backward()
    return Grads(v, x)


def idiom_amax_amin(lib, F, nn):
    x = _randn(lib, 2, 3, 4, grad=True)
    y = x.amax(dim=(0, 1)) + x.amin(1).sum(0)
    y.sum().backward()
    return Grads((y, lib.amax(x, dim=-1)), x)


def idiom_argmax_argmin(lib, F, nn):
    x = _randn(lib, 3, 4)
    return (x.argmax(), x.argmax(dim=1), x.argmax(1, keepdim=True), x.argmin(0),
            lib.argmax(x, dim=1), lib.argmin(x))


def idiom_all_any_dim(lib, F, nn):
    m = _randn(lib, 3, 4) > -0.5
    return m.all(), m.any(), m.all(dim=1), m.any(dim=0), m.any(1, keepdim=True), lib.all(m)


def idiom_all_any_item(lib, F, nn):
    x = _randn(lib, 10)
    return (x > -10).all().item(), bool((x > 5).any()), lib.any(x > 1).item()


def idiom_prod(lib, F, nn):
    x = _rand(lib, 3, 4, grad=True)
    y = x.prod(dim=1)
    y.sum().backward()
    return Grads((y, x.prod(), lib.tensor([2, 3, 4]).prod(), lib.prod(x, 0)), x)


def idiom_norm(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    y = x.norm(dim=1)
    y.sum().backward()
    return Grads((y, x.norm(), x.norm(p=1, dim=1), x.norm(2, -1, keepdim=True)), x)


def idiom_module_norm(lib, F, nn):
    x = _randn(lib, 3, 4)
    return lib.norm(x), lib.norm(x, dim=0), lib.norm(x, p=1)


def idiom_linalg_norm(lib, F, nn):
    x = _randn(lib, 3, 4)
    return lib.linalg.norm(x, dim=1), lib.linalg.vector_norm(x, ord=1)


def idiom_std_var_default_unbiased(lib, F, nn):
    x = _randn(lib, 4, 5)
    return x.std(), x.var(), x.std(dim=0), x.var(1, keepdim=True), lib.std(x), lib.var(x, 0)


def idiom_std_var_unbiased_false(lib, F, nn):
    x = _randn(lib, 4, 5)
    return x.std(unbiased=False), x.var(dim=1, unbiased=False), x.std(0, False)


def idiom_std_var_correction(lib, F, nn):
    x = _randn(lib, 4, 5)
    return x.var(correction=0), x.std(dim=1, correction=0), x.var(dim=0, correction=1)


def idiom_std_grad(lib, F, nn):
    x = _randn(lib, 4, 5, grad=True)
    y = x.std(dim=1)
    y.sum().backward()
    return Grads(y, x)


def idiom_std_mean_var_mean(lib, F, nn):
    x = _randn(lib, 4, 5)
    return lib.std_mean(x, dim=0), lib.var_mean(x, dim=1, unbiased=False)


def idiom_cumsum(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x.cumsum(0), x.cumsum(dim=1), lib.cumsum(x, dim=0)


def idiom_cumsum_int_and_bool(lib, F, nn):
    i, m = lib.tensor([1, 2, 3]), lib.tensor([True, False, True])
    return i.cumsum(0), m.cumsum(0), m.cumsum(0).dtype


def idiom_cumsum_grad(lib, F, nn):
    x = _randn(lib, 5, grad=True)
    y = x.cumsum(0)
    (y * lib.arange(5)).sum().backward()
    return Grads(y, x)


def idiom_cumprod(lib, F, nn):
    x = _rand(lib, 5) + 0.5
    return x.cumprod(0), lib.cumprod(x, dim=0)


def idiom_logsumexp(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    y = x.logsumexp(dim=1)
    y.sum().backward()
    return Grads((y, lib.logsumexp(x, 1, keepdim=True)), x)


def idiom_mean_keepdim_center(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    y = x - x.mean(dim=1, keepdim=True)
    (y ** 2).sum().backward()
    return Grads(y, x)


def idiom_bool_sum_dim(lib, F, nn):
    m = _randn(lib, 3, 4) > 0
    return m.sum(dim=1), m.sum(1).dtype, m.long().sum(0)


def idiom_count_nonzero(lib, F, nn):
    x = lib.tensor([[0, 1, 2], [0, 0, 3]])
    return lib.count_nonzero(x), lib.count_nonzero(x, dim=1)


def idiom_median(lib, F, nn):
    x = _randn(lib, 3, 5)
    return x.median(), x.median(dim=1).values


def idiom_empty_sum_numel(lib, F, nn):
    e = lib.zeros((0, 4))
    return e.sum(), e.sum(0), e.numel(), e.shape[0] == 0


# ------------------------------------------------------------------ shapes
def idiom_reshape_view(lib, F, nn):
    x = _randn(lib, 2, 3, 4)
    return x.reshape(-1), x.view(2, -1), x.view(-1, 4).shape, x.reshape(6, 4), x.view((4, 6))


def idiom_flatten(lib, F, nn):
    x = _randn(lib, 2, 3, 4)
    return x.flatten(), x.flatten(1), lib.flatten(x, start_dim=1), x.flatten(0, 1)


def idiom_permute_transpose(lib, F, nn):
    x = _randn(lib, 2, 3, 4, grad=True)
    y = x.permute(0, 2, 1) * x.transpose(1, 2)
    y.sum().backward()
    return Grads((y, x.transpose(0, -1).shape, x.permute(2, 0, 1).shape), x)


def idiom_t_and_T(lib, F, nn):
    m = _randn(lib, 2, 3)
    return m.t(), m.T, lib.transpose(m, 0, 1)


def idiom_module_level_t(lib, F, nn):
    return lib.t(_randn(lib, 2, 3))


def idiom_squeeze_unsqueeze(lib, F, nn):
    x = _randn(lib, 1, 3, 1)
    return (x.squeeze(), x.squeeze(0), x.squeeze(-1), x.unsqueeze(0).shape, x[None].shape,
            x[:, None].shape, lib.squeeze(x, 2), lib.unsqueeze(x, -1).shape)


def idiom_squeeze_non_singleton_is_noop(lib, F, nn):
    return _randn(lib, 2, 3).squeeze(0).shape


def idiom_expand_grad(lib, F, nn):
    a = _randn(lib, 3, 1, grad=True)
    y = a.expand(3, 4) * lib.arange(4.0)
    y.sum().backward()
    return Grads((y, a.expand(-1, 5).shape, a.expand_as(lib.zeros(2, 3, 6)).shape), a)


def idiom_repeat_grad(lib, F, nn):
    a = _randn(lib, 2, 3, grad=True)
    y = a.repeat(2, 3)
    (y * lib.arange(y.numel(), dtype=lib.float32).view(y.shape)).sum().backward()
    return Grads((y, a.repeat(2, 1, 1).shape), a)


def idiom_repeat_interleave(lib, F, nn):
    return (lib.arange(3).repeat_interleave(2),
            lib.tensor([[1, 2], [3, 4]]).repeat_interleave(2, dim=0))


def idiom_cat_stack_grads(lib, F, nn):
    a, b = _randn(lib, 2, 3, grad=True), _randn(lib, 2, 3, seed=1, grad=True)
    y = lib.cat([a, b]) * 2
    z = lib.stack([a, b], dim=-1)
    (y.sum() + (z * z).sum()).backward()
    return Grads((y, z, lib.cat((a, b), 1).shape, lib.stack((a, b)).shape), a, b)


def idiom_cat_int_and_bool(lib, F, nn):
    return lib.cat([lib.tensor([1, 2]), lib.tensor([3])]), lib.cat(
        [lib.tensor([True]), lib.tensor([False])])


def idiom_split_sizes(lib, F, nn):
    x = _randn(lib, 5, 4)
    return x.split(2), x.split([1, 4], dim=0), lib.split(x, 2, dim=1)


def idiom_split_grad(lib, F, nn):
    x = _randn(lib, 5, 4, grad=True)
    a, b = x.split([2, 3])
    (a.sum() * 2 + (b ** 2).sum()).backward()
    return Grads((a, b), x)


def idiom_chunk(lib, F, nn):
    x = _randn(lib, 6, 4)
    return x.chunk(2), x.chunk(3, dim=1), lib.chunk(x, 2), len(lib.arange(6).chunk(4))


def idiom_unbind(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x.unbind(0), x.unbind(dim=1), lib.unbind(x, 1)


def idiom_unbind_grad(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    a, b, c = x.unbind(0)
    (a * b - c).sum().backward()
    return Grads(c, x)


def idiom_flip(lib, F, nn):
    x = _randn(lib, 2, 3, 4, grad=True)
    y = x.flip(-1)
    (y * lib.arange(4.0)).sum().backward()
    return Grads((y, x.flip(dims=(0, 1)), lib.flip(x, [0]), x.flip([2])), x)


def idiom_fliplr_flipud(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x.fliplr(), x.flipud(), lib.fliplr(x)


def idiom_contiguous(lib, F, nn):
    x = _randn(lib, 3, 4)
    y = x.transpose(0, 1)
    return x.is_contiguous(), y.is_contiguous(), y.contiguous().is_contiguous(), y.contiguous()


def idiom_view_after_transpose_contiguous(lib, F, nn):
    return _randn(lib, 3, 4).t().contiguous().view(-1)


def idiom_narrow(lib, F, nn):
    x = _randn(lib, 3, 5)
    return x.narrow(1, 1, 2), lib.narrow(x, 0, 0, 2)


def idiom_size_shape_dim(lib, F, nn):
    x = _randn(lib, 2, 3, 4)
    return x.size(), x.size(1), x.size(-1), x.shape[-1], x.dim(), x.ndim, x.numel(), len(x)


def idiom_shape_unpack_and_compare(lib, F, nn):
    n, c, h, w = _randn(lib, 2, 3, 4, 5).shape
    x = _randn(lib, 2, 3)
    return n * c, h + w, x.shape == (2, 3), list(x.shape), x.shape[1:]


def idiom_view_as_reshape_as(lib, F, nn):
    x, y = _randn(lib, 2, 6), _randn(lib, 3, 4)
    return x.view_as(y), x.reshape_as(y)


def idiom_movedim(lib, F, nn):
    return _randn(lib, 2, 3, 4).movedim(1, -1).shape, lib.movedim(_randn(lib, 2, 3), 0, 1).shape


def idiom_tril_triu(lib, F, nn):
    x = _randn(lib, 3, 3)
    return x.tril(), x.triu(1), lib.triu(x)


def idiom_diag(lib, F, nn):
    x = _randn(lib, 3, 3)
    return lib.diag(x), x.diag(), lib.diag(lib.tensor([1.0, 2.0])), x.diagonal()


# ------------------------------------------------------------------ conversion, iteration
def idiom_tolist_item(lib, F, nn):
    x = _randn(lib, 2, 2)
    return x.tolist(), x[0, 0].item(), lib.tensor([3]).item(), lib.tensor([[1, 2]]).tolist()


def idiom_item_types(lib, F, nn):
    return (lib.tensor(2.5).item(), lib.tensor(3).item(), lib.tensor(True).item(),
            _randn(lib, 3).sum().item())


def idiom_iterate_rows(lib, F, nn):
    x = _randn(lib, 3, 2)
    return [r.sum() for r in x], [row for row in x]


def idiom_unpack_1d_tensor(lib, F, nn):
    a, b = lib.tensor([1.0, 2.0])
    return a, b, a + b


def idiom_python_builtins_on_0d(lib, F, nn):
    t = lib.tensor(2.7)
    return float(t), int(t), bool(t), round(float(t), 1)


def idiom_format_loss(lib, F, nn):
    loss = lib.tensor(0.123456)
    return f"{loss.item():.3f}", str(round(loss.item(), 2)), f"{loss.item()}"


def idiom_format_tensor_directly(lib, F, nn):
    return f"{lib.tensor(0.123456):.3f}"


def idiom_sum_of_python_list_of_tensors(lib, F, nn):
    xs = [_randn(lib, 2, seed=i) for i in range(3)]
    return sum(xs), sum(x.sum() for x in xs)


def idiom_max_builtin_over_items(lib, F, nn):
    s = _randn(lib, 5)
    return max(s.tolist()), sorted(s.tolist())


def idiom_equal_allclose(lib, F, nn):
    a = _randn(lib, 3)
    return lib.equal(a, a.clone()), lib.allclose(a, a + 1e-9), a.allclose(a * 2), lib.isclose(
        a, a + 1)


def idiom_clone_is_independent(lib, F, nn):
    x = _randn(lib, 3)
    y = x.clone()
    y[0] = 5.0
    return x, y


def idiom_detach_shares_data(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = x.detach()
    y[0] = 100.0
    return x.detach(), y.requires_grad


# ------------------------------------------------------------------ indexing
def idiom_index_basic(lib, F, nn):
    x = _randn(lib, 3, 4, 5)
    return x[0], x[:, 1], x[..., -1], x[1:, ::2], x[-1], x[0, 1, 2], x[:, :, 1:3].shape


def idiom_index_none_ellipsis(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x[None, ..., None].shape, x[:, None, :].shape, x[..., None]


def idiom_index_long_tensor_grad(lib, F, nn):
    x = _randn(lib, 5, 3, grad=True)
    idx = lib.tensor([4, 0, 2])
    y = x[idx]
    (y * lib.arange(3.0)).sum().backward()
    return Grads((y, x[:, lib.tensor([2, 0])], x[idx, lib.tensor([0, 1, 2])]), x)


def idiom_index_repeated_indices_grad(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    y = x[lib.tensor([1, 1, 3, 1])]
    y.sum().backward()
    return Grads(y, x)


def idiom_index_list(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x[[0, 2]], x[:, [1, 0]]


def idiom_index_0d_tensor(lib, F, nn):
    x = _randn(lib, 3, 4)
    i = lib.tensor(1)
    return x[i], x[:, i], x[x.argmax() // 4]


def idiom_bool_mask_index_grad(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    y = x[x > 0]
    (y * y).sum().backward()
    return Grads((y, x[lib.tensor([True, False] * 3)]), x)


def idiom_bool_mask_rows(lib, F, nn):
    boxes, keep = _boxes(lib, 6), _rand(lib, 6) > 0.4
    return boxes[keep], boxes[keep].shape, boxes[~keep, 2:]


def idiom_bool_mask_2d(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x[x > 0], x[x.abs() > 5].shape


def idiom_setitem_mask(lib, F, nn):
    y = _randn(lib, 3, 4)
    y[y < 0] = 0
    z = _randn(lib, 5)
    z[z > 0.5] = lib.tensor(9.0)
    return y, z


def idiom_setitem_slices(lib, F, nn):
    y = lib.zeros(3, 4)
    y[:, 0] = 1
    y[1] = lib.tensor([5.0, 6.0, 7.0, 8.0])
    y[0, 1:3] = 2.5
    y[-1, -1] = -1
    return y


def idiom_setitem_index_tensor(lib, F, nn):
    y = lib.zeros(5, dtype=lib.int64)
    y[lib.tensor([0, 3])] = lib.tensor([7, 9])
    z = lib.full((4, 2), -1.0)
    z[lib.tensor([1, 2])] = _randn(lib, 2, 2)
    return y, z


def idiom_setitem_into_nonleaf_keeps_grad(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    y = x * 2
    y[0] = 0.0
    y.sum().backward()
    return Grads(y, x)


def idiom_index_add_inplace_indexing(lib, F, nn):
    y = lib.zeros(4)
    y[lib.tensor([0, 2])] += 1.5
    y[1:3] *= 2
    return y


def idiom_gather_grad(lib, F, nn):
    x = _randn(lib, 4, 5, grad=True)
    idx = _ints(lib, 0, 5, (4, 2))
    y = x.gather(1, idx)
    (y * lib.arange(2.0)).sum().backward()
    return Grads((y, lib.gather(x, 0, _ints(lib, 0, 4, (2, 5), seed=1))), x)


def idiom_scatter_one_hot(lib, F, nn):
    labels = lib.tensor([0, 3, 1, 4])
    y = lib.zeros(4, 5).scatter(1, labels[:, None], 1.0)
    z = lib.zeros(4, 5)
    z.scatter_(1, labels.unsqueeze(1), 2.0)
    return y, z


def idiom_scatter_tensor_src(lib, F, nn):
    src = _randn(lib, 2, 3)
    idx = lib.tensor([[0, 1, 2], [2, 0, 1]])
    return lib.zeros(3, 3).scatter(0, idx, src), lib.zeros(2, 4).scatter(1, idx, src)


def idiom_scatter_add(lib, F, nn):
    idx, src = lib.tensor([0, 1, 0, 2, 1]), _randn(lib, 5, grad=True)
    y = lib.zeros(3).scatter_add(0, idx, src)
    (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    z = lib.zeros(3)
    z.scatter_add_(0, idx, src.detach())
    return Grads((y, z), src)


def idiom_index_add(lib, F, nn):
    y = lib.zeros(3, 2).index_add(0, lib.tensor([0, 2, 0]), _randn(lib, 3, 2))
    return y


def idiom_index_select_grad(lib, F, nn):
    x = _randn(lib, 4, 3, grad=True)
    y = x.index_select(0, lib.tensor([3, 1, 3]))
    y.sum().backward()
    return Grads((y, lib.index_select(x, 1, lib.tensor([2, 0]))), x)


def idiom_masked_fill_grad(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    m = _rand(lib, 3, 4, seed=1) > 0.5
    y = x.masked_fill(m, 0.0)
    (y * 3).sum().backward()
    return Grads((y, x.masked_fill(~m, float("-inf"))), x)


def idiom_masked_fill_inplace(lib, F, nn):
    y = _randn(lib, 3, 4)
    y.masked_fill_(y < 0, -1)
    z = lib.zeros(2, 3).masked_fill_(lib.tensor([True, False, True]), 5.0)
    return y, z


def idiom_masked_select(lib, F, nn):
    x = _randn(lib, 3, 4)
    return x.masked_select(x > 0), lib.masked_select(x, x < 0)


def idiom_nonzero(lib, F, nn):
    m = _randn(lib, 3, 4) > 0
    return m.nonzero(), lib.nonzero(m), m.nonzero().dtype, m.nonzero().shape[1]


def idiom_nonzero_as_tuple(lib, F, nn):
    m = _randn(lib, 3, 4) > 0
    return m.nonzero(as_tuple=True), lib.nonzero(m, as_tuple=True)


def idiom_nonzero_1d_squeeze(lib, F, nn):
    return (_randn(lib, 8) > 0).nonzero().squeeze(1), (_randn(lib, 8) > 0).nonzero().view(-1)


def idiom_nonzero_empty(lib, F, nn):
    return lib.zeros(3, dtype=lib.bool).nonzero().shape, (lib.zeros(3) > 1).nonzero(
        as_tuple=True)[0].numel()


def idiom_argwhere(lib, F, nn):
    return lib.argwhere(_randn(lib, 3, 3) > 0)


# ------------------------------------------------------------------ sort, topk, unique
def idiom_topk(lib, F, nn):
    x = _randn(lib, 3, 6)
    v, i = x.topk(3)
    return v, i, x.topk(2, dim=0), x.topk(2, largest=False), lib.topk(x, 2).indices


def idiom_topk_values_indices_fields(lib, F, nn):
    r = _randn(lib, 10).topk(4)
    return r.values, r.indices, r[0], r[1].dtype


def idiom_topk_sorted_and_k_equals_n(lib, F, nn):
    x = _randn(lib, 5)
    return x.topk(5), x.topk(k=1, dim=-1, largest=True, sorted=True)


def idiom_topk_grad(lib, F, nn):
    x = _randn(lib, 8, grad=True)
    v, _ = x.topk(3)
    (v * lib.tensor([3.0, 2.0, 1.0])).sum().backward()
    return Grads(v, x)


def idiom_sort(lib, F, nn):
    x = _randn(lib, 3, 5)
    return x.sort(), x.sort(descending=True), x.sort(dim=0), lib.sort(x, dim=-1, descending=True)


def idiom_sort_fields_and_grad(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    s = x.sort(descending=True)
    (s.values * lib.arange(6.0)).sum().backward()
    return Grads((s.values, s.indices), x)


def idiom_argsort(lib, F, nn):
    x = _randn(lib, 3, 5)
    return x.argsort(), x.argsort(descending=True), lib.argsort(x, dim=0), x.argsort(dim=1)


def idiom_sort_stable(lib, F, nn):
    x = lib.tensor([2, 1, 2, 1, 0, 2])
    return x.sort(stable=True), lib.sort(x, stable=True, descending=True).indices


def idiom_sort_int_tensor(lib, F, nn):
    x = lib.tensor([5, 3, 9, 1])
    return x.sort(), lib.argsort(x, descending=True)


def idiom_unique(lib, F, nn):
    labels = lib.tensor([3, 1, 3, 0, 1, 3])
    return labels.unique(), lib.unique(labels), labels.unique(return_counts=True)


def idiom_unique_inverse(lib, F, nn):
    labels = lib.tensor([3, 1, 3, 0, 1, 3])
    return lib.unique(labels, return_inverse=True), lib.unique(
        labels, return_inverse=True, return_counts=True)


def idiom_unique_float(lib, F, nn):
    return lib.tensor([0.5, 0.25, 0.5]).unique()


def idiom_bincount(lib, F, nn):
    x = lib.tensor([0, 1, 1, 3, 1])
    return lib.bincount(x), lib.bincount(x, minlength=6), x.bincount(), lib.bincount(
        x, weights=lib.tensor([0.5, 1.0, 1.0, 2.0, 0.25]))


def idiom_cummax(lib, F, nn):
    x = _randn(lib, 6)
    return x.cummax(0).values, lib.cummax(x, dim=0).indices


# ------------------------------------------------------------------ grids, einsum, matmul
def idiom_meshgrid_ij(lib, F, nn):
    ys, xs = lib.meshgrid(lib.arange(3), lib.arange(4), indexing="ij")
    return ys, xs


def idiom_meshgrid_xy(lib, F, nn):
    xs, ys = lib.meshgrid(lib.arange(4.0), lib.arange(3.0), indexing="xy")
    return xs, ys


def idiom_meshgrid_list_arg(lib, F, nn):
    return lib.meshgrid([lib.arange(2), lib.arange(3)], indexing="ij")


def idiom_einsum(lib, F, nn):
    a, b = _randn(lib, 3, 4, grad=True), _randn(lib, 5, 4, seed=1, grad=True)
    y = lib.einsum("nc,mc->nm", a, b)
    y.sum().backward()
    return Grads((y, lib.einsum("ij->j", a), lib.einsum("ij,ij->i", a, a)), a, b)


def idiom_einsum_batched(lib, F, nn):
    a, b = _randn(lib, 2, 3, 4), _randn(lib, 2, 4, 5, seed=1)
    return lib.einsum("bij,bjk->bik", a, b), lib.einsum("bij->bji", a)


def idiom_matmul_family_grads(lib, F, nn):
    a, b = _randn(lib, 3, 4, grad=True), _randn(lib, 4, 2, seed=1, grad=True)
    y = a @ b + a.mm(b) + lib.mm(a, b) + lib.matmul(a, b) + a.matmul(b)
    y.sum().backward()
    return Grads(y, a, b)


def idiom_bmm_grads(lib, F, nn):
    a, b = _randn(lib, 2, 3, 4, grad=True), _randn(lib, 2, 4, 5, seed=1, grad=True)
    y = lib.bmm(a, b) + a.bmm(b) + a @ b
    y.sum().backward()
    return Grads(y, a, b)


def idiom_matmul_broadcast_and_vector(lib, F, nn):
    a, w, v = _randn(lib, 2, 3, 4), _randn(lib, 4, 5, seed=1), _randn(lib, 4, seed=2)
    return a @ w, a @ v, v @ v, lib.matmul(w.t(), v)


def idiom_dot_outer(lib, F, nn):
    u, v = _randn(lib, 3), _randn(lib, 3, seed=1)
    return lib.dot(u, v), u.dot(v), lib.outer(u, v)


# ------------------------------------------------------------------ in-place ops
def idiom_zero_fill_inplace(lib, F, nn):
    y = lib.ones(3)
    y.zero_()
    z = lib.empty(2).fill_(3.0)
    return y, z, lib.zeros(2, dtype=lib.int64).fill_(7)


def idiom_copy_inplace(lib, F, nn):
    y = lib.zeros(2, 3)
    y.copy_(_randn(lib, 2, 3))
    z = lib.zeros(2, 3)
    z.copy_(lib.tensor([1.0, 2.0, 3.0]))  # broadcast
    return y, z


def idiom_add_mul_inplace_chain(lib, F, nn):
    x = _randn(lib, 4)
    y = x.clone()
    y.add_(1).mul_(2)
    y.add_(x, alpha=0.5)
    y.sub_(1)
    y.div_(2)
    return y


def idiom_inplace_returns_self(lib, F, nn):
    y = _randn(lib, 3)
    return y.add_(1) is y, y.mul_(2) is y, y.zero_() is y, y.clamp_(0, 1) is y


def idiom_inplace_on_slice_writes_through(lib, F, nn):
    y = lib.zeros(3, 4)
    y[:, 1].fill_(2)
    y[0].add_(1)
    y[2, 2:].zero_()
    return y


def idiom_view_shares_storage(lib, F, nn):
    x = _randn(lib, 2, 3)
    v = x.view(-1)
    v[0] = 100.0
    return x


def idiom_exp_sigmoid_inplace(lib, F, nn):
    x = _randn(lib, 3)
    return x.clone().exp_(), x.clone().sigmoid_(), x.clone().abs_(), x.clone().neg_()


def idiom_inplace_on_nonleaf_grad(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(3)
    y.sum().backward()
    return Grads(y, x)


def idiom_augmented_assignment_keeps_grad(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    h = x * 2
    h += 1
    h *= x
    h -= 0.5
    h /= 2
    h.sum().backward()
    return Grads(h, x)


def idiom_relu_inplace_modifies_input(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    h = x * 1.5
    out = F.relu(h, inplace=True)
    out.sum().backward()
    return Grads((out, h, out is h), x)


def idiom_relu_module_inplace_in_sequential(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    y = nn.ReLU(inplace=True)(x * 2)
    y.sum().backward()
    return Grads(y, x)


# ------------------------------------------------------------------ autograd
def idiom_backward_accumulates(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    return Grads(None, w)


def idiom_retain_grad_nonleaf(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    h = x * 2
    h.retain_grad()
    (h ** 2).sum().backward()
    return Grads(None, h, x)


def idiom_detach_stops_grad(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = x.detach() * 2 + x
    y.sum().backward()
    return Grads((y.requires_grad, x.detach().requires_grad), x)


def idiom_no_grad_block(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    with lib.no_grad():
        y = x * 2
        inside = lib.is_grad_enabled()
    return y.requires_grad, inside, lib.is_grad_enabled(), y.grad_fn is None


def idiom_no_grad_decorator(lib, F, nn):
    @lib.no_grad()
    def f(t):
        return t * 2

    return f(_randn(lib, 3, grad=True)).requires_grad


def idiom_set_grad_enabled(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    with lib.set_grad_enabled(False):
        y = x * 2
    with lib.set_grad_enabled(True):
        z = x * 2
    return y.requires_grad, z.requires_grad


def idiom_set_grad_enabled_by_flag(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    out = []
    for train in (True, False):
        with lib.set_grad_enabled(train):
            out.append((x * 2).requires_grad)
    return out


def idiom_inference_mode(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    with lib.inference_mode():
        y = x * 2
    return y.requires_grad, y


def idiom_enable_grad_inside_no_grad(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    with lib.no_grad(), lib.enable_grad():
        y = x * 2
    return y.requires_grad


def idiom_requires_grad_flags(lib, F, nn):
    x = _randn(lib, 3)
    before = x.requires_grad
    x.requires_grad_()
    y = x * 2
    return before, x.requires_grad, y.requires_grad, y.is_leaf, x.is_leaf, x.grad_fn is None, \
        y.grad_fn is not None


def idiom_requires_grad_attribute_assign(lib, F, nn):
    x = _randn(lib, 3)
    x.requires_grad = True
    (x * x).sum().backward()
    return Grads(x.requires_grad, x)


def idiom_backward_with_gradient(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = x * 2
    y.backward(lib.ones_like(y))
    z = x ** 2
    z.backward(gradient=lib.tensor([1.0, 0.0, -1.0]))
    return Grads(None, x)


def idiom_backward_retain_graph_twice(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    return Grads(y, x)


def idiom_manual_sgd_no_grad(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    (w ** 2).sum().backward()
    with lib.no_grad():
        w -= 0.1 * w.grad
    return w, w.requires_grad, w.is_leaf


def idiom_manual_sgd_loop_grad_zero(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    for _ in range(3):
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        with lib.no_grad():
            w.sub_(0.1 * w.grad)
            w.grad.zero_()
    return w, w.grad


def idiom_grad_is_tensor(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    (w * w).sum().backward()
    return lib.is_tensor(w.grad), w.grad.norm(), w.grad.shape, w.grad.abs().max().item()


def idiom_grad_none_before_backward(lib, F, nn):
    return _randn(lib, 3, grad=True).grad is None


def idiom_grad_set_to_none_manually(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    (w * 2).sum().backward()
    w.grad = None
    (w * 3).sum().backward()
    return Grads(None, w)


def idiom_grad_used_twice(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = x * x + x + x.exp() * x
    y.sum().backward()
    return Grads(y, x)


def idiom_loss_dict_sum(lib, F, nn):
    x = _randn(lib, 4, grad=True)
    losses = {"cls": (x ** 2).mean(), "box": x.abs().sum() * 0.5}
    total = sum(losses.values())
    total.backward()
    return Grads((total, {k: v.item() for k, v in losses.items()}), x)


def idiom_autograd_grad(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = (x ** 3).sum()
    (g,) = lib.autograd.grad(y, x)
    return g, x.grad is None


def idiom_float64_grad(lib, F, nn):
    x = lib.tensor(_rng().standard_normal(4), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    return Grads((y, x.dtype), x)


def idiom_detach_numpy(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    return (x * 2).detach().numpy(), (x * 2).detach().cpu().numpy().dtype.name


def idiom_item_after_backward(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    loss = (x ** 2).mean()
    loss.backward()
    return loss.item(), type(loss.item()).__name__


# ------------------------------------------------------------------ functional
def idiom_relu_variants_grads(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    y = F.relu(x) + x.relu() + F.leaky_relu(x, 0.1) + F.leaky_relu(x, negative_slope=0.2)
    y.sum().backward()
    return Grads(y, x)


def idiom_gelu_silu_grads(lib, F, nn):
    x = _randn(lib, 6, grad=True)
    y = F.gelu(x) + F.silu(x)
    y.sum().backward()
    return Grads((y, F.gelu(x, approximate="tanh")), x)


def idiom_softplus_logsigmoid(lib, F, nn):
    x = _randn(lib, 6)
    return F.softplus(x), F.logsigmoid(x)


def idiom_elu_hardtanh_relu6_mish(lib, F, nn):
    x = _randn(lib, 6)
    return F.elu(x), F.hardtanh(x), F.relu6(x * 4), F.mish(x)


def idiom_softmax_functional_grads(lib, F, nn):
    x = _randn(lib, 3, 5, grad=True)
    y = F.softmax(x, dim=1)
    z = F.log_softmax(x, dim=-1)
    ((y * lib.arange(5.0)).sum() + z[:, 0].sum()).backward()
    return Grads((y, z), x)


def idiom_softmax_methods(lib, F, nn):
    x = _randn(lib, 3, 5)
    return x.softmax(dim=1), x.log_softmax(-1), lib.softmax(x, dim=0), lib.log_softmax(x, 1)


def idiom_softmax_3d_dims(lib, F, nn):
    x = _randn(lib, 2, 3, 4)
    return F.softmax(x, dim=0), F.softmax(x, 1), x.softmax(-1).sum(-1)


def idiom_one_hot(lib, F, nn):
    labels = lib.tensor([0, 3, 1, 4])
    y = F.one_hot(labels, num_classes=6)
    return y, y.dtype, F.one_hot(labels), F.one_hot(labels, 5).float()


def idiom_one_hot_2d_seg_targets(lib, F, nn):
    t = _ints(lib, 0, 3, (2, 4, 4))
    return F.one_hot(t, 3).permute(0, 3, 1, 2).float()


def idiom_normalize_grads(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    y = F.normalize(x, dim=1)
    (y * lib.arange(4.0)).sum().backward()
    return Grads((y, F.normalize(x, p=2, dim=-1), F.normalize(x, p=1, dim=0)), x)


def idiom_layer_norm_grads(lib, F, nn):
    x = _randn(lib, 2, 3, 4, grad=True)
    w, b = _randn(lib, 4, seed=1, grad=True), _randn(lib, 4, seed=2, grad=True)
    y = F.layer_norm(x, (4,), w, b)
    (y * lib.arange(4.0)).sum().backward()
    return Grads((y, F.layer_norm(x, (3, 4))), x, w, b)


def idiom_group_norm_grads(lib, F, nn):
    x = _randn(lib, 2, 4, 3, 3, grad=True)
    w, b = _randn(lib, 4, seed=1, grad=True), _randn(lib, 4, seed=2, grad=True)
    y = F.group_norm(x, 2, w, b)
    (y * y).sum().backward()
    return Grads((y, F.group_norm(x, 4)), x, w, b)


def idiom_cross_entropy_reductions_grads(lib, F, nn):
    logits, target = _randn(lib, 5, 4, grad=True), _ints(lib, 0, 4, (5,))
    loss = F.cross_entropy(logits, target)
    loss.backward()
    return Grads((loss, F.cross_entropy(logits, target, reduction="none"),
                  F.cross_entropy(logits, target, reduction="sum")), logits)


def idiom_cross_entropy_ignore_index(lib, F, nn):
    logits = _randn(lib, 6, 3, grad=True)
    target = lib.tensor([0, -100, 2, 1, -100, 2])
    loss = F.cross_entropy(logits, target)
    loss.backward()
    t255 = lib.tensor([0, 255, 2, 255, 1, 1])
    return Grads((loss, F.cross_entropy(logits, t255, ignore_index=255)), logits)


def idiom_cross_entropy_weight(lib, F, nn):
    logits, target = _randn(lib, 6, 3, grad=True), _ints(lib, 0, 3, (6,))
    loss = F.cross_entropy(logits, target, weight=lib.tensor([0.2, 1.0, 3.0]))
    loss.backward()
    return Grads(loss, logits)


def idiom_cross_entropy_label_smoothing(lib, F, nn):
    logits, target = _randn(lib, 6, 3, grad=True), _ints(lib, 0, 3, (6,))
    loss = F.cross_entropy(logits, target, label_smoothing=0.1)
    loss.backward()
    return Grads(loss, logits)


def idiom_cross_entropy_segmentation(lib, F, nn):
    logits = _randn(lib, 2, 3, 4, 4, grad=True)
    target = _ints(lib, 0, 3, (2, 4, 4))
    target[0, 0, :2] = 255
    loss = F.cross_entropy(logits, target, ignore_index=255)
    loss.backward()
    return Grads(loss, logits)


def idiom_cross_entropy_soft_targets(lib, F, nn):
    logits = _randn(lib, 4, 3, grad=True)
    probs = F.softmax(_randn(lib, 4, 3, seed=1), dim=1)
    loss = F.cross_entropy(logits, probs)
    loss.backward()
    return Grads(loss, logits)


def idiom_nll_of_log_softmax(lib, F, nn):
    logits, target = _randn(lib, 5, 4, grad=True), _ints(lib, 0, 4, (5,))
    loss = F.nll_loss(F.log_softmax(logits, dim=1), target)
    loss.backward()
    return Grads(loss, logits)


def idiom_bce_with_logits_grads(lib, F, nn):
    x, t = _randn(lib, 4, 3, grad=True), (_rand(lib, 4, 3, seed=1) > 0.5).float()
    loss = F.binary_cross_entropy_with_logits(x, t)
    loss.backward()
    return Grads((loss, F.binary_cross_entropy_with_logits(x, t, reduction="sum"),
                  F.binary_cross_entropy_with_logits(x, t, weight=t + 1)), x)


def idiom_bce_with_logits_pos_weight(lib, F, nn):
    x, t = _randn(lib, 4, 3, grad=True), (_rand(lib, 4, 3, seed=1) > 0.5).float()
    loss = F.binary_cross_entropy_with_logits(x, t, pos_weight=lib.tensor([1.0, 2.0, 3.0]))
    loss.backward()
    return Grads(loss, x)


def idiom_binary_cross_entropy_on_probs(lib, F, nn):
    x, t = _randn(lib, 4, 3, grad=True), (_rand(lib, 4, 3, seed=1) > 0.5).float()
    loss = F.binary_cross_entropy(lib.sigmoid(x), t)
    loss.backward()
    return Grads(loss, x)


def idiom_smooth_l1_grads(lib, F, nn):
    p, t = _randn(lib, 5, 4, grad=True), _randn(lib, 5, 4, seed=1)
    loss = F.smooth_l1_loss(p, t)
    loss.backward()
    return Grads((loss, F.smooth_l1_loss(p, t, beta=1 / 9, reduction="sum"),
                  F.smooth_l1_loss(p, t, reduction="none")), p)


def idiom_l1_mse_losses(lib, F, nn):
    p, t = _randn(lib, 5, 4, grad=True), _randn(lib, 5, 4, seed=1)
    loss = F.l1_loss(p, t) + F.mse_loss(p, t) + F.mse_loss(p, t, reduction="sum") * 0.1
    loss.backward()
    return Grads(loss, p)


def idiom_huber_loss(lib, F, nn):
    p, t = _randn(lib, 5), _randn(lib, 5, seed=1)
    return F.huber_loss(p, t, delta=0.5)


def idiom_kl_div(lib, F, nn):
    p = F.log_softmax(_randn(lib, 3, 4), dim=1)
    q = F.softmax(_randn(lib, 3, 4, seed=1), dim=1)
    return F.kl_div(p, q, reduction="batchmean")


def idiom_interpolate_bilinear_grads(lib, F, nn):
    x = _randn(lib, 1, 2, 4, 5, grad=True)
    y = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)
    (y * y).sum().backward()
    return Grads(y, x)


def idiom_interpolate_bilinear_align_corners(lib, F, nn):
    x = _randn(lib, 1, 2, 4, 5)
    return (F.interpolate(x, size=(8, 10), mode="bilinear", align_corners=True),
            F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


def idiom_interpolate_nearest(lib, F, nn):
    x = _randn(lib, 1, 2, 3, 3)
    return F.interpolate(x, scale_factor=2), F.interpolate(x, size=(5, 4), mode="nearest")


def idiom_max_pool2d_grads(lib, F, nn):
    x = _randn(lib, 1, 2, 6, 6, grad=True)
    y = F.max_pool2d(x, 2)
    z = F.max_pool2d(x, 3, stride=2, padding=1)
    (y.sum() + (z * z).sum()).backward()
    return Grads((y, z), x)


def idiom_max_pool2d_return_indices(lib, F, nn):
    y, idx = F.max_pool2d(_randn(lib, 1, 1, 4, 4), 2, return_indices=True)
    return y, idx, idx.dtype


def idiom_avg_pool2d(lib, F, nn):
    x = _randn(lib, 1, 2, 6, 6, grad=True)
    y = F.avg_pool2d(x, 2) * 2
    y.sum().backward()
    return Grads((y, F.avg_pool2d(x, 3, stride=2, padding=1)), x)


def idiom_adaptive_avg_pool2d(lib, F, nn):
    x = _randn(lib, 2, 3, 7, 7, grad=True)
    y = F.adaptive_avg_pool2d(x, 1).flatten(1)
    (y * lib.arange(3.0)).sum().backward()
    return Grads((y, F.adaptive_avg_pool2d(x, (3, 3)), F.adaptive_avg_pool2d(x, 2)), x)


def idiom_adaptive_max_pool2d(lib, F, nn):
    return F.adaptive_max_pool2d(_randn(lib, 1, 2, 6, 6), (2, 2))


def idiom_global_avg_pool_by_mean(lib, F, nn):
    x = _randn(lib, 2, 3, 4, 4)
    return x.mean((2, 3)), x.mean(dim=[-2, -1], keepdim=True).shape


def idiom_conv2d_bias_grads(lib, F, nn):
    x = _randn(lib, 2, 3, 6, 6, grad=True)
    w, b = _randn(lib, 4, 3, 3, 3, seed=1, grad=True), _randn(lib, 4, seed=2, grad=True)
    y = F.conv2d(x, w, b, padding=1)
    (y * y).sum().backward()
    return Grads(y, x, w, b)


def idiom_conv2d_stride_dilation_groups(lib, F, nn):
    x = _randn(lib, 1, 4, 9, 9)
    w = _randn(lib, 4, 2, 3, 3, seed=1)
    return (F.conv2d(x, w, stride=2, padding=2, dilation=2, groups=2),
            F.conv2d(x, w[:, :1], groups=4, padding=(1, 0)))


def idiom_conv_transpose2d(lib, F, nn):
    x = _randn(lib, 1, 3, 4, 4, grad=True)
    w, b = _randn(lib, 3, 2, 4, 4, seed=1), _randn(lib, 2, seed=2)
    y = F.conv_transpose2d(x, w, b, stride=2, padding=1)
    y.sum().backward()
    return Grads(y, x)


def idiom_batch_norm_eval_functional(lib, F, nn):
    x = _randn(lib, 2, 3, 4, 4)
    rm, rv = _randn(lib, 3, seed=1), _rand(lib, 3, seed=2) + 0.5
    w, b = _randn(lib, 3, seed=3), _randn(lib, 3, seed=4)
    return F.batch_norm(x, rm, rv, w, b, training=False)


def idiom_batch_norm_train_functional_updates_stats(lib, F, nn):
    x = _randn(lib, 4, 3, 2, 2)
    rm, rv = lib.zeros(3), lib.ones(3)
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.1)
    return y, rm, rv


def idiom_pad(lib, F, nn):
    x = _randn(lib, 1, 1, 2, 3, grad=True)
    y = F.pad(x, (1, 1, 2, 0))
    y.sum().backward()
    return Grads((y, F.pad(x, (0, 2), value=-1.0), F.pad(x, [1, 1, 1, 1], mode="constant")), x)


def idiom_pad_reflect_replicate(lib, F, nn):
    x = _randn(lib, 1, 1, 3, 3)
    return F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(x, (1, 1, 1, 1), mode="replicate")


def idiom_dropout_eval_is_identity(lib, F, nn):
    x = _randn(lib, 3, 4)
    return F.dropout(x, 0.5, training=False), F.dropout(x, p=0.3, training=False)


def idiom_dropout_train_scales(lib, F, nn):
    y = F.dropout(lib.ones(1000), p=0.5, training=True)
    return bool(((y == 0) | (y == 2)).all()), y.shape


def idiom_linear_functional_grads(lib, F, nn):
    x = _randn(lib, 3, 4, grad=True)
    w, b = _randn(lib, 2, 4, seed=1, grad=True), _randn(lib, 2, seed=2, grad=True)
    y = F.linear(x, w, b)
    (y ** 2).sum().backward()
    return Grads((y, F.linear(x, w)), x, w, b)


def idiom_cosine_similarity(lib, F, nn):
    a, b = _randn(lib, 3, 4), _randn(lib, 3, 4, seed=1)
    return F.cosine_similarity(a, b, dim=1), F.pairwise_distance(a, b)


def idiom_unfold_pixel_shuffle(lib, F, nn):
    x = _randn(lib, 1, 4, 2, 2)
    return F.pixel_shuffle(x, 2), F.unfold(x, kernel_size=2).shape


def idiom_grid_sample_identity(lib, F, nn):
    x = _randn(lib, 1, 1, 3, 3)
    theta = lib.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    grid = F.affine_grid(theta, [1, 1, 3, 3], align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


# ------------------------------------------------------------------ nn modules
def _mlp(lib, nn, seed=0):
    return _load_params(lib, nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), seed)


def _conv_bn(lib, nn, seed=0):
    return _load_params(lib, nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                                           nn.ReLU()), seed)


def idiom_linear_module_grads(lib, F, nn):
    m = _load_params(lib, nn.Linear(3, 2))
    x = _randn(lib, 4, 3, seed=1)
    y = m(x)
    y.sum().backward()
    return Grads((y, m.weight.shape, m.bias.shape, m.in_features, m.out_features),
                 m.weight, m.bias)


def idiom_linear_no_bias(lib, F, nn):
    m = nn.Linear(3, 2, bias=False)
    return m.bias is None, len(list(m.parameters()))


def idiom_linear_on_3d_input(lib, F, nn):
    m = _load_params(lib, nn.Linear(3, 2))
    return m(_randn(lib, 2, 5, 3, seed=1))


def idiom_conv2d_module_grads(lib, F, nn):
    c = _load_params(lib, nn.Conv2d(3, 4, 3, stride=2, padding=1))
    x = _randn(lib, 2, 3, 7, 7, seed=1)
    y = c(x)
    (y * y).sum().backward()
    return Grads(y, c.weight, c.bias)


def idiom_conv2d_module_attrs(lib, F, nn):
    c = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    return (c.weight.shape, c.bias is None, c.in_channels, c.out_channels, c.kernel_size,
            c.stride, c.padding, c.groups)


def idiom_conv_transpose2d_module(lib, F, nn):
    c = _load_params(lib, nn.ConvTranspose2d(3, 2, 2, stride=2))
    return c(_randn(lib, 1, 3, 3, 3, seed=1))


def idiom_batchnorm2d_eval(lib, F, nn):
    bn = nn.BatchNorm2d(3)
    bn.running_mean.copy_(lib.tensor([0.1, -0.2, 0.3]))
    bn.running_var.fill_(2.0)
    bn.eval()
    return bn(_randn(lib, 2, 3, 4, 4)), bn.training


def idiom_batchnorm2d_train_updates_stats(lib, F, nn):
    bn = nn.BatchNorm2d(3)
    y = bn(_randn(lib, 4, 3, 2, 2))
    return y, bn.running_mean, bn.running_var, bn.num_batches_tracked


def idiom_batchnorm1d(lib, F, nn):
    bn = nn.BatchNorm1d(4)
    return bn(_randn(lib, 5, 4)), bn.eval()(_randn(lib, 5, 4, seed=1))


def idiom_groupnorm_module(lib, F, nn):
    gn = nn.GroupNorm(2, 4)
    x = _randn(lib, 2, 4, 3, 3, grad=True)
    y = gn(x)
    (y * y).sum().backward()
    return Grads((y, gn.weight, gn.bias), x)


def idiom_layernorm_module(lib, F, nn):
    ln = nn.LayerNorm(4)
    x = _randn(lib, 2, 3, 4, grad=True)
    y = ln(x)
    (y * lib.arange(4.0)).sum().backward()
    return Grads((y, ln.weight.shape, ln.normalized_shape), x, ln.weight, ln.bias)


def idiom_activation_modules(lib, F, nn):
    x = _randn(lib, 2, 5)
    return (nn.GELU()(x), nn.SiLU()(x), nn.ReLU()(x), nn.LeakyReLU(0.2)(x), nn.Sigmoid()(x),
            nn.Tanh()(x), nn.Softmax(dim=1)(x))


def idiom_identity_flatten_dropout_eval(lib, F, nn):
    x = _randn(lib, 2, 3, 2)
    return nn.Identity()(x), nn.Flatten()(x), nn.Dropout(0.5).eval()(x), nn.Flatten(0)(x).shape


def idiom_pool_upsample_modules(lib, F, nn):
    x = _randn(lib, 1, 2, 4, 4)
    return (nn.MaxPool2d(2)(x), nn.AvgPool2d(2)(x), nn.AdaptiveAvgPool2d((1, 1))(x),
            nn.Upsample(scale_factor=2, mode="nearest")(x),
            nn.Upsample(size=(6, 6), mode="bilinear", align_corners=False)(x))


def idiom_loss_modules(lib, F, nn):
    x, t = _randn(lib, 4, 3), lib.tensor([0, -1, 2, 1])
    p, q = _randn(lib, 4, 3, seed=1), _randn(lib, 4, 3, seed=2)
    return (nn.CrossEntropyLoss(ignore_index=-1)(x, t), nn.SmoothL1Loss(beta=0.5)(p, q),
            nn.BCEWithLogitsLoss()(p, (q > 0).float()), nn.MSELoss(reduction="sum")(p, q),
            nn.CrossEntropyLoss(reduction="none")(x, t.clamp(min=0)))


def idiom_l1_loss_module(lib, F, nn):
    return nn.L1Loss()(_randn(lib, 4, 3), _randn(lib, 4, 3, seed=1))


def idiom_sequential_forward_grads(lib, F, nn):
    m = _mlp(lib, nn)
    x = _randn(lib, 5, 3, seed=1, grad=True)
    y = m(x)
    y.sum().backward()
    return Grads(y, x, m[0].weight, m[2].bias)


def idiom_sequential_index_len(lib, F, nn):
    m = _mlp(lib, nn)
    return len(m), isinstance(m[1], nn.ReLU), m[0].out_features, m[-1].in_features, len(m[:2])


def idiom_sequential_ordered_dict(lib, F, nn):
    from collections import OrderedDict
    m = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    return [n for n, _ in m.named_parameters()], m.fc.out_features


def idiom_module_list(lib, F, nn):
    heads = nn.ModuleList([nn.Linear(3, 2) for _ in range(3)])
    heads.append(nn.Linear(3, 1))
    _load_params(lib, heads)
    x = _randn(lib, 2, 3, seed=1)
    return len(heads), [h(x) for h in heads], sum(p.numel() for p in heads.parameters())


def idiom_module_dict(lib, F, nn):
    d = nn.ModuleDict({"cls": nn.Linear(3, 4), "box": nn.Linear(3, 8)})
    _load_params(lib, d)
    x = _randn(lib, 2, 3, seed=1)
    return (list(d.keys()), "cls" in d, len(d), d["cls"](x), d.box(x).shape,
            [n for n, _ in d.named_parameters()])


def idiom_num_parameters(lib, F, nn):
    m = _conv_bn(lib, nn)
    return (sum(p.numel() for p in m.parameters()),
            sum(p.numel() for p in m.parameters() if p.requires_grad))


def idiom_named_parameters_and_buffers(lib, F, nn):
    m = _conv_bn(lib, nn)
    return [n for n, _ in m.named_parameters()], [n for n, _ in m.named_buffers()]


def idiom_state_dict_keys(lib, F, nn):
    return list(_conv_bn(lib, nn).state_dict().keys())


def idiom_state_dict_values_are_tensors(lib, F, nn):
    sd = _mlp(lib, nn).state_dict()
    return all(lib.is_tensor(v) for v in sd.values()), sd["0.weight"].shape, sd["2.bias"]


def idiom_state_dict_round_trip(lib, F, nn):
    m1, m2 = _mlp(lib, nn, seed=0), _mlp(lib, nn, seed=1)
    r = m2.load_state_dict(m1.state_dict())
    x = _randn(lib, 3, 3, seed=2)
    return m2(x), list(r.missing_keys), list(r.unexpected_keys)


def idiom_state_dict_clone_snapshot(lib, F, nn):
    m = _mlp(lib, nn)
    best = {k: v.clone() for k, v in m.state_dict().items()}
    with lib.no_grad():
        m[0].weight.add_(1.0)
    m.load_state_dict(best)
    return m[0].weight


def idiom_load_state_dict_strict_false(lib, F, nn):
    m = nn.Linear(3, 2)
    r = m.load_state_dict({"weight": lib.ones(2, 3), "extra": lib.zeros(1)}, strict=False)
    return r.missing_keys, r.unexpected_keys, m.weight, list(r)


def idiom_forward_hook_captures(lib, F, nn):
    m = _mlp(lib, nn)
    feats = []
    h = m[1].register_forward_hook(lambda mod, inp, out: feats.append(out))
    x = _randn(lib, 2, 3, seed=1)
    m(x)
    h.remove()
    m(x)
    return len(feats), feats[0]


def idiom_forward_hook_replaces_output(lib, F, nn):
    m = _mlp(lib, nn)
    m[0].register_forward_hook(lambda mod, inp, out: out * 0)
    return m(_randn(lib, 2, 3, seed=1))


def idiom_forward_hook_inputs_tuple(lib, F, nn):
    m = _mlp(lib, nn)
    seen = []
    m[2].register_forward_hook(lambda mod, inp, out: seen.append((type(inp).__name__,
                                                                   inp[0].shape)))
    m(_randn(lib, 2, 3, seed=1))
    return seen


def idiom_forward_pre_hook(lib, F, nn):
    m = _mlp(lib, nn)
    m.register_forward_pre_hook(lambda mod, inp: (inp[0] * 2,))
    return m(_randn(lib, 2, 3, seed=1))


def idiom_register_buffer(lib, F, nn):
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("anchors", lib.ones(3, 4))
            self.register_buffer("scratch", lib.zeros(2), persistent=False)
            self.fc = nn.Linear(4, 1)

        def forward(self, x):
            return self.fc(x + self.anchors)

    m = Head()
    return list(m.state_dict().keys()), [n for n, _ in m.named_buffers()], m.anchors


def idiom_custom_module_parameter(lib, F, nn):
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(lib.full((1,), 2.0))

        def forward(self, x):
            return x * self.scale

    m = Scale()
    y = m(_randn(lib, 3))
    y.sum().backward()
    return Grads((y, [n for n, _ in m.named_parameters()], m.scale.requires_grad), m.scale)


def idiom_parameter_isinstance(lib, F, nn):
    m = nn.Linear(2, 2)
    return isinstance(m.weight, nn.Parameter), isinstance(m.weight, lib.Tensor), \
        isinstance(nn.Parameter(lib.zeros(2)), lib.Tensor)


def idiom_param_data_is_tensor(lib, F, nn):
    m = nn.Linear(3, 2)
    m.weight.data.copy_(lib.ones(2, 3))
    m.bias.data.zero_()
    return m.weight, m.bias, lib.is_tensor(m.weight.data)


def idiom_zero_grad_sets_none(lib, F, nn):
    m = _mlp(lib, nn)
    m(_randn(lib, 2, 3, seed=1)).sum().backward()
    had = m[0].weight.grad is not None
    m.zero_grad()
    return had, m[0].weight.grad is None


def idiom_zero_grad_set_to_none_false(lib, F, nn):
    m = _mlp(lib, nn)
    m(_randn(lib, 2, 3, seed=1)).sum().backward()
    m.zero_grad(set_to_none=False)
    return m[0].weight.grad


def idiom_freeze_params(lib, F, nn):
    m = _mlp(lib, nn)
    for p in m[0].parameters():
        p.requires_grad = False
    m(_randn(lib, 2, 3, seed=1)).sum().backward()
    return m[0].weight.grad is None, Grads(None, m[2].weight)


def idiom_freeze_params_requires_grad_(lib, F, nn):
    m = _mlp(lib, nn)
    m[0].requires_grad_(False)
    m(_randn(lib, 2, 3, seed=1)).sum().backward()
    return [p.requires_grad for p in m.parameters()], m[0].bias.grad is None


def idiom_train_eval_flags(lib, F, nn):
    m = _mlp(lib, nn)
    a = m.training
    r = m.eval()
    b, c = m.training, m[0].training
    return a, b, c, r is m, m.train().training, m[2].training


def idiom_module_apply_init(lib, F, nn):
    def init(mod):
        if isinstance(mod, nn.Linear):
            nn.init.constant_(mod.weight, 0.5)
            nn.init.zeros_(mod.bias)

    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    m.apply(init)
    return m(lib.ones(1, 2)), m[2].weight


def idiom_init_functions(lib, F, nn):
    w = lib.empty(3, 4)
    nn.init.ones_(w)
    v = nn.init.constant_(lib.empty(2), 0.25)
    k = nn.init.kaiming_normal_(lib.empty(16, 8, 3, 3), mode="fan_out", nonlinearity="relu")
    u = nn.init.xavier_uniform_(lib.empty(64, 32))
    n = nn.init.normal_(lib.empty(5000), std=0.01)
    return w, v, k.shape, bool(u.abs().max() <= math.sqrt(6 / 96)), round(n.std().item(), 2)


def idiom_module_double_and_dtype(lib, F, nn):
    m = _mlp(lib, nn).double()
    y = m(_randn(lib, 2, 3, seed=1).double())
    return m[0].weight.dtype, y.dtype, y


def idiom_module_to_device(lib, F, nn):
    m = _mlp(lib, nn)
    return m.to("cpu") is m, str(next(m.parameters()).device), m.cpu() is m


def idiom_children_and_modules(lib, F, nn):
    m = _conv_bn(lib, nn)
    return (len(list(m.children())), [type(c).__name__ for c in m.modules()],
            [n for n, _ in m.named_modules()])


def idiom_module_repr_type(lib, F, nn):
    return type(nn.Conv2d(1, 1, 1)).__name__, nn.ReLU.__name__


def idiom_ema_update(lib, F, nn):
    m, ema = _mlp(lib, nn, seed=0), _mlp(lib, nn, seed=1)
    with lib.no_grad():
        for e, p in zip(ema.parameters(), m.parameters()):
            e.mul_(0.9).add_(p, alpha=0.1)
    return [p for p in ema.parameters()]


# ------------------------------------------------------------------ optimizers
def _fit(lib, F, nn, make_opt, steps=3):
    """A tiny linear model, the same initial weights on both sides, a few steps."""
    m = _load_params(lib, nn.Linear(4, 3))
    x, y = _randn(lib, 8, 4, seed=1), _randn(lib, 8, 3, seed=2)
    opt = make_opt(m.parameters())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return m.weight, m.bias, losses


def idiom_sgd_plain(lib, F, nn):
    return _fit(lib, F, nn, lambda ps: lib.optim.SGD(ps, lr=0.1))


def idiom_sgd_momentum(lib, F, nn):
    return _fit(lib, F, nn, lambda ps: lib.optim.SGD(ps, lr=0.1, momentum=0.9))


def idiom_sgd_momentum_weight_decay_nesterov(lib, F, nn):
    return _fit(lib, F, nn, lambda ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9,
                                                     weight_decay=1e-2, nesterov=True))


def idiom_adam(lib, F, nn):
    return _fit(lib, F, nn, lambda ps: lib.optim.Adam(ps, lr=1e-2))


def idiom_adam_weight_decay_betas(lib, F, nn):
    return _fit(lib, F, nn, lambda ps: lib.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99),
                                                      weight_decay=1e-2))


def idiom_adamw(lib, F, nn):
    return _fit(lib, F, nn, lambda ps: lib.optim.AdamW(ps, lr=1e-2, weight_decay=0.1))


def idiom_optimizer_param_groups(lib, F, nn):
    m = _load_params(lib, nn.Linear(4, 3))
    opt = lib.optim.SGD([{"params": [m.weight]}, {"params": [m.bias], "lr": 0.01}], lr=0.1,
                        momentum=0.9)
    x, y = _randn(lib, 8, 4, seed=1), _randn(lib, 8, 3, seed=2)
    for _ in range(2):
        opt.zero_grad()
        F.mse_loss(m(x), y).backward()
        opt.step()
    return m.weight, m.bias, [g["lr"] for g in opt.param_groups], len(opt.param_groups)


def idiom_optimizer_set_lr(lib, F, nn):
    m = _load_params(lib, nn.Linear(4, 3))
    opt = lib.optim.SGD(m.parameters(), lr=0.1)
    for g in opt.param_groups:
        g["lr"] = 0.5
    F.mse_loss(m(_randn(lib, 8, 4, seed=1)), _randn(lib, 8, 3, seed=2)).backward()
    opt.step()
    return m.weight, opt.param_groups[0]["lr"]


def idiom_optimizer_zero_grad(lib, F, nn):
    m = _load_params(lib, nn.Linear(4, 3))
    opt = lib.optim.SGD(m.parameters(), lr=0.1)
    m(_randn(lib, 2, 4)).sum().backward()
    opt.zero_grad()
    return m.weight.grad is None


def idiom_step_lr(lib, F, nn):
    opt = lib.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return [round(v, 8) for v in lrs], [round(v, 8) for v in sched.get_last_lr()]


def idiom_multistep_cosine_lr(lib, F, nn):
    opt = lib.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    ms = lib.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    a = []
    for _ in range(4):
        opt.step()
        ms.step()
        a.append(round(opt.param_groups[0]["lr"], 8))
    opt2 = lib.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    cos = lib.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=4)
    b = []
    for _ in range(4):
        opt2.step()
        cos.step()
        b.append(round(opt2.param_groups[0]["lr"], 6))
    return a, b


def idiom_clip_grad_norm(lib, F, nn):
    m = _mlp(lib, nn)
    m(_randn(lib, 4, 3, seed=1)).pow(2).sum().backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), max_norm=0.5)
    return Grads(total, *m.parameters())


def idiom_clip_grad_norm_float_result(lib, F, nn):
    m = _mlp(lib, nn)
    m(_randn(lib, 4, 3, seed=1)).sum().backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), 10.0)
    return float(total), total.item() > 0


def idiom_clip_grad_value(lib, F, nn):
    m = _mlp(lib, nn)
    m(_randn(lib, 4, 3, seed=1)).pow(2).sum().backward()
    nn.utils.clip_grad_value_(m.parameters(), clip_value=0.1)
    return Grads(None, *m.parameters())


def idiom_grad_norm_logging(lib, F, nn):
    m = _mlp(lib, nn)
    m(_randn(lib, 4, 3, seed=1)).sum().backward()
    return lib.norm(lib.stack([p.grad.norm(2) for p in m.parameters()]), 2)


def idiom_grad_accumulation(lib, F, nn):
    m = _load_params(lib, nn.Linear(4, 3))
    opt = lib.optim.SGD(m.parameters(), lr=0.1)
    opt.zero_grad()
    for i in range(2):
        (F.mse_loss(m(_randn(lib, 4, 4, seed=i)), _randn(lib, 4, 3, seed=9)) / 2).backward()
    opt.step()
    return m.weight, m.bias


# ------------------------------------------------------------------ detection / segmentation
def idiom_box_widths_heights_area(lib, F, nn):
    b = _boxes(lib, 6)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return w, h, w * h, (b[:, 2:] - b[:, :2]).prod(dim=1)


def idiom_box_iou_broadcast_clamp_grad(lib, F, nn):
    a, b = _boxes(lib, 5, grad=True), _boxes(lib, 3, seed=1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = lib.max(a[:, None, :2], b[:, :2])
    rb = lib.min(a[:, None, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    iou = inter / (area_a[:, None] + area_b - inter)
    iou.sum().backward()
    return Grads(iou, a)


def idiom_box_iou_maximum_minimum(lib, F, nn):
    a, b = _boxes(lib, 5), _boxes(lib, 3, seed=1)
    x1 = lib.maximum(a[:, None, 0], b[None, :, 0])
    y1 = lib.maximum(a[:, None, 1], b[None, :, 1])
    x2 = lib.minimum(a[:, None, 2], b[None, :, 2])
    y2 = lib.minimum(a[:, None, 3], b[None, :, 3])
    return (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)


def idiom_ops_box_iou_area(lib, F, nn):
    a, b = _boxes(lib, 6), _boxes(lib, 4, seed=1)
    ops = _ops(lib)
    return ops.box_iou(a, b), ops.box_area(a), ops.generalized_box_iou(a, b)


def idiom_xyxy_to_cxcywh_unbind_stack(lib, F, nn):
    b = _boxes(lib, 5, grad=True)
    x1, y1, x2, y2 = b.unbind(-1)
    c = lib.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)
    (c * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    return Grads(c, b)


def idiom_cxcywh_to_xyxy(lib, F, nn):
    c = _boxes(lib, 5)
    cx, cy, w, h = c.unbind(1)
    return lib.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=1)


def idiom_box_corners_via_T(lib, F, nn):
    x1, y1, x2, y2 = _boxes(lib, 4).T
    return x1, x2 - x1, y2 - y1


def idiom_box_cat_halves(lib, F, nn):
    b = _boxes(lib, 4)
    return lib.cat([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], dim=1)


def idiom_ops_box_convert(lib, F, nn):
    b, ops = _boxes(lib, 5), _ops(lib)
    return (ops.box_convert(b, "xyxy", "cxcywh"), ops.box_convert(b, "xyxy", "xywh"),
            ops.box_convert(ops.box_convert(b, "xyxy", "cxcywh"), "cxcywh", "xyxy"))


def idiom_box_encode_deltas(lib, F, nn):
    p, g = _boxes(lib, 6), _boxes(lib, 6, seed=1)
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    px, py = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    gx, gy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
    wx, wy, ww, wh = 10.0, 10.0, 5.0, 5.0
    return lib.stack((wx * (gx - px) / pw, wy * (gy - py) / ph, ww * lib.log(gw / pw),
                      wh * lib.log(gh / ph)), dim=1)


def idiom_box_decode_deltas_grad(lib, F, nn):
    boxes = _boxes(lib, 4)
    deltas = _randn(lib, 4, 8, grad=True)  # 2 classes
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ctr_x, ctr_y = boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights
    dx, dy = deltas[:, 0::4] / 10.0, deltas[:, 1::4] / 10.0
    dw = (deltas[:, 2::4] / 5.0).clamp(max=math.log(1000.0 / 16))
    dh = (deltas[:, 3::4] / 5.0).clamp(max=math.log(1000.0 / 16))
    pcx, pcy = dx * widths[:, None] + ctr_x[:, None], dy * heights[:, None] + ctr_y[:, None]
    pw, ph = lib.exp(dw) * widths[:, None], lib.exp(dh) * heights[:, None]
    pred = lib.stack((pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph), dim=2)
    pred = pred.flatten(1)
    pred.sum().backward()
    return Grads(pred, deltas)


def idiom_clip_boxes_inplace_strided(lib, F, nn):
    b = _boxes(lib, 6) * 2 - 10
    b[:, 0::2].clamp_(min=0, max=30)
    b[:, 1::2].clamp_(0, 20)
    return b


def idiom_clip_boxes_stack_reshape(lib, F, nn):
    boxes = _boxes(lib, 6) * 2 - 10
    bx = boxes[..., 0::2].clamp(min=0, max=30)
    by = boxes[..., 1::2].clamp(min=0, max=20)
    return lib.stack((bx, by), dim=-1).reshape(boxes.shape)


def idiom_ops_clip_and_remove_small(lib, F, nn):
    b, ops = _boxes(lib, 8) * 2 - 10, _ops(lib)
    c = ops.clip_boxes_to_image(b, (20, 30))
    return c, ops.remove_small_boxes(c, 4.0)


def idiom_remove_small_boxes_manual(lib, F, nn):
    b = _boxes(lib, 8)
    ws, hs = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    keep = (ws >= 4) & (hs >= 4)
    keep = lib.where(keep)[0]
    return keep, b[keep]


def idiom_score_threshold_mask(lib, F, nn):
    boxes, scores = _boxes(lib, 8), _rand(lib, 8, seed=1)
    keep = scores > 0.5
    return boxes[keep], scores[keep], keep.sum().item(), int(keep.sum())


def idiom_score_threshold_nonzero(lib, F, nn):
    boxes, scores = _boxes(lib, 8), _rand(lib, 8, seed=1)
    idx = (scores > 0.5).nonzero().squeeze(1)
    return idx, boxes[idx], idx.numel()


def idiom_multiclass_threshold_nonzero(lib, F, nn):
    scores = _rand(lib, 6, 3)
    inds = lib.nonzero(scores > 0.6)
    box_idx, cls = inds[:, 0], inds[:, 1]
    return box_idx, cls, scores[box_idx, cls]


def idiom_multiclass_flatten_labels(lib, F, nn):
    n, c = 5, 3
    boxes = _boxes(lib, n)[:, None].expand(n, c, 4)
    scores = _rand(lib, n, c)
    labels = lib.arange(c).view(1, -1).expand_as(scores)
    boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    keep = scores > 0.5
    return boxes[keep], scores[keep], labels[keep]


def idiom_topk_flattened_unravel(lib, F, nn):
    c, h, w = 3, 4, 5
    logits = _randn(lib, c, h, w)
    vals, idx = logits.flatten().topk(6)
    cls = idx // (h * w)
    rem = idx % (h * w)
    return vals, cls, rem // w, rem % w, logits[cls, rem // w, rem % w]


def idiom_topk_capped_k(lib, F, nn):
    scores = _rand(lib, 5)
    k = min(10, scores.numel())
    return scores.topk(k).indices, scores.topk(min(3, scores.shape[0]))[0]


def idiom_topk_per_image(lib, F, nn):
    obj, boxes = _randn(lib, 2, 10), _f32(lib, np.stack([_boxes_np(10, 0), _boxes_np(10, 1)]))
    _, idx = obj.topk(4, dim=1)
    batch_idx = lib.arange(2)[:, None]
    return boxes[batch_idx, idx], obj[batch_idx, idx]


def idiom_gather_class_deltas_advanced_index(lib, F, nn):
    n, c = 5, 3
    deltas = _randn(lib, n, c * 4, grad=True)
    labels = _ints(lib, 0, c, (n,))
    d = deltas.view(n, -1, 4)[lib.arange(n), labels]
    (d * lib.arange(4.0)).sum().backward()
    return Grads(d, deltas)


def idiom_gather_class_deltas_gather(lib, F, nn):
    n, c = 5, 3
    deltas = _randn(lib, n, c * 4, grad=True)
    labels = _ints(lib, 0, c, (n,))
    idx = labels.view(-1, 1, 1).expand(-1, 1, 4)
    d = deltas.view(n, c, 4).gather(1, idx).squeeze(1)
    d.pow(2).sum().backward()
    return Grads(d, deltas)


def idiom_argmax_over_classes(lib, F, nn):
    logits = _randn(lib, 6, 4)
    probs = F.softmax(logits, -1)
    scores, labels = probs.max(dim=1)
    return scores, labels, (labels == logits.argmax(1)).all(), probs[:, 1:].shape


def idiom_one_hot_targets_bce(lib, F, nn):
    logits, labels = _randn(lib, 6, 4, grad=True), _ints(lib, 0, 5, (6,))
    t = F.one_hot(labels, 5)[:, 1:].float()  # drop background
    loss = F.binary_cross_entropy_with_logits(logits, t, reduction="sum") / max(1, len(t))
    loss.backward()
    return Grads(loss, logits)


def idiom_masked_fill_neg_inf_softmax(lib, F, nn):
    logits = _randn(lib, 3, 5, grad=True)
    valid = lib.tensor([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]).bool()
    p = logits.masked_fill(~valid, float("-inf")).softmax(-1)
    (p * lib.arange(5.0)).sum().backward()
    return Grads(p, logits)


def idiom_masked_mean_loss_ignore(lib, F, nn):
    pred = _randn(lib, 4, 4, grad=True)
    target = _ints(lib, -1, 2, (4, 4))
    ignore = target < 0
    per = F.binary_cross_entropy_with_logits(pred, target.clamp(min=0).float(), reduction="none")
    loss = per.masked_fill(ignore, 0).sum() / (~ignore).sum().clamp(min=1)
    loss.backward()
    return Grads(loss, pred)


def idiom_smooth_l1_on_positives(lib, F, nn):
    pred, target = _randn(lib, 8, 4, grad=True), _randn(lib, 8, 4, seed=1)
    labels = _ints(lib, 0, 3, (8,), seed=2)
    pos = labels > 0
    loss = F.smooth_l1_loss(pred[pos], target[pos], beta=1 / 9, reduction="sum")
    loss = loss / max(1, pos.sum().item())
    loss.backward()
    return Grads(loss, pred)


def idiom_l1_box_loss_with_weights(lib, F, nn):
    pred, target = _randn(lib, 6, 4, grad=True), _randn(lib, 6, 4, seed=1)
    w = (_rand(lib, 6, seed=2) > 0.3).float()
    loss = ((pred - target).abs().sum(dim=1) * w).sum() / w.sum().clamp(min=1.0)
    loss.backward()
    return Grads(loss, pred)


def idiom_meshgrid_anchor_centres_ij(lib, F, nn):
    stride, h, w = 8, 3, 4
    shifts_x = lib.arange(0, w, dtype=lib.float32) * stride
    shifts_y = lib.arange(0, h, dtype=lib.float32) * stride
    shift_y, shift_x = lib.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    return lib.stack((shift_x, shift_y, shift_x, shift_y), dim=1)


def idiom_meshgrid_anchor_centres_xy(lib, F, nn):
    xs, ys = lib.meshgrid(lib.arange(4) + 0.5, lib.arange(3) + 0.5, indexing="xy")
    return lib.stack([xs, ys], dim=-1).view(-1, 2) * 16


def idiom_anchors_broadcast_add(lib, F, nn):
    base = lib.tensor([[-8.0, -8.0, 8.0, 8.0], [-16.0, -8.0, 16.0, 8.0]])
    shifts = lib.arange(3, dtype=lib.float32).repeat(4, 1).t().reshape(-1, 1) * lib.ones(1, 4)
    return (shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4)


def idiom_anchors_repeat_expand(lib, F, nn):
    base, shifts = _boxes(lib, 3), _f32(lib, _rng(1).uniform(0, 32, (4, 4)))
    a = base.repeat(4, 1) + shifts.repeat_interleave(3, dim=0)
    b = (base[None].expand(4, -1, -1) + shifts[:, None]).reshape(-1, 4)
    return a, b, lib.equal(a, b)


def idiom_generate_base_anchors(lib, F, nn):
    scales = lib.as_tensor([32.0, 64.0])
    ratios = lib.as_tensor([0.5, 1.0, 2.0])
    h_ratios = lib.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (h_ratios[:, None] * scales[None, :]).view(-1)
    return (lib.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


def idiom_cat_per_image_list_and_split_back(lib, F, nn):
    per_image = [_boxes(lib, 3), lib.zeros((0, 4)), _boxes(lib, 2, seed=1)]
    counts = [len(b) for b in per_image]
    flat = lib.cat(per_image)
    back = flat.split(counts)
    return flat, counts, [b.shape for b in back]


def idiom_batch_index_rois(lib, F, nn):
    per_image = [_boxes(lib, 3), _boxes(lib, 2, seed=1)]
    idx = lib.cat([lib.full((len(b), 1), i, dtype=b.dtype) for i, b in enumerate(per_image)])
    return lib.cat([idx, lib.cat(per_image)], dim=1)


def idiom_stack_per_image_tensors(lib, F, nn):
    imgs = [_randn(lib, 3, 4, 4, seed=i) for i in range(2)]
    return lib.stack(imgs).shape, lib.stack(imgs, 0)


def idiom_split_head_outputs_per_level(lib, F, nn):
    x = _randn(lib, 2, 9, 4)
    return x.split([4, 3, 2], dim=1), lib.split(x, [5, 4], 1)


def idiom_sort_by_score_descending(lib, F, nn):
    boxes, scores = _boxes(lib, 6), _rand(lib, 6, seed=1)
    scores_sorted, order = scores.sort(descending=True)
    return scores_sorted[:3], boxes[order[:3]], boxes[scores.argsort(descending=True)][:3]


def idiom_unique_labels_counts(lib, F, nn):
    labels = _ints(lib, 0, 4, (12,))
    classes, counts = labels.unique(return_counts=True)
    per_class = [(labels == c).sum().item() for c in labels.unique()]
    return classes, counts, per_class, [c.item() for c in classes]


def idiom_per_class_loop(lib, F, nn):
    boxes, scores, labels = _boxes(lib, 8), _rand(lib, 8, seed=1), _ints(lib, 0, 3, (8,))
    out = []
    for c in lib.unique(labels):
        m = labels == c
        out.append((int(c), boxes[m].shape[0], scores[m].max().item()))
    return out


def idiom_cumsum_precision_recall(lib, F, nn):
    scores, tp = _rand(lib, 10), _rand(lib, 10, seed=1) > 0.4
    order = scores.argsort(descending=True)
    tp = tp[order]
    tp_c = tp.float().cumsum(0)
    fp_c = (~tp).float().cumsum(0)
    return tp_c / (tp_c + fp_c), tp_c / 7


def idiom_ap_envelope_flip_cummax(lib, F, nn):
    prec = _rand(lib, 8)
    env = lib.flip(lib.cummax(lib.flip(prec, (0,)), 0)[0], (0,))
    return env


def idiom_hflip_boxes(lib, F, nn):
    w = 32
    boxes = _boxes(lib, 5)
    flipped = boxes.clone()
    flipped[:, [0, 2]] = w - boxes[:, [2, 0]]
    return flipped


def idiom_hflip_image_mask(lib, F, nn):
    img, mask = _randn(lib, 3, 4, 5), _ints(lib, 0, 3, (4, 5))
    return img.flip(-1), mask.flip([1]), lib.flip(img, dims=[2])


def idiom_head_permute_reshape_grad(lib, F, nn):
    n, a, k, h, w = 2, 3, 4, 2, 3
    x = _randn(lib, n, a * k, h, w, grad=True)
    y = x.view(n, a, k, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, k)
    (y * lib.arange(k, dtype=lib.float32)).sum().backward()
    return Grads(y, x)


def idiom_head_levels_permute_cat(lib, F, nn):
    levels = [_randn(lib, 2, 6, s, s, seed=s) for s in (4, 2, 1)]
    flat = [lvl.permute(0, 2, 3, 1).reshape(2, -1, 3) for lvl in levels]
    return lib.cat(flat, dim=1)


def idiom_image_normalise(lib, F, nn):
    img = _rand(lib, 3, 4, 4)
    mean = lib.tensor([0.485, 0.456, 0.406])
    std = lib.tensor([0.229, 0.224, 0.225])
    return (img - mean[:, None, None]) / std[:, None, None], img.sub(mean.view(-1, 1, 1)).div(
        std.view(-1, 1, 1))


def idiom_batch_channel_stats(lib, F, nn):
    x = _randn(lib, 4, 3, 5, 5)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)


def idiom_standardise_targets(lib, F, nn):
    t = _randn(lib, 10, 4)
    return (t - t.mean(0)) / t.std(0)


def idiom_upsample_logits_argmax(lib, F, nn):
    logits = _randn(lib, 2, 3, 4, 4)
    up = F.interpolate(logits, size=(8, 8), mode="bilinear", align_corners=False)
    return up.argmax(1), up.argmax(dim=1).dtype


def idiom_unet_skip_cat(lib, F, nn):
    x, skip = _randn(lib, 1, 4, 3, 3, grad=True), _randn(lib, 1, 2, 6, 6, seed=1, grad=True)
    y = lib.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], dim=1)
    (y * y).sum().backward()
    return Grads(y.shape, x, skip)


def idiom_confusion_matrix_bincount(lib, F, nn):
    n = 3
    gt, pred = _ints(lib, 0, 4, (6, 6)), _ints(lib, 0, 3, (6, 6), seed=1)
    gt[gt == 3] = 255
    k = (gt >= 0) & (gt < n)
    hist = lib.bincount(n * gt[k] + pred[k], minlength=n ** 2).reshape(n, n)
    iou = lib.diag(hist) / (hist.sum(0) + hist.sum(1) - lib.diag(hist))
    return hist, iou, iou.mean().item()


def idiom_pixel_accuracy(lib, F, nn):
    gt, pred = _ints(lib, 0, 3, (6, 6)), _ints(lib, 0, 3, (6, 6), seed=1)
    return (pred == gt).float().mean().item(), (pred == gt).sum().item() / gt.numel()


def idiom_dice_loss(lib, F, nn):
    logits = _randn(lib, 2, 4, 4, grad=True)
    t = (_rand(lib, 2, 4, 4, seed=1) > 0.5).float()
    p = logits.sigmoid()
    num = 2 * (p * t).sum((1, 2))
    den = p.sum((1, 2)) + t.sum((1, 2))
    loss = (1 - (num + 1) / (den + 1)).mean()
    loss.backward()
    return Grads(loss, logits)


def idiom_focal_loss_manual(lib, F, nn):
    x = _randn(lib, 6, 3, grad=True)
    t = (_rand(lib, 6, 3, seed=1) > 0.7).float()
    p = lib.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** 2)
    loss = (0.25 * t + 0.75 * (1 - t)) * loss
    loss.sum().backward()
    return Grads(loss, x)


def idiom_ops_sigmoid_focal_loss(lib, F, nn):
    x = _randn(lib, 6, 3, grad=True)
    t = (_rand(lib, 6, 3, seed=1) > 0.7).float()
    loss = _ops(lib).sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="sum")
    loss.backward()
    return Grads(loss, x)


def idiom_ops_nms(lib, F, nn):
    boxes, scores = _boxes(lib, 12) * 0.5, _rand(lib, 12, seed=1)
    keep = _ops(lib).nms(boxes, scores, 0.3)
    return keep, keep.dtype, boxes[keep]


def idiom_ops_batched_nms(lib, F, nn):
    boxes, scores, idxs = _boxes(lib, 12) * 0.5, _rand(lib, 12, seed=1), _ints(lib, 0, 3, (12,))
    return _ops(lib).batched_nms(boxes, scores, idxs, 0.3)


def idiom_batched_nms_offset_trick(lib, F, nn):
    boxes, idxs = _boxes(lib, 6), _ints(lib, 0, 3, (6,))
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return boxes + offsets[:, None]


def idiom_ssd_hard_negative_mining(lib, F, nn):
    a = 12
    loss = _f32(lib, _rng().uniform(0.1, 1.0, (2, a)))
    pos = lib.zeros(2, a, dtype=lib.bool)
    pos[0, [1, 5]] = True
    pos[1, 3] = True
    con = loss.clone()
    con[pos] = 0
    _, idx = con.sort(1, descending=True)
    _, rank = idx.sort(1)
    num_neg = (3 * pos.long().sum(1, keepdim=True)).clamp(max=a - 1)
    neg = rank < num_neg
    return neg, (pos | neg).sum(1)


def idiom_matcher_max_iou(lib, F, nn):
    iou = _rand(lib, 3, 8)
    matched_vals, matches = iou.max(dim=0)
    all_matches = matches.clone()
    below, between = matched_vals < 0.3, (matched_vals >= 0.3) & (matched_vals < 0.7)
    matches[below] = -1
    matches[between] = -2
    highest, _ = iou.max(dim=1)
    pairs = lib.nonzero(iou == highest[:, None])
    pred_inds = pairs[:, 1]
    matches[pred_inds] = all_matches[pred_inds]
    return matches


def idiom_fg_bg_label_assignment(lib, F, nn):
    matches = lib.tensor([0, -1, 2, -2, 1, -1])
    gt_labels = lib.tensor([3, 1, 2])
    labels = gt_labels[matches.clamp(min=0)]
    labels[matches == -1] = 0
    labels[matches == -2] = -1
    return labels, labels.dtype


def idiom_sampler_positive_negative(lib, F, nn):
    matched = lib.tensor([1, 0, -1, 2, 0, 0, 3, 0])
    positive = lib.where(matched >= 1)[0]
    negative = lib.where(matched == 0)[0]
    num_pos = min(positive.numel(), 2)
    num_neg = min(negative.numel(), 4 - num_pos)
    return positive[:num_pos], negative[:num_neg]


def idiom_sampler_randperm_counts(lib, F, nn):
    negative = lib.arange(10)
    perm = lib.randperm(negative.numel())[:4]
    return negative[perm].shape, perm.dtype, bool((perm < 10).all())


def idiom_yolo_grid_offsets(lib, F, nn):
    s = 3
    pred = _rand(lib, 2, s, s, 2)
    gx = lib.arange(s).repeat(s, 1).view(1, s, s).float()
    gy = lib.arange(s).repeat(s, 1).t().view(1, s, s).float()
    return (pred[..., 0] + gx) / s, (pred[..., 1] + gy) / s


def idiom_yolo_responsible_box(lib, F, nn):
    iou = _rand(lib, 6, 2)
    best_iou, best = iou.max(dim=1)
    resp = F.one_hot(best, 2).bool()
    return best_iou, resp, iou[resp]


def idiom_mask_rcnn_mask_loss(lib, F, nn):
    n, c, m = 4, 3, 5
    mask_logits = _randn(lib, n, c, m, m, grad=True)
    labels = _ints(lib, 0, c, (n,))
    targets = (_rand(lib, n, m, m, seed=1) > 0.5).float()
    chosen = mask_logits[lib.arange(n), labels]
    loss = F.binary_cross_entropy_with_logits(chosen, targets)
    loss.backward()
    return Grads(loss, mask_logits)


def idiom_mask_probs_threshold(lib, F, nn):
    masks = _randn(lib, 2, 1, 4, 4).sigmoid()
    binary = masks > 0.5
    return binary, binary.sum(dim=(1, 2, 3)), binary.squeeze(1).shape


def idiom_detections_dict(lib, F, nn):
    boxes, scores = _boxes(lib, 4), _rand(lib, 4, seed=1)
    det = {"boxes": boxes, "scores": scores, "labels": lib.ones(4, dtype=lib.int64)}
    keep = det["scores"] > 0.3
    return {k: v[keep] for k, v in det.items()}


def idiom_empty_detections(lib, F, nn):
    boxes, scores = lib.zeros((0, 4)), lib.zeros(0)
    keep = scores > 0.5
    return (boxes[keep].shape, lib.cat([boxes, boxes]).shape, scores.topk(0).values.shape,
            scores.sort(descending=True).indices, lib.stack([scores, scores]).shape)


def idiom_topk_accuracy(lib, F, nn):
    n = 8
    logits, target = _randn(lib, n, 5), _ints(lib, 0, 5, (n,), seed=1)
    _, pred = logits.topk(3, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    top1 = correct[:1].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / n)
    top3 = correct[:3].reshape(-1).float().sum(0, keepdim=True) * (100.0 / n)
    return top1, top3


def idiom_rpn_objectness_topk_per_level(lib, F, nn):
    obj = _randn(lib, 2, 20)
    offset, out = 0, []
    for n in (12, 6, 2):
        level = obj.narrow(1, offset, n)
        _, idx = level.topk(min(4, n), dim=1)
        out.append(idx + offset)
        offset += n
    return lib.cat(out, dim=1)


def idiom_centerness_sqrt(lib, F, nn):
    ltrb = _rand(lib, 6, 4) + 0.1
    lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
    return lib.sqrt((lr.min(dim=-1)[0] / lr.max(dim=-1)[0]) * (tb.min(dim=-1)[0]
                                                              / tb.max(dim=-1)[0]))


# =============================================================================== must raise
def raises_inplace_modified_tensor_saved_for_backward(lib, F, nn):
    a = _randn(lib, 3, grad=True)
    b = a.exp()
    c = (b * b).sum()
    b.fill_(1)
    c.backward()


def raises_inplace_add_on_leaf_requiring_grad(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    w += 1


def raises_inplace_method_on_leaf_requiring_grad(lib, F, nn):
    _randn(lib, 3, grad=True).mul_(2)


def raises_setitem_on_leaf_requiring_grad(lib, F, nn):
    w = _randn(lib, 3, grad=True)
    w[0] = 1.0


def raises_relu_inplace_on_leaf_requiring_grad(lib, F, nn):
    F.relu(_randn(lib, 3, grad=True), inplace=True)


def raises_shape_mismatch_add(lib, F, nn):
    _randn(lib, 2, 3) + _randn(lib, 4)


def raises_matmul_shape_mismatch(lib, F, nn):
    _randn(lib, 2, 3) @ _randn(lib, 2, 3)


def raises_cat_shape_mismatch(lib, F, nn):
    lib.cat([_randn(lib, 2, 3), _randn(lib, 2, 4)])


def raises_stack_shape_mismatch(lib, F, nn):
    lib.stack([_randn(lib, 2, 3), _randn(lib, 3, 2)])


def raises_view_wrong_numel(lib, F, nn):
    _randn(lib, 2, 3).view(5)


def raises_reshape_two_minus_ones(lib, F, nn):
    _randn(lib, 2, 3).reshape(-1, -1)


def raises_expand_non_singleton(lib, F, nn):
    _randn(lib, 2, 3).expand(4, 3)


def raises_item_on_many_elements(lib, F, nn):
    _randn(lib, 3).item()


def raises_bool_of_many_elements(lib, F, nn):
    if _randn(lib, 3) > 0:
        pass


def raises_backward_twice_without_retain_graph(lib, F, nn):
    x = _randn(lib, 3, grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    y.backward()


def raises_backward_non_scalar_without_gradient(lib, F, nn):
    (_randn(lib, 3, grad=True) * 2).backward()


def raises_backward_without_requires_grad(lib, F, nn):
    (_randn(lib, 3) * 2).sum().backward()


def raises_requires_grad_on_int_tensor(lib, F, nn):
    lib.tensor([1, 2]).requires_grad_()


def raises_index_out_of_range(lib, F, nn):
    _randn(lib, 3)[5]


def raises_dim_out_of_range(lib, F, nn):
    _randn(lib, 2, 3).sum(dim=2)


def raises_softmax_dim_out_of_range(lib, F, nn):
    _randn(lib, 2, 3).softmax(dim=3)


def raises_cross_entropy_target_out_of_range(lib, F, nn):
    F.cross_entropy(_randn(lib, 2, 3), lib.tensor([0, 5]))


def raises_cross_entropy_float_class_indices(lib, F, nn):
    F.cross_entropy(_randn(lib, 2, 3), lib.tensor([0.0, 1.0]))


def raises_one_hot_class_too_large(lib, F, nn):
    F.one_hot(lib.tensor([0, 4]), num_classes=3)


def raises_conv2d_channel_mismatch(lib, F, nn):
    F.conv2d(_randn(lib, 1, 3, 5, 5), _randn(lib, 4, 2, 3, 3))


def raises_linear_feature_mismatch(lib, F, nn):
    nn.Linear(3, 2)(_randn(lib, 4, 5))


def raises_load_state_dict_strict_missing_key(lib, F, nn):
    nn.Linear(3, 2).load_state_dict({"weight": lib.zeros(2, 3)})


def raises_load_state_dict_shape_mismatch(lib, F, nn):
    nn.Linear(3, 2).load_state_dict({"weight": lib.zeros(3, 3), "bias": lib.zeros(2)})


def raises_numpy_on_tensor_requiring_grad(lib, F, nn):
    _randn(lib, 3, grad=True).numpy()


def raises_mean_of_int_tensor(lib, F, nn):
    lib.tensor([1, 2, 3]).mean()


def raises_optimizer_empty_params(lib, F, nn):
    lib.optim.SGD([], lr=0.1)


def raises_len_of_0d_tensor(lib, F, nn):
    len(lib.tensor(1.0))


def raises_topk_k_too_large(lib, F, nn):
    _randn(lib, 3).topk(5)


def raises_gather_index_out_of_range(lib, F, nn):
    _randn(lib, 2, 3).gather(1, lib.tensor([[0], [3]]))


def raises_permute_wrong_dims(lib, F, nn):
    _randn(lib, 2, 3).permute(0, 0)


def raises_split_sections_wrong_sum(lib, F, nn):
    _randn(lib, 5).split([2, 2])


# =============================================================================== tables
IDIOMS = [f for name, f in list(globals().items()) if name.startswith("idiom_")]
RAISES = [f for name, f in list(globals().items()) if name.startswith("raises_")]


def _idiom_id(fn) -> str:
    return fn.__name__.split("_", 1)[1]


# The idioms that still differ from torch, each on purpose or not built yet, with why.
# strict: if one starts to pass, the test fails, so this list stays true.
KNOWN_DIFFERENCES = {
    "param_data_is_tensor": "`.data` is the raw NumPy/CuPy array (DESIGN: a Tensor holds "
                            "data), so `p.data.copy_(x)` is `with sv.no_grad(): p.copy_(x)`",
    "is_floating_point": "dtypes are NumPy's dtype objects (no `.is_floating_point`): use "
                         "`t.is_floating_point()` or `dtype.kind == 'f'`",
    "grid_sample_identity": "F.affine_grid / F.grid_sample are not implemented",
    "numpy_on_tensor_requiring_grad": "`.numpy()` of a tensor that requires grad is allowed "
                                      "(the code base reads arrays from such tensors "
                                      "everywhere); torch insists on .detach() first",
}


def _tabled(fns):
    return [pytest.param(f, id=_idiom_id(f), marks=pytest.mark.xfail(
        strict=True, reason=KNOWN_DIFFERENCES[_idiom_id(f)]))
        if _idiom_id(f) in KNOWN_DIFFERENCES else pytest.param(f, id=_idiom_id(f))
        for f in fns]


@pytest.mark.parametrize("idiom", _tabled(IDIOMS))
def test_idiom(idiom):
    run_idiom(idiom)


@pytest.mark.parametrize("idiom", _tabled(RAISES))
def test_raises(idiom):
    check_raises(idiom)


# The harness itself: each pair differs in one way that compare() must catch.
_DIFFERENT = [
    ("value", lambda: (torch.tensor([1.0, 2.0]), sv.tensor([1.0, 2.1]))),
    ("dtype", lambda: (torch.tensor([1.0]), sv.tensor(np.array([1.0])))),
    ("shape", lambda: (torch.zeros(2, 3), sv.zeros(3, 2))),
    ("type-ndarray", lambda: (torch.tensor([1.0]), np.array([1.0], dtype=np.float32))),
    ("type-numpy-scalar", lambda: (1.5, np.float32(1.5))),
    ("type-int-float", lambda: (2, 2.0)),
    ("requires_grad", lambda: (torch.ones(1, requires_grad=True) * 1, sv.ones(1))),
    ("torch-size", lambda: (torch.Size([2, 3]), (2, 4))),
    ("dtype-object", lambda: (torch.float32, np.dtype("float64"))),
    ("length", lambda: ([1, 2], [1])),
    ("grad", lambda: (Grads(None, _grad_of(torch, 1.0)), Grads(None, _grad_of(sv, 2.0)))),
    ("grad-missing", lambda: (Grads(None, _grad_of(torch, 1.0)),
                              Grads(None, sv.ones(1, requires_grad=True)))),
]


def _grad_of(lib, scale):
    w = lib.ones(2, requires_grad=True)
    (w * scale).sum().backward()
    return w


@pytest.mark.parametrize("make", [m for _, m in _DIFFERENT], ids=[k for k, _ in _DIFFERENT])
def test_compare_catches(make):
    expected, got = make()
    with pytest.raises(Mismatch):
        compare(expected, got)


def test_compare_accepts_equal():
    compare((torch.arange(3), torch.Size([2]), torch.float32, [1.5, True], {"a": None}),
            (sv.arange(3), (2,), np.dtype("float32"), (1.5, True), {"a": None}))
