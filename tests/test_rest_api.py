"""The REST API through a real server: routes match the OpenAPI spec, and each route works
on real environments made from the local channel."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from resthelp import Fetch, call, eid, follow
from tornado import web

import jupyter_envs

SPEC = Path(jupyter_envs.__file__).parent / "rest_api.yml"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}}


def _rules(router: Any) -> list[Any]:
    out = []
    for rule in getattr(router, "rules", []):
        if hasattr(rule.target, "rules"):
            out += _rules(rule.target)
        else:
            out.append(rule)
    return out


def served_routes(app: Any, base_url: str) -> set[tuple[str, str]]:
    """``(method, /path/{param})`` for every served jupyter-envs route."""
    routes = set()
    for rule in _rules(app.web_app.default_router):
        pattern = getattr(rule.matcher, "regex", None)
        if pattern is None or "jupyter-envs" not in pattern.pattern:
            continue
        path = pattern.pattern.rstrip("$")
        path = "/" + path[len(base_url) :] if path.startswith(base_url) else path
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)
        handler = rule.target
        for method in METHODS:
            if getattr(handler, method) is not getattr(web.RequestHandler, method):
                routes.add((method, path))
    return routes


def spec_routes() -> set[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text())
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_openapi_spec_matches_served_routes(jp_serverapp: Any, jp_base_url: str) -> None:
    served = served_routes(jp_serverapp, jp_base_url)
    assert ("get", "/jupyter-envs/environments") in served
    assert served == spec_routes()


async def test_config(jp_fetch: Fetch, envs_dir: Path, channel: Path) -> None:
    status, config, _ = await call(jp_fetch, "GET", "config")
    assert status == 200
    assert config["backend"] == "rattler"
    assert config["read_only"] is False
    assert str(envs_dir) in config["envs_dirs"]
    assert config["channels"] == [channel.resolve().as_uri()]


async def test_create_follow_location_details_and_list(
    jp_fetch: Fetch, jp_base_url: str, envs_dir: Path
) -> None:
    status, task, response = await call(
        jp_fetch, "POST", "environments", body={"name": "web", "specs": ["bar=1.0"]}
    )
    assert status == 202
    assert response.headers["Location"] == f"{jp_base_url}jupyter-envs/tasks/{task['id']}"
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    prefix = envs_dir / "web"
    assert done["result"]["prefix"] == str(prefix)
    assert (prefix / "conda-meta").is_dir()

    status, envs, _ = await call(jp_fetch, "GET", "environments", params={"refresh": "1"})
    assert status == 200
    assert [e["name"] for e in envs] == ["web"]
    status, details, _ = await call(jp_fetch, "GET", "environments", eid(prefix))
    assert status == 200
    versions = {p["name"]: p["version"] for p in details["packages"]}
    assert versions == {"bar": "1.0", "libfoo": "1.10"}
    assert "bar=1.0" in " ".join(details["requested_specs"])

    status, tasks, _ = await call(jp_fetch, "GET", "tasks")
    assert [t["id"] for t in tasks] == [task["id"]]


async def test_change_preview_export_revisions_rollback_delete(
    jp_fetch: Fetch, make_env: Any
) -> None:
    prefix = await make_env("work", ("libfoo=1.9",))
    ident = eid(prefix)

    status, plan, _ = await call(
        jp_fetch, "POST", "environments", ident, "preview",
        body={"action": "install", "specs": ["bar"]},
    )
    assert status == 200, plan
    assert [p["name"] for p in plan["install"]] == ["bar"]
    assert not (prefix / "share" / "bar").exists()  # a preview writes nothing

    _, _, response = await call(
        jp_fetch, "POST", "environments", ident, "packages",
        body={"action": "install", "specs": ["bar=2.0"]},
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    assert (prefix / "share" / "libfoo" / "VERSION").read_text() == "1.10\n"

    status, text, response = await call(
        jp_fetch, "GET", "environments", ident, "export", params={"format": "from-history"}
    )
    assert status == 200
    assert "bar=2.0" in text
    assert "attachment; filename=" in response.headers["Content-Disposition"]

    status, revisions, _ = await call(jp_fetch, "GET", "environments", ident, "revisions")
    assert status == 200
    assert len(revisions) >= 2
    first = revisions[0]["number"]
    _, _, response = await call(
        jp_fetch, "POST", "environments", ident, "revisions", str(first), "rollback"
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    assert (prefix / "share" / "libfoo" / "VERSION").read_text() == "1.9\n"
    assert not (prefix / "share" / "bar").exists()

    _, _, response = await call(jp_fetch, "DELETE", "environments", ident)
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    assert not prefix.exists()
    status, _, _ = await call(jp_fetch, "GET", "environments", ident)
    assert status == 404


async def test_create_preview_writes_nothing(jp_fetch: Fetch, envs_dir: Path) -> None:
    status, plan, _ = await call(
        jp_fetch, "POST", "environments", "preview", body={"name": "p", "specs": ["bar"]}
    )
    assert status == 200, plan
    assert sorted(p["name"] for p in plan["install"]) == ["bar", "libfoo"]
    assert list(envs_dir.iterdir()) == []


async def test_clone(jp_fetch: Fetch, make_env: Any, envs_dir: Path) -> None:
    source = await make_env("src", ("libfoo=1.9",))
    _, _, response = await call(
        jp_fetch, "POST", "environments", body={"name": "copy", "clone_from": eid(source)}
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
    assert (envs_dir / "copy" / "share" / "libfoo" / "VERSION").read_text() == "1.9\n"


async def test_failed_solve_is_a_failed_task(jp_fetch: Fetch, envs_dir: Path) -> None:
    _, _, response = await call(
        jp_fetch, "POST", "environments",
        body={"name": "clash", "specs": ["oldfoo-user", "bar=2.0"]},
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "failed"
    assert done["error_status"] == 422
    assert "libfoo" in done["error"]
    assert not (envs_dir / "clash").exists()


async def test_package_search(jp_fetch: Fetch) -> None:
    status, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "foo"})
    assert status == 200
    assert [h["name"] for h in hits] == ["libfoo", "oldfoo-user"]
    assert hits[0]["versions"] == ["1.10", "1.9"]
    status, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "foo", "limit": "1"})
    assert [h["name"] for h in hits] == ["libfoo"]
    status, hits, _ = await call(jp_fetch, "GET", "packages", params={"q": "nothing-like-it"})
    assert (status, hits) == (200, [])


@pytest.mark.parametrize(
    ("fmt", "expect", "media_type"),
    [
        pytest.param("yml", "dependencies:", "application/yaml", id="yml"),
        pytest.param("from-history", "dependencies:", "application/yaml", id="from-history"),
        pytest.param("lock", "libfoo", "application/yaml", id="lock"),
        pytest.param("explicit", "@EXPLICIT", "text/plain", id="explicit"),
    ],
)
async def test_export_formats(
    jp_fetch: Fetch, envs_dir: Path, fmt: str, expect: str, media_type: str
) -> None:
    _, _, response = await call(
        jp_fetch, "POST", "environments", body={"name": "exp", "specs": ["libfoo"]}
    )
    assert (await follow(jp_fetch, response))["state"] == "succeeded"
    status, text, response = await call(
        jp_fetch, "GET", "environments", eid(envs_dir / "exp"), "export", params={"format": fmt}
    )
    assert status == 200
    assert expect in text
    assert response.headers["Content-Type"].split(";")[0] == media_type
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "/" not in disposition
