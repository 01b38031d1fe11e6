"""Remote JupyterLab over a real SSH tunnel, end to end.

A throwaway OpenSSH server on 127.0.0.1, a "remote" ``jupyter server`` bound to 127.0.0.1
with a non-root base_url and a token, and an ``ssh -N -L`` tunnel to it (tests/sshharness.py).
Every request below goes through the tunnel, as it would from a laptop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshharness
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

pytestmark = pytest.mark.skipif(
    not sshharness.openssh_available(), reason="OpenSSH is missing (scripts/test installs it)"
)

BASE_URL = "/remote/base/"
HAS_EXTENSION = importlib.util.find_spec("jupyter_envs.app") is not None
needs_routes = pytest.mark.skipif(
    importlib.util.find_spec("jupyter_envs.handlers") is None,
    reason="jupyter_envs.handlers (the REST routes) is not written yet",
)


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


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[sshharness.Sshd]:
    server = sshharness.Sshd(tmp_path / "sshd")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def remote(tmp_path: Path, isolated: Path) -> Iterator[sshharness.RemoteJupyter]:
    """The "remote" Jupyter server: the isolated HOME and conda config of the test."""
    import os

    server = sshharness.RemoteJupyter(
        tmp_path / "remote", dict(os.environ), base_url=BASE_URL, extensions=HAS_EXTENSION
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def tunnel(sshd: sshharness.Sshd, remote: sshharness.RemoteJupyter) -> Iterator[sshharness.Tunnel]:
    t = sshharness.Tunnel(sshd, remote.port)
    try:
        yield t.open()
    finally:
        t.close()


@pytest.fixture
def client(tunnel: sshharness.Tunnel, remote: sshharness.RemoteJupyter) -> Client:
    return Client(tunnel.url, remote.base_url, remote.token)


async def test_tunnel_reaches_only_the_remote_server(
    client: Client, remote: sshharness.RemoteJupyter, tunnel: sshharness.Tunnel
) -> None:
    assert tunnel.local_port != remote.port
    status = await client.json("GET", "api/status")
    assert "started" in status
    # The token protects everything: without it, the API refuses.
    resp = await AsyncHTTPClient().fetch(client.url("api/status"), raise_error=False)
    assert resp.code == 403
    # Only the base_url is served; the root is not the server.
    resp = await AsyncHTTPClient().fetch(
        f"{tunnel.url}/api/status", headers=client.headers, raise_error=False
    )
    assert resp.code == 404


async def test_kernel_through_tunnel(client: Client) -> None:
    specs = await client.json("GET", "api/kernelspecs")
    assert "python3" in specs["kernelspecs"]
    kernel = await client.json("POST", "api/kernels", {"name": "python3"}, expect=201)
    try:
        out = await execute(client, kernel["id"], "print(6 * 7)")
        assert out.strip() == "42"
    finally:
        await client.json("DELETE", f"api/kernels/{kernel['id']}", expect=204)


async def test_tunnel_killed_and_reopened(
    client: Client, tunnel: sshharness.Tunnel, sshd: sshharness.Sshd
) -> None:
    await client.json("GET", "api/status")
    tunnel.kill()
    with pytest.raises(ConnectionRefusedError):  # nothing listens locally any more
        await client.fetch("GET", "api/status")
    tunnel.open()
    assert tunnel.opened == 2
    await client.json("GET", "api/status")
    assert "Accepted publickey" in sshd.log()
