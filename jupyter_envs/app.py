"""The jupyter-envs server extension: settings, wiring of the core, shutdown."""

from __future__ import annotations

import os
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Int, List, Unicode

from .envs.search import PackageSearch
from .envs.tasks import TaskManager
from .envs.wiring import BACKEND_KINDS, build_manager
from .handlers import Services, url_table
from .kernels.discovery import EnvKernelSpecManager


def _kernel_spec_manager_chosen(serverapp: Any) -> bool:
    """Whether the user configured a kernel spec manager, or kernels come from a gateway.

    Reading ``ServerApp.kernel_spec_manager_class`` here would run its dynamic default,
    which needs the gateway configuration the server has not built yet.
    """
    if serverapp.trait_has_value("kernel_spec_manager_class"):
        return serverapp.kernel_spec_manager_class is not KernelSpecManager
    if "kernel_spec_manager_class" in serverapp.config.get("ServerApp", {}):
        return True
    gateway = serverapp.config.get("GatewayClient", {})
    return bool(gateway.get("url") or os.environ.get("JUPYTER_GATEWAY_URL"))


class EnvsApp(ExtensionApp):  # type: ignore[misc]
    """Conda environments over Jupyter's REST API (``{base_url}jupyter-envs/``)."""

    name = "jupyter_envs"
    description = __doc__

    backend = Enum(
        list(BACKEND_KINDS),
        default_value="auto",
        config=True,
        help="""Engine that solves and installs environments. "rattler" uses the embedded
        py-rattler (no conda needed); "conda", "mamba" and "micromamba" drive that program
        (found through CONDA_EXE / MAMBA_EXE, then PATH). "auto" (the default) drives
        mamba, micromamba or conda when one is found that way (mamba and micromamba first),
        and otherwise the embedded py-rattler.""",
    )
    channels = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""Channels (names such as conda-forge, or URLs) that environments are created
        from and packages searched in, highest priority first. Empty (the default) uses the
        channels of conda's configuration (.condarc, CONDARC, CONDA_CHANNELS), or
        "defaults" when none is configured.""",
    )
    extra_envs_dirs = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""Directories of named environments to list besides conda's own envs_dirs
        (searched after them). Default: none.""",
    )
    protected_prefixes = List(
        Unicode(),
        default_value=[],
        config=True,
        help="""Environment prefixes that may not be changed or deleted through
        jupyter-envs, besides those always protected: the root (base) environment and the
        environment the server itself runs in. Default: none.""",
    )
    allow_protected_changes = Bool(
        False,
        config=True,
        help="""Allow installing into, removing from and rolling back protected environments
        (never deleting them). Default: False.""",
    )
    read_only = Bool(
        False,
        config=True,
        help="""List, inspect and export environments only: every route that would create,
        change or delete an environment answers 403. Default: False.""",
    )
    task_history = Int(
        50,
        config=True,
        help="""Number of finished tasks (creates, changes, deletes) kept for clients to
        look at; the oldest is forgotten first. Default: 50; at least 1.""",
    )
    task_log_lines = Int(
        10_000,
        config=True,
        help="""Log lines kept per task; older lines are dropped (log offsets stay valid).
        Default: 10000.""",
    )
    max_request_bytes = Int(
        4 * 1024 * 1024,
        config=True,
        help="""Largest accepted request body in bytes (an environment.yml or lock file
        travels in one). Larger bodies answer 400. Default: 4 MiB.""",
    )
    search_limit = Int(
        50,
        config=True,
        help="""Most packages one package search returns. Default: 50.""",
    )
    search_cache_seconds = Float(
        300.0,
        config=True,
        help="""Seconds the list of package names of the channels is cached for searches.
        Default: 300.""",
    )
    stop_timeout = Float(
        10.0,
        config=True,
        help="""Seconds the server waits, when it stops, for cancelled tasks to leave their
        environments consistent. Default: 10.""",
    )

    kernel_discovery = Bool(
        True,
        config=True,
        help="""List the kernels of every conda environment in the launcher and
        /api/kernelspecs (nb_conda_kernels-compatible names), started through the
        jupyter-envs provisioner. When True (the default) and ServerApp.kernel_spec_manager_class
        is left at Jupyter's default, the server uses
        jupyter_envs.kernels.discovery.EnvKernelSpecManager; a kernel spec manager configured
        explicitly is never replaced. False leaves kernel discovery to Jupyter.""",
    )

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        """Install environment kernel discovery before the server builds its managers.

        Extensions are linked before ``ServerApp.init_configurables``, so this is the one
        moment where the kernel spec manager class can still be chosen without the user
        editing a config file (config.d files only enable extensions).
        """
        super()._link_jupyter_server_extension(serverapp)
        if self.kernel_discovery and not _kernel_spec_manager_chosen(serverapp):
            serverapp.kernel_spec_manager_class = EnvKernelSpecManager

    def initialize_settings(self) -> None:
        """Build the core once; the handlers receive it through ``initialize``."""
        manager = build_manager(
            backend=self.backend,
            channels=self.channels,
            extra_envs_dirs=self.extra_envs_dirs,
            protected=self.protected_prefixes,
            allow_protected_changes=self.allow_protected_changes,
            read_only=self.read_only,
        )
        ksm = getattr(self.serverapp, "kernel_spec_manager", None)
        if isinstance(ksm, EnvKernelSpecManager):
            # One registry for REST and discovery: the same envs dirs, one cache.
            ksm.registry = manager.registry
        self.tasks = TaskManager(history=self.task_history, log_lines=self.task_log_lines)
        search = PackageSearch(
            manager.registry.config.channels,
            limit=self.search_limit,
            ttl=self.search_cache_seconds,
        )
        self.services = Services(
            manager=manager,
            tasks=self.tasks,
            search=search,
            max_body_bytes=self.max_request_bytes,
            backend_kind=self.backend,
        )
        self.log.info(
            "jupyter-envs: backend %s, %d channel(s)%s",
            manager.backend.name,
            len(manager.registry.config.channels),
            ", read-only" if self.read_only else "",
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(url_table(self.services))

    async def stop_extension(self) -> None:
        """Cancel running tasks and give them ``stop_timeout`` seconds to clean up."""
        tasks: Any = getattr(self, "tasks", None)
        if tasks is not None:
            await tasks.stop(self.stop_timeout)
