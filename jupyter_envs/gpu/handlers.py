"""REST routes for GPUs, relative to ``{base_url}jupyter-envs/``.

- ``GET gpus``: the inventory with the kernels holding or using each GPU.
- ``GET|PUT|DELETE environments/{id}/gpu``: an environment's default GPU choice.
- ``GET|PUT|DELETE notebooks/gpu?path=...``: the choice in a notebook's metadata
  (``metadata.jupyter_envs.gpu``), written through the contents manager.

A ``PUT`` body is a choice: ``{"mode": "auto", "count": 1}`` (see
:mod:`jupyter_envs.gpu.prefs`); named GPUs must exist here and ``count`` must not exceed
the GPUs present, else 400.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web

from ..envs.model import env_id as make_env_id
from ..errors import InvalidRequest
from ..rest_base import EnvsHandler
from .assign import AssignmentStore
from .compat import cuda_compat
from .inventory import STATIC_TTL, Inventory, read_inventory
from .overview import gpu_overview
from .prefs import (
    DEFAULT_CHOICE,
    METADATA_KEY,
    GpuChoice,
    get_env_choice,
    notebook_choice_from_metadata,
    parse_choice,
    set_env_choice,
)


def check_choice(choice: GpuChoice, inventory: Inventory) -> None:
    """Refuse a choice that cannot work here: unknown GPUs, more GPUs than exist."""
    if choice.mode == "devices":
        for device in choice.devices:
            if inventory.find(device) is None:
                known = ", ".join(str(g.index) for g in inventory.gpus) or "none"
                raise InvalidRequest(f"no GPU {device!r} on this machine (GPUs: {known})")
    if choice.mode == "auto" and inventory.gpus and choice.count > len(inventory.gpus):
        raise InvalidRequest(
            f"cannot hold {choice.count} GPUs: this machine has {len(inventory.gpus)}"
        )


class GpuBaseHandler(EnvsHandler):
    """The REST base (services, JSON bodies, error mapping) plus choice parsing."""

    async def validated_choice(self) -> GpuChoice:
        choice = parse_choice(self.json_body())
        # Static facts (UUIDs, count) are enough: no fresh probe for a PUT.
        inventory = await asyncio.to_thread(read_inventory, max_age=STATIC_TTL)
        check_choice(choice, inventory)
        return choice


class GpusHandler(GpuBaseHandler):
    """``GET gpus``."""

    def _kernel_pids(self) -> dict[int, str]:
        pids: dict[int, str] = {}
        for kernel_id in self.kernel_manager.list_kernel_ids():
            try:
                kernel = self.kernel_manager.get_kernel(kernel_id)
            except KeyError:
                continue  # ended meanwhile
            provisioner = getattr(kernel, "provisioner", None)
            pid = getattr(provisioner, "pid", None)
            if pid is None:
                pid = getattr(getattr(provisioner, "process", None), "pid", None)
            if isinstance(pid, int):
                pids[pid] = kernel_id
        return pids

    @web.authenticated
    @authorized
    async def get(self) -> None:
        kernel_pids = self._kernel_pids()
        local = list(self.kernel_manager.list_kernel_ids())

        def build() -> dict[str, Any]:
            inventory = read_inventory()
            return gpu_overview(inventory, AssignmentStore().assignments(), kernel_pids, local)

        self.finish(json.dumps(await asyncio.to_thread(build)))


class EnvGpuHandler(GpuBaseHandler):
    """``GET|PUT|DELETE environments/{id}/gpu``: the environment's default choice."""

    async def send_choice(self, prefix: Path) -> None:
        def build() -> dict[str, Any]:
            choice = get_env_choice(prefix)
            return {
                "id": make_env_id(prefix),
                "prefix": str(prefix),
                "choice": None if choice is None else choice.to_json(),
                "effective": (choice or DEFAULT_CHOICE).to_json(),
                "cuda_compat": cuda_compat(prefix),
            }

        self.finish(json.dumps(await asyncio.to_thread(build)))

    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        await self.send_choice(await self.known_env(env_id))

    @web.authenticated
    @authorized
    async def put(self, env_id: str) -> None:
        prefix = await self.known_env(env_id)
        choice = await self.validated_choice()
        await asyncio.to_thread(set_env_choice, prefix, choice)
        await self.send_choice(prefix)

    @web.authenticated
    @authorized
    async def delete(self, env_id: str) -> None:
        prefix = await self.known_env(env_id)
        await asyncio.to_thread(set_env_choice, prefix, None)
        self.set_status(204)
        self.finish()


class NotebookGpuHandler(GpuBaseHandler):
    """``GET|PUT|DELETE notebooks/gpu?path=``: the choice in the notebook's metadata."""

    def notebook_path(self) -> str:
        path = self.get_query_argument("path", "").strip("/")
        if not path.endswith(".ipynb"):
            raise InvalidRequest("'path' must name a notebook (.ipynb)")
        return path

    async def load(self, path: str) -> dict[str, Any]:
        manager = self.contents_manager
        model = await ensure_async(
            manager.get(path, content=True, type="notebook")  # type: ignore[no-untyped-call]
        )
        return dict(model)

    def send_notebook_choice(self, path: str, metadata: Any) -> None:
        try:
            choice = notebook_choice_from_metadata(metadata)
            problem = None
        except InvalidRequest as exc:
            choice, problem = None, str(exc)
        body = {"path": path, "choice": None if choice is None else choice.to_json()}
        if problem:
            body["problem"] = problem
        self.finish(json.dumps(body))

    async def store(self, path: str, choice: GpuChoice | None) -> Any:
        model = await self.load(path)
        notebook = model["content"]
        ours = dict(notebook.metadata.get(METADATA_KEY) or {})
        if choice is None:
            ours.pop("gpu", None)
        else:
            ours["gpu"] = choice.to_json()
        if ours:
            notebook.metadata[METADATA_KEY] = ours
        else:
            notebook.metadata.pop(METADATA_KEY, None)
        saved = {"type": "notebook", "format": "json", "content": notebook}
        await ensure_async(self.contents_manager.save(saved, path))  # type: ignore[no-untyped-call]
        return notebook.metadata

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.notebook_path()
        model = await self.load(path)
        self.send_notebook_choice(path, model["content"].metadata)

    @web.authenticated
    @authorized
    async def put(self) -> None:
        path = self.notebook_path()
        choice = await self.validated_choice()
        self.send_notebook_choice(path, await self.store(path, choice))

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        path = self.notebook_path()
        await self.store(path, None)
        self.set_status(204)
        self.finish()


default_handlers: list[tuple[str, type]] = [
    (r"gpus", GpusHandler),
    (r"environments/(?P<env_id>[A-Za-z0-9_\-]{1,6000})/gpu", EnvGpuHandler),
    (r"notebooks/gpu", NotebookGpuHandler),
]
