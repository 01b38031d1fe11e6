"""Remote JupyterLab over a real SSH tunnel, end to end.

A throwaway OpenSSH server on 127.0.0.1, a "remote" ``jupyter server`` bound to 127.0.0.1
with a non-root base_url and a token, and an ``ssh -N -L`` tunnel to it (tests/sshharness.py).
Every request below goes through the tunnel, as it would from a laptop.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import gatedchannel
import pytest
import sshharness
import yaml
from remoteclient import REPO, Client, LogFollower, eventually, execute, lab_dom, wait_task
from tornado.httpclient import AsyncHTTPClient

pytestmark = pytest.mark.skipif(
    not sshharness.openssh_available(), reason="OpenSSH is missing (scripts/test installs it)"
)

BASE_URL = "/remote/base/"

@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[sshharness.Sshd]:
    server = sshharness.Sshd(tmp_path / "sshd")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def remote_environ(isolated: Path) -> dict[str, str]:
    """The remote server's environment: the test's isolated HOME and conda config."""
    return dict(os.environ)


@pytest.fixture
def remote(tmp_path: Path, remote_environ: dict[str, str]) -> Iterator[sshharness.RemoteJupyter]:
    """The "remote" Jupyter server, configured as installing the package configures it."""
    server = sshharness.RemoteJupyter(
        tmp_path / "remote",
        remote_environ,
        base_url=BASE_URL,
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def tunnel(sshd: sshharness.Sshd, remote: sshharness.RemoteJupyter) -> Iterator[sshharness.Tunnel]:
    t = sshharness.Tunnel(sshd, remote.port)
    try:
        yield t.open()
    finally:
        t.close()


@pytest.fixture
def client(tunnel: sshharness.Tunnel, remote: sshharness.RemoteJupyter) -> Client:
    return Client(tunnel.url, remote.base_url, remote.token)


async def test_tunnel_reaches_only_the_remote_server(
    client: Client,
    remote: sshharness.RemoteJupyter,
    tunnel: sshharness.Tunnel,
    sshd: sshharness.Sshd,
    envs_dir: Path,
) -> None:
    assert tunnel.local_port != remote.port
    status = await client.json("GET", "api/status")
    assert "started" in status
    # The token protects everything: without it, the API refuses.
    resp = await AsyncHTTPClient().fetch(client.url("api/status"), raise_error=False)
    assert resp.code == 403
    # ... the jupyter_envs routes included: no listing, and no create.
    for method, path, body in (
        ("GET", "jupyter-envs/environments", None),
        ("POST", "jupyter-envs/environments", '{"name": "sneaky", "specs": ["python"]}'),
    ):
        resp = await AsyncHTTPClient().fetch(
            client.url(path), method=method, body=body, raise_error=False
        )
        assert resp.code == 403, (method, path, resp.code)
    assert not (envs_dir / "sneaky").exists()
    # Bound to localhost: neither Jupyter nor sshd answers on the machine's other addresses.
    for address in sshharness.external_addresses():
        assert not sshharness.port_open(remote.port, address), address
        assert not sshharness.port_open(sshd.port, address), address
    # Only the base_url is served; the root is not the server.
    resp = await AsyncHTTPClient().fetch(
        f"{tunnel.url}/api/status", headers=client.headers, raise_error=False
    )
    assert resp.code == 404


async def test_kernel_through_tunnel_survives_a_drop(
    client: Client, tunnel: sshharness.Tunnel
) -> None:
    specs = await client.json("GET", "api/kernelspecs")
    assert "python3" in specs["kernelspecs"]
    kernel = await client.json("POST", "api/kernels", {"name": "python3"}, expect=201)
    try:
        out = await execute(client, kernel["id"], "x = 6 * 7; print(x)")
        assert out.strip() == "42"
        tunnel.kill()
        tunnel.open()
        # The same kernel, with its state, answers through the new tunnel.
        out = await execute(client, kernel["id"], "print(x + 1)")
        assert out.strip() == "43"
    finally:
        await client.json("DELETE", f"api/kernels/{kernel['id']}", expect=204)


async def test_tunnel_killed_and_reopened(
    client: Client, tunnel: sshharness.Tunnel, sshd: sshharness.Sshd
) -> None:
    await client.json("GET", "api/status")
    tunnel.kill()
    with pytest.raises(ConnectionRefusedError):  # nothing listens locally any more
        await client.fetch("GET", "api/status")
    tunnel.open()
    assert tunnel.opened == 2
    await client.json("GET", "api/status")
    assert "Accepted publickey" in sshd.log()


# -- the jupyter_envs REST API through the tunnel -------------------------------------------


async def create(client: Client, name: str, specs: list[str]) -> str:
    """POST a create; check the 202 and its Location under the base_url; return the task id."""
    resp = await client.fetch("POST", "jupyter-envs/environments", {"name": name, "specs": specs})
    assert resp.code == 202, resp.body
    location = resp.headers["Location"]
    assert location.startswith(f"{BASE_URL}jupyter-envs/tasks/"), location
    task = json.loads(resp.body)
    assert location.endswith(task["id"])
    return str(task["id"])


async def kernelspec_for(client: Client, prefix: Path, timeout: float = 30) -> str:
    """The name of the kernelspec that runs in ``prefix`` (it shows up within seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        specs = (await client.json("GET", "api/kernelspecs"))["kernelspecs"]
        for name, spec in specs.items():
            argv = spec["spec"]["argv"]
            if (name.startswith("conda-env-") and any(str(prefix) in a for a in argv)) or (
                str(prefix) in json.dumps(spec["spec"].get("metadata", {}))
            ):
                return str(name)
        assert loop.time() < deadline, f"no kernelspec for {prefix}: {sorted(specs)}"
        await asyncio.sleep(0.5)


async def test_create_and_kernel_through_tunnel(client: Client, envs_dir: Path) -> None:
    before = await client.json("GET", "jupyter-envs/environments")
    assert all(env["name"] != "remote-demo" for env in before)

    tid = await create(client, "remote-demo", ["python", "ipykernel"])
    follower = LogFollower(client, tid)
    await follower.follow()
    assert follower.end is not None
    assert follower.end["state"] == "succeeded", follower.end
    log = await client.json("GET", f"jupyter-envs/tasks/{tid}/log?offset=0")
    assert follower.lines == log["lines"]
    assert follower.lines, "the create logged nothing"

    prefix = envs_dir / "remote-demo"
    assert (prefix / "conda-meta").is_dir()
    envs = await client.json("GET", "jupyter-envs/environments")
    assert str(prefix) in [env["prefix"] for env in envs]

    env_id = next(env["id"] for env in envs if env["prefix"] == str(prefix))
    resp = await client.fetch("GET", f"jupyter-envs/environments/{env_id}/export?format=yml")
    assert resp.code == 200
    assert 'filename="remote-demo-environment.yml"' in resp.headers["Content-Disposition"]
    exported = yaml.safe_load(resp.body)
    assert exported["name"] == "remote-demo"
    assert any(str(dep).startswith("ipykernel") for dep in exported["dependencies"])

    dom = await lab_dom(client)
    assert 'id="jp-Envs-panel"' in dom  # the panel is there, served through the tunnel
    assert "remote-demo" in dom, "the panel did not list the new environment"

    spec = await kernelspec_for(client, prefix)
    kernel = await client.json("POST", "api/kernels", {"name": spec}, expect=201)
    try:
        out = await execute(client, kernel["id"], "import sys; print(sys.prefix)")
        assert out.strip() == str(prefix)
    finally:
        await client.json("DELETE", f"api/kernels/{kernel['id']}", expect=204)


class TestDroppedTunnel:
    """The tunnel dies in the middle of a create; the client reconnects and loses no line.

    The remote server reads its channel over HTTP from a server that holds package
    downloads until the test lets them through (a slow network), so the create is
    still running when the tunnel goes down.
    """

    @pytest.fixture
    def gated(self, channel: Path, tmp_path: Path) -> Iterator[gatedchannel.GatedChannelServer]:
        copy = tmp_path / "http-channel"
        shutil.copytree(channel, copy, ignore=shutil.ignore_patterns(".tmp"))
        server = gatedchannel.GatedChannelServer(copy, max_wait=60)
        try:
            yield server.start()
        finally:
            server.stop()

    @pytest.fixture
    def remote_environ(
        self, isolated: Path, tmp_path: Path, gated: gatedchannel.GatedChannelServer, envs_dir: Path
    ) -> dict[str, str]:
        condarc = tmp_path / "remote-condarc.yml"
        condarc.write_text(
            yaml.safe_dump(
                {
                    "channels": [gated.url],
                    "envs_dirs": [str(envs_dir)],
                    "pkgs_dirs": [str(tmp_path / "remote-pkgs")],
                }
            )
        )
        env = dict(os.environ)
        env["CONDARC"] = str(condarc)
        # A package cache of its own: every package has to come through the gate.
        env["RATTLER_CACHE_DIR"] = str(tmp_path / "remote-rattler-cache")
        return env

    @pytest.mark.parametrize(
        ("at_reconnect", "via"),
        [
            pytest.param("running", "stream", id="still-running"),
            pytest.param("succeeded", "stream", id="finished-while-down"),
            pytest.param("running", "log", id="still-running-polling-the-log"),
        ],
    )
    async def test_reattach_after_tunnel_drop(
        self,
        client: Client,
        tunnel: sshharness.Tunnel,
        remote: sshharness.RemoteJupyter,
        gated: gatedchannel.GatedChannelServer,
        envs_dir: Path,
        at_reconnect: str,
        via: str,
    ) -> None:
        tid = await create(client, "dropped", ["python", "ipykernel", "hello", "bar"])
        follower = LogFollower(client, tid)
        ws = await follower.connect()
        await follower.read(ws, until_lines=1)  # "solving ..." comes before any download
        await eventually(gated.package_requests, 30, "a package download to start")
        seen_before_drop = follower.offset

        tunnel.kill()
        assert await follower.read(ws) is False, "the stream survived the tunnel's death"
        ws.close()

        if at_reconnect == "succeeded":
            gated.release()
            # The client is cut off; look at the remote side directly for the end.
            direct = Client(f"http://127.0.0.1:{remote.port}", remote.base_url, remote.token)
            await wait_task(direct, tid)
        tunnel.open()
        task = await client.json("GET", f"jupyter-envs/tasks/{tid}")
        assert task["state"] == at_reconnect
        if at_reconnect == "running":
            gated.release()

        # Resume from the offset it had reached, over the WebSocket or plain GETs.
        await (follower.follow() if via == "stream" else follower.poll())
        assert follower.connections == 2
        assert follower.end is not None
        assert follower.end["state"] == "succeeded", follower.end
        full = await client.json("GET", f"jupyter-envs/tasks/{tid}/log?offset=0")
        assert follower.lines == full["lines"]
        assert len(follower.lines) > seen_before_drop, "nothing was logged after the drop"
        assert (envs_dir / "dropped" / "conda-meta").is_dir()
        envs = await client.json("GET", "jupyter-envs/environments?refresh=1")
        assert str(envs_dir / "dropped") in [env["prefix"] for env in envs]


def test_docs_recipe_matches_the_tested_tunnel(sshd: sshharness.Sshd) -> None:
    """docs/remote.md and the README tell users the forward the tunnel tests run."""
    argv = sshharness.Tunnel(sshd, remote_port=8888, local_port=8888).argv()
    forward = argv[argv.index("-L") + 1]  # what every tunnel test here uses
    for doc in (REPO / "docs" / "remote.md", REPO / "README.md"):
        text = doc.read_text()
        assert f"ssh -N -L {forward} " in text, doc
        assert "--ServerApp.ip=127.0.0.1" in text, doc


def test_cli_in_an_ssh_session(sshd: sshharness.Sshd, envs_dir: Path) -> None:
    """No browser: ``jupyter envs`` in an SSH session works on the same environments."""
    keep = ("HOME", "CONDARC", "CONDA_ROOT", "CONDA_PKGS_DIRS", "RATTLER_CACHE_DIR")
    environ = {key: os.environ[key] for key in keep}
    environ["PYTHONPATH"] = str(REPO)
    cli = [sys.executable, "-m", "jupyter_envs.cli"]

    made = sshd.run([*cli, "create", "-n", "over-ssh", "python", "hello"], environ)
    assert made.returncode == 0, made.stderr[-2000:]
    assert (envs_dir / "over-ssh" / "bin" / "hello").exists()
    listed = sshd.run([*cli, "list", "--json"], environ)
    assert listed.returncode == 0, listed.stderr[-2000:]
    prefixes = [env["prefix"] for env in json.loads(listed.stdout)]
    assert str(envs_dir / "over-ssh") in prefixes
    assert "Accepted publickey" in sshd.log()
