"""Package metadata for scratchvision: detection and segmentation from the kernels up."""
import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"',
                    Path(__file__).with_name("scratchvision").joinpath("__init__.py").read_text()
                    ).group(1)

setup(
    name="scratchvision",
    version=VERSION,
    description="Object detection and segmentation built from the kernels up, "
                "with no deep-learning framework underneath.",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["scratchvision", "scratchvision.*"]),
    install_requires=[
        "numpy>=1.24",
        "numba>=0.59",
        "opencv-python-headless>=4.8",
        "tqdm>=4.60",
        "matplotlib>=3.7",  # the demo's and viz's pictures and plots
        # finds NumPy's OpenBLAS, whose GEMMs kernels/gemm.py runs on Numba's threads
        "threadpoolctl>=3",
    ],
    extras_require={
        # the tests, and ruff for the lint CI runs (rules in pyproject.toml)
        "test": ["pytest>=7", "hypothesis>=6.80", "ruff>=0.6"],
        "bench": ["matplotlib>=3.7"],
        "gpu": ["cupy-cuda12x>=13", "numba-cuda>=0.10"],
        # ONNX import/export: the parser only, imported by scratchvision.onnx when used
        "onnx": ["onnx>=1.14"],
        # data-parallel training (scratchvision.distributed): mpi4py and an MPI runtime from
        # the registry (the mpich wheel: mpiexec in the venv's bin), so no system MPI is
        # needed
        "dist": ["mpi4py>=4.0", "mpich>=4.2"],
        # optional peers for cross-checks and benchmarks; never imported by scratchvision/
        "peers": ["torch", "torchvision", "pycocotools", "onnxruntime"],
    },
    entry_points={"console_scripts": ["scratchvision=scratchvision.cli:main"]},
)
