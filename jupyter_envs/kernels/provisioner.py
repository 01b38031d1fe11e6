"""The kernel provisioner that starts a kernel inside an activated conda environment.

Kernelspecs made by :mod:`jupyter_envs.kernels.discovery` name it in
``metadata.kernel_provisioner`` (``provisioner_name: jupyter-envs-provisioner``); its options
arrive from that stanza's ``config``. The kernel process is started directly (no ``conda run``,
no wrapper shell), so interrupt and restart signals reach the kernel itself.

GPU notices (``GpuGrant.messages``: assignment, CUDA compatibility) go to the server log and,
for ipykernel kernels, to the stderr of the first cell the user runs: output produced while
the kernel starts reaches no client, so the notice waits for the first execution. When no
GPU can be granted (``NoFreeGpu``) the fallback kernel shows the reason instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Bool, CaselessStrEnum, Unicode

from ..errors import EnvsError
from . import fallback
from .activation import ActivationCache, conda_env_name

PROVISIONER_NAME = "jupyter-envs-provisioner"
# Unix socket paths are limited to 108 bytes; ipc endpoints are "<ip>-<n>".
_MAX_IPC_PATH = 100


def _default_transport() -> str:
    return "ipc" if sys.platform.startswith(("linux", "darwin")) else "tcp"


class EnvProvisioner(LocalProvisioner):  # type: ignore[misc]
    """A :class:`LocalProvisioner` that activates a conda environment before launching.

    Overrides only :meth:`pre_launch` (safe to run again on restart) and :meth:`cleanup`.
    When the environment is gone or broken it launches the fallback kernel, which shows the
    reason in the notebook, instead of failing silently.
    """

    prefix = Unicode(
        "",
        config=True,
        help="""Absolute path of the conda environment the kernel runs in. Empty: taken from
        the kernelspec's ``metadata.conda_env_path``; if that is missing too, the fallback
        kernel starts and says so.""",
    )

    env_name = Unicode(
        "",
        config=True,
        help="""The environment's conda name, set as CONDA_DEFAULT_ENV and in
        CONDA_PROMPT_MODIFIER. Empty (the default): the folder name for an environment in
        an ``envs`` directory, otherwise the full prefix path, as conda does.""",
    )

    transport = CaselessStrEnum(
        ["ipc", "tcp"],
        default_value=_default_transport(),
        config=True,
        help="""ZeroMQ transport between the server and the kernel. ``ipc`` (the default on
        Linux and macOS) uses Unix sockets next to the connection file, so no TCP port is
        open to other local users; ``tcp`` uses localhost ports as plain Jupyter does.
        Set ``c.EnvProvisioner.transport = "tcp"`` to switch back.""",
    )

    gpus = Bool(
        True,
        config=True,
        help="""Ask :mod:`jupyter_envs.gpu` which GPUs this kernel may see (sets
        CUDA_VISIBLE_DEVICES). False: leave GPU variables as the server has them.""",
    )

    fallback_reason: str | None = None
    """Why the fallback kernel was started instead of the real one (None: it was not)."""

    gpu_messages: tuple[str, ...] = ()
    """Notices from the GPU assignment for the last launch (shown at the first execution)."""

    _ipc_dir: str | None = None
    _gpu_granted = False

    @property
    def env_prefix(self) -> Path | None:
        """The environment's prefix (from config or the kernelspec metadata), if known."""
        if self.prefix:
            return Path(self.prefix)
        metadata = getattr(self.kernel_spec, "metadata", None) or {}
        path = metadata.get("conda_env_path")
        return Path(path) if path else None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Activate the environment into the launch ``env``, then let LocalProvisioner finish.

        Called by ``KernelManager.pre_start_kernel`` on every start and restart. ``kwargs``
        is never changed in place (the manager keeps it for restarts).
        """
        km = self.parent
        if km is not None:
            self._choose_transport(km)
        server_env = dict(kwargs.get("env") or os.environ)
        self.fallback_reason = None
        self.gpu_messages = ()
        try:
            env = await self._kernel_env(server_env)
        except EnvsError as exc:
            self.fallback_reason = str(exc)
            env = server_env
        except Exception as exc:  # anything unexpected must still reach the notebook
            self.log.exception("Kernel %s: preparing the environment failed", self.kernel_id)
            self.fallback_reason = f"{fallback.UNKNOWN} ({type(exc).__name__}: {exc})"
            env = server_env
        kwargs = {**kwargs, "env": env}
        kwargs = await super().pre_launch(**kwargs)
        if self.fallback_reason is not None:
            self.log.warning("Kernel %s: %s", self.kernel_id, self.fallback_reason)
            connection_file = getattr(km, "connection_file", "") or "{connection_file}"
            kwargs["cmd"] = fallback.fallback_argv(connection_file)
            kwargs["env"] = {**kwargs["env"], fallback.REASON_VAR: self.fallback_reason}
        elif self.gpu_messages:
            for message in self.gpu_messages:
                self.log.info("Kernel %s: %s", self.kernel_id, message)
            kwargs["cmd"] = [*kwargs["cmd"], *_notice_args(kwargs["cmd"], self.gpu_messages)]
        return kwargs

    async def _kernel_env(self, server_env: dict[str, str]) -> dict[str, str]:
        """The activated environment for the kernel; raises EnvsError with a user message."""
        prefix = self.env_prefix
        if prefix is None:
            raise EnvsError(fallback.UNKNOWN + " (The kernelspec names no environment.)")
        if not prefix.is_dir():
            raise EnvsError(fallback.ENV_MISSING.format(prefix=prefix))
        if not (prefix / "conda-meta").is_dir():
            raise EnvsError(fallback.NOT_AN_ENV.format(prefix=prefix))
        argv = list(getattr(self.kernel_spec, "argv", None) or [])
        if argv and os.path.isabs(argv[0]) and not os.access(argv[0], os.X_OK):
            raise EnvsError(fallback.NO_EXECUTABLE.format(executable=argv[0], prefix=prefix))
        name = self.env_name or conda_env_name(prefix)
        try:
            # The first kernel creates the shared cache with the server's configuration.
            cache = ActivationCache.instance(config=self.config)
            activation = await cache.get(prefix, env_name=name)
        except EnvsError as exc:
            raise EnvsError(fallback.ACTIVATION_FAILED.format(prefix=prefix, error=exc)) from exc
        env = activation.apply(server_env)
        if argv and not os.path.isabs(argv[0]) and not shutil.which(argv[0], path=env["PATH"]):
            raise EnvsError(fallback.NO_EXECUTABLE.format(executable=argv[0], prefix=prefix))
        if self.gpus:
            env.update(await self._grant_gpus(prefix, server_env.get("JPY_SESSION_NAME")))
        return env

    async def _grant_gpus(self, prefix: Path, notebook_path: str | None) -> dict[str, str]:
        try:
            from ..gpu import grant_gpus
        except ImportError:  # the GPU part is optional at runtime
            return {}
        root_dir = getattr(getattr(self.parent, "parent", None), "root_dir", None)
        try:
            grant = await grant_gpus(
                self.kernel_id or "",
                prefix,
                notebook_path,
                root_dir=Path(root_dir) if isinstance(root_dir, str) and root_dir else None,
            )
        except EnvsError as exc:
            raise EnvsError(fallback.GPU_UNAVAILABLE.format(error=exc)) from exc
        self._gpu_granted = True
        self.gpu_messages = tuple(grant.messages)
        return dict(grant.env)

    async def post_launch(self, **kwargs: Any) -> None:
        """Record the kernel's pid with its GPUs (so a crashed kernel's GPUs are reclaimed)."""
        await super().post_launch(**kwargs)
        if self._gpu_granted and self.pid is not None:
            from ..gpu import note_kernel_pid

            await asyncio.to_thread(note_kernel_pid, self.kernel_id or "", self.pid)

    def _choose_transport(self, km: Any) -> None:
        """Switch the kernel manager to IPC before it writes the connection file."""
        if self.transport != "ipc" or km.transport == "ipc":
            return
        if getattr(km, "_connection_file_written", False):
            return  # a restart of a kernel that already runs over TCP keeps its ports
        if not km.connection_file:
            from jupyter_core.paths import jupyter_runtime_dir

            runtime = jupyter_runtime_dir()
            os.makedirs(runtime, mode=0o700, exist_ok=True)
            km.connection_file = os.path.join(runtime, f"kernel-{self.kernel_id}.json")
        ip = os.path.splitext(km.connection_file)[0] + "-ipc"
        if len(os.fsencode(ip)) > _MAX_IPC_PATH:
            # Too long for a Unix socket: use a private (0700) short directory instead.
            self._ipc_dir = tempfile.mkdtemp(prefix="jpy-envs-")
            ip = os.path.join(self._ipc_dir, f"{(self.kernel_id or 'kernel')[:8]}-ipc")
        km.cache_ports = False
        km.transport = "ipc"
        km.ip = ip

    async def cleanup(self, restart: bool = False) -> None:
        """Release the kernel's GPUs and IPC folder, then LocalProvisioner's cleanup.

        Called by the kernel manager after the kernel process ended. On a restart
        (``restart`` True) GPUs stay held: the next :meth:`pre_launch` grants them again.
        """
        if not restart:
            if self._gpu_granted:
                self._gpu_granted = False
                from ..gpu import release_gpus

                await asyncio.to_thread(release_gpus, self.kernel_id or "")
            if self._ipc_dir:
                shutil.rmtree(self._ipc_dir, ignore_errors=True)
                self._ipc_dir = None
        await super().cleanup(restart=restart)


_NOTICE_CODE = (
    "def _jupyter_envs_notice(messages):\n"
    "    import sys\n"
    "    shell = get_ipython()\n"
    "    def show(*_):\n"
    "        sys.stderr.write(''.join(m + chr(10) for m in messages))\n"
    "        shell.events.unregister('pre_run_cell', show)\n"
    "    shell.events.register('pre_run_cell', show)\n"
    "_jupyter_envs_notice({messages!r})\n"
    "del _jupyter_envs_notice"
)


def _notice_args(cmd: list[str], messages: tuple[str, ...]) -> list[str]:
    """Extra ipykernel arguments that print ``messages`` once, at the first execution.

    Output sent while the kernel starts reaches no client, so the notice waits for the first
    cell. Only ipykernel understands this; other kernels get the notice in the server log.
    """
    if not any("ipykernel" in part for part in cmd):
        return []
    code = _NOTICE_CODE.format(messages=list(messages))
    return [f"--IPKernelApp.exec_lines={[code]!r}"]
