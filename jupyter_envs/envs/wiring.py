"""Build the environment core (config, registry, backend, manager) from plain settings.

The server extension and the ``jupyter envs`` command both start here, so they see the
same environments, channels and protections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .backends.select import BACKEND_KINDS, BackendKind, select_backend
from .condaconfig import load_conda_config
from .manager import EnvManager
from .registry import EnvRegistry

__all__ = ["BACKEND_KINDS", "BackendKind", "build_manager"]


def build_manager(
    *,
    backend: BackendKind = "auto",
    channels: Sequence[str] = (),
    extra_envs_dirs: Sequence[str | Path] = (),
    protected: Sequence[str | Path] = (),
    allow_protected_changes: bool = False,
    read_only: bool = False,
    environ: Mapping[str, str] | None = None,
) -> EnvManager:
    """An :class:`EnvManager` over conda's configuration as ``environ`` shows it.

    ``channels`` (names or URLs) replaces the configured channels when not empty.
    """
    config = load_conda_config(
        environ,
        extra_envs_dirs=[Path(p).expanduser() for p in extra_envs_dirs],
        channels=list(channels) or None,
    )
    registry = EnvRegistry(
        config,
        protected=[Path(p).expanduser() for p in protected],
        allow_protected_changes=allow_protected_changes,
    )
    engine = select_backend(backend, environ)
    return EnvManager(registry, engine, read_only=read_only)

