"""The CLI backend's process machinery, run against a stand-in executable.

No conda-family binary can be installed here (no conda channel is reachable and the tools are
not on PyPI), so ``tests/fakecli.py`` is installed under the tools' names: it replays recorded
outputs (tests/data/cli) and records the argument lists it got.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import fakecli
import localchannel
import pytest
from cliutil import (
    DATA,
    alive,
    recorded,
    tool_path,
    wait_file,
    wait_gone,
)
from opsutil import Recorder, registered

from jupyter_envs.envs.backends.cli import CondaBackend, MambaBackend, MicromambaBackend
from jupyter_envs.envs.backends.cli_process import run_tool
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.manager import CreateRequest, EnvManager
from jupyter_envs.envs.registry import EnvRegistry
from jupyter_envs.errors import BackendError, NotFound, SolveError


@pytest.fixture
def empty_env(tmp_path: Path) -> Path:
    """An existing environment with no packages (just ``conda-meta``)."""
    prefix = tmp_path / "empty-env"
    (prefix / "conda-meta").mkdir(parents=True)
    return prefix


async def test_create_argv_and_plan(fake: Path, tmp_path: Path, real_env: Path) -> None:
    fakecli.write_plan(
        fake,
        {
            "create": {
                "copy_records_from": str(real_env),
                "stdout_file": str(DATA / "synthetic-mamba-2-create.json"),
            }
        },
    )
    backend = MambaBackend(tool_path(fake, "mamba"))
    prefix = tmp_path / "envs" / "demo"
    reporter = Recorder()
    plan = await backend.create(prefix, ["bar", "libfoo>=1.9"], ["file:///ch"], reporter)
    [call] = fakecli.calls(fake)
    assert call["tool"] == "mamba"
    assert call["argv"] == [
        "create", f"--prefix={prefix}", "--json", "--yes",
        "--channel=file:///ch", "--override-channels", "--", "bar", "libfoo>=1.9",
    ]  # fmt: skip
    # The plan of a real create is what landed on disk, not the tool's word.
    assert [p.dist for p in plan.install] == [
        "bar-2.0-0",
        "hello-0.1.0-pyh0_0",
        "libfoo-1.10-0",
        f"python-{localchannel.PY_VERSION}-h0_0_cpython",
    ]
    assert reporter.lines[0].startswith("$ ")


async def test_option_like_values_stay_values(fake: Path, tmp_path: Path) -> None:
    fakecli.write_plan(fake, {"create": {"stdout": '{"success": true}'}})
    prefix = tmp_path / "--json"
    await CondaBackend(tool_path(fake, "conda")).create(prefix, ["x"], ["--offline"], Recorder())
    [call] = fakecli.calls(fake)
    assert f"--prefix={prefix}" in call["argv"]
    assert "--channel=--offline" in call["argv"]
    assert "--offline" not in call["argv"]


async def test_change_remove_has_no_channels_and_maps_not_found(
    fake: Path, empty_env: Path
) -> None:
    fakecli.write_plan(
        fake,
        {
            "remove": {
                "stdout_file": str(
                    DATA / "conda-4.13.0-install-dry-run-PackagesNotFoundError.json"
                ),
                "returncode": 1,
            }
        },
    )
    backend = CondaBackend(tool_path(fake, "conda"))
    with pytest.raises(NotFound, match="xyz"):
        await backend.change(empty_env, "remove", ["xyz"], ["file:///ch"], Recorder())
    [call] = fakecli.calls(fake)
    assert call["argv"] == ["remove", f"--prefix={empty_env}", "--json", "--yes", "--", "xyz"]


@pytest.mark.parametrize("action", ["install", "update"])
async def test_change_install_update_argv(fake: Path, empty_env: Path, action: str) -> None:
    fakecli.write_plan(
        fake, {"*": {"stdout_file": str(DATA / "synthetic-conda-install-update.json")}}
    )
    backend = CondaBackend(tool_path(fake, "conda"))
    plan = await backend.change(empty_env, action, ["bar"], [], Recorder(), dry_run=True)  # type: ignore[arg-type]
    [call] = fakecli.calls(fake)
    assert call["argv"] == [
        action,
        f"--prefix={empty_env}",
        "--json",
        "--yes",
        "--dry-run",
        "--",
        "bar",
    ]
    assert [c.name for c in plan.change] == ["libfoo"]


async def test_update_with_a_constraint_is_an_install(fake: Path, empty_env: Path) -> None:
    fakecli.write_plan(fake, {"*": {"stdout": '{"success": true}'}})
    backend = CondaBackend(tool_path(fake, "conda"))
    await backend.change(empty_env, "update", ["libfoo"], [], Recorder())
    await backend.change(empty_env, "update", ["libfoo>=1.10"], [], Recorder())
    assert [c["argv"][0] for c in fakecli.calls(fake)] == ["update", "install"]
    assert fakecli.calls(fake)[1]["argv"][-1] == "libfoo>=1.10"


async def test_dry_run_that_exits_non_zero_still_plans(fake: Path, tmp_path: Path) -> None:
    fakecli.write_plan(
        fake,
        {"create": {"stdout_file": str(DATA / "mamba-0.3-create-dry-run.txt"), "returncode": 1}},
    )
    plan = await CondaBackend(tool_path(fake, "conda")).create(
        tmp_path / "p", ["zlib"], [], Recorder(), dry_run=True
    )
    assert [p.name for p in plan.install] == ["zlib"]


@pytest.mark.parametrize(
    ("step", "kind", "text"),
    [
        pytest.param(
            {
                "stdout_file": str(DATA / "micromamba-1.4-create-solver-problems.json"),
                "returncode": 1,
            },
            SolveError,
            "libevent",
            id="solver-problems",
        ),
        pytest.param(
            {
                "stdout_file": str(DATA / "synthetic-conda-LibMambaUnsatisfiableError.json"),
                "returncode": 1,
            },
            SolveError,
            "libfoo >=1.10",
            id="conda-unsatisfiable",
        ),
        pytest.param(
            {
                "stderr": "critical libmamba Could not solve for environment specs\n",
                "returncode": 1,
            },
            SolveError,
            "Could not solve",
            id="stderr-only",
        ),
        pytest.param(
            {"stderr": "Segmentation fault\n", "returncode": 139},
            BackendError,
            "Segmentation fault",
            id="crash",
        ),
        pytest.param(
            {"stdout": '{"success": false}', "returncode": 0},
            BackendError,
            "micromamba failed",
            id="success-false",
        ),
    ],
)
async def test_errors_through_the_process(
    fake: Path, tmp_path: Path, step: dict[str, Any], kind: type[Exception], text: str
) -> None:
    fakecli.write_plan(fake, {"create": step})
    reporter = Recorder()
    with pytest.raises(kind, match=text) as info:
        await MicromambaBackend(tool_path(fake, "micromamba")).create(
            tmp_path / "p", ["x"], [], reporter
        )
    assert type(info.value) is kind
    if "stderr" in step:
        assert step["stderr"].strip() in reporter.lines


async def test_progress_records_reach_the_reporter(fake: Path, tmp_path: Path) -> None:
    progress = (DATA / "conda-22.11-create-fetch-progress.bin").read_text()
    final = recorded("synthetic-mamba-2-create.json")
    fakecli.write_plan(fake, {"create": {"stdout": progress + "\0" + final}})
    reporter = Recorder()
    plan = await CondaBackend(tool_path(fake, "conda")).create(
        tmp_path / "p", ["libfoo"], [], reporter, dry_run=True
    )
    assert reporter.steps == [("download", 8, 100), ("download", 1, 100), ("download", 21, 100)]
    assert [p.name for p in plan.install] == ["libfoo"]


async def test_timeout_stops_the_process_group(fake: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    fakecli.write_plan(fake, {"create": {"sleep": 60, "child_pidfile": str(pidfile)}})
    backend = CondaBackend(tool_path(fake, "conda"), timeout=1.5)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"did not finish within 1\.5 s"):
        await backend.create(tmp_path / "p", ["x"], [], Recorder())
    assert time.monotonic() - start < 10
    assert await wait_gone(int(pidfile.read_text()))


@pytest.mark.parametrize("ignore", [False, True], ids=["sigint", "sigkill"])
async def test_cancel_kills_the_whole_group(fake: Path, tmp_path: Path, ignore: bool) -> None:
    pidfile = tmp_path / "child.pid"
    fakecli.write_plan(
        fake,
        {"create": {"sleep": 60, "child_pidfile": str(pidfile), "ignore_signals": ignore}},
    )
    backend = CondaBackend(tool_path(fake, "conda"), kill_grace=0.5)
    task = asyncio.ensure_future(backend.create(tmp_path / "p", ["x"], [], Recorder()))
    child = int(await wait_file(pidfile))
    assert alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(child)
    leftovers = [c for c in fakecli.calls(fake) if c["argv"][0] == "create"]
    assert len(leftovers) == 1


async def test_child_holding_the_output_open_is_ended(fake: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    fakecli.write_plan(
        fake,
        {
            "create": {
                "child_pidfile": str(pidfile),
                "child_keeps_output": True,
                "stdout": '{"success": true}',
            }
        },
    )
    start = time.monotonic()
    done = await run_tool([tool_path(fake, "conda"), "create"], timeout=60, drain_timeout=0.5)
    assert time.monotonic() - start < 10
    assert done.returncode == 0
    assert '{"success": true}' in done.stdout
    assert await wait_gone(int(pidfile.read_text()))


async def test_output_is_bounded(fake: Path, tmp_path: Path) -> None:
    final = recorded("synthetic-mamba-2-create.json")
    fakecli.write_plan(
        fake,
        {"create": {"flood": 4_000_000, "flood_stderr": 2_000_000, "stdout": final}},
    )
    limit = 64 * 1024
    reporter = Recorder()
    plan = await CondaBackend(tool_path(fake, "conda"), max_output=limit).create(
        tmp_path / "p", ["x"], [], reporter, dry_run=True
    )
    # The result document comes last, so the kept tail still holds it.
    assert [p.name for p in plan.install] == ["libfoo"]
    assert len(reporter.lines) <= 20_002
    done = await run_tool(
        [tool_path(fake, "conda"), "create"], timeout=30, max_stdout=limit, max_stderr=1000
    )
    assert done.stdout_truncated
    assert len(done.stdout.encode()) <= limit
    assert len(done.stderr.encode()) <= 1000


async def test_flood_without_result_is_a_clear_error(fake: Path, tmp_path: Path) -> None:
    fakecli.write_plan(fake, {"create": {"flood": 200_000, "returncode": 1}})
    with pytest.raises(BackendError, match="more than 1000 bytes"):
        await CondaBackend(tool_path(fake, "conda"), max_output=1000).create(
            tmp_path / "p", ["x"], [], Recorder()
        )


async def test_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="Could not run"):
        await CondaBackend(tmp_path / "nope" / "conda").create(
            tmp_path / "p", ["x"], [], Recorder()
        )


# -- through the EnvManager -------------------------------------------------------------------


@pytest.fixture
def cli_manager(fake: Path) -> EnvManager:
    """The real manager and registry over the test's conda configuration, driving the fake."""
    config = load_conda_config()
    backend = CondaBackend(tool_path(fake, "conda"), kill_grace=0.5)
    return EnvManager(EnvRegistry(config), backend)


async def test_manager_create_with_the_cli(
    cli_manager: EnvManager, fake: Path, envs_dir: Path, channel: Path
) -> None:
    fakecli.write_plan(
        fake,
        {
            "create": {
                "make_prefix": True,
                "stdout_file": str(DATA / "synthetic-mamba-2-create.json"),
            }
        },
    )
    info = await cli_manager.create(CreateRequest(name="viacli", specs=("bar",)), Recorder())
    assert info.prefix == str(envs_dir / "viacli")
    assert str(envs_dir / "viacli") in registered()
    [call] = fakecli.calls(fake)
    url = localchannel.channel_url(channel)
    assert f"--channel={url.rstrip('/')}" in [a.rstrip("/") for a in call["argv"]]
    assert call["argv"][-2:] == ["--", "bar"]


async def test_manager_cancel_in_the_middle_of_a_cli_create(
    cli_manager: EnvManager, fake: Path, envs_dir: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    fakecli.write_plan(
        fake,
        {"create": {"make_prefix": True, "child_pidfile": str(pidfile), "sleep_after": 60}},
    )
    task = asyncio.ensure_future(
        cli_manager.create(CreateRequest(name="halfway", specs=("bar",)), Recorder())
    )
    child = int(await wait_file(pidfile))
    prefix = envs_dir / "halfway"
    deadline = time.monotonic() + 10
    while not (prefix / "conda-meta").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert (prefix / "conda-meta").is_dir()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not prefix.exists()
    assert str(prefix) not in registered()
    assert await wait_gone(child)


async def test_manager_solve_error_leaves_nothing(
    cli_manager: EnvManager, fake: Path, envs_dir: Path
) -> None:
    fakecli.write_plan(
        fake,
        {
            "create": {
                "make_prefix": True,
                "stdout_file": str(DATA / "micromamba-1.4-create-solver-problems.json"),
                "returncode": 1,
            }
        },
    )
    with pytest.raises(SolveError):
        await cli_manager.create(CreateRequest(name="nope", specs=("bar",)), Recorder())
    assert not (envs_dir / "nope").exists()
    assert str(envs_dir / "nope") not in registered()
