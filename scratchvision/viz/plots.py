"""matplotlib plots: per-class precision-recall curves and training curves from a log.

matplotlib (Agg backend) is imported inside the functions, so importing scratchvision
never needs it. Each function saves a PNG when ``path`` is given and returns the figure.

Training log format: JSON lines, one object per logged step, e.g.
``{"epoch": 0, "step": 120, "loss": 1.73, "loss_box": 0.41, "lr": 0.01}``; every numeric
key other than the x axis becomes a curve, one panel per key.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np


def _plt():
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def _save(fig, path):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig


def plot_pr_curves(precision: Sequence, recall: Sequence, ap=None,
                   class_names: Sequence[str] | None = None, path=None, title: str = ""):
    """Precision against recall, one curve per class (as ``evaluate_voc`` returns them).

    precision, recall : lists indexed by label of (D,) arrays (None for classes without
        ground truth, which are skipped). ap : optional (C,) AP values for the legend.
    """
    if len(precision) != len(recall):
        raise ValueError(f"precision has {len(precision)} classes, recall {len(recall)}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5))
    for c, (p, r) in enumerate(zip(precision, recall)):
        if p is None or r is None:
            continue
        p, r = np.asarray(p), np.asarray(r)
        if p.shape != r.shape:
            raise ValueError(f"class {c}: precision {p.shape} and recall {r.shape} differ")
        name = class_names[c] if class_names is not None else f"class {c}"
        if ap is not None and np.isfinite(ap[c]):
            name += f" (AP {ap[c]:.3f})"
        # precision envelope (what AP integrates) as a step curve from recall 0
        env = np.maximum.accumulate(p[::-1])[::-1] if p.size else p
        ax.step(np.r_[0.0, r], np.r_[env[:1] if env.size else [0.0], env], where="pre",
                label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or "precision-recall per class")
    if ax.lines:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


def read_log(path) -> list[dict]:
    """Read a JSON-lines training log; a bad line raises ValueError naming file and line."""
    path = Path(path)
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: each line must be a JSON object")
        rows.append(row)
    return rows


def plot_training_curves(log, keys: Sequence[str] | None = None, x: str | None = None,
                         path=None, title: str = "", smooth: int = 1):
    """One panel per logged quantity against ``x`` (``step``, ``iter`` or ``epoch``).

    log : path of a JSON-lines file, or a list of dicts.
    keys : quantities to plot (default: every numeric key but the x axis).
    smooth : moving-average window drawn over the raw curve (1 = off).
    """
    rows = read_log(log) if isinstance(log, (str, Path)) else list(log)
    if not rows:
        raise ValueError("the training log is empty")
    if x is None:
        x = next((k for k in ("step", "iter", "iteration", "epoch") if k in rows[0]), None)
    if keys is None:
        keys = []
        for r in rows:
            for k, v in r.items():
                if k != x and k not in keys and isinstance(v, (int, float)) \
                        and not isinstance(v, bool):
                    keys.append(k)
    if not keys:
        raise ValueError("no numeric quantities to plot in the training log")
    plt = _plt()
    n = len(keys)
    cols = min(n, 3)
    rows_n = -(-n // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    for i, key in enumerate(keys):
        ax = axes[i // cols][i % cols]
        pts = [(r.get(x, j) if x else j, r[key]) for j, r in enumerate(rows) if key in r]
        if not pts:
            raise ValueError(f"key {key!r} never appears in the training log")
        xs, ys = np.array(pts, np.float64).T
        ax.plot(xs, ys, lw=1, alpha=0.5 if smooth > 1 else 1.0)
        if smooth > 1 and len(ys) >= smooth:
            k = np.ones(smooth) / smooth
            ax.plot(xs[smooth - 1:], np.convolve(ys, k, mode="valid"), lw=1.5)
        ax.set_title(key)
        ax.set_xlabel(x or "record")
        ax.grid(alpha=0.3)
        if key.startswith("loss") or key.endswith("loss"):
            if (ys > 0).all():
                ax.set_yscale("log")
    for j in range(n, rows_n * cols):
        axes[j // cols][j % cols].axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
