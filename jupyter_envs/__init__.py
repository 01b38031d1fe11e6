"""jupyter-envs: conda environments in JupyterLab."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import EnvsApp

    return [{"module": "jupyter_envs", "app": EnvsApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-envs"}]
