"""Lock files, clones, rollbacks and keeping an environment consistent, with the CLI backend.

The tool is the stand-in executable (``tests/fakecli.py``: no conda binary can exist here);
the environments are real ones installed from the local test channel.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import fakecli
import pytest
import rattler
from cliutil import DATA, meta, tool_path
from opsutil import Recorder, make_manager

from jupyter_envs.envs.backends.cli import (
    NO_REVISION_MESSAGE,
    CondaBackend,
    MambaBackend,
    MicromambaBackend,
)
from jupyter_envs.envs.backends.rattler_support import RESTORING
from jupyter_envs.errors import BackendError, InvalidRequest, NotFound, SolveError


def _explicit_urls(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "@EXPLICIT"
    return sorted(line.split("#")[0] for line in lines[1:])


@pytest.mark.parametrize(
    "fmt", [pytest.param("lock", id="lock"), pytest.param("explicit", id="explicit")]
)
async def test_exported_file_then_create_from_lock(
    fake: Path, real_env: Path, tmp_path: Path, fmt: str
) -> None:
    """Both files the manager exports re-create the environment through a conda CLI."""
    backend = CondaBackend(tool_path(fake, "conda"))
    lock = (await make_manager().export(real_env, fmt)).text  # type: ignore[arg-type]
    names = {"bar", "hello", "libfoo", "python"}
    preview = await backend.create_from_lock(tmp_path / "new", lock, Recorder(), dry_run=True)
    assert {p.name for p in preview.install} == names
    assert fakecli.calls(fake) == []  # a dry run of a lock needs no tool
    fakecli.write_plan(
        fake, {"create": {"stdout_file": str(DATA / "synthetic-mamba-2-create.json")}}
    )
    plan = await backend.create_from_lock(tmp_path / "new", lock, Recorder())
    assert {p.name for p in plan.install} == names
    [call] = fakecli.calls(fake)
    assert call["argv"][:4] == ["create", f"--prefix={tmp_path / 'new'}", "--json", "--yes"]
    assert call["argv"][4].startswith("--file=")
    assert call["file_mode"] == "0o600"
    assert call["dir_mode"] == "0o700"
    assert not Path(
        call["argv"][4].split("=", 1)[1]
    ).exists()  # the private file is gone afterwards
    urls = _explicit_urls(call["file"])
    assert sorted(u.rsplit("/", 1)[1].split("-")[0] for u in urls) == sorted(names)


async def test_create_from_bad_lock_is_invalid(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        await CondaBackend(tool_path(fake, "conda")).create_from_lock(
            tmp_path / "new", "not: [a lock", Recorder()
        )
    assert fakecli.calls(fake) == []


async def test_conda_clone_uses_clone_flag(fake: Path, real_env: Path, tmp_path: Path) -> None:
    fakecli.write_plan(fake, {"create": {"stdout": '{"success": true}'}})
    dest = tmp_path / "clone"
    plan = await CondaBackend(tool_path(fake, "conda")).clone(real_env, dest, Recorder())
    [call] = fakecli.calls(fake)
    assert call["argv"] == [
        "create", f"--prefix={dest}", "--json", "--yes", f"--clone={real_env}",
    ]  # fmt: skip
    assert {p.name for p in plan.install} == {"bar", "hello", "libfoo", "python"}


async def test_micromamba_clone_uses_explicit_list(
    fake: Path, real_env: Path, tmp_path: Path
) -> None:
    fakecli.write_plan(fake, {"create": {"stdout": '{"success": true}'}})
    dest = tmp_path / "clone"
    await MicromambaBackend(tool_path(fake, "micromamba")).clone(real_env, dest, Recorder())
    [call] = fakecli.calls(fake)
    assert not any(arg.startswith("--clone") for arg in call["argv"])
    records = [rattler.PrefixRecord.from_path(p) for p in (real_env / "conda-meta").glob("*.json")]
    assert _explicit_urls(call["file"]) == sorted(str(r.url) for r in records)
    assert all("#" in line for line in call["file"].splitlines()[4:])  # every URL has its md5


async def test_clone_of_a_non_environment(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await CondaBackend(tool_path(fake, "conda")).clone(tmp_path, tmp_path / "c", Recorder())


@pytest.mark.parametrize("cls", [CondaBackend, MicromambaBackend], ids=["conda", "micromamba"])
async def test_failed_change_restores_the_environment(
    fake: Path, real_env: Path, cls: type[CondaBackend]
) -> None:
    before = meta(real_env)
    fakecli.write_plan(
        fake,
        {
            "install": {
                "drop_records": ["bar-*.json", "libfoo-*.json"],
                "stdout_file": str(DATA / "synthetic-conda-LibMambaUnsatisfiableError.json"),
                "returncode": 1,
            }
        },
    )
    reporter = Recorder()
    with pytest.raises(SolveError):
        await cls(tool_path(fake, cls.name)).change(real_env, "install", ["bar"], [], reporter)
    assert meta(real_env) == before
    assert RESTORING in reporter.lines
    # The restored packages are really there again, files included.
    assert all((real_env / f).exists() for f in _files_of(real_env, "libfoo"))


def _files_of(prefix: Path, name: str) -> list[str]:
    [record] = (prefix / "conda-meta").glob(f"{name}-*.json")
    return list(json.loads(record.read_text())["files"])


async def test_cancelled_change_restores_the_environment(
    fake: Path, real_env: Path, tmp_path: Path
) -> None:
    before = meta(real_env)
    fakecli.write_plan(
        fake,
        {"remove": {"drop_records": ["bar-*.json"], "sleep_after": 60, "ignore_signals": True}},
    )
    backend = CondaBackend(tool_path(fake, "conda"), kill_grace=0.3)
    task = asyncio.ensure_future(backend.change(real_env, "remove", ["bar"], [], Recorder()))
    deadline = time.monotonic() + 10
    while meta(real_env) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert meta(real_env) != before
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert meta(real_env) == before


async def test_successful_change_is_left_alone(fake: Path, real_env: Path) -> None:
    fakecli.write_plan(
        fake,
        {"remove": {"drop_records": ["hello-*.json"], "stdout": '{"success": true}'}},
    )
    reporter = Recorder()
    backend = CondaBackend(tool_path(fake, "conda"))
    plan = await backend.change(real_env, "remove", ["hello"], [], reporter)
    assert [p.name for p in plan.remove] == ["hello"]
    assert not plan.install
    assert not plan.change
    assert not any(n.startswith("hello-") for n in meta(real_env))
    assert RESTORING not in reporter.lines


async def test_conda_rollback_argv(fake: Path, real_env: Path) -> None:
    fakecli.write_plan(
        fake, {"install": {"drop_records": ["hello-*.json"], "stdout": '{"success": true}'}}
    )
    plan = await CondaBackend(tool_path(fake, "conda")).rollback(real_env, 2, Recorder())
    [call] = fakecli.calls(fake)
    assert call["argv"] == [
        "install",
        f"--prefix={real_env}",
        "--json",
        "--yes",
        "--revision=2",
    ]
    assert [p.name for p in plan.remove] == ["hello"]


@pytest.mark.parametrize("cls", [MambaBackend, MicromambaBackend], ids=["mamba", "micromamba"])
async def test_rollback_unsupported(fake: Path, tmp_path: Path, cls: type[CondaBackend]) -> None:
    with pytest.raises(BackendError) as info:
        await cls(tool_path(fake, cls.name)).rollback(tmp_path, 1, Recorder())
    assert str(info.value) == NO_REVISION_MESSAGE.format(tool=cls.name)
    assert fakecli.calls(fake) == []


async def test_bad_action_and_revision_are_refused(fake: Path, tmp_path: Path) -> None:
    backend = CondaBackend(tool_path(fake, "conda"))
    with pytest.raises(InvalidRequest):
        await backend.change(tmp_path, "upgrade", ["x"], [], Recorder())  # type: ignore[arg-type]
    for revision in (-1, True, "2"):
        with pytest.raises(InvalidRequest):
            await backend.rollback(tmp_path, revision, Recorder())  # type: ignore[arg-type]
    assert fakecli.calls(fake) == []
