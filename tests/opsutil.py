"""Helpers shared by the operation tests (tests/test_ops_*.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import localchannel
import pytest

from jupyter_envs.envs.backends.rattler import RattlerBackend
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.manager import EnvManager
from jupyter_envs.envs.model import Plan
from jupyter_envs.envs.registry import EnvRegistry, environments_txt


def make_manager(*, read_only: bool = False) -> EnvManager:
    """A manager over the test's isolated conda configuration (see conftest ``isolated``)."""
    config = load_conda_config()
    return EnvManager(
        EnvRegistry(config), RattlerBackend(), read_only=read_only
    )


class Recorder:
    """A Reporter that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.steps: list[tuple[str, int, int | None]] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def progress(self, phase: str, done: int, total: int | None) -> None:
        self.steps.append((phase, done, total))


def dists(prefix: Path) -> set[str]:
    """``name-version-build`` of every conda-meta record of ``prefix``."""
    return {p.name[: -len(".json")] for p in (prefix / "conda-meta").glob("*.json")}


def tree(path: Path) -> dict[str, int]:
    """Every file under ``path`` with its size (a cheap picture of "nothing changed")."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.lstat().st_size for p in sorted(path.rglob("*"))}


def registered() -> list[str]:
    """The lines of ``~/.conda/environments.txt``."""
    path = environments_txt()
    return path.read_text().split() if path.exists() else []


def apply_plan(before: set[str], plan: Plan) -> set[str]:
    """The dists a plan says ``before`` turns into."""
    after = set(before)
    after -= {p.dist for p in plan.remove}
    after -= {c.old.dist for c in plan.change}
    after |= {p.dist for p in plan.install}
    after |= {c.new.dist for c in plan.change}
    return after


async def add_big_packages(channel: Path) -> tuple[str, tuple[str, ...]]:
    """Add 120 packages of 40 files each: an install long enough to be cancelled midway.
    Returns the channel URL and the package names."""
    payload = {f"f{j}": b"x" * 4000 for j in range(40)}
    big = [
        localchannel.Pkg(
            f"big{i}", "1.0", files={f"share/big{i}/{k}": v for k, v in payload.items()}
        )
        for i in range(120)
    ]
    await asyncio.to_thread(localchannel.add_packages, channel, big)
    return localchannel.channel_url(channel), tuple(p.name for p in big)


async def cancel_at_first_link(work: Awaitable[object], rec: Recorder) -> None:
    """Run ``work``, cancel it as soon as ``rec`` hears of the first linked package."""
    task = asyncio.ensure_future(work)
    for _ in range(4000):
        if any(line.startswith("link ") for line in rec.lines) or task.done():
            break
        await asyncio.sleep(0.002)
    assert not task.done(), "the install finished before it could be cancelled"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
