"""LambdaLR, PolynomialLR, OneCycleLR: hand-worked rates, torch cross-checks of the rate
(and OneCycleLR's momentum) at every step, state_dict round trips, errors."""
import json
import math
import warnings

import numpy as np
import pytest

from scratchvision import nn

S = nn.optim.lr_scheduler


def _param():
    return nn.Parameter(np.zeros(1))


def _sgd(lr=1.0, groups=1, **kw):
    if groups == 1:
        return nn.optim.SGD([_param()], lr=lr, **kw)
    return nn.optim.SGD([{"params": [_param()], "lr": lr * (i + 1)} for i in range(groups)],
                        lr=lr, **kw)


def _run(sched, opt, steps, key="lr"):
    """The value of group[key] of every group before each of ``steps`` steps."""
    out = []
    for _ in range(steps):
        out.append([g[key] if key != "betas" else g["betas"][0] for g in opt.param_groups])
        sched.step()
    return out


def _torch_run(torch, make_opt, make_sched, steps, groups=1, key="lr"):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    opt = make_opt(torch, params)
    sched = make_sched(torch.optim.lr_scheduler, opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append([g[key] if key != "betas" else g["betas"][0] for g in opt.param_groups])
            opt.step()
            sched.step()
    return out


def test_lambda_lr_by_hand():
    opt = _sgd(lr=0.5, groups=2)                   # group lrs 0.5 and 1.0
    s = S.LambdaLR(opt, lambda e: 0.9 ** e)
    got = _run(s, opt, 3)
    np.testing.assert_allclose(got, [[0.5, 1.0], [0.45, 0.9], [0.405, 0.81]], rtol=1e-15)
    opt = _sgd(lr=1.0, groups=2)
    s = S.LambdaLR(opt, [lambda e: e + 1, lambda e: 1 / (e + 1)])
    assert _run(s, opt, 3) == [[1.0, 2.0], [2.0, 1.0], [3.0, 2 / 3]]
    assert s.get_last_lr() == [4.0, 0.5]
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        S.LambdaLR(_sgd(groups=2), [lambda e: 1.0])


def test_lambda_lr_state_dict_leaves_out_functions():
    class Warm:
        def __init__(self):
            self.n = 3

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    opt = _sgd(lr=1.0, groups=2)
    fn = Warm()
    s = S.LambdaLR(opt, [lambda e: 0.5, fn])
    s.step()
    state = s.state_dict()
    assert state["lr_lambdas"] == [None, {"n": 3}] and "optimizer" not in state
    json.dumps(state)                               # plain numbers only
    fn.n = 10
    opt2 = _sgd(lr=1.0, groups=2)
    fn2 = Warm()
    s2 = S.LambdaLR(opt2, [lambda e: 0.5, fn2])
    s2.load_state_dict(state)
    assert fn2.n == 3 and s2.last_epoch == 1
    s.step()
    s2.step()                         # epoch 2: group 2 (lr 2.0) at min(1, 3 / n)
    assert s2.get_last_lr() == [0.5, 2.0]
    assert s.get_last_lr() == pytest.approx([0.5, 0.6])   # the original, changed to n = 10


def test_polynomial_lr_by_hand():
    opt = _sgd(lr=1.0)
    s = S.PolynomialLR(opt, total_iters=4, power=2.0)
    # (1 - e/4)^2 for e = 0..4, then 0
    np.testing.assert_allclose(np.ravel(_run(s, opt, 6)),
                               [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0], atol=1e-15)
    with pytest.raises(ValueError, match="total_iters"):
        S.PolynomialLR(_sgd(), total_iters=0)


@pytest.mark.parametrize("kw", [{}, {"total_iters": 4, "power": 2.0},
                                {"total_iters": 7, "power": 0.5}])
def test_polynomial_lr_matches_torch(kw):
    torch = pytest.importorskip("torch")
    opt = _sgd(lr=0.1, groups=2)
    ours = _run(S.PolynomialLR(opt, **kw), opt, 10)
    theirs = _torch_run(torch, lambda t, ps: t.optim.SGD(
        [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ps)], lr=0.1),
        lambda T, o: T.PolynomialLR(o, **kw), 10, groups=2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_lambda_lr_matches_torch():
    torch = pytest.importorskip("torch")
    lams = [lambda e: 0.95 ** e, lambda e: 1.0 / (1 + e) ** 0.5]
    opt = _sgd(lr=0.2, groups=2)
    ours = _run(S.LambdaLR(opt, lams), opt, 8)
    theirs = _torch_run(torch, lambda t, ps: t.optim.SGD(
        [{"params": [p], "lr": 0.2 * (i + 1)} for i, p in enumerate(ps)], lr=0.2),
        lambda T, o: T.LambdaLR(o, lams), 8, groups=2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)


def test_one_cycle_by_hand():
    # 10 steps, pct_start 0.3: up over steps 0..2 (end_step 0.3 * 10 - 1 = 2), down 2..9
    opt = _sgd(lr=123.0, momentum=0.9)
    s = S.OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="linear",
                     div_factor=4.0, final_div_factor=5.0, cycle_momentum=False)
    got = np.ravel(_run(s, opt, 10))
    initial, min_lr = 0.25, 0.05
    up = [initial + (1.0 - initial) * e / 2 for e in range(3)]
    down = [1.0 + (min_lr - 1.0) * (e - 2) / 7 for e in range(3, 10)]
    np.testing.assert_allclose(got, up + down, rtol=1e-14)
    assert opt.param_groups[0]["momentum"] == 0.9           # untouched without cycling
    assert s.last_epoch == 10                              # step 10 = total_steps: allowed
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        s.step()


@pytest.mark.parametrize("kw", [
    {"max_lr": 0.5, "total_steps": 20},
    {"max_lr": [0.5, 0.2], "epochs": 3, "steps_per_epoch": 7, "anneal_strategy": "linear"},
    {"max_lr": 1.0, "total_steps": 25, "three_phase": True, "pct_start": 0.25},
    {"max_lr": 0.3, "total_steps": 12, "div_factor": 10.0, "final_div_factor": 100.0,
     "base_momentum": 0.8, "max_momentum": 0.9}])
def test_one_cycle_sgd_matches_torch(kw):
    torch = pytest.importorskip("torch")
    n = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    runs = {}
    for key in ("lr", "momentum"):
        opt = _sgd(lr=0.01, groups=2, momentum=0.5)
        ours = _run(S.OneCycleLR(opt, **kw), opt, n, key)
        theirs = _torch_run(torch, lambda t, ps: t.optim.SGD(
            [{"params": [p], "lr": 0.01 * (i + 1)} for i, p in enumerate(ps)], lr=0.01,
            momentum=0.5), lambda T, o: T.OneCycleLR(o, **kw), n, groups=2, key=key)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15, err_msg=key)
        runs[key] = ours
    assert runs["momentum"][0] == [kw.get("max_momentum", 0.95)] * 2


def test_one_cycle_adam_cycles_beta1_like_torch():
    torch = pytest.importorskip("torch")
    opt = nn.optim.Adam([_param()], lr=0.01, betas=(0.9, 0.99))
    sched = S.OneCycleLR(opt, max_lr=0.1, total_steps=15)
    ours = _run(sched, opt, 15, "betas")
    assert opt.param_groups[0]["betas"][1] == 0.99
    theirs = _torch_run(torch, lambda t, ps: t.optim.Adam(ps, lr=0.01, betas=(0.9, 0.99)),
                        lambda T, o: T.OneCycleLR(o, max_lr=0.1, total_steps=15), 15,
                        key="betas")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_one_cycle_state_dict_resumes_exactly():
    def make():
        opt = _sgd(lr=0.1, momentum=0.9)
        return opt, S.OneCycleLR(opt, max_lr=0.4, total_steps=12, three_phase=True)

    opt, s = make()
    full = _run(s, opt, 12)
    opt, s = make()
    first = _run(s, opt, 5)
    state = json.loads(json.dumps(s.state_dict()))          # plain numbers and strings
    opt2, s2 = make()
    for g in opt2.param_groups:                            # what the optimiser state brings
        g.update({k: v for k, v in opt.param_groups[0].items() if k != "params"})
    s2.load_state_dict(state)
    rest = _run(s2, opt2, 7)
    np.testing.assert_allclose(first + rest, full, rtol=1e-15)


def test_one_cycle_errors():
    with pytest.raises(ValueError, match="either total_steps OR"):
        S.OneCycleLR(_sgd(), max_lr=1.0)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        S.OneCycleLR(_sgd(), max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="positive integer epochs"):
        S.OneCycleLR(_sgd(), max_lr=1.0, epochs=1.5, steps_per_epoch=3)
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycleLR(_sgd(), max_lr=1.0, total_steps=5, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(_sgd(), max_lr=1.0, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="expected 2 values for max_lr, got 3"):
        S.OneCycleLR(_sgd(groups=2), max_lr=[1.0, 2.0, 3.0], total_steps=5)


def test_sequential_with_lambda_list_uses_each_groups_function():
    opt = _sgd(lr=1.0, groups=2)
    warm = S.LambdaLR(opt, [lambda e: 0.5, lambda e: 0.25])
    poly = S.PolynomialLR(opt, total_iters=2, power=1.0)
    seq = S.SequentialLR(opt, [warm, poly], milestones=[2])
    got = _run(seq, opt, 5)
    assert got == [[0.5, 0.5], [0.5, 0.5], [1.0, 2.0], [0.5, 1.0], [0.0, 0.0]]
    assert math.isclose(opt.param_groups[1]["initial_lr"], 2.0)
