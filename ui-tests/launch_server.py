"""Start a real, isolated JupyterLab with jupyter-envs for the browser tests.

Builds the local conda channel of ``tests/localchannel.py``, keeps HOME, caches, conda
and Jupyter configuration inside a temporary directory (as ``tests/conftest.py``'s
``isolated`` fixture does), serves the freshly built labextension from
``jupyter_envs/labextension``, and runs ``jupyter lab`` on 127.0.0.1 with a free port, a
token and a non-root ``base_url``. Writes ``{"url", "base_url", "token", "root", ...}`` as
JSON to the file named by the first argument once the server answers, then waits until it
is terminated (SIGTERM/SIGINT), stopping the server and removing the directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import localchannel  # noqa: E402
from gatedchannel import GatedChannelServer  # noqa: E402

BASE_URL = "/envs-ui/base/"
START_TIMEOUT = 120.0
#: Seconds the slow channel holds each package download (long operations to watch).
SLOW_DELAY = 20.0
SLOW_NAMES = [f"slowpkg{i}" for i in range(3)]
#: The only stand-in of these tests: this machine has no GPU, so the GPU inventory is
#: substituted through JUPYTER_ENVS_GPU_INVENTORY (jupyter_envs.gpu.inventory).
FAKE_GPUS = [
    {
        "index": 0,
        "uuid": "GPU-00000000-aaaa-4000-8000-000000000000",
        "name": "Fake A100",
        "memory_total": 80 << 30,
        "memory_used": 30 << 30,
        "utilization": 65,
        "processes": {},
    },
    {
        "index": 1,
        "uuid": "GPU-11111111-bbbb-4000-8000-000000000001",
        "name": "Fake A100",
        "memory_total": 80 << 30,
        "memory_used": 1 << 30,
        "utilization": 0,
        "processes": {},
    },
]


def serve_slow_channel(root: Path) -> str:
    """A channel of SLOW_NAMES over HTTP on 127.0.0.1 whose downloads take SLOW_DELAY
    seconds each; its URL (the tests' GatedChannelServer, its gate open)."""
    pkgs = [
        localchannel.Pkg(name, "1.0", files={f"share/{name}/data": b"x" * 2000})
        for name in SLOW_NAMES
    ]
    localchannel.build_channel(root, pkgs)
    server = GatedChannelServer(root, names=SLOW_NAMES).start()
    server.delay = SLOW_DELAY
    server.release()
    return server.url + "/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(root: Path) -> dict[str, str]:
    """Channel, conda root, condarc, Jupyter dirs; the environment to run the server in."""
    channel = localchannel.build_channel(root / "channel")
    conda_root = root / "conda-root"
    (conda_root / "envs").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA_", "MAMBA_", "_CE_"))}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.update(localchannel.isolated_environ(root))
    condarc = {
        "channels": [localchannel.channel_url(channel)],
        "envs_dirs": [str(conda_root / "envs")],
        "pkgs_dirs": [str(root / "pkgs")],
    }
    Path(env["CONDARC"]).write_text(yaml.safe_dump(condarc))
    env["CONDA_ROOT"] = str(conda_root)
    # Jupyter paths: isolated, with the freshly built labextension first on JUPYTER_PATH.
    data = root / "jupyter-data"
    (data / "labextensions").mkdir(parents=True)
    built = REPO / "jupyter_envs" / "labextension"
    if not (built / "package.json").exists():
        raise SystemExit(
            f"the labextension is not built: {built} (run `npm run build` in labextension/)"
        )
    (data / "labextensions" / "jupyter-envs").symlink_to(built)
    env["JUPYTER_PATH"] = str(data)
    env["JUPYTER_DATA_DIR"] = str(root / "jupyter-user-data")
    env["JUPYTER_CONFIG_DIR"] = str(root / "jupyter-config")
    env["JUPYTER_RUNTIME_DIR"] = str(root / "jupyter-runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / "lab-workspaces")
    # No "get notified about Jupyter news?" popup over the screenshots.
    settings = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    inventory = root / "gpu-inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "driver_version": "550.54.15",
                "cuda_version": "12.4",
                "gpus": FAKE_GPUS,
                "error": None,
            }
        )
    )
    env["JUPYTER_ENVS_GPU_INVENTORY"] = str(inventory)
    # The solver sees the CUDA of the substituted GPUs, as conda does with this override.
    env["CONDA_OVERRIDE_CUDA"] = "12.4"
    # Kernels take the packages of the interpreter that runs the tests (see localchannel).
    env["PYTHONNOUSERSITE"] = "1"
    return env


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"jupyter lab did not answer {url} in {START_TIMEOUT:.0f} s")


def main() -> None:
    info_file = Path(sys.argv[1])
    root = Path(tempfile.mkdtemp(prefix="jupyter-envs-ui-"))
    env = prepare(root)
    notebooks = root / "notebooks"
    notebooks.mkdir()
    slow_url = serve_slow_channel(root / "slow-channel")
    # A protected environment (the tests create it) that the panel may not change.
    config = Path(env["JUPYTER_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    guarded = root / "conda-root" / "envs" / "guarded"
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"EnvsApp": {"protected_prefixes": [str(guarded)]}})
    )
    port, token = free_port(), secrets.token_hex(16)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.base_url={BASE_URL}",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.news_url=None",
        "--LabServerApp.extra_labextensions_path=[]",
    ]
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=notebooks)

    def stop(*_: object) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        keep = os.environ.get("JUPYTER_ENVS_UI_KEEP")
        if keep:
            shutil.copy(root / "server.log", keep)
        shutil.rmtree(root, ignore_errors=True)
        info_file.unlink(missing_ok=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = f"http://127.0.0.1:{port}{BASE_URL}"
    try:
        wait_ready(f"{url}api/status?token={token}", proc)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        print((root / "server.log").read_text()[-4000:], file=sys.stderr)
        stop()
    info = {
        "url": url,
        "base_url": BASE_URL,
        "token": token,
        "root": str(root),
        "envs_dir": str(root / "conda-root" / "envs"),
        "notebooks": str(notebooks),
        "server_log": str(root / "server.log"),
        "slow_channel": slow_url,
        "slow_names": SLOW_NAMES,
    }
    tmp = info_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(info_file)
    while proc.poll() is None:
        time.sleep(0.5)
    stop()


if __name__ == "__main__":
    main()
