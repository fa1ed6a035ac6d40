"""``scratchvision.io``: reading weights written by other tools.

``load_torch(path)`` reads a file written by ``torch.save`` (both formats) into a dict of
NumPy arrays, with pickle restricted to the few names such files use (``torch_pickle.py``).
"""
from __future__ import annotations


def load_torch(path, *args, **kwargs):
    """The tensors of a ``torch.save`` file as NumPy arrays, without torch."""
    from scratchvision.io.torch_pickle import load_torch as _load
    return _load(path, *args, **kwargs)


__all__ = ["load_torch"]
