#!/usr/bin/env python3
"""A stand-in for conda / mamba / micromamba that replays recorded ``--json`` outputs.

No conda-family binary can exist on the test machines (no conda channel is reachable and
the tools are not on PyPI), so the CLI backend's process handling is tested against this
script, installed on PATH under the tool's name by :func:`install`. It appends its argv (and
the text of any ``--file``) as one JSON line to ``$FAKECLI_DIR/argv.jsonl``, then follows
``$FAKECLI_DIR/plan.json``: a mapping from subcommand (or ``"*"``) to a step:

``stdout_file`` / ``stdout`` / ``stderr``: what to print (a file under tests/data/cli);
``returncode``; ``sleep`` seconds before printing; ``child_pidfile``: spawn a sleeping child
in the same process group and write its pid there (``child_keeps_output``: the child
inherits stdout and stderr); ``ignore_signals``: ignore SIGINT and
SIGTERM; ``drop_records``: glob patterns of ``<prefix>/conda-meta`` records to delete (a
transaction cut off half way), then ``sleep_after`` seconds;
``flood``: print that many bytes of filler to stdout first (and ``flood_stderr`` to stderr);
``make_prefix``: create ``<prefix>/conda-meta`` like a real create would;
``copy_records_from``: copy that environment's ``conda-meta/*.json`` into the prefix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "cli"
TOOLS = ("conda", "mamba", "micromamba")


def install(bin_dir: Path, names: tuple[str, ...] = TOOLS) -> dict[str, Path]:
    """Copy this script into ``bin_dir`` under each tool name; return name -> path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    text = Path(__file__).read_text(encoding="utf-8").split("\n", 1)[1]
    paths = {}
    for name in names:
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{text}", encoding="utf-8")
        path.chmod(0o755)
        paths[name] = path
    return paths


def write_plan(state: Path, steps: dict[str, dict[str, Any]]) -> None:
    """Set what the next runs of the fake tool do (see the module docstring)."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "plan.json").write_text(json.dumps(steps), encoding="utf-8")


def calls(state: Path) -> list[dict[str, Any]]:
    """Every recorded run: ``{"argv": [...], "file": text or None}``."""
    log = state / "argv.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
    return None


def main() -> int:
    state = Path(os.environ["FAKECLI_DIR"])
    argv = sys.argv[1:]
    file_arg = _option(argv, "--file", "-f")
    entry = {
        "tool": Path(sys.argv[0]).name,
        "argv": argv,
        "file": Path(file_arg).read_text(encoding="utf-8") if file_arg else None,
        "file_mode": oct(Path(file_arg).stat().st_mode & 0o777) if file_arg else None,
        "dir_mode": oct(Path(file_arg).parent.stat().st_mode & 0o777) if file_arg else None,
    }
    with (state / "argv.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    plan = json.loads((state / "plan.json").read_text(encoding="utf-8"))
    sub = argv[0] if argv else ""
    step = plan.get(sub, plan.get("*", {}))
    if step.get("ignore_signals"):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    if step.get("child_pidfile"):
        keep = step.get("child_keeps_output")  # like a daemon started by a post-link script
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"],
            stdout=None if keep else subprocess.DEVNULL,
            stderr=None if keep else subprocess.DEVNULL,
        )
        Path(step["child_pidfile"]).write_text(str(child.pid), encoding="utf-8")
    if step.get("flood"):
        sys.stdout.write("x" * int(step["flood"]) + "\n")
    if step.get("flood_stderr"):
        sys.stderr.write("log line\n" * (int(step["flood_stderr"]) // 9 + 1))
    sys.stdout.flush()
    time.sleep(float(step.get("sleep", 0)))
    prefix = _option(argv, "--prefix", "-p")
    if step.get("make_prefix") and prefix:
        (Path(prefix) / "conda-meta").mkdir(parents=True, exist_ok=True)
    if step.get("copy_records_from") and prefix:
        # What a successful install leaves: package records in conda-meta.
        meta = Path(prefix) / "conda-meta"
        meta.mkdir(parents=True, exist_ok=True)
        for record in (Path(step["copy_records_from"]) / "conda-meta").glob("*.json"):
            shutil.copy(record, meta / record.name)
    if step.get("drop_records") and prefix:
        # A transaction cut off half way: some packages already unlinked.
        for pattern in step["drop_records"]:
            for record in (Path(prefix) / "conda-meta").glob(pattern):
                record.unlink()
    time.sleep(float(step.get("sleep_after", 0)))
    if step.get("stderr"):
        sys.stderr.write(step["stderr"])
    if step.get("stdout_file"):
        with (DATA / step["stdout_file"]).open("rb") as src:
            shutil.copyfileobj(src, sys.stdout.buffer)
    if step.get("stdout"):
        sys.stdout.write(step["stdout"])
    sys.stdout.flush()
    return int(step.get("returncode", 0))


if __name__ == "__main__":
    sys.exit(main())
