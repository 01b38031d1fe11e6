"""The Binder set-up (binder/), checked as far as it can be without mybinder.org.

- the files parse; postBuild is valid bash with strict mode;
- postBuild runs here in a fresh virtual environment and leaves the server extension enabled;
- jupyter-repo2docker accepts the repository (``--no-build``) and its Dockerfile installs
  binder/environment.yml and runs binder/postBuild;
- the demo notebook runs from top to bottom against a real Jupyter server with the
  extension, on the local test channel.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import sshharness
import yaml
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"
REPO2DOCKER = shutil.which("jupyter-repo2docker")
BUILT_PANEL = REPO / "jupyter_envs" / "labextension"


def test_environment_yml_parses() -> None:
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    names = {d.split("=")[0].split(">")[0].split("<")[0].strip() for d in deps}
    assert {"python", "jupyterlab", "nodejs", "pip"} <= names
    assert any(d.startswith("jupyterlab>=4") for d in deps)


def test_postbuild_is_strict_bash() -> None:
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK)
    text = post_build.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "pip install --no-cache-dir ." in text
    subprocess.run(["bash", "-n", str(post_build)], check=True, timeout=30)


def test_demo_notebook_is_valid() -> None:
    nb = nbformat.read(BINDER / "demo.ipynb", as_version=4)
    nbformat.validate(nb)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    source = "\n".join(cell.source for cell in nb.cells)
    for step in ("jupyter-envs/environments", "export?format=", "api/kernels"):
        assert step in source


@pytest.mark.skipif(REPO2DOCKER is None, reason="jupyter-repo2docker is missing (test extra)")
def test_repo2docker_dockerfile_installs_the_extension(tmp_path: Path) -> None:
    # --no-build needs no Docker daemon: repo2docker only writes out its Dockerfile.
    assert REPO2DOCKER is not None
    proc = subprocess.run(
        [REPO2DOCKER, "--no-build", "--no-run", "--debug", str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    dockerfile = proc.stdout + proc.stderr
    assert "binder/environment.yml" in dockerfile
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "binder/environment.yml"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    # The environment is installed before postBuild runs pip against it.
    assert dockerfile.index("binder/environment.yml") < dockerfile.index("RUN ./binder/postBuild")


def _copy_repo(dest: Path) -> Path:
    """The files of the repository that git knows (tracked or not ignored), like a clone."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = Path(os.fsdecode(raw))
        src = REPO / rel
        if src.is_file() and rel.parts[0] != "ui-tests":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # The built panel (git-ignored): Binder builds it with nodejs; here it is copied.
    shutil.copytree(BUILT_PANEL, dest / "jupyter_envs" / "labextension")
    return dest


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    # System site-packages: the dependencies are already here (no network needed for them);
    # jupyter-envs itself and its Jupyter config land only in the new environment.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        timeout=120,
    )
    return venv


@pytest.mark.timeout(600)
@pytest.mark.skipif(
    not (BUILT_PANEL / "package.json").is_file(),
    reason="the panel is not built (scripts/test builds it with pip install -e .)",
)
def test_postbuild_runs_in_a_fresh_venv(tmp_path: Path, fresh_venv: Path) -> None:
    repo = _copy_repo(tmp_path / "repo")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "PYTHONPATH"))
    }
    env["PATH"] = f"{fresh_venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(fresh_venv)
    # HOME is a temporary directory here; keep pip's download cache where it normally is.
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", f"{real_home}/.cache/pip")
    # No npm build here (the panel's own tests build it); the built copy is packaged.
    env["SKIP_JUPYTER_BUILDER"] = "1"
    # Build with the hatchling already installed here instead of fetching it per run
    # (pip reads this variable as build_isolation=False).
    env["PIP_NO_BUILD_ISOLATION"] = "0"
    proc = subprocess.run(
        [str(repo / "binder" / "postBuild")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    venv_python = fresh_venv / "bin" / "python"
    listed = subprocess.run(
        [str(venv_python), "-m", "jupyter", "server", "extension", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    out = listed.stdout + listed.stderr
    assert "jupyter_envs" in out
    assert "enabled" in out.split("jupyter_envs", 1)[1].splitlines()[0]
    config = fresh_venv / "etc" / "jupyter" / "jupyter_server_config.d" / "jupyter_envs.json"
    assert config.is_file()
    # postBuild checked `jupyter labextension list` itself; the panel came from the wheel.
    assert "jupyter-envs" in proc.stdout
    panel = fresh_venv / "share" / "jupyter" / "labextensions" / "jupyter-envs" / "package.json"
    assert panel.is_file()
    where = subprocess.run(
        [str(venv_python), "-c", "import jupyter_envs; print(jupyter_envs.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(fresh_venv)), where


@pytest.fixture
def demo_server(tmp_path: Path, isolated: Path) -> Iterator[sshharness.RemoteJupyter]:
    server = sshharness.RemoteJupyter(
        tmp_path / "server",
        dict(os.environ),
        base_url="/binder/",
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.timeout(300)
def test_demo_notebook_runs(
    demo_server: sshharness.RemoteJupyter,
    envs_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The notebook finds the server through its runtime file, as it would on Binder.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(demo_server.workdir / "jupyter-runtime"))
    nb = nbformat.read(BINDER / "demo.ipynb", as_version=4)
    workdir = tmp_path / "run"
    workdir.mkdir()
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    prefix = envs_dir / "demo"
    assert (prefix / "conda-meta").is_dir()
    outputs = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert f"the new kernel runs in: {prefix}" in outputs
    exported = yaml.safe_load((workdir / "demo-environment.yml").read_text())
    assert exported["name"] == "demo"
    assert any(str(d).startswith("ipykernel") for d in exported["dependencies"])
