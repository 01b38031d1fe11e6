"""GPU visibility inside real kernels started by EnvProvisioner.

This machine has no GPU: every test here substitutes the GPU inventory through
``JUPYTER_ENVS_GPU_INVENTORY`` (tests/gpu_helpers.py), the one stand-in the project allows.
Kernels, environments and the assignment store are real.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from gpu_helpers import UUIDS, write_inventory, write_notebook
from jupyter_client import AsyncKernelManager
from test_kernels_provisioner import run_cell

from jupyter_envs import gpu
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.registry import EnvRegistry
from jupyter_envs.gpu.assign import AssignmentStore
from jupyter_envs.kernels import fallback
from jupyter_envs.kernels.discovery import EnvKernelSpecManager

pytestmark = pytest.mark.timeout(180)

SHOW = (
    "import os; print(repr(os.environ.get('CUDA_VISIBLE_DEVICES')), "
    "os.environ.get('CUDA_DEVICE_ORDER'))"
)


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_inventory(tmp_path / "gpus.json")
    monkeypatch.setenv("JUPYTER_ENVS_GPU_INVENTORY", str(path))
    return path


@pytest.fixture
async def kernel_for(
    make_env: Any, tmp_path: Path, inventory: Path
) -> AsyncIterator[Callable[..., Any]]:
    await make_env("gpu")
    ksm = EnvKernelSpecManager(registry=EnvRegistry(load_conda_config()))
    started: list[AsyncKernelManager] = []

    async def start(choice: Any, notebook: str = "nb.ipynb") -> AsyncKernelManager:
        path = write_notebook(tmp_path / "notebooks" / notebook, choice)
        km = AsyncKernelManager(kernel_name="conda-env-gpu-py", kernel_spec_manager=ksm)
        started.append(km)
        await km.start_kernel(env={**os.environ, "JPY_SESSION_NAME": str(path)})
        return km

    yield start
    for km in started:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)


def _visible(result: dict[str, Any]) -> tuple[str | None, str]:
    assert result["status"] == "ok", result
    shown, order = result["stdout"].strip().rsplit(" ", 1)
    return ast.literal_eval(shown), order  # repr of a str or None


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        pytest.param(None, ",".join(UUIDS), id="default-all"),
        pytest.param({"mode": "all"}, ",".join(UUIDS), id="all"),
        pytest.param({"mode": "none"}, "", id="none"),
        pytest.param(
            {"mode": "devices", "devices": ["2", UUIDS[0]]}, f"{UUIDS[2]},{UUIDS[0]}", id="devices"
        ),
        pytest.param({"mode": "auto", "count": 2}, f"{UUIDS[1]},{UUIDS[2]}", id="auto-2"),
    ],
)
async def test_cuda_visible_devices_per_mode(kernel_for, choice: Any, expected: str) -> None:
    km = await kernel_for(choice)
    visible, order = _visible(await run_cell(km, SHOW))
    assert visible == expected
    assert order == "PCI_BUS_ID"


async def test_auto_assignment_is_exclusive_and_released(kernel_for) -> None:
    first = await kernel_for({"mode": "auto", "count": 1}, "a.ipynb")
    result = await run_cell(first, SHOW)
    assert _visible(result)[0] == UUIDS[1]  # least loaded
    # The assignment notice is shown in the notebook, at the first execution.
    assert gpu.HOLDING.format(names="1 (Fake A100)") in result["stderr"]
    assert (await run_cell(first, "print('x')"))["stderr"] == ""  # only once

    second = await kernel_for({"mode": "auto", "count": 1}, "b.ipynb")
    assert _visible(await run_cell(second, SHOW))[0] == UUIDS[2]  # 1 is taken
    held = {a.kernel_id: a for a in AssignmentStore().assignments()}
    assert tuple(held[first.kernel_id].devices) == (UUIDS[1],)
    assert held[first.kernel_id].kernel_pid == first.provisioner.pid

    await first.restart_kernel()  # a restart keeps the kernel's GPU
    assert _visible(await run_cell(first, SHOW))[0] == UUIDS[1]

    await first.shutdown_kernel()
    assert first.kernel_id not in {a.kernel_id for a in AssignmentStore().assignments()}
    third = await kernel_for({"mode": "auto", "count": 1}, "c.ipynb")
    assert _visible(await run_cell(third, SHOW))[0] == UUIDS[1]  # released, handed out again


async def test_no_free_gpu_starts_fallback_with_message(kernel_for) -> None:
    km = await kernel_for({"mode": "auto", "count": 5})
    reason = km.provisioner.fallback_reason
    assert reason is not None
    assert reason.startswith(fallback.GPU_UNAVAILABLE.split("{")[0])
    result = await run_cell(km, "1")
    assert result["status"] == "error"
    assert result["error"]["evalue"] == reason


async def test_gpus_setting_off_leaves_environment_alone(kernel_for, make_env) -> None:
    ksm = EnvKernelSpecManager(
        registry=EnvRegistry(load_conda_config()), provisioner_config={"gpus": False}
    )
    km = AsyncKernelManager(kernel_name="conda-env-gpu-py", kernel_spec_manager=ksm)
    await km.start_kernel()
    try:
        assert _visible(await run_cell(km, SHOW)) == (None, "None")
    finally:
        await km.shutdown_kernel(now=True)


def test_notice_only_for_ipykernel() -> None:
    from jupyter_envs.kernels.provisioner import _notice_args

    assert _notice_args(["/e/bin/R", "--slave"], ("hi",)) == []
    (arg,) = _notice_args(["/e/bin/python", "-m", "ipykernel_launcher"], ("hi",))
    assert arg.startswith("--IPKernelApp.exec_lines=")
    json.dumps(arg)  # a plain string argument
