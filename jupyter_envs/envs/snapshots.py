"""The exact package set of every revision of an environment, for an exact rollback.

conda's ``conda-meta/history`` says what changed, not where each package came from; a
snapshot is a rattler lock file per revision (``conda-meta/jupyter-envs/rev-<n>.lock.yml``)
that holds every record with its URL and hashes, so a rollback reinstalls revision ``n``
from the package cache with no solve. Blocking: call from a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import rattler

from ..errors import InvalidRequest, NotFound
from .envfile import read_lock, write_lock_file

SNAPSHOT_DIR = Path("conda-meta") / "jupyter-envs"


def snapshot_path(prefix: Path, revision: int) -> Path:
    """Where revision ``revision`` of ``prefix`` is (or would be) kept."""
    return prefix / SNAPSHOT_DIR / f"rev-{revision}.lock.yml"


def save_snapshot(
    prefix: Path, revision: int, records: Sequence[rattler.RepoDataRecord], platform: str
) -> Path:
    """Record ``records`` as the exact package set of ``revision``; returns the file."""
    path = snapshot_path(prefix, revision)
    path.parent.mkdir(parents=True, exist_ok=True)
    if records:
        write_lock_file(records, platform, path)
    else:
        # An empty environment: rattler cannot express a lock without packages.
        path.write_text("", encoding="utf-8")
    return path


def has_snapshot(prefix: Path, revision: int) -> bool:
    """Whether ``revision`` of ``prefix`` can be restored exactly."""
    return snapshot_path(prefix, revision).is_file()


def load_snapshot(prefix: Path, revision: int, platform: str) -> list[rattler.RepoDataRecord]:
    """The exact records of ``revision``. NotFound when no snapshot was kept for it."""
    path = snapshot_path(prefix, revision)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            f"Revision {revision} of {prefix} has no package snapshot (it was not made by "
            "jupyter-envs), so it cannot be restored exactly."
        ) from None
    if not text.strip():
        return []
    try:
        return read_lock(text, platform)
    except InvalidRequest as exc:
        raise NotFound(f"The snapshot of revision {revision} is unreadable: {exc}") from exc


def snapshot_revisions(prefix: Path) -> list[int]:
    """The revisions of ``prefix`` that have a snapshot, ascending."""
    found: list[int] = []
    folder = prefix / SNAPSHOT_DIR
    if not folder.is_dir():
        return found
    for path in folder.glob("rev-*.lock.yml"):
        number = path.name[len("rev-") : -len(".lock.yml")]
        if number.isdigit():
            found.append(int(number))
    return sorted(found)
