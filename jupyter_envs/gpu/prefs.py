"""GPU choices: what they are, and where the defaults per environment and notebook live.

A choice is one of ``all`` (every GPU, the default), ``none`` (CPU only), ``devices``
(specific GPUs by index or UUID) or ``auto`` (``count`` least-loaded GPUs, held exclusively
while the kernel runs). As JSON: ``{"mode": "auto", "count": 1}``,
``{"mode": "devices", "devices": ["0", "GPU-5c1d..."]}``.

Precedence at kernel start: the notebook's ``metadata.jupyter_envs.gpu`` wins over the
environment's default (``<jupyter data dir>/jupyter_envs/gpu.json``, keyed by prefix),
which wins over ``all``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from jupyter_core.paths import jupyter_data_dir

from ..errors import InvalidRequest

GpuMode = Literal["all", "none", "devices", "auto"]
GPU_MODES: tuple[GpuMode, ...] = get_args(GpuMode)
METADATA_KEY = "jupyter_envs"
MAX_DEVICES = 64

Source = Literal["notebook", "environment", "default"]


@dataclass(frozen=True)
class GpuChoice:
    """Which GPUs a kernel sees. ``devices`` only for ``devices``; ``count`` only for ``auto``."""

    mode: GpuMode = "all"
    devices: tuple[str, ...] = ()
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in notebooks and ``gpu.json``."""
        if self.mode == "devices":
            return {"mode": "devices", "devices": list(self.devices)}
        if self.mode == "auto":
            return {"mode": "auto", "count": self.count}
        return {"mode": self.mode}


DEFAULT_CHOICE = GpuChoice()


def parse_choice(data: Any) -> GpuChoice:
    """A :class:`GpuChoice` from its JSON form. Raises InvalidRequest with what is wrong."""
    if not isinstance(data, dict):
        raise InvalidRequest("a GPU choice must be an object with a 'mode'")
    mode = data.get("mode")
    if mode not in GPU_MODES:
        raise InvalidRequest(f"GPU mode must be one of {', '.join(GPU_MODES)}, not {mode!r}")
    if mode == "devices":
        devices = data.get("devices")
        if not isinstance(devices, list) or not devices:
            raise InvalidRequest("GPU mode 'devices' needs a non-empty 'devices' list")
        if len(devices) > MAX_DEVICES:
            raise InvalidRequest(f"at most {MAX_DEVICES} GPUs may be listed")
        names: list[str] = []
        for device in devices:
            if isinstance(device, bool) or not isinstance(device, (int, str)):
                raise InvalidRequest(f"a GPU is named by its index or UUID, not {device!r}")
            text = str(device).strip()
            if not text or len(text) > 100 or not all(c.isalnum() or c in "-_:" for c in text):
                raise InvalidRequest(f"not a GPU index or UUID: {str(device)[:100]!r}")
            if isinstance(device, int) and device < 0:
                raise InvalidRequest(f"a GPU index is >= 0, not {device}")
            if text not in names:
                names.append(text)
        return GpuChoice("devices", devices=tuple(names))
    if mode == "auto":
        count = data.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DEVICES:
            raise InvalidRequest(f"GPU 'count' must be an integer from 1 to {MAX_DEVICES}")
        return GpuChoice("auto", count=count)
    return GpuChoice(mode)


# -- per-environment defaults -------------------------------------------------------------


def env_prefs_path() -> Path:
    """The JSON file holding each environment's default choice, keyed by prefix."""
    return Path(jupyter_data_dir()) / "jupyter_envs" / "gpu.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # an unreadable file is replaced on the next write
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            # Keep the mode of a file shared on purpose (e.g. a group-writable GPU state file).
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _key(prefix: Path) -> str:
    # One key whether the prefix arrives through a symlink or not.
    return os.path.realpath(prefix)


def get_env_choice(prefix: Path) -> GpuChoice | None:
    """The environment's stored default, or None when it has none (or it is unreadable)."""
    stored = _read_json(env_prefs_path()).get(_key(prefix))
    if stored is None:
        return None
    try:
        return parse_choice(stored)
    except InvalidRequest:
        return None


def set_env_choice(prefix: Path, choice: GpuChoice | None) -> None:
    """Store (or with None, forget) the environment's default choice."""
    path = env_prefs_path()
    with _locked(path):
        data = _read_json(path)
        if choice is None:
            data.pop(_key(prefix), None)
        else:
            data[_key(prefix)] = choice.to_json()
        write_json_atomic(path, data)


# -- per-notebook choices -----------------------------------------------------------------


def notebook_choice_from_metadata(metadata: Any) -> GpuChoice | None:
    """The choice in a notebook's ``metadata`` (``metadata.jupyter_envs.gpu``), if any.

    Raises InvalidRequest when the entry exists but is malformed.
    """
    if not isinstance(metadata, dict):
        return None
    ours = metadata.get(METADATA_KEY)
    if not isinstance(ours, dict) or ours.get("gpu") is None:
        return None
    return parse_choice(ours["gpu"])


def notebook_file(notebook_path: str, root_dir: Path | None) -> Path | None:
    """The ``.ipynb`` file behind ``JPY_SESSION_NAME``: absolute, or relative to ``root_dir``."""
    if not notebook_path or not notebook_path.endswith(".ipynb"):
        return None  # a console or an unsaved "Untitled" session: no notebook to read
    path = Path(notebook_path)
    if not path.is_absolute():
        if root_dir is None:
            return None
        path = root_dir / notebook_path.lstrip("/")
    return path


def read_notebook_choice(notebook_path: str | None, root_dir: Path | None) -> GpuChoice | None:
    """The choice stored in the notebook, or None (no notebook, not saved yet, no entry).

    Blocking (reads the file). Raises InvalidRequest when the stored choice is malformed.
    """
    path = notebook_file(notebook_path or "", root_dir)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            notebook = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(notebook, dict):
        return None
    return notebook_choice_from_metadata(notebook.get("metadata"))


def resolve_choice(
    prefix: Path, notebook_path: str | None, root_dir: Path | None
) -> tuple[GpuChoice, Source, list[str]]:
    """The choice for a kernel, where it came from, and warnings about ignored settings."""
    warnings: list[str] = []
    try:
        from_notebook = read_notebook_choice(notebook_path, root_dir)
    except InvalidRequest as exc:
        warnings.append(f"The notebook's GPU setting is ignored: {exc}")
        from_notebook = None
    if from_notebook is not None:
        return from_notebook, "notebook", warnings
    from_env = get_env_choice(prefix)
    if from_env is not None:
        return from_env, "environment", warnings
    return DEFAULT_CHOICE, "default", warnings
