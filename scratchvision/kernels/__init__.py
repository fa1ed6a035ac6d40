"""Pure array kernels: ndarrays in, ndarrays out, no Tensor.

One folder per op family. In each: ``reference.py`` (the textbook loops, the test oracle),
``cpu.py`` (Numba, parallel), ``cuda.py`` (numba.cuda), and the family's ``__init__.py``
that validates input and dispatches by array type or ``impl=``.
"""
