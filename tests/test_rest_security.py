"""Security of the REST API through a real server: an Authorizer that denies writes, the
read-only setting, and a table of bad inputs each refused with a 4xx, a message, and no
change on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from resthelp import Fetch, call, eid, follow, snapshot

from jupyter_envs.envs.manager import READ_ONLY_MESSAGE

MAX_BODY = 200_000


class ReadOnlyAuthorizer(Authorizer):  # type: ignore[misc]
    """Allows ``read`` on jupyter_envs and denies ``write``; everything else allowed."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "jupyter_envs" or action == "read"


@pytest.fixture
def envs_config(envs_dir: Path) -> dict[str, Any]:
    return {"protected_prefixes": [str(envs_dir / "guarded")], "max_request_bytes": MAX_BODY}


@pytest.fixture
def jp_server_config(envs_config: dict[str, Any]) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}, "EnvsApp": envs_config}


@pytest.fixture
async def existing(make_env: Any, envs_dir: Path, conda_root: Path) -> dict[str, Path]:
    """A plain env, a configured-protected env, and a root (base) env."""
    plain = await make_env("exists", ("libfoo=1.9",))
    guarded = await make_env("guarded", ("libfoo",))
    root = await make_env("base", ("libfoo",), prefix=conda_root)
    return {"exists": plain, "guarded": guarded, "root": root}


def _state(tmp_path: Path, conda_root: Path) -> dict[str, tuple[int, int]]:
    home_conda = tmp_path / "home" / ".conda"
    home_conda.mkdir(parents=True, exist_ok=True)
    return snapshot(conda_root, home_conda)


@pytest.mark.parametrize(
    "jp_server_config",
    [{"ServerApp": {"jpserver_extensions": {"jupyter_envs": True},
                    "authorizer_class": ReadOnlyAuthorizer}}],
)
async def test_authorizer_grants_read_denies_write(
    jp_fetch: Fetch, existing: dict[str, Path], tmp_path: Path, conda_root: Path
) -> None:
    ident = eid(existing["exists"])
    before = _state(tmp_path, conda_root)
    for path in (("environments",), ("environments", ident), ("config",), ("tasks",)):
        status, _, _ = await call(jp_fetch, "GET", *path)
        assert status == 200, path
    status, text, _ = await call(jp_fetch, "GET", "environments", ident, "export")
    assert status == 200
    assert "libfoo" in text
    writes = [
        ("POST", ("environments",), {"name": "new", "specs": ["libfoo"]}),
        ("POST", ("environments", ident, "packages"), {"action": "install", "specs": ["bar"]}),
        ("DELETE", ("environments", ident), None),
        ("POST", ("environments", ident, "revisions", "1", "rollback"), None),
        ("DELETE", ("tasks", "abcdef"), None),
    ]
    for method, path, body in writes:
        status, reply, _ = await call(jp_fetch, method, *path, body=body)
        assert status == 403, (method, path, reply)
        assert "not authorized" in reply["message"]
    assert _state(tmp_path, conda_root) == before


@pytest.mark.parametrize("envs_config", [{"read_only": True}])
async def test_read_only_refuses_every_change(
    jp_fetch: Fetch, existing: dict[str, Path], tmp_path: Path, conda_root: Path
) -> None:
    ident = eid(existing["exists"])
    before = _state(tmp_path, conda_root)
    status, config, _ = await call(jp_fetch, "GET", "config")
    assert config["read_only"] is True
    status, envs, _ = await call(jp_fetch, "GET", "environments")
    assert status == 200
    assert len(envs) == 3
    changes = [
        ("POST", ("environments",), {"name": "new", "specs": ["libfoo"]}),
        ("POST", ("environments",), {"name": "copy", "clone_from": ident}),
        ("POST", ("environments", ident, "packages"), {"action": "install", "specs": ["bar"]}),
        ("POST", ("environments", ident, "packages"), {"action": "remove", "specs": ["libfoo"]}),
        ("DELETE", ("environments", ident), None),
        ("POST", ("environments", ident, "revisions", "1", "rollback"), None),
    ]
    for method, path, body in changes:
        status, reply, _ = await call(jp_fetch, method, *path, body=body)
        assert status == 403, (method, path, reply)
        assert reply["message"] == READ_ONLY_MESSAGE
    assert _state(tmp_path, conda_root) == before


OUTSIDE = "/tmp/jupyter-envs-outside-test"
YML_UNSAFE = "!!python/object/apply:os.system ['touch /tmp/jupyter-envs-pwned']\n"
BIG_YML = "dependencies:\n" + "".join(f"  - libfoo  # {'x' * 90}\n" for i in range(12_000))


def _p(status: int, method: str, path: tuple[str, ...], body: Any = None, *, params: Any = None,
       says: str = "", id: str) -> Any:
    return pytest.param(status, method, path, body, params or {}, says, id=id)


def _create(**body: Any) -> dict[str, Any]:
    return body


BAD_INPUTS = [
    # names
    _p(400, "POST", ("environments",), _create(name="", specs=["libfoo"]), id="name-empty"),
    _p(400, "POST", ("environments",), _create(name="a/b", specs=["libfoo"]), id="name-slash"),
    _p(400, "POST", ("environments",), _create(name="a b", specs=["libfoo"]), id="name-space"),
    _p(400, "POST", ("environments",), _create(name="-rf", specs=["libfoo"]), id="name-option"),
    _p(400, "POST", ("environments",), _create(name="base", specs=["libfoo"]), id="name-base"),
    _p(400, "POST", ("environments",), _create(name="..", specs=["libfoo"]), id="name-dotdot"),
    _p(400, "POST", ("environments",), _create(name=5, specs=["libfoo"]), says="string",
       id="name-not-string"),
    _p(400, "POST", ("environments",), _create(name="x" * 300, specs=["libfoo"]), id="name-long"),
    _p(400, "POST", ("environments",), _create(specs=["libfoo"]), id="no-name-no-prefix"),
    _p(409, "POST", ("environments",), _create(name="exists", specs=["libfoo"]), id="name-taken"),
    # specs
    _p(400, "POST", ("environments",), _create(name="n", specs=["--override-channels"]),
       says="option", id="spec-option"),
    _p(400, "POST", ("environments",), _create(name="n", specs=["libfoo; rm -rf /"]),
       id="spec-shell"),
    _p(400, "POST", ("environments",), _create(name="n", specs=["$(reboot)"]), id="spec-subst"),
    _p(400, "POST", ("environments",), _create(name="n", specs="libfoo"), says="list",
       id="specs-string"),
    _p(400, "POST", ("environments",), _create(name="n", specs=[1]), id="specs-int"),
    _p(400, "POST", ("environments",), _create(name="n", specs=[]), id="no-source"),
    _p(400, "POST", ("environments",), _create(name="n", specs=["libfoo =="]),
       id="spec-unparsable"),
    _p(400, "POST", ("environments",), _create(name="n", specs=[">=1.0"]), id="spec-no-name"),
    _p(400, "POST", ("environments",), _create(name="n", specs=["libfoo"] * 501),
       id="specs-too-many"),
    _p(400, "POST", ("environments",), _create(name="n", specs=["libfoo"], lockfile="x"),
       id="two-sources"),
    # environment.yml and lock files
    _p(400, "POST", ("environments",), _create(name="n", environment_yml="{{{{"),
       says="YAML", id="yml-garbage"),
    _p(400, "POST", ("environments",), _create(name="n", environment_yml=YML_UNSAFE),
       id="yml-python-tag"),
    _p(400, "POST", ("environments",), _create(name="n", environment_yml="- a\n- b\n"),
       id="yml-list"),
    _p(400, "POST", ("environments",),
       _create(name="n", environment_yml="dependencies:\n  - --force\n"), id="yml-option-spec"),
    _p(400, "POST", ("environments",),
       _create(name="n", environment_yml="dependencies:\n  - libfoo\n  - pip:\n    - x\n"),
       says="pip", id="yml-pip"),
    _p(400, "POST", ("environments",), _create(name="n", lockfile="not a lock file"),
       id="lock-garbage"),
    # paths
    _p(403, "POST", ("environments",), _create(prefix=OUTSIDE, specs=["libfoo"]),
       id="prefix-outside"),
    _p(400, "POST", ("environments",), _create(prefix="relative/env", specs=["libfoo"]),
       id="prefix-relative"),
    _p(400, "POST", ("environments",), _create(prefix="@envs/../../escape", specs=["libfoo"]),
       id="prefix-dotdot-escape"),
    _p(409, "POST", ("environments",), _create(prefix="@exists", specs=["libfoo"]),
       id="prefix-exists"),
    _p(400, "POST", ("environments",), _create(name="n", clone_from="!!!"), id="clone-bad-id"),
    _p(404, "POST", ("environments",), _create(name="n", clone_from="@id:@envs/nothing"),
       id="clone-missing"),
    # environment ids
    _p(400, "GET", ("environments", "abc"), id="id-not-a-prefix"),
    _p(404, "GET", ("environments", "@id:@envs/nothing"), id="id-unknown"),
    _p(404, "DELETE", ("environments", "@id:/etc"), id="id-system-dir"),
    _p(404, "GET", ("environments", "@id:/etc", "export"), id="export-system-dir"),
    # actions, formats, fields
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "destroy", "specs": ["libfoo"]}, says="action", id="action-unknown"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"), {"specs": ["libfoo"]},
       id="action-missing"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "install", "specs": ["-c"]}, id="install-option"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "install", "specs": ["bar"], "shell": "rm"}, says="Unknown field",
       id="unknown-field"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "install", "specs": ["bar"], "channels": "conda-forge"}, id="channels-string"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "install", "specs": ["bar"], "channels": ["--insecure"]}, id="channel-option"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "install", "specs": ["bar"], "channels": [f"c{i}" for i in range(40)]},
       says="channels", id="too-many-channels"),
    _p(400, "POST", ("environments", "@id:@exists", "packages"),
       {"action": "install", "specs": ["bar"], "channels": ["conda forge"]},
       id="channel-with-space"),
    _p(400, "POST", ("environments", "@id:@exists", "preview"),
       {"action": "install", "specs": [" "]}, id="preview-empty-spec"),
    _p(400, "GET", ("environments", "@id:@exists", "export"), params={"format": "pdf"},
       says="format", id="export-format"),
    # bodies
    _p(400, "POST", ("environments",), "{", says="JSON", id="body-not-json"),
    _p(400, "POST", ("environments",), "[]", says="object", id="body-array"),
    _p(400, "POST", ("environments",), _create(name="n", environment_yml=BIG_YML),
       says="larger", id="body-oversize"),
    _p(400, "POST", ("environments",), b"\xff\xfe", id="body-not-utf8"),
    # protected environments
    _p(403, "DELETE", ("environments", "@id:@guarded"), id="delete-configured-protected"),
    _p(403, "DELETE", ("environments", "@id:@root"), id="delete-root"),
    _p(403, "POST", ("environments", "@id:@root", "packages"),
       {"action": "install", "specs": ["bar"]}, id="install-into-root"),
    _p(403, "POST", ("environments", "@id:@guarded", "packages"),
       {"action": "remove", "specs": ["libfoo"]}, id="remove-from-protected"),
    _p(403, "POST", ("environments", "@id:@guarded", "revisions", "1", "rollback"),
       id="rollback-protected"),
    # revisions, tasks, search
    _p(404, "POST", ("environments", "@id:@exists", "revisions", "99", "rollback"),
       id="rollback-unknown-revision"),
    _p(404, "GET", ("tasks", "abcdef"), id="task-unknown"),
    _p(404, "DELETE", ("tasks", "abcdef"), id="cancel-unknown"),
    _p(404, "GET", ("tasks", "abcdef", "log"), params={"offset": "x"}, id="log-unknown-task"),
    _p(400, "GET", ("packages",), params={"q": ""}, id="search-empty"),
    _p(400, "GET", ("packages",), params={"q": "a b; ls"}, id="search-shell"),
    _p(400, "GET", ("packages",), params={"q": "foo", "limit": "-1"}, id="search-limit"),
]


def _resolve(value: Any, places: dict[str, Path]) -> Any:
    """Replace ``@exists``-style tokens and ``@id:<path>`` with real paths and ids."""
    if isinstance(value, dict):
        return {k: _resolve(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, places) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, places) for v in value)
    if isinstance(value, str) and "@" in value:
        as_id = value.startswith("@id:")
        text = value[4:] if as_id else value
        for token, path in places.items():
            text = text.replace(f"@{token}", str(path))
        return eid(Path(text)) if as_id else text
    return value


@pytest.mark.parametrize(("status", "method", "path", "body", "params", "says"), BAD_INPUTS)
async def test_bad_input_is_refused_and_disk_unchanged(
    jp_fetch: Fetch,
    existing: dict[str, Path],
    envs_dir: Path,
    tmp_path: Path,
    conda_root: Path,
    status: int,
    method: str,
    path: tuple[str, ...],
    body: Any,
    params: dict[str, str],
    says: str,
) -> None:
    places = {**existing, "envs": envs_dir}
    before = _state(tmp_path, conda_root)
    got, reply, _ = await call(
        jp_fetch, method, *_resolve(path, places), body=_resolve(body, places), params=params
    )
    assert got == status, reply
    assert isinstance(reply, dict), reply
    assert reply["message"], reply
    assert says in reply["message"]
    assert _state(tmp_path, conda_root) == before
    assert not Path(OUTSIDE).exists()
    assert not Path("/tmp/jupyter-envs-pwned").exists()


async def test_a_refused_delete_leaves_the_env_working(
    jp_fetch: Fetch, existing: dict[str, Path]
) -> None:
    status, _, _ = await call(jp_fetch, "DELETE", "environments", eid(existing["guarded"]))
    assert status == 403
    _, _, response = await call(
        jp_fetch, "POST", "environments", eid(existing["exists"]), "packages",
        body=json.dumps({"action": "install", "specs": ["bar=1.0"]}),
    )
    done = await follow(jp_fetch, response)
    assert done["state"] == "succeeded", done
