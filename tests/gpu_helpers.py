"""Shared pieces of the GPU tests: a substituted GPU inventory and real environments.

Every test that uses ``write_inventory`` replaces the NVML probe with a JSON file through
``JUPYTER_ENVS_GPU_INVENTORY``: this machine has no GPU, and that variable is the only
stand-in the project allows.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import localchannel

# Least-loaded order: 1 (idle, little memory), 2 (idle, more memory), 3, 0 (busy).
GPUS: list[dict[str, Any]] = [
    {
        "index": 0,
        "uuid": "GPU-00000000-aaaa-4000-8000-000000000000",
        "name": "Fake A100",
        "memory_total": 80 << 30,
        "memory_used": 40 << 30,
        "utilization": 90,
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
    {
        "index": 2,
        "uuid": "GPU-22222222-cccc-4000-8000-000000000002",
        "name": "Fake A100",
        "memory_total": 80 << 30,
        "memory_used": 10 << 30,
        "utilization": 0,
        "processes": {},
    },
    {
        "index": 3,
        "uuid": "GPU-33333333-dddd-4000-8000-000000000003",
        "name": "Fake A100",
        "memory_total": 80 << 30,
        "memory_used": 2 << 30,
        "utilization": 50,
        "processes": {},
    },
]
UUIDS = [g["uuid"] for g in GPUS]


def write_inventory(
    path: Path,
    gpus: list[dict[str, Any]] | None = None,
    *,
    cuda_version: str | None = "12.4",
    driver_version: str = "550.54.15",
) -> Path:
    """Write a substituted inventory (the probe's JSON format) to ``path``."""
    data = {
        "driver_version": driver_version if cuda_version else None,
        "cuda_version": cuda_version,
        "gpus": GPUS if gpus is None else gpus,
        "error": None,
    }
    path.write_text(json.dumps(data))
    return path


def install_env(channel: Path, specs: list[str], prefix: Path) -> Path:
    """A real environment from the local channel (``CONDA_OVERRIDE_CUDA`` sets ``__cuda``)."""

    # Its own thread and loop: callable from sync and async tests alike.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, localchannel.install(channel, specs, prefix)).result()
    return prefix


def write_notebook(path: Path, gpu: Any | None = None) -> Path:
    """A minimal valid notebook, with ``metadata.jupyter_envs.gpu`` when ``gpu`` is given."""
    metadata: dict[str, Any] = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    if gpu is not None:
        metadata["jupyter_envs"] = {"gpu": gpu}
    nb = {"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path
