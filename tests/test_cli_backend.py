"""The conda / mamba / micromamba backend: parsing recorded outputs, and the process machinery.

Parsing is tested against outputs of the real tools recorded in ``tests/data/cli`` (see its
README for where each came from). The process tests run a stand-in executable
(``tests/fakecli.py``) under the tools' names, because no conda-family binary can be
installed here; it replays the recorded outputs and records the argument lists it got.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import fakecli
import localchannel
import pytest
import rattler
from opsutil import Recorder, registered

from jupyter_envs.envs.backends.base import Backend
from jupyter_envs.envs.backends.cli import (
    NO_REVISION_MESSAGE,
    CondaBackend,
    MambaBackend,
    MicromambaBackend,
)
from jupyter_envs.envs.backends.cli_parse import (
    error_from_result,
    final_document,
    is_error,
    package_from_record,
    parse_documents,
    parse_progress,
    plan_from_result,
    split_records,
)
from jupyter_envs.envs.backends.cli_process import run_tool
from jupyter_envs.envs.backends.select import select_backend
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.manager import CreateRequest, EnvManager
from jupyter_envs.envs.model import CondaPackage
from jupyter_envs.envs.registry import EnvRegistry
from jupyter_envs.envs.wiring import build_manager
from jupyter_envs.errors import BackendError, InvalidRequest, NotFound, SolveError

DATA = Path(__file__).parent / "data" / "cli"


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def result_of(name: str) -> dict[str, Any]:
    doc = final_document(parse_documents(recorded(name)))
    assert doc is not None
    return doc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


async def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not _alive(pid)


async def _wait_file(path: Path, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


# -- recorded outputs -> plans and errors ------------------------------------------------------


def test_conda_packages_not_found_is_a_solve_error() -> None:
    exc = error_from_result(
        result_of("conda-4.13.0-install-dry-run-PackagesNotFoundError.json"), "conda"
    )
    assert isinstance(exc, SolveError)
    assert "xyz" in str(exc)


def test_conda_packages_not_found_while_removing_is_not_found() -> None:
    result = result_of("conda-4.13.0-install-dry-run-PackagesNotFoundError.json")
    exc = error_from_result(result, "conda", removing=True)
    assert isinstance(exc, NotFound)


def test_micromamba_solver_problems_are_a_solve_error() -> None:
    exc = error_from_result(result_of("micromamba-1.4-create-solver-problems.json"), "micromamba")
    assert isinstance(exc, SolveError)
    assert "libevent >=2.1.12" in str(exc)


def test_old_conda_unsatisfiable_after_a_progress_bar() -> None:
    exc = error_from_result(result_of("conda-3.18-create-unsatisfiable.txt"), "conda")
    assert isinstance(exc, SolveError)
    assert "python 3.5*" in str(exc)


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        pytest.param(
            "synthetic-conda-LibMambaUnsatisfiableError.json",
            SolveError,
            "libfoo >=1.10",
            id="libmamba-unsatisfiable",
        ),
        pytest.param(
            "synthetic-conda-EnvironmentLocationNotFound.json",
            NotFound,
            "/nowhere/env",
            id="location-not-found",
        ),
    ],
)
def test_synthetic_conda_errors(name: str, kind: type[Exception], text: str) -> None:
    exc = error_from_result(result_of(name), "conda")
    assert type(exc) is kind
    assert text in str(exc)


def test_unknown_error_keeps_the_tool_message() -> None:
    exc = error_from_result(
        {"exception_name": "CondaHTTPError", "message": "HTTP 000 CONNECTION FAILED"}, "conda"
    )
    assert type(exc) is BackendError
    assert "CONNECTION FAILED" in str(exc)


def test_no_json_at_all_uses_stderr() -> None:
    exc = error_from_result(None, "mamba", stderr="info x\ncritical libmamba Could not open\n")
    assert type(exc) is BackendError
    assert "critical libmamba Could not open" in str(exc)


def test_mamba_dry_run_after_text_line() -> None:
    docs = parse_documents(recorded("mamba-0.3-create-dry-run.txt"))
    assert len(docs) == 1
    plan = plan_from_result(docs[0])
    assert plan.install == [
        CondaPackage(
            "zlib", "1.2.11", "h01d97ff_1006", 1006, "api/conda/conda-remote-conda-forge", "osx-64"
        )
    ]
    assert not plan.remove
    assert not plan.change


def test_mamba2_link_entry() -> None:
    entry = json.loads(recorded("mamba-2.0-env-create-link-entry.json"))
    pkg = package_from_record(entry)
    assert (pkg.name, pkg.version, pkg.build, pkg.build_number) == (
        "python_abi",
        "3.13",
        "5_cp313",
        5,
    )
    assert pkg.subdir == "linux-64"
    assert pkg.size == 6217
    assert pkg.url.endswith("/linux-64/python_abi-3.13-5_cp313.conda")


def test_conda43_actions_list_is_a_change() -> None:
    plan = plan_from_result(result_of("conda-4.3-update-all-dry-run-actions.json"))
    assert not plan.install
    assert not plan.remove
    [change] = plan.change
    assert (change.name, change.old.version, change.new.version) == ("pytest", "3.3.0", "3.3.1")


def test_conda42_string_entries() -> None:
    # The conda 4.2 shape quoted in conda/conda PR #5628.
    plan = plan_from_result({"actions": {"LINK": ["defaults::vs2015_runtime-14.00.23026.0-0 1"]}})
    [pkg] = plan.install
    assert (pkg.name, pkg.version, pkg.build, pkg.channel) == (
        "vs2015_runtime",
        "14.00.23026.0",
        "0",
        "defaults",
    )


def test_empty_dry_run_is_an_empty_plan() -> None:
    plan = plan_from_result(result_of("conda-create-empty-dry-run.json"))
    assert plan.empty


def test_already_installed_is_success_with_an_empty_plan() -> None:
    result = result_of("mamba-0.10-env-create-already-installed.json")
    assert not is_error(result)
    assert plan_from_result(result).empty


def test_synthetic_update_pairs_link_and_unlink() -> None:
    plan = plan_from_result(result_of("synthetic-conda-install-update.json"))
    assert [p.dist for p in plan.install] == ["bar-2.0-0"]
    assert [p.dist for p in plan.remove] == ["oldfoo-user-1.0-0"]
    [change] = plan.change
    assert (change.old.version, change.new.version) == ("1.9", "1.10")


def test_env_list_document() -> None:
    doc = result_of("conda-env-list.json")
    assert doc["envs"][1].endswith("my-first-env")


def test_conda_list_entries() -> None:
    [entry] = json.loads(recorded("conda-4.6-list.json"))
    pkg = package_from_record(entry)
    assert (pkg.name, pkg.version, pkg.build, pkg.channel, pkg.subdir) == (
        "testhash",
        "1.0.0",
        "haw3s0m3ha5h",
        "local",
        "",
    )


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(42, id="number"),
        pytest.param({"name": "x"}, id="no-version"),
        pytest.param({"dist_name": "nodashes"}, id="bad-dist"),
        pytest.param("", id="empty-string"),
    ],
)
def test_unreadable_entries_are_backend_errors(entry: object) -> None:
    with pytest.raises(BackendError):
        package_from_record(entry)


def test_nul_separated_fetch_records() -> None:
    raw = (DATA / "conda-22.11-create-fetch-progress.bin").read_bytes().decode()
    records = [json.loads(r) for r in split_records(raw)]
    assert len(records) == 3
    steps = [parse_progress(r) for r in records]
    assert [(s.phase, s.done, s.total, s.label) for s in steps if s] == [
        ("download", 8, 100, "pandas-1.5.2"),
        ("download", 1, 100, "mkl-2021.4.0"),
        ("download", 21, 100, "numpy-base-1.23.5"),
    ]
    assert final_document(records) is None


def test_old_newline_progress_records() -> None:
    docs = parse_documents(recorded("conda-4.1-install-progress.txt"))
    steps = [parse_progress(d) for d in docs]
    assert all(s is not None for s in steps)
    first, last = steps[0], steps[-1]
    assert first is not None
    assert last is not None
    assert (first.phase, first.done, first.total, first.label) == (
        "download",
        100,
        100,
        "numpy-1.11.1-p",
    )
    assert (last.phase, last.done, last.total, last.finished) == ("link", 2, 2, True)


# -- the stand-in executable ------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake tools on a private bin dir; returns their state dir (plan + argv log)."""
    state = tmp_path / "fakecli"
    fakecli.install(tmp_path / "fakebin")
    fakecli.write_plan(state, {})
    monkeypatch.setenv("FAKECLI_DIR", str(state))
    return state


@pytest.fixture
def empty_env(tmp_path: Path) -> Path:
    """An existing environment with no packages (just ``conda-meta``)."""
    prefix = tmp_path / "empty-env"
    (prefix / "conda-meta").mkdir(parents=True)
    return prefix


def _bin(fake: Path, tool: str) -> str:
    return str(fake.parent / "fakebin" / tool)


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
    backend = MambaBackend(_bin(fake, "mamba"))
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
    await CondaBackend(_bin(fake, "conda")).create(prefix, ["x"], ["--offline"], Recorder())
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
    backend = CondaBackend(_bin(fake, "conda"))
    with pytest.raises(NotFound, match="xyz"):
        await backend.change(empty_env, "remove", ["xyz"], ["file:///ch"], Recorder())
    [call] = fakecli.calls(fake)
    assert call["argv"] == ["remove", f"--prefix={empty_env}", "--json", "--yes", "--", "xyz"]


@pytest.mark.parametrize("action", ["install", "update"])
async def test_change_install_update_argv(fake: Path, empty_env: Path, action: str) -> None:
    fakecli.write_plan(
        fake, {"*": {"stdout_file": str(DATA / "synthetic-conda-install-update.json")}}
    )
    backend = CondaBackend(_bin(fake, "conda"))
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
    backend = CondaBackend(_bin(fake, "conda"))
    await backend.change(empty_env, "update", ["libfoo"], [], Recorder())
    await backend.change(empty_env, "update", ["libfoo>=1.10"], [], Recorder())
    assert [c["argv"][0] for c in fakecli.calls(fake)] == ["update", "install"]
    assert fakecli.calls(fake)[1]["argv"][-1] == "libfoo>=1.10"


async def test_dry_run_that_exits_non_zero_still_plans(fake: Path, tmp_path: Path) -> None:
    fakecli.write_plan(
        fake,
        {"create": {"stdout_file": str(DATA / "mamba-0.3-create-dry-run.txt"), "returncode": 1}},
    )
    plan = await CondaBackend(_bin(fake, "conda")).create(
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
        await MicromambaBackend(_bin(fake, "micromamba")).create(
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
    plan = await CondaBackend(_bin(fake, "conda")).create(
        tmp_path / "p", ["libfoo"], [], reporter, dry_run=True
    )
    assert reporter.steps == [("download", 8, 100), ("download", 1, 100), ("download", 21, 100)]
    assert [p.name for p in plan.install] == ["libfoo"]


async def test_timeout_stops_the_process_group(fake: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    fakecli.write_plan(fake, {"create": {"sleep": 60, "child_pidfile": str(pidfile)}})
    backend = CondaBackend(_bin(fake, "conda"), timeout=1.5)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"did not finish within 1\.5 s"):
        await backend.create(tmp_path / "p", ["x"], [], Recorder())
    assert time.monotonic() - start < 10
    assert await _wait_gone(int(pidfile.read_text()))


@pytest.mark.parametrize("ignore", [False, True], ids=["sigint", "sigkill"])
async def test_cancel_kills_the_whole_group(fake: Path, tmp_path: Path, ignore: bool) -> None:
    pidfile = tmp_path / "child.pid"
    fakecli.write_plan(
        fake,
        {"create": {"sleep": 60, "child_pidfile": str(pidfile), "ignore_signals": ignore}},
    )
    backend = CondaBackend(_bin(fake, "conda"), kill_grace=0.5)
    task = asyncio.ensure_future(backend.create(tmp_path / "p", ["x"], [], Recorder()))
    child = int(await _wait_file(pidfile))
    assert _alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_gone(child)
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
    done = await run_tool([_bin(fake, "conda"), "create"], timeout=60, drain_timeout=0.5)
    assert time.monotonic() - start < 10
    assert done.returncode == 0
    assert '{"success": true}' in done.stdout
    assert await _wait_gone(int(pidfile.read_text()))


async def test_output_is_bounded(fake: Path, tmp_path: Path) -> None:
    final = recorded("synthetic-mamba-2-create.json")
    fakecli.write_plan(
        fake,
        {"create": {"flood": 4_000_000, "flood_stderr": 2_000_000, "stdout": final}},
    )
    limit = 64 * 1024
    reporter = Recorder()
    plan = await CondaBackend(_bin(fake, "conda"), max_output=limit).create(
        tmp_path / "p", ["x"], [], reporter, dry_run=True
    )
    # The result document comes last, so the kept tail still holds it.
    assert [p.name for p in plan.install] == ["libfoo"]
    assert len(reporter.lines) <= 20_002
    done = await run_tool(
        [_bin(fake, "conda"), "create"], timeout=30, max_stdout=limit, max_stderr=1000
    )
    assert done.stdout_truncated
    assert len(done.stdout.encode()) <= limit
    assert len(done.stderr.encode()) <= 1000


async def test_flood_without_result_is_a_clear_error(fake: Path, tmp_path: Path) -> None:
    fakecli.write_plan(fake, {"create": {"flood": 200_000, "returncode": 1}})
    with pytest.raises(BackendError, match="more than 1000 bytes"):
        await CondaBackend(_bin(fake, "conda"), max_output=1000).create(
            tmp_path / "p", ["x"], [], Recorder()
        )


async def test_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="Could not run"):
        await CondaBackend(tmp_path / "nope" / "conda").create(
            tmp_path / "p", ["x"], [], Recorder()
        )


# -- lock files, clones, rollbacks ------------------------------------------------------------


@pytest.fixture
async def real_env(channel: Path, tmp_path: Path) -> Path:
    """A real environment installed from the local channel (bar pulls libfoo)."""
    prefix = tmp_path / "real-env"
    records = await rattler.solve(
        [localchannel.channel_url(channel)],
        ["bar", "hello"],
        virtual_packages=rattler.VirtualPackage.detect(rattler.VirtualPackageOverrides.from_env()),
    )
    await rattler.install(records, prefix, show_progress=False)
    return prefix


def _explicit_urls(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "@EXPLICIT"
    return sorted(line.split("#")[0] for line in lines[1:])


async def test_export_lock_then_create_from_lock(
    fake: Path, real_env: Path, tmp_path: Path
) -> None:
    backend = CondaBackend(_bin(fake, "conda"))
    lock = await backend.export_lock(real_env)
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
    assert not Path(
        call["argv"][4].split("=", 1)[1]
    ).exists()  # the private file is gone afterwards
    urls = _explicit_urls(call["file"])
    assert sorted(u.rsplit("/", 1)[1].split("-")[0] for u in urls) == sorted(names)


async def test_create_from_bad_lock_is_invalid(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        await CondaBackend(_bin(fake, "conda")).create_from_lock(
            tmp_path / "new", "not: [a lock", Recorder()
        )
    assert fakecli.calls(fake) == []


async def test_conda_clone_uses_clone_flag(fake: Path, real_env: Path, tmp_path: Path) -> None:
    fakecli.write_plan(fake, {"create": {"stdout": '{"success": true}'}})
    dest = tmp_path / "clone"
    plan = await CondaBackend(_bin(fake, "conda")).clone(real_env, dest, Recorder())
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
    await MicromambaBackend(_bin(fake, "micromamba")).clone(real_env, dest, Recorder())
    [call] = fakecli.calls(fake)
    assert not any(arg.startswith("--clone") for arg in call["argv"])
    records = [rattler.PrefixRecord.from_path(p) for p in (real_env / "conda-meta").glob("*.json")]
    assert _explicit_urls(call["file"]) == sorted(str(r.url) for r in records)
    assert all("#" in line for line in call["file"].splitlines()[4:])  # every URL has its md5


async def test_clone_of_a_non_environment(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await CondaBackend(_bin(fake, "conda")).clone(tmp_path, tmp_path / "c", Recorder())


def _meta(prefix: Path) -> set[str]:
    return {p.name for p in (prefix / "conda-meta").glob("*.json")}


@pytest.mark.parametrize("cls", [CondaBackend, MicromambaBackend], ids=["conda", "micromamba"])
async def test_failed_change_restores_the_environment(
    fake: Path, real_env: Path, cls: type[CondaBackend]
) -> None:
    before = _meta(real_env)
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
        await cls(_bin(fake, cls.name)).change(real_env, "install", ["bar"], [], reporter)
    assert _meta(real_env) == before
    assert any(line.startswith("Restoring") for line in reporter.lines)
    # The restored packages are really there again, files included.
    assert all((real_env / f).exists() for f in _files_of(real_env, "libfoo"))


def _files_of(prefix: Path, name: str) -> list[str]:
    [record] = (prefix / "conda-meta").glob(f"{name}-*.json")
    return list(json.loads(record.read_text())["files"])


async def test_cancelled_change_restores_the_environment(
    fake: Path, real_env: Path, tmp_path: Path
) -> None:
    before = _meta(real_env)
    fakecli.write_plan(
        fake,
        {"remove": {"drop_records": ["bar-*.json"], "sleep_after": 60, "ignore_signals": True}},
    )
    backend = CondaBackend(_bin(fake, "conda"), kill_grace=0.3)
    task = asyncio.ensure_future(backend.change(real_env, "remove", ["bar"], [], Recorder()))
    deadline = time.monotonic() + 10
    while _meta(real_env) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert _meta(real_env) != before
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _meta(real_env) == before


async def test_successful_change_is_left_alone(fake: Path, real_env: Path) -> None:
    fakecli.write_plan(
        fake,
        {"remove": {"drop_records": ["hello-*.json"], "stdout": '{"success": true}'}},
    )
    reporter = Recorder()
    backend = CondaBackend(_bin(fake, "conda"))
    plan = await backend.change(real_env, "remove", ["hello"], [], reporter)
    assert [p.name for p in plan.remove] == ["hello"]
    assert not plan.install
    assert not plan.change
    assert not any(n.startswith("hello-") for n in _meta(real_env))
    assert not any(line.startswith("Restoring") for line in reporter.lines)


async def test_conda_rollback_argv(fake: Path, real_env: Path) -> None:
    fakecli.write_plan(
        fake, {"install": {"drop_records": ["hello-*.json"], "stdout": '{"success": true}'}}
    )
    plan = await CondaBackend(_bin(fake, "conda")).rollback(real_env, 2, Recorder())
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
        await cls(_bin(fake, cls.name)).rollback(tmp_path, 1, Recorder())
    assert str(info.value) == NO_REVISION_MESSAGE.format(tool=cls.name)
    assert fakecli.calls(fake) == []


async def test_bad_action_and_revision_are_refused(fake: Path, tmp_path: Path) -> None:
    backend = CondaBackend(_bin(fake, "conda"))
    with pytest.raises(InvalidRequest):
        await backend.change(tmp_path, "upgrade", ["x"], [], Recorder())  # type: ignore[arg-type]
    for revision in (-1, True, "2"):
        with pytest.raises(InvalidRequest):
            await backend.rollback(tmp_path, revision, Recorder())  # type: ignore[arg-type]
    assert fakecli.calls(fake) == []


# -- backend selection ------------------------------------------------------------------------


def _tools_dir(tmp_path: Path, *names: str) -> Path:
    bin_dir = tmp_path / ("bin-" + "-".join(names))
    fakecli.install(bin_dir, names)
    return bin_dir


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(("conda",), "conda", id="conda-only"),
        pytest.param(("conda", "micromamba"), "micromamba", id="micromamba-over-conda"),
        pytest.param(("conda", "mamba", "micromamba"), "mamba", id="mamba-first"),
    ],
)
def test_auto_from_path(tmp_path: Path, names: tuple[str, ...], expected: str) -> None:
    bin_dir = _tools_dir(tmp_path, *names)
    backend = select_backend("auto", {"PATH": f"{tmp_path / 'empty'}:{bin_dir}"})
    assert backend.name == expected
    assert isinstance(backend, CondaBackend.__mro__[1])
    assert backend.executable == str(bin_dir / expected)  # type: ignore[attr-defined]


def test_auto_prefers_conda_exe_over_path(tmp_path: Path) -> None:
    on_path = _tools_dir(tmp_path, "mamba")
    configured = _tools_dir(tmp_path, "conda") / "conda"
    backend = select_backend("auto", {"PATH": str(on_path), "CONDA_EXE": str(configured)})
    assert backend.name == "conda"
    assert backend.executable == str(configured)  # type: ignore[attr-defined]


def test_auto_prefers_mamba_exe_over_conda_exe(tmp_path: Path) -> None:
    conda = _tools_dir(tmp_path, "conda") / "conda"
    micromamba = _tools_dir(tmp_path, "micromamba") / "micromamba"
    backend = select_backend("auto", {"CONDA_EXE": str(conda), "MAMBA_EXE": str(micromamba)})
    assert backend.name == "micromamba"


def test_auto_without_any_tool_is_rattler(tmp_path: Path) -> None:
    backend = select_backend("auto", {"PATH": str(tmp_path)})
    assert isinstance(backend, Backend)
    assert backend.name == "rattler"


def test_rattler_kind(tmp_path: Path) -> None:
    assert select_backend("rattler", {"PATH": str(_tools_dir(tmp_path, "conda"))}).name == "rattler"


@pytest.mark.parametrize("tool", ["conda", "mamba", "micromamba"])
def test_explicit_kind_found_on_path(tmp_path: Path, tool: str) -> None:
    bin_dir = _tools_dir(tmp_path, *fakecli.TOOLS)
    backend = select_backend(tool, {"PATH": str(bin_dir)})  # type: ignore[arg-type]
    assert backend.name == tool


def test_explicit_micromamba_from_mamba_exe(tmp_path: Path) -> None:
    micromamba = _tools_dir(tmp_path, "micromamba") / "micromamba"
    backend = select_backend("micromamba", {"PATH": "", "MAMBA_EXE": str(micromamba)})
    assert backend.executable == str(micromamba)  # type: ignore[attr-defined]


@pytest.mark.parametrize("tool", ["conda", "mamba", "micromamba"])
def test_explicit_kind_missing_is_a_clear_error(tmp_path: Path, tool: str) -> None:
    others = [t for t in fakecli.TOOLS if t != tool]
    bin_dir = _tools_dir(tmp_path, *others)
    with pytest.raises(BackendError, match=f"The {tool} backend was requested but no {tool}"):
        select_backend(tool, {"PATH": str(bin_dir)})  # type: ignore[arg-type]


def test_non_executable_conda_exe_is_ignored(tmp_path: Path) -> None:
    plain = tmp_path / "conda"
    plain.write_text("not a program")
    with pytest.raises(BackendError):
        select_backend("conda", {"PATH": "", "CONDA_EXE": str(plain)})


def test_configured_executable(tmp_path: Path) -> None:
    tool = _tools_dir(tmp_path, "micromamba") / "micromamba"
    assert select_backend("auto", {}, executable=tool).name == "micromamba"
    with pytest.raises(BackendError, match="not executable"):
        select_backend("auto", {}, executable=tmp_path / "missing")


def test_wiring_picks_the_cli_from_conda_exe(tmp_path: Path) -> None:
    conda = _tools_dir(tmp_path, "conda") / "conda"
    manager = build_manager(backend="auto", environ=dict(os.environ, CONDA_EXE=str(conda)))
    assert isinstance(manager.backend, CondaBackend)
    assert manager.backend.executable == str(conda)


def test_unknown_kind() -> None:
    with pytest.raises(BackendError, match="Unknown backend"):
        select_backend("pip", {})  # type: ignore[arg-type]


# -- through the EnvManager -------------------------------------------------------------------


@pytest.fixture
def cli_manager(fake: Path) -> EnvManager:
    """The real manager and registry over the test's conda configuration, driving the fake."""
    config = load_conda_config()
    backend = CondaBackend(_bin(fake, "conda"), kill_grace=0.5)
    return EnvManager(EnvRegistry(config), backend, channels=config.channels)


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
    child = int(await _wait_file(pidfile))
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
    assert await _wait_gone(child)


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
