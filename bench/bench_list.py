"""How fast EnvRegistry lists 100 environments, cold and warm, and reads one in detail.

Run: ``python bench/bench_list.py [--envs 100] [--runs 50]``. Everything lives in a
temporary directory (HOME included). One environment is installed with py-rattler from the
local test channel; the others are hard-linked copies of it, which look the same to the
registry (``conda-meta``, site-packages, kernelspecs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import localchannel

from jupyter_envs.envs.condaconfig import CondaConfig
from jupyter_envs.envs.registry import EnvRegistry

SPECS = ["python", "ipykernel", "hello", "bar", "envvars"]


def build_envs(root: Path, count: int) -> Path:
    """``count`` environments under ``root/envs``; returns the first one."""
    channel = localchannel.build_channel(root / "channel")

    first = root / "envs" / "env000"
    asyncio.run(localchannel.install(channel, SPECS, first, cache_dir=root / "cache"))
    for i in range(1, count):
        shutil.copytree(first, root / "envs" / f"env{i:03d}", symlinks=True,
                        copy_function=os.link)
    return first


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        root = Path(tmp)
        os.environ["HOME"] = str(root / "home")  # environments.txt stays in here
        first = build_envs(root, args.envs)
        config = CondaConfig(root_prefixes=(root,), envs_dirs=(root / "envs",))
        found = len(EnvRegistry(config).list())
        assert found == args.envs, found

        cold = median_ms(lambda: EnvRegistry(config).list(), args.runs)
        registry = EnvRegistry(config)
        registry.list()
        warm = median_ms(registry.list, args.runs)

        def cold_details() -> object:
            registry.invalidate(first)
            return registry.details(first)

        details_cold = median_ms(cold_details, args.runs)
        registry.details(first)
        details_warm = median_ms(lambda: registry.details(first), args.runs)
        size = median_ms(lambda: EnvRegistry(config).details(first, with_size=True), 5)

        packages = len(registry.details(first).packages)
        print(f"{args.envs} environments of {packages} packages, median of {args.runs} runs")
        print(f"  list() cold (new registry)    {cold:8.2f} ms")
        print(f"  list() warm                   {warm:8.2f} ms")
        print(f"  details() one env, cold       {details_cold:8.2f} ms")
        print(f"  details() one env, warm       {details_warm:8.2f} ms")
        print(f"  details(with_size) one env    {size:8.2f} ms")
        print(f"  warm/cold list ratio          {warm / cold:8.3f}")


if __name__ == "__main__":
    main()
