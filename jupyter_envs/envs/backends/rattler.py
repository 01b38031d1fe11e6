"""The embedded engine: solve and install with py-rattler, in-process, no conda needed.

Every successful change writes a conda history revision (``conda-meta/history``) and a
snapshot of the exact record set (:mod:`..snapshots`), so ``rollback(n)`` reinstalls
revision ``n`` with no solve. A change that fails or is cancelled puts the previous record
set back from the package cache before the error propagates.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import rattler
from rattler.exceptions import SolverError

from ...errors import BackendError, InvalidRequest, NotFound, SolveError
from .. import history, snapshots
from ..model import ChangeAction, Plan, Reporter
from ..validate import spec_names
from .base import Backend
from .rattler_support import (
    LazyGateway,
    current_platform,
    diff,
    install_records,
    lock_records,
    package_cache_dir,
    read_prefix_records,
    record_name,
    restore_records,
    run_to_completion,
    solve_error,
    to_package,
)

LEFT_AS_IT_WAS = "The environment was left as it was."


def _command(*args: str) -> str:
    return shlex.join(["jupyter-envs", *args])


class RattlerBackend(Backend):
    """Solve with rattler's Gateway and install with ``rattler.install``."""

    name: ClassVar[str] = "rattler"

    def __init__(self, *, cache_dir: Path | None = None) -> None:
        #: Root of the repodata (``repodata/``) and package (``pkgs/``) caches; rattler's
        #: default (``RATTLER_CACHE_DIR`` or ``~/.cache/rattler/cache``) when None.
        self.cache_dir = cache_dir
        self.platform = current_platform()
        self._gateway = LazyGateway(cache_dir)

    # -- solving ---------------------------------------------------------------------

    async def solve(
        self,
        specs: Sequence[str],
        channels: Sequence[str],
        *,
        locked: Sequence[rattler.RepoDataRecord] = (),
    ) -> list[rattler.RepoDataRecord]:
        """Solve ``specs`` against ``channels`` (full URLs), preferring ``locked`` records."""
        if not specs:
            return []
        if not channels:
            raise InvalidRequest("No channel is configured to install packages from.")
        try:
            # Lenient parsing, as conda reads specs (``name=1.0=build``); solve() is strict.
            matches = [rattler.MatchSpec(s) for s in specs]
        except Exception as exc:  # rattler's InvalidMatchSpecError
            raise InvalidRequest(f"Invalid package spec: {exc}") from exc
        overrides = rattler.VirtualPackageOverrides.from_env()  # honours CONDA_OVERRIDE_CUDA
        virtual = await asyncio.to_thread(rattler.VirtualPackage.detect, overrides)
        gateway = await self._gateway.get()
        for channel in channels:
            # Its in-memory repodata would go stale when a channel changes; the on-disk
            # cache (HTTP caching headers) still saves a download.
            gateway.clear_repodata_cache(channel)
        try:
            return await rattler.solve(
                list(channels),
                matches,
                gateway=gateway,
                platforms=[rattler.Subdir(self.platform), rattler.Subdir("noarch")],
                locked_packages=list(locked),
                virtual_packages=virtual,
                channel_relations="disabled",  # exactly the configured channels
            )
        except SolverError as exc:
            raise solve_error(exc) from exc
        except Exception as exc:  # fetching repodata: network, missing channel, bad data
            raise BackendError(f"Could not read the channels {', '.join(channels)}: {exc}") from exc

    # -- the operations ----------------------------------------------------------------

    async def create(
        self,
        prefix: Path,
        specs: Sequence[str],
        channels: Sequence[str],
        reporter: Reporter,
        *,
        dry_run: bool = False,
    ) -> Plan:
        reporter.log(f"solving {' '.join(specs)}")
        records = await self.solve(specs, channels)
        plan = diff([], records)
        if dry_run:
            return plan
        await self._install_new(
            prefix,
            records,
            reporter,
            requested=specs,
            command=_command("create", "--prefix", str(prefix), *specs),
        )
        return plan

    async def create_from_lock(
        self, prefix: Path, lock_text: str, reporter: Reporter, *, dry_run: bool = False
    ) -> Plan:
        records = await lock_records(lock_text, self.platform, self._gateway)
        plan = diff([], records)
        if dry_run:
            return plan
        await self._install_new(
            prefix,
            records,
            reporter,
            requested=(),
            command=_command("create", "--prefix", str(prefix), "--file", "<lock>"),
        )
        return plan

    async def clone(self, source: Path, prefix: Path, reporter: Reporter) -> Plan:
        records = await asyncio.to_thread(read_prefix_records, source)
        if not records:
            raise NotFound(f"{source} holds no conda packages to clone.")
        requested = await asyncio.to_thread(history.requested_specs, source)
        await self._install_new(
            prefix,
            records,
            reporter,
            requested=requested,
            command=_command("create", "--prefix", str(prefix), "--clone", str(source)),
        )
        return diff([], records)

    async def change(
        self,
        prefix: Path,
        action: ChangeAction,
        specs: Sequence[str],
        channels: Sequence[str],
        reporter: Reporter,
        *,
        dry_run: bool = False,
    ) -> Plan:
        installed = await asyncio.to_thread(read_prefix_records, prefix)
        if not (prefix / "conda-meta").is_dir():
            raise NotFound(f"{prefix} is not a conda environment.")
        have = {record_name(r) for r in installed}
        names = spec_names(specs)
        if action != "install":
            missing = [n for n in names if n not in have]
            if missing:
                raise NotFound(f"Not installed in {prefix}: {', '.join(missing)}.")
        requested = await asyncio.to_thread(history.requested_specs, prefix)
        if not requested:  # made without a history: keep everything that is there
            requested = sorted(have)
        kept = [s for s in requested if history.spec_name(s) not in names]
        if action == "remove":
            solve_specs, locked = kept, [r for r in installed if record_name(r) not in names]
        elif action == "update":
            solve_specs = kept + list(specs)
            locked = [r for r in installed if record_name(r) not in names]
        else:
            solve_specs, locked = kept + list(specs), list(installed)
        reporter.log(f"solving {action} {' '.join(specs)}")
        solution = await self.solve(solve_specs, channels, locked=locked)
        if action == "remove":
            still = sorted({record_name(r) for r in solution} & set(names))
            if still:
                raise SolveError(
                    f"Cannot remove {', '.join(still)}: other requested packages need it."
                )
        plan = diff(installed, solution)
        if dry_run or plan.empty:
            return plan
        update = list(specs) if action != "remove" else []
        removed = list(specs) if action == "remove" else []
        await self._apply(
            prefix,
            installed,
            solution,
            reporter,
            requested=solve_specs,
            command=_command(action, "--prefix", str(prefix), *specs),
            update_specs=update,
            remove_specs=removed,
        )
        return plan

    async def rollback(self, prefix: Path, revision: int, reporter: Reporter) -> Plan:
        revisions = await asyncio.to_thread(history.read_revisions, prefix)
        if not 0 <= revision < len(revisions):
            raise NotFound(f"{prefix} has no revision {revision}.")
        target = await asyncio.to_thread(snapshots.load_snapshot, prefix, revision, self.platform)
        installed = await asyncio.to_thread(read_prefix_records, prefix)
        plan = diff(installed, target)
        if plan.empty:
            return plan
        wanted = await asyncio.to_thread(history.requested_specs, prefix, upto=revision)
        now = await asyncio.to_thread(history.requested_specs, prefix)
        wanted_names = {history.spec_name(s) for s in wanted}
        dropped = [s for s in now if history.spec_name(s) not in wanted_names]
        await self._apply(
            prefix,
            installed,
            target,
            reporter,
            requested=wanted,
            command=_command("install", "--prefix", str(prefix), "--revision", str(revision)),
            update_specs=wanted,
            remove_specs=dropped,
        )
        return plan

    # -- installing and recording --------------------------------------------------------

    async def _install_new(
        self,
        prefix: Path,
        records: Sequence[rattler.RepoDataRecord],
        reporter: Reporter,
        *,
        requested: Sequence[str],
        command: str,
    ) -> None:
        """Install into a new prefix; the manager removes the prefix if this fails."""
        await install_records(
            records,
            prefix,
            installed=[],
            requested_specs=requested,
            cache_dir=package_cache_dir(self.cache_dir),
            reporter=reporter,
        )
        await run_to_completion(
            asyncio.to_thread(self._record, prefix, [], command, list(requested), [])
        )

    async def _apply(
        self,
        prefix: Path,
        installed: Sequence[rattler.PrefixRecord],
        target: Sequence[rattler.RepoDataRecord],
        reporter: Reporter,
        *,
        requested: Sequence[str],
        command: str,
        update_specs: Sequence[str],
        remove_specs: Sequence[str],
    ) -> None:
        """Turn ``prefix`` from ``installed`` into ``target``; restore ``installed`` on failure."""
        await run_to_completion(asyncio.to_thread(self._baseline, prefix, installed))
        cache = package_cache_dir(self.cache_dir)
        try:
            await install_records(
                target,
                prefix,
                installed=installed,
                requested_specs=requested,
                cache_dir=cache,
                reporter=reporter,
            )
        except BaseException as exc:
            await run_to_completion(
                restore_records(prefix, installed, reporter, cache_dir=self.cache_dir)
            )
            if isinstance(exc, BackendError):
                raise BackendError(f"{exc} {LEFT_AS_IT_WAS}") from exc
            raise
        # Past this point the change is done: its revision is written even if cancelled.
        await run_to_completion(
            asyncio.to_thread(
                self._record, prefix, installed, command, list(update_specs), list(remove_specs)
            )
        )

    def _baseline(self, prefix: Path, installed: Sequence[rattler.PrefixRecord]) -> None:
        """Make sure the state before a change is a revision with a snapshot (blocking)."""
        revisions = history.read_revisions(prefix)
        if not revisions:
            if not installed:
                return
            number = history.append_revision(
                prefix, command="", before=[], after=[to_package(r) for r in installed]
            )
        else:
            number = revisions[-1].number
        if not snapshots.has_snapshot(prefix, number):
            snapshots.save_snapshot(prefix, number, installed, self.platform)

    def _record(
        self,
        prefix: Path,
        before: Sequence[rattler.PrefixRecord],
        command: str,
        update_specs: list[str],
        remove_specs: list[str],
    ) -> int:
        """Write the history revision and snapshot of what ``prefix`` now holds (blocking)."""
        after = read_prefix_records(prefix)
        number = history.append_revision(
            prefix,
            command=command,
            before=[to_package(r) for r in before],
            after=[to_package(r) for r in after],
            update_specs=update_specs,
            remove_specs=remove_specs,
        )
        snapshots.save_snapshot(prefix, number, after, self.platform)
        return number
