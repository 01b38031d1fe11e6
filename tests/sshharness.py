"""A throwaway OpenSSH server, an ``ssh -N -L`` tunnel and a "remote" Jupyter server.

Everything listens on 127.0.0.1 only and lives in a temporary directory. Each process is
started as an argument list, waited for with a deadline, and ended (terminate, then kill)
when its fixture finishes, so a test run leaves nothing behind.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0


def openssh_available() -> bool:
    """Whether the OpenSSH server and client binaries are installed."""
    return all(os.access(p, os.X_OK) for p in (SSHD, SSH, SSH_KEYGEN))


def external_addresses() -> list[str]:
    """This machine's own IPv4 addresses outside 127.0.0.0/8 (Linux: from the routing table)."""
    found: set[str] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in itertools.pairwise(lines):
        if "/32 host LOCAL" in line:  # the line before names one of our addresses
            found.add(previous.split()[-1])
    return sorted(a for a in found if not a.startswith("127."))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host``:``port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[Any]) -> None:
    """Poll ``predicate()`` until true; fail with ``what`` on timeout or if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """Terminate ``proc``, kill it if it lingers, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=30,
        capture_output=True,
    )


@dataclass
class Sshd:
    """A foreground ``sshd -D -e`` on 127.0.0.1 that lets the current user in by key."""

    workdir: Path
    port: int = 0
    user: str = ""
    user_key: Path = field(default_factory=Path)
    known_hosts: Path = field(default_factory=Path)
    log_path: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Sshd:
        """Generate host and user keys and a config in ``workdir``, start sshd, wait for it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        host_key = self.workdir / "ssh_host_ed25519_key"
        self.user_key = self.workdir / "id_ed25519"
        _keygen(host_key, "jupyter-envs-test-host")
        _keygen(self.user_key, "jupyter-envs-test-user")
        authorized = self.workdir / "authorized_keys"
        shutil.copyfile(self.user_key.with_suffix(".pub"), authorized)
        authorized.chmod(0o600)
        self.port = free_port()
        self.user = _current_user()
        host_pub = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts = self.workdir / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        config = self.workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    # The tests may run as root (containers); key-only login is allowed then.
                    "PermitRootLogin prohibit-password",
                    "AllowTcpForwarding local",
                    "GatewayPorts no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        self.log_path = self.workdir / "sshd.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: port_open(self.port), timeout, "sshd", self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.log()[-3000:]}") from exc
        return self

    def client_options(self) -> list[str]:
        """ssh options and destination for this server: its host key pinned, the test key."""
        return [
            "-F",
            "/dev/null",  # no user or system ssh_config
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(self.user_key),
            "-p",
            str(self.port),
            f"{self.user}@127.0.0.1",
        ]

    def run(
        self, argv: list[str], environ: Mapping[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on the "remote" side in an SSH session, with ``environ`` set there."""
        assignments = [f"{key}={value}" for key, value in environ.items()]
        remote = shlex.join(["env", *assignments, *argv])  # ssh hands one string to the shell
        return subprocess.run(
            [SSH, *self.client_options(), remote],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        """Stop sshd (and with it every session it still serves)."""
        if self.proc is not None:
            stop_process(self.proc)
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        """What sshd has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Tunnel:
    """``ssh -N -L local:127.0.0.1:remote`` through an :class:`Sshd`; can be killed and reopened."""

    sshd: Sshd
    remote_port: int
    local_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    opened: int = 0

    def argv(self) -> list[str]:
        """The exact ssh command line (what docs/remote.md tells users to run, plus test keys)."""
        forward = f"127.0.0.1:{self.local_port}:127.0.0.1:{self.remote_port}"
        options = ["-o", "ExitOnForwardFailure=yes", *self.sshd.client_options()]
        return [SSH, "-N", "-L", forward, *options]

    def open(self, timeout: float = 20.0) -> Tunnel:
        """Start ssh and wait until the local end of the forward accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("tunnel already open")
        self.proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: port_open(self.local_port), timeout, "ssh tunnel", self.proc)
        except RuntimeError as exc:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"{exc}\nssh: {err}\nsshd: {self.sshd.log()[-2000:]}") from exc
        self.opened += 1
        return self

    def kill(self) -> None:
        """Drop the tunnel abruptly (SIGKILL), as a lost network or closed laptop would."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
        deadline = time.monotonic() + STOP_TIMEOUT
        while port_open(self.local_port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the tunnel politely (SIGTERM)."""
        if self.proc is not None:
            stop_process(self.proc)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"


@dataclass
class RemoteJupyter:
    """A ``jupyter server`` subprocess on 127.0.0.1 with a base_url, a token and jupyter_envs."""

    workdir: Path
    environ: Mapping[str, str]
    base_url: str = "/remote/base/"
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    port: int = field(default_factory=free_port)
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    _log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> RemoteJupyter:
        """Write a config, start the server and wait until ``api/status`` answers."""
        config_dir = self.workdir / "jupyter-config"
        config_dir.mkdir(parents=True, exist_ok=True)
        root_dir = self.workdir / "notebooks"
        root_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "base_url": self.base_url,
                "open_browser": False,
                "root_dir": str(root_dir),
                # A broken extension must fail the test, not leave a server without routes.
                "reraise_server_extension_failures": True,
                # Test containers run as root; docs/remote.md tells users not to.
                "allow_root": os.geteuid() == 0,
            },
            "IdentityProvider": {"token": self.token},
        }
        # What installing the package puts in etc/jupyter/jupyter_server_config.d/.
        config_d = config_dir / "jupyter_server_config.d"
        config_d.mkdir(exist_ok=True)
        for shipped in sorted((REPO_ROOT / "jupyter-config" / "server-config").glob("*.json")):
            shutil.copyfile(shipped, config_d / shipped.name)
        # ... and what it puts in share/jupyter/labextensions/ (the built panel), if built.
        built = REPO_ROOT / "jupyter_envs" / "labextension"
        if (built / "package.json").is_file():
            labextensions = self.workdir / "jupyter-data" / "labextensions"
            labextensions.mkdir(parents=True, exist_ok=True)
            (labextensions / "jupyter-envs").symlink_to(built)
        for section, values in self.extra_config.items():
            config.setdefault(section, {}).update(values)
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config, indent=1))
        env = dict(self.environ)
        env.update(
            {
                "JUPYTER_CONFIG_DIR": str(config_dir),
                "JUPYTER_DATA_DIR": str(self.workdir / "jupyter-data"),
                "JUPYTER_RUNTIME_DIR": str(self.workdir / "jupyter-runtime"),
                "JUPYTER_PLATFORM_DIRS": "1",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        self.log_path = self.workdir / "jupyter.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server"],
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._ready, timeout, "jupyter server", self.proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{self.log()[-4000:]}") from exc
        return self

    def _ready(self) -> bool:
        import urllib.request

        url = f"http://127.0.0.1:{self.port}{self.base_url}api/status"
        req = urllib.request.Request(url, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM shuts kernels down; then kill if it lingers)."""
        if self.proc is not None:
            stop_process(self.proc, timeout=20)
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        """What the server has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
