"""Does an environment need a newer CUDA than the NVIDIA driver supports?

The environment's needs come from ``conda-meta/*.json``: the versions of ``cuda-version``,
``cudatoolkit`` and ``cuda-cudart``, and the lower bounds of ``__cuda`` dependencies. The
driver's side is the CUDA version NVML reports (see :mod:`jupyter_envs.gpu.inventory`).

A ``__cuda >=X.Y`` bound is compared exactly. A CUDA runtime X.Y runs on any driver of the
same major version thanks to CUDA's minor-version compatibility (only features newer than
the driver fail), so for package versions a newer major is an error and a newer minor only
a caution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..envs.reader import read_records
from .inventory import STATIC_TTL, Inventory, read_inventory

CUDA_PACKAGES = ("cuda-version", "cudatoolkit", "cuda-cudart")

CUDA_TOO_NEW = (
    "This environment needs CUDA {need} ({why}), but the NVIDIA driver {driver} supports CUDA "
    "only up to {have}: GPU code will fail. Update the driver, or install packages built for "
    "CUDA {have} or older."
)
CUDA_MINOR_NEWER = (
    "This environment is built for CUDA {need} ({why}); the NVIDIA driver {driver} supports "
    "CUDA {have}. It runs through CUDA minor-version compatibility, but features newer than "
    "CUDA {have} will fail."
)

Version = tuple[int, int]
_BOUND = re.compile(r">=?\s*(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class CudaNeed:
    """One reason the environment needs some CUDA version."""

    version: Version
    why: str
    """``"cuda-version 12.4"`` or ``"torchlet depends on __cuda >=12"``."""
    exact: bool
    """True for a ``__cuda`` bound (compare major.minor), False for a runtime package."""


def _version(text: str) -> Version | None:
    match = re.match(r"(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def _cuda_bound(depend: str) -> Version | None:
    """The lowest ``__cuda`` version a dependency string accepts (None if unbounded)."""
    name, _, constraint = depend.strip().partition(" ")
    if name != "__cuda" or not constraint.strip():
        return None
    branches = []
    for branch in constraint.split("|"):
        bounds = [(int(a), int(b or 0)) for a, b in _BOUND.findall(branch)]
        if not bounds:
            return None  # one branch accepts any version
        branches.append(max(bounds))
    return min(branches) if branches else None


def cuda_needs(prefix: Path) -> list[CudaNeed]:
    """What the environment's installed packages say about the CUDA version they need.

    Blocking (reads ``conda-meta``). Unreadable records are skipped.
    """
    needs: list[CudaNeed] = []
    for data in read_records(prefix):
        name, version = str(data.get("name", "")), str(data.get("version", ""))
        if name in CUDA_PACKAGES:
            parsed = _version(version)
            if parsed is not None:
                needs.append(CudaNeed(parsed, f"{name} {version}", exact=False))
        for depend in data.get("depends") or []:
            bound = _cuda_bound(str(depend))
            if bound is not None:
                needs.append(CudaNeed(bound, f"{name} depends on {depend.strip()}", exact=True))
    return needs


def _fmt(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def compat_message(needs: list[CudaNeed], inventory: Inventory) -> str | None:
    """The user-facing warning for these needs on this driver, or None when all is well.

    None too when there is no driver to compare with (no GPU: the environment runs on CPU).
    """
    have = _version(inventory.cuda_version or "")
    if have is None or not needs:
        return None
    driver = inventory.driver_version or "(unknown version)"
    broken = [n for n in needs if n.version > have and (n.exact or n.version[0] > have[0])]
    if broken:
        worst = max(broken, key=lambda n: n.version)
        return CUDA_TOO_NEW.format(
            need=_fmt(worst.version), why=worst.why, driver=driver, have=_fmt(have)
        )
    newer = [n for n in needs if n.version > have]
    if newer:
        worst = max(newer, key=lambda n: n.version)
        return CUDA_MINOR_NEWER.format(
            need=_fmt(worst.version), why=worst.why, driver=driver, have=_fmt(have)
        )
    return None


def cuda_compat(prefix: Path, inventory: Inventory | None = None) -> str | None:
    """A warning when the environment needs a newer CUDA than the driver supports, else None.

    Blocking (may run the GPU probe, then reads ``conda-meta``): use ``asyncio.to_thread``.
    Without a driver there is nothing to compare with, and no record is read.
    """
    if inventory is None:
        inventory = read_inventory(max_age=STATIC_TTL)  # the driver's facts only
    if inventory.cuda_version is None:
        return None
    return compat_message(cuda_needs(Path(prefix)), inventory)
