"""Helpers for the CLI-backend tests: recorded outputs, the stand-in tool, processes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import fakecli
import pytest

from jupyter_envs.envs.backends.cli_parse import final_document, parse_documents

DATA = fakecli.DATA


def recorded(name: str) -> str:
    """The text of a recorded output in tests/data/cli."""
    return (DATA / name).read_text(encoding="utf-8")


def result_of(name: str) -> dict[str, Any]:
    """The result document of a recorded output."""
    doc = final_document(parse_documents(recorded(name)))
    assert doc is not None
    return doc


def tool_path(state: Path, tool: str) -> str:
    """The stand-in ``tool`` installed next to the ``state`` dir (see the ``fake`` fixtures)."""
    return str(state.parent / "fakebin" / tool)


def install_fake(tmp_path: Path) -> Path:
    """Install the stand-in tools under ``tmp_path``; their state dir (set FAKECLI_DIR to it)."""
    state = tmp_path / "fakecli"
    fakecli.install(tmp_path / "fakebin")
    fakecli.write_plan(state, {})
    return state


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


async def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    """Whether ``pid`` is gone within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not alive(pid)


async def wait_file(path: Path, seconds: float = 10.0) -> str:
    """The text of ``path`` once something was written to it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def meta(prefix: Path) -> set[str]:
    """The names of the package records in ``prefix/conda-meta``."""
    return {p.name for p in (prefix / "conda-meta").glob("*.json")}


# Fixtures of the CLI-backend tests (this module is a plugin: see conftest.pytest_plugins).


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in tools on a private bin dir; returns their state dir (plan + argv log)."""
    state = install_fake(tmp_path)
    monkeypatch.setenv("FAKECLI_DIR", str(state))
    return state


@pytest.fixture
async def real_env(make_env: Any) -> Path:
    """A real environment installed from the local channel (bar pulls libfoo)."""
    path: Path = await make_env("real-env", ("bar", "hello"))
    return path
