"""The variables that activating a conda environment sets, computed once and cached.

``rattler.shell.activate`` writes a bash activation script for a prefix (PATH, CONDA_PREFIX,
CONDA_SHLVL, ``conda-meta/state`` variables, ``etc/conda/activate.d/*.sh``). The script runs
once in ``bash`` and the environment it leaves behind is read back and kept as a difference
against the server's environment. The difference is reused until the environment changes on
disk (the modification times of ``conda-meta``, ``conda-meta/state`` and
``etc/conda/activate.d``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from traitlets import Float, Unicode
from traitlets.config import SingletonConfigurable

from ..errors import BackendError

# Variables that bash itself sets or changes; never part of an activation.
_SHELL_VARS = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"})
_Stamp = tuple[int, int, int]


@dataclass(frozen=True)
class Activation:
    """What activating one environment changes, relative to the environment it started from.

    ``set``: variables to set (PATH excluded); ``unset``: variables the activation removed;
    ``path_added`` / ``path_removed``: PATH entries activation put in front / took out.
    """

    prefix: Path
    set: Mapping[str, str]
    unset: frozenset[str]
    path_added: tuple[str, ...]
    path_removed: frozenset[str]

    def apply(self, env: Mapping[str, str]) -> dict[str, str]:
        """A new environment: ``env`` with this activation applied (``env`` is not changed).

        Idempotent: applying twice gives the same result as applying once.
        """
        out = {k: v for k, v in env.items() if k not in self.unset}
        out.update(self.set)
        old_path = [p for p in env.get("PATH", "").split(os.pathsep) if p]
        rest = [p for p in old_path if p not in self.path_removed and p not in self.path_added]
        out["PATH"] = os.pathsep.join([*self.path_added, *rest])
        return out


def conda_env_name(prefix: Path) -> str:
    """CONDA_DEFAULT_ENV when the kernelspec names none: the folder name inside an ``envs``
    directory, else the path. (Discovery passes the registry's label, which knows roots.)"""
    return prefix.name if prefix.parent.name == "envs" else str(prefix)


def change_stamp(prefix: Path) -> _Stamp:
    """Modification times that change whenever what activation reads changes."""

    def mtime(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return -1

    return (
        mtime(prefix / "conda-meta"),
        mtime(prefix / "conda-meta" / "state"),
        mtime(prefix / "etc" / "conda" / "activate.d"),
    )


def _diff(prefix: Path, before: Mapping[str, str], after: Mapping[str, str]) -> Activation:
    changed = {
        k: v
        for k, v in after.items()
        if k not in _SHELL_VARS and k != "PATH" and before.get(k) != v
    }
    unset = frozenset(k for k in before if k not in after and k not in _SHELL_VARS)
    old_path = [p for p in before.get("PATH", "").split(os.pathsep) if p]
    new_path = [p for p in after.get("PATH", "").split(os.pathsep) if p]
    added: list[str] = []
    for entry in new_path:
        if entry in old_path:
            break  # the rest is what was there before
        if entry not in added:
            added.append(entry)
    removed = frozenset(p for p in old_path if p not in new_path)
    return Activation(prefix, changed, unset - {"PATH"}, tuple(added), removed)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.killpg(pid, signal.SIGKILL)


def _parse_env0(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            out[os.fsdecode(key)] = os.fsdecode(value)
    return out


class ActivationCache(SingletonConfigurable):
    """Activated environment variables per prefix, computed once and kept until it changes.

    One instance per process (``ActivationCache.instance()``), shared by every kernel;
    configure it like any Jupyter object (``c.ActivationCache.timeout = 60``).
    """

    timeout = Float(
        30.0,
        config=True,
        help="""Seconds the activation script (including ``etc/conda/activate.d`` scripts)
        may run before it is killed and the kernel starts the fallback kernel instead.""",
    )

    bash = Unicode(
        "",
        config=True,
        help="""The bash executable that runs activation scripts. Empty (the default): the
        first ``bash`` on the server's PATH.""",
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._cache: dict[Path, tuple[_Stamp, Activation]] = {}

    def invalidate(self, prefix: Path | None = None) -> None:
        """Forget one prefix's activation, or every one."""
        if prefix is None:
            self._cache.clear()
        else:
            self._cache.pop(Path(prefix), None)

    async def get(
        self, prefix: Path, *, env_name: str, base_env: Mapping[str, str] | None = None
    ) -> Activation:
        """The activation of ``prefix``; ``env_name`` becomes CONDA_DEFAULT_ENV.

        ``base_env`` (default: the server's environment) is where activation starts from.
        Raises :class:`~jupyter_envs.errors.BackendError` when the script fails or times out.
        """
        prefix = Path(prefix)
        stamp = change_stamp(prefix)  # three stat calls: cheaper than a thread hop
        hit = self._cache.get(prefix)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        activation = await self._compute(prefix, env_name, dict(base_env or os.environ))
        self._cache[prefix] = (stamp, activation)
        return activation

    async def _compute(self, prefix: Path, env_name: str, base: dict[str, str]) -> Activation:
        from rattler.shell import ActivationVariables, PathModificationBehavior, Shell, activate

        if not (prefix / "conda-meta").is_dir():
            raise BackendError(f"{prefix} is not a conda environment (no conda-meta).")
        variables = ActivationVariables(
            current_prefix=Path(base["CONDA_PREFIX"]) if base.get("CONDA_PREFIX") else None,
            current_path=[p for p in base.get("PATH", "").split(os.pathsep) if p],
            path_modification_behavior=PathModificationBehavior.Replace,
        )
        try:
            result = await asyncio.to_thread(activate, prefix, variables, Shell.bash)
        except Exception as exc:  # rattler raises its own exception types
            raise BackendError(f"Cannot activate {prefix}: {exc}") from exc
        script = result.script + "\nenv -0\n"
        bash = self.bash or shutil.which("bash", path=base.get("PATH")) or "/bin/bash"
        proc = await asyncio.create_subprocess_exec(
            bash,
            "--noprofile",
            "--norc",
            "-c",
            script,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=base,
            cwd=str(prefix),
            start_new_session=True,  # its own process group: a timeout kills the scripts too
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            raise BackendError(
                f"Activating {prefix} took longer than {self.timeout:g} s (activate.d scripts)."
            ) from None
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip()[-2000:]
            raise BackendError(f"Activating {prefix} failed (exit {proc.returncode}): {tail}")
        after = _parse_env0(out)
        after["CONDA_DEFAULT_ENV"] = env_name
        after["CONDA_PROMPT_MODIFIER"] = f"({env_name}) "
        return _diff(prefix, base, after)
