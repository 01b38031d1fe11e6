"""Package records for the CLI backend: ``@EXPLICIT`` files for the tools, private files.

Every conda-family tool installs an ``@EXPLICIT`` file (``create --file``) without solving, so
lock files and clones reach the tools in that form. The file formats live in
:mod:`jupyter_envs.envs.envfile`; reading lock files and restoring a prefix are shared with
the rattler backend (:mod:`.rattler_support`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import rattler

from ...errors import NotFound
from .. import envfile
from .rattler_support import current_platform, read_prefix_records


def prefix_records(prefix: Path) -> list[rattler.PrefixRecord]:
    """The record of every package installed in ``prefix``; NotFound for a non-environment."""
    if not (prefix / "conda-meta").is_dir():
        raise NotFound(f"{prefix} is not a conda environment (no conda-meta directory).")
    return read_prefix_records(prefix)


def explicit_text(records: Sequence[rattler.RepoDataRecord]) -> str:
    """An ``@EXPLICIT`` list of ``records`` for this platform."""
    return envfile.write_explicit(records, current_platform())


@contextmanager
def private_file(name: str, text: str) -> Iterator[Path]:
    """A file only this user can read, in a private temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="jupyter-envs-") as tmp:  # mode 0700
        path = Path(tmp) / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield path
