"""Read one environment from disk: ``conda-meta``, site-packages, kernelspecs, size.

Plain blocking file access (call it from a thread, never on the event loop). Nothing here
raises for a damaged environment: unreadable records and files are skipped.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .condaconfig import CondaConfig, canonical_channel_name
from .model import CondaPackage, PipPackage

#: A conda-meta record larger than this is skipped (a real one is at most a few MiB).
MAX_RECORD_BYTES = 64 * 1024 * 1024
_KERNELS = "share/jupyter/kernels"
KERNELS_DIR = Path(_KERNELS)
_DIST_INFO = ".dist-info"


@dataclass(frozen=True)
class Summary:
    """The cheap facts about an environment, read without opening any record."""

    python_version: str | None
    package_count: int
    has_kernel: bool
    last_modified: float


def mtime_ns(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def stamp(prefix: str | Path) -> tuple[int, int | None, int | None] | None:
    """A value that changes whenever conda (or we) change the environment; None if gone.

    conda-meta's mtime moves when a record is added or removed (every install, update or
    remove replaces records), the history's on every recorded revision, and the kernels
    directory's when a kernelspec is added outside conda.
    """
    meta = f"{prefix}/conda-meta"
    try:
        info = os.stat(meta)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    return (info.st_mtime_ns, mtime_ns(meta + "/history"), mtime_ns(f"{prefix}/{_KERNELS}"))


def _split_record_name(filename: str) -> tuple[str, str, str] | None:
    """``(name, version, build)`` from a ``conda-meta/<name>-<version>-<build>.json`` name."""
    if not filename.endswith(".json"):
        return None
    parts = filename[:-5].rsplit("-", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def kernelspec_names(prefix: Path) -> list[str]:
    """Names of the kernelspecs installed in the environment (``share/jupyter/kernels``)."""
    try:
        entries = os.listdir(prefix / KERNELS_DIR)
    except OSError:
        return []
    return sorted(e for e in entries if (prefix / KERNELS_DIR / e / "kernel.json").is_file())


def read_summary(prefix: Path) -> Summary:
    """Package count, Python version, kernel presence and last change, from file names."""
    meta = prefix / "conda-meta"
    try:
        entries = os.listdir(meta)
    except OSError:
        entries = []
    count = 0
    python: str | None = None
    has_ipykernel = False
    for entry in entries:
        parts = _split_record_name(entry)
        if parts is None:
            continue
        count += 1
        if parts[0] == "python":
            python = parts[1]
        elif parts[0] == "ipykernel":
            has_ipykernel = True
    times = [t for t in (mtime_ns(meta), mtime_ns(meta / "history")) if t is not None]
    return Summary(
        python_version=python,
        package_count=count,
        has_kernel=has_ipykernel or bool(kernelspec_names(prefix)),
        last_modified=max(times) / 1e9 if times else 0.0,
    )


def read_records(prefix: Path) -> list[dict[str, Any]]:
    """The parsed ``conda-meta/*.json`` records, sorted by name; damaged ones skipped."""
    meta = prefix / "conda-meta"
    try:
        entries = sorted(os.listdir(meta))
    except OSError:
        return []
    records: list[dict[str, Any]] = []
    for entry in entries:
        if _split_record_name(entry) is None:
            continue
        path = meta / entry
        try:
            if path.stat().st_size > MAX_RECORD_BYTES:
                continue
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            records.append(data)
    records.sort(key=lambda r: str(r["name"]))
    return records


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_requested(record: Mapping[str, Any]) -> bool:
    """Whether a record itself says the user asked for it (conda / rattler fields)."""
    spec = record.get("requested_spec")
    specs = record.get("requested_specs")
    return bool(isinstance(spec, str) and spec) or bool(isinstance(specs, list) and specs)


def package_from_record(
    record: Mapping[str, Any], *, requested: bool = False, config: CondaConfig | None = None
) -> CondaPackage:
    """A :class:`CondaPackage` from one ``conda-meta`` record (channel as conda shows it)."""
    channel = record.get("channel")
    return CondaPackage(
        name=str(record.get("name", "")),
        version=str(record.get("version", "")),
        build=str(record.get("build", record.get("build_string", ""))),
        build_number=_int(record.get("build_number")) or 0,
        channel=canonical_channel_name(channel, config) if isinstance(channel, str) else "",
        subdir=str(record.get("subdir") or ""),
        url=str(record.get("url") or ""),
        size=_int(record.get("size")),
        requested=requested,
    )


def owned_dist_infos(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Prefix-relative ``*.dist-info`` directories that some conda package installed."""
    owned: set[str] = set()
    for record in records:
        files = record.get("files")
        if not isinstance(files, list):
            continue
        for file in files:
            if isinstance(file, str):
                cut = file.find(_DIST_INFO + "/")
                if cut >= 0:
                    owned.add(file[: cut + len(_DIST_INFO)])
    return owned


def site_packages_dirs(prefix: Path) -> list[Path]:
    """``lib/python*/site-packages`` directories of the environment."""
    try:
        libs = sorted(e for e in os.listdir(prefix / "lib") if e.startswith("python"))
    except OSError:
        return []
    return [p for p in (prefix / "lib" / e / "site-packages" for e in libs) if p.is_dir()]


def _metadata(dist_info: Path) -> tuple[str, str] | None:
    name = version = ""
    try:
        with open(dist_info / "METADATA", encoding="utf-8", errors="replace") as fh:
            for line in itertools.islice(fh, 200):
                if not line.strip():
                    break  # headers end at the first blank line
                key, _, value = line.partition(":")
                if key.lower() == "name" and not name:
                    name = value.strip()
                elif key.lower() == "version" and not version:
                    version = value.strip()
    except OSError:
        pass
    if name and version:
        return name, version
    stem = dist_info.name[: -len(_DIST_INFO)]
    base, _, ver = stem.partition("-")
    return (base, ver) if base and ver else None


def pip_packages(prefix: Path, owned: set[str]) -> list[PipPackage]:
    """Distributions in site-packages (``*.dist-info``) that no conda package owns."""
    found: dict[str, PipPackage] = {}
    for site in site_packages_dirs(prefix):
        rel_site = site.relative_to(prefix).as_posix()
        try:
            entries = sorted(os.listdir(site))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith(_DIST_INFO) or f"{rel_site}/{entry}" in owned:
                continue
            meta = _metadata(site / entry)
            if meta is not None:
                found.setdefault(meta[0].lower(), PipPackage(name=meta[0], version=meta[1]))
    return [found[k] for k in sorted(found)]


def disk_usage(prefix: Path) -> int:
    """Bytes the environment occupies; a file hard-linked several times counts once.

    Symlinks count as themselves and are not followed.
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(prefix)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
                    if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                        key = (info.st_dev, info.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += info.st_blocks * 512 if info.st_blocks else info.st_size
        except OSError:
            continue
    return total
