"""Helpers shared by the operation tests (tests/test_ops_*.py)."""

from __future__ import annotations

from pathlib import Path

from jupyter_envs.envs.backends.rattler import RattlerBackend
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.manager import EnvManager
from jupyter_envs.envs.model import Plan
from jupyter_envs.envs.registry import EnvRegistry, environments_txt


def make_manager(*, read_only: bool = False) -> EnvManager:
    """A manager over the test's isolated conda configuration (see conftest ``isolated``)."""
    config = load_conda_config()
    return EnvManager(
        EnvRegistry(config), RattlerBackend(), channels=config.channels, read_only=read_only
    )


class Recorder:
    """A Reporter that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.steps: list[tuple[str, int, int | None]] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def progress(self, phase: str, done: int, total: int | None) -> None:
        self.steps.append((phase, done, total))


def dists(prefix: Path) -> set[str]:
    """``name-version-build`` of every conda-meta record of ``prefix``."""
    return {p.name[: -len(".json")] for p in (prefix / "conda-meta").glob("*.json")}


def tree(path: Path) -> dict[str, int]:
    """Every file under ``path`` with its size (a cheap picture of "nothing changed")."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.lstat().st_size for p in sorted(path.rglob("*"))}


def registered() -> list[str]:
    """The lines of ``~/.conda/environments.txt``."""
    path = environments_txt()
    return path.read_text().split() if path.exists() else []


def apply_plan(before: set[str], plan: Plan) -> set[str]:
    """The dists a plan says ``before`` turns into."""
    after = set(before)
    after -= {p.dist for p in plan.remove}
    after -= {c.old.dist for c in plan.change}
    after |= {p.dist for p in plan.install}
    after |= {c.new.dist for c in plan.change}
    return after
