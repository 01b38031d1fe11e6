"""Run a conda-family command line tool: no shell, a timeout, bounded output, killable.

The tool runs in a new session (its own process group), so a timeout or a cancelled task
ends the tool *and* anything it started (post-link scripts, solver helpers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import BackendError

#: Bytes of stdout kept (the tail: the result document comes last).
DEFAULT_MAX_STDOUT = 32 * 1024 * 1024
#: Bytes of stderr kept (the tail).
DEFAULT_MAX_STDERR = 256 * 1024
#: Longest stderr line forwarded to the log, and how many lines at most.
MAX_LOG_LINE = 2000
MAX_LOG_LINES = 20_000
#: Seconds a stopped tool gets after SIGINT (to roll back its transaction) before SIGKILL.
DEFAULT_KILL_GRACE = 10.0
#: Seconds between SIGTERM and SIGKILL, after the grace period.
TERM_GRACE = 1.0
#: Seconds to wait for the pipes to close once the tool itself has exited.
DRAIN_TIMEOUT = 5.0
_CHUNK = 64 * 1024
_POLL = 0.05

RecordCallback = Callable[[dict[str, Any]], None]
LineCallback = Callable[[str], None]


@dataclass(frozen=True)
class Completed:
    """What a finished tool left: its exit status and the (tails of) its output."""

    returncode: int
    stdout: str
    stderr: str
    stdout_truncated: bool = False


class _Tail:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        overflow = len(self.data) - self.limit
        if overflow > 0:
            del self.data[:overflow]
            self.truncated = True

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class _RecordStream:
    """Splits conda's one-line stdout records as they arrive and reports each one."""

    def __init__(self, on_record: RecordCallback | None, limit: int) -> None:
        self.on_record = on_record
        self.limit = limit
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.on_record is None:
            return
        # conda >= 4.4 ends records with NUL, older conda with a newline; a record is always
        # one line, while the pretty-printed result document never parses line by line.
        self.pending += chunk.replace(b"\x00", b"\n")
        while (end := self.pending.find(b"\n")) >= 0:
            record = bytes(self.pending[:end])
            del self.pending[: end + 1]
            self._emit(record)
        if len(self.pending) > self.limit:
            # No line end for a long stretch: the result document, never a record.
            self.pending.clear()

    def _emit(self, raw: bytes) -> None:
        assert self.on_record is not None
        text = raw.decode("utf-8", "replace").strip()
        if not text.startswith("{"):
            return
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return
        if isinstance(value, dict):
            self.on_record(value)


class _Lines:
    """Forwards stderr line by line (bounded in length and count)."""

    def __init__(self, on_line: LineCallback | None) -> None:
        self.on_line = on_line
        self.pending = bytearray()
        self.count = 0

    def feed(self, chunk: bytes) -> None:
        if self.on_line is None:
            return
        self.pending += chunk
        while (end := self.pending.find(b"\n")) >= 0:
            line = bytes(self.pending[:end])
            del self.pending[: end + 1]
            self._emit(line)
        if len(self.pending) > MAX_LOG_LINE:
            self._emit(bytes(self.pending))
            self.pending.clear()

    def close(self) -> None:
        if self.pending:
            self._emit(bytes(self.pending))
            self.pending.clear()

    def _emit(self, raw: bytes) -> None:
        assert self.on_line is not None
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return
        self.count += 1
        if self.count <= MAX_LOG_LINES:
            self.on_line(text[:MAX_LOG_LINE])
        elif self.count == MAX_LOG_LINES + 1:
            self.on_line("[further output of the tool is not shown]")


async def _pump(stream: asyncio.StreamReader, *sinks: Callable[[bytes], None]) -> None:
    while chunk := await stream.read(_CHUNK):
        for sink in sinks:
            sink(chunk)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Return once the tool itself has exited. (Before Python 3.12, ``Process.wait()`` also
    waits for every child still holding the tool's pipes open.)"""
    waiter = asyncio.ensure_future(proc.wait())
    try:
        # wait() ends at once in the usual case; the returncode poll covers the other one.
        while proc.returncode is None and not waiter.done():
            await asyncio.wait({waiter}, timeout=_POLL)
    finally:
        waiter.cancel()


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Stop the whole process group: SIGINT (Ctrl-C: conda and mamba roll back their
    transaction), SIGTERM after ``grace`` seconds, SIGKILL whatever is left after that."""
    pgid = proc.pid  # start_new_session: the tool leads its own group
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, TERM_GRACE)):
        _signal_group(pgid, sig)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_exited(proc), wait)
        if proc.returncode is not None:
            break
    _signal_group(pgid, signal.SIGKILL)
    await _exited(proc)


async def run_tool(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_record: RecordCallback | None = None,
    on_stderr_line: LineCallback | None = None,
    max_stdout: int = DEFAULT_MAX_STDOUT,
    max_stderr: int = DEFAULT_MAX_STDERR,
    kill_grace: float = DEFAULT_KILL_GRACE,
    drain_timeout: float = DRAIN_TIMEOUT,
) -> Completed:
    """Run ``argv`` (an argument list, never a shell) and collect its output.

    ``on_record`` receives each one-line JSON object on stdout as it arrives (conda's
    progress records); ``on_stderr_line`` each stderr line. Raises :class:`BackendError` when
    the tool cannot start or runs past ``timeout`` seconds; on ``asyncio.CancelledError`` the
    process group is stopped before the cancellation propagates. Once the tool has exited, a
    child still holding its output open gets ``drain_timeout`` seconds, then is killed.
    """
    if not argv:
        raise ValueError("empty command")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise BackendError(f"Could not run {argv[0]}: {exc.strerror or exc}") from exc
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = _Tail(max_stdout), _Tail(max_stderr)
    records, lines = _RecordStream(on_record, max_stdout), _Lines(on_stderr_line)
    pumps = [
        asyncio.ensure_future(_pump(proc.stdout, out.add, records.feed)),
        asyncio.ensure_future(_pump(proc.stderr, err.add, lines.feed)),
    ]
    try:
        try:
            await asyncio.wait_for(_exited(proc), timeout)
        except asyncio.TimeoutError:
            await _stop(proc, kill_grace)
            raise BackendError(
                f"{os.path.basename(argv[0])} did not finish within {timeout:g} s and was stopped."
            ) from None
        # A child that kept the pipes open must not hold us: drain briefly, then end it.
        _done, pending = await asyncio.wait(pumps, timeout=drain_timeout)
        if pending:
            _signal_group(proc.pid, signal.SIGKILL)
            await asyncio.wait(pumps, timeout=drain_timeout)
    except BaseException:
        if proc.returncode is None:
            await asyncio.shield(_stop(proc, kill_grace))
        else:
            _signal_group(proc.pid, signal.SIGKILL)
        raise
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        lines.close()
        # Let the transport see its pipes close (every process of the group is gone by now).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), drain_timeout)
    assert proc.returncode is not None
    return Completed(proc.returncode, out.text(), err.text(), out.truncated)
