"""A token-authenticated client for a Jupyter server with jupyter_envs, as a laptop sees it.

HTTP and WebSocket calls under a base_url, code run in a kernel over its channels, a task
log followed across reconnections, and JupyterLab's DOM as headless Chromium renders it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")


class Client:
    """A token-authenticated HTTP and WebSocket client for a Jupyter server behind a tunnel."""

    def __init__(self, origin: str, base_url: str, token: str) -> None:
        self.origin = origin
        self.base_url = base_url
        self.token = token

    def url(self, path: str, *, scheme: str = "http") -> str:
        return f"{self.origin.replace('http', scheme, 1)}{self.base_url}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    async def fetch(self, method: str, path: str, body: Any = None, **kw: Any) -> HTTPResponse:
        """One request; a 4xx/5xx response is returned, not raised."""
        data = None if body is None else json.dumps(body)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = ""
        req = HTTPRequest(
            self.url(path),
            method=method,
            body=data,
            headers=self.headers,
            request_timeout=30,
            follow_redirects=False,
            **kw,
        )
        return await AsyncHTTPClient().fetch(req, raise_error=False)

    async def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        resp = await self.fetch(method, path, body)
        assert resp.code == expect, f"{method} {path}: {resp.code} {resp.body[:500]!r}"
        return json.loads(resp.body) if resp.body else None

    async def websocket(self, path: str) -> WebSocketClientConnection:
        req = HTTPRequest(self.url(path, scheme="ws"), headers=self.headers, request_timeout=30)
        return await websocket_connect(req)


async def execute(client: Client, kernel_id: str, code: str, timeout: float = 60) -> str:
    """Run ``code`` in a kernel over its WebSocket channels; return what it printed."""
    ws = await client.websocket(f"api/kernels/{kernel_id}/channels")
    msg_id = uuid.uuid4().hex
    ws.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    out: list[str] = []

    async def collect() -> str:
        while True:
            raw = await ws.read_message()
            assert raw is not None, "kernel websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    try:
        return await asyncio.wait_for(collect(), timeout)
    finally:
        ws.close()


class LogFollower:
    """Follows a task's log over ``tasks/{tid}/stream?offset=N``, across reconnections."""

    def __init__(self, client: Client, tid: str) -> None:
        self.client = client
        self.tid = tid
        self.lines: list[str] = []
        self.connections = 0
        self.end: dict[str, Any] | None = None

    @property
    def offset(self) -> int:
        return len(self.lines)

    async def connect(self) -> WebSocketClientConnection:
        ws = await self.client.websocket(
            f"jupyter-envs/tasks/{self.tid}/stream?offset={self.offset}"
        )
        self.connections += 1
        return ws

    async def follow(self) -> None:
        """Connect from the current offset and read until the task's stream ends."""
        ws = await self.connect()
        try:
            assert await self.read(ws), "the stream closed before the task ended"
        finally:
            ws.close()

    async def poll(self, timeout: float = 120) -> None:
        """Catch up with plain ``GET tasks/{tid}/log?offset=N`` requests until the task ends."""
        self.connections += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            chunk = await self.client.json(
                "GET", f"jupyter-envs/tasks/{self.tid}/log?offset={self.offset}"
            )
            assert chunk["offset"] == self.offset, (chunk["offset"], self.offset)
            self.lines.extend(chunk["lines"])
            assert chunk["next"] == self.offset
            if chunk["state"] in ("succeeded", "failed", "cancelled") and not chunk["lines"]:
                self.end = await self.client.json("GET", f"jupyter-envs/tasks/{self.tid}")
                return
            assert loop.time() < deadline, "the task did not end"
            await asyncio.sleep(0.1)

    async def read(self, ws: WebSocketClientConnection, *, until_lines: int | None = None) -> bool:
        """Read messages until the stream ends (True), closes early, or has ``until_lines``."""
        while until_lines is None or self.offset < until_lines:
            raw = await asyncio.wait_for(ws.read_message(), 60)
            if raw is None:
                return False  # the connection dropped
            msg = json.loads(raw)
            if msg["type"] == "log":
                # The server resumes exactly where this client stopped reading.
                assert msg["offset"] == self.offset, (msg["offset"], self.offset)
                self.lines.extend(msg["lines"])
                assert msg["next"] == self.offset
            elif msg["type"] == "end":
                self.end = msg["task"]
                return True
        return False


async def wait_task(client: Client, tid: str, timeout: float = 120) -> dict[str, Any]:
    """Poll a task until it has finished; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        task: dict[str, Any] = await client.json("GET", f"jupyter-envs/tasks/{tid}")
        if task["state"] in ("succeeded", "failed", "cancelled"):
            return task
        assert loop.time() < deadline, f"task still {task['state']} after {timeout} s"
        await asyncio.sleep(0.1)


async def eventually(predicate: Any, timeout: float, what: str) -> None:
    """Await until ``predicate()`` is true (a sync callable)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def lab_dom(client: Client) -> str:
    """JupyterLab's DOM once its scripts ran, as headless Chromium renders it."""
    if CHROMIUM is None or not (REPO / "jupyter_envs" / "labextension" / "package.json").is_file():
        pytest.skip("needs chromium and the built panel (scripts/test provides both)")
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # the tests may run as root
        "--disable-gpu",
        f"--user-data-dir={os.environ['HOME']}/chromium",
        "--virtual-time-budget=30000",
        "--dump-dom",
        client.url(f"lab?token={client.token}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out.decode(errors="replace")
