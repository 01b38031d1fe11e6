"""Choosing the backend: CONDA_EXE, MAMBA_EXE, PATH, an explicit kind or executable.

The tools found are stand-in executables (``tests/fakecli.py``), since no conda-family binary
can be installed here.
"""

from __future__ import annotations

import os
from pathlib import Path

import fakecli
import pytest

from jupyter_envs.envs.backends.base import Backend
from jupyter_envs.envs.backends.cli import CliBackend, CondaBackend
from jupyter_envs.envs.backends.select import select_backend
from jupyter_envs.envs.wiring import build_manager
from jupyter_envs.errors import BackendError


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
    assert isinstance(backend, CliBackend)
    assert backend.executable == str(bin_dir / expected)


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


def test_wiring_picks_the_cli_from_conda_exe(tmp_path: Path) -> None:
    conda = _tools_dir(tmp_path, "conda") / "conda"
    manager = build_manager(backend="auto", environ=dict(os.environ, CONDA_EXE=str(conda)))
    assert isinstance(manager.backend, CondaBackend)
    assert manager.backend.executable == str(conda)


def test_unknown_kind() -> None:
    with pytest.raises(BackendError, match="Unknown backend"):
        select_backend("pip", {})  # type: ignore[arg-type]
