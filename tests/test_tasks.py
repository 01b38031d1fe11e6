"""TaskManager: states, progress, log offsets, per-environment serialization, cancel, history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyter_envs.envs.model import Reporter
from jupyter_envs.envs.tasks import CANCELLED_MESSAGE, TaskLog, TaskManager
from jupyter_envs.errors import Conflict, InvalidRequest, NotFound

ENV_A = Path("/envs/a")
ENV_B = Path("/envs/b")


def test_log_offsets_and_bound() -> None:
    log = TaskLog(max_lines=3)
    for i in range(5):
        log.append(f"line {i}")
    assert (log.first, log.end) == (2, 5)
    chunk = log.read(0)
    assert (chunk.offset, chunk.lines, chunk.next, chunk.truncated) == (
        2,
        ["line 2", "line 3", "line 4"],
        5,
        True,
    )
    chunk = log.read(3, limit=1)
    assert (chunk.offset, chunk.lines, chunk.next, chunk.truncated) == (3, ["line 3"], 4, False)
    assert log.read(99).lines == []
    assert log.read(99).next == 5


async def test_success_result_progress_and_log() -> None:
    tasks = TaskManager()

    async def run(reporter: Reporter) -> object:
        reporter.progress("install", 1, 2)
        reporter.log("first\nsecond")
        return {"ok": True}

    task = tasks.submit("create", ENV_A, run)
    assert task.state == "queued"
    await task.wait()
    assert task.state == "succeeded"
    assert task.result == {"ok": True}
    assert task.to_json()["progress"] == {"phase": "install", "done": 1, "total": 2}
    assert task.log.read(0).lines == ["first", "second"]
    assert tasks.get(task.id) is task


async def test_envs_error_and_crash_are_failures() -> None:
    tasks = TaskManager()

    async def bad_input(reporter: Reporter) -> object:
        raise InvalidRequest("no such spec")

    async def crash(reporter: Reporter) -> object:
        raise RuntimeError("boom")

    one = tasks.submit("create", ENV_A, bad_input)
    two = tasks.submit("create", ENV_B, crash)
    await one.wait()
    await two.wait()
    assert (one.state, one.error, one.error_status) == ("failed", "no such spec", 400)
    assert (two.state, two.error_status) == ("failed", 500)
    assert "boom" in (two.error or "")


async def test_changes_to_one_env_are_serialized_others_run_in_parallel() -> None:
    tasks = TaskManager()
    events: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool):
        async def run(reporter: Reporter) -> object:
            events.append(f"start {name}")
            if wait:
                await gate.wait()
            events.append(f"end {name}")
            return None

        return run

    first = tasks.submit("install", ENV_A, job("a1", True))
    second = tasks.submit("install", ENV_A, job("a2", False))
    other = tasks.submit("install", ENV_B, job("b", False))
    await other.wait()
    assert first.state == "running"
    assert second.state == "queued"
    assert tasks.active(ENV_A) is not None
    gate.set()
    await second.wait()
    assert events == ["start a1", "start b", "end b", "end a1", "start a2", "end a2"]
    assert tasks.active(ENV_A) is None


async def test_cancel_running_and_queued() -> None:
    tasks = TaskManager()
    started = asyncio.Event()
    cleaned = []

    async def slow(reporter: Reporter) -> object:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append(True)
        return None

    running = tasks.submit("create", ENV_A, slow)
    queued = tasks.submit("install", ENV_A, slow)
    await started.wait()
    tasks.cancel(queued.id)
    tasks.cancel(running.id)
    await running.wait()
    await queued.wait()
    assert running.state == queued.state == "cancelled"
    assert running.error == CANCELLED_MESSAGE
    assert cleaned == [True]  # the queued one never started
    with pytest.raises(Conflict):
        tasks.cancel(running.id)
    with pytest.raises(NotFound):
        tasks.get("nope")


async def test_history_drops_oldest_finished() -> None:
    tasks = TaskManager(history=2)

    async def quick(reporter: Reporter) -> object:
        return None

    done = [tasks.submit("create", Path(f"/envs/{i}"), quick) for i in range(4)]
    for task in done:
        await task.wait()
    assert [t.id for t in tasks.list()] == [done[3].id, done[2].id]


async def test_reporter_from_a_thread_and_wait_change() -> None:
    tasks = TaskManager()

    async def threaded(reporter: Reporter) -> object:
        def work() -> None:
            for i in range(3):
                reporter.log(f"from thread {i}")

        await asyncio.to_thread(work)
        await asyncio.sleep(0)
        return None

    task = tasks.submit("create", ENV_A, threaded)
    seen: list[str] = []
    offset = 0
    while True:
        await task.wait_change(offset, timeout=5)
        chunk = task.log.read(offset)
        seen += chunk.lines
        offset = chunk.next
        if task.is_finished and offset == task.log.end:
            break
    assert seen == ["from thread 0", "from thread 1", "from thread 2"]


async def test_stop_cancels_everything() -> None:
    tasks = TaskManager()

    async def forever(reporter: Reporter) -> object:
        await asyncio.sleep(60)
        return None

    a = tasks.submit("create", ENV_A, forever)
    b = tasks.submit("create", ENV_B, forever)
    await asyncio.sleep(0)
    await tasks.stop(timeout=5)
    assert a.state == b.state == "cancelled"
