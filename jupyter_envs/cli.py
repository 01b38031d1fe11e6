"""``jupyter envs``: list, create, clone, export, change, roll back and delete environments.

The same core as the server extension (no server needed), for people on a machine over
SSH without a browser. Progress goes to stderr; results (lists, exported files) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from .envs.envfile import MAX_FILE_BYTES
from .envs.manager import CreateRequest, EnvManager
from .envs.model import (
    CHANGE_ACTIONS,
    EXPORT_FORMATS,
    ChangeAction,
    EnvInfo,
    ExportFormat,
    Plan,
    prefix_from_id,
    to_json,
)
from .envs.wiring import BACKEND_KINDS, BackendKind, build_manager
from .errors import EnvsError, InvalidRequest, NotFound

#: EnvsApp settings the command reads from the Jupyter server's config files.
SHARED_SETTINGS = (
    "backend",
    "channels",
    "extra_envs_dirs",
    "protected_prefixes",
    "allow_protected_changes",
    "read_only",
)
DELETE_NEEDS_YES = "Refusing to delete {prefix} without confirmation: pass --yes."


class ProgressBar:
    """A :class:`~jupyter_envs.envs.model.Reporter` drawing one bar line on a terminal.

    Not on a terminal, it writes one line per phase instead of redrawing.
    """

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._drawn = False
        self._phase: str | None = None

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False

    def log(self, line: str) -> None:
        self._clear()
        self.stream.write(f"{line}\n")
        self.stream.flush()

    def progress(self, phase: str, done: int, total: int | None) -> None:
        if not self.tty:
            if phase != self._phase:
                self._phase = phase
                self.stream.write(f"{phase}...\n")
                self.stream.flush()
            return
        if total:
            filled = min(self.width, self.width * done // total)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"{phase:<14} [{bar}] {done}/{total}"
        else:
            text = f"{phase:<14} {done}"
        self.stream.write(f"\r\x1b[2K{text}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _read_file(path: str) -> str:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise InvalidRequest(f"{path} is larger than {MAX_FILE_BYTES} bytes.")
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"Cannot read {path}: {exc.strerror or exc}") from exc


def find_env(manager: EnvManager, ref: str, envs: Sequence[EnvInfo]) -> Path:
    """The prefix of an environment given by name, path or id."""
    if "/" in ref or ref.startswith("."):
        return Path(manager.registry.get(Path(ref).expanduser().absolute()).prefix)
    named = [env for env in envs if env.name == ref]
    if len(named) == 1:
        return Path(named[0].prefix)
    if len(named) > 1:
        where = ", ".join(env.prefix for env in named)
        raise InvalidRequest(f"Several environments are named {ref!r} ({where}): give a path.")
    try:
        return Path(manager.registry.get(prefix_from_id(ref)).prefix)
    except ValueError:
        raise NotFound(f"No environment named {ref!r} (see `jupyter envs list`).") from None


def _print_plan(plan: Plan, out: TextIO) -> None:
    for pkg in plan.install:
        out.write(f"  + {pkg.dist}\n")
    for change in plan.change:
        out.write(f"  ~ {change.old.dist} -> {change.new.dist}\n")
    for pkg in plan.remove:
        out.write(f"  - {pkg.dist}\n")
    if plan.empty:
        out.write("  (nothing to do)\n")


def _print_envs(envs: Sequence[EnvInfo], out: TextIO) -> None:
    rows = [("NAME", "PYTHON", "PACKAGES", "KERNEL", "PREFIX")]
    for env in envs:
        flag = " (protected)" if env.protected else ""
        rows.append(
            (
                env.name,
                env.python_version or "-",
                str(env.package_count),
                "yes" if env.has_kernel else "no",
                env.prefix + flag,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        out.write("  ".join([*cells, row[4]]).rstrip() + "\n")


def _target(args: argparse.Namespace) -> dict[str, Any]:
    return {"name": args.name, "prefix": args.prefix}


async def run_command(args: argparse.Namespace, manager: EnvManager, out: TextIO) -> int:
    """Carry out one parsed command; EnvsError propagates to :func:`main`."""
    bar = ProgressBar(sys.stderr)
    try:
        return await _dispatch(args, manager, out, bar)
    finally:
        bar.close()


async def _dispatch(
    args: argparse.Namespace, manager: EnvManager, out: TextIO, bar: ProgressBar
) -> int:
    envs = await asyncio.to_thread(manager.registry.list, refresh=True)
    command = args.command
    if command == "list":
        if args.json:
            out.write(json.dumps(to_json(envs), indent=1) + "\n")
        else:
            _print_envs(envs, out)
        return 0
    if command in ("create", "clone"):
        if command == "clone":
            req = CreateRequest(**_target(args), clone_from=find_env(manager, args.source, envs))
        else:
            req = CreateRequest(
                **_target(args),
                specs=tuple(args.specs),
                environment_yml=_read_file(args.file) if args.file else None,
                lockfile=_read_file(args.lock) if args.lock else None,
                channels=tuple(args.channel),
            )
        prefix = await asyncio.to_thread(manager.check_create, req)
        if getattr(args, "dry_run", False):
            _print_plan(await manager.preview_create(req), out)
            return 0
        info = await manager.create(req, bar)
        bar.close()
        out.write(f"Created {info.name} at {info.prefix or prefix}\n")
        return 0
    prefix = find_env(manager, args.env, envs)
    if command == "export":
        export = await manager.export(prefix, cast(ExportFormat, args.format))
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, export.text, encoding="utf-8")
        else:
            out.write(export.text)
        return 0
    if command == "revisions":
        for rev in await manager.revisions(prefix):
            out.write(f"{rev.number:>4}  {rev.date}  +{len(rev.added)} -{len(rev.removed)}\n")
        return 0
    if command in CHANGE_ACTIONS:
        action = cast(ChangeAction, command)
        await asyncio.to_thread(manager.check_change, prefix, action, args.specs)
        if args.dry_run:
            plan = await manager.preview_change(prefix, action, args.specs, channels=args.channel)
        else:
            plan = await manager.change(prefix, action, args.specs, bar, channels=args.channel)
        bar.close()
        _print_plan(plan, out)
        return 0
    if command == "rollback":
        plan = await manager.rollback(prefix, args.revision, bar)
        bar.close()
        _print_plan(plan, out)
        return 0
    if command == "delete":
        await asyncio.to_thread(manager.check_delete, prefix)
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidRequest(DELETE_NEEDS_YES.format(prefix=prefix))
            answer = await asyncio.to_thread(input, f"Delete the environment at {prefix}? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                return 1
        await manager.delete(prefix, bar)
        bar.close()
        out.write(f"Deleted {prefix}\n")
        return 0
    raise InvalidRequest(f"Unknown command {command!r}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter envs", description="Manage conda environments (the jupyter-envs core)."
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_KINDS,
        default=None,
        help="engine (default: EnvsApp.backend of the server's config, else auto)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def target(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("-n", "--name", help="name of the new environment")
        group.add_argument("-p", "--prefix", help="full path of the new environment")

    def channels(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c", "--channel", action="append", default=[], help="channel (repeatable)"
        )

    p = sub.add_parser("list", help="list environments")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("create", help="create an environment")
    target(p)
    p.add_argument("specs", nargs="*", help="package specs, e.g. 'python=3.11' numpy")
    p.add_argument("-f", "--file", help="an environment.yml")
    p.add_argument("--lock", help="a lock file (exact packages, no solve)")
    p.add_argument("--dry-run", action="store_true", help="show the plan only")
    channels(p)
    p = sub.add_parser("clone", help="copy an environment")
    p.add_argument("source", help="environment to copy: name, path or id")
    target(p)
    p = sub.add_parser("export", help="print an environment as a file")
    p.add_argument("env", help="name, path or id")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="yml")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    for action in CHANGE_ACTIONS:
        p = sub.add_parser(action, help=f"{action} packages")
        p.add_argument("env", help="name, path or id")
        p.add_argument("specs", nargs="+", help="package specs")
        p.add_argument("--dry-run", action="store_true", help="show the plan only")
        channels(p)
    p = sub.add_parser("revisions", help="list an environment's revisions")
    p.add_argument("env", help="name, path or id")
    p = sub.add_parser("rollback", help="go back to a revision")
    p.add_argument("env", help="name, path or id")
    p.add_argument("revision", type=int, help="revision number (see `revisions`)")
    p = sub.add_parser("delete", help="delete an environment")
    p.add_argument("env", help="name, path or id")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return parser


def server_settings() -> dict[str, Any]:
    """The ``EnvsApp`` section of the Jupyter server's config files (jupyter_server_config
    .py / .json on Jupyter's config path), so the command sees the same channels,
    environment directories and protections as the server."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Application, Config

    merged = Config()
    found = Application._load_config_files("jupyter_server_config", path=jupyter_config_path())
    for config, _filename in found:
        merged.merge(config)
    section = merged.get("EnvsApp", {})
    return {key: section[key] for key in SHARED_SETTINGS if key in section}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter-envs`` (``jupyter envs``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = server_settings()
        manager = build_manager(
            backend=cast(BackendKind, args.backend or settings.get("backend", "auto")),
            channels=settings.get("channels", ()),
            extra_envs_dirs=settings.get("extra_envs_dirs", ()),
            protected=settings.get("protected_prefixes", ()),
            allow_protected_changes=bool(settings.get("allow_protected_changes", False)),
            read_only=bool(settings.get("read_only", False)),
        )
        return asyncio.run(run_command(args, manager, sys.stdout))
    except EnvsError as exc:
        sys.stderr.write(f"jupyter envs: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("jupyter envs: cancelled\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
