"""Search the configured channels for packages whose name matches one query.

Only package *names* are listed for the whole channel (cached for ``ttl`` seconds); full
records are fetched for the few names that match, so a catalog is never loaded into a reply.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rattler

from ..errors import BackendError, InvalidRequest

MAX_QUERY_CHARS = 64
MAX_VERSIONS = 20
_QUERY = re.compile(r"^[a-z0-9_.\-]+$")


@dataclass(frozen=True)
class PackageHit:
    """One package name found in the channels, with its versions (newest first)."""

    name: str
    latest: str
    versions: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    subdirs: list[str] = field(default_factory=list)


def validate_query(query: object) -> str:
    """The normalized query (lower case, stripped); InvalidRequest when it cannot be a name."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("The search query 'q' is missing or empty.")
    text = query.strip().lower()
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"The search query is longer than {MAX_QUERY_CHARS} characters.")
    if not _QUERY.match(text):
        raise InvalidRequest(
            f"Search for part of a package name (letters, digits, '_', '.', '-'), not {text!r}."
        )
    return text


def _rank(name: str, query: str) -> tuple[int, int, str]:
    return (0 if name == query else 1 if name.startswith(query) else 2, len(name), name)


class PackageSearch:
    """Finds packages by name in ``channels`` (full URLs) for this platform and noarch."""

    def __init__(
        self,
        channels: Sequence[str],
        *,
        cache_dir: Path | None = None,
        limit: int = 50,
        ttl: float = 300.0,
    ) -> None:
        self.channels = tuple(channels)
        self.limit = max(1, limit)
        self.ttl = ttl
        self._platforms = [rattler.Subdir.current(), rattler.Subdir("noarch")]
        self._gateway = rattler.Gateway(cache_dir=cache_dir)
        self._names: tuple[float, list[str]] | None = None
        self._lock = asyncio.Lock()

    def clear(self) -> None:
        """Forget cached names and repodata (the channels changed)."""
        self._names = None
        for url in self.channels:
            self._gateway.clear_repodata_cache(rattler.Channel(url))

    async def _all_names(self) -> list[str]:
        async with self._lock:
            if self._names is None or time.monotonic() - self._names[0] >= self.ttl:
                if self._names is not None:
                    self.clear()  # the channels may have changed: read them again
                try:
                    found = await self._gateway.names(self._sources(), self._platforms)
                except Exception as exc:  # rattler's own gateway errors
                    raise BackendError(f"Could not read the channels: {exc}") from exc
                self._names = (time.monotonic(), sorted({n.normalized for n in found}))
            return self._names[1]

    def _sources(self) -> list[rattler.Channel]:
        return [rattler.Channel(url) for url in self.channels]

    async def search(self, query: str, *, limit: int | None = None) -> list[PackageHit]:
        """Packages whose name contains ``query``: exact match first, then prefix matches."""
        text = validate_query(query)
        if not self.channels:
            return []
        count = self.limit if limit is None else max(1, min(limit, self.limit))
        matches = [n for n in await self._all_names() if text in n]
        names = sorted(matches, key=lambda n: _rank(n, text))[:count]
        if not names:
            return []
        try:
            found = await self._gateway.query(
                self._sources(), self._platforms, names, recursive=False
            )
        except Exception as exc:  # rattler's own gateway errors
            raise BackendError(f"Could not read the channels: {exc}") from exc
        records: dict[str, list[rattler.RepoDataRecord]] = {}
        for per_source in found:
            for record in per_source:
                records.setdefault(record.name.normalized, []).append(record)
        return [self._hit(name, records[name]) for name in names if name in records]

    @staticmethod
    def _hit(name: str, records: list[rattler.RepoDataRecord]) -> PackageHit:
        ordered = sorted(records, key=lambda r: (r.version, r.build_number), reverse=True)
        versions: list[str] = []
        for record in ordered:
            if str(record.version) not in versions:
                versions.append(str(record.version))
        return PackageHit(
            name=name,
            latest=versions[0],
            versions=versions[:MAX_VERSIONS],
            channels=sorted({str(r.channel) for r in records if r.channel}),
            subdirs=sorted({r.subdir for r in records}),
        )
