"""layer_norm / group_norm / normalize and nn.LayerNorm / nn.GroupNorm: hand-worked
values, torch cross-checks (forward and every gradient), module defaults and errors."""
import math

import numpy as np
import pytest

import scratchvision as sv
import scratchvision.functional as F
from scratchvision import nn


def _grads(*tensors):
    return [None if t.grad is None else np.asarray(t.grad) for t in tensors]


# ------------------------------------------------------------------ layer_norm
def test_layer_norm_by_hand():
    # x = [1, 2, 3, 4]: mean 2.5, biased var (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    x = sv.tensor(np.array([[1.0, 2.0, 3.0, 4.0]]))
    y = F.layer_norm(x, (4,), eps=0.0)
    np.testing.assert_allclose(y.numpy(), [[-1.5, -0.5, 0.5, 1.5]] / np.sqrt(1.25), rtol=1e-12)
    # the affine: y * w + b, elementwise over the normalized shape
    w, b = np.array([1.0, 2.0, 0.0, -1.0]), np.array([0.0, 1.0, 5.0, 0.5])
    y = F.layer_norm(x, 4, sv.tensor(w), sv.tensor(b), eps=0.0)
    np.testing.assert_allclose(y.numpy()[0], [-1.5, -0.5, 0.5, 1.5] / np.sqrt(1.25) * w + b,
                               rtol=1e-12)
    # a constant row: x_hat = 0, so the output is the bias, and eps keeps it finite
    c = F.layer_norm(sv.tensor(np.full((1, 3), 7.0)), 3, None, sv.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(c.numpy(), [[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("shape, norm, affine, bias", [
    ((2, 3, 4), (4,), True, True), ((2, 3, 4), (3, 4), True, False),
    ((5, 6), 6, False, False), ((3, 2, 2, 5), (2, 2, 5), True, True), ((4,), (4,), True, True)])
def test_layer_norm_matches_torch(shape, norm, affine, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal(shape) * 3 + 1
    nshape = (norm,) if isinstance(norm, int) else norm
    ws, bs = rng.standard_normal(nshape), rng.standard_normal(nshape)
    gy = rng.standard_normal(shape)
    x = sv.tensor(xs, requires_grad=True)
    w = sv.tensor(ws, requires_grad=True) if affine else None
    b = sv.tensor(bs, requires_grad=True) if bias else None
    y = F.layer_norm(x, norm, w, b, eps=1e-5)
    (y * sv.tensor(gy)).sum().backward()
    tx = torch.tensor(xs, requires_grad=True)
    tw = torch.tensor(ws, requires_grad=True) if affine else None
    tb = torch.tensor(bs, requires_grad=True) if bias else None
    ty = torch.nn.functional.layer_norm(tx, list(nshape), tw, tb, eps=1e-5)
    (ty * torch.tensor(gy)).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    if affine:
        np.testing.assert_allclose(np.asarray(w.grad), tw.grad.numpy(), rtol=1e-9, atol=1e-11)
    if bias:
        np.testing.assert_allclose(np.asarray(b.grad), tb.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_layer_norm_float32_and_module_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((4, 7, 16)).astype(np.float32)
    m = nn.LayerNorm(16)
    tm = torch.nn.LayerNorm(16)
    assert m.weight.dtype == np.float32 and np.array_equal(m.weight.numpy(), np.ones(16))
    assert np.array_equal(m.bias.numpy(), np.zeros(16))
    with torch.no_grad():
        ws, bs = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16)
        tm.weight.copy_(torch.tensor(ws))
        tm.bias.copy_(torch.tensor(bs))
    m.load_state_dict({"weight": ws, "bias": bs})
    y = m(sv.tensor(xs))
    ty = tm(torch.tensor(xs))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert repr(m) == repr(tm) == ("LayerNorm((16,), eps=1e-05, elementwise_affine=True, "
                                   "bias=True)")
    assert repr(nn.LayerNorm(3, bias=False)) == repr(torch.nn.LayerNorm(3, bias=False))


def test_layer_norm_module_options():
    m = nn.LayerNorm([2, 3], eps=1e-3, bias=False)
    assert m.normalized_shape == (2, 3) and m.bias is None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    m = nn.LayerNorm(5, elementwise_affine=False)
    assert m.weight is None and m.bias is None and list(m.parameters()) == []
    x = sv.randn(3, 5)
    np.testing.assert_allclose(m(x).numpy(), F.layer_norm(x, 5).numpy())
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm([])


def test_layer_norm_errors():
    x = sv.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"normalized_shape=\[3\].*\[2, 3, 4\]"):
        F.layer_norm(x, 3)
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(x, (2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\)"):
        F.layer_norm(x, 4, sv.ones(3))
    with pytest.raises(ValueError, match=r"normalized_shape=\[4\].*\[\*, 4\].*\[2, 5\]"):
        nn.LayerNorm(4)(sv.randn(2, 5))


def test_layer_norm_empty_batch():
    y = F.layer_norm(sv.zeros(0, 3, requires_grad=True), 3, sv.ones(3, requires_grad=True))
    assert y.shape == (0, 3)


# ------------------------------------------------------------------ group_norm
def test_group_norm_by_hand():
    # 4 channels, 2 groups: [1, 3] -> mean 2, var 1 -> [-1, 1]; [10, 20] -> mean 15,
    # var 25 -> [-1, 1]; then per channel * [1, 2, 3, 4] + [0, 0, 0, 1]
    x = sv.tensor(np.array([1.0, 3.0, 10.0, 20.0]).reshape(1, 4, 1, 1))
    y = F.group_norm(x, 2, sv.tensor([1.0, 2.0, 3.0, 4.0]), sv.tensor([0.0, 0.0, 0.0, 1.0]),
                     eps=0.0)
    np.testing.assert_allclose(y.numpy().ravel(), [-1.0, 2.0, -3.0, 5.0], rtol=1e-12)
    # one group over (C, H, W) = layer norm over (C, H, W) without the affine
    x = sv.randn(2, 4, 3, 3, dtype=np.float64)
    np.testing.assert_allclose(F.group_norm(x, 1).numpy(),
                               F.layer_norm(x, (4, 3, 3)).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, groups, affine", [
    ((2, 6, 3, 4), 3, True), ((2, 6, 3, 4), 6, True), ((3, 4, 5), 2, False),
    ((2, 8), 4, True), ((1, 4, 2, 2, 2), 1, True)])
def test_group_norm_matches_torch(shape, groups, affine):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    c = shape[1]
    xs, gy = rng.standard_normal(shape) * 2 - 1, rng.standard_normal(shape)
    ws, bs = rng.standard_normal(c), rng.standard_normal(c)
    x = sv.tensor(xs, requires_grad=True)
    w = sv.tensor(ws, requires_grad=True) if affine else None
    b = sv.tensor(bs, requires_grad=True) if affine else None
    (F.group_norm(x, groups, w, b) * sv.tensor(gy)).sum().backward()
    y = F.group_norm(x, groups, w, b)
    tx = torch.tensor(xs, requires_grad=True)
    tw = torch.tensor(ws, requires_grad=True) if affine else None
    tb = torch.tensor(bs, requires_grad=True) if affine else None
    ty = torch.nn.functional.group_norm(tx, groups, tw, tb)
    (ty * torch.tensor(gy)).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    if affine:
        np.testing.assert_allclose(np.asarray(w.grad), tw.grad.numpy(), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(np.asarray(b.grad), tb.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_group_norm_module_float32_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((2, 8, 5, 5)).astype(np.float32)
    m, tm = nn.GroupNorm(4, 8), torch.nn.GroupNorm(4, 8)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    np.testing.assert_allclose(m(sv.tensor(xs)).numpy(), tm(torch.tensor(xs)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    assert repr(m) == repr(tm) == "GroupNorm(4, 8, eps=1e-05, affine=True, bias=True)"
    assert list(nn.GroupNorm(2, 4, affine=False).parameters()) == []
    for kw in ({"affine": False}, {"bias": False}):
        m, tm = nn.GroupNorm(2, 4, **kw), torch.nn.GroupNorm(2, 4, **kw)
        assert repr(m) == repr(tm)
        assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    x = sv.randn(2, 4, 3)
    np.testing.assert_allclose(nn.GroupNorm(2, 4, bias=False)(x).numpy(),
                               F.group_norm(x, 2).numpy())


def test_group_norm_errors():
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"divisible by num_groups.*\[2, 6, 3\].*num_groups=4"):
        F.group_norm(sv.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        F.group_norm(sv.randn(6), 2)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\)"):
        F.group_norm(sv.randn(2, 6, 3), 2, sv.ones(3))
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\).*\(N, 4, \*\)"):
        nn.GroupNorm(2, 4)(sv.randn(2, 6, 3))


# ------------------------------------------------------------------ normalize
def test_normalize_by_hand():
    x = sv.tensor(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(F.normalize(x).numpy(), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(F.normalize(x, p=1).numpy(), [[3 / 7, 4 / 7], [0, 0]])
    np.testing.assert_allclose(F.normalize(x, p=math.inf).numpy(), [[0.75, 1.0], [0, 0]])
    # dim=0: columns [3, 0] and [4, 0] -> [1, 0] each
    np.testing.assert_allclose(F.normalize(x, dim=0).numpy(), [[1.0, 1.0], [0.0, 0.0]])
    # the norm 5 is below eps = 10: divide by 10 instead
    np.testing.assert_allclose(F.normalize(x, eps=10.0).numpy(), [[0.3, 0.4], [0.0, 0.0]])


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, -1), (3.0, 0), (1.5, (1, 2)), (0.5, 1),
                                    (math.inf, 1), (-math.inf, 2), (0, 1)])
def test_normalize_matches_torch(p, dim):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((3, 4, 5))
    xs[0, :, 2] = 0.0                # an all-zero slice: the eps branch (for dim=1)
    xs[1, 1, :] = 0.0                # zeros inside other slices
    xs[2, 0, 0] = xs[2, 1, 0] = 2.5  # a tie for the inf-norm
    gy = rng.standard_normal(xs.shape)
    x = sv.tensor(xs, requires_grad=True)
    y = F.normalize(x, p=p, dim=dim)
    (y * sv.tensor(gy)).sum().backward()
    tx = torch.tensor(xs, requires_grad=True)
    ty = torch.nn.functional.normalize(tx, p=p, dim=dim)
    (ty * torch.tensor(gy)).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_normalize_float32_and_errors():
    torch = pytest.importorskip("torch")
    xs = np.random.default_rng(5).standard_normal((6, 8)).astype(np.float32)
    y = F.normalize(sv.tensor(xs), dim=1)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), torch.nn.functional.normalize(torch.tensor(xs)),
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(IndexError, match="out of range"):
        F.normalize(sv.randn(4))       # dim=1 of a 1-D tensor, as torch
