"""The NVIDIA GPU inventory, read by a probe subprocess and cached.

The server never loads NVML itself: :func:`read_inventory` runs the probe script
(``jupyter_envs/gpu/probe.py``) with a timeout (as conda does for its ``__cuda``
virtual package) and caches the answer for a few seconds. A machine without a GPU, a
driver or ``nvidia-ml-py`` has an empty inventory, not an error.

Substitution for tests: when the environment variable ``JUPYTER_ENVS_GPU_INVENTORY`` names
a JSON file, that file replaces the probe's output (same format, see
:mod:`jupyter_envs.gpu.probe`). It is re-read at every call, so a test may rewrite it. This
is the only stand-in for real GPUs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest

INVENTORY_ENV = "JUPYTER_ENVS_GPU_INVENTORY"
TIMEOUT_ENV = "JUPYTER_ENVS_GPU_PROBE_TIMEOUT"
PROBE_TIMEOUT = 5.0
"""Seconds the probe subprocess may take before the inventory counts as empty (NVML can
be slow to start on a large machine without persistence mode; ``JUPYTER_ENVS_GPU_PROBE_TIMEOUT``
overrides it)."""
TTL = 2.0
"""Seconds a GPU inventory is reused (utilization and memory change quickly)."""
EMPTY_TTL = 60.0
"""Seconds an empty or failed inventory is reused, so GPU-less machines probe rarely."""
STATIC_TTL = 300.0
"""Seconds the GPUs last seen stay listed when a later probe fails: a slow or stuck driver
should not make the GPUs vanish and send ``auto`` kernels to the CPU."""
_MAX_OUTPUT = 1 << 20


@dataclass(frozen=True)
class Gpu:
    """One physical GPU as NVML reports it."""

    index: int
    uuid: str
    name: str
    memory_total: int
    memory_used: int
    utilization: int | None = None
    processes: Mapping[int, int] = field(default_factory=dict)
    """Process id -> GPU memory in bytes."""

    @property
    def load(self) -> tuple[float, float, int]:
        """Sort key: least-loaded first (utilization, memory fraction, index)."""
        memory = self.memory_used / self.memory_total if self.memory_total else 0.0
        return (float(self.utilization or 0), memory, self.index)


@dataclass(frozen=True)
class Inventory:
    """The machine's GPUs plus the driver facts that apply to all of them."""

    gpus: tuple[Gpu, ...] = ()
    driver_version: str | None = None
    cuda_version: str | None = None
    """The newest CUDA version the driver supports, ``"12.4"``; None without a driver."""
    error: str | None = None
    """Why the inventory is empty or partial (no driver, probe timeout, ...); None when fine."""

    def find(self, device: str) -> Gpu | None:
        """The GPU named by an index (``"0"``) or a UUID (``"GPU-..."``, prefix allowed)."""
        text = device.strip()
        if text.isdigit():
            return next((g for g in self.gpus if g.index == int(text)), None)
        matches = [g for g in self.gpus if g.uuid == text]
        if not matches and len(text) >= 8:
            matches = [g for g in self.gpus if g.uuid.startswith(text)]
        return matches[0] if len(matches) == 1 else None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"GPU inventory: {what} must be an integer, not {value!r}")
    return value


def parse_inventory(data: Any) -> Inventory:
    """An :class:`Inventory` from the probe's JSON object. Raises InvalidRequest if malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("gpus", []), list):
        raise InvalidRequest("GPU inventory: expected an object with a 'gpus' list")
    gpus = []
    for item in data.get("gpus", []):
        if not isinstance(item, dict) or not isinstance(item.get("uuid"), str):
            raise InvalidRequest(f"GPU inventory: each GPU needs a 'uuid' string: {item!r}")
        utilization = item.get("utilization")
        procs = item.get("processes") or {}
        if not isinstance(procs, dict):
            raise InvalidRequest("GPU inventory: 'processes' must map pids to bytes")
        gpus.append(
            Gpu(
                index=_int(item.get("index"), "index"),
                uuid=item["uuid"],
                name=str(item.get("name", "")),
                memory_total=_int(item.get("memory_total", 0), "memory_total"),
                memory_used=_int(item.get("memory_used", 0), "memory_used"),
                utilization=None if utilization is None else _int(utilization, "utilization"),
                processes={int(pid): _int(used, "process memory") for pid, used in procs.items()},
            )
        )
    if len({g.uuid for g in gpus}) != len(gpus) or len({g.index for g in gpus}) != len(gpus):
        raise InvalidRequest("GPU inventory: GPU indexes and UUIDs must be unique")

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    return Inventory(
        gpus=tuple(sorted(gpus, key=lambda g: g.index)),
        driver_version=text("driver_version"),
        cuda_version=text("cuda_version"),
        error=text("error"),
    )


def probe_timeout(environ: Mapping[str, str] | None = None) -> float:
    """The probe's timeout in seconds: ``JUPYTER_ENVS_GPU_PROBE_TIMEOUT`` or the default."""
    text = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "")
    try:
        value = float(text)
    except ValueError:
        return PROBE_TIMEOUT
    return value if 0 < value <= 600 else PROBE_TIMEOUT


def run_probe(timeout: float | None = None) -> Inventory:
    """Run the probe subprocess now (no cache). Failures give an empty inventory with ``error``."""
    timeout = probe_timeout() if timeout is None else timeout
    # The file, not "-m jupyter_envs.gpu.probe": -m imports the package first (asyncio,
    # jupyter_core, ...), which doubles the probe's start-up time.
    command = [sys.executable, str(Path(__file__).with_name("probe.py"))]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Inventory(error=f"the GPU probe took longer than {timeout:g} s")
    except OSError as exc:
        return Inventory(error=f"the GPU probe could not start: {exc}")
    if done.returncode != 0:
        tail = done.stderr[-500:].decode(errors="replace").strip()
        return Inventory(error=f"the GPU probe failed (exit {done.returncode}): {tail}")
    try:
        return parse_inventory(json.loads(done.stdout[:_MAX_OUTPUT]))
    except (ValueError, InvalidRequest) as exc:
        return Inventory(error=f"the GPU probe printed unreadable output: {exc}")


def _substitute(path: str) -> Inventory:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{INVENTORY_ENV}={path}: cannot read the inventory: {exc}") from exc
    return parse_inventory(data)


def merge_failed_probe(last_good: Inventory | None, age: float, fresh: Inventory) -> Inventory:
    """``fresh``, unless it is a failed probe and GPUs were seen less than ``STATIC_TTL`` ago:
    then those GPUs (their load as it was then), with ``fresh.error`` saying so."""
    if fresh.gpus or not fresh.error or last_good is None or not last_good.gpus:
        return fresh
    if age >= STATIC_TTL:
        return fresh
    note = f"{fresh.error}; listing the GPUs seen {age:.0f} s ago"
    return dataclasses.replace(last_good, error=note)


class _Cache:
    """The last probe result and when it was taken; shared by every caller in the process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: Inventory | None = None
        self.taken = 0.0
        self.good: Inventory | None = None
        self.good_taken = 0.0


_cache = _Cache()


def read_inventory(
    *, max_age: float | None = None, environ: Mapping[str, str] | None = None
) -> Inventory:
    """This machine's GPUs; a probe result at most ``max_age`` seconds old.

    ``max_age`` defaults to :data:`TTL` (:data:`EMPTY_TTL` for an empty inventory); callers
    that need only static facts (UUIDs, driver, CUDA version) pass a longer one.

    Blocking (it may start the probe process): call it through ``asyncio.to_thread`` from
    the event loop. Honours ``JUPYTER_ENVS_GPU_INVENTORY`` (see the module docstring).
    """
    env = os.environ if environ is None else environ
    if env.get(INVENTORY_ENV):
        return _substitute(env[INVENTORY_ENV])
    with _cache.lock:
        value = _cache.value
        if value is not None:
            ttl = TTL if value.gpus else EMPTY_TTL
            age = time.monotonic() - _cache.taken
            limit = ttl if max_age is None else max_age if value.gpus else min(max_age, ttl)
            if age < limit:
                return value
        value = run_probe()
        now = time.monotonic()
        if value.gpus:
            _cache.good, _cache.good_taken = value, now
        value = merge_failed_probe(_cache.good, now - _cache.good_taken, value)
        _cache.value, _cache.taken = value, now
        return value
