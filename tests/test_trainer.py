"""The shared Trainer on a tiny linear regression whose ``loss`` returns two terms (and
draws dropout from the global generator, so exact resume has random numbers to restore):
the loss falls, the log carries each term, resume after ``stop_after`` equals an
uninterrupted run bit for bit, mismatched settings are refused, a non-finite loss stops
with a clear error, ``best.npz`` follows the metric, and ``clip_grad_norm_`` and one SGD
step with clipping equal a hand computation."""
import json
import math

import numpy as np
import pytest

import scratchvision as sv
from scratchvision import functional as F
from scratchvision import nn
from scratchvision.trainer import Trainer

TRUE_W, TRUE_B = np.array([1.0, -2.0, 0.5], np.float32), 0.3
_rng = np.random.default_rng(0)
X = _rng.standard_normal((64, 3)).astype(np.float32)
Y = (X @ TRUE_W + TRUE_B).astype(np.float32)


class Regression(nn.Module):
    """y = w.x + b; loss terms: mean squared error and a small L1 penalty on w."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.dropout = dropout

    def forward(self, x):
        return self.linear(F.dropout(x, self.dropout, training=self.training)).reshape(-1)

    def loss(self, x, y, weight: float = 1.0):
        return {"loss_mse": F.mse_loss(self(x), y) * weight,
                "l1": self.linear.weight.abs().sum() * 1e-3}


def make_model(dropout: float = 0.1) -> Regression:
    sv.manual_seed(0)
    return Regression(dropout)


def batches(epoch: int, batch_size: int = 16):
    """Shuffled by a generator seeded with (seed, epoch): a pure function of the epoch."""
    order = np.random.default_rng([7, epoch]).permutation(len(X))
    for step in range(len(X) // batch_size):
        idx = order[step * batch_size:(step + 1) * batch_size]
        yield sv.tensor(X[idx]), sv.tensor(Y[idx]), {"weight": 1.0}


def trainer(out, model=None, epochs: int = 4, **kw) -> Trainer:
    kw.setdefault("quiet", True)
    return Trainer(model or make_model(), batches, 4, epochs, out, lr=0.1, **kw)


def read_log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_loss_falls_and_log_has_each_term(tmp_path):
    history = trainer(tmp_path, epochs=10).fit()
    assert history[-1]["loss"] < history[0]["loss"] / 3, [h["loss"] for h in history]
    log = read_log(tmp_path)
    assert log == history
    for record in log:
        assert {"epoch", "loss", "losses", "loss_mse", "loss_l1", "lr", "seconds"} <= set(record)
        assert len(record["losses"]) == 4
        # the total is the sum of the terms; the per-term means sum to the mean total
        assert record["loss"] == pytest.approx(record["loss_mse"] + record["loss_l1"],
                                               rel=1e-5)
    assert [r["epoch"] for r in log] == list(range(1, 11))
    assert log[-1]["lr"] == pytest.approx(0.1 * 0.01)   # cosine down to lr * min_lr_ratio
    assert all(a["seconds"] <= b["seconds"] for a, b in zip(log, log[1:]))
    assert (tmp_path / "model.npz").exists() and (tmp_path / "checkpoint.npz").exists()


def test_resume_after_stop_equals_uninterrupted_run(tmp_path):
    straight = trainer(tmp_path / "a").fit()
    first = trainer(tmp_path / "b").fit(stop_after=2)          # interrupted ...
    assert [h["epoch"] for h in first] == [1, 2]
    resumed = trainer(tmp_path / "b").fit(resume=True)          # ... and resumed: fresh objects
    losses = [[loss for h in run for loss in h["losses"]] for run in (straight, resumed)]
    assert losses[0] == losses[1]
    a, b = nn.load(tmp_path / "a" / "model.npz"), nn.load(tmp_path / "b" / "model.npz")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    log = read_log(tmp_path / "b")
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert log[2]["seconds"] >= log[1]["seconds"]               # the clock continues


def test_resume_refuses_other_settings(tmp_path):
    trainer(tmp_path, settings={"seed": 0, "data": "x"}).fit(stop_after=1)
    with pytest.raises(ValueError, match="seed") as info:
        trainer(tmp_path, settings={"seed": 1, "data": "x"}).fit(resume=True)
    assert "data" not in str(info.value)
    with pytest.raises(ValueError, match="lr"):                 # the trainer's own choices too
        Trainer(make_model(), batches, 4, 4, tmp_path, lr=0.05, quiet=True,
                settings={"seed": 0, "data": "x"}).fit(resume=True)
    assert len(trainer(tmp_path, settings={"seed": 0, "data": "x"}).fit(resume=True)) == 4


def test_resume_without_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*checkpoint.npz"):
        trainer(tmp_path / "none").fit(resume=True)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # backward of inf
def test_non_finite_loss_raises(tmp_path):
    def bad_batches(epoch):
        for step, (x, y, extras) in enumerate(batches(epoch)):
            if step == 2:
                y = sv.tensor(np.full(y.shape, np.inf, np.float32))
            yield x, y, extras

    t = Trainer(make_model(), bad_batches, 4, 2, tmp_path, quiet=True)
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 3.*loss_mse inf.*l1"):
        t.fit()
    assert not (tmp_path / "checkpoint.npz").exists()


def test_bad_loss_and_items_are_clear(tmp_path):
    class NoDict(Regression):
        def loss(self, x, y, weight=1.0):
            return F.mse_loss(self(x), y)

    with pytest.raises(TypeError, match="dict of scalar Tensors"):
        Trainer(NoDict(), batches, 4, 1, tmp_path, quiet=True).fit()
    with pytest.raises(TypeError, match=r"\(images, targets\)"):
        Trainer(make_model(), lambda e: [(X,)] * 4, 4, 1, tmp_path, quiet=True).fit()
    with pytest.raises(ValueError, match="gave 2 items"):
        Trainer(make_model(), lambda e: list(batches(e))[:2], 4, 1, tmp_path, quiet=True).fit()


def test_best_weights_follow_the_metric(tmp_path):
    scores, snapshots = iter([0.1, 0.5, 0.3]), []

    def evaluate(model):
        snapshots.append(model.state_dict())
        return {"val_score": next(scores), "val_list": [1.0, 2.0]}

    history = trainer(tmp_path, epochs=3, evaluate=evaluate, metric="val_score").fit()
    assert [h["val_score"] for h in history] == [0.1, 0.5, 0.3]
    assert [h["best_epoch"] for h in history] == [1, 2, 2]
    assert [h["best_val_score"] for h in history] == [0.1, 0.5, 0.5]
    assert history[0]["val_list"] == [1.0, 2.0]
    best = nn.load(tmp_path / "best.npz")
    for k, v in snapshots[1].items():                           # epoch 2's weights
        assert np.array_equal(best[k], v), k
    assert not np.array_equal(best["linear.weight"], snapshots[2]["linear.weight"])


def test_eval_every_evaluates_every_kth_and_the_last_epoch(tmp_path):
    calls = []

    def evaluate(model):
        calls.append(1)
        return {"val_score": float(len(calls))}

    history = trainer(tmp_path, epochs=5, evaluate=evaluate, metric="val_score",
                      eval_every=2).fit()
    assert [h.get("val_score") for h in history] == [None, 1.0, None, 2.0, 3.0]
    assert [h.get("best_epoch") for h in history] == [None, 2, None, 4, 5]
    with pytest.raises(ValueError, match="eval_every must be an int >= 1, got 0"):
        trainer(tmp_path, epochs=1, eval_every=0)


def test_clip_grad_norm_by_hand():
    a, b = nn.Parameter(np.zeros(2, np.float32)), nn.Parameter(np.zeros(1, np.float32))
    c = nn.Parameter(np.zeros(1, np.float32))                   # no gradient: skipped
    a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([-4.0], np.float32)
    total = nn.clip_grad_norm_([a, b, c], max_norm=1.0)
    assert total == pytest.approx(5.0)                          # sqrt(9 + 16)
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [3 * coef, 0, -4 * coef],
                               rtol=1e-6)
    assert c.grad is None
    # below the limit nothing changes, bit for bit
    a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([-4.0], np.float32)
    assert nn.clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(5.0)
    assert a.grad.tolist() == [3.0, 0.0] and b.grad.tolist() == [-4.0]
    # inf-norm: the largest |g| = 4, so every gradient is scaled by 2 / 4
    assert nn.clip_grad_norm_([a, b], max_norm=2.0, norm_type=math.inf) == pytest.approx(4.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [1.5, 0, -2.0], rtol=1e-6)
    # 1-norm |1.5| + |-2| = 3.5; a single tensor is accepted as parameters
    assert nn.clip_grad_norm_(a, max_norm=100.0, norm_type=1) == pytest.approx(1.5)
    assert nn.clip_grad_norm_([a, b], max_norm=100.0, norm_type=1) == pytest.approx(3.5)
    b.grad = np.array([np.nan], np.float32)
    with pytest.raises(RuntimeError, match="nan"):
        nn.clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)


def test_sgd_step_with_clipping_by_hand(tmp_path):
    """One epoch of one step, plain SGD at a constant rate, clipped: w1 = w0 - lr * clip(g)."""
    model = make_model(dropout=0.0)
    w0 = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    x, y = X[:16], Y[:16]
    # the hand computation: mse = mean(r^2), r = x w + b - y; l1 = 1e-3 sum |w|
    r = x @ w0["linear.weight"][0] + w0["linear.bias"][0] - y
    g_w = 2 * (r[:, None] * x).mean(0) + 1e-3 * np.sign(w0["linear.weight"][0])
    g_b = 2 * r.mean()
    norm = math.sqrt(float((g_w ** 2).sum() + g_b ** 2))
    max_norm = norm / 3                                         # so the clip acts
    coef = max_norm / (norm + 1e-6)
    lr = 0.1
    Trainer(model, lambda e: [(sv.tensor(x), sv.tensor(y))], 1, 1, tmp_path, optimizer="sgd",
            lr=lr, momentum=0.0, weight_decay=0.0, warmup_iters=0, min_lr_ratio=1.0,
            clip_grad_norm=max_norm, quiet=True).fit()
    w1 = model.state_dict()
    np.testing.assert_allclose(w1["linear.weight"][0], w0["linear.weight"][0] - lr * coef * g_w,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w1["linear.bias"][0], w0["linear.bias"][0] - lr * coef * g_b,
                               rtol=1e-5, atol=1e-6)


def test_segmenter_contract_crops_labels_and_predicts_label_maps():
    """``Segmenter.loss`` centre-crops the labels to a valid-padding U-Net's smaller output
    and is the cross-entropy of ``forward``; ``predict`` gives int64 maps of that size in
    eval mode and leaves the model in the mode it found it."""
    from scratchvision.nets import UNet
    from scratchvision.nets.segmenter import center_crop
    sv.manual_seed(0)
    model = UNet(3, base=2, depth=2, padding="valid")
    rng = np.random.default_rng(0)
    x = sv.tensor(rng.standard_normal((2, 3, 44, 44)).astype(np.float32))
    labels = rng.integers(0, 3, (2, 44, 44))
    terms = model.loss(x, labels)
    assert list(terms) == ["loss_ce"]
    model.eval()                                   # batch norm on running stats: repeatable
    with sv.no_grad():
        expected = F.cross_entropy(model(x), np.ascontiguousarray(center_crop(labels, 4, 4)))
        got = model.loss(x, labels)["loss_ce"]
    assert got.item() == expected.item()
    model.train()
    pred = model.predict(x.numpy())
    assert pred.shape == (2, 4, 4) and pred.dtype == np.int64 and model.training
    model.eval()
    with sv.no_grad():
        assert np.array_equal(pred, model(x).argmax(dim=1).numpy())
