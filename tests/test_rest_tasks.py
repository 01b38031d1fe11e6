"""Tasks through a real server: log offsets, a WebSocket client that reconnects, cancel in
the middle of a create, changes to one environment in order, reads never blocked.

Slow operations come from a real conda channel served over HTTP on 127.0.0.1 by a small
server started here, which holds package downloads until the test lets them go.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gatedchannel import GatedChannelServer
from resthelp import TIMEOUT, Fetch, call, eid, follow
from tornado.httpclient import HTTPClientError


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}}


@pytest.fixture
def slow_channel(tmp_path: Path) -> Iterator[GatedChannelServer]:
    channel = GatedChannelServer.build(tmp_path / "slow-channel")
    yield channel
    channel.stop()


async def _until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_cancel_in_the_middle_of_a_create(
    jp_fetch: Fetch, slow_channel: GatedChannelServer, envs_dir: Path, tmp_path: Path
) -> None:
    body = {"name": "slow", "specs": slow_channel.names, "channels": [slow_channel.url]}
    status, task, response = await call(jp_fetch, "POST", "environments", body=body)
    assert status == 202, task
    await _until(lambda: slow_channel.downloads, "the first download")
    status, running, _ = await call(jp_fetch, "GET", "tasks", task["id"])
    assert running["state"] == "running"
    status, again, _ = await call(jp_fetch, "POST", "environments", body=body)
    assert status == 409, again  # the same target is being created
    assert "slow" in again["message"] or task["id"] in again["message"]
    status, cancelling, _ = await call(jp_fetch, "DELETE", "tasks", task["id"])
    assert status == 202
    assert cancelling["id"] == task["id"]
    done = await follow(jp_fetch, response)
    assert done["state"] == "cancelled", done
    # Let the held downloads go: nothing may be written after the cancel.
    slow_channel.gate.set()
    await asyncio.sleep(1.0)
    assert list(envs_dir.iterdir()) == []
    registered = tmp_path / "home" / ".conda" / "environments.txt"
    assert not registered.exists() or "slow" not in registered.read_text()
    status, _, _ = await call(jp_fetch, "DELETE", "tasks", task["id"])
    assert status == 409  # already finished


async def test_log_offsets(jp_fetch: Fetch, envs_dir: Path) -> None:
    _, _, response = await call(
        jp_fetch, "POST", "environments", body={"name": "logs", "specs": ["bar"]}
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    tid = done["id"]
    _, full, _ = await call(jp_fetch, "GET", "tasks", tid, "log")
    lines = full["lines"]
    assert len(lines) >= 2
    assert (full["offset"], full["next"], full["truncated"]) == (0, len(lines), False)
    assert full["next"] == done["log_length"]
    _, rest, _ = await call(jp_fetch, "GET", "tasks", tid, "log", params={"offset": "1"})
    assert rest["lines"] == lines[1:]
    _, one, _ = await call(
        jp_fetch, "GET", "tasks", tid, "log", params={"offset": "1", "limit": "1"}
    )
    assert (one["lines"], one["next"]) == (lines[1:2], 2)
    _, past, _ = await call(jp_fetch, "GET", "tasks", tid, "log", params={"offset": "999"})
    assert (past["lines"], past["next"]) == ([], len(lines))


async def _read_stream(ws: Any) -> list[dict[str, Any]]:
    messages = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), TIMEOUT)
        if raw is None:
            ws.close()
            return messages
        messages.append(json.loads(raw))


async def test_websocket_reconnect_loses_no_line(
    jp_fetch: Fetch, jp_ws_fetch: Any, slow_channel: GatedChannelServer, envs_dir: Path
) -> None:
    slow_channel.delay = 0.2
    slow_channel.gate.set()
    body = {"name": "streamed", "specs": slow_channel.names, "channels": [slow_channel.url]}
    _, task, response = await call(jp_fetch, "POST", "environments", body=body)
    tid = task["id"]

    # First client: reads one message, then drops the connection.
    ws = await jp_ws_fetch("jupyter-envs", "tasks", tid, "stream", params={"offset": "0"})
    first = json.loads(await asyncio.wait_for(ws.read_message(), TIMEOUT))
    ws.close()
    seen: list[str] = []
    offset = 0
    if first["type"] == "log":
        assert first["offset"] == 0
        seen += first["lines"]
        offset = first["next"]

    # It comes back with its offset and reads to the end.
    ws = await jp_ws_fetch("jupyter-envs", "tasks", tid, "stream", params={"offset": str(offset)})
    messages = await _read_stream(ws)
    assert messages[-1]["type"] == "end"
    assert messages[-1]["task"]["state"] == "succeeded"
    for message in messages[:-1]:
        assert message["offset"] == offset  # contiguous: no gap, no repeat
        seen += message["lines"]
        offset = message["next"]

    _, full, _ = await call(jp_fetch, "GET", "tasks", tid, "log")
    assert seen == full["lines"]
    assert len(seen) >= len(slow_channel.names)
    await follow(jp_fetch, response)

    # A finished task streams its whole log, then ends; from its end, just the end.
    ws = await jp_ws_fetch("jupyter-envs", "tasks", tid, "stream")
    replay = await _read_stream(ws)
    assert [line for m in replay[:-1] for line in m["lines"]] == full["lines"]
    ws = await jp_ws_fetch("jupyter-envs", "tasks", tid, "stream", params={"offset": str(offset)})
    assert [m["type"] for m in await _read_stream(ws)] == ["end"]


async def test_changes_to_one_env_run_one_after_another(
    jp_fetch: Fetch, make_env: Any
) -> None:
    prefix = await make_env("serial", ("libfoo=1.9",))
    ident = eid(prefix)
    first = call(
        jp_fetch, "POST", "environments", ident, "packages",
        body={"action": "install", "specs": ["bar=2.0"]},
    )
    second = call(
        jp_fetch, "POST", "environments", ident, "packages",
        body={"action": "install", "specs": ["envvars"]},
    )
    (s1, t1, r1), (s2, t2, r2) = await asyncio.gather(first, second)
    assert (s1, s2) == (202, 202), (t1, t2)
    one, two = await follow(jp_fetch, r1), await follow(jp_fetch, r2)
    assert one["state"] == two["state"] == "succeeded", (one, two)
    ordered = sorted([one, two], key=lambda t: t["started"])
    assert ordered[1]["started"] >= ordered[0]["finished"]
    # Both changes are there: neither worked from a stale view of the other.
    assert (prefix / "share" / "bar" / "2.0").exists()
    assert (prefix / "etc" / "conda" / "activate.d" / "envvars.sh").exists()
    assert (prefix / "share" / "libfoo" / "VERSION").read_text() == "1.10\n"


async def test_reads_answer_during_a_running_change(
    jp_fetch: Fetch, make_env: Any, slow_channel: GatedChannelServer
) -> None:
    prefix = await make_env("busy", ("libfoo",))
    ident = eid(prefix)
    _, task, response = await call(
        jp_fetch, "POST", "environments", ident, "packages",
        body={"action": "install", "specs": slow_channel.names[:1],
              "channels": [slow_channel.url]},
    )
    await _until(lambda: slow_channel.downloads, "the download")
    for path in (
        ("environments",),
        ("environments", ident),
        ("environments", ident, "revisions"),
        ("tasks", task["id"]),
    ):
        start = time.monotonic()
        status, _, _ = await call(jp_fetch, "GET", *path)
        assert status == 200, path
        assert time.monotonic() - start < 5, path
    _, running, _ = await call(jp_fetch, "GET", "tasks", task["id"])
    assert running["state"] == "running"
    slow_channel.gate.set()
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    assert (prefix / "share" / slow_channel.names[0] / "data").exists()


async def test_cancel_in_the_middle_of_a_change_leaves_the_env_as_it_was(
    jp_fetch: Fetch, make_env: Any, slow_channel: GatedChannelServer
) -> None:
    prefix = await make_env("steady", ("libfoo=1.9",))
    before = sorted(p.name for p in (prefix / "conda-meta").glob("*.json"))
    files = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    _, task, response = await call(
        jp_fetch, "POST", "environments", eid(prefix), "packages",
        body={"action": "install", "specs": slow_channel.names, "channels": [slow_channel.url]},
    )
    await _until(lambda: slow_channel.downloads, "the download")
    status, _, _ = await call(jp_fetch, "DELETE", "tasks", task["id"])
    assert status == 202
    done = await follow(jp_fetch, response)
    assert done["state"] == "cancelled", done
    slow_channel.gate.set()
    await asyncio.sleep(1.0)
    assert sorted(p.name for p in (prefix / "conda-meta").glob("*.json")) == before
    after = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    assert [f for f in after if f not in files and not f.startswith("conda-meta/")] == []
    status, details, _ = await call(jp_fetch, "GET", "environments", eid(prefix))
    assert [p["name"] for p in details["packages"]] == ["libfoo"]


async def test_bad_offsets_are_400(jp_fetch: Fetch, jp_ws_fetch: Any, envs_dir: Path) -> None:
    _, task, response = await call(
        jp_fetch, "POST", "environments", body={"name": "off", "specs": ["libfoo"]}
    )
    await follow(jp_fetch, response)
    for offset in ("-1", "x", "1e3", "99999999999"):
        status, reply, _ = await call(
            jp_fetch, "GET", "tasks", task["id"], "log", params={"offset": offset}
        )
        assert status == 400, (offset, reply)
        assert "offset" in reply["message"]
    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch("jupyter-envs", "tasks", task["id"], "stream", params={"offset": "x"})
    assert info.value.code == 400


async def test_a_long_log_streams_in_contiguous_batches(
    jp_serverapp: Any, jp_ws_fetch: Any, envs_dir: Path
) -> None:
    # The lines come from a task written here (the stream, not an engine, is under test).
    app = jp_serverapp.extension_manager.extension_points["jupyter_envs"].app
    gate = asyncio.Event()

    async def chatty(reporter: Any) -> object:
        for i in range(1200):
            reporter.log(f"line {i}")
            if i == 600:
                await gate.wait()
        return None

    task = app.tasks.submit("create", envs_dir / "chatty", chatty)
    ws = await jp_ws_fetch("jupyter-envs", "tasks", task.id, "stream", params={"offset": "5"})
    first = json.loads(await asyncio.wait_for(ws.read_message(), TIMEOUT))
    gate.set()
    messages = [first, *await _read_stream(ws)]
    offset, lines = 5, []
    for message in messages[:-1]:
        assert message["offset"] == offset
        assert len(message["lines"]) <= 500
        lines += message["lines"]
        offset = message["next"]
    assert lines == [f"line {i}" for i in range(5, 1200)]
    assert messages[-1]["type"] == "end"
