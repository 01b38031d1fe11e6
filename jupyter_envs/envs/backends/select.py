"""Choose the engine: a conda-family command line tool when one is found, else py-rattler."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from ...errors import BackendError
from .base import Backend
from .cli import CLI_BACKENDS, CliTool

BackendKind = Literal["auto", "rattler", "conda", "mamba", "micromamba"]
BACKEND_KINDS: tuple[BackendKind, ...] = get_args(BackendKind)

# auto: mamba / micromamba before conda (faster solves, same results).
_AUTO_ORDER: tuple[CliTool, ...] = ("mamba", "micromamba", "conda")

NOT_FOUND_MESSAGE = (
    "The {tool} backend was requested but no {tool} executable was found "
    "(looked at {looked}). Install {tool}, put it on PATH, set {var}, or choose another backend."
)


def _tool_of(path: str) -> CliTool | None:
    """Which tool an executable is, by its file name (``mamba.exe`` -> mamba)."""
    stem = Path(path).name.lower().removesuffix(".exe").removesuffix(".bat")
    for tool in CLI_BACKENDS:
        if stem == tool:
            return tool
    return None


def _executable(path: str | None) -> str | None:
    if not path:
        return None
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def find_tool(tool: CliTool, environ: Mapping[str, str] | None = None) -> str | None:
    """The path of ``tool``: from ``CONDA_EXE`` / ``MAMBA_EXE`` when they name it, else PATH."""
    env = os.environ if environ is None else environ
    for var in ("MAMBA_EXE", "CONDA_EXE"):
        found = _executable(env.get(var))
        if found and _tool_of(found) == tool:
            return found
    return shutil.which(tool, path=env.get("PATH", ""))


def find_any_tool(environ: Mapping[str, str] | None = None) -> tuple[CliTool, str] | None:
    """The conda-family tool ``auto`` uses: CONDA_EXE, MAMBA_EXE, then PATH (mamba first)."""
    env = os.environ if environ is None else environ
    configured = [v for v in (_executable(env.get(k)) for k in ("MAMBA_EXE", "CONDA_EXE")) if v]
    # mamba / micromamba before conda among the configured ones too.
    for tool in _AUTO_ORDER:
        for path in configured:
            if _tool_of(path) == tool:
                return tool, path
    for tool in _AUTO_ORDER:
        found = shutil.which(tool, path=env.get("PATH", ""))
        if found:
            return tool, found
    return None


def _rattler_backend() -> Backend:
    from .rattler import RattlerBackend  # imported late: only "rattler" / "auto" need it

    backend: Backend = RattlerBackend()
    return backend


def select_backend(
    kind: BackendKind,
    environ: Mapping[str, str] | None = None,
) -> Backend:
    """The backend for ``kind``.

    ``auto``: a conda-family tool when one is found through
    ``MAMBA_EXE`` / ``CONDA_EXE`` or PATH (mamba and micromamba before conda), else the
    embedded py-rattler backend. An explicit tool that is not installed raises
    :class:`BackendError`. ``environ`` (default ``os.environ``) is where the variables and
    PATH are read.
    """
    if kind not in BACKEND_KINDS:
        raise BackendError(f"Unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}.")
    if kind == "rattler":
        return _rattler_backend()
    if kind == "auto":
        found = find_any_tool(environ)
        if found is None:
            return _rattler_backend()
        tool, found_path = found
        return CLI_BACKENDS[tool](found_path, environ=environ)
    path = find_tool(kind, environ)
    if path is None:
        var = "CONDA_EXE" if kind == "conda" else "MAMBA_EXE"
        raise BackendError(NOT_FOUND_MESSAGE.format(tool=kind, looked=f"{var} and PATH", var=var))
    return CLI_BACKENDS[kind](path, environ=environ)
