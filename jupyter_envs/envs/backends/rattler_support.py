"""Pieces of the py-rattler backend: record conversion, plans, errors, a cancel-safe install.

How py-rattler 0.28 behaves on cancel (measured; ``tests/test_ops_create.py`` and
``tests/test_ops_change.py`` hold the regression tests): cancelling the asyncio future of
``rattler.install`` raises ``CancelledError`` at once and drops the Rust transaction, but
link operations already handed to worker threads go on: a 120-200 package install kept
writing files and ``conda-meta`` records for up to ~0.5 s after the ``CancelledError``,
then stopped half way. A clean-up started right after the ``CancelledError`` races with
those writes (``rmtree`` fails, or the prefix is recreated behind it). The same holds
after a *failed* install. So :func:`install_records` runs the install shielded; when the
caller is cancelled it

- drops the transaction at once if nothing was linked or unlinked yet (only downloads
  were running, which stop with it), then waits until ``conda-meta`` is quiet;
- otherwise lets the transaction finish (linking from the package cache is fast) before
  the ``CancelledError`` reaches the clean-up code, which then undoes it.

After a failure, :func:`wait_until_settled` gives in-flight writes time to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import rattler
from rattler.exceptions import SolverError

from ...errors import BackendError, InvalidRequest, NotFound, SolveError
from ..envfile import ExplicitEntry, is_explicit, parse_explicit, read_lock
from ..model import CondaPackage, PackageChange, Plan, Reporter

#: Logged when a failed or cancelled change is undone.
RESTORING = "restoring the previous packages"
#: Longest solver explanation passed on to the user.
MAX_SOLVER_MESSAGE = 4000
_SOLVER_PREFIX = "Cannot solve the request because of:"
T = TypeVar("T")


def current_platform() -> str:
    """The conda subdir of this machine, e.g. ``linux-64``."""
    return str(rattler.Subdir.current())


def record_name(record: rattler.PackageRecord) -> str:
    return str(record.name.normalized)


def record_dist(record: rattler.PackageRecord) -> str:
    return f"{record_name(record)}-{record.version}-{record.build}"


def to_package(record: rattler.RepoDataRecord) -> CondaPackage:
    """The model's view of one record (a PrefixRecord also says whether it was requested)."""
    requested = False
    if isinstance(record, rattler.PrefixRecord):
        requested = bool(record.requested_spec or record.requested_specs)
    return CondaPackage(
        name=record_name(record),
        version=str(record.version),
        build=str(record.build),
        build_number=int(record.build_number),
        channel=(record.channel or "").rstrip("/"),
        subdir=str(record.subdir),
        url=str(record.url),
        size=record.size,
        requested=requested,
    )


def _same(a: rattler.RepoDataRecord, b: rattler.RepoDataRecord) -> bool:
    if record_dist(a) != record_dist(b):
        return False
    if a.sha256 and b.sha256:
        return bool(a.sha256 == b.sha256)
    return str(a.url) == str(b.url)


def diff(before: Iterable[rattler.RepoDataRecord], after: Iterable[rattler.RepoDataRecord]) -> Plan:
    """What turns the package set ``before`` into ``after``, sorted by name."""
    old = {record_name(r): r for r in before}
    new = {record_name(r): r for r in after}
    plan = Plan()
    for name in sorted(new.keys() - old.keys()):
        plan.install.append(to_package(new[name]))
    for name in sorted(old.keys() - new.keys()):
        plan.remove.append(to_package(old[name]))
    for name in sorted(old.keys() & new.keys()):
        if not _same(old[name], new[name]):
            plan.change.append(
                PackageChange(name=name, old=to_package(old[name]), new=to_package(new[name]))
            )
    return plan


def read_prefix_records(prefix: Path) -> list[rattler.PrefixRecord]:
    """Every ``conda-meta/*.json`` record of ``prefix`` (blocking)."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return []
    records = []
    for path in sorted(meta.glob("*.json")):
        try:
            records.append(rattler.PrefixRecord.from_path(path))
        except Exception as exc:  # rattler's own parse error
            raise BackendError(f"Cannot read {path}: {exc}") from exc
    return records


def solve_error(exc: SolverError) -> SolveError:
    """A user-facing SolveError from rattler's explanation (which names the conflict)."""
    text = str(exc).strip()
    if text.startswith(_SOLVER_PREFIX):
        text = text[len(_SOLVER_PREFIX) :].strip()
    if len(text) > MAX_SOLVER_MESSAGE:
        text = text[:MAX_SOLVER_MESSAGE] + "\n..."
    return SolveError(f"The requested packages cannot be installed together: {text}")


class ReporterBridge(rattler.InstallerReporter):
    """Forwards rattler's install callbacks (any thread) to a Reporter on the event loop."""

    def __init__(
        self,
        reporter: Reporter,
        loop: asyncio.AbstractEventLoop,
        linking: Iterable[rattler.RepoDataRecord],
        unlinking: Iterable[rattler.RepoDataRecord],
    ) -> None:
        self._reporter = reporter
        self._loop = loop
        self._link = {record_name(r): record_dist(r) for r in linking}
        self._unlink = {record_name(r): record_dist(r) for r in unlinking}
        self._total = 0
        self._done = 0
        #: Set (from rattler's thread) once the prefix is being written to.
        self.touched = False

    def _post(self, fn: object, *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]

    def on_transaction_start(self, total_operations: int) -> None:
        self._total = total_operations
        self._post(self._reporter.progress, "install", 0, total_operations)

    def on_link_start(self, operation: int, package_name: str) -> int:
        self.touched = True
        self._post(self._reporter.log, f"link {self._link.get(package_name, package_name)}")
        return operation

    def on_unlink_start(self, operation: int, package_name: str) -> int:
        self.touched = True
        self._post(self._reporter.log, f"unlink {self._unlink.get(package_name, package_name)}")
        return operation

    def on_transaction_operation_complete(self, operation: int) -> None:
        self._done += 1
        self._post(self._reporter.progress, "install", self._done, self._total)


async def _wait_out(future: asyncio.Future[None]) -> None:
    """Wait until ``future`` is done even if this task is cancelled again meanwhile."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([future])
    if not future.cancelled():
        future.exception()  # retrieved: the caller is cancelled and will not see it


async def run_to_completion(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if the calling task is cancelled meanwhile (clean-up
    code must not be abandoned half way); a cancellation then propagates afterwards."""
    future = asyncio.ensure_future(work)
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
    result = future.result()
    if cancelled:
        raise asyncio.CancelledError
    return result


async def install_records(
    records: Sequence[rattler.RepoDataRecord],
    prefix: Path,
    *,
    installed: Sequence[rattler.PrefixRecord],
    requested_specs: Sequence[str],
    cache_dir: Path | None,
    reporter: Reporter,
) -> None:
    """Make ``prefix`` hold exactly ``records``; BackendError on failure.

    On cancellation the rattler transaction is allowed to finish before CancelledError
    propagates (see the module docstring), so the caller's clean-up sees a settled prefix.
    """
    loop = asyncio.get_running_loop()
    installed_names = {record_name(r): r for r in installed}
    bridge = ReporterBridge(reporter, loop, records, installed_names.values())  # type: ignore[abstract]
    specs = [rattler.MatchSpec(s)._match_spec for s in requested_specs]
    future = asyncio.ensure_future(
        rattler.install(
            list(records),
            prefix,
            cache_dir=cache_dir,
            installed_packages=list(installed),
            show_progress=False,
            requested_specs=specs,  # the wrapper does not unwrap MatchSpec (0.28)
            reporter=bridge,
        )
    )
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        if not bridge.touched:
            # Still downloading: dropping the transaction stops the downloads at once.
            future.cancel()
            await _wait_out(future)
            await run_to_completion(wait_until_settled(prefix))
        else:
            await _wait_out(future)
        raise
    except Exception as exc:  # rattler's InstallerError, IoError, LinkError, ...
        raise BackendError(f"Installing into {prefix} failed: {exc}") from exc


def _meta_state(prefix: Path) -> tuple[tuple[str, int], ...]:
    meta = prefix / "conda-meta"
    try:
        return tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(meta)))
    except OSError:
        return ()


async def wait_until_settled(prefix: Path, *, quiet: float = 0.15, limit: float = 10.0) -> None:
    """Wait until ``prefix/conda-meta`` has not changed for ``quiet`` seconds (at most
    ``limit``): after a *failed* rattler install, operations already started keep going."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    state = await asyncio.to_thread(_meta_state, prefix)
    while loop.time() < deadline:
        await asyncio.sleep(quiet)
        now = await asyncio.to_thread(_meta_state, prefix)
        if now == state:
            return
        state = now


async def explicit_records(
    gateway: rattler.Gateway, entries: Sequence[ExplicitEntry]
) -> list[rattler.RepoDataRecord]:
    """The index records of the exact files an ``@EXPLICIT`` list names, hashes checked."""
    groups: dict[tuple[str, str], list[ExplicitEntry]] = {}
    for entry in entries:
        groups.setdefault((entry.channel, entry.subdir), []).append(entry)
    records: list[rattler.RepoDataRecord] = []
    for (channel, subdir), group in groups.items():
        try:
            platform = rattler.Subdir(subdir)
        except Exception as exc:  # rattler's ParseSubdirError
            raise InvalidRequest(f"Unknown platform {subdir!r} in the explicit file.") from exc
        gateway.clear_repodata_cache(channel)
        try:
            found = await gateway.query(
                [channel],
                [platform],
                [e.name for e in group],
                recursive=False,
                channel_relations="disabled",
            )
        except Exception as exc:  # fetching the channel's index failed
            raise BackendError(f"Could not read the channel {channel}: {exc}") from exc
        by_url = {str(r.url): r for source in found for r in source}
        for entry in group:
            record = by_url.get(entry.url)
            if record is None:
                raise NotFound(f"{entry.url} is not in its channel's index.")
            if (entry.md5 and record.md5 and record.md5.hex() != entry.md5) or (
                entry.sha256 and record.sha256 and record.sha256.hex() != entry.sha256
            ):
                raise InvalidRequest(f"The hash of {entry.url} does not match its channel.")
            records.append(record)
    return records


def package_cache_dir(base: Path | None) -> Path | None:
    """The package cache under ``base`` (rattler's own default, honouring
    ``RATTLER_CACHE_DIR``, when ``base`` is None)."""
    return None if base is None else base / "pkgs"


def repodata_cache_dir(base: Path | None) -> Path | None:
    """The repodata cache under ``base`` (rattler's default when None)."""
    return None if base is None else base / "repodata"


class LazyGateway:
    """One rattler Gateway, built on first use in a thread (building one blocks ~30 ms)."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._gateway: rattler.Gateway | None = None

    async def get(self) -> rattler.Gateway:
        if self._gateway is None:
            cache = repodata_cache_dir(self.cache_dir)
            self._gateway = await asyncio.to_thread(rattler.Gateway, cache_dir=cache)
        return self._gateway


async def lock_records(
    text: str, platform: str, gateway: LazyGateway
) -> list[rattler.RepoDataRecord]:
    """The exact records a rattler lock file or a conda ``@EXPLICIT`` list pins (no solve).

    Both engines take both formats: an ``@EXPLICIT`` list is resolved against its channels'
    indexes (hashes checked); a lock file already holds full records.
    """
    if is_explicit(text):
        return await explicit_records(await gateway.get(), parse_explicit(text))
    return await asyncio.to_thread(read_lock, text, platform)


async def restore_records(
    prefix: Path,
    before: Sequence[rattler.PrefixRecord],
    reporter: Reporter,
    *,
    cache_dir: Path | None,
) -> bool:
    """Put ``prefix`` back to exactly the record set ``before`` (package cache or the
    records' URLs, no solve). Returns whether anything had changed; BackendError if the
    prefix cannot be brought back."""
    # A failed rattler transaction (or a killed tool) may still be writing.
    await wait_until_settled(prefix)
    want = {record_dist(r) for r in before}
    requested = sorted({s for r in before for s in r.requested_specs})
    changed = False
    for _ in range(3):
        now = await asyncio.to_thread(read_prefix_records, prefix)
        if {record_dist(r) for r in now} == want:
            return changed
        if not changed:
            reporter.log(RESTORING)
        changed = True
        try:
            await install_records(
                before,
                prefix,
                installed=now,
                requested_specs=requested,
                cache_dir=package_cache_dir(cache_dir),
                reporter=reporter,
            )
        except BackendError as exc:
            raise BackendError(
                f"The change failed and restoring the previous packages of {prefix} "
                f"failed too: {exc}"
            ) from exc
    raise BackendError(f"Could not restore the previous packages of {prefix}.")
