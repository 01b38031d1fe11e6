"""Cost of driving a conda-family tool through the CLI backend, measured on the stand-in tool.

Run: ``python bench/bench_cli_backend.py [--runs 30]``. No conda binary exists on the test
machines, so the tool is ``tests/fakecli.py`` replaying a recorded output; the numbers are the
backend's own overhead (process start, pipes, JSON) next to a bare interpreter start, how fast
a cancel ends the tool *and* its child, and memory with 50 MB of output against a 1 MiB cap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fakecli

from jupyter_envs.envs.backends.cli import CondaBackend
from jupyter_envs.envs.model import NullReporter

DATA = fakecli.DATA
RESULT = str(DATA / "synthetic-mamba-2-create.json")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return True


async def main(runs: int, root: Path) -> None:
    state = root / "state"
    tool = fakecli.install(root / "bin")["conda"]
    os.environ["FAKECLI_DIR"] = str(state)
    backend = CondaBackend(tool, kill_grace=2.0)
    fakecli.write_plan(state, {"create": {"stdout_file": RESULT}})
    runs_s, bare_s = [], []
    for _ in range(runs):
        start = time.perf_counter()
        await backend.create(root / "p", ["libfoo"], [], NullReporter())
        runs_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import json")
        await proc.wait()
        bare_s.append(time.perf_counter() - start)
    run, bare = statistics.median(runs_s), statistics.median(bare_s)
    print(
        f"create through the backend: {run * 1000:.0f} ms median; bare interpreter start "
        f"{bare * 1000:.0f} ms; ratio {run / bare:.2f}"
    )

    latencies = []
    for i in range(max(3, runs // 3)):
        pidfile = root / f"child{i}.pid"
        fakecli.write_plan(state, {"create": {"sleep": 60, "child_pidfile": str(pidfile)}})
        task = asyncio.ensure_future(backend.create(root / "p", ["x"], [], NullReporter()))
        while not (pidfile.exists() and pidfile.read_text()):
            await asyncio.sleep(0.01)
        child = int(pidfile.read_text())
        start = time.perf_counter()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        while not _gone(child):
            await asyncio.sleep(0.001)
        latencies.append(time.perf_counter() - start)
    print(
        f"cancel until the tool and its child are gone: {statistics.median(latencies) * 1000:.0f}"
        f" ms median, {max(latencies) * 1000:.0f} ms max"
    )

    fakecli.write_plan(state, {"create": {"flood": 50_000_000, "stdout_file": RESULT}})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    capped = CondaBackend(tool, max_output=1 << 20)
    plan = await capped.create(root / "p", ["x"], [], NullReporter(), dry_run=True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert [p.name for p in plan.install] == ["libfoo"]
    print(
        f"50 MB of stdout, 1 MiB kept: {time.perf_counter() - start:.2f} s, peak RSS "
        f"{after / 1024:.0f} MiB (was {before / 1024:.0f} MiB), result still parsed"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        asyncio.run(main(args.runs, Path(tmp)))
