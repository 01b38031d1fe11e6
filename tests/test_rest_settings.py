"""One test per EnvsApp setting, through a real server; plus authentication of every route,
the WebSocket included, and shutdown cancelling running tasks."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import fakecli
import localchannel
import pytest
import yaml
from jupyter_server.auth.authorizer import Authorizer
from resthelp import Fetch, call, eid, follow
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from jupyter_envs.app import EnvsApp

ROUTES = [
    ("GET", "environments"),
    ("POST", "environments"),
    ("GET", "environments/L3RtcA"),
    ("DELETE", "environments/L3RtcA"),
    ("POST", "environments/L3RtcA/packages"),
    ("GET", "tasks"),
    ("GET", "config"),
    ("GET", "packages?q=foo"),
]


@pytest.fixture
def envs_config() -> dict[str, Any]:
    return {}


TOKENS = {"@other": "other_channel", "@extra": "extra_dir", "@envs": "envs_dir"}


def _resolve(value: Any, request: pytest.FixtureRequest) -> Any:
    """``@other`` (a channel URL), ``@extra`` and ``@envs`` (directories) in settings."""
    if isinstance(value, list):
        return [_resolve(v, request) for v in value]
    if isinstance(value, str):
        for token, fixture in TOKENS.items():
            if token in value:
                path = request.getfixturevalue(fixture)
                real = localchannel.channel_url(path) if token == "@other" else str(path)
                value = value.replace(token, real)
    return value


@pytest.fixture
def jp_server_config(envs_config: dict[str, Any], request: pytest.FixtureRequest) -> Any:
    settings = {key: _resolve(value, request) for key, value in envs_config.items()}
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}, "EnvsApp": settings}


def envs_app(serverapp: Any) -> EnvsApp:
    app: EnvsApp = serverapp.extension_manager.extension_points["jupyter_envs"].app
    return app


def test_every_trait_has_full_help() -> None:
    own = EnvsApp.class_own_traits(config=True)
    assert len(own) >= 12
    for name, trait in own.items():
        assert len(trait.help) > 40, name
        assert "Default" in trait.help or "default" in trait.help, name


@pytest.mark.parametrize("envs_config", [{"backend": "rattler"}])
async def test_backend_rattler(jp_fetch: Fetch) -> None:
    _, config, _ = await call(jp_fetch, "GET", "config")
    assert (config["backend"], config["backend_setting"]) == ("rattler", "rattler")


@pytest.fixture
def fake_conda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in: no conda can be installed here; tests/fakecli.py replays recorded outputs."""
    tools = fakecli.install(tmp_path / "fakebin", ("conda",))
    monkeypatch.setenv("PATH", f"{tools['conda'].parent}:{Path(__file__).parent}:/usr/bin:/bin")
    return tools["conda"]


@pytest.mark.parametrize("envs_config", [{"backend": "conda"}])
async def test_backend_conda(fake_conda: Path, jp_fetch: Fetch) -> None:
    _, config, _ = await call(jp_fetch, "GET", "config")
    assert (config["backend"], config["backend_setting"]) == ("conda", "conda")


async def test_backend_auto_without_conda_is_rattler(jp_fetch: Fetch) -> None:
    _, config, _ = await call(jp_fetch, "GET", "config")
    assert (config["backend"], config["backend_setting"]) == ("rattler", "auto")


@pytest.fixture
def other_channel(tmp_path: Path) -> Path:
    return localchannel.build_channel(
        tmp_path / "other", [localchannel.Pkg("onlyhere", "3.0", files={"share/o": b"o\n"})]
    )


@pytest.mark.parametrize("envs_config", [{"channels": ["@other"]}])
async def test_channels_replace_condarc(
    other_channel: Path, jp_fetch: Fetch, envs_dir: Path
) -> None:
    url = localchannel.channel_url(other_channel)
    _, config, _ = await call(jp_fetch, "GET", "config")
    assert config["channels"] == [url]
    _, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "o"})
    assert [h["name"] for h in hits] == ["onlyhere"]
    _, _, response = await call(
        jp_fetch, "POST", "environments", body={"name": "other", "specs": ["onlyhere"]}
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    assert (envs_dir / "other" / "share" / "o").exists()


@pytest.fixture
def extra_dir(tmp_path: Path) -> Path:
    path = tmp_path / "extra-envs"
    path.mkdir()
    return path


@pytest.mark.parametrize("envs_config", [{"extra_envs_dirs": ["@extra"]}])
async def test_extra_envs_dirs(make_env: Any, extra_dir: Path, jp_fetch: Fetch) -> None:
    prefix = await make_env("x", ("libfoo",), prefix=extra_dir / "elsewhere")
    _, envs, _ = await call(jp_fetch, "GET", "environments", params={"refresh": "1"})
    assert str(prefix) in [e["prefix"] for e in envs]
    _, config, _ = await call(jp_fetch, "GET", "config")
    assert str(extra_dir) in config["envs_dirs"]


@pytest.mark.parametrize(
    "envs_config",
    [{"protected_prefixes": ["@envs/guarded"], "allow_protected_changes": True}],
)
async def test_allow_protected_changes(make_env: Any, jp_fetch: Fetch) -> None:
    prefix = await make_env("guarded", ("libfoo",))
    ident = eid(prefix)
    _, envs, _ = await call(jp_fetch, "GET", "environments")
    assert [e["protected"] for e in envs] == [True]
    _, _, response = await call(
        jp_fetch, "POST", "environments", ident, "packages",
        body={"action": "install", "specs": ["bar"]},
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    status, reply, _ = await call(jp_fetch, "DELETE", "environments", ident)
    assert status == 403, reply
    assert prefix.exists()


@pytest.mark.parametrize("envs_config", [{"task_history": 1}])
async def test_task_history(jp_fetch: Fetch) -> None:
    ids = []
    for name in ("h1", "h2"):
        _, task, response = await call(
            jp_fetch, "POST", "environments", body={"name": name, "specs": ["libfoo"]}
        )
        await follow(jp_fetch, response)
        ids.append(task["id"])
    _, tasks, _ = await call(jp_fetch, "GET", "tasks")
    assert [t["id"] for t in tasks] == ids[1:]
    status, _, _ = await call(jp_fetch, "GET", "tasks", ids[0])
    assert status == 404


@pytest.mark.parametrize("envs_config", [{"task_log_lines": 1}])
async def test_task_log_lines(jp_fetch: Fetch) -> None:
    _, _, response = await call(
        jp_fetch, "POST", "environments", body={"name": "short", "specs": ["bar"]}
    )
    done = await follow(jp_fetch, response)
    assert done["log_length"] >= 2
    _, log, _ = await call(jp_fetch, "GET", "tasks", done["id"], "log")
    assert len(log["lines"]) == 1
    assert log["truncated"] is True
    assert log["offset"] == done["log_length"] - 1


@pytest.mark.parametrize("envs_config", [{"max_request_bytes": 100}])
async def test_max_request_bytes(jp_fetch: Fetch, envs_dir: Path) -> None:
    status, reply, _ = await call(
        jp_fetch, "POST", "environments", body={"name": "n" * 60, "specs": ["libfoo"] * 5}
    )
    assert status == 400
    assert "larger than 100 bytes" in reply["message"]
    assert list(envs_dir.iterdir()) == []


@pytest.mark.parametrize("envs_config", [{"search_limit": 1}])
async def test_search_limit(jp_fetch: Fetch) -> None:
    _, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "foo"})
    assert [h["name"] for h in hits] == ["libfoo"]


@pytest.fixture
def condarc_channel(mutable_channel: Path) -> Path:
    """Point the condarc at a private channel copy the test may add packages to."""
    condarc = Path(os.environ["CONDARC"])
    config = yaml.safe_load(condarc.read_text())
    config["channels"] = [localchannel.channel_url(mutable_channel)]
    condarc.write_text(yaml.safe_dump(config))
    return mutable_channel


@pytest.mark.parametrize(
    ("envs_config", "sees_new"),
    [
        pytest.param({"search_cache_seconds": 0}, True, id="no-cache"),
        pytest.param({"search_cache_seconds": 3600}, False, id="cached"),
    ],
)
async def test_search_cache_seconds(
    condarc_channel: Path, jp_fetch: Fetch, sees_new: bool
) -> None:
    _, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "newpkg"})
    assert hits == []
    new = [localchannel.Pkg("newpkg", "1.0")]
    await asyncio.to_thread(localchannel.add_packages, condarc_channel, new)
    _, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "newpkg"})
    assert bool(hits) is sees_new


async def test_stop_cancels_running_tasks(
    jp_serverapp: Any, jp_fetch: Fetch, envs_dir: Path
) -> None:
    app = envs_app(jp_serverapp)
    app.stop_timeout = 5
    gate = asyncio.Event()

    async def held(reporter: Any) -> object:
        await gate.wait()
        return None

    task = app.tasks.submit("create", envs_dir / "held", held)
    await asyncio.sleep(0)
    await app.stop_extension()
    assert task.state == "cancelled"


async def test_stop_timeout_bounds_the_wait(jp_serverapp: Any, envs_dir: Path) -> None:
    app = envs_app(jp_serverapp)
    app.stop_timeout = 0.2
    release = asyncio.Event()

    async def stubborn(reporter: Any) -> object:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()  # a clean-up that takes longer than stop_timeout
            raise
        return None

    task = app.tasks.submit("create", envs_dir / "stubborn", stubborn)
    await asyncio.sleep(0)
    start = asyncio.get_running_loop().time()
    await app.stop_extension()
    assert asyncio.get_running_loop().time() - start < 5
    assert task.state == "running"
    release.set()
    await task.wait()
    assert task.state == "cancelled"


async def test_every_route_needs_authentication(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str
) -> None:
    for method, path in ROUTES:
        body = "{}" if method == "POST" else None
        with pytest.raises(HTTPClientError) as info:
            await http_server_client.fetch(
                f"{jp_base_url}jupyter-envs/{path}", method=method, body=body
            )
        assert info.value.code == 403, (method, path)


class NoEnvsAuthorizer(Authorizer):  # type: ignore[misc]
    """Denies everything on jupyter_envs."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "jupyter_envs"


@pytest.mark.parametrize(
    "jp_server_config",
    [{"ServerApp": {"jpserver_extensions": {"jupyter_envs": True},
                    "authorizer_class": NoEnvsAuthorizer}}],
)
async def test_websocket_is_authorized(jp_ws_fetch: Any) -> None:
    with pytest.raises((HTTPClientError, WebSocketClosedError)) as info:
        await jp_ws_fetch("jupyter-envs", "tasks", "abcdef", "stream")
    assert getattr(info.value, "code", 403) == 403


async def test_websocket_unknown_task_is_404(jp_ws_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch("jupyter-envs", "tasks", "abcdef", "stream")
    assert info.value.code == 404


@pytest.mark.parametrize("envs_config", [{"task_log_lines": 1}])
async def test_stream_says_when_lines_were_dropped(jp_fetch: Fetch, jp_ws_fetch: Any) -> None:
    _, _, response = await call(
        jp_fetch, "POST", "environments", body={"name": "short", "specs": ["bar"]}
    )
    done = await follow(jp_fetch, response)
    ws = await jp_ws_fetch("jupyter-envs", "tasks", done["id"], "stream")
    first = json.loads(await asyncio.wait_for(ws.read_message(), 30))
    ws.close()
    assert first["type"] == "log"
    assert first["truncated"] is True
    assert first["offset"] == done["log_length"] - 1
