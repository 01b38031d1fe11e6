"""Read the kernels one environment holds, and turn them into kernelspecs for our provisioner.

An environment holds a kernel when it has ``share/jupyter/kernels/*/kernel.json`` (ipykernel,
IRkernel, ...) or has ipykernel installed (a ``python3`` kernel is then made up for it).
Results are cached per prefix until ``conda-meta`` or the kernels folder changes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .provisioner import PROVISIONER_NAME

_log = logging.getLogger(__name__)
_BARE_PYTHONS = frozenset({"python", "python3", "python{}.{}".format(*sys.version_info[:2])})
#: kernel.json files larger than this are not read.
MAX_KERNEL_JSON = 256 * 1024
_Stamp = tuple[int, int]


@dataclass(frozen=True)
class RawKernel:
    """One kernel.json found in an environment (or made up for ipykernel)."""

    dir_name: str
    spec: dict[str, Any]
    resource_dir: str


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def env_stamp(prefix: str) -> _Stamp:
    """Changes whenever the environment's packages or kernels folder change.

    Plain strings and ``os.stat``: this runs for every environment on every listing.
    """
    return (_mtime(prefix + "/conda-meta"), _mtime(prefix + "/share/jupyter/kernels"))


def _has_ipykernel(prefix: Path) -> bool:
    try:
        with os.scandir(prefix / "conda-meta") as entries:
            return any(
                e.name.startswith("ipykernel-") and e.name.endswith(".json") for e in entries
            )
    except OSError:
        return False


def _read_spec(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_KERNEL_JSON:
            raise ValueError("kernel.json too large")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        _log.warning("[jupyter-envs] skipping kernelspec %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("argv"), list) or not data["argv"]:
        _log.warning("[jupyter-envs] skipping kernelspec %s: no argv", path)
        return None
    if not isinstance(data.get("display_name"), str):
        data["display_name"] = path.parent.name
    return data


def scan_env(prefix: Path) -> list[RawKernel]:
    """The kernels in ``prefix``, sorted by folder name."""
    found: list[RawKernel] = []
    kernels = prefix / "share" / "jupyter" / "kernels"
    try:
        dirs = sorted(e.name for e in os.scandir(kernels) if e.is_dir())
    except OSError:
        dirs = []
    for name in dirs:
        spec = _read_spec(kernels / name / "kernel.json")
        if spec is not None:
            found.append(RawKernel(name.lower(), spec, str(kernels / name)))
    if not found and _has_ipykernel(prefix):
        spec = {
            "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "metadata": {"debugger": True},
        }
        found.append(RawKernel("python3", spec, str(kernels / "python3")))
    return found


class EnvScanCache:
    """:func:`scan_env` results per prefix, reused while :func:`env_stamp` is unchanged."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[_Stamp, list[RawKernel]]] = {}

    def get(self, prefix: str) -> tuple[_Stamp, list[RawKernel]]:
        stamp = env_stamp(prefix)
        hit = self._cache.get(prefix)
        if hit is not None and hit[0] == stamp:
            return hit
        entry = (stamp, scan_env(Path(prefix)) if stamp[0] != -1 else [])
        self._cache[prefix] = entry
        return entry

    def retain(self, prefixes: set[str]) -> None:
        """Forget environments that are no longer listed."""
        for prefix in [p for p in self._cache if p not in prefixes]:
            del self._cache[prefix]


def resolve_argv(argv: list[str], prefix: Path) -> list[str]:
    """``argv`` with its program made absolute inside ``prefix`` where it lives there.

    jupyter_client replaces a bare ``python`` with the server's interpreter, so the
    environment's ``bin/python`` must be spelled out.
    """
    if not argv:
        return argv
    program = argv[0]
    if not os.path.isabs(program):
        candidate = prefix / "bin" / program
        if program in _BARE_PYTHONS or os.path.lexists(candidate):
            program = str(candidate)
    return [program, *argv[1:]]


def build_spec(
    raw: RawKernel,
    *,
    prefix: Path,
    env_name: str,
    display_name: str,
    conda_name: str,
    provisioner_config: dict[str, Any],
) -> dict[str, Any]:
    """The kernelspec dict (kernel.json content) for one environment kernel."""
    spec = dict(raw.spec)
    spec["argv"] = resolve_argv([str(a) for a in spec["argv"]], prefix)
    spec["display_name"] = display_name
    metadata = dict(spec.get("metadata") or {})
    config = {
        "prefix": str(prefix),
        "env_name": conda_name,
        **provisioner_config,
    }
    metadata.update(
        conda_env_name=env_name,
        conda_env_path=str(prefix),
        kernel_provisioner={"provisioner_name": PROVISIONER_NAME, "config": config},
    )
    spec["metadata"] = metadata
    return spec
