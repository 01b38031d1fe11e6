"""Package records for the CLI backend: lock files, ``@EXPLICIT`` lists, restoring a prefix.

Every conda-family tool installs an ``@EXPLICIT`` file (``create --file``) without solving, so
lock files and clones reach the tools in that form. The file formats themselves live in
:mod:`jupyter_envs.envs.envfile`. Everything here but :func:`restore` blocks (disk, rattler):
call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import rattler

from ...errors import BackendError, NotFound
from .. import envfile
from ..model import Plan, Reporter
from .rattler_support import install_records, read_prefix_records, to_package


def current_platform() -> str:
    """This machine's conda subdir, e.g. ``linux-64``."""
    return str(rattler.Subdir.current())


def prefix_records(prefix: Path) -> list[rattler.PrefixRecord]:
    """The record of every package installed in ``prefix``; NotFound for a non-environment."""
    if not (prefix / "conda-meta").is_dir():
        raise NotFound(f"{prefix} is not a conda environment (no conda-meta directory).")
    return read_prefix_records(prefix)


def lock_records(lock_text: str) -> list[rattler.RepoDataRecord]:
    """The records a lock file pins for this machine's platform (InvalidRequest if none)."""
    return envfile.read_lock(lock_text, current_platform())


def explicit_text(records: Sequence[rattler.RepoDataRecord]) -> str:
    """An ``@EXPLICIT`` list of ``records`` for this platform."""
    return envfile.write_explicit(records, current_platform())


def lock_from_prefix(prefix: Path) -> str:
    """``prefix`` as a rattler lock file (one environment, this platform)."""
    return envfile.write_lock(prefix_records(prefix), current_platform())


def plan_from_records(records: Sequence[rattler.RepoDataRecord]) -> Plan:
    """A plan that installs exactly ``records`` into an empty prefix."""
    return Plan(install=sorted((to_package(r) for r in records), key=lambda p: p.name))


@contextmanager
def private_file(name: str, text: str) -> Iterator[Path]:
    """A file only this user can read, in a private temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="jupyter-envs-") as tmp:  # mode 0700
        path = Path(tmp) / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield path


def _state(records: Sequence[rattler.PrefixRecord]) -> set[tuple[str, str, str]]:
    return {(r.name.normalized, str(r.version), str(r.build)) for r in records}


async def restore(prefix: Path, before: Sequence[rattler.PrefixRecord], reporter: Reporter) -> bool:
    """Put ``prefix`` back to exactly the packages ``before`` (from the package cache or their
    URLs, no solve). Returns whether anything had changed; BackendError if it cannot."""
    after = await asyncio.to_thread(read_prefix_records, prefix)
    if _state(after) == _state(before):
        return False
    reporter.log(f"Restoring {prefix} to the packages it had before the interrupted change.")
    await install_records(
        list(before),
        prefix,
        installed=after,
        requested_specs=(),
        cache_dir=None,
        reporter=reporter,
    )
    now = await asyncio.to_thread(read_prefix_records, prefix)
    if _state(now) != _state(before):
        raise BackendError(f"{prefix} could not be restored to its previous packages.")
    return True
