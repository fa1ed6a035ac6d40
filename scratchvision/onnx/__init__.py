"""``scratchvision.onnx``: run ONNX models through scratchvision's kernels, and export ours.

``convert(path_or_model)`` builds an ``nn.Module`` from an ONNX graph (``convert.py``:
the graph walk; ``onnx_ops.py``: one function per ONNX operator, each mapping the
operator's attributes onto ``scratchvision.functional``). ``export(module, example, path)``
writes one of our models as an ONNX file (``export.py``: it records the autograd graph of
one forward pass and maps each Function to an ONNX node).

The ``onnx`` package is an optional extra (``pip install -e '.[onnx]'``); it is imported
only when one of these functions is called.
"""
from __future__ import annotations

# Imported eagerly: a submodule named like a function would otherwise replace the function
# on the package the first time it is imported. Neither file imports onnx at module level.
from scratchvision.onnx.convert import convert
from scratchvision.onnx.export import export

__all__ = ["convert", "export"]
