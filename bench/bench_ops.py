"""Latency of EnvManager operations on the embedded engine: create, clone, export.

Run: ``python bench/bench_ops.py [--runs 10]``. Everything lives in a temporary directory
(HOME, condarc, package cache, envs dir); the local test channel is built there. Each
number is the median of ``--runs`` runs, after one warm-up run that fills the package cache:

- create: ``EnvManager.create`` of python + ipykernel + hello + bar (solve, install, history
  revision, snapshot, registration), each into a new prefix;
- clone: ``EnvManager.create(clone_from=...)`` of that environment (no solve);
- export: ``EnvManager.export`` in each format (yml, from-history, lock, explicit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import localchannel
import yaml

from jupyter_envs.envs.backends.rattler import RattlerBackend
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.manager import CreateRequest, EnvManager
from jupyter_envs.envs.model import EXPORT_FORMATS, NullReporter
from jupyter_envs.envs.registry import EnvRegistry

SPECS = ("python", "ipykernel", "hello", "bar")


def isolate(root: Path) -> None:
    """Point HOME, caches and conda's configuration at ``root``."""
    for var in list(os.environ):
        if var.startswith(("CONDA_", "MAMBA_")):
            del os.environ[var]
    os.environ.update(localchannel.isolated_environ(root))
    channel = localchannel.build_channel(root / "channel")
    (root / "conda" / "envs").mkdir(parents=True)
    condarc = {
        "channels": [localchannel.channel_url(channel)],
        "envs_dirs": [str(root / "conda" / "envs")],
    }
    Path(os.environ["CONDARC"]).write_text(yaml.safe_dump(condarc))
    os.environ["CONDA_ROOT"] = str(root / "conda")


async def median_ms(work: Callable[[int], Awaitable[object]], runs: int) -> float:
    await work(-1)  # warm-up: fills the package cache
    times = []
    for i in range(runs):
        start = time.perf_counter()
        await work(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def main(runs: int) -> None:
    config = load_conda_config()
    manager = EnvManager(EnvRegistry(config), RattlerBackend())
    quiet = NullReporter()

    async def create(i: int) -> None:
        await manager.create(CreateRequest(name=f"create{i + 1}", specs=SPECS), quiet)

    source = config.envs_dirs[0] / "create0"

    async def clone(i: int) -> None:
        await manager.create(CreateRequest(name=f"clone{i + 1}", clone_from=source), quiet)

    results = [("create (4 specs, 5 packages)", await median_ms(create, runs))]
    results.append(("clone", await median_ms(clone, runs)))
    for fmt in EXPORT_FORMATS:

        async def export(i: int, fmt: str = fmt) -> None:
            await manager.export(source, fmt)  # type: ignore[arg-type]

        results.append((f"export {fmt}", await median_ms(export, runs)))
    print(f"median of {runs} runs (ms), py-rattler embedded engine, warm package cache")
    for label, ms in results:
        print(f"  {label:<30} {ms:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
        isolate(Path(tmp))
        asyncio.run(main(args.runs))
