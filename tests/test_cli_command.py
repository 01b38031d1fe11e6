"""``jupyter envs`` as a user runs it: a subprocess, no server, the isolated conda config."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gatedchannel import GatedChannelServer
from jupyter_core.paths import jupyter_config_dir
from resthelp import TIMEOUT

from jupyter_envs.cli import DELETE_NEEDS_YES, ProgressBar


def envs(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_envs.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        check=False,
        env=dict(os.environ),
    )


def ok(*args: str) -> str:
    result = envs(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_create_list_install_export_rollback_delete(envs_dir: Path, tmp_path: Path) -> None:
    created = envs("create", "-n", "cli", "libfoo=1.9")
    assert created.returncode == 0, created.stderr
    prefix = envs_dir / "cli"
    assert f"Created cli at {prefix}" in created.stdout
    assert (prefix / "share" / "libfoo" / "VERSION").read_text() == "1.9\n"

    listed = json.loads(ok("list", "--json"))
    assert [(e["name"], e["prefix"]) for e in listed] == [("cli", str(prefix))]
    table = ok("list")
    assert table.splitlines()[0].split() == ["NAME", "PYTHON", "PACKAGES", "KERNEL", "PREFIX"]
    assert "cli" in table

    # libfoo=1.9 was asked for, so bar 2.0 (libfoo>=1.10) cannot come in; bar 1.0 can.
    refused = envs("install", "cli", "bar=2.0")
    assert refused.returncode == 1
    assert "libfoo" in refused.stderr
    plan = ok("install", "cli", "bar=1.0", "--dry-run")
    assert plan.strip() == "+ bar-1.0-0"
    assert not (prefix / "share" / "bar").exists()
    ok("install", "cli", "bar=1.0")
    assert (prefix / "share" / "bar" / "1.0").exists()

    exported = ok("export", "cli", "--format", "from-history")
    assert "bar=1.0" in exported
    out = tmp_path / "lock.yml"
    ok("export", str(prefix), "--format", "lock", "-o", str(out))
    assert "libfoo" in out.read_text()

    revisions = ok("revisions", "cli").splitlines()
    assert len(revisions) >= 2
    first = revisions[0].split()[0]
    ok("rollback", "cli", first)
    assert not (prefix / "share" / "bar").exists()
    assert (prefix / "share" / "libfoo" / "VERSION").read_text() == "1.9\n"

    refused = envs("delete", "cli", stdin="")
    assert refused.returncode == 1
    assert DELETE_NEEDS_YES.format(prefix=prefix) in refused.stderr
    assert prefix.exists()
    ok("delete", "cli", "--yes")
    assert not prefix.exists()


def test_clone_and_create_from_file(envs_dir: Path, tmp_path: Path) -> None:
    yml = tmp_path / "environment.yml"
    yml.write_text("name: fromfile\ndependencies:\n  - bar=1.0\n")
    ok("create", "-n", "fromfile", "-f", str(yml))
    assert (envs_dir / "fromfile" / "share" / "bar" / "1.0").exists()
    ok("clone", "fromfile", "-n", "copy")
    assert (envs_dir / "copy" / "share" / "bar" / "1.0").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("create", "-n", "a/b", "libfoo"), "characters conda refuses", id="bad-name"),
        pytest.param(("create", "-n", "x", "--", "--force"), "option", id="option-spec"),
        pytest.param(("install", "nothere", "bar"), "No environment named", id="unknown-env"),
        pytest.param(("create", "-n", "x", "-f", "/nonexistent.yml"), "Cannot read", id="no-file"),
        pytest.param(("create", "-n", "x", "oldfoo-user", "bar=2.0"), "libfoo", id="unsolvable"),
    ],
)
def test_errors_are_one_line_and_change_nothing(
    envs_dir: Path, args: tuple[str, ...], message: str
) -> None:
    result = envs(*args)
    assert result.returncode == 1
    assert "jupyter envs: error: " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(envs_dir.iterdir()) == []


def test_jupyter_envs_subcommand_is_installed() -> None:
    jupyter = shutil.which("jupyter")
    if jupyter is None or shutil.which("jupyter-envs") is None:
        pytest.skip("the package is not installed (pip install -e .)")
    result = subprocess.run(
        [jupyter, "envs", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


class FakeTty:
    """A text stream that says it is a terminal (to see the bar drawn)."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_progress_bar_draws_and_clears() -> None:
    tty: Any = FakeTty()
    bar = ProgressBar(tty, width=10)
    bar.progress("install", 5, 10)
    assert "[#####-----] 5/10" in tty.text
    bar.log("linked libfoo")
    assert tty.text.endswith("\r\x1b[2Klinked libfoo\n")
    bar.progress("install", 10, 10)
    bar.close()
    assert tty.text.endswith("[##########] 10/10\n")


def test_reads_the_servers_envs_settings(envs_dir: Path, make_env: Any) -> None:
    """Settings in jupyter_server_config.json apply to the command as to the server."""
    import asyncio

    guarded = asyncio.run(make_env("guarded", ("libfoo",)))
    config_dir = Path(jupyter_config_dir())
    config_dir.mkdir(parents=True, exist_ok=True)
    settings = {"EnvsApp": {"protected_prefixes": [str(guarded)]}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(settings))
    listed = json.loads(ok("list", "--json"))
    assert [e["protected"] for e in listed] == [True]
    refused = envs("delete", "guarded", "--yes")
    assert refused.returncode == 1
    assert "protected" in refused.stderr
    assert guarded.exists()

    settings["EnvsApp"]["read_only"] = True  # type: ignore[index]
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(settings))
    refused = envs("create", "-n", "new", "libfoo")
    assert refused.returncode == 1
    assert "read-only" in refused.stderr
    assert not (envs_dir / "new").exists()


def test_ctrl_c_in_the_middle_of_a_create_leaves_nothing(envs_dir: Path, tmp_path: Path) -> None:
    channel = GatedChannelServer.build(tmp_path / "slow-channel")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_envs.cli", "create", "-n", "slow",
             "-c", channel.url, *channel.names],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        deadline = time.monotonic() + TIMEOUT
        while not channel.downloads:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no download started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        channel.stop()
    assert proc.returncode == 130, stderr
    assert "cancelled" in stderr
    time.sleep(0.5)
    assert list(envs_dir.iterdir()) == []
