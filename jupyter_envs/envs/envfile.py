"""Environment files: ``environment.yml``, rattler lock files and conda's ``@EXPLICIT`` list.

Parsing raises :class:`~jupyter_envs.errors.InvalidRequest` before anything touches an
environment; writing returns text. No Jupyter imports, nothing async.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rattler
import yaml

from ..errors import InvalidRequest
from .validate import validate_env_name, validate_spec

#: The largest environment file accepted (bytes of UTF-8).
MAX_FILE_BYTES = 1024 * 1024
#: Top-level keys of an ``environment.yml`` that are read.
YML_KEYS = frozenset({"name", "channels", "dependencies"})
#: Keys accepted and deliberately ignored: the target comes from the request, not the file.
YML_IGNORED_KEYS = frozenset({"prefix"})
PIP_NOT_SUPPORTED = (
    "pip dependencies are not supported yet: remove the 'pip:' list from environment.yml "
    "and install those packages with pip inside the environment."
)
_MAX_CHANNEL_LENGTH = 1024


@dataclass(frozen=True)
class EnvFile:
    """The parts of an ``environment.yml`` that a create uses."""

    name: str | None
    channels: tuple[str, ...]
    specs: tuple[str, ...]


def _check_size(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidRequest(f"The {what} must be text.")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise InvalidRequest(f"The {what} is larger than {MAX_FILE_BYTES // 1024} KiB.")
    if "\x00" in text:
        raise InvalidRequest(f"The {what} contains a NUL character.")
    return text


def validate_channel(channel: object) -> str:
    """One channel name or URL, stripped; no spaces, control characters or options."""
    if not isinstance(channel, str) or not channel.strip():
        raise InvalidRequest("A channel must be a non-empty string.")
    text = channel.strip()
    if len(text) > _MAX_CHANNEL_LENGTH:
        raise InvalidRequest(f"Channel {text[:60]!r}... is too long.")
    if text.startswith("-") or any(c.isspace() or ord(c) < 32 for c in text):
        raise InvalidRequest(f"{text!r} is not a channel name or URL.")
    return text


def parse_environment_yml(text: str) -> EnvFile:
    """Read an ``environment.yml``: ``name``, ``channels`` and ``dependencies``.

    A ``pip:`` sub-list is refused (:data:`PIP_NOT_SUPPORTED`); so is any top-level key
    other than those three, except ``prefix``, which is ignored on purpose.
    """
    _check_size(text, "environment file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"environment.yml is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("environment.yml must be a mapping with 'dependencies'.")
    unknown = sorted(str(k) for k in data if k not in YML_KEYS | YML_IGNORED_KEYS)
    if unknown:
        raise InvalidRequest(
            f"environment.yml has keys that are not supported: {', '.join(unknown)} "
            "(supported: name, channels, dependencies)."
        )
    name = data.get("name")
    if name is not None:
        name = validate_env_name(str(name) if isinstance(name, (int, float)) else name)
    channels = data.get("channels") or []
    if not isinstance(channels, list):
        raise InvalidRequest("'channels' in environment.yml must be a list.")
    deps = data.get("dependencies")
    if not isinstance(deps, list) or not deps:
        raise InvalidRequest("environment.yml needs a non-empty 'dependencies' list.")
    specs: list[str] = []
    for dep in deps:
        if isinstance(dep, dict):
            if "pip" in dep:
                raise InvalidRequest(PIP_NOT_SUPPORTED)
            raise InvalidRequest(f"Unsupported entry in 'dependencies': {dep!r}.")
        if isinstance(dep, (int, float)) or not isinstance(dep, str):
            raise InvalidRequest(f"Dependency {dep!r} is not a package spec.")
        specs.append(validate_spec(dep))
    # ``nodefaults`` only tells conda not to add its default channels: never a channel.
    names = [validate_channel(c) for c in channels]
    return EnvFile(
        name=name,
        channels=tuple(c for c in names if c != "nodefaults"),
        specs=tuple(specs),
    )


def write_environment_yml(name: str | None, channels: Sequence[str], specs: Sequence[str]) -> str:
    """An ``environment.yml`` (no ``prefix`` line, so it can be created anywhere)."""
    data: dict[str, object] = {}
    if name:
        data["name"] = name
    data["channels"] = list(channels)
    data["dependencies"] = list(specs)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def record_channels(records: Iterable[rattler.RepoDataRecord]) -> list[str]:
    """The distinct channels of ``records``, in first-seen order, without a trailing ``/``."""
    seen: dict[str, None] = {}
    for record in records:
        channel = (record.channel or "").rstrip("/")
        if channel:
            seen.setdefault(channel, None)
    return list(seen)


def _install_order(records: Sequence[rattler.RepoDataRecord]) -> list[rattler.RepoDataRecord]:
    """``records`` with every package after its dependencies."""
    by_name = {r.name.normalized: r for r in records}
    ordered = rattler.PackageRecord.sort_topologically(list(records))
    return [by_name[r.name.normalized] for r in ordered]


def write_explicit(records: Sequence[rattler.RepoDataRecord], platform: str) -> str:
    """conda's ``@EXPLICIT`` list: one URL per package, in install order, with its hash."""
    ordered = _install_order(records)
    lines = [
        "# This file may be used to create an environment using:",
        "# $ conda create --name <env> --file <this file>",
        f"# platform: {platform}",
        "@EXPLICIT",
    ]
    for record in ordered:
        if record.md5:
            lines.append(f"{record.url}#{record.md5.hex()}")
        elif record.sha256:
            lines.append(f"{record.url}#sha256:{record.sha256.hex()}")
        else:
            lines.append(str(record.url))
    return "\n".join(lines) + "\n"


def write_lock(records: Sequence[rattler.RepoDataRecord], platform: str) -> str:
    """A rattler lock file (``default`` environment, one platform) holding exactly ``records``."""
    lock = rattler.LockFile([rattler.LockPlatform(platform)])
    lock_platform = lock.platforms()[0]
    channels = record_channels(records)
    lock.set_channels("default", [rattler.LockChannel(c) for c in channels])
    for record in _install_order(records):
        lock.add_conda_package("default", lock_platform, record)
    with tempfile.TemporaryDirectory(prefix="jupyter-envs-lock-") as tmp:
        path = Path(tmp) / "lock.yml"
        lock.to_path(path)
        return path.read_text(encoding="utf-8")


def write_lock_file(records: Sequence[rattler.RepoDataRecord], platform: str, path: Path) -> None:
    """:func:`write_lock` straight to ``path`` (atomically replaced)."""
    text = write_lock(records, platform)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class ExplicitEntry:
    """One package line of an ``@EXPLICIT`` file."""

    url: str
    channel: str
    subdir: str
    name: str
    md5: str | None = None
    sha256: str | None = None


_HEX = frozenset("0123456789abcdef")
_ARCHIVES = (".tar.bz2", ".conda")


def is_explicit(text: str) -> bool:
    """Whether ``text`` is conda's ``@EXPLICIT`` list (rather than a rattler lock file)."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line == "@EXPLICIT"
    return False


def _explicit_entry(line: str) -> ExplicitEntry:
    url, _, digest = line.partition("#")
    digest = digest.strip().lower()
    if not url.startswith(("https://", "http://", "file:///")) or not url.endswith(_ARCHIVES):
        raise InvalidRequest(f"Not a package URL in the explicit file: {line[:200]!r}.")
    base, subdir, filename = url.rsplit("/", 2)
    stem = filename[: -len(".tar.bz2")] if filename.endswith(".tar.bz2") else filename[:-6]
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts) or "://" not in base:
        raise InvalidRequest(f"Not a conda package file name: {filename[:200]!r}.")
    md5 = sha256 = None
    if digest.startswith("sha256:"):
        sha256 = digest[len("sha256:") :]
    elif len(digest) == 64:
        sha256 = digest
    elif digest:
        md5 = digest
    for value, size in ((md5, 32), (sha256, 64)):
        if value is not None and (len(value) != size or not set(value) <= _HEX):
            raise InvalidRequest(f"Bad hash in the explicit file: {line[:200]!r}.")
    return ExplicitEntry(url, base, subdir, parts[0], md5, sha256)


def parse_explicit(text: str) -> list[ExplicitEntry]:
    """The packages of conda's ``@EXPLICIT`` list (``conda list --explicit [--md5]``)."""
    _check_size(text, "explicit file")
    if not is_explicit(text):
        raise InvalidRequest("An explicit file starts with an '@EXPLICIT' line.")
    entries = []
    seen = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "@EXPLICIT":
            seen = True
            continue
        if seen:
            entries.append(_explicit_entry(line))
    if not entries:
        raise InvalidRequest("The explicit file lists no packages.")
    return entries


def check_lock_text(text: str, platform: str) -> None:
    """Raise InvalidRequest unless ``text`` is a usable lock file or explicit list."""
    if is_explicit(text):
        parse_explicit(text)
    else:
        read_lock(text, platform)


def read_lock(text: str, platform: str) -> list[rattler.RepoDataRecord]:
    """The conda packages a rattler lock file pins for ``platform`` (its default environment)."""
    _check_size(text, "lock file")
    with tempfile.TemporaryDirectory(prefix="jupyter-envs-lock-") as tmp:
        path = Path(tmp) / "lock.yml"
        path.write_text(text, encoding="utf-8")
        try:
            lock = rattler.LockFile.from_path(path)
        except Exception as exc:  # rattler raises its own parse errors
            raise InvalidRequest(f"Not a valid lock file: {exc}") from exc
    env = lock.default_environment()
    if env is None:
        named = lock.environments()
        if len(named) != 1:
            raise InvalidRequest("The lock file has no 'default' environment.")
        env = named[0][1]
    # The platform object must come from the lock itself: a freshly built one panics.
    matching = [p for p in env.platforms() if p.name == platform]
    if not matching:
        have = ", ".join(p.name for p in env.platforms()) or "none"
        raise InvalidRequest(f"The lock file has no packages for {platform} (it has: {have}).")
    if env.pypi_packages_for_platform(matching[0]):
        raise InvalidRequest("The lock file holds PyPI packages, which are not supported yet.")
    records = env.conda_repodata_records_for_platform(matching[0]) or []
    if not records:
        raise InvalidRequest(f"The lock file lists no conda packages for {platform}.")
    return list(records)
