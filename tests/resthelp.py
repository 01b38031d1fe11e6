"""Helpers for the REST and CLI tests: JSON requests through jp_fetch, task following,
disk snapshots, and a slow conda channel served over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import localchannel
from tornado.httpclient import HTTPResponse

from jupyter_envs.envs.model import env_id

TIMEOUT = 60
Fetch = Callable[..., Awaitable[HTTPResponse]]
ROOT = "jupyter-envs"


async def call(
    fetch: Fetch, method: str, *path: str, body: Any = None, params: dict[str, Any] | None = None
) -> tuple[int, Any, HTTPResponse]:
    """``(status, parsed JSON or text, response)``; 4xx/5xx are returned, not raised."""
    kwargs: dict[str, Any] = {"method": method, "params": params or {}}
    if body is not None:
        kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    elif method == "POST":
        kwargs["body"] = "{}"
    response = await fetch(ROOT, *path, raise_error=False, **kwargs)
    text = response.body.decode() if response.body else ""
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = text
    return response.code, data, response


async def follow(fetch: Fetch, response: HTTPResponse, timeout: float = 120) -> dict[str, Any]:
    """Poll the task a 202 names (through its Location) until it finishes; return it."""
    assert response.code == 202, response.body
    location = response.headers["Location"]
    tid = location.rstrip("/").rsplit("/", 1)[-1]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, task, _ = await call(fetch, "GET", "tasks", tid)
        assert status == 200
        if task["state"] in ("succeeded", "failed", "cancelled"):
            return task
        assert asyncio.get_running_loop().time() < deadline, task
        await asyncio.sleep(0.05)


def eid(prefix: Path) -> str:
    return env_id(prefix)


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``roots`` with (size, mtime_ns): a change anywhere shows."""
    seen: dict[str, tuple[int, int]] = {}
    for root in roots:
        if root.is_file():
            st = root.stat()
            seen[str(root)] = (st.st_size, st.st_mtime_ns)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st = path.lstat()
                seen[str(path)] = (st.st_size, st.st_mtime_ns)
    return seen


class SlowChannel:
    """A conda channel over HTTP whose package downloads wait for :attr:`gate`."""

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        self.names = names
        self.gate = threading.Event()
        self.delay = 0.0
        self.downloads: list[str] = []
        channel = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith((".tar.bz2", ".conda")):
                    channel.downloads.append(self.path)
                    channel.gate.wait(TIMEOUT)
                    time.sleep(channel.delay)
                super().do_GET()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @classmethod
    def build(cls, root: Path) -> SlowChannel:
        """Five packages with names no other test uses (the package cache never has them)."""
        tag = uuid.uuid4().hex[:8]
        names = [f"slow{i}-{tag}" for i in range(5)]
        pkgs = [
            localchannel.Pkg(name, "1.0", files={f"share/{name}/data": b"x" * 2000})
            for name in names
        ]
        return cls(localchannel.build_channel(root, pkgs), names)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
