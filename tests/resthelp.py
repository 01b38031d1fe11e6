"""Helpers for the REST and CLI tests: JSON requests through jp_fetch, task following,
disk snapshots, and a slow conda channel served over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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
