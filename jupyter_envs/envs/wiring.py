"""Build the environment core (config, registry, backend, manager) from plain settings.

The server extension and the ``jupyter envs`` command both start here, so they see the
same environments, channels and protections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from ..errors import Forbidden
from .backends.select import select_backend
from .condaconfig import load_conda_config
from .manager import EnvManager
from .registry import EnvRegistry

PROTECTED_DELETE = (
    "{prefix} is protected (the root environment, the server's own, or configured in "
    "EnvsApp.protected_prefixes): it is never deleted through jupyter-envs."
)
BackendKind = Literal["auto", "rattler", "conda", "mamba", "micromamba"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("auto", "rattler", "conda", "mamba", "micromamba")


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
    return EnvManager(registry, engine, channels=config.channels, read_only=read_only)


def check_deletable(registry: EnvRegistry, prefix: Path) -> Path:
    """``prefix`` when it may be deleted: allowed, and not protected even where
    ``allow_protected_changes`` lets protected environments change. Forbidden otherwise."""
    path = registry.check_mutable(prefix)
    info = registry.get(path)
    if info.protected or info.is_root:
        raise Forbidden(PROTECTED_DELETE.format(prefix=path))
    return path
