"""Benchmarks: one module per kernel family, run with ``python -m benchmarks [family ...]``."""
