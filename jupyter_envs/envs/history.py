"""``conda-meta/history``, read and written in conda's own format.

A revision is a block that starts with ``==> YYYY-MM-DD HH:MM:SS <==``, followed by
``# cmd: ...``, ``# conda version: ...``, the packages removed (``-channel/subdir::dist``)
and added (``+...``), and the specs the user asked for (``# update specs: [...]``,
``# remove specs: [...]``). Revision numbers count blocks from 0, as
``conda list --revisions`` does. The packages installed at a revision are the first
block's set with every later diff applied.
"""

from __future__ import annotations

import ast
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFound
from .condaconfig import canonical_channel_name
from .model import CondaPackage, Revision

# conda compares this with its own version and complains only if the history's is newer;
# like micromamba we write an old fixed version, since no conda wrote these revisions.
CONDA_VERSION_MARKER = "3.8.0"
#: A history larger than this is not parsed (a real one is a few hundred KiB at most).
MAX_HISTORY_BYTES = 32 * 1024 * 1024

_HEADER = re.compile(r"==>\s*(.+?)\s*<==")
_CMD = re.compile(r"#\s*cmd:\s*(.+)")
_SPECS = re.compile(r"#\s*(\w+)\s*specs:\s*(.+)?")
_VERSION_RELATION = re.compile(r"^(=|==|!=|<=|>=|<|>)(?!=)")
_SPEC_NAME = re.compile(r"^\s*(?:[^:\s]+::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)")
_UPDATE_ACTIONS = frozenset({"update", "install", "create"})
_REMOVE_ACTIONS = frozenset({"remove", "uninstall"})


@dataclass
class _Block:
    date: str
    content: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def history_path(prefix: Path) -> Path:
    return Path(prefix) / "conda-meta" / "history"


def _parse(prefix: Path) -> list[_Block]:
    path = history_path(prefix)
    try:
        if path.stat().st_size > MAX_HISTORY_BYTES:
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    blocks: list[_Block] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        header = _HEADER.match(line)
        if header:
            blocks.append(_Block(header.group(1)))
        elif not blocks:
            continue  # lines before the first header: conda ignores them too
        elif line.startswith("#"):
            blocks[-1].comments.append(line)
        else:
            blocks[-1].content.append(line)
    return blocks


def _old_format_specs(text: str) -> list[str]:
    """Specs written by conda < 4.5: ``python>=3.5,jupyter >=1.0.0,<2.0``."""
    specs: list[str] = []
    for part in text.split(","):
        if _VERSION_RELATION.match(part) and specs:
            specs[-1] = f"{specs[-1]},{part}"
        else:
            specs.append(part)
    return specs


def _parse_specs(text: str) -> list[str]:
    text = text.strip()
    specs: list[str]
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return []
        specs = [str(s) for s in value] if isinstance(value, (list, tuple)) else []
    elif "[" not in text:
        specs = _old_format_specs(text)
    else:
        return []
    return [s.strip() for s in specs if s and s.strip() and not s.endswith("@")]


def _revision(number: int, block: _Block) -> Revision:
    rev = Revision(number=number, date=block.date)
    for line in block.comments:
        cmd = _CMD.match(line)
        if cmd:
            rev.command = cmd.group(1).strip()
        specs = _SPECS.match(line)
        if specs:
            action, text = specs.group(1), specs.group(2) or ""
            if action in _UPDATE_ACTIONS:
                rev.update_specs += _parse_specs(text)
            elif action in _REMOVE_ACTIONS:
                rev.remove_specs += _parse_specs(text)
    for item in sorted(block.content):
        if item.startswith("-"):
            rev.removed.append(item[1:])
        elif item.startswith("+"):
            rev.added.append(item[1:])
        else:  # a first block that lists the full state, not a diff
            rev.added.append(item)
    return rev


def read_revisions(prefix: Path) -> list[Revision]:
    """Every revision of ``prefix``'s history, oldest (number 0) first; [] if none."""
    return [_revision(i, block) for i, block in enumerate(_parse(prefix))]


def spec_name(spec: str) -> str:
    """The package name of a match spec as history stores it (channel prefix dropped)."""
    match = _SPEC_NAME.match(spec)
    name = match.group(1) if match else spec.strip()
    return name.split("[", 1)[0].lower()


def _installed_names(prefix: Path) -> set[str] | None:
    try:
        entries = os.listdir(Path(prefix) / "conda-meta")
    except OSError:
        return None
    return {e[:-5].rsplit("-", 2)[0] for e in entries if e.endswith(".json") and e.count("-") >= 2}


def requested_specs(prefix: Path, *, upto: int | None = None) -> list[str]:
    """What the user asked for, as conda's ``History.get_requested_specs_map`` sees it.

    Later update specs replace earlier ones of the same name, remove specs drop them,
    neutered specs override both, and specs whose package is no longer installed are left
    out. With ``upto``: what had been asked for as of revision ``upto`` (nothing left out).
    """
    spec_map: dict[str, str] = {}
    blocks = _parse(prefix)
    for block in blocks if upto is None else blocks[: upto + 1]:
        if not any(_CMD.match(line) for line in block.comments):
            continue  # conda only counts blocks that say which command ran
        rev = _revision(0, block)
        for spec in rev.remove_specs:
            spec_map.pop(spec_name(spec), None)
        for spec in rev.update_specs:
            spec_map[spec_name(spec)] = spec
        # conda records specs it had to relax ("neutered") to solve; they override too.
        for line in block.comments:
            specs = _SPECS.match(line)
            if specs and specs.group(1) == "neutered":
                for spec in _parse_specs(specs.group(2) or ""):
                    spec_map[spec_name(spec)] = spec
    installed = _installed_names(prefix) if upto is None else None
    if installed is None:
        return list(spec_map.values())
    return [spec for name, spec in spec_map.items() if name in installed]


def _states(blocks: Sequence[_Block]) -> list[set[str]]:
    states: list[set[str]] = []
    current: set[str] = set()
    for block in blocks:
        if not any(line.startswith(("+", "-")) for line in block.content):
            current = set(block.content)
        else:
            for item in block.content:
                if item.startswith("-"):
                    current.discard(item[1:])
                elif item.startswith("+"):
                    current.add(item[1:])
        states.append(set(current))
    return states


def revision_state(prefix: Path, revision: int) -> list[str]:
    """The packages (``channel/subdir::name-version-build``) installed at ``revision``.

    Raises NotFound for a revision the history does not have.
    """
    states = _states(_parse(prefix))
    if not 0 <= revision < len(states):
        raise NotFound(f"Revision {revision} does not exist (the history has {len(states)}).")
    return sorted(states[revision])


def dist_str(pkg: CondaPackage) -> str:
    """conda's ``channel/subdir::name-version-build`` for a package."""
    base = f"{pkg.name}-{pkg.version}-{pkg.build}"
    if not pkg.channel:
        return base
    channel = canonical_channel_name(pkg.channel)
    return f"{channel}/{pkg.subdir}::{base}" if pkg.subdir else f"{channel}::{base}"


def _clean(text: str) -> str:
    return " ".join(text.split())


def append_revision(
    prefix: Path,
    *,
    command: str,
    before: Iterable[CondaPackage],
    after: Iterable[CondaPackage],
    update_specs: Sequence[str] = (),
    remove_specs: Sequence[str] = (),
) -> int:
    """Append one revision to ``prefix``'s history and return its number.

    The diff is taken, as conda does, against the state the history already records, not
    against ``before``: so the state a reader rebuilds always equals ``after``, even for an
    environment whose history was empty (the first block then lists every package).
    ``before`` is what the caller saw; it is kept for the interface and not needed here.
    The block is written with a single append.
    """
    blocks = _parse(prefix)
    last = _states(blocks)[-1] if blocks else set()
    current = {dist_str(p) for p in after}
    lines = [
        f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==",
        f"# cmd: {_clean(command) or 'jupyter-envs'}",
        f"# conda version: {CONDA_VERSION_MARKER}",
    ]
    lines += [f"-{d}" for d in sorted(last - current)]
    lines += [f"+{d}" for d in sorted(current - last)]
    if remove_specs:
        lines.append(f"# remove specs: {[_clean(s) for s in remove_specs]!r}")
    if update_specs:
        lines.append(f"# update specs: {[_clean(s) for s in update_specs]!r}")
    path = history_path(prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell():
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                text = "\n" + text
        fh.write(text.encode("utf-8"))
    return len(blocks)
