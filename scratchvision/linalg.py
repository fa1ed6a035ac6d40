"""``sv.linalg``: the norms detection code takes from ``torch.linalg``.

Both are ``Tensor.norm`` underneath (one Function, ``ops.Norm``, with its gradient check).
"""
from __future__ import annotations

from scratchvision.autograd.tensor import Tensor


def vector_norm(x: Tensor, ord: float = 2, dim=None, keepdim: bool = False,  # noqa: A002
                *, dtype=None) -> Tensor:
    """The ``ord``-norm of the elements over ``dim`` (all of them by default)."""
    return x.norm(p=ord, dim=dim, keepdim=keepdim, dtype=dtype)


def norm(x: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Vector norms as ``vector_norm``; for a matrix only the Frobenius norm (``ord=None``
    or ``'fro'``), as matrix 2-norms need an SVD that is not implemented here."""
    if ord not in (None, "fro") and (x.ndim == 2 and dim is None or
                                     isinstance(dim, (tuple, list)) and len(dim) == 2):
        raise NotImplementedError(f"linalg.norm: matrix norm ord={ord!r} is not supported "
                                  "(only 'fro')")
    return x.norm(p=2 if ord in (None, "fro") else ord, dim=dim, keepdim=keepdim, dtype=dtype)
