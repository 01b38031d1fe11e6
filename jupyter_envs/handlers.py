"""REST handlers of jupyter-envs. Thin: the manager and the task manager do the work.

Every method is authenticated and authorized on the ``jupyter_envs`` resource (GET is
``read``; POST and DELETE are ``write``). Errors are raised; an
:class:`~jupyter_envs.errors.EnvsError` becomes ``{"message": ...}`` with the status
:func:`~jupyter_envs.errors.http_status` gives it. The URL table is at the bottom.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from . import inputs
from .envs.model import to_json
from .errors import EnvsError, NotFound, http_status
from .gpu.handlers import default_handlers as gpu_handlers
from .rest_base import AUTH_RESOURCE, EnvsHandler, Services

__all__ = ["AUTH_RESOURCE", "EnvsHandler", "Services", "url_table"]

#: Log lines sent per WebSocket message.
STREAM_BATCH = 500

class EnvironmentsHandler(EnvsHandler):
    """``environments``: list (GET) and create (POST, 202)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        refresh = inputs.flag_argument(self.get_query_argument("refresh", None))
        envs = await asyncio.to_thread(self.manager.registry.list, refresh=refresh)
        self.reply(envs)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.check_writable()
        req = inputs.create_request(self.json_body())
        prefix = await asyncio.to_thread(self.manager.check_create, req)
        self.no_task_on(prefix)
        self.submit("create", prefix, lambda reporter: self.manager.create(req, reporter))


class CreatePreviewHandler(EnvsHandler):
    """``environments/preview``: the plan of a create; nothing is written."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = inputs.create_request(self.json_body())
        await asyncio.to_thread(self.manager.check_create, req)
        self.reply(await self.manager.preview_create(req))


class EnvironmentHandler(EnvsHandler):
    """``environments/{env_id}``: details (GET) and delete (DELETE, 202)."""

    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        prefix = await self.known_env(env_id)
        with_size = inputs.flag_argument(self.get_query_argument("size", None))
        details = await asyncio.to_thread(
            self.manager.registry.details, prefix, with_size=with_size
        )
        self.reply(details)

    @web.authenticated
    @authorized
    async def delete(self, env_id: str) -> None:
        self.check_writable()
        prefix = await self.known_env(env_id)
        await asyncio.to_thread(self.manager.check_delete, prefix)
        self.submit("delete", prefix, lambda reporter: self.manager.delete(prefix, reporter))


class PackagesHandler(EnvsHandler):
    """``environments/{env_id}/packages``: install, update or remove (202)."""

    @web.authenticated
    @authorized
    async def post(self, env_id: str) -> None:
        self.check_writable()
        prefix = await self.known_env(env_id)
        action, specs, channels = inputs.change_request(self.json_body())
        await asyncio.to_thread(
            functools.partial(self.manager.check_change, prefix, action, specs, channels=channels)
        )
        self.submit(
            action,
            prefix,
            lambda reporter: self.manager.change(
                prefix, action, specs, reporter, channels=channels
            ),
        )


class ChangePreviewHandler(EnvsHandler):
    """``environments/{env_id}/preview``: the plan of a package change."""

    @web.authenticated
    @authorized
    async def post(self, env_id: str) -> None:
        prefix = await self.known_env(env_id)
        action, specs, channels = inputs.change_request(self.json_body())
        self.reply(await self.manager.preview_change(prefix, action, specs, channels=channels))


class ExportHandler(EnvsHandler):
    """``environments/{env_id}/export?format=``: the environment as a file."""

    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        fmt = inputs.export_format(self.get_query_argument("format", "yml"))
        prefix = await self.known_env(env_id)
        export = await self.manager.export(prefix, fmt)
        self.set_header("Content-Disposition", f'attachment; filename="{export.filename}"')
        # APIHandler.finish would otherwise label every body application/json.
        self.finish(export.text, set_content_type=export.media_type)


class RevisionsHandler(EnvsHandler):
    """``environments/{env_id}/revisions``: the conda-meta/history revisions."""

    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        prefix = await self.known_env(env_id)
        self.reply(await self.manager.revisions(prefix))


class RollbackHandler(EnvsHandler):
    """``environments/{env_id}/revisions/{n}/rollback``: back to revision n (202)."""

    @web.authenticated
    @authorized
    async def post(self, env_id: str, revision: str) -> None:
        self.check_writable()
        prefix = await self.known_env(env_id)
        number = inputs.int_argument(revision, "revision", 0)
        await asyncio.to_thread(self.manager.registry.check_mutable, prefix)
        if number not in {r.number for r in await self.manager.revisions(prefix)}:
            raise NotFound(f"Environment {prefix} has no revision {number}.")
        self.submit(
            "rollback", prefix, lambda reporter: self.manager.rollback(prefix, number, reporter)
        )


class TasksHandler(EnvsHandler):
    """``tasks``: running and recent tasks, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply([task.to_json() for task in self.tasks.list()])


class TaskHandler(EnvsHandler):
    """``tasks/{tid}``: one task (GET); cancel it (DELETE, 202)."""

    @web.authenticated
    @authorized
    async def get(self, tid: str) -> None:
        self.reply(self.tasks.get(tid).to_json())

    @web.authenticated
    @authorized
    async def delete(self, tid: str) -> None:
        self.accepted(self.tasks.cancel(tid))


class TaskLogHandler(EnvsHandler):
    """``tasks/{tid}/log?offset=&limit=``: log lines from an offset."""

    @web.authenticated
    @authorized
    async def get(self, tid: str) -> None:
        task = self.tasks.get(tid)
        offset = inputs.int_argument(self.get_query_argument("offset", None), "offset", 0)
        limit = inputs.int_argument(self.get_query_argument("limit", None), "limit", 10_000)
        chunk = task.log.read(offset, limit)
        self.reply({**to_json(chunk), "state": task.state})


class TaskStreamHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):  # type: ignore[misc]
    """Streams a task's log from ``?offset=N``: ``{"type": "log", "offset", "lines",
    "next"}`` messages, then ``{"type": "end", "task": ...}``, then the server closes."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, services: Services) -> None:
        self.services = services
        self._pump: asyncio.Task[None] | None = None

    def set_default_headers(self) -> None:
        """No API headers on a WebSocket (as jupyter_server's own sockets do)."""

    @ws_authenticated
    @authorized
    async def get(self, tid: str) -> None:
        try:
            self.task = self.services.tasks.get(tid)
            self.offset = inputs.int_argument(self.get_query_argument("offset", None), "offset", 0)
        except EnvsError as exc:
            raise web.HTTPError(http_status(exc), str(exc).replace("%", "%%")) from exc
        await super().get(tid)

    def open(self, tid: str) -> None:  # type: ignore[override]
        super().open()
        self._pump = asyncio.ensure_future(self._stream())

    async def _stream(self) -> None:
        task, offset = self.task, self.offset
        try:
            while True:
                await task.wait_change(offset, timeout=30)
                chunk = task.log.read(offset, STREAM_BATCH)
                if chunk.lines:
                    message = {"type": "log", **to_json(chunk)}
                    await self.write_message(json.dumps(message))
                offset = chunk.next
                if task.is_finished and offset >= task.log.end:
                    await self.write_message(json.dumps({"type": "end", "task": task.to_json()}))
                    self.close(1000, "task finished")
                    return
        except WebSocketClosedError:
            return

    def on_message(self, message: str | bytes) -> None:
        """Clients have nothing to say; messages are ignored."""

    def on_close(self) -> None:
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()


class ConfigHandler(EnvsHandler):
    """``config``: backend, channels, read-only flag, environment directories."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        config = self.manager.registry.config
        self.reply(
            {
                "backend": self.manager.backend.name,
                "backend_setting": self.services.backend_kind,
                "channels": list(config.channels),
                "read_only": self.manager.read_only,
                "envs_dirs": [str(p) for p in config.envs_dirs],
                "root_prefixes": [str(p) for p in config.root_prefixes],
            }
        )


class PackageSearchHandler(EnvsHandler):
    """``packages?q=&limit=``: packages of the channels whose name has q."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.get_query_argument("q", "")
        limit = inputs.int_argument(self.get_query_argument("limit", None), "limit", 0)
        hits = await self.services.search.search(query, limit=limit or None)
        self.reply(hits)


_ENV = r"(?P<env_id>[A-Za-z0-9_\-]{1,6000})"
_REVISION = r"(?P<revision>[0-9]{1,9})"
_TASK = r"(?P<tid>[0-9a-f]{1,64})"

#: Paths relative to ``{base_url}``; every one is described in ``rest_api.yml``.
default_handlers: list[tuple[str, type]] = [
    (r"jupyter-envs/environments", EnvironmentsHandler),
    (r"jupyter-envs/environments/preview", CreatePreviewHandler),
    (rf"jupyter-envs/environments/{_ENV}", EnvironmentHandler),
    (rf"jupyter-envs/environments/{_ENV}/packages", PackagesHandler),
    (rf"jupyter-envs/environments/{_ENV}/preview", ChangePreviewHandler),
    (rf"jupyter-envs/environments/{_ENV}/export", ExportHandler),
    (rf"jupyter-envs/environments/{_ENV}/revisions", RevisionsHandler),
    (rf"jupyter-envs/environments/{_ENV}/revisions/{_REVISION}/rollback", RollbackHandler),
    (r"jupyter-envs/tasks", TasksHandler),
    (rf"jupyter-envs/tasks/{_TASK}", TaskHandler),
    (rf"jupyter-envs/tasks/{_TASK}/log", TaskLogHandler),
    (rf"jupyter-envs/tasks/{_TASK}/stream", TaskStreamHandler),
    (r"jupyter-envs/config", ConfigHandler),
    (r"jupyter-envs/packages", PackageSearchHandler),
]


def url_table(services: Services) -> list[tuple[str, type, dict[str, Any]]]:
    """Every route with its handler and ``initialize`` arguments (GPU routes included)."""
    gpu = [(url_path_join("jupyter-envs", path), handler) for path, handler in gpu_handlers]
    return [(path, handler, {"services": services}) for path, handler in default_handlers + gpu]
