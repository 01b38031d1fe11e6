"""Environment kernels through a real Jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_kernels_provisioner import run_cell

from jupyter_envs.kernels import fallback
from jupyter_envs.kernels.provisioner import PROVISIONER_NAME

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # What `pip install` enables (jupyter-config/server-config/jupyter_envs.json) and nothing
    # else: the extension itself installs environment kernel discovery.
    return {"ServerApp": {"jpserver_extensions": {"jupyter_envs": True}}}


async def _kernelspecs(jp_fetch: Any) -> dict[str, Any]:
    response = await jp_fetch("api", "kernelspecs", method="GET")
    return json.loads(response.body)["kernelspecs"]  # type: ignore[no-any-return]


async def _start(jp_fetch: Any, name: str, path: str | None = None) -> str:
    if path is None:
        body = {"name": name}
        response = await jp_fetch("api", "kernels", method="POST", body=json.dumps(body))
        return json.loads(response.body)["id"]  # type: ignore[no-any-return]
    body = {"path": path, "type": "notebook", "name": Path(path).name, "kernel": {"name": name}}
    response = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    return json.loads(response.body)["kernel"]["id"]  # type: ignore[no-any-return]


async def test_kernelspecs_listed_and_kernel_runs_in_env(
    make_env, jp_fetch, jp_serverapp, jp_root_dir: Path
) -> None:
    prefix = await make_env("srv")
    specs = await _kernelspecs(jp_fetch)
    assert "python3" in specs  # the ordinary kernelspecs are still there
    spec = specs["conda-env-srv-py"]["spec"]
    assert spec["display_name"] == "Python [conda env:srv]"
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME

    kernel_id = await _start(jp_fetch, "conda-env-srv-py", path="analysis.ipynb")
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    code = (
        "import os, sys, json; print(json.dumps([sys.prefix, "
        "os.environ.get('JUPYTER_ENVS_TEST_ACTIVATED'), os.environ.get('JPY_SESSION_NAME')]))"
    )
    result = await run_cell(km, code)
    assert result["status"] == "ok", result
    sys_prefix, activated, session = json.loads(result["stdout"])
    assert sys_prefix == str(prefix)
    assert activated == "from-activate-d"
    assert session == str(jp_root_dir / "analysis.ipynb")
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")


async def test_new_environment_appears_without_restart(make_env, jp_fetch) -> None:
    before = await _kernelspecs(jp_fetch)
    assert "conda-env-fresh-py" not in before
    await make_env("fresh")
    after = await _kernelspecs(jp_fetch)
    assert "conda-env-fresh-py" in after


async def test_restart_after_env_deleted_shows_fallback(make_env, jp_fetch, jp_serverapp) -> None:
    prefix = await make_env("gone")
    kernel_id = await _start(jp_fetch, "conda-env-gone-py")
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    assert (await run_cell(km, "print('alive')"))["stdout"] == "alive\n"
    shutil.rmtree(prefix)
    await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="{}")
    result = await run_cell(km, "print('alive')")
    assert result["status"] == "error"
    assert result["error"]["evalue"] == fallback.ENV_MISSING.format(prefix=prefix)
    specs = await _kernelspecs(jp_fetch)
    assert "conda-env-gone-py" not in specs
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")


async def test_websocket_execute_over_ipc_kernel(make_env, jp_fetch, jp_ws_fetch) -> None:
    """The browser's path: a websocket to the server, the server to the kernel over IPC."""
    prefix = await make_env("wsenv")
    kernel_id = await _start(jp_fetch, "conda-env-wsenv-py")
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    session = uuid.uuid4().hex

    async def execute(code: str) -> tuple[str, str | None]:
        """(stdout, status) of one execution; status None if iopub did not finish it."""
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "session": session}
        header.update(username="test", version="5.3", date="")
        request = {"header": header, "parent_header": {}, "metadata": {}, "channel": "shell"}
        request["content"] = {"code": code, "silent": False}
        await ws.write_message(json.dumps(request))
        stdout, status = "", None
        try:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.read_message(), timeout=3))
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    stdout += msg["content"]["text"]
                elif msg["msg_type"] == "execute_reply":
                    status = msg["content"]["status"]
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return stdout, status  # iopub's idle comes after the cell's output
        except asyncio.TimeoutError:
            return stdout, None

    # The kernel may still be starting, and iopub subscribes late: retry until a whole
    # execution (reply and idle) comes back.
    for _ in range(30):
        stdout, status = await execute("import sys; print(sys.prefix)")
        if status is not None and stdout:
            break
    ws.close()
    assert status == "ok"
    assert stdout == f"{prefix}\n"
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
