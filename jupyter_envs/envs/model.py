"""Plain data the core passes around; JSON-ready through :func:`to_json`."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

ExportFormat = Literal["yml", "from-history", "lock", "explicit"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("yml", "from-history", "lock", "explicit")
ChangeAction = Literal["install", "update", "remove"]
CHANGE_ACTIONS: tuple[ChangeAction, ...] = ("install", "update", "remove")


def env_id(prefix: str | Path) -> str:
    """A stable, URL-safe identifier for an environment prefix (reversible)."""
    raw = str(prefix).encode("utf-8", "surrogateescape")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def prefix_from_id(ident: str) -> Path:
    """The prefix an :func:`env_id` names. Raises ``ValueError`` for a malformed id."""
    if not ident or len(ident) > 4096 or not all(c.isalnum() or c in "-_" for c in ident):
        raise ValueError(f"not an environment id: {ident[:80]!r}")
    raw = base64.urlsafe_b64decode(ident + "=" * (-len(ident) % 4))
    text = raw.decode("utf-8", "surrogateescape")
    if "\x00" in text or not text.startswith("/"):
        raise ValueError(f"not an environment id: {ident[:80]!r}")
    return Path(text)


@dataclass(frozen=True)
class CondaPackage:
    """One conda package installed in (or planned for) an environment."""

    name: str
    version: str
    build: str
    build_number: int = 0
    channel: str = ""
    subdir: str = ""
    url: str = ""
    size: int | None = None
    requested: bool = False

    @property
    def dist(self) -> str:
        """conda's ``name-version-build`` string."""
        return f"{self.name}-{self.version}-{self.build}"


@dataclass(frozen=True)
class PipPackage:
    """A Python distribution in site-packages that no conda package owns."""

    name: str
    version: str


@dataclass
class EnvInfo:
    """A summary of one environment, cheap to list."""

    id: str
    name: str
    prefix: str
    is_root: bool
    protected: bool
    python_version: str | None
    package_count: int
    has_kernel: bool
    last_modified: float


@dataclass
class EnvDetails(EnvInfo):
    """Everything about one environment that the details view shows."""

    packages: list[CondaPackage] = field(default_factory=list)
    pip_packages: list[PipPackage] = field(default_factory=list)
    requested_specs: list[str] = field(default_factory=list)
    kernelspecs: list[str] = field(default_factory=list)
    revision_count: int = 0
    size_bytes: int | None = None


@dataclass(frozen=True)
class PackageChange:
    """A package whose version or build changes."""

    name: str
    old: CondaPackage
    new: CondaPackage


@dataclass
class Plan:
    """What an operation would do (dry run) or did."""

    install: list[CondaPackage] = field(default_factory=list)
    remove: list[CondaPackage] = field(default_factory=list)
    change: list[PackageChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.install or self.remove or self.change)


@dataclass
class Revision:
    """One entry of ``conda-meta/history``: what was asked and what changed."""

    number: int
    date: str
    command: str = ""
    update_specs: list[str] = field(default_factory=list)
    remove_specs: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class Reporter(Protocol):
    """Receives the progress of a long operation. Called from the event loop thread."""

    def log(self, line: str) -> None:
        """One human-readable log line."""

    def progress(self, phase: str, done: int, total: int | None) -> None:
        """``done`` of ``total`` steps of ``phase`` (``total`` None when unknown)."""


class NullReporter:
    """A :class:`Reporter` that drops everything."""

    def log(self, line: str) -> None:
        pass

    def progress(self, phase: str, done: int, total: int | None) -> None:
        pass


def to_json(obj: Any) -> Any:
    """Dataclasses (nested) to plain JSON data; Paths to strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
