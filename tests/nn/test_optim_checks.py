"""Optimisers refuse bad parameter lists, bad hyper-parameters and a state_dict from
another model as torch does (issue 19), with torch's messages where torch has one."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn
from scratchvision.nn import optim


def _param(*shape):
    return nn.Parameter(np.zeros(shape, np.float32))


P = _param(2)

BAD_OPTIMIZERS = [
    (lambda: optim.SGD([], lr=0.1), ValueError, "optimizer got an empty parameter list"),
    (lambda: optim.SGD(P, lr=0.1), TypeError,
     "params argument given to the optimizer should be an iterable of Tensors or dicts"),
    (lambda: optim.SGD([{"params": [P]}, {"params": [P]}], lr=0.1), ValueError,
     "some parameters appear in more than one parameter group"),
    (lambda: optim.SGD([{"lr": 0.1}], lr=0.1), TypeError,
     "parameter group 0 must be a dict with a 'params' key"),
    (lambda: optim.SGD([np.zeros(2)], lr=0.1), TypeError,
     "optimizer can only optimize Tensors, but group 0 holds a ndarray"),
    (lambda: optim.SGD([P * 2], lr=0.1), ValueError, "can't optimize a non-leaf Tensor"),
    (lambda: optim.SGD([P], lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    (lambda: optim.SGD([P], lr="0.1"), TypeError, "learning rate must be a real number"),
    (lambda: optim.SGD([P], lr=float("nan")), ValueError, "learning rate must be finite"),
    (lambda: optim.SGD([P], lr=0.1, momentum=-1), ValueError, "Invalid momentum value: -1"),
    (lambda: optim.SGD([P], lr=0.1, dampening=-1), ValueError, "Invalid dampening value"),
    (lambda: optim.SGD([P], lr=0.1, weight_decay=-1), ValueError,
     "Invalid weight_decay value: -1"),
    (lambda: optim.SGD([P], lr=0.1, nesterov=True), ValueError,
     "Nesterov momentum requires a momentum and zero dampening"),
    (lambda: optim.Adam([P], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.Adam([P], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda: optim.Adam([P], betas=(1.0, 0.9)), ValueError,
     "Invalid beta parameter at index 0: 1.0"),
    (lambda: optim.Adam([P], betas=(0.9, 1.5)), ValueError,
     "Invalid beta parameter at index 1: 1.5"),
    (lambda: optim.Adam([P], betas=0.9), TypeError, "Adam: betas must be a pair of numbers"),
    (lambda: optim.AdamW([P], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
]


@pytest.mark.parametrize("make, exc, fragment", BAD_OPTIMIZERS,
                         ids=[r[2][:40] for r in BAD_OPTIMIZERS])
def test_bad_optimizer_is_refused(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


def test_duplicate_parameter_in_one_group_warns_like_torch_and_is_updated_once():
    p = _param(2)
    with pytest.warns(UserWarning, match="parameter group with duplicate parameters"):
        opt = optim.SGD([p, p], lr=0.5)
    assert len(opt.param_groups[0]["params"]) == 1
    p.grad = sv.ones(2)
    opt.step()
    np.testing.assert_array_equal(p.numpy(), [-0.5, -0.5])


def test_distinct_parameters_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.SGD([_param(2), _param(2)], lr=0.1)


def _trained_adam(shapes, groups=1):
    params = [_param(*s) for s in shapes]
    split = len(params) // groups
    parts = [{"params": params[i * split:(i + 1) * split or None]} for i in range(groups)]
    opt = optim.Adam(parts if groups > 1 else params, lr=0.1)
    for p in params:
        p.grad = sv.ones(*p.shape)
    opt.step()
    return opt, params


@pytest.mark.parametrize("source, target, fragment", [
    ((((2,), (3,)), 2), (((2,), (3,)), 1), "has 2 parameter groups, this optimizer 1"),
    ((((2,), (3,)), 1), (((2,), (3,), (4,)), 1),
     "parameter group 0 has 2 parameters, this optimizer's 3"),
    ((((2,), (3,)), 1), (((2,), (4,)), 1),
     "state 'exp_avg' of parameter 1 (group 0) has shape (3,), but the parameter has shape "
     "(4,)"),
    ((((2, 2),), 1), (((4,),), 1), "has shape (2, 2), but the parameter has shape (4,)"),
])
def test_load_state_dict_from_another_model_names_what_differs(source, target, fragment):
    saved = _trained_adam(*source)[0].state_dict()
    opt, params = _trained_adam(*target)
    before = {id(p): {k: np.array(v) for k, v in s.items()} for p in params
              for s in [opt.state[id(p)]]}
    lr_before = opt.param_groups[0]["lr"]
    saved["param_groups"][0]["lr"] = 123.0
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(saved)
    assert fragment in str(info.value)
    assert opt.param_groups[0]["lr"] == lr_before        # nothing changed
    for p in params:
        for k, v in opt.state[id(p)].items():
            np.testing.assert_array_equal(np.asarray(v), before[id(p)][k])


def test_load_state_dict_refuses_a_dict_that_is_not_an_optimizer_state():
    opt = _trained_adam([(2,)])[0]
    with pytest.raises(ValueError, match="must be a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"conv.weight": np.zeros(2)})


def test_load_state_dict_round_trip_still_works():
    opt, params = _trained_adam([(2,), (3,)])
    saved = opt.state_dict()
    fresh, fresh_params = _trained_adam([(2,), (3,)])
    fresh.load_state_dict(saved)
    for p, q in zip(params, fresh_params):
        np.testing.assert_array_equal(np.asarray(fresh.state[id(q)]["exp_avg"]),
                                      np.asarray(opt.state[id(p)]["exp_avg"]))


def test_module_load_state_dict_names_shapes_and_keys():
    """Module.load_state_dict already reports torch's messages (checked, kept)."""
    model = nn.Linear(3, 2)
    state = nn.Linear(4, 2).state_dict()
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with "
                                           r"shape \(2, 4\) from checkpoint, the shape in "
                                           r"current model is \(2, 3\)"):
        model.load_state_dict(state)
    state = model.state_dict()
    state["extra"] = state.pop("bias")
    with pytest.raises(RuntimeError, match='(?s)Missing key.*"bias".*Unexpected key.*"extra"'):
        model.load_state_dict(state)
