"""EnvProvisioner: real kernels started in local-channel environments via jupyter_client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import localchannel
import pytest
from jupyter_client import AsyncKernelManager

from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.registry import EnvRegistry
from jupyter_envs.kernels import fallback
from jupyter_envs.kernels.activation import ActivationCache
from jupyter_envs.kernels.discovery import EnvKernelSpecManager
from jupyter_envs.kernels.provisioner import EnvProvisioner

pytestmark = pytest.mark.timeout(120)

PROBE = (
    "import os, sys, json; print(json.dumps({'prefix': sys.prefix, "
    "'activated': os.environ.get('JUPYTER_ENVS_TEST_ACTIVATED'), "
    "'conda_prefix': os.environ.get('CONDA_PREFIX'), "
    "'default_env': os.environ.get('CONDA_DEFAULT_ENV'), "
    "'prompt': os.environ.get('CONDA_PROMPT_MODIFIER'), "
    "'shlvl': os.environ.get('CONDA_SHLVL'), "
    "'path0': os.environ['PATH'].split(os.pathsep)[0], "
    "'pid': os.getpid()}))"
)


async def run_cell(km: AsyncKernelManager, code: str, timeout: float = 30) -> dict[str, Any]:
    """Execute ``code``; returns {"status", "stdout", "stderr", "error"} from real messages."""
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        out: dict[str, Any] = {"stdout": "", "stderr": "", "error": None}

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = content

        reply = await kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        out["status"] = reply["content"]["status"]
        return out
    finally:
        kc.stop_channels()


@pytest.fixture
async def start_kernel() -> AsyncIterator[Callable[..., Any]]:
    managers: list[AsyncKernelManager] = []

    async def start(name: str, **config: Any) -> AsyncKernelManager:
        ksm = EnvKernelSpecManager(registry=EnvRegistry(load_conda_config()))
        km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm, **config)
        managers.append(km)
        await km.start_kernel()
        return km

    yield start
    for km in managers:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)


async def test_kernel_runs_activated_in_env(make_env, start_kernel) -> None:
    prefix = await make_env("work")
    km = await start_kernel("conda-env-work-py")
    assert isinstance(km.provisioner, EnvProvisioner)
    result = await run_cell(km, PROBE)
    assert result["status"] == "ok", result
    seen = json.loads(result["stdout"])
    assert seen["prefix"] == str(prefix)
    assert seen["activated"] == localchannel.ACTIVATE_VALUE
    assert seen["conda_prefix"] == str(prefix)
    assert seen["default_env"] == "work"
    assert seen["prompt"] == "(work) "
    assert seen["shlvl"] == "1"
    assert seen["path0"] == str(prefix / "bin")
    # No wrapper process: the kernel is the process the provisioner started.
    assert seen["pid"] == km.provisioner.pid


async def test_ipc_transport_by_default(make_env, start_kernel) -> None:
    await make_env("ipc")
    km = await start_kernel("conda-env-ipc-py")
    info = json.loads(Path(km.connection_file).read_text())
    assert info["transport"] == "ipc"
    assert (await run_cell(km, "print(6 * 7)"))["stdout"] == "42\n"
    sockets = [Path(f"{info['ip']}-{info[port]}") for port in ("shell_port", "iopub_port")]
    assert all(stat.S_ISSOCK(s.stat().st_mode) for s in sockets)
    assert len(os.fsencode(sockets[0])) < 108  # fits a Unix socket address
    await km.shutdown_kernel()
    assert not any(s.exists() for s in sockets)


async def test_tcp_transport_setting(make_env, start_kernel) -> None:
    await make_env("tcp")
    from traitlets.config import Config

    config = Config()
    config.EnvProvisioner.transport = "tcp"
    km = await start_kernel("conda-env-tcp-py", config=config)
    info = json.loads(Path(km.connection_file).read_text())
    assert info["transport"] == "tcp"
    assert (await run_cell(km, "print('tcp ok')"))["stdout"] == "tcp ok\n"


async def test_interrupt_reaches_kernel(make_env, start_kernel) -> None:
    await make_env("intr")
    km = await start_kernel("conda-env-intr-py")
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("import time; time.sleep(60)")
        await asyncio.sleep(1.0)  # let the cell start sleeping
        await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=20)
        while reply["parent_header"].get("msg_id") != msg_id:  # skip kernel_info replies
            reply = await kc.get_shell_msg(timeout=20)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
    finally:
        kc.stop_channels()


async def test_restart_runs_pre_launch_again(make_env, start_kernel) -> None:
    prefix = await make_env("again")
    km = await start_kernel("conda-env-again-py")
    first = json.loads((await run_cell(km, PROBE))["stdout"])
    await km.restart_kernel()
    second = json.loads((await run_cell(km, PROBE))["stdout"])
    assert second["pid"] != first["pid"]
    assert second["prefix"] == str(prefix)
    assert second["activated"] == localchannel.ACTIVATE_VALUE
    path = (await run_cell(km, "import os; print(os.environ['PATH'])"))["stdout"].strip()
    assert path.split(os.pathsep).count(str(prefix / "bin")) == 1


async def test_deleted_env_starts_fallback_kernel(make_env, start_kernel) -> None:
    prefix = await make_env("doomed")
    ksm = EnvKernelSpecManager(registry=EnvRegistry(load_conda_config()))
    spec = ksm.get_kernel_spec("conda-env-doomed-py")  # the notebook's kernel, chosen earlier
    shutil.rmtree(prefix)
    km = AsyncKernelManager(kernel_name="conda-env-doomed-py", kernel_spec_manager=ksm)
    km._kernel_spec = spec  # the spec the session was opened with, before the env vanished
    try:
        await km.start_kernel()
        assert km.provisioner.fallback_reason == fallback.ENV_MISSING.format(prefix=prefix)
        result = await run_cell(km, "print('hello')")
        assert result["status"] == "error"
        assert result["error"]["ename"] == fallback.ERROR_NAME
        assert result["error"]["evalue"] == fallback.ENV_MISSING.format(prefix=prefix)
        assert "hello" not in result["stdout"]
    finally:
        await km.shutdown_kernel(now=True)


async def test_missing_python_starts_fallback_kernel(make_env, start_kernel) -> None:
    prefix = await make_env("nopy")
    ksm = EnvKernelSpecManager(registry=EnvRegistry(load_conda_config()))
    spec = ksm.get_kernel_spec("conda-env-nopy-py")
    (prefix / "bin" / "python").unlink()
    km = AsyncKernelManager(kernel_name="conda-env-nopy-py", kernel_spec_manager=ksm)
    km._kernel_spec = spec
    try:
        await km.start_kernel()
        expected = fallback.NO_EXECUTABLE.format(executable=prefix / "bin/python", prefix=prefix)
        result = await run_cell(km, "1")
        assert result["error"]["evalue"] == expected
    finally:
        await km.shutdown_kernel(now=True)


async def test_failing_activate_script_starts_fallback(make_env, start_kernel) -> None:
    prefix = await make_env("badact")
    script = prefix / "etc" / "conda" / "activate.d" / "zz-broken.sh"
    script.write_text("echo activation exploded >&2\nexit 3\n")
    km = await start_kernel("conda-env-badact-py")
    reason = km.provisioner.fallback_reason
    assert reason is not None
    assert reason.startswith(fallback.ACTIVATION_FAILED.split("{")[0].rstrip())
    assert "activation exploded" in reason
    result = await run_cell(km, "1")
    assert result["error"]["evalue"] == reason


async def test_activation_cached_until_env_changes(make_env, channel: Path) -> None:
    prefix = await make_env("cached", ("python", "ipykernel"))
    cache = ActivationCache.instance()
    cache.invalidate()
    first = await cache.get(prefix, env_name="cached")
    assert "JUPYTER_ENVS_TEST_ACTIVATED" not in first.set
    assert await cache.get(prefix, env_name="cached") is first
    await make_env("cached", ("python", "ipykernel", "envvars"))  # installs into the same prefix
    second = await cache.get(prefix, env_name="cached")
    assert second is not first
    assert second.set["JUPYTER_ENVS_TEST_ACTIVATED"] == localchannel.ACTIVATE_VALUE


async def test_state_env_vars_are_exported(make_env) -> None:
    prefix = await make_env("state")
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"MY_STATE": "on"}}))
    activation = await ActivationCache.instance().get(prefix, env_name="state")
    assert activation.set["MY_STATE"] == "on"


async def test_activation_timeout(make_env) -> None:
    from jupyter_envs.errors import BackendError

    prefix = await make_env("slow")
    (prefix / "etc/conda/activate.d/slow.sh").write_text("sleep 30\n")
    cache = ActivationCache(timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(BackendError, match=r"took longer than 0\.5 s"):
        await cache.get(prefix, env_name="slow")
    assert time.perf_counter() - started < 10  # the script's `sleep` was killed too


async def test_missing_relative_program_starts_fallback(make_env, start_kernel) -> None:
    prefix = await make_env("norel")
    odd = prefix / "share" / "jupyter" / "kernels" / "odd"
    odd.mkdir()
    argv = ["no-such-kernel-program", "-f", "{connection_file}"]
    (odd / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Odd"}))
    km = await start_kernel("conda-env-norel-odd")
    expected = fallback.NO_EXECUTABLE.format(executable="no-such-kernel-program", prefix=prefix)
    assert km.provisioner.fallback_reason == expected
    assert (await run_cell(km, "1"))["error"]["evalue"] == expected


async def test_unexpected_error_still_reaches_notebook(
    make_env, start_kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_env("oops")

    async def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ActivationCache, "get", broken)
    km = await start_kernel("conda-env-oops-py")
    reason = km.provisioner.fallback_reason
    assert reason == f"{fallback.UNKNOWN} (RuntimeError: disk on fire)"
    assert (await run_cell(km, "1"))["error"]["evalue"] == reason


async def test_activation_replaces_the_servers_own_conda_env(make_env, tmp_path: Path) -> None:
    """A server running inside another activated conda env: its bin leaves PATH."""
    prefix = await make_env("inner")
    server_env = await make_env("outer", ("python",))
    base = dict(os.environ)
    base.update(CONDA_PREFIX=str(server_env), CONDA_SHLVL="1", CONDA_DEFAULT_ENV="outer")
    base["PATH"] = os.pathsep.join([str(server_env / "bin"), base["PATH"]])
    activation = await ActivationCache().get(prefix, env_name="inner", base_env=base)
    env = activation.apply(base)
    entries = env["PATH"].split(os.pathsep)
    assert entries[0] == str(prefix / "bin")
    assert str(server_env / "bin") not in entries
    assert env["CONDA_PREFIX"] == str(prefix)
    assert env["CONDA_DEFAULT_ENV"] == "inner"
    assert activation.apply(env) == env  # applying twice (a restart) changes nothing


async def test_activation_timeout_setting_reaches_shared_cache(make_env, start_kernel) -> None:
    from traitlets.config import Config

    prefix = await make_env("cfg")
    (prefix / "etc/conda/activate.d/slow.sh").write_text("sleep 30\n")
    ActivationCache.clear_instance()
    config = Config()
    config.ActivationCache.timeout = 0.5
    try:
        km = await start_kernel("conda-env-cfg-py", config=config)
        assert "took longer than 0.5 s" in (km.provisioner.fallback_reason or "")
    finally:
        ActivationCache.clear_instance()
