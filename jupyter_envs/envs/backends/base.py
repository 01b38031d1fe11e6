"""The one interface every engine implements.

The manager (``envs/manager.py``) validates input, serializes changes per environment,
registers environments and cleans up; a backend only solves and installs. Every method
may be cancelled (``asyncio.CancelledError``); the manager then restores consistency.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ..model import ChangeAction, Plan, Reporter


class Backend(ABC):
    """Solve and install conda environments."""

    #: ``rattler``, ``conda``, ``mamba`` or ``micromamba``.
    name: ClassVar[str]

    @abstractmethod
    async def create(
        self,
        prefix: Path,
        specs: Sequence[str],
        channels: Sequence[str],
        reporter: Reporter,
        *,
        dry_run: bool = False,
    ) -> Plan:
        """Create a new environment at ``prefix`` (which must not exist) from match specs."""

    @abstractmethod
    async def change(
        self,
        prefix: Path,
        action: ChangeAction,
        specs: Sequence[str],
        channels: Sequence[str],
        reporter: Reporter,
        *,
        dry_run: bool = False,
    ) -> Plan:
        """Install, update or remove packages in an existing environment."""

    @abstractmethod
    async def create_from_lock(
        self, prefix: Path, lock_text: str, reporter: Reporter, *, dry_run: bool = False
    ) -> Plan:
        """Create ``prefix`` with exactly the packages of a lock file (no solve)."""

    @abstractmethod
    async def clone(self, source: Path, prefix: Path, reporter: Reporter) -> Plan:
        """Create ``prefix`` with exactly the packages of ``source`` (works offline)."""

    @abstractmethod
    async def rollback(self, prefix: Path, revision: int, reporter: Reporter) -> Plan:
        """Bring ``prefix`` back to the exact package set it had at ``revision``."""
