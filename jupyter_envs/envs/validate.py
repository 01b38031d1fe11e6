"""Input checks that run before anything touches disk. Each raises InvalidRequest."""

from __future__ import annotations

import re
from collections.abc import Iterable

import rattler

from ..errors import InvalidRequest

MAX_SPEC_LENGTH = 256
MAX_SPECS = 500
MAX_NAME_LENGTH = 128
# conda refuses these characters in environment names (conda.base.context.validate_prefix_name).
_NAME_FORBIDDEN = set("/ :#\\\"'<>|?*&;$`!{}()[]~%") | {chr(c) for c in range(32)} | {"\x7f"}
_PACKAGE_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]*$")
RESERVED_NAMES = frozenset({"base", "root"})


def validate_env_name(name: object) -> str:
    """A new environment's name, by conda's rules (no path separators, spaces, ``:``, ``#``)."""
    if not isinstance(name, str) or not name:
        raise InvalidRequest("An environment name must be a non-empty string.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"Environment name is longer than {MAX_NAME_LENGTH} characters.")
    bad = sorted(set(name) & _NAME_FORBIDDEN)
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise InvalidRequest(
            f"Environment name {name!r} contains characters conda refuses: {shown}."
        )
    if name in {".", ".."} or name.startswith(("-", ".")):
        raise InvalidRequest(f"Environment name {name!r} may not start with '-' or '.'.")
    if name.lower() in RESERVED_NAMES:
        raise InvalidRequest(f"{name!r} is reserved for the root environment.")
    return name


def validate_spec(spec: object) -> str:
    """One conda match spec, returned stripped. Anything that reads as an option is refused."""
    if not isinstance(spec, str):
        raise InvalidRequest(f"A package spec must be a string, not {type(spec).__name__}.")
    text = spec.strip()
    if not text:
        raise InvalidRequest("A package spec is empty.")
    if len(text) > MAX_SPEC_LENGTH:
        raise InvalidRequest(f"Package spec is longer than {MAX_SPEC_LENGTH} characters.")
    if text.startswith("-"):
        raise InvalidRequest(f"{text!r} looks like a command-line option, not a package spec.")
    if any(ord(c) < 32 or c in ";`$&\\" for c in text):
        raise InvalidRequest(f"Package spec {text!r} contains characters a spec never has.")
    try:
        match = rattler.MatchSpec(text)
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise InvalidRequest(f"Invalid package spec {text!r}: {exc}") from exc
    name = match.name.normalized if match.name is not None else ""
    if not _PACKAGE_NAME.match(name):
        raise InvalidRequest(f"Package spec {text!r} does not name a package.")
    return text


def validate_specs(specs: object, *, allow_empty: bool = False) -> list[str]:
    """A list of match specs (see :func:`validate_spec`)."""
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise InvalidRequest("'specs' must be a list of strings.")
    if not specs and not allow_empty:
        raise InvalidRequest("At least one package spec is needed.")
    if len(specs) > MAX_SPECS:
        raise InvalidRequest(f"At most {MAX_SPECS} package specs at once.")
    return [validate_spec(s) for s in specs]


def spec_names(specs: Iterable[str]) -> list[str]:
    """The package names of already validated specs."""
    return [rattler.MatchSpec(s).name.normalized for s in specs]
