"""The GPU REST routes on a real Jupyter server, with real kernels.

Stand-in: the GPU inventory is substituted (JUPYTER_ENVS_GPU_INVENTORY); this machine has
no GPU. Kernels, notebooks, the contents manager and the server are real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from gpu_helpers import GPUS, UUIDS, install_env, write_inventory, write_notebook
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError, HTTPResponse

from jupyter_envs.envs.model import env_id
from jupyter_envs.gpu import grant_gpus, note_kernel_pid
from jupyter_envs.gpu.handlers import default_handlers
from jupyter_envs.gpu.inventory import INVENTORY_ENV
from jupyter_envs.gpu.overview import owner_kernel
from jupyter_envs.gpu.prefs import GpuChoice, env_prefs_path, get_env_choice, set_env_choice

Fetch = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in: the four fake GPUs of gpu_helpers.GPUS replace the NVML probe."""
    path = write_inventory(tmp_path / "inventory.json")
    monkeypatch.setenv(INVENTORY_ENV, str(path))
    return path


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """The server as installing the package configures it: the extension serves the routes."""
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}}


@pytest.fixture
def fetch(jp_fetch: Fetch, inventory: Path) -> Fetch:
    return jp_fetch


@pytest.fixture
def prefix(envs_dir: Path) -> Path:
    """An environment the registry lists (a conda-meta folder in the envs dir)."""
    env = envs_dir / "env"
    (env / "conda-meta").mkdir(parents=True)
    return env


async def _json(fetch: Fetch, *parts: str, **kwargs: Any) -> Any:
    response = await fetch("jupyter-envs", *parts, **kwargs)
    return json.loads(response.body) if response.body else None


async def _status(fetch: Fetch, *parts: str, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await fetch("jupyter-envs", *parts, **kwargs)
    assert info.value.response is not None
    return info.value.code, json.loads(info.value.response.body)["message"]


# -- GET gpus -------------------------------------------------------------------------------


async def test_gpus_lists_the_inventory(fetch: Fetch) -> None:
    body = await _json(fetch, "gpus")
    assert body["cuda_version"] == "12.4"
    assert [g["uuid"] for g in body["gpus"]] == UUIDS
    assert all(g["kernels"] == [] for g in body["gpus"])


@pytest.fixture
async def kernel_id(fetch: Fetch) -> AsyncIterator[str]:
    """A real python3 kernel started through the server's REST API."""
    body = json.dumps({"name": "python3"})
    response = await fetch("api", "kernels", method="POST", body=body)
    ident = json.loads(response.body)["id"]
    yield ident
    await fetch("api", "kernels", ident, method="DELETE")


async def test_gpus_maps_holders_and_process_memory_to_kernels(
    fetch: Fetch, jp_serverapp: Any, inventory: Path, prefix: Path, kernel_id: str
) -> None:
    pid = jp_serverapp.kernel_manager.get_kernel(kernel_id).provisioner.pid
    assert isinstance(pid, int)
    gpus = [dict(g) for g in GPUS]
    gpus[2]["processes"] = {str(pid): 1 << 30, "999999999": 5}
    write_inventory(inventory, gpus)
    # A kernel of another server holds GPU 1 (auto), its process alive: this test's own pid.
    set_env_choice(prefix, GpuChoice("auto", count=1))
    assert (await grant_gpus("elsewhere", prefix, None)).devices == (UUIDS[1],)
    note_kernel_pid("elsewhere", os.getpid())
    gpus[1]["processes"] = {str(os.getpid()): 7}
    write_inventory(inventory, gpus)

    body = await _json(fetch, "gpus")
    by_index = {g["index"]: g for g in body["gpus"]}
    assert by_index[1]["kernels"] == [
        {"kernel_id": "elsewhere", "exclusive": True, "memory": 7, "this_server": False}
    ]
    assert by_index[2]["kernels"] == [
        {"kernel_id": kernel_id, "exclusive": False, "memory": 1 << 30, "this_server": True}
    ]
    assert by_index[2]["processes"] == [
        {"pid": pid, "memory": 1 << 30, "kernel_id": kernel_id},
        {"pid": 999999999, "memory": 5, "kernel_id": None},
    ]
    assert by_index[0]["kernels"] == by_index[3]["kernels"] == []


def test_owner_kernel_follows_the_parent_chain() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert owner_kernel(child.pid, {os.getpid(): "k"}) == "k"
        assert owner_kernel(child.pid, {}) is None
    finally:
        child.kill()
        child.wait()


# -- environments/{id}/gpu -------------------------------------------------------------------


async def test_env_choice_round_trip(fetch: Fetch, prefix: Path) -> None:
    ident = env_id(prefix)
    body = await _json(fetch, "environments", ident, "gpu")
    assert body == {
        "id": ident,
        "prefix": str(prefix),
        "choice": None,
        "effective": {"mode": "all"},
        "cuda_compat": None,
    }
    choice = {"mode": "auto", "count": 2}
    body = await _json(fetch, "environments", ident, "gpu", method="PUT", body=json.dumps(choice))
    assert body["choice"] == body["effective"] == choice
    assert get_env_choice(prefix) == GpuChoice("auto", count=2)
    assert json.loads(env_prefs_path().read_text())[str(prefix)] == choice
    devices = {"mode": "devices", "devices": [UUIDS[3], 0]}
    body = await _json(fetch, "environments", ident, "gpu", method="PUT", body=json.dumps(devices))
    assert body["choice"] == {"mode": "devices", "devices": [UUIDS[3], "0"]}
    response = await fetch("jupyter-envs", "environments", ident, "gpu", method="DELETE")
    assert response.code == 204
    assert get_env_choice(prefix) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"mode": "most"}, "GPU mode must be one of", id="bad-mode"),
        pytest.param({"mode": "auto", "count": 0}, "'count' must be", id="count-0"),
        pytest.param({"mode": "auto", "count": 5}, "this machine has 4", id="count-too-big"),
        pytest.param({"mode": "devices", "devices": ["7"]}, "no GPU '7'", id="unknown-index"),
        pytest.param({"mode": "devices", "devices": ["GPU-ffff0000"]}, "no GPU", id="unknown-uuid"),
        pytest.param({"mode": "devices", "devices": []}, "non-empty", id="no-devices"),
        pytest.param(["all"], "JSON object", id="not-an-object"),
        pytest.param("{", "not valid JSON", id="not-json"),
    ],
)
async def test_env_choice_invalid_is_400(
    fetch: Fetch, prefix: Path, body: Any, message: str
) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    code, text = await _status(fetch, "environments", env_id(prefix), "gpu", method="PUT", body=raw)
    assert code == 400
    assert message in text
    assert get_env_choice(prefix) is None


@pytest.mark.parametrize(
    ("ident", "status"),
    [
        pytest.param(env_id("/nowhere/env"), 404, id="no-such-env"),
        pytest.param("bm90LWFic29sdXRl", 400, id="not-absolute"),
    ],
)
async def test_env_choice_bad_env_id(fetch: Fetch, ident: str, status: int) -> None:
    """The same answers as every other environments/{id} route."""
    code, _ = await _status(fetch, "environments", ident, "gpu")
    assert code == status
    code, _ = await _status(fetch, "environments", ident)
    assert code == status


async def test_env_details_say_when_cuda_is_too_new(
    fetch: Fetch,
    channel: Path,
    envs_dir: Path,
    inventory: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")
    cuda_env = install_env(channel, ["torchlet"], envs_dir / "cuda-env")
    write_inventory(inventory, cuda_version="11.8")
    body = await _json(fetch, "environments", env_id(cuda_env), "gpu")
    assert body["cuda_compat"].startswith("This environment needs CUDA 12.4 (cuda-version 12.4)")


# -- notebooks/gpu ---------------------------------------------------------------------------


async def test_notebook_choice_round_trip(fetch: Fetch, jp_root_dir: Path, prefix: Path) -> None:
    notebook = write_notebook(jp_root_dir / "work" / "a.ipynb")
    query = {"params": {"path": "work/a.ipynb"}}
    assert await _json(fetch, "notebooks", "gpu", **query) == {
        "path": "work/a.ipynb",
        "choice": None,
    }
    body = await _json(
        fetch, "notebooks", "gpu", method="PUT", body=json.dumps({"mode": "none"}), **query
    )
    assert body["choice"] == {"mode": "none"}
    saved = json.loads(notebook.read_text())
    assert saved["metadata"]["jupyter_envs"] == {"gpu": {"mode": "none"}}
    assert saved["metadata"]["kernelspec"]["name"] == "python3"  # the rest is kept
    # The provisioner finds it through JPY_SESSION_NAME, and it wins over the env default.
    set_env_choice(prefix, GpuChoice("auto", count=1))
    grant = await grant_gpus("k1", prefix, "work/a.ipynb", root_dir=jp_root_dir)
    assert (grant.source, grant.env["CUDA_VISIBLE_DEVICES"]) == ("notebook", "")
    response = await fetch("jupyter-envs", "notebooks", "gpu", method="DELETE", **query)
    assert response.code == 204
    assert "jupyter_envs" not in json.loads(notebook.read_text())["metadata"]
    assert (await _json(fetch, "notebooks", "gpu", **query))["choice"] is None


async def test_notebook_errors(fetch: Fetch, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "bad.ipynb", {"mode": "auto", "count": "many"})
    body = await _json(fetch, "notebooks", "gpu", params={"path": "bad.ipynb"})
    assert body["choice"] is None
    assert "'count' must be" in body["problem"]
    code, _ = await _status(fetch, "notebooks", "gpu", params={"path": "missing.ipynb"})
    assert code == 404
    code, _ = await _status(fetch, "notebooks", "gpu", params={"path": "notes.txt"})
    assert code == 400
    code, text = await _status(
        fetch,
        "notebooks",
        "gpu",
        method="PUT",
        body=json.dumps({"mode": "devices", "devices": [9]}),
        params={"path": "bad.ipynb"},
    )
    assert (code, text) == (400, "no GPU '9' on this machine (GPUs: 0, 1, 2, 3)")


async def test_routes_need_authentication(
    fetch: Fetch, http_server_client: Any, jp_base_url: str
) -> None:
    for path, _ in default_handlers:
        url = url_path_join(jp_base_url, "jupyter-envs", re.sub(r"\(\?P<\w+>[^)]*\)", "x", path))
        response = await http_server_client.fetch(url, raise_error=False)
        assert response.code == 403, url


async def test_env_routes_follow_the_registry(
    fetch: Fetch, prefix: Path, tmp_path: Path
) -> None:
    """Environments the registry lists are reachable, including one that conda knows from
    environments.txt outside the envs dirs; unlisted folders are not."""
    from jupyter_envs.envs.registry import environments_txt

    outside = tmp_path / "project" / "env"
    (outside / "conda-meta").mkdir(parents=True)
    stray = tmp_path / "stray" / "env"
    (stray / "conda-meta").mkdir(parents=True)
    environments_txt().parent.mkdir(parents=True, exist_ok=True)
    environments_txt().write_text(f"{outside}\n")
    for listed in (prefix, outside):
        response = await fetch("jupyter-envs", "environments", env_id(listed), "gpu")
        assert json.loads(response.body)["prefix"] == str(listed)
    code, _ = await _status(fetch, "environments", env_id(stray), "gpu")
    assert code == 404
