"""Long operations as tasks: state, progress, a bounded log with offsets, cancel, history.

Changes to one environment run one after another (one lock per prefix); reads never take
a lock, so they are never blocked by a running change. A client that lost its connection
resumes the log from the offset it had read up to and loses no line that is still kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import Cancelled, Conflict, EnvsError, NotFound, http_status
from .model import Reporter, env_id, to_json

TaskState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[TaskState] = frozenset({"succeeded", "failed", "cancelled"})
MAX_LINE_CHARS = 4000
CANCELLED_MESSAGE = "Cancelled; the environment was left consistent."
Runner = Callable[[Reporter], Awaitable[object]]
INTERNAL_ERROR = "Internal error: {exc}. The server log has the details."

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogChunk:
    """Lines ``[offset, next)`` of a task log; ``truncated`` when lines before were dropped."""

    offset: int
    lines: list[str]
    next: int
    truncated: bool


class TaskLog:
    """An append-only log that keeps its last ``max_lines`` lines, addressed by offset."""

    def __init__(self, max_lines: int = 10_000) -> None:
        self._lines: deque[str] = deque(maxlen=max(1, max_lines))
        self._end = 0

    @property
    def end(self) -> int:
        """The offset the next line will get (the number of lines ever written)."""
        return self._end

    @property
    def first(self) -> int:
        """The offset of the oldest line still kept."""
        return self._end - len(self._lines)

    def append(self, line: str) -> None:
        self._lines.append(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…")
        self._end += 1

    def read(self, offset: int = 0, limit: int | None = None) -> LogChunk:
        """Lines from ``offset`` (at most ``limit``); an offset past the end reads nothing."""
        start = min(max(offset, self.first), self._end)
        stop = self._end if limit is None else min(self._end, start + max(0, limit))
        lines = list(itertools.islice(self._lines, start - self.first, stop - self.first))
        return LogChunk(start, lines, stop, truncated=start > max(offset, 0))


class Task:
    """One long operation on one environment."""

    def __init__(self, tid: str, kind: str, prefix: Path, max_log_lines: int) -> None:
        self.id = tid
        self.kind = kind
        self.prefix = prefix
        self.state: TaskState = "queued"
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.phase = ""
        self.done = 0
        self.total: int | None = None
        self.result: Any = None
        self.error: str | None = None
        self.error_status: int | None = None
        self.log = TaskLog(max_log_lines)
        self._changed = asyncio.Event()
        self._future: asyncio.Task[None] | None = None

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    def to_json(self) -> dict[str, Any]:
        """The task as the REST API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "env_id": env_id(self.prefix),
            "prefix": str(self.prefix),
            "state": self.state,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": {"phase": self.phase, "done": self.done, "total": self.total},
            "result": self.result,
            "error": self.error,
            "error_status": self.error_status,
            "log_length": self.log.end,
        }

    async def wait_change(self, offset: int, timeout: float | None = None) -> None:
        """Return once the log has a line at ``offset`` or later, or the task has finished."""
        event = self._changed
        if self.log.end > offset or self.is_finished:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def wait(self) -> None:
        """Return when the task has finished (whatever its outcome)."""
        while not self.is_finished:
            await self.wait_change(self.log.end)

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _add_line(self, line: str) -> None:
        for part in line.splitlines() or [""]:
            self.log.append(part)
        self._notify()

    def _set_progress(self, phase: str, done: int, total: int | None) -> None:
        self.phase, self.done, self.total = phase, done, total
        self._notify()


class TaskReporter:
    """The :class:`~jupyter_envs.envs.model.Reporter` a task's operation writes to.

    Safe to call from a worker thread: such calls are handed to the event loop.
    """

    def __init__(self, task: Task, loop: asyncio.AbstractEventLoop) -> None:
        self._task = task
        self._loop = loop
        self._thread = threading.get_ident()

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._thread:
            func(*args)
        else:
            self._loop.call_soon_threadsafe(func, *args)

    def log(self, line: str) -> None:
        self._call(self._task._add_line, str(line))

    def progress(self, phase: str, done: int, total: int | None) -> None:
        self._call(self._task._set_progress, str(phase), int(done), total)


class TaskManager:
    """Runs tasks, one at a time per environment, and remembers the recent ones.

    ``history``: finished tasks kept for clients to look at (oldest dropped first).
    ``log_lines``: lines kept per task log (older lines are dropped; offsets stay valid).
    """

    def __init__(self, *, history: int = 50, log_lines: int = 10_000) -> None:
        self.history = max(1, history)
        self.log_lines = max(1, log_lines)
        self._tasks: dict[str, Task] = {}
        self._locks: dict[Path, tuple[asyncio.Lock, int]] = {}

    def submit(self, kind: str, prefix: Path, run: Runner) -> Task:
        """Queue ``run`` as a task on ``prefix``; it starts once no other task holds the prefix."""
        task = Task(os.urandom(8).hex(), kind, Path(prefix), self.log_lines)
        self._tasks[task.id] = task
        loop = asyncio.get_running_loop()
        task._future = loop.create_task(self._run(task, run, TaskReporter(task, loop)))
        return task

    def get(self, tid: str) -> Task:
        """The task ``tid``; NotFound when unknown or dropped from the history."""
        try:
            return self._tasks[tid]
        except KeyError:
            msg = f"No task {tid[:40]!r} (unknown, or dropped from the history)."
            raise NotFound(msg) from None

    def list(self) -> list[Task]:
        """Running and recent tasks, newest first."""
        return sorted(self._tasks.values(), key=lambda t: t.created, reverse=True)

    def active(self, prefix: Path) -> Task | None:
        """A task queued or running on ``prefix``, if there is one."""
        prefix = Path(prefix)
        return next(
            (t for t in self._tasks.values() if not t.is_finished and t.prefix == prefix), None
        )

    def cancel(self, tid: str) -> Task:
        """Ask task ``tid`` to stop; its operation leaves the environment consistent."""
        task = self.get(tid)
        if task.is_finished:
            raise Conflict(f"Task {tid} has already finished ({task.state}).")
        if task._future is not None:
            task._future.cancel()
        return task

    async def stop(self, timeout: float) -> None:
        """Cancel every unfinished task and wait up to ``timeout`` seconds for them to end."""
        pending = [t._future for t in self._tasks.values() if t._future and not t._future.done()]
        for future in pending:
            future.cancel()
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            if late:
                _log.warning("%d task(s) did not stop within %s s", len(late), timeout)

    async def _run(self, task: Task, run: Runner, reporter: TaskReporter) -> None:
        lock = self._acquire_lock(task.prefix)
        try:
            async with lock:
                task.state, task.started = "running", time.time()
                task._notify()
                task.result = to_json(await run(reporter))
                task.state = "succeeded"
        except (asyncio.CancelledError, Cancelled):
            task.state, task.error = "cancelled", CANCELLED_MESSAGE
            task._add_line(CANCELLED_MESSAGE)
        except EnvsError as exc:
            task.state, task.error, task.error_status = "failed", str(exc), http_status(exc)
            task._add_line(f"Error: {exc}")
        except Exception as exc:
            _log.exception("task %s (%s %s) failed", task.id, task.kind, task.prefix)
            task.state, task.error_status = "failed", 500
            task.error = INTERNAL_ERROR.format(exc=exc)
            task._add_line(task.error)
        finally:
            self._release_lock(task.prefix)
            task.finished = time.time()
            task._notify()
            self._prune()

    def _acquire_lock(self, prefix: Path) -> asyncio.Lock:
        lock, users = self._locks.get(prefix, (asyncio.Lock(), 0))
        self._locks[prefix] = (lock, users + 1)
        return lock

    def _release_lock(self, prefix: Path) -> None:
        lock, users = self._locks[prefix]
        if users <= 1:
            del self._locks[prefix]
        else:
            self._locks[prefix] = (lock, users - 1)

    def _prune(self) -> None:
        finished = [t for t in self.list() if t.is_finished]
        for old in finished[self.history :]:
            del self._tasks[old.id]
