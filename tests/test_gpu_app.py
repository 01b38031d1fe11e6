"""The GPU routes as the installed extension serves them (EnvsApp's URL table and services).

Stand-in: the GPU inventory is substituted (JUPYTER_ENVS_GPU_INVENTORY); this machine has
no GPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gpu_helpers import UUIDS, write_inventory, write_notebook
from tornado.httpclient import HTTPClientError

from jupyter_envs.envs.model import env_id
from jupyter_envs.gpu.inventory import INVENTORY_ENV
from jupyter_envs.gpu.prefs import GpuChoice, get_env_choice


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}}


@pytest.fixture(autouse=True)
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in: the four fake GPUs of gpu_helpers.GPUS replace the NVML probe."""
    path = write_inventory(tmp_path / "inventory.json")
    monkeypatch.setenv(INVENTORY_ENV, str(path))
    return path


async def test_gpus_through_the_extension(jp_fetch: Any) -> None:
    response = await jp_fetch("jupyter-envs", "gpus")
    assert [g["uuid"] for g in json.loads(response.body)["gpus"]] == UUIDS


async def test_env_gpu_choice_through_the_extension(
    jp_fetch: Any, envs_dir: Path, tmp_path: Path
) -> None:
    inside = envs_dir / "train"
    (inside / "conda-meta").mkdir(parents=True)
    body = json.dumps({"mode": "auto", "count": 2})
    response = await jp_fetch(
        "jupyter-envs", "environments", env_id(inside), "gpu", method="PUT", body=body
    )
    assert json.loads(response.body)["choice"] == {"mode": "auto", "count": 2}
    assert get_env_choice(inside) == GpuChoice("auto", count=2)
    outside = tmp_path / "elsewhere"
    (outside / "conda-meta").mkdir(parents=True)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "jupyter-envs", "environments", env_id(outside), "gpu", method="PUT", body=body
        )
    assert info.value.code == 404  # not an environment the registry lists
    assert get_env_choice(outside) is None


async def test_notebook_gpu_choice_through_the_extension(jp_fetch: Any, jp_root_dir: Path) -> None:
    notebook = write_notebook(jp_root_dir / "n.ipynb")
    body = json.dumps({"mode": "devices", "devices": [UUIDS[2]]})
    await jp_fetch(
        "jupyter-envs", "notebooks", "gpu", method="PUT", body=body, params={"path": "n.ipynb"}
    )
    metadata = json.loads(notebook.read_text())["metadata"]
    assert metadata["jupyter_envs"]["gpu"] == {"mode": "devices", "devices": [UUIDS[2]]}
