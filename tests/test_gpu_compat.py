"""CUDA compatibility between an environment and the NVIDIA driver.

Stand-in: the driver's CUDA version comes from a substituted inventory
(JUPYTER_ENVS_GPU_INVENTORY); the environments are real installs from the local channel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpu_helpers import install_env, write_inventory

from jupyter_envs.gpu import cuda_compat, grant_gpus
from jupyter_envs.gpu.compat import CUDA_MINOR_NEWER, CUDA_TOO_NEW, _cuda_bound, cuda_needs
from jupyter_envs.gpu.inventory import INVENTORY_ENV
from jupyter_envs.gpu.prefs import GpuChoice, set_env_choice


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


@pytest.fixture
def cuda_env(channel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torchlet's CUDA build (needs __cuda >=12, cuda-version 12.4), solved for a 12.4 driver."""
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")
    prefix = install_env(channel, ["torchlet"], tmp_path / "cuda-env")
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA")
    return prefix


def _driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuda: str | None) -> None:
    path = write_inventory(tmp_path / f"inventory-{cuda}.json", cuda_version=cuda)
    monkeypatch.setenv(INVENTORY_ENV, str(path))


@pytest.mark.parametrize(
    ("depend", "bound"),
    [
        pytest.param("__cuda >=12", (12, 0), id="major"),
        pytest.param("__cuda >=11.2,<13", (11, 2), id="range"),
        pytest.param("__cuda >=12.6|>=13", (12, 6), id="or"),
        pytest.param("__cuda >=11.8|*", None, id="or-any"),
        pytest.param("__cuda", None, id="any"),
        pytest.param("cuda-version >=12", None, id="other-package"),
    ],
)
def test_cuda_bounds(depend: str, bound: tuple[int, int] | None) -> None:
    assert _cuda_bound(depend) == bound


def test_cuda_env_needs_are_read_from_conda_meta(cuda_env: Path) -> None:
    needs = {n.why: (n.version, n.exact) for n in cuda_needs(cuda_env)}
    assert needs == {
        "cuda-version 12.4": ((12, 4), False),
        "torchlet depends on __cuda >=12": ((12, 0), True),
    }


@pytest.mark.parametrize(
    ("driver_cuda", "expected"),
    [
        pytest.param(
            "11.8",
            CUDA_TOO_NEW.format(
                need="12.4", why="cuda-version 12.4", driver="550.54.15", have="11.8"
            ),
            id="older-major",
        ),
        pytest.param(
            "12.2",
            CUDA_MINOR_NEWER.format(
                need="12.4", why="cuda-version 12.4", driver="550.54.15", have="12.2"
            ),
            id="older-minor",
        ),
        pytest.param("12.4", None, id="same"),
        pytest.param("13.0", None, id="newer"),
        pytest.param(None, None, id="no-driver"),
    ],
)
def test_cuda_compat_against_the_driver(
    cuda_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    driver_cuda: str | None,
    expected: str | None,
) -> None:
    _driver(tmp_path, monkeypatch, driver_cuda)
    assert cuda_compat(cuda_env) == expected


def test_cpu_env_has_no_cuda_needs(
    channel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = install_env(channel, ["torchlet"], tmp_path / "cpu-env")  # no __cuda: CPU build
    assert (
        json.loads(next((prefix / "conda-meta").glob("torchlet-*.json")).read_text())["build"]
        == "cpu_0"
    )
    _driver(tmp_path, monkeypatch, "11.0")
    assert cuda_needs(prefix) == []
    assert cuda_compat(prefix) is None


def test_exact_cuda_bound_is_compared_with_its_minor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = tmp_path / "env" / "conda-meta"
    meta.mkdir(parents=True)
    record = {"name": "jaxlet", "version": "1", "build": "0", "depends": ["__cuda >=12.6|>=13"]}
    (meta / "jaxlet-1-0.json").write_text(json.dumps(record))
    _driver(tmp_path, monkeypatch, "12.4")
    message = cuda_compat(tmp_path / "env")
    assert message is not None
    assert message.startswith(
        "This environment needs CUDA 12.6 (jaxlet depends on __cuda >=12.6|>=13)"
    )


async def test_grant_carries_the_compat_message(
    cuda_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _driver(tmp_path, monkeypatch, "11.8")
    grant = await grant_gpus("k1", cuda_env, None)
    assert any(m.startswith("This environment needs CUDA 12.4") for m in grant.messages)
    set_env_choice(cuda_env, GpuChoice("none"))  # CPU only: CUDA does not matter
    assert (await grant_gpus("k1", cuda_env, None)).messages == ()
