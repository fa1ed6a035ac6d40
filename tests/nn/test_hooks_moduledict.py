"""Forward hooks, ModuleDict, and state_dict / load_state_dict as torch: call order and
return values of hooks, ModuleDict's dict behaviour and errors, Tensor-valued state
dicts, _IncompatibleKeys and torch's error messages."""
import json
import warnings

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import nn


class Scale(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x, shift=0.0):
        return x * self.k + shift


# ------------------------------------------------------------------ hooks
def test_forward_pre_hook_replaces_args():
    m = Scale(2.0)
    seen = []

    def pre(module, args):
        seen.append((module, args))
        return args[0] + 1.0          # not a tuple: becomes (x + 1,)

    h = m.register_forward_pre_hook(pre)
    x = sv.tensor([1.0, 2.0])
    assert m(x).tolist() == [4.0, 6.0]          # (x + 1) * 2
    assert seen[0][0] is m and seen[0][1][0] is x and len(seen[0][1]) == 1
    h.remove()
    assert m(x).tolist() == [2.0, 4.0]
    h.remove()                                  # a second remove does nothing
    m.register_forward_pre_hook(lambda mod, args: None)   # None keeps the args
    assert m(x).tolist() == [2.0, 4.0]


def test_forward_hook_replaces_output_and_sees_args():
    m = Scale(3.0)
    calls = []

    def hook(module, args, output):
        calls.append((args, output.tolist()))
        return output * 10

    handle = m.register_forward_hook(hook)
    x = sv.tensor([1.0])
    assert m(x, shift=1.0).tolist() == [40.0]    # (3x + 1) * 10
    assert calls[0][0] == (x,) and calls[0][1] == [4.0]   # kwargs are not in args
    handle.remove()
    assert m(x).tolist() == [3.0]
    with m.register_forward_hook(lambda mod, a, out: out + 1):   # a handle is a context
        assert m(x).tolist() == [4.0]
    assert m(x).tolist() == [3.0]
    assert not m._forward_hooks and not m._forward_pre_hooks  # back on the fast path


def test_hook_order_prepend_and_kwargs():
    m = Scale(1.0)
    log = []
    m.register_forward_hook(lambda mod, a, o: log.append("f1"))
    m.register_forward_hook(lambda mod, a, o: log.append("f0"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a: log.append("p1"))
    m.register_forward_pre_hook(lambda mod, a: log.append("p0"), prepend=True)

    def pre_kw(mod, args, kwargs):
        log.append(("pk", dict(kwargs)))
        return args, {"shift": 5.0}

    def post_kw(mod, args, kwargs, out):
        log.append(("fk", dict(kwargs)))
        return out * 2

    m.register_forward_pre_hook(pre_kw, with_kwargs=True)
    m.register_forward_hook(post_kw, with_kwargs=True)
    assert m(sv.tensor([1.0]), shift=1.0).tolist() == [12.0]     # (1 + 5) * 2
    assert log == ["p0", "p1", ("pk", {"shift": 1.0}), "f0", "f1", ("fk", {"shift": 5.0})]
    m.register_forward_pre_hook(lambda mod, a, k: 3, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"\(new_args, new_kwargs\)"):
        m(sv.tensor([1.0]))


def test_hook_order_matches_torch():
    torch = pytest.importorskip("torch")
    logs = []
    for lib, mod in ((torch, torch.nn.Identity()), (sv, nn.Identity())):
        log = []
        mod.register_forward_pre_hook(lambda m, a, log=log: log.append("p1") or (a[0] + 1,))
        mod.register_forward_pre_hook(lambda m, a, log=log: log.append("p0"), prepend=True)
        mod.register_forward_hook(lambda m, a, o, log=log: log.append(("f1", o.tolist())))
        h = mod.register_forward_hook(lambda m, a, o, log=log: o * 3, prepend=True)
        log.append(mod(lib.tensor([1.0])).tolist())
        h.remove()
        log.append(mod(lib.tensor([1.0])).tolist())
        logs.append(log)
    assert logs[0] == logs[1]


def test_always_call_hook_runs_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m, log = Boom(), []
    m.register_forward_hook(lambda mod, a, o: log.append("plain"))
    m.register_forward_hook(lambda mod, a, o: log.append(("always", o)), always_call=True)
    with pytest.raises(ValueError, match="boom"):
        m(sv.tensor([1.0]))
    assert log == [("always", None)]
    m.register_forward_hook(lambda mod, a, o: 1 / 0, always_call=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="boom"):    # the original error, not the hook's
            m(sv.tensor([1.0]))
    assert any("always_call=True" in str(x.message) for x in w)


def test_hooks_on_submodules_and_gradients():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    feats = {}
    net[1].register_forward_hook(lambda m, a, o: feats.setdefault("relu", o))
    net[2].register_forward_pre_hook(lambda m, a: (a[0] * 0.5,))
    x = sv.randn(5, 3)
    out = net(x)
    assert feats["relu"].shape == (5, 4)
    np.testing.assert_allclose(out.numpy(), net[2].forward(feats["relu"] * 0.5).numpy(),
                               rtol=1e-6)
    out.sum().backward()                           # gradients flow through hook results
    assert net[0].weight.grad is not None


def test_hook_handles_do_not_keep_the_module_alive():
    import gc
    import weakref
    m = Scale(1.0)
    h = m.register_forward_hook(lambda *a: None)
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None
    h.remove()                                     # harmless after the module is gone


# ------------------------------------------------------------------ ModuleDict
def test_module_dict_registration_and_dict_api():
    d = nn.ModuleDict({"conv": nn.Linear(2, 3), "act": nn.ReLU()})
    assert len(d) == 2 and "conv" in d and "pool" not in d
    assert list(d.keys()) == ["conv", "act"] and list(d) == ["conv", "act"]
    assert [type(v).__name__ for v in d.values()] == ["Linear", "ReLU"]
    assert [k for k, _ in d.items()] == ["conv", "act"]
    d["head"] = nn.Linear(3, 1)
    assert d["head"] is d.head and list(d) == ["conv", "act", "head"]
    assert [n for n, _ in d.named_parameters()] == ["conv.weight", "conv.bias", "head.weight",
                                                    "head.bias"]
    d.update([("extra", nn.Identity()), ["act", nn.Sigmoid()]])   # replace keeps the slot
    assert list(d) == ["conv", "act", "head", "extra"] and isinstance(d["act"], nn.Sigmoid)
    d.update(nn.ModuleDict({"z": nn.Identity()}))
    popped = d.pop("z")
    assert isinstance(popped, nn.Identity) and "z" not in d
    del d["extra"]
    assert list(d) == ["conv", "act", "head"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"cls": nn.Linear(2, 3), "box": nn.Linear(2, 4)})

        def forward(self, x):
            return {k: h(x) for k, h in self.heads.items()}

    net = Net()
    assert list(net.state_dict()) == ["heads.cls.weight", "heads.cls.bias",
                                      "heads.box.weight", "heads.box.bias"]
    assert {k: v.shape for k, v in net(sv.randn(5, 2)).items()} == {"cls": (5, 3),
                                                                   "box": (5, 4)}
    d.clear()
    assert len(d) == 0 and list(d.parameters()) == []
    with pytest.raises(NotImplementedError):
        d(sv.randn(1))


def test_module_dict_matches_torch_names_and_repr():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleDict({"b": nn.Linear(2, 2), "a": nn.ReLU()})
    theirs = torch.nn.ModuleDict({"b": torch.nn.Linear(2, 2), "a": torch.nn.ReLU()})
    assert list(ours) == list(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_module_dict_errors():
    d = nn.ModuleDict()
    with pytest.raises(TypeError, match="iterable of key/value pairs"):
        d.update(3)
    with pytest.raises(TypeError, match="element #0 should be Iterable"):
        d.update([3])
    with pytest.raises(ValueError, match="element #1 has length 3; 2 is required"):
        d.update([("a", nn.ReLU()), ("b", nn.ReLU(), 1)])
    with pytest.raises(KeyError, match="contain"):
        d["a.b"] = nn.ReLU()
    with pytest.raises(KeyError, match="attribute 'keys' already exists"):
        d["keys"] = nn.ReLU()
    with pytest.raises(KeyError, match="empty"):
        d[""] = nn.ReLU()
    with pytest.raises(TypeError, match="not a Module subclass"):
        d["x"] = 3
    with pytest.raises(TypeError, match="should be a string"):
        d[1] = nn.ReLU()
    with pytest.raises(KeyError):
        d["missing"]


# ------------------------------------------------------------------ state_dict
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def test_state_dict_values_are_detached_cpu_copies():
    net = Net()
    state = net.state_dict()
    assert list(state) == ["fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean",
                           "bn.running_var", "bn.num_batches_tracked"]
    assert all(isinstance(v, sv.Tensor) and not v.requires_grad for v in state.values())
    assert state["bn.num_batches_tracked"].dtype == np.int64
    before = np.asarray(state["fc.weight"]).copy()
    net.fc.weight.data += 1.0                      # the optimiser updates in place
    assert np.array_equal(np.asarray(state["fc.weight"]), before)   # the copy keeps its value
    assert np.array_equal(state["fc.weight"].numpy(), before)
    kept = net.state_dict(keep_vars=True)
    assert kept["fc.weight"] is net.fc.weight
    assert list(net.state_dict(prefix="model.")) == ["model." + k for k in state]
    dest = {}
    assert net.state_dict(destination=dest) is dest and list(dest) == list(state)


def test_load_state_dict_accepts_tensors_and_arrays_and_returns_incompatible_keys():
    a, b = Net(), Net()
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for k, v in a.state_dict().items():
        assert np.array_equal(np.asarray(b.state_dict()[k]), np.asarray(v)), k
    arrays = {k: np.asarray(v) * 2 for k, v in a.state_dict().items()}
    b.load_state_dict(arrays)
    np.testing.assert_array_equal(b.fc.weight.numpy(), a.fc.weight.numpy() * 2)
    assert b.fc.weight.dtype == np.float32
    partial = {"fc.weight": np.zeros((2, 3)), "other": np.ones(1)}     # float64 -> float32
    missing, unexpected = b.load_state_dict(partial, strict=False)
    assert unexpected == ["other"] and "fc.bias" in missing and "fc.weight" not in missing
    assert b.fc.weight.dtype == np.float32 and not b.fc.weight.numpy().any()
    assert b.load_state_dict(partial, strict=False)._fields == ("missing_keys",
                                                                "unexpected_keys")


def test_load_state_dict_errors_match_torch_messages():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(3, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2))
    bad_ours = {"0.weight": np.zeros((2, 3), np.float32), "extra": np.zeros(1)}
    bad_theirs = {"0.weight": torch.zeros(2, 3), "extra": torch.zeros(1)}
    with pytest.raises(RuntimeError) as e_ours:
        ours.load_state_dict(bad_ours)
    with pytest.raises(RuntimeError) as e_theirs:
        theirs.load_state_dict(bad_theirs)
    assert str(e_ours.value) == str(e_theirs.value)
    r_ours = ours.load_state_dict(bad_ours, strict=False)
    r_theirs = theirs.load_state_dict(bad_theirs, strict=False)
    assert tuple(r_ours) == tuple(r_theirs) and repr(r_ours) == repr(r_theirs)
    # a shape mismatch raises even when not strict, and nothing was copied
    w, b = ours[0].weight.numpy().copy(), ours[0].bias.numpy().copy()
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: copying a param with "
                                           r"shape \(3, 3\) from checkpoint, the shape in "
                                           r"current model is \(2, 3\)"):
        ours.load_state_dict({"0.weight": np.zeros((3, 3)), "0.bias": np.ones(2)}, strict=False)
    assert np.array_equal(ours[0].weight.numpy(), w) and np.array_equal(ours[0].bias.numpy(), b)


def test_save_load_with_tensor_state_dict(tmp_path):
    a, b = Net(), Net()
    a.bn.running_mean.data[:] = [1.5, -2.0]
    nn.save(a.state_dict(), tmp_path / "w.npz")    # a dict of Tensors
    b.load_state_dict(nn.load(tmp_path / "w.npz"))
    for k, v in a.state_dict().items():
        got = b.state_dict()[k]
        assert got.dtype == v.dtype and np.array_equal(np.asarray(got), np.asarray(v)), k
    json.dumps({k: np.asarray(v).tolist() for k, v in a.state_dict().items()})
