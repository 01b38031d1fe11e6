"""A KernelSpecManager that lists the kernels of every conda environment.

Installed by the server extension (``EnvsApp.kernel_discovery``) when
``ServerApp.kernel_spec_manager_class`` is left at its default. Environments come from
:class:`jupyter_envs.envs.registry.EnvRegistry` (cached by modification time, no subprocess),
and every call re-checks them, so a new environment's kernel shows up without a restart.
Names follow nb_conda_kernels (see :mod:`jupyter_envs.kernels.naming`); the ordinary
kernelspecs from Jupyter's data paths are still listed unless ``conda_only`` is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, TraitError, Unicode, validate

from ..envs.condaconfig import CondaConfig
from ..envs.model import EnvInfo
from . import naming
from .envspecs import EnvScanCache, build_spec
from .writer import KernelspecWriter

_SPEC_TRAITS = frozenset(KernelSpec.class_trait_names())


def _resolved(path: Path | None) -> Path | None:
    return Path(os.path.realpath(path)) if path is not None else None


class EnvSource(Protocol):
    """What discovery needs from an :class:`~jupyter_envs.envs.registry.EnvRegistry`."""

    config: CondaConfig

    def list(self, *, refresh: bool = False) -> list[EnvInfo]: ...


class EnvKernelSpecManager(KernelSpecManager):  # type: ignore[misc]
    """Kernelspecs for the kernels inside conda environments, plus Jupyter's usual ones.

    Each generated kernelspec names ``jupyter-envs-provisioner`` in
    ``metadata.kernel_provisioner``, which activates the environment at launch.
    """

    name_format = Unicode(
        naming.DEFAULT_NAME_FORMAT,
        config=True,
        help="""Display name of environment kernels (nb_conda_kernels' setting, same fields):
        ``{language}`` (or ``{0}``), ``{environment}`` (or ``{1}``), ``{kernel}`` (the kernel
        folder name), ``{display_name}`` (the kernel's own display name), ``{conda_kernel}``
        (the generated kernel name). Default: "{language} [conda env:{environment}]".""",
    )

    env_filter = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Regular expression; environments whose full path matches it (``re.search``)
        are not listed. None (the default): every environment is listed.""",
    )

    conda_only = Bool(
        False,
        config=True,
        help="""List only environment kernels, not the kernelspecs Jupyter finds in its data
        paths (the server's own ``python3`` included). Default: False.""",
    )

    kernelspec_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Also write the environment kernelspecs to disk, so that nbconvert, papermill
        and ``jupyter kernelspec list`` see them: ``--user`` (Jupyter's user data folder),
        ``--sys-prefix`` (``sys.prefix/share/jupyter/kernels``) or a prefix path (its
        ``share/jupyter/kernels``). Written kernelspecs of removed environments are deleted.
        None (the default): nothing is written.""",
    )

    provisioner_config = Dict(
        {},
        config=True,
        help="""Extra ``EnvProvisioner`` options put into every generated kernelspec's
        ``metadata.kernel_provisioner.config`` (for example ``{"transport": "tcp"}``).
        Empty by default: the provisioner's own configuration applies.""",
    )

    registry = AnyTrait(
        None,
        allow_none=True,
        help="""The EnvRegistry environments are listed from (shared with the jupyter-envs
        server extension when it sets it). None: one is made from conda's configuration
        (``load_conda_config()``) on first use.""",
    )

    @validate("env_filter")
    def _check_filter(self, proposal: dict[str, Any]) -> str | None:
        value = proposal["value"]
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise TraitError(f"env_filter is not a valid regular expression: {exc}") from exc
        return value  # type: ignore[no-any-return]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scans = EnvScanCache()
        self._key: tuple[Any, ...] | None = None
        self._specs: dict[str, KernelSpec] = {}
        self._writer: KernelspecWriter | None = None
        # get_all_specs lists in a worker thread while get_kernel_spec runs on the loop.
        self._lock = threading.Lock()

    # -- environment kernels ------------------------------------------------------------

    def _source(self) -> EnvSource:
        if self.registry is None:
            from ..envs.condaconfig import load_conda_config
            from ..envs.registry import EnvRegistry

            self.registry = EnvRegistry(load_conda_config())
        source: EnvSource = self.registry
        return source

    def env_kernel_specs(self) -> dict[str, KernelSpec]:
        """Kernel name -> kernelspec for every environment kernel (re-checked on each call).

        Blocks on the file system (cheap when warm: the registry caches by mtime).
        """
        with self._lock:
            return self._env_kernel_specs()

    def _env_kernel_specs(self) -> dict[str, KernelSpec]:
        source = self._source()
        config = source.config
        pattern = re.compile(self.env_filter) if self.env_filter is not None else None
        # The registry already knows which environments hold a kernel (cached by mtime):
        # only those are scanned for kernel.json files.
        envs = {
            env.prefix: env
            for env in sorted(source.list(), key=lambda env: env.prefix)
            if env.has_kernel and (pattern is None or not pattern.search(env.prefix))
        }
        listed = list(envs)
        scans = {prefix: self._scans.get(prefix) for prefix in listed}
        self._scans.retain(set(listed))
        key = (
            tuple((p, scans[p][0]) for p in listed),
            self.name_format,
            tuple(sorted(self.provisioner_config.items(), key=str)),
        )
        if key == self._key:
            return self._specs
        # Resolved like the registry's prefixes (a symlinked root must still be "root").
        base = _resolved(config.root_prefixes[0]) if config.root_prefixes else None
        default_envs = base / "envs" if base else _resolved((config.envs_dirs or (None,))[0])
        names = naming.env_names(
            [Path(p) for p in listed if scans[p][1]],
            base_prefix=base,
            default_envs_dir=default_envs,
        )
        own_prefix = Path(os.path.realpath(sys.prefix))
        specs: dict[str, KernelSpec] = {}
        for prefix, env_name in names.items():
            for raw in scans[str(prefix)][1]:
                kname = naming.kernel_name(env_name, raw.dir_name)
                shown = naming.display_name(
                    self.name_format,
                    env_name=env_name,
                    kernel_name=kname,
                    kernel_dir_name=raw.dir_name,
                    original=str(raw.spec["display_name"]),
                )
                if prefix == own_prefix:
                    shown += " *"
                data = build_spec(
                    raw,
                    prefix=prefix,
                    env_name=env_name,
                    display_name=shown,
                    conda_name=envs[str(prefix)].name,  # conda's label: base, name or path
                    provisioner_config=dict(self.provisioner_config),
                )
                fields = {k: v for k, v in data.items() if k in _SPEC_TRAITS}
                specs[kname] = KernelSpec(resource_dir=raw.resource_dir, name=kname, **fields)
        self._key, self._specs = key, specs
        if self.kernelspec_path is not None:
            self._kernelspec_writer().sync(specs)
        return specs

    def _kernelspec_writer(self) -> KernelspecWriter:
        if self._writer is None:
            self._writer = KernelspecWriter(self._write_destination(), log=self.log)
        return self._writer

    def _write_destination(self) -> Path:
        value = self.kernelspec_path or ""
        if value == "--user":
            return Path(self.user_kernel_dir)
        if value == "--sys-prefix":
            return Path(sys.prefix) / "share" / "jupyter" / "kernels"
        return Path(value).expanduser() / "share" / "jupyter" / "kernels"

    # -- KernelSpecManager API ----------------------------------------------------------

    def find_kernel_specs(self) -> dict[str, str]:
        """Kernel name -> resource directory, environment kernels included."""
        found: dict[str, str] = {} if self.conda_only else super().find_kernel_specs()
        for name, spec in self.env_kernel_specs().items():
            found[name] = spec.resource_dir
        return found

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """The kernelspec called ``kernel_name`` (``NoSuchKernel`` if there is none)."""
        spec = self.env_kernel_specs().get(kernel_name)
        if spec is not None:
            return spec
        if self.conda_only:
            raise NoSuchKernel(kernel_name)
        return super().get_kernel_spec(kernel_name)

    async def get_all_specs(self) -> dict[str, dict[str, Any]]:  # type: ignore[override]
        """Every kernelspec as ``{name: {"resource_dir", "spec"}}``, scanning once.

        A coroutine (jupyter_server awaits it through ``ensure_async``): the environments are
        listed in a thread, so a cold listing never stalls the server's event loop.
        """
        return await asyncio.to_thread(self._all_specs)

    def _all_specs(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if not self.conda_only:
            for name, resource_dir in super().find_kernel_specs().items():
                try:
                    spec = self._get_kernel_spec_by_name(name, resource_dir)
                except (NoSuchKernel, ValueError, OSError):
                    self.log.warning("Error loading kernelspec %r", name, exc_info=True)
                    continue
                out[name] = {"resource_dir": resource_dir, "spec": spec.to_dict()}
        for name, spec in self.env_kernel_specs().items():
            out[name] = {"resource_dir": spec.resource_dir, "spec": spec.to_dict()}
        return out
