"""The backend that drives conda, mamba 2 or micromamba through their ``--json`` interface.

Every call is an argument list (never a shell) with ``--json`` and ``--yes``, runs under a
timeout with bounded output, and is stopped with its whole process group when cancelled
(:mod:`.cli_process`). Output and errors are read by :mod:`.cli_parse`; lock files and clones
reach the tools as ``@EXPLICIT`` lists (:mod:`.cli_lock`). A dry run's Plan is the tool's
report; a real run's Plan is what changed in ``conda-meta``, and a change that fails or is
cancelled half way is undone from the package records taken before it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from ...errors import BackendError, EnvsError, InvalidRequest
from ..model import ChangeAction, Plan, Reporter
from ..validate import spec_names
from . import cli_lock
from .base import Backend
from .cli_parse import (
    error_from_result,
    final_document,
    is_error,
    parse_documents,
    parse_progress,
    plan_from_result,
)
from .cli_process import DEFAULT_KILL_GRACE, DEFAULT_MAX_STDOUT, run_tool
from .rattler_support import (
    LazyGateway,
    current_platform,
    diff,
    lock_records,
    read_prefix_records,
    restore_records,
    run_to_completion,
)

CliTool = Literal["conda", "mamba", "micromamba"]
#: Default limit for one tool run, in seconds.
DEFAULT_TIMEOUT = 3600.0
_IGNORED_EXITS = frozenset({"DryRunExit", "CondaSystemExit"})

NO_REVISION_MESSAGE = (
    "{tool} cannot roll an environment back to a revision (it has no 'install --revision'). "
    "Use the conda or rattler backend for rollbacks."
)


class CliBackend(Backend):
    """Solve and install with a conda-family command line tool (conda by default)."""

    name: ClassVar[str] = "conda"
    #: Whether ``create --clone`` exists; otherwise clones go through an @EXPLICIT list.
    supports_clone: ClassVar[bool] = True
    #: Whether ``install --revision N`` exists.
    supports_revision: ClassVar[bool] = True

    def __init__(
        self,
        executable: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_MAX_STDOUT,
        environ: Mapping[str, str] | None = None,
        kill_grace: float = DEFAULT_KILL_GRACE,
    ) -> None:
        """``executable``: the tool's path; ``timeout``: seconds per run; ``max_output``: bytes
        of stdout kept; ``environ``: the tool's environment (None: this process's, per run)."""
        self.executable = str(executable)
        self.timeout = timeout
        self.max_output = max_output
        self.environ = dict(environ) if environ is not None else None
        self.kill_grace = kill_grace
        # Only for @EXPLICIT lock files, resolved against their channels' indexes.
        self._gateway = LazyGateway()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.executable!r})"

    # -- argument lists -------------------------------------------------------------------

    def command(
        self,
        subcommand: str,
        prefix: Path,
        *,
        channels: Sequence[str] = (),
        specs: Sequence[str] = (),
        dry_run: bool = False,
        extra: Sequence[str] = (),
    ) -> list[str]:
        """The argument list for one run (``specs`` last, after ``--``). Option values are
        attached with ``=`` so that no value can ever be read as an option itself."""
        argv = [self.executable, subcommand, f"--prefix={prefix}", "--json", "--yes"]
        if dry_run:
            argv.append("--dry-run")
        for channel in channels:
            argv.append(f"--channel={channel}")
        if channels:
            argv.append("--override-channels")
        argv += extra
        if specs:
            argv += ["--", *specs]
        return argv

    # -- Backend --------------------------------------------------------------------------

    async def create(
        self,
        prefix: Path,
        specs: Sequence[str],
        channels: Sequence[str],
        reporter: Reporter,
        *,
        dry_run: bool = False,
    ) -> Plan:
        argv = self.command("create", prefix, channels=channels, specs=specs, dry_run=dry_run)
        if dry_run:
            return await self._dry_run_plan(argv, reporter)
        await self._run(argv, reporter)
        return await self._installed_plan(prefix)

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
        if action not in ("install", "update", "remove"):
            raise InvalidRequest(f"Unknown package action {action!r}.")
        subcommand: str = action
        if action == "update" and spec_names(specs) != [s.strip() for s in specs]:
            # 'conda update' takes bare names only ("Invalid spec for 'conda update'");
            # install with a constraint moves an installed package the same way.
            subcommand = "install"
        # Channels only matter when something is solved in.
        argv = self.command(
            subcommand,
            prefix,
            channels=() if action == "remove" else channels,
            specs=specs,
            dry_run=dry_run,
        )
        removing = action == "remove"
        if dry_run:
            return await self._dry_run_plan(argv, reporter, removing=removing)
        return await self._consistent(prefix, argv, reporter, removing=removing)

    async def create_from_lock(
        self, prefix: Path, lock_text: str, reporter: Reporter, *, dry_run: bool = False
    ) -> Plan:
        records = await lock_records(lock_text, current_platform(), self._gateway)
        if not dry_run:
            await self._create_explicit(prefix, records, reporter)
        return diff([], records)

    async def clone(self, source: Path, prefix: Path, reporter: Reporter) -> Plan:
        records = await asyncio.to_thread(cli_lock.prefix_records, source)
        if self.supports_clone:
            argv = self.command("create", prefix, extra=[f"--clone={source}"])
            await self._run(argv, reporter)
        else:
            await self._create_explicit(prefix, records, reporter)
        return diff([], records)

    async def rollback(self, prefix: Path, revision: int, reporter: Reporter) -> Plan:
        if not self.supports_revision:
            raise BackendError(NO_REVISION_MESSAGE.format(tool=self.name))
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise InvalidRequest(f"Not a revision number: {revision!r}.")
        argv = self.command("install", prefix, extra=[f"--revision={revision}"])
        return await self._consistent(prefix, argv, reporter)

    # -- running --------------------------------------------------------------------------

    async def _consistent(
        self, prefix: Path, argv: list[str], reporter: Reporter, *, removing: bool = False
    ) -> Plan:
        """Run a change of the existing ``prefix``; the Plan of what changed on disk. If it
        fails or is cancelled, put the prefix back to its packages before (the tools roll back
        on SIGINT themselves; this covers a tool that was killed or failed half way)."""
        before = await asyncio.to_thread(cli_lock.prefix_records, prefix)
        try:
            await self._run(argv, reporter, removing=removing)
        except (EnvsError, asyncio.CancelledError) as exc:
            try:
                await run_to_completion(
                    restore_records(prefix, before, reporter, cache_dir=None)
                )
            except EnvsError as failure:
                reporter.log(str(failure))
                if isinstance(exc, EnvsError):
                    raise BackendError(f"{exc}\n{failure}") from exc
            raise
        after = await asyncio.to_thread(read_prefix_records, prefix)
        return diff(before, after)

    async def _installed_plan(self, prefix: Path) -> Plan:
        """What a finished create put into ``prefix`` (read from disk, not the tool's word)."""
        return diff([], await asyncio.to_thread(read_prefix_records, prefix))

    async def _create_explicit(
        self, prefix: Path, records: Sequence[Any], reporter: Reporter
    ) -> None:
        text = cli_lock.explicit_text(records)
        with cli_lock.private_file("explicit.txt", text) as path:
            argv = self.command("create", prefix, extra=[f"--file={path}"])
            await self._run(argv, reporter)

    async def _dry_run_plan(
        self, argv: list[str], reporter: Reporter, *, removing: bool = False
    ) -> Plan:
        """The Plan the tool reports for a ``--dry-run``."""
        result = await self._run(argv, reporter, dry_run=True, removing=removing)
        return plan_from_result(result) if result else Plan()

    async def _run(
        self,
        argv: list[str],
        reporter: Reporter,
        *,
        dry_run: bool = False,
        removing: bool = False,
    ) -> dict[str, Any] | None:
        """Run the tool; the result document, or the matching EnvsError raised."""
        reporter.log("$ " + shlex.join(argv))

        def on_record(record: dict[str, Any]) -> None:
            progress = parse_progress(record)
            if progress is None:
                return
            reporter.progress(progress.phase, progress.done, progress.total)
            if progress.finished and progress.label:
                reporter.log(f"{progress.phase}: {progress.label} done")

        done = await run_tool(
            argv,
            timeout=self.timeout,
            env=self.environ,
            on_record=on_record,
            on_stderr_line=reporter.log,
            max_stdout=self.max_output,
            kill_grace=self.kill_grace,
        )
        try:
            # Up to max_output bytes of JSON: parse off the event loop.
            docs = await asyncio.to_thread(parse_documents, done.stdout)
        except ValueError as exc:
            raise BackendError(f"{self.name} printed unreadable JSON: {exc}") from exc
        docs = [d for d in docs if d.get("exception_name") not in _IGNORED_EXITS]
        result = final_document(docs)
        if dry_run and result is not None and "actions" in result and not is_error(result):
            return result  # some conda versions exit non-zero after a dry run
        if done.returncode != 0 or (result is not None and is_error(result)):
            if done.stdout_truncated and result is None:
                raise BackendError(f"{self.name} printed more than {self.max_output} bytes.")
            raise error_from_result(result, self.name, stderr=done.stderr, removing=removing)
        return result


class CondaBackend(CliBackend):
    """conda (any version with ``--json``)."""

    name: ClassVar[str] = "conda"


class MambaBackend(CliBackend):
    """mamba 2 (the C++ rewrite): no ``--revision``; clones go through an @EXPLICIT list."""

    name: ClassVar[str] = "mamba"
    supports_clone: ClassVar[bool] = False
    supports_revision: ClassVar[bool] = False


class MicromambaBackend(CliBackend):
    """micromamba: no ``--revision``; clones go through an @EXPLICIT list."""

    name: ClassVar[str] = "micromamba"
    supports_clone: ClassVar[bool] = False
    supports_revision: ClassVar[bool] = False


CLI_BACKENDS: Mapping[CliTool, type[CliBackend]] = {
    "conda": CondaBackend,
    "mamba": MambaBackend,
    "micromamba": MicromambaBackend,
}
