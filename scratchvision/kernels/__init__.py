"""Pure array kernels: ndarrays in, ndarrays out, no Tensor.

One folder per op family (batch_norm, boxes, conv, felzenszwalb, indexing, interpolate,
nms, pool, roi_align, roi_pool, selective_search), and ``gemm.py``, the matrix products the
CPU kernels run on Numba's threads. In each: ``reference.py`` (the textbook loops, the
test oracle), ``cpu.py`` (Numba, parallel), ``cuda.py`` (numba.cuda) where the family runs
on a GPU, modules of further algorithms where a family compares several (conv's
``im2col.py``, ``direct.py``, ``winograd.py``; indexing's ``vectorized.py``), and the
family's ``__init__.py``, which validates input (``scratchvision.validation``) and
dispatches through its ``KernelFamily`` (``versions.py``: the ``impl=`` names every public
op accepts).
"""
