"""GPU visibility for kernels: inventory, per-kernel choice, exclusive assignment.

The provisioner calls :func:`grant_gpus` before it starts a kernel and adds
``GpuGrant.env`` to the kernel's environment, then :func:`note_kernel_pid` once the kernel
runs, and :func:`release_gpus` when the kernel ends.

``CUDA_VISIBLE_DEVICES`` names GPUs by UUID, not index: a UUID means the same board
whatever the ordering or an inherited ``CUDA_VISIBLE_DEVICES`` of the server, so the GPU
recorded as held is the GPU the kernel uses. ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` is set too, so
that inside the kernel device 0, 1, ... follow the order NVML indexes use (the order of
``GET jupyter-envs/gpus``).

If the server itself runs with ``CUDA_VISIBLE_DEVICES``, only those GPUs are handed out.

Environment variables (read by the server process):

- ``JUPYTER_ENVS_GPU_INVENTORY``: path of a JSON file that replaces the NVML probe's output
  (format: :mod:`jupyter_envs.gpu.probe`). For tests and demos only.
- ``JUPYTER_ENVS_GPU_PROBE_TIMEOUT``: seconds the probe may take (default 5).
- ``JUPYTER_ENVS_GPU_STATE``: the assignment file (default
  ``<jupyter runtime dir>/jupyter_envs_gpu.json``); point several users' servers at one
  file in a directory they can all write (group-writable, not sticky) to make ``auto``
  exclusive between users too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import NoFreeGpu
from .assign import AssignmentStore
from .compat import cuda_compat
from .inventory import STATIC_TTL, Gpu, Inventory, read_inventory
from .prefs import GpuChoice, resolve_choice

__all__ = [
    "GpuGrant",
    "NoFreeGpu",
    "cuda_compat",
    "grant_gpus",
    "note_kernel_pid",
    "release_gpus",
]

CPU_ONLY_NO_GPU = "No NVIDIA GPU found: this kernel runs on the CPU."
PROBE_PROBLEM = "(GPU detection: {error})"
UNKNOWN_GPU = (
    "GPU {device} is not available here (GPUs: {known}). Choose other GPUs for this notebook."
)
HOLDING = "This kernel holds GPU {names} until it shuts down (automatic assignment)."
SHARED_WITH = "GPU {device} is also held by another kernel (automatic assignment); it is shared."


@dataclass(frozen=True)
class GpuGrant:
    """What a kernel gets: variables for its environment, its GPUs, notes for the user."""

    env: dict[str, str]
    devices: tuple[str, ...]
    """UUIDs of the GPUs the kernel sees (empty for CPU only, or when unknown)."""
    messages: tuple[str, ...]
    """User-facing notes to show at kernel start (CUDA compatibility, assignment, ...)."""
    mode: str = "all"
    source: str = "default"
    """Where the choice came from: ``notebook``, ``environment`` or ``default``."""


def server_pool(inventory: Inventory, environ: Mapping[str, str]) -> tuple[Gpu, ...]:
    """The GPUs this server may hand out: all, or those its own CUDA_VISIBLE_DEVICES names."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return inventory.gpus
    pool: dict[str, Gpu] = {}
    for token in visible.split(","):
        gpu = inventory.find(token) if token.strip() else None
        if gpu is not None:
            pool.setdefault(gpu.uuid, gpu)
    return tuple(pool.values())


def _describe(gpus: tuple[Gpu, ...]) -> str:
    return ", ".join(f"{g.index} ({g.name})" if g.name else str(g.index) for g in gpus)


def _grant(
    kernel_id: str,
    prefix: Path,
    notebook_path: str | None,
    root_dir: Path | None,
    environ: Mapping[str, str],
) -> GpuGrant:
    choice, source, messages = resolve_choice(prefix, notebook_path, root_dir)
    # Only "auto" ranks GPUs by load; the other modes need static facts (UUIDs), so a kernel
    # start does not pay for a probe every few seconds.
    if choice.mode == "none":  # CPU only: no probe, no compatibility check
        store = AssignmentStore()
        store.record(kernel_id, [])
        env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": ""}
        return GpuGrant(env=env, devices=(), messages=tuple(messages), mode="none", source=source)
    inventory = read_inventory(max_age=None if choice.mode == "auto" else STATIC_TTL)
    pool = server_pool(inventory, environ)
    store = AssignmentStore()
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    devices: tuple[Gpu, ...] = ()

    if choice.mode == "all":
        devices = pool
        if "CUDA_VISIBLE_DEVICES" in environ:
            env["CUDA_VISIBLE_DEVICES"] = environ["CUDA_VISIBLE_DEVICES"]
        elif pool:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(g.uuid for g in pool)
    elif not pool:
        env["CUDA_VISIBLE_DEVICES"] = ""
        messages.append(CPU_ONLY_NO_GPU)
        if inventory.error:
            messages.append(PROBE_PROBLEM.format(error=inventory.error))
    elif choice.mode == "devices":
        devices = _pick(choice, pool, inventory)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(g.uuid for g in devices)
        others = [a for a in store.assignments() if a.exclusive and a.kernel_id != kernel_id]
        held = {uuid for a in others for uuid in a.devices}
        messages.extend(SHARED_WITH.format(device=g.index) for g in devices if g.uuid in held)
    else:
        devices = store.assign_auto(kernel_id, choice.count, pool)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(g.uuid for g in devices)
        messages.append(HOLDING.format(names=_describe(devices)))

    if choice.mode != "auto":
        store.record(kernel_id, [g.uuid for g in devices])
    compat = cuda_compat(prefix, inventory)
    if compat:
        messages.append(compat)
    return GpuGrant(
        env=env,
        devices=tuple(g.uuid for g in devices),
        messages=tuple(messages),
        mode=choice.mode,
        source=source,
    )


def _pick(choice: GpuChoice, pool: tuple[Gpu, ...], inventory: Inventory) -> tuple[Gpu, ...]:
    picked: list[Gpu] = []
    for device in choice.devices:
        gpu = inventory.find(device)
        if gpu is None or gpu.uuid not in {g.uuid for g in pool}:
            raise NoFreeGpu(UNKNOWN_GPU.format(device=device, known=_describe(pool)))
        if gpu not in picked:
            picked.append(gpu)
    return tuple(picked)


async def grant_gpus(
    kernel_id: str,
    prefix: Path,
    notebook_path: str | None,
    *,
    root_dir: Path | None = None,
) -> GpuGrant:
    """Decide and record the GPUs a kernel about to start sees.

    ``notebook_path`` is the session's ``JPY_SESSION_NAME`` (absolute, or relative to
    ``root_dir``, the server's root directory); its ``metadata.jupyter_envs.gpu`` wins over
    the environment's default, which wins over ``all``. Safe to call again for a restart: an
    ``auto`` kernel keeps its GPUs when they are still free. Raises NoFreeGpu (a message for
    the notebook) when ``auto`` finds too few free GPUs or a chosen GPU does not exist.
    """
    return await asyncio.to_thread(
        _grant, kernel_id, Path(prefix), notebook_path, root_dir, dict(os.environ)
    )


def note_kernel_pid(kernel_id: str, pid: int) -> None:
    """Record the started kernel's pid: if it dies unreleased, its GPUs are reclaimed."""
    AssignmentStore().set_kernel_pid(kernel_id, pid)


def release_gpus(kernel_id: str) -> None:
    """Free what the kernel held. Safe to call for a kernel that held nothing."""
    AssignmentStore().release(kernel_id)
