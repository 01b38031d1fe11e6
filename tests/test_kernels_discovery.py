"""EnvKernelSpecManager over real environments made from the local channel."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import NoSuchKernel
from traitlets import TraitError

from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.registry import EnvRegistry
from jupyter_envs.kernels.discovery import EnvKernelSpecManager
from jupyter_envs.kernels.provisioner import PROVISIONER_NAME


def _ksm(**kwargs: object) -> EnvKernelSpecManager:
    return EnvKernelSpecManager(registry=EnvRegistry(load_conda_config()), **kwargs)


async def test_env_kernel_is_listed_with_nb_conda_kernels_name(make_env, envs_dir: Path) -> None:
    prefix = await make_env("data")
    ksm = _ksm()
    specs = ksm.find_kernel_specs()
    assert "conda-env-data-py" in specs
    assert specs["conda-env-data-py"] == str(prefix / "share/jupyter/kernels/python3")
    spec = ksm.get_kernel_spec("conda-env-data-py")
    assert spec.display_name == "Python [conda env:data]"
    assert spec.language == "python"
    # The env's own interpreter, spelled out: jupyter_client rewrites a bare "python".
    assert spec.argv[0] == str(prefix / "bin" / "python")
    assert spec.argv[1:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    provisioner = spec.metadata["kernel_provisioner"]
    assert provisioner["provisioner_name"] == PROVISIONER_NAME
    assert provisioner["config"] == {"prefix": str(prefix), "env_name": "data"}
    assert spec.metadata["conda_env_name"] == "data"
    assert spec.metadata["conda_env_path"] == str(prefix)


async def test_normal_kernelspecs_still_listed(make_env) -> None:
    await make_env("data")
    ksm = _ksm()
    specs = ksm.find_kernel_specs()
    assert "python3" in specs  # the server's own ipykernel
    assert "python3" in await ksm.get_all_specs()
    only = _ksm(conda_only=True)
    assert set(only.find_kernel_specs()) == {"conda-env-data-py"}
    assert set(await only.get_all_specs()) == {"conda-env-data-py"}
    with pytest.raises(NoSuchKernel):
        only.get_kernel_spec("python3")


async def test_symlinked_conda_root_keeps_nb_conda_kernels_names(
    make_env, tmp_path: Path, conda_root: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """A root reached through a symlink (/opt/conda, macOS /var) names kernels as conda does."""
    link = tmp_path / "conda-link"
    link.symlink_to(conda_root)
    monkeypatch.setenv("CONDA_ROOT", str(link))
    await make_env("root-kernel", prefix=conda_root)  # a base environment with a kernel
    await make_env("myenv")
    names = set(_ksm().find_kernel_specs())
    assert {"conda-root-py", "conda-env-myenv-py"} <= names


async def test_environment_without_kernel_is_not_listed(make_env) -> None:
    await make_env("nokernel", ("libfoo",))
    await make_env("pyonly", ("python",))
    names = set(_ksm(conda_only=True).find_kernel_specs())
    assert names == set()


async def test_ipykernel_without_kernelspec_gets_a_python_kernel(make_env) -> None:
    prefix = await make_env("bare")
    shutil.rmtree(prefix / "share" / "jupyter" / "kernels")
    spec = _ksm().get_kernel_spec("conda-env-bare-py")
    assert spec.argv[0] == str(prefix / "bin" / "python")
    assert spec.display_name == "Python [conda env:bare]"


async def test_other_kernels_in_env_are_listed(make_env) -> None:
    prefix = await make_env("multi")
    ir = prefix / "share" / "jupyter" / "kernels" / "ir"
    ir.mkdir()
    (prefix / "bin" / "R").write_text("#!/bin/sh\n")
    (prefix / "bin" / "R").chmod(0o755)
    (ir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
                "display_name": "R",
                "language": "R",
            }
        )
    )
    (prefix / "share" / "jupyter" / "kernels" / "broken").mkdir()
    (prefix / "share" / "jupyter" / "kernels" / "broken" / "kernel.json").write_text("{nope")
    ksm = _ksm(conda_only=True)
    assert set(ksm.find_kernel_specs()) == {"conda-env-multi-py", "conda-env-multi-r"}
    spec = ksm.get_kernel_spec("conda-env-multi-r")
    assert spec.display_name == "R [conda env:multi]"
    assert spec.argv[0] == str(prefix / "bin" / "R")
    assert spec.metadata["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME


async def test_root_environment_is_conda_root_py(make_env, conda_root: Path) -> None:
    await make_env("base", prefix=conda_root)
    ksm = _ksm(conda_only=True)
    spec = ksm.get_kernel_spec("conda-root-py")
    assert spec.display_name == "Python [conda env:root]"
    assert spec.metadata["kernel_provisioner"]["config"]["env_name"] == "base"


async def test_env_outside_default_envs_dir_gets_parent_name(make_env, tmp_path: Path) -> None:
    other = tmp_path / "project" / "envs"
    other.mkdir(parents=True)
    prefix = await make_env("x", prefix=other / "dev")
    (tmp_path / "home" / ".conda").mkdir(parents=True, exist_ok=True)
    (tmp_path / "home" / ".conda" / "environments.txt").write_text(f"{prefix}\n")
    spec = _ksm(conda_only=True).get_kernel_spec("conda-env-project-dev-py")
    assert spec.display_name == "Python [conda env:project-dev]"


async def test_name_format_and_env_filter(make_env) -> None:
    await make_env("keep")
    await make_env("skipme")
    ksm = _ksm(conda_only=True, name_format="{display_name} @ {environment}", env_filter="skip")
    assert set(ksm.find_kernel_specs()) == {"conda-env-keep-py"}
    assert ksm.get_kernel_spec("conda-env-keep-py").display_name == "Python 3 (ipykernel) @ keep"
    with pytest.raises(TraitError):
        _ksm(env_filter="(unclosed")


async def test_new_and_deleted_env_seen_without_restart(make_env, envs_dir: Path) -> None:
    ksm = _ksm(conda_only=True)
    assert ksm.find_kernel_specs() == {}
    prefix = await make_env("late")
    started = time.perf_counter()
    assert "conda-env-late-py" in ksm.find_kernel_specs()
    assert time.perf_counter() - started < 1.0
    shutil.rmtree(prefix)
    assert ksm.find_kernel_specs() == {}
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("conda-env-late-py")


async def test_warm_discovery_reuses_specs(make_env) -> None:
    await make_env("warm")
    ksm = _ksm(conda_only=True)
    first = ksm.env_kernel_specs()
    assert ksm.env_kernel_specs() is first  # nothing changed: the same objects
    await make_env("warm2")
    assert set(ksm.env_kernel_specs()) == {"conda-env-warm-py", "conda-env-warm2-py"}


async def test_server_env_marked_with_star(make_env, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = await make_env("self")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    spec = _ksm(conda_only=True).get_kernel_spec("conda-env-self-py")
    assert spec.display_name == "Python [conda env:self] *"


async def test_provisioner_config_is_passed(make_env) -> None:
    await make_env("tcp")
    ksm = _ksm(conda_only=True, provisioner_config={"transport": "tcp"})
    config = ksm.get_kernel_spec("conda-env-tcp-py").metadata["kernel_provisioner"]["config"]
    assert config["transport"] == "tcp"


async def test_kernelspec_path_writes_and_prunes(make_env, tmp_path: Path) -> None:
    target = tmp_path / "written"
    prefix = await make_env("w")
    ksm = _ksm(conda_only=True, kernelspec_path=str(target))
    ksm.find_kernel_specs()
    kernel_json = target / "share" / "jupyter" / "kernels" / "conda-env-w-py" / "kernel.json"
    data = json.loads(kernel_json.read_text())
    assert data["argv"][0] == str(prefix / "bin" / "python")
    assert data["metadata"]["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME
    foreign = target / "share" / "jupyter" / "kernels" / "conda-someone-else"
    foreign.mkdir()
    (foreign / "kernel.json").write_text(json.dumps({"argv": ["x"], "display_name": "x"}))
    shutil.rmtree(prefix)
    ksm.find_kernel_specs()
    assert not kernel_json.parent.exists()
    assert foreign.exists()  # not ours: left alone


async def test_kernelspec_path_user_is_seen_by_plain_manager(make_env) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    await make_env("visible")
    _ksm(kernelspec_path="--user").find_kernel_specs()
    plain = KernelSpecManager()
    assert "conda-env-visible-py" in plain.find_kernel_specs()
    spec = plain.get_kernel_spec("conda-env-visible-py")
    assert spec.metadata["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME


def test_extension_installs_the_manager_unless_one_is_configured() -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    from jupyter_envs.app import EnvsApp

    class Custom(KernelSpecManager):  # type: ignore[misc]
        pass

    def linked(app: EnvsApp, config: dict[str, Any] | None = None) -> Any:
        server = ServerApp(config=Config(config or {}))
        app._link_jupyter_server_extension(server)
        # Left unset, the trait's default needs the gateway config (built later).
        if not server.trait_has_value("kernel_spec_manager_class"):
            return None
        return server.kernel_spec_manager_class

    assert linked(EnvsApp()) is EnvKernelSpecManager
    assert linked(EnvsApp(), {"ServerApp": {"kernel_spec_manager_class": Custom}}) is not (
        EnvKernelSpecManager
    )
    assert linked(EnvsApp(), {"GatewayClient": {"url": "http://127.0.0.1:1"}}) is None
    assert linked(EnvsApp(kernel_discovery=False)) is None
