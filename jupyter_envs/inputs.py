"""Turn REST request bodies and query arguments into typed requests, or raise InvalidRequest.

Only the shape is checked here (JSON types, known fields, sizes); what the values mean
(names, specs, files, paths) is checked by the manager before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from .envs.manager import CreateRequest
from .envs.model import CHANGE_ACTIONS, EXPORT_FORMATS, ChangeAction, ExportFormat, prefix_from_id
from .errors import InvalidRequest

CREATE_FIELDS = frozenset(
    {"name", "prefix", "specs", "environment_yml", "lockfile", "clone_from", "channels"}
)
CHANGE_FIELDS = frozenset({"action", "specs", "channels"})


def parse_json_object(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object; an empty body is an empty object."""
    if len(raw) > max_bytes:
        raise InvalidRequest(f"The request body is larger than {max_bytes} bytes.")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


def _only(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise InvalidRequest(f"Unknown field(s) {', '.join(unknown)}; expected some of: {known}.")


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string, not {type(value).__name__}.")
    return value


def _str_list(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"'{key}' must be a list of strings.")
    return tuple(value)


def _channels(body: Mapping[str, Any]) -> tuple[str, ...]:
    # Only the shape: the manager validates channels (one rule for REST and the CLI).
    return _str_list(body, "channels")


def env_prefix(ident: str) -> Path:
    """The prefix an environment id names (InvalidRequest for a malformed id)."""
    try:
        return prefix_from_id(ident)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


def create_request(body: Mapping[str, Any]) -> CreateRequest:
    """A create (or create preview) request: ``name`` or ``prefix`` and one source."""
    _only(body, CREATE_FIELDS)
    clone = _opt_str(body, "clone_from")
    return CreateRequest(
        name=_opt_str(body, "name"),
        prefix=_opt_str(body, "prefix"),
        specs=_str_list(body, "specs"),
        environment_yml=_opt_str(body, "environment_yml"),
        lockfile=_opt_str(body, "lockfile"),
        clone_from=env_prefix(clone) if clone is not None else None,
        channels=_channels(body),
    )


def change_request(body: Mapping[str, Any]) -> tuple[ChangeAction, list[str], tuple[str, ...]]:
    """``(action, specs, channels)`` of a packages (or packages preview) request."""
    _only(body, CHANGE_FIELDS)
    action = body.get("action")
    if action not in CHANGE_ACTIONS:
        choices = ", ".join(CHANGE_ACTIONS)
        raise InvalidRequest(f"'action' must be one of {choices}, not {action!r:.80}.")
    return cast(ChangeAction, action), list(_str_list(body, "specs")), _channels(body)


def export_format(value: str) -> ExportFormat:
    if value not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise InvalidRequest(f"Unknown export format {value!r:.40}; use one of {choices}.")
    return value


def int_argument(value: str | None, name: str, default: int, *, maximum: int = 10**9) -> int:
    """A non-negative integer query argument."""
    if value is None or value == "":
        return default
    if not value.isdigit() or len(value) > 10:
        raise InvalidRequest(f"'{name}' must be a non-negative integer, not {value!r:.40}.")
    return min(int(value), maximum)


def flag_argument(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes"}
