"""Shared fixtures: a real local conda channel and an isolated HOME / conda config."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import localchannel
import pytest
import yaml

pytest_plugins = ["pytest_jupyter.jupyter_server", "cliutil"]

_HOST_VARS = ("CONDA_", "MAMBA_", "_CE_", "CUDA_VISIBLE_DEVICES")


@pytest.fixture
async def jp_asyncio_loop() -> asyncio.AbstractEventLoop:
    """Serve pytest-jupyter's server on pytest-asyncio's loop (asyncio_mode = auto runs the
    tests there; on pytest-jupyter's own loop every jp_fetch times out)."""
    return asyncio.get_running_loop()


@pytest.fixture(scope="session")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's local conda channel (see ``localchannel.default_packages``)."""
    return localchannel.build_channel(tmp_path_factory.mktemp("channel"))


@pytest.fixture
def mutable_channel(channel: Path, tmp_path: Path) -> Path:
    """A private copy of the channel that a test may add to or delete."""
    copy = tmp_path / "mutable-channel"
    shutil.copytree(channel, copy, ignore=shutil.ignore_patterns(".tmp"))
    return copy


@pytest.fixture(scope="session")
def package_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One package cache for the session: tests share extracted packages like users do."""
    return tmp_path_factory.mktemp("rattler-cache")


@pytest.fixture
def conda_root(tmp_path: Path) -> Path:
    """An empty conda root prefix layout (``envs/`` inside) with no base environment."""
    root = tmp_path / "conda-root"
    (root / "envs").mkdir(parents=True)
    return root


@pytest.fixture
def envs_dir(conda_root: Path) -> Path:
    return conda_root / "envs"


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    package_cache: Path,
    channel: Path,
    conda_root: Path,
) -> Path:
    """Keep HOME, caches and conda configuration inside the test's temporary directory.

    The condarc lists the local channel and the test's envs directory, as a user's would.
    """
    for var in list(os.environ):
        if var.startswith(_HOST_VARS):
            monkeypatch.delenv(var, raising=False)
    env = localchannel.isolated_environ(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RATTLER_CACHE_DIR", str(package_cache))
    condarc = {
        "channels": [localchannel.channel_url(channel)],
        "envs_dirs": [str(conda_root / "envs")],
        "pkgs_dirs": [str(tmp_path / "pkgs")],
    }
    Path(env["CONDARC"]).write_text(yaml.safe_dump(condarc))
    monkeypatch.setenv("CONDA_ROOT", str(conda_root))
    return tmp_path


@pytest.fixture
def make_env(channel: Path, envs_dir: Path, package_cache: Path):  # type: ignore[no-untyped-def]
    """``await make_env(name, specs)``: a real environment made with py-rattler (solve +
    install from the local channel) at ``envs_dir/name`` (or ``prefix=``); returns its prefix.
    Default specs: python, ipykernel, envvars (a kernel with an activate.d script)."""

    async def make(
        name: str,
        specs: tuple[str, ...] = ("python", "ipykernel", "envvars"),
        *,
        prefix: Path | None = None,
    ) -> Path:
        target = prefix if prefix is not None else envs_dir / name
        return await localchannel.install(channel, specs, target, cache_dir=package_cache)

    return make
