"""Loss modules wrapping ``scratchvision.functional``'s losses (torch.nn names), and the
distance modules CosineSimilarity and PairwiseDistance.

As torch's ``_WeightedLoss``, BCELoss and NLLLoss keep ``weight`` as a buffer (moved by
``.to()``, saved in the state_dict when given). The deprecated ``size_average`` /
``reduce`` arguments are not accepted: pass ``reduction`` by keyword.

``reduction``, ``label_smoothing``, ``beta``/``delta`` and ``eps`` are checked when the loss is
built (torch checks ``reduction`` only at the first call), so a typo fails at once with the
loss's name in the message.
"""
from __future__ import annotations

from scratchvision import functional as F
from scratchvision.functional.loss import KL_REDUCTIONS
from scratchvision.nn.module import Module
from scratchvision.validation import check_int, check_number, check_probability

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(loss: str, reduction, allowed: tuple = _REDUCTIONS) -> str:
    """``reduction`` if it is one of ``allowed``, else a ValueError naming the loss."""
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"{loss}: {reduction!r} is not a valid value for reduction; use one "
                         f"of {allowed}")
    return reduction


class CrossEntropyLoss(Module):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.weight = weight
        self.ignore_index = check_int(ignore_index, "CrossEntropyLoss: ignore_index")
        self.reduction = _reduction("CrossEntropyLoss", reduction)
        self.label_smoothing = check_probability(label_smoothing,
                                                 "CrossEntropyLoss: label_smoothing")

    def forward(self, input, target):  # noqa: A002
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class BCEWithLogitsLoss(Module):
    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None) -> None:
        super().__init__()
        self.weight, self.pos_weight = weight, pos_weight
        self.reduction = _reduction("BCEWithLogitsLoss", reduction)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)


class MSELoss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _reduction(type(self).__name__, reduction)

    def forward(self, input, target):  # noqa: A002
        return F.mse_loss(input, target, self.reduction)


class SmoothL1Loss(Module):
    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__()
        self.reduction = _reduction("SmoothL1Loss", reduction)
        self.beta = check_number(beta, "SmoothL1Loss: beta", minimum=0.0)

    def forward(self, input, target):  # noqa: A002
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class L1Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _reduction(type(self).__name__, reduction)

    def forward(self, input, target):  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(Module):
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__()
        self.reduction = _reduction("HuberLoss", reduction)
        self.delta = check_number(delta, "HuberLoss: delta", minimum=0.0, strict_minimum=True)

    def forward(self, input, target):  # noqa: A002
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(Module):
    """Binary cross-entropy of probabilities (see ``F.binary_cross_entropy``)."""

    def __init__(self, weight=None, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.reduction = _reduction(type(self).__name__, reduction)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class KLDivLoss(Module):
    """KL divergence of log-probability inputs (see ``F.kl_div``)."""

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__()
        self.reduction = _reduction("KLDivLoss", reduction, KL_REDUCTIONS)
        self.log_target = log_target

    def forward(self, input, target):  # noqa: A002
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities (see ``F.nll_loss``)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = check_int(ignore_index, "NLLLoss: ignore_index")
        self.reduction = _reduction("NLLLoss", reduction)

    def forward(self, input, target):  # noqa: A002
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CosineSimilarity(Module):
    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = check_int(dim, "CosineSimilarity: dim"), eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
