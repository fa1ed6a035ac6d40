"""Hand-worked checks of the torch semantics that ordinary code leans on (no torch needed):
``.grad`` as a Tensor, version counters and in-place safety, augmented assignment,
torch's type promotion, and the torch-style factories and namespace.

Each "regression" test is a case that once gave a silently wrong result.
"""
import numpy as np
import pytest

import scratchvision as sv


def test_grad_is_a_tensor_with_tensor_methods():
    w = sv.tensor([3.0, 4.0], requires_grad=True)
    (w * w).sum().backward()                       # d/dw sum(w^2) = 2w = [6, 8]
    assert isinstance(w.grad, sv.Tensor)
    assert w.grad.norm().item() == pytest.approx(10.0)
    w.grad.zero_()
    assert w.grad.tolist() == [0.0, 0.0]
    with pytest.raises(RuntimeError, match="different size"):
        w.grad = sv.zeros(3)
    w.grad = np.ones(2, np.float32)                # an array is wrapped, as a convenience
    assert isinstance(w.grad, sv.Tensor) and w.grad.tolist() == [1.0, 1.0]


def test_grad_accumulates_across_backward_calls():
    x = sv.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()                      # 3 + 2x
    assert x.grad.tolist() == [5.0, 7.0]


def test_regression_modified_after_save_raises():
    # was: silently 2 * ones instead of 2 e^{2a}
    a = sv.tensor([0.5, 1.0], requires_grad=True)
    b = a.exp()
    c = (b * b).sum()
    b.fill_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.backward()


def test_modifying_an_operand_that_was_not_saved_is_allowed():
    # h * 3 needs only the 3 for h's gradient: changing h afterwards is fine (as torch)
    x = sv.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h * 3
    h += 1
    (y + h).sum().backward()                      # d/dx (6x + 2x + 1) = 8
    assert x.grad.tolist() == [8.0, 8.0]


def test_views_share_the_version_counter():
    a = sv.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = a * 1
    s = (b * b).sum()                              # saves b
    row = b[0]                                     # a view of b's memory
    with sv.no_grad():
        row.mul_(10)
    assert b._version == row._version == 1
    with pytest.raises(RuntimeError, match="inplace"):
        s.backward()


def test_regression_augmented_assignment_keeps_the_graph():
    # was: h became its own parent and x.grad stayed None
    x = sv.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h += 1
    h.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_in_place_writes_through_to_views():
    t = sv.zeros(2, 3)
    view = t[:, 1]
    view += 5
    t[0, 0] = 7
    assert t.tolist() == [[7.0, 5.0, 0.0], [0.0, 5.0, 0.0]]


def test_in_place_rebases_history_but_earlier_consumers_keep_theirs():
    x = sv.tensor([1.0, 2.0], requires_grad=True)
    w = sv.tensor([3.0, 5.0], requires_grad=True)
    h = x * 2
    y = h + 1                                      # consumes the old h
    h *= w                                         # h = 2xw
    (y + h).sum().backward()                       # d/dx = 2 + 2w, d/dw = 2x
    assert x.grad.tolist() == [8.0, 12.0]
    assert w.grad.tolist() == [2.0, 4.0]


def test_regression_no_grad_manual_update():
    # was: raised "leaf tensor ... in-place"
    w = sv.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with sv.no_grad():
        w -= 0.1 * w.grad                          # w - 0.1 * 2w = 0.8 w
    assert np.allclose(w.numpy(), [0.8, 1.6]) and w.requires_grad and w.is_leaf


def test_leaf_that_requires_grad_refuses_in_place_under_grad_mode():
    w = sv.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w += 1
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.mul_(2)


def test_setitem_in_the_graph():
    x = sv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = sv.tensor(10.0, requires_grad=True)
    h = x * 2
    h[1] = v * 3                                   # h = [2x0, 3v, 2x2]
    h.sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 2.0]
    assert v.grad.item() == 3.0


def test_int_in_place_with_float_result_is_refused():
    i = sv.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i += 0.5
    i += 2                                         # int stays int
    assert i.dtype == sv.int64 and i.tolist() == [3, 4]


@pytest.mark.parametrize("make, expected", [
    (lambda: sv.tensor([1, 2]) + 0.5, "float32"),                       # int + float number
    (lambda: sv.tensor([1, 2]) / sv.tensor([2, 2]), "float32"),         # int / int
    (lambda: sv.tensor([1.0]) * sv.tensor(2.0, dtype=sv.float64), "float32"),  # 0-d loses
    (lambda: sv.tensor([1, 2]) * sv.tensor(2.0, dtype=sv.float64), "float64"),  # category
    (lambda: sv.tensor([1.0], dtype=sv.float64) + sv.tensor([1.0]), "float64"),
    (lambda: sv.tensor([1, 2]) + 2, "int64"),
    (lambda: sv.tensor([1, 2], dtype=sv.int32) + 2, "int32"),
    (lambda: sv.tensor([1, 2], dtype=sv.uint8) + sv.tensor([1], dtype=sv.int8), "int16"),
    (lambda: sv.tensor([True]) + sv.tensor([True]), "bool"),
    (lambda: sv.tensor([True]) + 1, "int64"),
    (lambda: sv.tensor([1, 2]) ** 0.5, "float32"),
    (lambda: sv.tensor([1, 2]).exp(), "float32"),
    (lambda: sv.full((3,), 4), "int64"),
    (lambda: sv.full((3,), True), "bool"),
    (lambda: sv.full((3,), 4.0), "float32"),
    (lambda: sv.where(sv.tensor([True, False]), 1.0, 0.0), "float32"),
    (lambda: sv.where(sv.tensor([True, False]), sv.tensor([1, 2]), 0.5), "float32"),
    (lambda: sv.tensor([1, 5]).clamp(min=sv.tensor([2.0, 2.0])), "float32"),
    (lambda: sv.tensor([3, 4]) // 2, "int64"),
    (lambda: sv.tensor([1.0, 2.0]) > 1, "bool"),
])
def test_type_promotion_follows_torch(make, expected):
    assert str(make().dtype) == expected


def test_clamp_with_tensor_bounds():
    x = sv.tensor([1.0, 5.0, 3.0], requires_grad=True)
    lo, hi = sv.tensor([2.0, 2.0, 2.0], requires_grad=True), sv.tensor(4.0, requires_grad=True)
    y = x.clamp(min=lo, max=hi)
    assert y.tolist() == [2.0, 4.0, 3.0] and y.dtype == sv.float32
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]      # x passes only where lo <= x <= hi
    assert lo.grad.tolist() == [1.0, 0.0, 0.0] and hi.grad.item() == 1.0


def test_floor_division_remainder_and_logic_follow_python_signs():
    a = sv.tensor([7, -7])
    assert (a // 2).tolist() == [3, -4] and (a % 3).tolist() == [1, 2]
    assert (sv.tensor([-7.5]) % 2).tolist() == [0.5]
    m = sv.tensor([True, False])
    assert (~m).tolist() == [False, True] and (m & ~m).tolist() == [False, False]
    assert (m | ~m).tolist() == [True, True] and abs(sv.tensor([-2])).tolist() == [2]
    with pytest.raises(TypeError, match="bitwise not"):
        ~sv.tensor([1.0])


def test_dtypes_devices_and_namespace():
    t = sv.ones(2)
    assert t.dtype == sv.float32 and sv.float32 == t.dtype and sv.long == sv.int64
    assert t.long().dtype == sv.int64 and t.int().dtype == sv.int32 and t.bool().dtype == sv.bool
    assert t.type() == "scratchvision.FloatTensor" and t.type(sv.float64).dtype == sv.float64
    assert t.device == "cpu" and t.device.type == "cpu" and sv.device("cuda:1").index == 1
    assert sv.cuda.is_available() is False or sv.gpu_available()
    assert sv.is_tensor(t) and not sv.is_tensor(np.ones(2)) and sv.numel(sv.zeros(2, 3)) == 6
    assert t.new_zeros(3).dtype == sv.float32 and t.new_full((2,), 7).tolist() == [7.0, 7.0]
    x = sv.tensor([3.0, 1.0, 2.0])
    assert sv.max(x).item() == 3.0 and sv.max(x, 0).indices.item() == 0
    assert sv.maximum(x, sv.tensor(2.0)).tolist() == [3.0, 2.0, 2.0]
    assert x.max(sv.tensor([0.0, 5.0, 0.0])).tolist() == [3.0, 5.0, 2.0]


def test_factories():
    assert sv.eye(2, 3).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert sv.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    sv.manual_seed(0)
    r = sv.randint(0, 5, (100,))
    assert r.dtype == sv.int64 and 0 <= r.min().item() and r.max().item() < 5
    assert sorted(sv.randperm(6).tolist()) == list(range(6))
    a = np.arange(3.0)
    shared = sv.from_numpy(a)
    a[0] = 9
    assert shared[0].item() == 9 and shared.dtype == sv.float64
    assert sv.as_tensor(a).data is a
    gy, gx = sv.meshgrid(sv.arange(2), sv.arange(3), indexing="ij")
    assert gy.tolist() == [[0, 0, 0], [1, 1, 1]] and gx.tolist() == [[0, 1, 2], [0, 1, 2]]
    gx, gy = sv.meshgrid(sv.arange(3), sv.arange(2), indexing="xy")
    assert gx.tolist() == [[0, 1, 2], [0, 1, 2]] and gy.tolist() == [[0, 0, 0], [1, 1, 1]]


def test_grad_mode_switches():
    x = sv.ones(2, requires_grad=True)
    with sv.inference_mode():
        assert not (x * 2).requires_grad
    with sv.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert sv.is_grad_enabled()
    sv.set_grad_enabled(False)
    try:
        assert not sv.is_grad_enabled()
    finally:
        sv.set_grad_enabled(True)

    @sv.no_grad
    def bare(t):
        return t * 2
    assert not bare(x).requires_grad


def test_einsum_and_norm_by_hand():
    a = sv.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert sv.einsum("ij,jk->ik", a, a).tolist() == [[7.0, 10.0], [15.0, 22.0]]
    with pytest.raises(ValueError, match="repeated subscripts"):
        sv.einsum("ii->i", a)                      # a diagonal: not supported here
    assert sv.einsum("ij", a).tolist() == a.tolist() and sv.einsum("ij->", a).item() == 10.0
    z = sv.zeros(3, requires_grad=True)
    z.norm().backward()                            # subgradient 0 at the origin, not nan
    assert z.grad.tolist() == [0.0, 0.0, 0.0]
    assert sv.tensor([3.0, 4.0]).norm().item() == 5.0
    assert sv.tensor([3.0, -4.0]).norm(p=1).item() == 7.0


def test_clip_grad_norm_returns_a_tensor():
    w = sv.tensor([3.0, 4.0], requires_grad=True)
    w.grad = sv.tensor([3.0, 4.0])
    total = sv.nn.clip_grad_norm_([w], max_norm=1.0)
    assert isinstance(total, sv.Tensor) and float(total) == pytest.approx(5.0)
    assert w.grad.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_augmented_assignment_through_an_index_rebases_the_base():
    x = sv.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = x * 2
    h[0] *= 5                                      # Python: t = h[0]; t *= 5; h[0] = t
    assert h.tolist() == [[10.0, 20.0], [6.0, 8.0]]
    h.sum().backward()
    assert x.grad.tolist() == [[10.0, 10.0], [2.0, 2.0]]


def test_a_base_left_stale_by_a_view_refuses_to_be_used():
    x = sv.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = x * 2
    v = h[0]
    v.mul_(3)                                      # h's memory changed, its graph did not
    with pytest.raises(RuntimeError, match="modified in place through a view"):
        h * 1
    v.sum().backward()                             # the view's own graph is right
    assert x.grad.tolist() == [[6.0, 6.0], [0.0, 0.0]]
    w = sv.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        w[0].mul_(w[1])
