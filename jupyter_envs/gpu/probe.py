"""Print the NVIDIA GPU inventory as JSON: ``python -m jupyter_envs.gpu.probe``.

Runs in its own process (the server starts it with a timeout) so that NVML, and the driver
library it loads, never enter the Jupyter server process. Without ``pynvml``, a driver or a
GPU it prints an inventory with no GPUs and exits 0. The output is the JSON object that
:func:`jupyter_envs.gpu.inventory.parse_inventory` reads::

    {"driver_version": "550.54.15", "cuda_version": "12.4",
     "gpus": [{"index": 0, "uuid": "GPU-...", "name": "NVIDIA H100 80GB HBM3",
               "memory_total": 85520809984, "memory_used": 1048576,
               "utilization": 3, "processes": {"4242": 536870912}}],
     "error": null}

``utilization`` is the GPU busy percentage over the driver's last sample period (null when
the driver does not report it); ``processes`` maps a process id to the GPU memory it uses,
in bytes (0 when the driver hides it).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _processes(nvml: Any, handle: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            procs = getattr(nvml, getter)(handle)
        except Exception:  # noqa: S112 - some drivers lack one of the calls
            continue
        for proc in procs:
            used = proc.usedGpuMemory or 0
            found[str(proc.pid)] = max(found.get(str(proc.pid), 0), int(used))
    return found


def _gpu(nvml: Any, index: int) -> dict[str, Any]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    try:
        utilization: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:  # not supported on every board (e.g. MIG)
        utilization = None
    return {
        "index": index,
        "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
        "name": _text(nvml.nvmlDeviceGetName(handle)),
        "memory_total": int(memory.total),
        "memory_used": int(memory.used),
        "utilization": utilization,
        "processes": _processes(nvml, handle),
    }


def probe() -> dict[str, Any]:
    """The inventory of this machine's NVIDIA GPUs, read through NVML."""
    result: dict[str, Any] = {
        "driver_version": None,
        "cuda_version": None,
        "gpus": [],
        "error": None,
    }
    try:
        import pynvml as nvml
    except ImportError:
        result["error"] = "nvidia-ml-py is not installed"
        return result
    try:
        nvml.nvmlInit()
    except Exception as exc:  # no driver / no GPU: an empty inventory
        result["error"] = f"NVML unavailable: {exc}"
        return result
    try:
        result["driver_version"] = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = int(nvml.nvmlSystemGetCudaDriverVersion())
        result["cuda_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        result["gpus"] = [_gpu(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
    except Exception as exc:  # report what failed, keep what was read
        result["error"] = f"NVML query failed: {exc}"
    finally:
        with contextlib.suppress(Exception):  # a half-initialised NVML
            nvml.nvmlShutdown()
    return result


def main() -> None:
    json.dump(probe(), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
