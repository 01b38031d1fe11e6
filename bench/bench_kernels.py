"""Kernel start-to-ready through EnvProvisioner vs a plain ipykernel, and kernel discovery time.

Run: ``python bench/bench_kernels.py [--runs 15] [--envs 100]``. Everything lives in a
temporary directory (HOME, conda config, runtime dir). One environment (python, ipykernel,
envvars) is installed with py-rattler from the local test channel; its ``bin/python`` is the
interpreter running this script, so both kernels run the same interpreter:

- plain: kernelspec ``[<env>/bin/python, -m, ipykernel_launcher, -f, {connection_file}]``
  with jupyter_client's default LocalProvisioner (TCP);
- provisioner: the ``conda-env-bench-py`` kernelspec from EnvKernelSpecManager, started by
  EnvProvisioner (activation from its cache, GPU grant, IPC transport by default).

Start-to-ready = ``await km.start_kernel()`` until ``kc.wait_for_ready()`` returns. Runs
alternate between the two so machine load affects both alike; medians are printed, and the
ratio provisioner / plain (target <= 1.05). Then discovery over ``--envs`` environments
(hard-linked copies of the first): ``find_kernel_specs()`` cold (a new manager and registry)
and warm (the same manager again). Also the time spent before the kernel process starts
(``km.pre_start_kernel()``: activation, GPU grant, connection file), which is where the two
differ; the rest of start-to-ready is the same interpreter doing the same work.
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
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from traitlets.config import Config

SPECS = ["python", "ipykernel", "envvars"]


def isolate(root: Path) -> None:
    """Point HOME, Jupyter's dirs and conda's config into ``root``."""
    for var in [v for v in os.environ if v.startswith(("CONDA_", "MAMBA_"))]:
        del os.environ[var]
    os.environ.update(localchannel.isolated_environ(root))
    os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "rt")  # short: IPC socket paths
    os.environ["JUPYTER_DATA_DIR"] = str(root / "data")
    os.environ["CONDA_ROOT"] = str(root / "conda")
    (root / "conda" / "envs").mkdir(parents=True)
    Path(os.environ["CONDARC"]).write_text(f"envs_dirs: [{root / 'conda' / 'envs'}]\n")


async def start_to_ready(make_km: Callable[[], AsyncKernelManager]) -> float:
    km = make_km()
    started = time.perf_counter()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        elapsed = time.perf_counter() - started
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    return elapsed


async def bench_start(prefix: Path, runs: int, transport: str) -> tuple[float, float, float]:
    from jupyter_envs.kernels.discovery import EnvKernelSpecManager

    plain_spec = KernelSpec(
        argv=[
            str(prefix / "bin" / "python"),
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        display_name="plain",
        language="python",
    )
    ksm = EnvKernelSpecManager()
    config = Config()
    config.EnvProvisioner.transport = transport

    def plain() -> AsyncKernelManager:
        km = AsyncKernelManager()
        km._kernel_spec = plain_spec
        return km

    def ours() -> AsyncKernelManager:
        return AsyncKernelManager(
            kernel_name="conda-env-bench-py", kernel_spec_manager=ksm, config=config
        )

    first = await start_to_ready(ours)  # computes and caches the activation
    await start_to_ready(plain)  # warm the OS file cache for the plain kernel too
    plain_t, ours_t = [], []
    for _ in range(runs):
        plain_t.append(await start_to_ready(plain))
        ours_t.append(await start_to_ready(ours))
    return statistics.median(plain_t), statistics.median(ours_t), first


async def bench_pre_launch(prefix: Path, runs: int) -> tuple[float, float]:
    """Median ms of ``km.pre_start_kernel()`` (everything before the process starts)."""
    from jupyter_envs.kernels.discovery import EnvKernelSpecManager

    ksm = EnvKernelSpecManager()
    plain_t, ours_t = [], []
    for _ in range(runs):
        for kind, out in (("python3", plain_t), ("conda-env-bench-py", ours_t)):
            km = AsyncKernelManager(kernel_name=kind, kernel_spec_manager=ksm)
            t0 = time.perf_counter()
            await km.pre_start_kernel()
            out.append(time.perf_counter() - t0)
            await km.cleanup_resources()
    return statistics.median(plain_t) * 1000, statistics.median(ours_t) * 1000


def bench_discovery(root: Path, first: Path, count: int, runs: int) -> tuple[float, float]:
    from jupyter_envs.kernels.discovery import EnvKernelSpecManager

    for i in range(1, count):
        shutil.copytree(first, first.parent / f"env{i:03d}", symlinks=True, copy_function=os.link)
    found = EnvKernelSpecManager(conda_only=True).find_kernel_specs()
    assert len(found) == count, len(found)
    cold, warm = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        EnvKernelSpecManager(conda_only=True).find_kernel_specs()
        cold.append(time.perf_counter() - t0)
    ksm = EnvKernelSpecManager(conda_only=True)
    ksm.find_kernel_specs()
    for _ in range(runs):
        t0 = time.perf_counter()
        ksm.find_kernel_specs()
        warm.append(time.perf_counter() - t0)
    return statistics.median(cold) * 1000, statistics.median(warm) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="kernel starts of each kind")
    parser.add_argument("--envs", type=int, default=100, help="environments for discovery")
    parser.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bk-") as tmp:
        root = Path(tmp)
        isolate(root)
        channel = localchannel.build_channel(root / "channel")
        prefix = root / "conda" / "envs" / "bench"
        asyncio.run(localchannel.install(channel, SPECS, prefix, cache_dir=root / "cache"))

        plain, ours, first = asyncio.run(bench_start(prefix, args.runs, args.transport))
        print(f"kernel start-to-ready, median of {args.runs} (same interpreter):")
        print(f"  plain ipykernel_launcher (LocalProvisioner, tcp): {plain * 1000:7.1f} ms")
        print(f"  EnvProvisioner ({args.transport}, activation cached):     {ours * 1000:7.1f} ms")
        print(f"  EnvProvisioner first start (computes activation):   {first * 1000:7.1f} ms")
        print(f"  ratio provisioner / plain: {ours / plain:.3f} (target <= 1.05)")

        pre_plain, pre_ours = asyncio.run(bench_pre_launch(prefix, 50))
        print("before the kernel process starts (km.pre_start_kernel), median of 50:")
        print(f"  LocalProvisioner: {pre_plain:6.2f} ms   EnvProvisioner: {pre_ours:6.2f} ms")

        cold, warm = bench_discovery(root, prefix, args.envs, 20)
        print(f"kernel discovery, {args.envs} environments, median of 20:")
        print(f"  find_kernel_specs() cold (new manager + registry): {cold:7.2f} ms")
        print(f"  find_kernel_specs() warm:                          {warm:7.2f} ms")


if __name__ == "__main__":
    main()
