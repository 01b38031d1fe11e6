"""Read the ``--json`` output of conda, mamba 2 and micromamba.

conda streams NUL-separated JSON progress records before its final JSON document; mamba 2 and
micromamba print one JSON document at the end. Both describe a transaction as
``actions.LINK`` / ``actions.UNLINK`` (conda 4.3 wrapped ``actions`` in a list; conda 4.2 used
``channel::name-version-build`` strings). Errors are JSON objects too: conda's carry
``exception_name`` and ``message``; mamba's carry ``success: false`` and ``solver_problems``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import BackendError, EnvsError, NotFound, SolveError
from ..model import CondaPackage, PackageChange, Plan

#: conda exceptions that mean "these specs cannot be satisfied".
SOLVE_EXCEPTIONS = frozenset(
    {
        "UnsatisfiableError",
        "LibMambaUnsatisfiableError",
        "SpecsConfigurationConflictError",
        "ResolvePackageNotFound",
        "PackagesNotFoundError",
        "PackageNotFoundError",
        "NoPackagesFoundError",
        "InvalidMatchSpec",
        "InvalidSpec",
    }
)
#: conda exceptions that mean "no such environment / package".
NOT_FOUND_EXCEPTIONS = frozenset(
    {
        "EnvironmentLocationNotFound",
        "DirectoryNotACondaEnvironmentError",
        "EnvironmentNameNotFound",
        "CondaEnvironmentNotFoundError",
    }
)
MAX_MESSAGE = 4000
_DIST = re.compile(r"^(?:(?P<channel>[^:]+)::)?(?P<dist>\S+?)(?:\s.*)?$")


@dataclass(frozen=True)
class Progress:
    """One progress record: ``done`` of ``total`` in ``phase`` (``label`` names the item)."""

    phase: str
    done: int
    total: int | None
    label: str = ""
    finished: bool = False


def split_records(text: str) -> list[str]:
    """The JSON documents in ``text``: NUL-separated, or concatenated (mamba 1 printed two)."""
    chunks = [c.strip() for c in text.split("\x00")]
    docs: list[str] = []
    decoder = json.JSONDecoder()
    for chunk in chunks:
        pos = 0
        while pos < len(chunk):
            start = chunk.find("{", pos)
            if start < 0:
                break
            try:
                _, end = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                # Not JSON from here (a stray log line): try the next brace.
                pos = start + 1
                continue
            docs.append(chunk[start:end])
            pos = end
    return docs


def parse_documents(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text`` (see :func:`split_records`)."""
    out = []
    for doc in split_records(text):
        value = json.loads(doc)
        if isinstance(value, dict):
            out.append(value)
    return out


def parse_progress(record: Mapping[str, Any]) -> Progress | None:
    """A conda progress record (``fetch`` / ``name`` + ``progress`` / ``maxval``), else None."""
    if "progress" not in record or "maxval" not in record or "actions" in record:
        return None
    try:
        progress = float(record["progress"])
        maxval = float(record["maxval"])
    except (TypeError, ValueError):
        return None
    finished = bool(record.get("finished"))
    if "fetch" in record:
        # conda >= 4.6: {"fetch": "name-1.0 | 11.9 MB | ", "maxval": 1, "progress": 0.08}
        label = str(record["fetch"]).split("|")[0].strip()
        scale = 100 / maxval if maxval else 0
        return Progress("download", round(progress * scale), 100, label, finished)
    label = str(record.get("name") or "")
    return Progress("link", int(progress), int(maxval) or None, label, finished)


def final_document(docs: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The result document: the last one that is not a progress record."""
    result = None
    for doc in docs:
        if parse_progress(doc) is None:
            result = doc
    return result


def package_from_record(record: object) -> CondaPackage:
    """A :class:`CondaPackage` from one ``LINK`` / ``UNLINK`` entry of any known tool."""
    if isinstance(record, str):
        # conda 4.2: "channel::name-version-build 1 None"
        match = _DIST.match(record.strip())
        if not match:
            raise BackendError(f"Unreadable package entry in the tool's output: {record[:200]!r}")
        name, version, build = _split_dist(match["dist"])
        return CondaPackage(name, version, build, channel=match["channel"] or "")
    if not isinstance(record, Mapping):
        raise BackendError(f"Unreadable package entry in the tool's output: {record!r:.200}")
    fields = (
        record.get("name"),
        record.get("version"),
        record.get("build_string", record.get("build")),
    )
    if all(isinstance(f, str) for f in fields):
        name, version, build = (str(f) for f in fields)
    else:
        dist = record.get("dist_name")
        if not isinstance(dist, str):
            raise BackendError(f"Package entry without name/version/build: {dict(record)!r:.200}")
        name, version, build = _split_dist(dist)
    size = record.get("size")
    return CondaPackage(
        name=name,
        version=version,
        build=build,
        build_number=_int(record.get("build_number")),
        channel=str(record.get("channel") or ""),
        subdir=str(record.get("subdir") or record.get("platform") or ""),
        url=str(record.get("url") or ""),
        size=size if isinstance(size, int) else None,
    )


def _split_dist(dist: str) -> tuple[str, str, str]:
    for suffix in (".tar.bz2", ".conda"):
        dist = dist.removesuffix(suffix)
    parts = dist.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        raise BackendError(f"Not a name-version-build string: {dist[:200]!r}")
    return parts[0], parts[1], parts[2]


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def plan_from_result(result: Mapping[str, Any]) -> Plan:
    """The :class:`Plan` described by a result document's ``actions`` (empty when none)."""
    actions: Any = result.get("actions") or {}
    if isinstance(actions, list):  # conda 4.3 wrapped them in a list
        merged: dict[str, list[Any]] = {}
        for part in actions:
            if isinstance(part, Mapping):
                for key in ("LINK", "UNLINK"):
                    merged.setdefault(key, []).extend(part.get(key) or [])
        actions = merged
    if not isinstance(actions, Mapping):
        raise BackendError("The tool's JSON output has an unreadable 'actions' member.")
    link = [package_from_record(r) for r in actions.get("LINK") or []]
    unlink = [package_from_record(r) for r in actions.get("UNLINK") or []]
    return plan_from_lists(link, unlink)


def plan_from_lists(link: Iterable[CondaPackage], unlink: Iterable[CondaPackage]) -> Plan:
    """Pair packages linked and unlinked under one name into changes."""
    linked = {p.name: p for p in link}
    plan = Plan()
    for old in unlink:
        new = linked.pop(old.name, None)
        if new is None:
            plan.remove.append(old)
        elif (new.version, new.build) != (old.version, old.build):
            plan.change.append(PackageChange(old.name, old, new))
        # The same build unlinked and relinked (a channel switch) is no change for the user.
    plan.install.extend(linked.values())
    plan.install.sort(key=lambda p: p.name)
    plan.remove.sort(key=lambda p: p.name)
    plan.change.sort(key=lambda c: c.name)
    return plan


def is_error(result: Mapping[str, Any]) -> bool:
    """Whether a result document reports a failure."""
    return (
        "exception_name" in result
        or "error" in result
        or "solver_problems" in result
        or result.get("success") is False
    )


def error_from_result(
    result: Mapping[str, Any] | None, tool: str, *, stderr: str = "", removing: bool = False
) -> EnvsError:
    """The :mod:`jupyter_envs.errors` exception for a failed run, with the tool's message.

    ``removing``: a missing package then means "not installed" (NotFound), not a solve error.
    """
    stderr_tail = _tail(stderr)
    if not result:
        detail = _clip(stderr_tail or "no output")
        if _unsolvable(detail):
            return SolveError(f"{tool} could not solve the environment:\n{detail}")
        return BackendError(f"{tool} failed: {detail}")
    problems = result.get("solver_problems")
    if problems:
        lines = [str(p) for p in problems] if isinstance(problems, list) else [str(problems)]
        return SolveError(_clip(f"{tool} could not solve the environment:\n" + "\n".join(lines)))
    name = str(result.get("exception_name") or result.get("error_type") or "")
    message = _message(result) or stderr_tail or f"{tool} failed ({name or 'unknown error'})"
    packages = result.get("packages")
    if isinstance(packages, list):
        missing = [str(p) for p in packages if str(p) not in message]
        if missing:
            message += "\nPackages not found: " + ", ".join(missing)
    message = _clip(message)
    if name in NOT_FOUND_EXCEPTIONS:
        return NotFound(message)
    if name in {"PackagesNotFoundError", "PackageNotFoundError"} and removing:
        return NotFound(message)
    if name in SOLVE_EXCEPTIONS or name.startswith("Unsatisfiable"):
        return SolveError(message)
    if _unsolvable(message):
        return SolveError(message)
    return BackendError(message)


def _unsolvable(text: str) -> bool:
    lowered = text.lower()
    return "could not solve" in lowered or "encountered problems while solving" in lowered


def _message(result: Mapping[str, Any]) -> str:
    for key in ("message", "error"):
        value = result.get(key)
        if isinstance(value, str) and value.strip() and value.strip() != "...":
            return value.strip()
    records = result.get("log_records")  # mamba >= 2.8: every log line as JSON
    if isinstance(records, list):
        texts = [
            str(r.get("message") if isinstance(r, Mapping) else r)
            for r in records
            if not isinstance(r, Mapping) or r.get("level") in {"error", "critical", None}
        ]
        return "\n".join(t for t in texts if t)
    return ""


def _tail(text: str, lines: int = 20) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
