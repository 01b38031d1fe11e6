"""Find conda environments on disk, summarize them, and decide what may be changed.

Discovery never runs a subprocess: root prefixes, every envs dir's subdirectories holding
``conda-meta/``, and ``~/.conda/environments.txt``. An environment's identity is its
resolved prefix path; its name is only a label, as ``conda env list`` shows it.
Summaries are cached and re-read when the environment's ``conda-meta`` (or history, or
kernels directory) changes on disk. All methods block on the file system: call them from
a thread (``asyncio.to_thread``) in the server.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import Conflict, Forbidden, InvalidRequest, NotFound
from . import history, reader
from .condaconfig import CondaConfig, environments_txt, read_environments_txt
from .model import EnvDetails, EnvInfo, env_id
from .validate import validate_env_name


def _resolve(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _absolute(prefix: Path | str) -> str:
    """``prefix`` resolved (symlinks, ``..``); InvalidRequest unless absolute and clean."""
    text = os.fspath(prefix)
    if "\x00" in text or not os.path.isabs(text):
        raise InvalidRequest(f"An environment prefix must be an absolute path: {text[:300]!r}.")
    return os.path.realpath(text)


def _is_env(prefix: Path | str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta"))


@dataclass
class _Cached:
    stamp: tuple[int, int | None, int | None]
    info: EnvInfo
    details: EnvDetails | None = None
    #: site-packages mtimes when ``details`` was read (pip changes them, not conda-meta).
    details_key: tuple[int | None, ...] = ()
    size: int | None = None


class EnvRegistry:
    """The environments this server can see, and the rules for changing them."""

    def __init__(
        self,
        config: CondaConfig,
        *,
        protected: Sequence[Path] = (),
        allow_protected_changes: bool = False,
    ) -> None:
        self.config = config
        self.allow_protected_changes = allow_protected_changes
        self._roots = tuple(_resolve(p) for p in config.root_prefixes)
        self._envs_dirs = tuple(_resolve(p) for p in config.envs_dirs)
        own = _resolve(Path(sys.prefix))
        extra = [own] if _is_env(own) else []
        self._protected = frozenset([*self._roots, *extra, *(_resolve(p) for p in protected)])
        # The listing hot path works on strings: pathlib costs more than the stat calls.
        self._root_strs = tuple(str(p) for p in self._roots)
        self._envs_dir_order = tuple(str(p) for p in self._envs_dirs)
        self._envs_dir_strs = frozenset(self._envs_dir_order)
        self._protected_strs = frozenset(str(p) for p in self._protected)
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._dir_listing: dict[str, tuple[int, list[str]]] = {}
        self._txt: tuple[tuple[int, int], list[str]] | None = None

    # -- discovery ---------------------------------------------------------------------

    def _envs_dir_children(self, envs_dir: str) -> list[str]:
        """Resolved subdirectories of ``envs_dir``, cached on the dir's mtime.

        Whether each holds an environment is checked on every listing (by its stamp), since
        ``conda-meta/`` appears inside a child without changing the envs dir's mtime.
        """
        try:
            mtime = os.stat(envs_dir).st_mtime_ns
        except OSError:
            return []
        cached = self._dir_listing.get(envs_dir)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        children: list[str] = []
        try:
            with os.scandir(envs_dir) as it:
                for entry in it:
                    if entry.name.startswith(".") or not entry.is_dir():
                        continue
                    children.append(
                        os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                    )
        except OSError:
            return []
        children.sort()
        self._dir_listing[envs_dir] = (mtime, children)
        return children

    def _txt_entries(self) -> list[str]:
        """Resolved prefixes listed in ``environments.txt``, cached on its mtime and size."""
        path = environments_txt()
        try:
            info = os.stat(path)
        except OSError:
            return []
        key = (info.st_mtime_ns, info.st_size)
        if self._txt is not None and self._txt[0] == key:
            return self._txt[1]
        entries = read_environments_txt(path)
        self._txt = (key, entries)
        return entries

    def _candidates(self) -> dict[str, None]:
        """Every resolved prefix that may hold an environment, in discovery order."""
        found: dict[str, None] = dict.fromkeys(self._root_strs)
        for envs_dir in self._envs_dir_order:
            found.update(dict.fromkeys(self._envs_dir_children(envs_dir)))
        found.update(dict.fromkeys(self._txt_entries()))
        return found

    def _label(self, prefix: str) -> str:
        if self._root_strs and prefix == self._root_strs[0]:
            return "base"
        parent, name = os.path.split(prefix)
        if prefix not in self._root_strs and parent in self._envs_dir_strs:
            return name
        return prefix

    def _summarize(self, prefix: str) -> EnvInfo | None:
        """The cached summary of ``prefix`` (resolved), re-read if it changed; None if gone."""
        current = reader.stamp(prefix)
        if current is None:
            self._cache.pop(prefix, None)
            return None
        cached = self._cache.get(prefix)
        if cached is not None and cached.stamp == current:
            return cached.info
        path = Path(prefix)
        summary = reader.read_summary(path)
        info = EnvInfo(
            id=env_id(path),
            name=self._label(prefix),
            prefix=prefix,
            is_root=prefix in self._root_strs,
            protected=prefix in self._protected_strs,
            python_version=summary.python_version,
            package_count=summary.package_count,
            has_kernel=summary.has_kernel,
            last_modified=summary.last_modified,
        )
        self._cache[prefix] = _Cached(stamp=current, info=info)
        return info

    def list(self, *, refresh: bool = False) -> list[EnvInfo]:
        """Every environment found, roots first, then by name; vanished ones left out."""
        with self._lock:
            if refresh:
                self.invalidate()
            infos = [i for i in map(self._summarize, self._candidates()) if i is not None]
            if len(self._cache) > len(infos):
                for gone in set(self._cache) - {i.prefix for i in infos}:
                    del self._cache[gone]
        infos.sort(key=lambda i: (not i.is_root, i.name.startswith("/"), i.name, i.prefix))
        return [copy.copy(i) for i in infos]

    def get(self, prefix: Path) -> EnvInfo:
        """The summary of one listed environment; NotFound for anything else."""
        path = _absolute(prefix)
        with self._lock:
            info = self._summarize(path) if path in self._candidates() else None
        if info is None:
            raise NotFound(f"No environment at {prefix}.")
        return copy.copy(info)

    def details(self, prefix: Path, *, with_size: bool = False) -> EnvDetails:
        """Everything the details view shows; ``with_size`` also walks the prefix (slow)."""
        info = self.get(prefix)
        path = Path(info.prefix)
        site_key = tuple(reader.mtime_ns(p) for p in reader.site_packages_dirs(path))
        with self._lock:
            cached = self._cache.get(info.prefix)
            found = None
            if cached is not None and cached.details_key == site_key:
                found = cached.details
        if found is None:
            found = self._read_details(info)
            with self._lock:
                cached = self._cache.get(info.prefix)
                if cached is not None and cached.info == info:
                    if cached.details_key != site_key:
                        cached.size = None  # pip changed site-packages: the size too
                    cached.details, cached.details_key = found, site_key
        result = replace(
            found,
            packages=list(found.packages),
            pip_packages=list(found.pip_packages),
            requested_specs=list(found.requested_specs),
            kernelspecs=list(found.kernelspecs),
        )
        if with_size:
            result.size_bytes = self._size(info)
        return result

    def _read_details(self, info: EnvInfo) -> EnvDetails:
        path = Path(info.prefix)
        records = reader.read_records(path)
        requested = history.requested_specs(path)
        requested_names = {history.spec_name(s) for s in requested}
        packages = [
            reader.package_from_record(
                r,
                requested=str(r["name"]) in requested_names or reader.record_requested(r),
                config=self.config,
            )
            for r in records
        ]
        return EnvDetails(
            **vars(replace(info)),
            packages=packages,
            pip_packages=reader.pip_packages(path, reader.owned_dist_infos(records)),
            requested_specs=requested,
            kernelspecs=reader.kernelspec_names(path),
            revision_count=len(history.read_revisions(path)),
        )

    def _size(self, info: EnvInfo) -> int:
        with self._lock:
            cached = self._cache.get(info.prefix)
            if cached is not None and cached.info == info and cached.size is not None:
                return cached.size
        size = reader.disk_usage(Path(info.prefix))
        with self._lock:
            cached = self._cache.get(info.prefix)
            if cached is not None and cached.info == info:
                cached.size = size
        return size

    def invalidate(self, prefix: Path | None = None) -> None:
        """Forget cached summaries: of ``prefix``, or of everything."""
        with self._lock:
            if prefix is None:
                self._cache.clear()
                self._dir_listing.clear()
                self._txt = None
            else:
                path = os.path.realpath(prefix)
                self._cache.pop(path, None)
                self._dir_listing.pop(os.path.dirname(path), None)

    # -- rules ---------------------------------------------------------------------------

    def check_allowed(self, prefix: Path) -> Path:
        """``prefix`` resolved, if it is a root prefix or directly inside an envs dir.

        Symlinks and ``..`` are resolved first, so neither leads outside. Raises Forbidden
        (InvalidRequest for a relative path).
        """
        path = Path(_absolute(prefix))
        if path in self._roots or path.parent in self._envs_dirs:
            return path
        raise Forbidden(f"{prefix} is outside the directories where environments may live.")

    def is_protected(self, prefix: Path) -> bool:
        """Whether ``prefix`` is a root prefix, the server's own, or configured protected."""
        return _resolve(Path(prefix)) in self._protected

    def check_mutable(self, prefix: Path) -> Path:
        """:meth:`check_allowed`, and refuse protected environments (Forbidden)."""
        path = self.check_allowed(prefix)
        if path in self._protected and not self.allow_protected_changes:
            raise Forbidden(f"The environment at {path} is protected and cannot be changed.")
        return path

    def writable_envs_dir(self) -> Path:
        """The first envs dir that exists writable or can be created; Forbidden if none."""
        for envs_dir in self._envs_dirs:
            probe = envs_dir
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
                return envs_dir
        raise Forbidden("No writable directory for new environments.")

    def new_prefix(self, name: str | None = None, prefix: str | None = None) -> Path:
        """Where a new environment named ``name`` (or at ``prefix``) would be created.

        Raises InvalidRequest (both or neither given, bad name, relative path), Forbidden
        (outside the envs dirs) or Conflict (something already exists there, or an
        environment of that name exists in another envs dir).
        """
        if (name is None) == (prefix is None):
            raise InvalidRequest("Give either a name or a prefix for the new environment.")
        if name is not None:
            validate_env_name(name)
            target = self.writable_envs_dir() / name
            for envs_dir in self._envs_dirs:
                if _is_env(envs_dir / name):
                    raise Conflict(f"An environment named {name!r} already exists.")
        else:
            if not isinstance(prefix, str) or not prefix.strip():
                raise InvalidRequest("A prefix must be a non-empty path.")
            raw = Path(os.path.expanduser(prefix))
            if "\x00" in prefix or not raw.is_absolute():
                raise InvalidRequest(f"A prefix must be an absolute path: {prefix}.")
            if ".." in raw.parts:
                raise InvalidRequest(f"A prefix may not contain '..': {prefix}.")
            validate_env_name(raw.name)
            target = _resolve(raw.parent) / raw.name
            target = self.check_allowed(target)
        if os.path.lexists(target):
            raise Conflict(f"{target} already exists.")
        return target

    # -- environments.txt ----------------------------------------------------------------

    def register(self, prefix: Path) -> None:
        """Add ``prefix`` to ``~/.conda/environments.txt`` as conda does (idempotent)."""
        path = environments_txt()
        line = os.path.normpath(str(prefix))
        with self._lock:
            try:
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
            except FileNotFoundError:
                text = ""
            if line in (ln.strip() for ln in text.splitlines()):
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            lead = "\n" if text and not text.endswith("\n") else ""
            with open(path, "a", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(f"{lead}{line}\n")

    def unregister(self, prefix: Path) -> None:
        """Drop ``prefix`` from ``environments.txt``; other lines are kept as they are."""
        path = environments_txt()
        line = os.path.normpath(str(prefix))
        with self._lock:
            try:
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
            except FileNotFoundError:
                return
            lines = text.splitlines(keepends=True)
            kept = [ln for ln in lines if ln.strip() != line]
            if len(kept) == len(lines):
                return
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".environments.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
                    fh.write("".join(kept))
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
            self._txt = None
