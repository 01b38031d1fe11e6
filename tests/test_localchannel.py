"""The test channel itself: real packages that real solves and installs accept."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import localchannel


def _solve_install(channel: Path, specs: list[str], prefix: Path) -> list[str]:
    """Install, then name what landed in ``conda-meta`` (``name-version``)."""
    asyncio.run(localchannel.install(channel, specs, prefix))
    return sorted(p.stem.rsplit("-", 1)[0] for p in (prefix / "conda-meta").glob("*.json"))


def test_channel_python_is_a_working_interpreter(channel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    names = _solve_install(channel, ["python", "ipykernel", "hello"], prefix)
    assert f"python-{localchannel.PY_VERSION}" in names
    out = subprocess.run(
        [prefix / "bin" / "python", "-c", "import sys, ipykernel; print(sys.prefix)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == str(prefix)
    hello = subprocess.run([prefix / "bin" / "hello"], capture_output=True, text=True, check=True)
    assert hello.stdout.strip() == "hello from env"


def test_version_order_is_numeric(channel: Path, tmp_path: Path) -> None:
    assert "libfoo-1.10" in _solve_install(channel, ["libfoo"], tmp_path / "env")
