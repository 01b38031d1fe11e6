#!/usr/bin/env python
"""CI check: every request handler in jupyter_envs is authenticated and authorized.

A class counts as a handler when it (or a base class found in the scanned files) derives
from a class whose name ends in ``Handler``. Each of its HTTP methods must carry an
authentication decorator (``web.authenticated``, or ``ws_authenticated`` on a WebSocket)
and ``authorized``; the class (or a scanned base) must set ``auth_resource``.

Usage: ``python scripts/check_auth.py [PACKAGE_DIR]`` (default: jupyter_envs next to this
script). Exit status 1 and one line per problem when anything is missing.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})
AUTHENTICATE = frozenset({"authenticated", "ws_authenticated"})
AUTHORIZE = frozenset({"authorized"})
_NONE: frozenset[str] = frozenset()


@dataclass
class ClassInfo:
    where: str
    bases: list[str]
    has_resource: bool
    methods: dict[str, tuple[int, set[str]]] = field(default_factory=dict)


def _name(node: ast.expr) -> str:
    """``web.authenticated`` -> ``authenticated``; ``authorized("x")`` -> ``authorized``."""
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


def _scan(path: Path, root: Path, classes: dict[str, ClassInfo]) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        info = ClassInfo(
            where=f"{path.relative_to(root.parent)}:{node.lineno} {node.name}",
            bases=[_name(b) for b in node.bases],
            has_resource=False,
        )
        for item in node.body:
            targets: list[ast.expr] = []
            if isinstance(item, ast.Assign):
                targets = list(item.targets)
            elif isinstance(item, ast.AnnAssign):
                targets = [item.target]
            if any(isinstance(t, ast.Name) and t.id == "auth_resource" for t in targets):
                info.has_resource = True
            is_method = isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            if is_method and item.name in HTTP_METHODS:
                decorators = {_name(d) for d in item.decorator_list}
                info.methods[item.name] = (item.lineno, decorators)
        classes[node.name] = info


def _is_handler(name: str, classes: dict[str, ClassInfo], seen: frozenset[str] = _NONE) -> bool:
    info = classes.get(name)
    if info is None or name in seen:
        return False
    return any(
        base.endswith("Handler") or _is_handler(base, classes, seen | {name}) for base in info.bases
    )


def _has_resource(name: str, classes: dict[str, ClassInfo], seen: frozenset[str] = _NONE) -> bool:
    info = classes.get(name)
    if info is None or name in seen:
        return False
    return info.has_resource or any(_has_resource(b, classes, seen | {name}) for b in info.bases)


def check(package: Path) -> list[str]:
    """Problems found in the Python files under ``package`` (empty when all is well)."""
    classes: dict[str, ClassInfo] = {}
    for path in sorted(package.rglob("*.py")):
        _scan(path, package, classes)
    problems: list[str] = []
    for name, info in classes.items():
        if not _is_handler(name, classes):
            continue
        if info.methods and not _has_resource(name, classes):
            problems.append(f"{info.where}: no auth_resource on the class or its bases")
        for method, (line, decorators) in sorted(info.methods.items()):
            missing = []
            if not decorators & AUTHENTICATE:
                missing.append("@web.authenticated")
            if not decorators & AUTHORIZE:
                missing.append("@authorized")
            if missing:
                needed = ", ".join(missing)
                problems.append(f"{info.where}.{method} (line {line}): missing {needed}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    package = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "jupyter_envs"
    problems = check(package)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_auth: {len(problems)} unprotected handler method(s) or class(es)")
        return 1
    print(f"check_auth: every handler in {package.name} is authenticated and authorized")
    return 0


if __name__ == "__main__":
    sys.exit(main())
