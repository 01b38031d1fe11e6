"""Environment operations: input checks, the backend call, registration and clean-up.

Every ``check_*`` method is synchronous and raises before anything touches disk. The
manager does not lock (the task runner serializes changes per environment). When an
operation fails or is cancelled, disk is left consistent: a new prefix is removed and
nothing is registered; an existing environment is put back as it was (by the backend).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError, EnvsError, Forbidden, InvalidRequest, NotFound, ReadOnly
from . import history
from .backends.base import Backend
from .backends.rattler_support import current_platform, read_prefix_records, run_to_completion
from .condaconfig import canonical_channel_name, resolve_channels
from .envfile import (
    check_lock_text,
    parse_environment_yml,
    validate_channel,
    write_environment_yml,
    write_explicit,
    write_lock,
)
from .model import (
    CHANGE_ACTIONS,
    EXPORT_FORMATS,
    ChangeAction,
    EnvInfo,
    ExportFormat,
    NullReporter,
    Plan,
    Reporter,
    Revision,
)
from .registry import EnvRegistry
from .validate import validate_specs

READ_ONLY_MESSAGE = (
    "This server runs jupyter-envs read-only (EnvsApp.read_only = True): environments "
    "can be listed and exported but not created, changed or deleted."
)
_MAX_CHANNELS = 32
PROTECTED_DELETE = (
    "{prefix} is protected (the root environment, the server's own, or configured in "
    "EnvsApp.protected_prefixes): it is never deleted through jupyter-envs."
)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CreateRequest:
    """A new environment: a name or prefix, and exactly one source of packages."""

    name: str | None = None
    prefix: str | None = None
    specs: tuple[str, ...] = ()
    environment_yml: str | None = None
    lockfile: str | None = None
    clone_from: Path | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Export:
    """An exported environment, ready to download."""

    text: str
    filename: str
    media_type: str


@dataclass(frozen=True)
class _CreateJob:
    prefix: Path
    specs: tuple[str, ...]
    channels: tuple[str, ...]
    lockfile: str | None
    clone_from: Path | None


def _remove_tree(path: Path) -> None:
    """Delete ``path``: first renamed aside (atomic), so it is never left half-deleted
    under its own name, then removed."""
    if not os.path.lexists(path):
        return
    trash = path.with_name(f".{path.name}.jupyter-envs-trash-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except OSError as exc:
        raise BackendError(f"Cannot remove {path}: {exc}") from exc
    shutil.rmtree(trash, ignore_errors=True)


class EnvManager:
    """Create, change, delete, export and roll back conda environments."""

    def __init__(
        self,
        registry: EnvRegistry,
        backend: Backend,
        *,
        read_only: bool = False,
    ) -> None:
        self.registry = registry
        self.backend = backend
        self.read_only = read_only

    # -- checks (synchronous, touch nothing) ------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnly(READ_ONLY_MESSAGE)

    def _channels(self, requested: Sequence[str]) -> tuple[str, ...]:
        """Full channel URLs: ``requested``, else the configured ones (``registry.config``)."""
        if isinstance(requested, str) or len(requested) > _MAX_CHANNELS:
            raise InvalidRequest(f"'channels' must be a list of at most {_MAX_CHANNELS} names.")
        names = [validate_channel(c) for c in requested]
        names = names or list(self.registry.config.channels)
        return resolve_channels(names, self.registry.config)

    def _create_job(self, req: CreateRequest) -> _CreateJob:
        self._writable()
        sources = [
            bool(req.specs),
            req.environment_yml is not None,
            req.lockfile is not None,
            req.clone_from is not None,
        ]
        if sum(sources) != 1:
            raise InvalidRequest(
                "Give exactly one of: package specs, an environment.yml, a lock file, "
                "or an environment to clone."
            )
        if isinstance(req.channels, str) or isinstance(req.specs, str):
            raise InvalidRequest("'specs' and 'channels' must be lists of strings.")
        name, specs, channels = req.name, tuple(req.specs), tuple(req.channels)
        if req.environment_yml is not None:
            env_file = parse_environment_yml(req.environment_yml)
            if name is None and req.prefix is None:
                name = env_file.name
            specs = env_file.specs
            channels = channels or env_file.channels
        elif specs:
            specs = tuple(validate_specs(list(specs)))
        if req.lockfile is not None:
            check_lock_text(req.lockfile, current_platform())  # raises InvalidRequest
        clone_from = None
        if req.clone_from is not None:
            clone_from = Path(self.registry.get(Path(req.clone_from)).prefix)
        if name is None and req.prefix is None:
            raise InvalidRequest("Give a name or a prefix for the new environment.")
        prefix = self.registry.new_prefix(name, req.prefix)
        resolved = self._channels(channels) if specs else ()
        return _CreateJob(prefix, specs, resolved, req.lockfile, clone_from)

    def check_create(self, req: CreateRequest) -> Path:
        """Every check of a create (400/403/404/409); the target prefix. Touches nothing."""
        return self._create_job(req).prefix

    def _check_existing(self, prefix: Path, *, mutate: bool) -> Path:
        """A listed environment's prefix (NotFound otherwise).

        Reading is allowed for every environment conda lists (``environments.txt``
        included); changing only inside the allowed directories and not when protected.
        """
        if mutate:
            self._writable()
            path = self.registry.check_mutable(Path(prefix))
            self.registry.get(path)
            return path
        return Path(self.registry.get(Path(prefix)).prefix)

    def check_change(
        self,
        prefix: Path,
        action: ChangeAction,
        specs: Sequence[str],
        *,
        channels: Sequence[str] = (),
    ) -> None:
        """Every check of an install / update / remove, channels included. Touches nothing."""
        self._check_change(prefix, action, specs, mutate=True)
        self._channels(channels)

    def _check_change(
        self, prefix: Path, action: ChangeAction, specs: Sequence[str], *, mutate: bool
    ) -> tuple[Path, list[str]]:
        path = self._check_existing(prefix, mutate=mutate)
        if action not in CHANGE_ACTIONS:
            raise InvalidRequest(f"Unknown action {action!r} (one of {', '.join(CHANGE_ACTIONS)}).")
        return path, validate_specs(list(specs))

    def check_delete(self, prefix: Path) -> Path:
        """``prefix`` when it may be deleted: changeable, and never a protected or root
        environment (not even with ``allow_protected_changes``). Touches nothing."""
        path = self._check_existing(prefix, mutate=True)
        info = self.registry.get(path)
        if info.protected or info.is_root:
            raise Forbidden(PROTECTED_DELETE.format(prefix=path))
        return path

    # -- creating --------------------------------------------------------------------

    async def create(self, req: CreateRequest, reporter: Reporter) -> EnvInfo:
        """Create an environment and register it; on failure or cancel, remove it again.

        The checks run again here (off the event loop): the disk may have changed since
        :meth:`check_create` answered.
        """
        job = await asyncio.to_thread(self._create_job, req)
        try:
            if job.clone_from is not None:
                await self.backend.clone(job.clone_from, job.prefix, reporter)
            elif job.lockfile is not None:
                await self.backend.create_from_lock(job.prefix, job.lockfile, reporter)
            else:
                await self.backend.create(job.prefix, job.specs, job.channels, reporter)
            await run_to_completion(asyncio.to_thread(self._adopt, job.prefix))
        except BaseException as exc:
            # Also when cancelled after the install: a create either completes or leaves nothing.
            await run_to_completion(asyncio.to_thread(self._discard, job.prefix))
            if isinstance(exc, Exception) and not isinstance(exc, EnvsError):
                raise BackendError(f"Creating {job.prefix} failed: {exc}") from exc
            raise
        return await asyncio.to_thread(self.registry.get, job.prefix)

    async def preview_create(self, req: CreateRequest) -> Plan:
        """What a create would install; nothing is written."""
        job = await asyncio.to_thread(self._create_job, req)
        if job.clone_from is not None:
            details = await asyncio.to_thread(self.registry.details, job.clone_from)
            return Plan(install=list(details.packages))
        if job.lockfile is not None:
            return await self.backend.create_from_lock(
                job.prefix, job.lockfile, NullReporter(), dry_run=True
            )
        return await self.backend.create(
            job.prefix, job.specs, job.channels, NullReporter(), dry_run=True
        )

    def _discard(self, prefix: Path) -> None:
        _remove_tree(prefix)
        self.registry.unregister(prefix)
        self.registry.invalidate(prefix)

    def _adopt(self, prefix: Path) -> None:
        self.registry.register(prefix)
        self.registry.invalidate(prefix)

    # -- changing --------------------------------------------------------------------

    async def change(
        self,
        prefix: Path,
        action: ChangeAction,
        specs: Sequence[str],
        reporter: Reporter,
        *,
        channels: Sequence[str] = (),
    ) -> Plan:
        """Install, update or remove packages; the Plan of what was done."""
        path, checked = await asyncio.to_thread(
            self._check_change, prefix, action, specs, mutate=True
        )
        urls = self._channels(channels)
        try:
            return await self._guard(self.backend.change(path, action, checked, urls, reporter))
        finally:
            self.registry.invalidate(path)

    async def preview_change(
        self,
        prefix: Path,
        action: ChangeAction,
        specs: Sequence[str],
        *,
        channels: Sequence[str] = (),
    ) -> Plan:
        """What a change would do; nothing is written."""
        path, checked = await asyncio.to_thread(
            self._check_change, prefix, action, specs, mutate=False
        )
        urls = self._channels(channels)
        return await self._guard(
            self.backend.change(path, action, checked, urls, NullReporter(), dry_run=True)
        )

    async def rollback(self, prefix: Path, revision: int, reporter: Reporter) -> Plan:
        """Reinstall the exact package set of ``revision`` (recorded as a new revision)."""
        path = await asyncio.to_thread(self._check_existing, prefix, mutate=True)
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise InvalidRequest("A revision is a number >= 0.")
        try:
            return await self._guard(self.backend.rollback(path, revision, reporter))
        finally:
            self.registry.invalidate(path)

    async def delete(self, prefix: Path, reporter: Reporter) -> None:
        """Remove an environment from disk and from ``environments.txt``."""
        path = await asyncio.to_thread(self.check_delete, prefix)
        reporter.log(f"removing {path}")
        await run_to_completion(asyncio.to_thread(_remove_tree, path))
        await asyncio.to_thread(self.registry.unregister, path)
        self.registry.invalidate(path)
        reporter.log(f"removed {path}")

    @staticmethod
    async def _guard(work: Awaitable[Plan]) -> Plan:
        """Await a backend call; anything that is not an EnvsError becomes a BackendError."""
        try:
            return await work
        except EnvsError:
            raise
        except Exception as exc:
            raise BackendError(f"The {type(exc).__name__} engine failed: {exc}") from exc

    # -- reading ---------------------------------------------------------------------

    async def revisions(self, prefix: Path) -> list[Revision]:
        """The environment's history revisions, oldest (0) first."""
        path = await asyncio.to_thread(self._check_existing, prefix, mutate=False)
        return await asyncio.to_thread(history.read_revisions, path)

    async def export(self, prefix: Path, fmt: ExportFormat) -> Export:
        """The environment as ``yml``, ``from-history``, ``lock`` or ``explicit`` text."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidRequest(
                f"Unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})."
            )
        path = await asyncio.to_thread(self._check_existing, prefix, mutate=False)
        details = await asyncio.to_thread(self.registry.details, path)
        name = details.name or path.name
        stem = _UNSAFE_FILENAME.sub("_", name).strip("._") or "environment"
        if not details.packages:
            raise NotFound(f"{path} holds no conda packages to export.")
        config = self.registry.config
        channels = list(
            dict.fromkeys(
                canonical_channel_name(p.channel, config) for p in details.packages if p.channel
            )
        )
        if fmt == "yml":
            pins = [f"{p.name}={p.version}={p.build}" for p in details.packages]
            text = write_environment_yml(name, channels, sorted(pins))
            return Export(text, f"{stem}-environment.yml", "application/yaml")
        if fmt == "from-history":
            specs = await asyncio.to_thread(history.requested_specs, path)
            text = write_environment_yml(name, channels, specs)
            return Export(text, f"{stem}-from-history.yml", "application/yaml")
        records = await asyncio.to_thread(read_prefix_records, path)
        if fmt == "lock":
            text = await asyncio.to_thread(write_lock, records, current_platform())
            return Export(text, f"{stem}-lock.yml", "application/yaml")
        text = write_explicit(records, current_platform())
        return Export(text, f"{stem}-explicit.txt", "text/plain")
