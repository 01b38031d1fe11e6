"""Write environment kernelspecs to a kernels folder, so tools outside the server see them.

nbconvert, papermill and ``jupyter kernelspec list`` read kernelspecs from Jupyter's data
paths only. The written ``kernel.json`` files keep ``metadata.kernel_provisioner``, so a kernel
started from them is activated by the same provisioner. Only kernelspecs this module wrote
(``conda-*`` folders naming our provisioner) are ever deleted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec

from .provisioner import PROVISIONER_NAME

_RESOURCES = ("kernel.js", "kernel.css")


def _ours(kernel_json: Path) -> bool:
    try:
        data = json.loads(kernel_json.read_text(encoding="utf-8"))
        provisioner = data["metadata"]["kernel_provisioner"]["provisioner_name"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return provisioner == PROVISIONER_NAME and "conda_env_path" in data["metadata"]


class KernelspecWriter:
    """Keeps ``destination`` in step with the environment kernelspecs it is given."""

    def __init__(self, destination: Path, *, log: logging.Logger | Any = None) -> None:
        self.destination = destination
        self.log = log or logging.getLogger(__name__)
        self._written: dict[str, str] = {}

    def sync(self, specs: Mapping[str, KernelSpec]) -> None:
        """Write new or changed kernelspecs and delete ours that are no longer listed."""
        try:
            self.destination.mkdir(parents=True, exist_ok=True)
            for name, spec in specs.items():
                self._write(name, spec)
            self._remove_stale(set(specs))
        except OSError as exc:
            self.log.warning(
                "[jupyter-envs] cannot write kernelspecs to %s: %s", self.destination, exc
            )

    def _write(self, name: str, spec: KernelSpec) -> None:
        text = json.dumps(spec.to_dict(), indent=1, sort_keys=True)
        target = self.destination / name
        kernel_json = target / "kernel.json"
        if self._written.get(name) == text and kernel_json.is_file():
            return
        target.mkdir(exist_ok=True)
        source = Path(spec.resource_dir)
        if source.is_dir() and source != target:
            for entry in source.iterdir():
                if entry.is_file() and (entry.name.startswith("logo-") or entry.name in _RESOURCES):
                    shutil.copyfile(entry, target / entry.name)
        tmp = kernel_json.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, kernel_json)
        self._written[name] = text

    def _remove_stale(self, keep: set[str]) -> None:
        for entry in self.destination.iterdir():
            if entry.name in keep or not entry.name.startswith("conda-"):
                continue
            if entry.is_dir() and _ours(entry / "kernel.json"):
                shutil.rmtree(entry, ignore_errors=True)
                self._written.pop(entry.name, None)
