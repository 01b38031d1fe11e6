"""The GPU list the REST route and the panel show: GPUs with the kernels that use them.

A kernel uses a GPU when it holds it (an assignment) or when one of its processes has
memory on it (NVML's per-process list, mapped to kernel ids through the kernel processes'
pids and, for a process a kernel started, its parent chain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .assign import Assignment
from .inventory import Inventory

_MAX_DEPTH = 32


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def owner_kernel(pid: int, kernel_pids: Mapping[int, str]) -> str | None:
    """The kernel id whose process is ``pid`` or one of its ancestors (Linux ``/proc``)."""
    current: int | None = pid
    for _ in range(_MAX_DEPTH):
        if current is None or current <= 1:
            return None
        if current in kernel_pids:
            return kernel_pids[current]
        current = _parent(current)
    return None


def gpu_overview(
    inventory: Inventory,
    assignments: Sequence[Assignment],
    kernel_pids: Mapping[int, str],
    local_kernels: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON body of ``GET jupyter-envs/gpus``.

    ``kernel_pids`` maps the pids of this server's kernels to their ids; ``local_kernels``
    lists this server's kernel ids (other kernels belong to other servers). Blocking
    (reads ``/proc``).
    """
    pids = dict(kernel_pids)
    for held in assignments:
        if held.kernel_pid is not None:
            pids.setdefault(held.kernel_pid, held.kernel_id)
    local = set(local_kernels) | set(kernel_pids.values())
    gpus = []
    for gpu in inventory.gpus:
        kernels: dict[str, dict[str, Any]] = {}
        for held in assignments:
            if gpu.uuid in held.devices:
                kernels[held.kernel_id] = {
                    "kernel_id": held.kernel_id,
                    "exclusive": held.exclusive,
                    "memory": None,
                    "this_server": held.kernel_id in local,
                }
        processes = []
        for pid, memory in sorted(gpu.processes.items()):
            kernel_id = owner_kernel(pid, pids)
            processes.append({"pid": pid, "memory": memory, "kernel_id": kernel_id})
            if kernel_id is None:
                continue
            entry = kernels.setdefault(
                kernel_id,
                {
                    "kernel_id": kernel_id,
                    "exclusive": False,
                    "memory": None,
                    "this_server": kernel_id in local,
                },
            )
            entry["memory"] = (entry["memory"] or 0) + memory
        gpus.append(
            {
                "index": gpu.index,
                "uuid": gpu.uuid,
                "name": gpu.name,
                "memory_total": gpu.memory_total,
                "memory_used": gpu.memory_used,
                "utilization": gpu.utilization,
                "kernels": sorted(kernels.values(), key=lambda k: str(k["kernel_id"])),
                "processes": processes,
            }
        )
    return {
        "driver_version": inventory.driver_version,
        "cuda_version": inventory.cuda_version,
        "error": inventory.error,
        "gpus": gpus,
    }
