"""The one training loop every model uses: a loss dict in, checkpoints, exact resume, a log.

A task (``train_seg.py``, a detection task) builds the data, the model and the metric and
hands them to ``Trainer``; the trainer owns everything between them.

The contract
------------
- ``model.loss(images, targets, **extras) -> dict[str, Tensor]``: the scalar loss terms
  (detectron2's loss dict). The trainer minimises their sum, taken in the dict's order
  (with one term the sum *is* that tensor, so no bit changes), and logs each term.
- ``batches(epoch) -> iterable`` of per-step items ``(images, targets)`` or
  ``(images, targets, extras)``, already in the form and on the device the model wants
  (the trainer moves no data). It must be a pure function of the epoch - the task seeds
  its own generator with ``(seed, epoch)`` for shuffling and augmentation - so that a
  resumed run sees the same batches. The trainer takes the first ``steps_per_epoch``
  items (an endless iterable is fine; one that runs out sooner is an error).
- ``evaluate(model) -> dict`` (optional): metrics named by the task (``"val_miou"``),
  floats or lists of floats, logged as they are.

One epoch
---------
``model.train()``; for each step: ``terms = model.loss(...)``, ``total = sum(terms)``,
``zero_grad``, ``total.backward()``, a finite check of the terms (``FloatingPointError``
naming the epoch, the step and every term's value, before the optimiser can apply a
non-finite update), optional clipping of the global gradient norm
(``nn.clip_grad_norm_``), ``opt.step()``, ``sched.step()``. The learning rate warms up
linearly from ``0.1 lr`` over ``warmup_iters`` iterations (default ``min(steps_per_epoch,
total // 10 + 1)``) and then follows a cosine to ``lr * min_lr_ratio`` at the last
iteration, stepped per iteration. A tqdm bar shows the running mean of the last 20 totals.
Then ``evaluate(model)``, one JSON line appended to ``out/log.jsonl``::

    {"epoch": 3, "loss": mean total, "losses": [total of each step], "loss_ce": mean term,
     ...metrics..., "lr": lr after the epoch, "seconds": cumulative wall time,
     "best_epoch": .., "best_<metric>": ..}    # the last two with ``metric`` set

(a term named ``"loss_x"`` is logged under that name, any other name ``n`` as
``"loss_n"``), a printed summary line, ``out/best.npz`` when ``metrics[metric]`` improved
(higher is better) and the checkpoint. At the end of ``fit``: ``out/model.npz``.

Checkpoint format
-----------------
``out/checkpoint.npz`` is one ``scratchvision.save`` checkpoint (the pickle-free ``.npz``
with a JSON index of ``scratchvision/serialization.py``; ``scratchvision.load`` reads it
back), written to a temporary file and renamed, so a crash never leaves half a checkpoint.
It holds one dict::

    {"format": "scratchvision.trainer", "version": 2,
     "epoch": epochs done, "step": optimiser steps done,
     "model": model.state_dict(),              # every parameter and buffer
     "optimizer": optimizer.state_dict(),      # torch's layout: per-parameter state (Adam's
                                               # step, exp_avg, exp_avg_sq; SGD's
                                               # momentum_buffer) and the param groups
     "scheduler": scheduler.state_dict(),
     "rng": {"scratchvision": bit-generator state of
             scratchvision.autograd.factories.default_generator},  # dropout, random init
     "history": every log record so far, "best": {"value", "epoch"} or None,
     "settings": the task's dict, "trainer": this trainer's own hyper-parameters}

(the trainer itself draws no numbers from NumPy's global generator, so it is not saved).
Checkpoints of the previous format (a flat ``.npz`` with a ``meta`` array) are refused
with a message saying so. ``best.npz`` and ``model.npz`` are ``nn.save`` weight files:
``nn.load`` reads them.

Data-parallel training
----------------------
Under ``mpiexec`` (``scratchvision.distributed.init()`` called first, more than one
rank) every rank builds the same trainer; ``batches(epoch)`` must then yield this
rank's shard of each global batch (``distributed.shard``). ``fit`` wraps the model in
``DistributedDataParallel`` (gradients averaged across ranks in buckets of
``bucket_cap_mb`` during backward), so each rank takes the same optimiser step. The
logged loss terms are averaged over the ranks (the global batch's, when the loss is a
mean over images); only rank 0 evaluates, prints and writes files, and its log record
(metrics, best epoch) is broadcast, so ``fit`` returns the same history on every rank.
The checkpoint keeps every rank's random state (``rng["ranks"]``), so resuming under
the same number of ranks continues each rank's dropout stream too.

Exact resume
------------
``fit(resume=True)`` first compares the checkpoint's ``settings`` and ``trainer``
hyper-parameters with the current ones and refuses (``ValueError`` listing the keys
that differ) when they disagree; then it restores the weights, the optimiser, the
scheduler, the global random state, the history and the best value, rewrites
``log.jsonl`` from the history (so an epoch logged but not checkpointed before a crash
is not logged twice) and continues at the next epoch. The batches are a function of the
epoch and every other random number comes from the restored generator, so the loss
curve and the final weights equal those of an uninterrupted run, bit for bit.
``fit(stop_after=N)`` stops after N epochs of this run, as if interrupted.

The refusal lists each difference as ``name: checkpoint X, now Y``. ``fit(resume=True,
force=True)`` (``--resume --force``) continues anyway and prints that list as a warning:
the weights, the optimiser's state, the random state and the history are restored, but
the new hyper-parameters hold - each optimiser group takes the new lr / weight decay, and
the new learning-rate schedule (e.g. over more ``epochs``) continues at the checkpoint's
step. Such a run is no longer bit-identical to any uninterrupted one. A checkpoint whose
weights or optimiser state do not fit the model (another architecture) is refused with a
``ValueError`` naming the file, as are files that are not checkpoints at all
(``serialization.CheckpointError``).
"""
from __future__ import annotations

import json
import math
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from scratchvision import distributed, nn
from scratchvision.autograd import Tensor
from scratchvision.autograd.factories import default_generator
from scratchvision.cli import positive_float
from scratchvision.serialization import PlainNpzError, load, save

CHECKPOINT, LOG, BEST, FINAL = "checkpoint.npz", "log.jsonl", "best.npz", "model.npz"
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "scratchvision.trainer", 2


class Trainer:
    """Train ``model`` on ``batches`` for ``epochs`` epochs, writing to the folder ``out``.

    Parameters
    ----------
    model : an ``nn.Module`` with ``loss(images, targets, **extras) -> dict[str, Tensor]``,
        already on its device
    batches : ``batches(epoch) -> iterable`` of ``(images, targets[, extras])``, a pure
        function of the epoch
    steps_per_epoch : items taken from ``batches(epoch)`` each epoch (the schedule's unit)
    epochs : epochs of the whole run
    out : folder for ``log.jsonl``, ``checkpoint.npz``, ``best.npz``, ``model.npz``
    optimizer : 'adam' (``nn.optim.Adam(lr, weight_decay)``) or 'sgd'
        (``nn.optim.SGD(lr, momentum, weight_decay)``)
    lr, weight_decay, momentum : the optimiser's
    warmup_iters : iterations of linear warm-up from ``0.1 lr`` (None:
        ``min(steps_per_epoch, total // 10 + 1)``)
    min_lr_ratio : the cosine ends at ``lr * min_lr_ratio``
    clip_grad_norm : clip the global gradient 2-norm to this before each step (None: off)
    evaluate : ``evaluate(model) -> dict`` of metrics, after every epoch (None: none)
    eval_every : evaluate after every ``eval_every``-th epoch and after the last one only
        (1: every epoch); the records of the epochs between carry no metrics, and
        ``best.npz`` is chosen among the evaluated epochs
    metric : a key of ``evaluate``'s dict; higher is better; its best epoch's weights go to
        ``best.npz``
    quiet : no progress bar and no printed lines
    desc : prefix of the progress bar and of the printed lines (e.g. the model's name)
    settings : JSON-able dict of the task's choices (data, model, seed, ...), stored in the
        checkpoint; resuming with different settings is refused
    params : the parameters to optimise (default: the model's that require grad)
    bucket_cap_mb : data-parallel gradient bucket size in MiB (under ``mpiexec`` only)
    """

    def __init__(self, model, batches: Callable[[int], Iterable], steps_per_epoch: int,
                 epochs: int, out, *, optimizer: str = "adam", lr: float = 3e-3,
                 weight_decay: float = 1e-4, momentum: float = 0.9,
                 warmup_iters: int | None = None, min_lr_ratio: float = 0.01,
                 clip_grad_norm: float | None = None, evaluate=None, metric: str | None = None,
                 quiet: bool = False, desc: str = "", settings: dict | None = None,
                 params=None, bucket_cap_mb: float = 25.0, eval_every: int = 1) -> None:
        if not callable(getattr(model, "loss", None)):
            raise TypeError(f"Trainer: the model ({type(model).__name__}) needs a "
                            "loss(images, targets, **extras) -> dict[str, Tensor] method")
        if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
            raise ValueError(f"Trainer: steps_per_epoch must be an int >= 1, "
                             f"got {steps_per_epoch!r}")
        if int(epochs) != epochs or epochs < 0:
            raise ValueError(f"Trainer: epochs must be an int >= 0, got {epochs!r}")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"Trainer: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if metric is not None and evaluate is None:
            raise ValueError(f"Trainer: metric={metric!r} needs an evaluate function")
        if int(eval_every) != eval_every or eval_every < 1:
            raise ValueError(f"Trainer: eval_every must be an int >= 1, got {eval_every!r}")
        self.eval_every = int(eval_every)
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"Trainer: clip_grad_norm must be > 0, got {clip_grad_norm!r}")
        self.model, self.batches, self.evaluate = model, batches, evaluate
        self.steps_per_epoch, self.epochs = int(steps_per_epoch), int(epochs)
        self.out = Path(out)
        # data-parallel: rank 0 is the one that evaluates, prints and writes
        self.world = distributed.world_size()
        self.is_main = distributed.rank() == 0
        self.bucket_cap_mb = bucket_cap_mb
        self.metric, self.quiet, self.desc = metric, quiet or not self.is_main, desc
        self.clip_grad_norm = clip_grad_norm
        # as JSON will give it back from the checkpoint (tuples -> lists, Paths -> str)
        self.settings = json.loads(json.dumps(_jsonable(settings or {}), default=str))
        self.params = ([p for p in model.parameters() if p.requires_grad] if params is None
                       else list(params))
        if optimizer == "adam":
            self.optimizer = nn.optim.Adam(self.params, lr=lr, weight_decay=weight_decay)
        else:
            self.optimizer = nn.optim.SGD(self.params, lr=lr, momentum=momentum,
                                          weight_decay=weight_decay)
        total = self.steps_per_epoch * self.epochs
        warm = min(self.steps_per_epoch, total // 10 + 1) if warmup_iters is None else \
            int(warmup_iters)
        if warm < 0:
            raise ValueError(f"Trainer: warmup_iters must be >= 0, got {warmup_iters!r}")
        sched = nn.optim.lr_scheduler
        self.scheduler = sched.SequentialLR(
            self.optimizer, [sched.LinearLR(self.optimizer, 0.1, 1.0, warm),
                             sched.CosineAnnealingLR(self.optimizer, max(total - warm, 1),
                                                     lr * min_lr_ratio)],
            milestones=[warm])
        # the trainer's own choices: a resumed run must make the same ones
        self.hyper = _jsonable(dict(optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                                    momentum=momentum, warmup_iters=warm,
                                    min_lr_ratio=min_lr_ratio, clip_grad_norm=clip_grad_norm,
                                    steps_per_epoch=self.steps_per_epoch, epochs=self.epochs,
                                    metric=metric))
        self.history: list[dict] = []
        self.best: dict | None = None          # {"value": ..., "epoch": ...}
        self.epoch = 0                         # epochs done

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False, stop_after: int | None = None,
            force: bool = False) -> list[dict]:
        """Train (or continue, with ``resume``) and return the history, one dict per epoch.

        ``stop_after``: stop after that many epochs of this call, as if interrupted.
        ``force``: resume even if the checkpoint's settings differ from these (module
        docstring, "Exact resume"), printing the differences as a warning.
        """
        if stop_after is not None and (int(stop_after) != stop_after or stop_after < 0):
            raise ValueError(f"Trainer.fit: stop_after must be an int >= 0, got {stop_after!r}")
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint(self.out / CHECKPOINT, force=force)
        else:
            self.epoch, self.history, self.best = 0, [], None
        self._ddp = None
        if self.world > 1:          # after the resume: rank 0's weights go to every rank
            self._ddp = distributed.DistributedDataParallel(self.model, self.bucket_cap_mb)
        log = open(self.out / LOG, "w") if self.is_main else None   # noqa: SIM115
        try:
            for record in self.history:          # the history is the truth: rewrite it
                _write(log, json.dumps(record) + "\n")
            t0 = time.perf_counter() - (self.history[-1]["seconds"] if self.history else 0.0)
            stop = self.epochs if stop_after is None else min(self.epochs,
                                                              self.epoch + int(stop_after))
            while self.epoch < stop:
                record = self._epoch(self.epoch)
                record["seconds"] = time.perf_counter() - t0
                if self.world > 1:               # rank 0's metrics, best and clock
                    record, self.best = distributed.broadcast_object((record, self.best))
                self.epoch += 1
                self.history.append(record)
                _write(log, json.dumps(record) + "\n")
                if not self.quiet:
                    print(self._summary(record), flush=True)
                self.save_checkpoint(self.out / CHECKPOINT)
        finally:
            if log is not None:
                log.close()
            if self._ddp is not None:
                self._ddp.remove_hooks()
        if self.is_main:            # atomic, as every write of scratchvision.save
            nn.save(self.model, self.out / FINAL)
        return self.history

    def _epoch(self, epoch: int) -> dict:
        """Train one epoch, evaluate, keep the best weights; the epoch's log record."""
        from tqdm import tqdm  # noqa: PLC0415
        self.model.train()
        totals: list[float] = []
        terms: dict[str, list[float]] = {}
        bar = tqdm(islice(self.batches(epoch), self.steps_per_epoch),
                   total=self.steps_per_epoch, disable=self.quiet, mininterval=1.0,
                   desc=f"{self.desc + ' ' if self.desc else ''}epoch {epoch + 1}/{self.epochs}")
        for step, item in enumerate(bar):
            images, targets, extras = _unpack(item, epoch, step)
            total, values = self._step(images, targets, extras, epoch, step)
            totals.append(total)
            for name, value in values.items():
                terms.setdefault(name, []).append(value)
            bar.set_postfix(loss=f"{np.mean(totals[-20:]):.4f}")
        bar.close()
        if len(totals) < self.steps_per_epoch:
            raise ValueError(f"Trainer: batches({epoch}) gave {len(totals)} items, "
                             f"steps_per_epoch is {self.steps_per_epoch}")
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": float(np.mean(totals)),
                                  "losses": totals}
        for name, values in terms.items():
            record[_log_name(name)] = float(np.mean(values))
        evaluated = self.evaluate is not None and (
            (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs)
        if evaluated and self.is_main:
            metrics = _jsonable(dict(self.evaluate(self.model)))
            clash = sorted(set(metrics) & (set(record) | {"lr", "seconds", "best_epoch"}))
            if clash:
                raise ValueError(f"Trainer: evaluate() returned keys {clash} that the log "
                                 "uses itself; name them differently (e.g. 'val_...')")
            record.update(metrics)
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        if self.metric is not None and self.is_main and evaluated:
            self._keep_best(record, epoch)
        return record

    def _step(self, images, targets, extras: dict, epoch: int, step: int):
        """One optimisation step; the total and each term's value (Python floats)."""
        losses = (self._ddp or self.model).loss(images, targets, **extras)
        if not isinstance(losses, dict) or not losses or not all(
                isinstance(v, Tensor) and v.numel() == 1 for v in losses.values()):
            raise TypeError(f"Trainer: model.loss must return a non-empty dict of scalar "
                            f"Tensors, got {_describe(losses)}")
        total = None
        for value in losses.values():          # the dict's order; one term: that very tensor
            total = value if total is None else total + value
        self.optimizer.zero_grad()
        total.backward()
        values = {name: float(v.item()) for name, v in losses.items()}
        total_value = values[next(iter(values))] if len(values) == 1 else float(total.item())
        if self.world > 1:     # the global batch's terms: the mean of the ranks' (and every
            both = np.array([total_value, *values.values()])     # rank decides alike below)
            distributed.all_reduce(both, op="mean")
            total_value, values = float(both[0]), dict(zip(values, both[1:].tolist()))
        if not math.isfinite(total_value):
            raise FloatingPointError(
                f"Trainer: the loss is not finite at epoch {epoch + 1}, step {step + 1}: "
                f"total {total_value}, " + ", ".join(f"{k} {v}" for k, v in values.items()))
        if self.clip_grad_norm is not None:
            nn.clip_grad_norm_(self.params, self.clip_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return total_value, values

    def _keep_best(self, record: dict, epoch: int) -> None:
        if self.metric not in record:
            raise KeyError(f"Trainer: metric {self.metric!r} is not among the keys evaluate() "
                           f"returned: {sorted(k for k in record if k != 'losses')}")
        value = float(record[self.metric])
        if not math.isnan(value) and (self.best is None or value > self.best["value"]):
            self.best = {"value": value, "epoch": epoch + 1}
            nn.save(self.model, self.out / BEST)
        if self.best is not None:
            record["best_epoch"] = self.best["epoch"]
            record[f"best_{self.metric}"] = self.best["value"]

    def _summary(self, record: dict) -> str:
        """'unet epoch 3/10: loss 0.1234  val_miou 0.5678  (12 s)'."""
        parts = [f"loss {record['loss']:.4f}"]
        skip = {"epoch", "loss", "losses", "lr", "seconds", "best_epoch"}
        term_keys = [k for k in record if k.startswith("loss_")]
        if len(term_keys) > 1:
            parts += [f"{k} {record[k]:.4f}" for k in term_keys]
        parts += [f"{k} {v:.4f}" for k, v in record.items()
                  if k not in skip and k not in term_keys and isinstance(v, (int, float))]
        parts.append(f"lr {record['lr']:.3g}")
        head = f"{self.desc + ' ' if self.desc else ''}epoch {record['epoch']}/{self.epochs}"
        return f"{head}: " + "  ".join(parts) + f"  ({record['seconds']:.0f} s)"

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path) -> None:
        """Model, optimiser, scheduler, random state, epoch, history, best, settings
        (under ``mpiexec``: rank 0 writes, with every rank's random state)."""
        rng = {"scratchvision": default_generator().bit_generator.state}
        if self.world > 1:
            rng["ranks"] = distributed.all_gather_object(rng["scratchvision"])
        if not self.is_main:
            return
        save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
              "epoch": self.epoch, "step": self.scheduler.last_epoch,
              "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
              "scheduler": self.scheduler.state_dict(), "rng": rng,
              "history": self.history, "best": self.best,
              "settings": self.settings, "trainer": self.hyper}, Path(path))

    def load_checkpoint(self, path, force: bool = False) -> None:
        """Restore what ``save_checkpoint`` wrote, after checking the settings agree
        (``force``: continue with these settings anyway, warning about each difference).

        Every refusal is a ``ValueError`` (``FileNotFoundError`` for no file) naming
        ``path`` and the cause."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"resume: no checkpoint at {path}")
        try:
            ckpt = load(path)      # not a checkpoint at all: CheckpointError naming it
        except PlainNpzError:
            raise ValueError(f"resume: {path} is a flat .npz of arrays: a checkpoint of an "
                             "earlier version of the trainer (with a 'meta' array), which "
                             "this version no longer reads, or a weights file; train afresh "
                             "without resume (nn.load reads the weights in it)") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or \
                ckpt.get("version") != CHECKPOINT_VERSION:
            found = (ckpt.get("format"), ckpt.get("version")) if isinstance(ckpt, dict) \
                else type(ckpt).__name__
            raise ValueError(f"resume: {path} is not a trainer checkpoint of format "
                             f"{CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION} (found "
                             f"{found!r})")
        missing = sorted(_CHECKPOINT_KEYS - set(ckpt))
        if missing:
            raise ValueError(f"resume: the checkpoint at {path} lacks {', '.join(missing)}")
        differ = _differences(ckpt["settings"], self.settings) | _differences(
            ckpt["trainer"], self.hyper)
        listed = "; ".join(_explain(k, ckpt, self) for k in sorted(differ))
        if differ and not force:
            raise ValueError(f"resume: the checkpoint at {path} was written with other "
                             f"settings ({listed}); resume with the checkpoint's settings, "
                             "or force it (--force) to continue with these")
        if differ:
            print(f"warning: resuming {path} with other settings than the checkpoint's "
                  f"({listed})", file=sys.stderr, flush=True)
        try:
            self.model.load_state_dict(ckpt["model"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise ValueError(f"resume: the weights in {path} do not fit this model "
                             f"({_first_line(e)})") from None
        # with other hyper-parameters (forced) the optimiser keeps its state but takes the
        # new ones, and the new schedule continues at the checkpoint's step
        fresh_groups = [{k: v for k, v in g.items() if k != "params"}
                        for g in self.optimizer.param_groups]
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise ValueError(f"resume: the optimiser state in {path} is not this model's "
                             f"({_first_line(e)})") from None
        if differ:
            for group, fresh in zip(self.optimizer.param_groups, fresh_groups):
                group.update(fresh)
            for _ in range(int(ckpt.get("step", 0))):
                self.scheduler.step()
        else:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        ranks = ckpt["rng"].get("ranks")
        default_generator().bit_generator.state = (
            ranks[distributed.rank()] if ranks is not None and len(ranks) == self.world
            else ckpt["rng"]["scratchvision"])
        self.epoch, self.history, self.best = ckpt["epoch"], ckpt["history"], ckpt["best"]


# ------------------------------------------------------------------ weights of a run
# the settings a weights file must agree with, and their values when a record omits them
_RECORD_DEFAULTS = {"data": "shapes"}


def training_record(weights) -> dict | None:
    """The settings of the run that wrote ``weights`` (a ``best.npz`` / ``model.npz`` in
    its run folder): from ``result.json`` beside it, else from ``checkpoint.npz``'s
    ``settings``; None when neither is there or readable."""
    folder = Path(weights).parent
    try:
        result = json.loads((folder / "result.json").read_text())
        return dict(result.get("settings") or {}, **{k: result[k] for k in
                                                     ("model", "size", "data") if k in result})
    except (OSError, ValueError, AttributeError):
        pass
    try:
        ckpt = load(folder / CHECKPOINT)
        return dict(ckpt["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_weights(model, weights, flags: dict[str, Any]) -> None:
    """Load the weights file ``weights`` (``nn.load``) into ``model``, which was built with
    the command-line settings ``flags`` (e.g. ``{"model": "unet", "size": "tiny", "data":
    "shapes"}``), or raise one ``ValueError`` (``FileNotFoundError``) naming the file.

    The run's record (``training_record``) is checked first, so a wrong ``--model`` /
    ``--size`` is told as such ("weights runs/x/best.npz were trained with --model unet
    --size tiny, not --model fcn8s") rather than as the shape error it would cause."""
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"--weights {path}: no such file")
    record = training_record(path)
    if record is not None:
        trained = {k: record.get(k, _RECORD_DEFAULTS.get(k)) for k in flags}
        wrong = [k for k in flags
                 if (k in record or k in _RECORD_DEFAULTS) and trained[k] != flags[k]]
        if wrong:
            raise ValueError(f"weights {path} were trained with {_flags(trained)}, not "
                             f"{_flags({k: flags[k] for k in wrong})}")
    state = nn.load(path)           # a file that is no weights file: CheckpointError
    try:
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as e:
        raise ValueError(f"weights {path} do not fit {_flags(flags)}: "
                         f"{_first_line(e)}") from None


def _flags(settings: dict) -> str:
    """``--model unet --size tiny`` (settings of value None are left out)."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items()
                    if v is not None)


def data_parallel(batch_size: int, device: str = "cpu") -> tuple[int, int]:
    """``(rank, world_size)`` of a training command: under ``mpiexec`` with N > 1 ranks
    the process group is set up here (on ``cuda``, each rank takes the GPU of its local
    rank), and the global ``--batch-size`` must split into N equal shards (``ValueError``
    with the numbers otherwise); outside it ``(0, 1)``."""
    rank, world = distributed.init_if_launched()
    if batch_size % world:
        raise ValueError(f"--batch-size {batch_size} is the global batch: it must be a "
                         f"multiple of the {world} ranks (each takes batch / {world})")
    if world > 1 and str(device).startswith("cuda"):
        distributed.use_local_gpu()
    return rank, world


def add_data_parallel_arguments(p) -> None:
    """``--sync-bn`` and ``--bucket-cap-mb``, for the commands that train under mpiexec."""
    p.add_argument("--sync-bn", action="store_true",
                   help="under mpiexec: batch norm with the statistics of the whole global "
                        "batch (SyncBatchNorm), so N ranks train what one process trains")
    p.add_argument("--bucket-cap-mb", type=positive_float, default=25.0,
                   help="under mpiexec: the largest gradient all-reduce bucket in MiB "
                        "(as torch's)")


def _write(log, line: str) -> None:
    if log is not None:
        log.write(line)
        log.flush()


def _unpack(item, epoch: int, step: int):
    """(images, targets, extras) from a batches() item of two or three entries."""
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        extras = item[2] if len(item) == 3 else {}
        if isinstance(extras, dict):
            return item[0], item[1], extras
    raise TypeError(f"Trainer: batches({epoch}) item {step} must be (images, targets) or "
                    f"(images, targets, extras_dict), got {_describe(item)}")


def _log_name(term: str) -> str:
    return term if term.startswith("loss_") else f"loss_{term}"


def _jsonable(obj):
    """Plain JSON types: numpy scalars -> Python numbers, arrays and tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "get") and hasattr(obj, "shape"):      # a CuPy array or scalar
        return _jsonable(obj.get())
    return obj


_CHECKPOINT_KEYS = {"epoch", "model", "optimizer", "scheduler", "rng", "history", "best",
                    "settings", "trainer"}


def _differences(saved: dict | None, current: dict) -> set[str]:
    saved = saved or {}
    return {k for k in set(saved) | set(current) if saved.get(k, _MISSING) != current.get(
        k, _MISSING)}


def _explain(key: str, meta: dict, trainer: Trainer) -> str:
    for saved, now in ((meta.get("settings") or {}, trainer.settings),
                       (meta.get("trainer") or {}, trainer.hyper)):
        if key in saved or key in now:
            if saved.get(key, _MISSING) != now.get(key, _MISSING):
                return f"{key}: checkpoint {saved.get(key, '<absent>')!r}, now " \
                       f"{now.get(key, '<absent>')!r}"
    return key


_MISSING = object()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _describe(obj) -> str:
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, Tensor):
        return f"Tensor of shape {obj.shape}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)}"
    return type(obj).__name__
