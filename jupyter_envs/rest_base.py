"""The base of every jupyter-envs REST handler: shared services, JSON, errors.

Its own module so that the REST table (:mod:`jupyter_envs.handlers`) and the GPU routes
(:mod:`jupyter_envs.gpu.handlers`) share one error mapping and one environment lookup.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from . import inputs
from .envs.manager import READ_ONLY_MESSAGE, EnvManager
from .envs.model import to_json
from .envs.search import PackageSearch
from .envs.tasks import Runner, Task, TaskManager
from .errors import Conflict, EnvsError, ReadOnly, http_status

AUTH_RESOURCE = "jupyter_envs"
BUSY_MESSAGE = "Another operation on {prefix} is already queued or running (task {tid})."


@dataclass(frozen=True)
class Services:
    """What the handlers share, handed to each through ``initialize``."""

    manager: EnvManager
    tasks: TaskManager
    search: PackageSearch
    max_body_bytes: int
    backend_kind: str


class EnvsHandler(APIHandler):  # type: ignore[misc]
    """Base of the REST handlers: services, JSON helpers and error mapping."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, services: Services) -> None:
        self.services = services

    @property
    def manager(self) -> EnvManager:
        return self.services.manager

    @property
    def tasks(self) -> TaskManager:
        return self.services.tasks

    def json_body(self) -> dict[str, Any]:
        return inputs.parse_json_object(self.request.body or b"", self.services.max_body_bytes)

    def check_writable(self) -> None:
        if self.manager.read_only:
            raise ReadOnly(READ_ONLY_MESSAGE)

    async def known_env(self, env_id: str) -> Path:
        """The prefix of environment ``env_id``: 400 when malformed, 404 when unknown."""
        prefix = inputs.env_prefix(env_id)
        info = await asyncio.to_thread(self.manager.registry.get, prefix)
        return Path(info.prefix)

    def no_task_on(self, prefix: Path) -> None:
        """Conflict when a task is queued or running on ``prefix`` (two creates of one target)."""
        task = self.tasks.active(prefix)
        if task is not None:
            raise Conflict(BUSY_MESSAGE.format(prefix=prefix, tid=task.id))

    def accepted(self, task: Task) -> None:
        """Answer 202 with the task and its Location."""
        self.set_status(202)
        self.set_header("Location", url_path_join(self.base_url, "jupyter-envs/tasks", task.id))
        self.finish(json.dumps(task.to_json()))

    def submit(self, kind: str, prefix: Path, run: Runner) -> None:
        self.accepted(self.tasks.submit(kind, prefix, run))

    def reply(self, data: Any) -> None:
        self.finish(json.dumps(to_json(data)))

    # Error mapping: tornado hands every exception a method raises to these hooks.
    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, EnvsError) and not self._finished:
            self.log_exception(type(e), e, e.__traceback__)
            self.send_error(http_status(e), exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, EnvsError) and http_status(value) < 500:
            self.log.warning("%d %s: %s", http_status(value), self._request_summary(), value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, EnvsError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": str(exc), "reason": type(exc).__name__}))
            return
        super().write_error(status_code, **kwargs)
