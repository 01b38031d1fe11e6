"""Which kernel holds which GPUs: a JSON file shared by every server of the user.

The file lives in Jupyter's runtime directory (``jupyter_envs_gpu.json``; the environment
variable ``JUPYTER_ENVS_GPU_STATE`` names another path, e.g. one shared by several users
of a machine). Every read-modify-write holds an ``fcntl.flock`` on a side ``.lock`` file, so
several kernels and several Jupyter servers on one machine never hand out the same GPU.

Each entry maps a kernel id to the server process that asked (pid and start time), the
kernel's pid once known, the GPU UUIDs, and whether they are held exclusively (``auto``).
An entry whose server or kernel process is gone is stale and reclaimed at the next access.
Entries written on another host (a runtime directory on a shared home) are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jupyter_core.paths import jupyter_runtime_dir

from ..errors import NoFreeGpu
from .inventory import Gpu
from .prefs import write_json_atomic

STATE_ENV = "JUPYTER_ENVS_GPU_STATE"

NO_GPU_AT_ALL = "No free GPU: this machine has no NVIDIA GPU that the server can see."
NO_FREE_GPU = (
    "No free GPU for this kernel: it asks for {count}, and {free} of the {total} GPUs are free "
    "({held} held by other kernels). Shut down a kernel that holds a GPU, ask for fewer, or "
    "choose 'all' or 'none' for this notebook."
)


@dataclass(frozen=True)
class Assignment:
    """The GPUs one kernel got."""

    kernel_id: str
    devices: tuple[str, ...]
    exclusive: bool
    server_pid: int
    kernel_pid: int | None = None
    host: str = ""
    since: float = 0.0


def state_path() -> Path:
    """The assignment file this process uses."""
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override)
    return Path(jupyter_runtime_dir()) / "jupyter_envs_gpu.json"


def _proc_start(pid: int) -> int | None:
    """The process's start time in clock ticks (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (possibly another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AssignmentStore:
    """Reads and changes the assignment file; every method is one locked transaction.

    Blocking (file locks and I/O): call it through ``asyncio.to_thread`` from the event loop.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_path()
        self.host = socket.gethostname()

    def _open_lock(self) -> IO[str]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            return open(lock_path, "a")  # closed by the caller's with
        except PermissionError:
            return open(lock_path)  # another user's lock file: flock works read-only too

    @contextlib.contextmanager
    def _transaction(self, renewing: str | None = None) -> Iterator[dict[str, dict[str, Any]]]:
        """Lock, read, reclaim stale entries, yield them for changes, write back if changed.

        ``renewing``: a kernel of this server being granted again (a restart): its entry is
        kept although its old process is gone.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._open_lock() as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = self._read()
                before = json.dumps(entries, sort_keys=True)
                self._reclaim(entries, renewing)
                yield entries
                if json.dumps(entries, sort_keys=True) != before:
                    write_json_atomic(self.path, {"kernels": entries})
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        kernels = data.get("kernels") if isinstance(data, dict) else None
        if not isinstance(kernels, dict):
            return {}
        return {k: v for k, v in kernels.items() if isinstance(v, dict)}

    def _stale(self, entry: dict[str, Any]) -> bool:
        if entry.get("host", self.host) != self.host:
            return False
        server = entry.get("server_pid")
        if not isinstance(server, int) or not pid_alive(server):
            return True
        started = entry.get("server_start")
        if started is not None and _proc_start(server) not in (None, started):
            return True  # the pid now belongs to another process
        kernel = entry.get("kernel_pid")
        return isinstance(kernel, int) and not pid_alive(kernel)

    def _reclaim(self, entries: dict[str, dict[str, Any]], renewing: str | None) -> None:
        for kernel_id, entry in list(entries.items()):
            if kernel_id == renewing and entry.get("server_pid") == os.getpid():
                continue
            if self._stale(entry):
                del entries[kernel_id]

    def _entry(self, devices: Sequence[str], exclusive: bool) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "devices": list(devices),
            "exclusive": exclusive,
            "server_pid": pid,
            "server_start": _proc_start(pid),
            "kernel_pid": None,
            "host": self.host,
            "since": time.time(),
        }

    def assign_auto(self, kernel_id: str, count: int, pool: Sequence[Gpu]) -> tuple[Gpu, ...]:
        """Hold ``count`` least-loaded GPUs of ``pool`` that no other kernel holds.

        A kernel that already holds enough of them (a restart) keeps its GPUs. Raises
        NoFreeGpu with a message for the notebook when too few are free.
        """
        if not pool:
            raise NoFreeGpu(NO_GPU_AT_ALL)
        with self._transaction(renewing=kernel_id) as entries:
            held = {
                uuid
                for kid, entry in entries.items()
                if kid != kernel_id and entry.get("exclusive")
                for uuid in entry.get("devices", [])
            }
            free = [gpu for gpu in pool if gpu.uuid not in held]
            mine = entries.get(kernel_id, {})
            kept = [g for g in free if mine.get("exclusive") and g.uuid in mine.get("devices", [])]
            if len(kept) == count:
                chosen = kept
            elif len(free) >= count:
                chosen = sorted(free, key=lambda g: g.load)[:count]
            else:
                entries.pop(kernel_id, None)
                raise NoFreeGpu(
                    NO_FREE_GPU.format(
                        count=count, free=len(free), total=len(pool), held=len(pool) - len(free)
                    )
                )
            chosen = sorted(chosen, key=lambda g: g.index)
            entries[kernel_id] = self._entry([g.uuid for g in chosen], exclusive=True)
            return tuple(chosen)

    def record(self, kernel_id: str, devices: Sequence[str]) -> None:
        """Note which GPUs a kernel sees without holding them (modes ``all`` and ``devices``)."""
        with self._transaction() as entries:
            if devices:
                entries[kernel_id] = self._entry(devices, exclusive=False)
            else:
                entries.pop(kernel_id, None)

    def set_kernel_pid(self, kernel_id: str, pid: int) -> None:
        """Note the kernel's pid, so its entry is reclaimed if it dies unreleased."""
        with self._transaction() as entries:
            if kernel_id in entries:
                entries[kernel_id]["kernel_pid"] = pid

    def release(self, kernel_id: str) -> bool:
        """Forget the kernel's GPUs. True if it held any."""
        with self._transaction() as entries:
            return entries.pop(kernel_id, None) is not None

    def assignments(self) -> list[Assignment]:
        """Every live assignment, stale ones reclaimed first."""
        with self._transaction() as entries:
            return [
                Assignment(
                    kernel_id=kid,
                    devices=tuple(str(d) for d in entry.get("devices", [])),
                    exclusive=bool(entry.get("exclusive")),
                    server_pid=int(entry.get("server_pid", 0)),
                    kernel_pid=entry.get("kernel_pid"),
                    host=str(entry.get("host", "")),
                    since=float(entry.get("since", 0.0)),
                )
                for kid, entry in sorted(entries.items())
            ]
