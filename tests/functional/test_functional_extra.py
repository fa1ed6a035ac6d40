"""softplus, logsigmoid, elu, hardtanh, relu6, mish; binary_cross_entropy, huber_loss, kl_div,
cosine_similarity, pairwise_distance; pixel_shuffle/unshuffle, adaptive_max_pool2d; their
modules; register_buffer(persistent=False).

Each op: a hand-worked case, values and gradients against torch (float32 and float64),
and the errors bad input gets. The float64 gradient checks are registered next to each op
(``python -m scratchvision gradcheck <name>``) and run by ``test_registered_gradchecks``.
"""
import math
import warnings

import numpy as np
import pytest

import scratchvision as sv
import scratchvision.functional as F
from scratchvision import nn

TOL = {np.float32: {"rtol": 2e-6, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _grad(t):
    return np.asarray(t.grad)


def _both(fn_sv, fn_torch, arrays, dtype, gy_seed=0, grad_of=None):
    """Run fn on sv and torch Tensors made from ``arrays`` (all requiring grad unless
    ``grad_of`` names the indices that do), backward a random cotangent, and return
    ((sv value, sv grads), (torch value, torch grads))."""
    torch = pytest.importorskip("torch")
    grad_of = range(len(arrays)) if grad_of is None else grad_of
    xs = [sv.tensor(a.astype(dtype), requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    ts = [torch.tensor(a.astype(dtype), requires_grad=i in grad_of)
          for i, a in enumerate(arrays)]
    y, ty = fn_sv(*xs), fn_torch(*ts)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(dtype)
    (y * sv.tensor(gy)).sum().backward()
    (ty * torch.tensor(gy)).sum().backward()
    ours = (y.numpy(), [_grad(xs[i]) for i in grad_of])
    theirs = (ty.detach().numpy(), [ts[i].grad.numpy() for i in grad_of])
    return ours, theirs


def _assert_same(ours, theirs, dtype, scale=1.0):
    tol = {k: v * scale for k, v in TOL[dtype].items()}
    (y, gs), (ty, tgs) = ours, theirs
    assert y.dtype == dtype and y.shape == ty.shape
    np.testing.assert_allclose(y, ty, **tol)
    for g, tg in zip(gs, tgs):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, tg, **tol)


# ================================================================== activations
def test_softplus_by_hand():
    x = sv.tensor(np.array([0.0, 1.0, 25.0, -40.0]), requires_grad=True)
    y = F.softplus(x)
    # log(1 + e^x); 25 > threshold 20: the input itself; -40: log1p(e^-40) = e^-40
    np.testing.assert_allclose(y.numpy(), [math.log(2), math.log1p(math.e), 25.0,
                                           math.exp(-40)], rtol=1e-14)
    y.sum().backward()  # sigmoid(x), 1 on the linear branch
    np.testing.assert_allclose(_grad(x), [0.5, 1 / (1 + math.exp(-1)), 1.0, math.exp(-40)],
                               rtol=1e-14)
    # beta=2: 2 * 11 = 22 > 20 is linear; 2 * 9 = 18 is not: log1p(e^18) / 2
    z = F.softplus(sv.tensor(np.array([11.0, 9.0])), beta=2.0).numpy()
    np.testing.assert_allclose(z, [11.0, math.log1p(math.exp(18)) / 2], rtol=1e-14)
    assert F.softplus(sv.tensor(np.array([1e4], np.float32))).numpy()[0] == 1e4  # no inf


def test_logsigmoid_by_hand():
    x = sv.tensor(np.array([0.0, -1000.0, 1000.0]), requires_grad=True)
    y = F.logsigmoid(x)
    np.testing.assert_allclose(y.numpy(), [-math.log(2), -1000.0, 0.0], rtol=1e-14)
    y.sum().backward()  # sigmoid(-x)
    np.testing.assert_allclose(_grad(x), [0.5, 1.0, 0.0], rtol=1e-14)


def test_elu_by_hand():
    x = sv.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    y = F.elu(x, alpha=0.5)
    np.testing.assert_allclose(y.numpy(), [0.5 * math.expm1(-1), 0.0, 2.0], rtol=1e-14)
    y.sum().backward()  # alpha e^x for x <= 0 (alpha at 0, as torch), 1 above
    np.testing.assert_allclose(_grad(x), [0.5 * math.exp(-1), 0.5, 1.0], rtol=1e-14)
    tiny = F.elu(sv.tensor(np.array([-1e-10]))).numpy()[0]   # expm1, not exp - 1
    assert tiny == pytest.approx(-1e-10 + 5e-21, rel=1e-15)


def test_hardtanh_relu6_by_hand():
    x = sv.tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    y = F.hardtanh(x)
    np.testing.assert_array_equal(y.numpy(), [-1, -1, 0, 1, 1])
    y.sum().backward()  # 1 strictly inside (-1, 1), 0 at the bounds (torch)
    np.testing.assert_array_equal(_grad(x), [0, 0, 1, 0, 0])
    x = sv.tensor(np.array([-1.0, 0.0, 3.0, 6.0, 7.0]), requires_grad=True)
    y = F.relu6(x)
    np.testing.assert_array_equal(y.numpy(), [0, 0, 3, 6, 6])
    y.sum().backward()
    np.testing.assert_array_equal(_grad(x), [0, 0, 1, 0, 0])
    ints = F.relu6(sv.tensor(np.array([-3, 2, 9])))           # ints are clamped, as torch
    assert ints.dtype == np.int64 and ints.numpy().tolist() == [0, 2, 6]


def test_mish_by_hand():
    x = sv.tensor(np.array([0.0, 1.0, -1000.0, 1000.0]), requires_grad=True)
    y = F.mish(x)
    t1 = math.tanh(math.log1p(math.e))
    np.testing.assert_allclose(y.numpy(), [0.0, t1, -0.0, 1000.0], rtol=1e-14, atol=1e-300)
    y.sum().backward()  # tanh(softplus(0)) = tanh(log 2) = 3/5 at 0
    s1 = 1 / (1 + math.exp(-1))
    np.testing.assert_allclose(_grad(x)[:2], [0.6, t1 + s1 * (1 - t1 * t1)], rtol=1e-14)
    assert np.all(np.isfinite(_grad(x)))


ACTIVATIONS = [("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 5.0}),
               ("softplus", {"beta": 0.5}), ("logsigmoid", {}), ("elu", {}),
               ("elu", {"alpha": 0.3}), ("hardtanh", {}),
               ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("relu6", {}), ("mish", {})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kw", ACTIVATIONS)
def test_activations_match_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 60)) * 5
    # the branch points and the tails: thresholds, bounds, kinks, overflow
    x[0, :16] = [0.0, -1.0, 1.0, 6.0, -0.5, 2.0, 2.5, 10.0, 20.0, 40.0, -40.0, 90.0,
                 -90.0, 1e-7, -1e-7, 5.0]
    ours, theirs = _both(lambda t: getattr(F, name)(t, **kw),
                         lambda t: getattr(torch.nn.functional, name)(t, **kw), [x], dtype)
    _assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("name, kw", [("elu", {"alpha": 0.7}), ("hardtanh", {}),
                                      ("relu6", {}), ("mish", {})])
def test_activations_inplace(name, kw):
    torch = pytest.importorskip("torch")
    xs = np.array([-3.0, -0.5, 0.5, 3.0, 7.0])
    x = sv.tensor(xs.copy())
    out = getattr(F, name)(x, inplace=True, **kw)
    tx = torch.tensor(xs.copy())
    getattr(torch.nn.functional, name)(tx, inplace=True, **kw)
    assert out is x
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-14)
    # in the graph: gradient through the in-place op, as torch
    leaf = sv.tensor(xs, requires_grad=True)
    y = leaf * 2
    getattr(F, name)(y, inplace=True, **kw)
    y.sum().backward()
    tleaf = torch.tensor(xs, requires_grad=True)
    ty = tleaf * 2
    getattr(torch.nn.functional, name)(ty, inplace=True, **kw)
    ty.sum().backward()
    np.testing.assert_allclose(_grad(leaf), tleaf.grad.numpy(), rtol=1e-14)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(sv.tensor(xs, requires_grad=True), inplace=True, **kw)


def test_activation_modules():
    torch = pytest.importorskip("torch")
    x = sv.randn(3, 4)
    pairs = [(nn.Softplus(), torch.nn.Softplus()),
             (nn.Softplus(2.0, 10.0), torch.nn.Softplus(2.0, 10.0)),
             (nn.LogSigmoid(), torch.nn.LogSigmoid()),
             (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.5, True), torch.nn.ELU(0.5, True)),
             (nn.Hardtanh(), torch.nn.Hardtanh()),
             (nn.Hardtanh(-2.0, 3.0, True), torch.nn.Hardtanh(-2.0, 3.0, True)),
             (nn.ReLU6(), torch.nn.ReLU6()), (nn.ReLU6(True), torch.nn.ReLU6(True)),
             (nn.Mish(), torch.nn.Mish()), (nn.Mish(True), torch.nn.Mish(True))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        got = ours(x.clone()).numpy()
        want = theirs(torch.tensor(x.numpy())).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    assert isinstance(nn.ReLU6(), nn.Hardtanh)
    assert np.array_equal(nn.Softplus(beta=3)(x).numpy(), F.softplus(x, 3).numpy())
    with pytest.warns(FutureWarning, match="min_value"):
        m = nn.Hardtanh(min_value=-2.0)
    assert m.min_val == -2.0
    with pytest.raises(ValueError, match="greater than min_val"):
        nn.Hardtanh(1.0, 1.0)


def test_activation_errors():
    ints = sv.tensor(np.array([1, 2]))
    for fn in (F.softplus, F.logsigmoid, F.elu, F.mish):
        with pytest.raises(TypeError, match="floating-point"):
            fn(ints)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(sv.randn(3), 1.0, -1.0)


# ================================================================== losses
def test_binary_cross_entropy_by_hand():
    x = sv.tensor(np.array([0.5, 0.8, 0.0, 1.0]), requires_grad=True)
    y = sv.tensor(np.array([1.0, 0.0, 1.0, 1.0]))
    loss = F.binary_cross_entropy(x, y, reduction="none")
    # -log 0.5; -log(1 - 0.8); log 0 clamped at -100 gives 100; -log 1 = 0
    np.testing.assert_allclose(loss.numpy(), [math.log(2), -math.log(0.2), 100.0, 0.0],
                               rtol=1e-14)
    F.binary_cross_entropy(x, y).backward()   # mean: (x - y) / max(x (1 - x), 1e-12) / 4
    eps = float(np.float32(1e-12))     # torch's EPSILON, a float constant
    np.testing.assert_allclose(_grad(x), np.array([-2.0, 5.0, -1 / eps, 0.0]) / 4, rtol=1e-14)
    w = np.array([2.0, 1.0, 0.0, 1.0])  # 'mean' divides by the count, not by sum(w)
    got = F.binary_cross_entropy(x, y, weight=w).item()
    assert got == pytest.approx((2 * math.log(2) - math.log(0.2)) / 4, rel=1e-14)


def test_huber_loss_by_hand():
    x = sv.tensor(np.array([0.5, 2.0, -3.0]), requires_grad=True)
    loss = F.huber_loss(x, np.zeros(3), reduction="none")
    # 0.5 d^2 below delta = 1; delta (|d| - delta / 2) above
    np.testing.assert_allclose(loss.numpy(), [0.125, 1.5, 2.5], rtol=1e-15)
    F.huber_loss(x, np.zeros(3), reduction="sum", delta=0.25).backward()
    np.testing.assert_allclose(_grad(x), [0.25, 0.25, -0.25], rtol=1e-15)  # clip(d, +-delta)
    # delta * smooth_l1(beta=delta)
    x2, y2 = sv.randn(5, dtype=sv.float64), sv.randn(5, dtype=sv.float64)
    np.testing.assert_allclose(F.huber_loss(x2, y2, delta=0.3).item(),
                               0.3 * F.smooth_l1_loss(x2, y2, beta=0.3).item(), rtol=1e-13)


def test_kl_div_by_hand():
    p = np.array([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    q = np.array([[0.25, 0.5, 0.25], [0.25, 0.25, 0.5]])
    logq = sv.tensor(np.log(q), requires_grad=True)
    loss = F.kl_div(logq, p, reduction="none")
    # p log(p / q) per element, 0 where p == 0 (0 log 0 = 0)
    np.testing.assert_allclose(loss.numpy(), [[0.5 * math.log(2), 0, 0], [0, 0, 0]],
                               atol=1e-16)
    kl = F.kl_div(logq, p, reduction="batchmean")   # sum / batch size: KL per sample
    assert kl.item() == pytest.approx(0.5 * math.log(2) / 2, rel=1e-14)
    kl.backward()
    np.testing.assert_allclose(_grad(logq), -p / 2, rtol=1e-15)   # d/d input = -target
    # log targets, broadcast: KL(p1 || q0) = 0.25 log(0.25 / 0.5) + 0.5 log(0.5 / 0.25);
    # KL(p1 || q1) = 0
    same = F.kl_div(logq, np.log(p[1]), reduction="sum", log_target=True).item()
    assert same == pytest.approx(0.25 * math.log(2), rel=1e-14)
    with pytest.warns(UserWarning, match="batchmean"):
        mean = F.kl_div(logq, p)                    # sum / number of elements
    assert mean.item() == pytest.approx(0.5 * math.log(2) / 6, rel=1e-14)


def test_cosine_similarity_by_hand():
    a = sv.tensor(np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]]), requires_grad=True)
    b = sv.tensor(np.array([[4.0, 3.0], [1.0, 1.0], [-2.0, 0.0]]))
    c = F.cosine_similarity(a, b)
    np.testing.assert_allclose(c.numpy(), [24 / 25, 0.0, -1.0], rtol=1e-15)  # 0-vector: 0
    c[0].backward()  # d/da cos = b/(|a||b|) - cos a/|a|^2 = (4,3)/25 - 0.96 (3,4)/25
    np.testing.assert_allclose(_grad(a)[0], [(4 - 0.96 * 3) / 25, (3 - 0.96 * 4) / 25],
                               rtol=1e-13)
    # each norm clamped on its own (torch 2.x): 1e-9 * 2e-9 / (1e-8 * 1e-8) = 0.02
    tiny = F.cosine_similarity(sv.tensor(np.array([1e-9])), sv.tensor(np.array([2e-9])), 0)
    assert tiny.item() == pytest.approx(0.02, rel=1e-12)
    d = F.pairwise_distance(sv.tensor(np.array([[0.0, 0.0]])), sv.tensor(np.array([[3.0, 4.0]])),
                            eps=0.0)
    assert d.numpy().tolist() == [5.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_torch(reduction, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (4, 5))
    x[0, :4] = [0.0, 1.0, 1e-30, 1 - 1e-7]        # the clamps
    y = rng.uniform(0, 1, (4, 5))
    y[1, :2] = [0.0, 1.0]
    x[1, :2] = [0.0, 1.0]                          # log 0 times a zero target
    w = rng.uniform(0.5, 2, (5,))
    for weight in (None, w):
        def ours_fn(a, b, weight=weight):
            return F.binary_cross_entropy(a, b, weight=weight, reduction=reduction)

        def theirs_fn(a, b, weight=weight):
            tw = None if weight is None else torch.tensor(weight.astype(dtype))
            return torch.nn.functional.binary_cross_entropy(a, b, weight=tw,
                                                            reduction=reduction)
        ours, theirs = _both(ours_fn, theirs_fn, [x, y], dtype, grad_of=[0])
        _assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_target_grad_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0.01, 0.99, (3, 4)), rng.uniform(0, 1, (3, 4))
    ours, theirs = _both(lambda a, b: F.binary_cross_entropy(a, b, reduction="sum"),
                         lambda a, b: torch.nn.functional.binary_cross_entropy(
                             a, b, reduction="sum"), [x, y], dtype)
    _assert_same(ours, theirs, dtype, scale=5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_loss_matches_torch(delta, reduction, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 7)) * 2, rng.standard_normal((3, 7))
    x[0, 0] = y[0, 0] + delta                      # exactly at the switch
    ours, theirs = _both(lambda a, b: F.huber_loss(a, b, reduction, delta),
                         lambda a, b: torch.nn.functional.huber_loss(a, b, reduction, delta),
                         [x, y], dtype)
    _assert_same(ours, theirs, dtype)
    w = rng.uniform(0, 2, x.shape)
    ours, theirs = _both(lambda a, b: F.huber_loss(a, b, reduction, delta, weight=w),
                         lambda a, b: torch.nn.functional.huber_loss(
                             a, b, reduction, delta, weight=torch.tensor(w.astype(dtype))),
                         [x, y], dtype)
    _assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, reduction, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    logq = np.log(rng.dirichlet(np.ones(6), (2, 3)))           # (2, 3, 6) log-probs
    p = rng.dirichlet(np.ones(6), (2, 3))
    t = np.log(p) if log_target else p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # 'mean' warns on both sides
        ours, theirs = _both(
            lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
            lambda a, b: torch.nn.functional.kl_div(a, b, reduction=reduction,
                                                    log_target=log_target),
            [logq, t], dtype)
    _assert_same(ours, theirs, dtype, scale=2)


def test_kl_div_zero_target_and_broadcast_match_torch():
    torch = pytest.importorskip("torch")
    logq = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    p = np.array([0.0, 0.4, 0.6])                    # broadcast over the batch, a zero
    ours, theirs = _both(lambda a, b: F.kl_div(a, b, reduction="batchmean"),
                         lambda a, b: torch.nn.functional.kl_div(a, b, reduction="batchmean"),
                         [logq, p], np.float64)
    # the target's gradient is NaN where the target is 0, in torch (xlogy's backward) too
    assert np.isnan(ours[1][1][0]) and np.isnan(theirs[1][1][0])
    ours[1][1][0] = theirs[1][1][0] = 0.0
    _assert_same(ours, theirs, np.float64)
    scalar = F.kl_div(sv.tensor(np.array(-1.0)), sv.tensor(np.array(0.3)),
                      reduction="batchmean")   # 0-d input: batchmean is the sum
    want = torch.nn.functional.kl_div(torch.tensor(-1.0, dtype=torch.float64),
                                      torch.tensor(0.3, dtype=torch.float64),
                                      reduction="batchmean")
    assert scalar.item() == pytest.approx(want.item(), rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes, dim", [(((4, 5), (4, 5)), 1), (((4, 5), (4, 5)), 0),
                                         (((2, 3, 4), (3, 4)), -1), (((2, 3, 4), (1, 3, 1)), 1),
                                         (((6,), (6,)), 0)])
def test_cosine_similarity_matches_torch(shapes, dim, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    a, b = (rng.standard_normal(s) for s in shapes)
    ours, theirs = _both(lambda u, v: F.cosine_similarity(u, v, dim),
                         lambda u, v: torch.nn.functional.cosine_similarity(u, v, dim),
                         [a, b], dtype)
    _assert_same(ours, theirs, dtype, scale=2)


def test_cosine_similarity_clamped_norms_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1e-9, 0.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1e-5, 2e-5, 0.0]])
    b = np.array([[2e-9, 0.0, 1e-9], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1e-6, 1.0, 0.0]])
    for eps in (1e-8, 1e-4):
        ours, theirs = _both(lambda u, v, eps=eps: F.cosine_similarity(u, v, 1, eps),
                             lambda u, v, eps=eps: torch.nn.functional.cosine_similarity(
                                 u, v, 1, eps), [a, b], np.float64)
        _assert_same(ours, theirs, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p, keepdim, shapes", [(2.0, False, ((4, 5), (4, 5))),
                                                (1.0, True, ((4, 5), (5,))),
                                                (3.0, False, ((5,), (5,)))])
def test_pairwise_distance_matches_torch(p, keepdim, shapes, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    a, b = (rng.standard_normal(s) for s in shapes)
    ours, theirs = _both(lambda u, v: F.pairwise_distance(u, v, p, keepdim=keepdim),
                         lambda u, v: torch.nn.functional.pairwise_distance(
                             u, v, p, keepdim=keepdim), [a, b], dtype)
    _assert_same(ours, theirs, dtype, scale=2)


def test_loss_modules():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    probs, target = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3))
    logp = np.log(rng.dirichlet(np.ones(3), 4))
    labels = np.array([0, 2, 1, 2])
    w = np.array([0.5, 2.0, 1.0])
    cases = [(nn.L1Loss(), torch.nn.L1Loss(), probs, target),
             (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), probs, target),
             (nn.HuberLoss(), torch.nn.HuberLoss(), probs * 4, target),
             (nn.HuberLoss("sum", 0.2), torch.nn.HuberLoss("sum", 0.2), probs * 4, target),
             (nn.BCELoss(), torch.nn.BCELoss(), probs, target),
             (nn.BCELoss(w), torch.nn.BCELoss(torch.tensor(w)), probs, target),
             (nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"),
              logp, target),
             (nn.KLDivLoss(reduction="sum", log_target=True),
              torch.nn.KLDivLoss(reduction="sum", log_target=True), logp, logp[::-1].copy()),
             (nn.NLLLoss(), torch.nn.NLLLoss(), logp, labels),
             (nn.NLLLoss(w, ignore_index=1), torch.nn.NLLLoss(torch.tensor(w), ignore_index=1),
              logp, labels),
             (nn.CosineSimilarity(), torch.nn.CosineSimilarity(), probs, target),
             (nn.CosineSimilarity(0), torch.nn.CosineSimilarity(0), probs, target),
             (nn.PairwiseDistance(), torch.nn.PairwiseDistance(), probs, target)]
    for ours, theirs, a, b in cases:
        assert repr(ours) == repr(theirs)
        got = ours(sv.tensor(a), sv.tensor(b)).numpy()
        want = theirs(torch.tensor(a), torch.tensor(b)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # weight is a buffer, as torch's _WeightedLoss: in the state_dict when given
    assert list(nn.BCELoss(w).state_dict()) == list(torch.nn.BCELoss(torch.tensor(w))
                                                    .state_dict()) == ["weight"]
    assert list(nn.NLLLoss().state_dict()) == [] and nn.NLLLoss().weight is None
    m = nn.NLLLoss(w).to(np.float32)
    assert m.weight.dtype == np.float32
    # a float64 weight (a NumPy array becomes a float64 buffer) keeps float32 losses
    x32 = sv.tensor(logp.astype(np.float32))
    for loss in (nn.NLLLoss(w, reduction="none"), nn.BCELoss(w, reduction="none")):
        arg = x32 if isinstance(loss, nn.NLLLoss) else sv.tensor(probs.astype(np.float32))
        tgt = labels if isinstance(loss, nn.NLLLoss) else target.astype(np.float32)
        assert loss(arg, tgt).dtype == np.float32


def test_loss_errors():
    x = sv.tensor(np.array([0.2, 0.7]))
    with pytest.raises(ValueError, match="input should be between 0 and 1"):
        F.binary_cross_entropy(sv.tensor(np.array([1.5, 0.5])), np.ones(2))
    with pytest.raises(ValueError, match="input should be between 0 and 1"):
        F.binary_cross_entropy(sv.tensor(np.array([np.nan, 0.5])), np.ones(2))
    with pytest.raises(ValueError, match="target should be between 0 and 1"):
        F.binary_cross_entropy(x, np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy(x, np.ones(3))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.binary_cross_entropy(x, np.ones(2), weight=np.ones((2, 2)))
    with pytest.raises(ValueError, match="reduction"):
        F.binary_cross_entropy(x, np.ones(2), reduction="avg")
    with pytest.raises(TypeError, match="floating-point"):
        F.binary_cross_entropy(sv.tensor(np.array([0, 1])), np.ones(2))
    with pytest.raises(ValueError, match="non-positive values for delta"):
        F.huber_loss(x, np.ones(2), delta=0.0)
    with pytest.raises(ValueError, match="target shape"):
        F.huber_loss(x, np.ones(3))
    with pytest.raises(ValueError, match="same size"):
        F.huber_loss(x, np.ones(2), weight=np.ones(1))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.kl_div(x, x, reduction="avg")
    with pytest.raises(ValueError, match="do not broadcast"):
        F.kl_div(sv.randn(2, 3), sv.randn(4), reduction="sum")
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.cosine_similarity(sv.randn(3), sv.randn(3))        # default dim=1 on 1-D
    with pytest.raises(ValueError, match="do not broadcast"):
        F.cosine_similarity(sv.randn(2, 3), sv.randn(4, 3))
    with pytest.raises(TypeError, match="floating-point"):
        F.cosine_similarity(sv.tensor(np.array([1, 2])), sv.tensor(np.array([1, 3])), 0)


# ================================================================== pixel shuffle
def test_pixel_shuffle_by_hand():
    x = sv.tensor(np.arange(8.0).reshape(1, 8, 1, 1), requires_grad=True)
    y = F.pixel_shuffle(x, 2)   # channel c*4 + i*2 + j goes to pixel (i, j) of channel c
    assert y.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(y.numpy(), [[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]])
    (y * sv.tensor(np.arange(8.0).reshape(1, 2, 2, 2))).sum().backward()
    np.testing.assert_array_equal(_grad(x).ravel(), np.arange(8.0))  # inverse permutation
    np.testing.assert_array_equal(F.pixel_unshuffle(y, 2).numpy(), x.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, r", [((2, 12, 3, 4), 2), ((9, 2, 3), 3), ((2, 3, 4, 2, 1), 2),
                                      ((1, 5, 2, 2), 1)])
def test_pixel_shuffle_matches_torch(shape, r, dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(9).standard_normal(shape)
    ours, theirs = _both(lambda t: F.pixel_shuffle(t, r),
                         lambda t: torch.nn.functional.pixel_shuffle(t, r), [x], dtype)
    _assert_same(ours, theirs, dtype, scale=0)
    y = theirs[0]
    ours, theirs = _both(lambda t: F.pixel_unshuffle(t, r),
                         lambda t: torch.nn.functional.pixel_unshuffle(t, r), [y], dtype)
    _assert_same(ours, theirs, dtype, scale=0)
    np.testing.assert_array_equal(ours[0], x.astype(dtype))   # unshuffle inverts shuffle


def test_pixel_shuffle_empty_batch():
    # (torch's own backward refuses an empty batch: PixelShuffleBackward0 gives a wrong shape)
    x = sv.zeros(0, 4, 2, 2, requires_grad=True)
    y = F.pixel_shuffle(x, 2)
    assert y.shape == (0, 1, 4, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 2, 2)
    assert F.pixel_unshuffle(y, 2).shape == (0, 4, 2, 2)


def test_pixel_shuffle_modules_and_errors():
    torch = pytest.importorskip("torch")
    x = sv.randn(1, 8, 2, 3)
    assert repr(nn.PixelShuffle(2)) == repr(torch.nn.PixelShuffle(2))
    assert repr(nn.PixelUnshuffle(3)) == repr(torch.nn.PixelUnshuffle(3))
    assert np.array_equal(nn.PixelShuffle(2)(x).numpy(), F.pixel_shuffle(x, 2).numpy())
    assert np.array_equal(nn.PixelUnshuffle(2)(nn.PixelShuffle(2)(x)).numpy(), x.numpy())
    with pytest.raises(ValueError, match="divisible by the square of upscale_factor"):
        F.pixel_shuffle(sv.randn(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        F.pixel_shuffle(sv.randn(4, 2), 2)
    with pytest.raises(ValueError, match="positive upscale_factor"):
        F.pixel_shuffle(sv.randn(1, 4, 2, 2), 0)
    with pytest.raises(TypeError, match="must be int"):
        F.pixel_shuffle(sv.randn(1, 4, 2, 2), 1.5)
    with pytest.raises(ValueError, match="height to be divisible"):
        F.pixel_unshuffle(sv.randn(1, 1, 3, 4), 2)
    with pytest.raises(ValueError, match="width to be divisible"):
        F.pixel_unshuffle(sv.randn(1, 1, 4, 3), 2)
    with pytest.raises(ValueError, match="positive downscale_factor"):
        F.pixel_unshuffle(sv.randn(1, 1, 4, 4), -1)


# ================================================================== adaptive_max_pool2d
def test_adaptive_max_pool2d_by_hand():
    x = sv.tensor(np.arange(12.0).reshape(1, 1, 3, 4), requires_grad=True)
    # rows: bin 0 = [floor(0), ceil(3/2)) = [0, 2), bin 1 = [floor(3/2), ceil(3)) = [1, 3);
    # cols: [0, 2), [2, 4). The maxima are the bottom-right cells 5, 7, 9, 11.
    y, idx = F.adaptive_max_pool2d(x, (2, 2), return_indices=True)
    np.testing.assert_array_equal(y.numpy(), [[[[5, 7], [9, 11]]]])
    np.testing.assert_array_equal(idx.numpy(), [[[[5, 7], [9, 11]]]])   # h * W + w
    assert idx.dtype == np.int64 and not idx.requires_grad
    y.sum().backward()
    want = np.zeros(12)
    want[[5, 7, 9, 11]] = 1
    np.testing.assert_array_equal(_grad(x).ravel(), want)
    # overlapping bins that share an argmax: both gradients land on it
    z = sv.tensor(np.array([[[0.0], [5.0], [1.0]]]), requires_grad=True)   # (C=1, 3, 1)
    out = F.adaptive_max_pool2d(z, (2, 1))
    np.testing.assert_array_equal(out.numpy(), [[[5.0], [5.0]]])
    out.sum().backward()
    np.testing.assert_array_equal(_grad(z).ravel(), [0, 2, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, out", [((2, 3, 7, 6), (3, 4)), ((2, 3, 7, 6), 1),
                                        ((1, 2, 5, 5), (5, 5)), ((1, 2, 4, 3), (6, 7)),
                                        ((3, 9, 8), (None, 3)), ((2, 1, 6, 6), (2, None)),
                                        ((0, 2, 4, 4), 2)])
def test_adaptive_max_pool2d_matches_torch(shape, out, dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(10).standard_normal(shape)
    ours, theirs = _both(lambda t: F.adaptive_max_pool2d(t, out),
                         lambda t: torch.nn.functional.adaptive_max_pool2d(t, out), [x], dtype)
    _assert_same(ours, theirs, dtype, scale=0)
    _, idx = F.adaptive_max_pool2d(sv.tensor(x.astype(dtype)), out, return_indices=True)
    _, tidx = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x.astype(dtype)), out,
                                                      return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_adaptive_max_pool2d_ties_and_nan_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[[1.0, 3.0, 3.0, 0.0], [np.nan, 2.0, np.nan, 5.0], [4.0, 4.0, 0.0, 0.0]]])
    for out in ((1, 1), (2, 2), (3, 2), (1, 4)):
        y, idx = F.adaptive_max_pool2d(sv.tensor(x), out, return_indices=True)
        ty, tidx = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), out,
                                                           return_indices=True)
        np.testing.assert_array_equal(y.numpy(), ty.numpy())    # NaN where torch has NaN
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())  # first max; last NaN
    ones = np.ones((1, 1, 3, 3))
    ours, theirs = _both(lambda t: F.adaptive_max_pool2d(t, 2),
                         lambda t: torch.nn.functional.adaptive_max_pool2d(t, 2), [ones],
                         np.float64)
    _assert_same(ours, theirs, np.float64, scale=0)


def test_adaptive_max_pool2d_module_and_errors():
    torch = pytest.importorskip("torch")
    for args in ((2,), ((2, None),), ((3, 4), True)):
        assert repr(nn.AdaptiveMaxPool2d(*args)) == repr(torch.nn.AdaptiveMaxPool2d(*args))
    x = sv.randn(2, 3, 5, 5)
    assert np.array_equal(nn.AdaptiveMaxPool2d(2)(x).numpy(),
                          F.adaptive_max_pool2d(x, 2).numpy())
    y, idx = nn.AdaptiveMaxPool2d((1, 2), return_indices=True)(x)
    assert y.shape == idx.shape == (2, 3, 1, 2)
    assert F.adaptive_max_pool2d(x, (0, 2)).shape == (2, 3, 0, 2)     # as torch
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\)"):
        F.adaptive_max_pool2d(sv.randn(3, 3), 2)
    with pytest.raises(ValueError, match="non-zero size"):
        F.adaptive_max_pool2d(sv.randn(1, 0, 3, 3), 2)
    with pytest.raises(ValueError, match="spatial"):
        F.adaptive_max_pool2d(sv.zeros(1, 1, 0, 3), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_max_pool2d(x, (-1, 2))
    with pytest.raises(TypeError, match="output_size"):
        F.adaptive_max_pool2d(x, (2, 2, 2))
    with pytest.raises(TypeError, match="float32 or float64"):
        F.adaptive_max_pool2d(sv.tensor(np.zeros((1, 1, 3, 3), np.int64)), 2)


# ================================================================== register_buffer
class _WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("kept", sv.tensor(np.ones(3, np.float32)))
        self.register_buffer("scratch", sv.tensor(np.zeros(2, np.float32)), persistent=False)
        self.register_buffer("empty", None, persistent=False)


def test_register_buffer_non_persistent():
    m = _WithBuffers()
    assert sorted(n for n, _ in m.named_buffers()) == ["kept", "scratch"]
    assert list(m.state_dict()) == ["kept", "lin.weight", "lin.bias"]   # torch's order
    assert "scratch" not in m.state_dict(keep_vars=True)
    m.to(np.float64)                       # moved and cast like any buffer
    assert m.scratch.dtype == np.float64 and m.kept.dtype == np.float64
    # not expected by load_state_dict, and unexpected when present (torch)
    sd = m.state_dict()
    assert m.load_state_dict(sd).missing_keys == []
    sd["scratch"] = np.zeros(2)
    with pytest.raises(RuntimeError, match='Unexpected key.*"scratch"'):
        m.load_state_dict(sd)
    assert m.load_state_dict(sd, strict=False).unexpected_keys == ["scratch"]
    # re-registering as persistent puts it back; nested modules keep their own sets
    m.register_buffer("scratch", np.zeros(2, np.float32))
    assert "scratch" in m.state_dict()
    outer = nn.Sequential(_WithBuffers())
    assert [k for k in outer.state_dict() if "scratch" in k] == []


def test_register_buffer_matches_torch_keys():
    torch = pytest.importorskip("torch")

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.register_buffer("kept", torch.ones(3))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)
            self.register_buffer("empty", None, persistent=False)

    # the same keys (the order differs: torch lists each module's parameters and buffers
    # before its children's, state_dict here all parameters first)
    assert sorted(_WithBuffers().state_dict()) == sorted(T().state_dict())
    assert [n for n, _ in _WithBuffers().named_buffers()] == [n for n, _ in T().named_buffers()]


def test_register_buffer_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(KeyError, match="empty string"):
        m.register_buffer("", np.zeros(1))
    with pytest.raises(TypeError, match="buffer name should be a string"):
        m.register_buffer(3, np.zeros(1))


# ================================================================== gradient checks
NAMES = ["softplus", "logsigmoid", "elu", "hardtanh", "relu6", "mish", "binary_cross_entropy",
         "huber_loss", "kl_div", "cosine_similarity", "pairwise_distance", "pixel_shuffle",
         "pixel_unshuffle", "adaptive_max_pool2d"]


@pytest.mark.parametrize("name", NAMES)
def test_registered_gradchecks(name):
    from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
    r = run_case(registered_gradchecks()[name])
    assert r.ok, r.worst
