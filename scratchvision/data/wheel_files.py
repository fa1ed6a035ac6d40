"""Real models and data from the wheels that ship them, never from a model hub.

``wheel_file("facenet-pytorch", "2.6.0", "facenet_pytorch/data/pnet.pt")`` runs
``pip download --no-deps facenet-pytorch==2.6.0`` into the cache once, unzips that one
member next to the wheel and returns its path; later calls return the cached file
without touching the network. The cache is ``$SCRATCHVISION_CACHE/wheels`` (default
``~/.cache/scratchvision/wheels``). When the registry cannot be reached (or pip fails)
``WheelUnavailable`` says why, so tests can ``pytest.skip`` with the reason.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path


class WheelUnavailable(RuntimeError):
    """The wheel could not be downloaded (no network, no such version, pip failed)."""


def cache_dir() -> Path:
    root = os.environ.get("SCRATCHVISION_CACHE") or Path.home() / ".cache" / "scratchvision"
    return Path(root) / "wheels"


def wheel_path(name: str, version: str, timeout: float = 300.0) -> Path:
    """The downloaded wheel ``name==version`` (fetched with pip on first use)."""
    folder = cache_dir() / f"{name}-{version}"
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
           str(folder), f"{name}=={version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WheelUnavailable(f"pip download {name}=={version} failed: {e}") from None
    found = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise WheelUnavailable(f"pip download {name}=={version} failed: {tail[0]}")
    return found[0]


def wheel_file(name: str, version: str, member: str, timeout: float = 300.0) -> Path:
    """The file ``member`` (a path inside the wheel) of ``name==version``, unzipped once."""
    wheel = wheel_path(name, version, timeout)
    target = wheel.parent / "files" / member
    if target.is_file():
        return target
    with zipfile.ZipFile(wheel) as z:
        try:
            data = z.read(member)
        except KeyError:
            names = [n for n in z.namelist() if Path(n).name == Path(member).name]
            raise FileNotFoundError(f"{wheel.name} has no member {member!r}"
                                    + (f" (same name at {names})" if names else "")) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)      # atomic: a reader never sees half a file
    return target
