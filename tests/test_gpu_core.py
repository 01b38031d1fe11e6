"""GPU inventory, choices and exclusive assignment.

Stand-in: except for the probe tests, every test here replaces the NVML probe with a JSON
inventory through JUPYTER_ENVS_GPU_INVENTORY (this machine has no GPU).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpu_helpers import GPUS, UUIDS, write_inventory, write_notebook

from jupyter_envs.errors import InvalidRequest, NoFreeGpu, http_status
from jupyter_envs.gpu import (
    CPU_ONLY_NO_GPU,
    grant_gpus,
    note_kernel_pid,
    release_gpus,
)
from jupyter_envs.gpu import inventory as inventory_module
from jupyter_envs.gpu.assign import NO_FREE_GPU, AssignmentStore, state_path
from jupyter_envs.gpu.inventory import (
    INVENTORY_ENV,
    PROBE_TIMEOUT,
    STATIC_TTL,
    TIMEOUT_ENV,
    Inventory,
    merge_failed_probe,
    parse_inventory,
    probe_timeout,
    read_inventory,
    run_probe,
)
from jupyter_envs.gpu.prefs import (
    GpuChoice,
    env_prefs_path,
    get_env_choice,
    parse_choice,
    set_env_choice,
)


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.delenv("JUPYTER_ENVS_GPU_STATE", raising=False)
    return tmp_path


@pytest.fixture
def gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in: the four fake GPUs of gpu_helpers.GPUS replace the NVML probe."""
    path = write_inventory(tmp_path / "inventory.json")
    monkeypatch.setenv(INVENTORY_ENV, str(path))
    return path


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    env = tmp_path / "env"
    (env / "conda-meta").mkdir(parents=True)
    return env


def _visible(env: dict[str, str]) -> list[str] | None:
    value = env.get("CUDA_VISIBLE_DEVICES")
    return None if value is None else [v for v in value.split(",") if v]


# -- the real probe (no stand-in): checked both on GPU-less hosts and on GPU machines --------

_NEEDS_NO_GPU = "this host has a GPU: the no-GPU path cannot be observed here"


@pytest.fixture(scope="module")
def host_has_gpu() -> bool:
    """Whether the real probe finds a GPU on this machine."""
    return bool(run_probe().gpus)


def test_probe_subprocess_reports_this_host_within_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(INVENTORY_ENV, raising=False)
    start = time.monotonic()
    inventory = run_probe()
    elapsed = time.monotonic() - start
    assert elapsed < PROBE_TIMEOUT
    if inventory.gpus:  # a GPU machine: real NVML facts
        assert inventory.error is None
        assert inventory.driver_version
        assert inventory.cuda_version
        assert all(g.uuid.startswith(("GPU-", "MIG-")) for g in inventory.gpus)
        assert all(g.memory_total > 0 for g in inventory.gpus)
        assert [g.index for g in inventory.gpus] == list(range(len(inventory.gpus)))
    else:
        assert inventory.error  # says why: no pynvml, no driver ...


def test_probe_timeout_gives_an_empty_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.001")
    start = time.monotonic()
    inventory = run_probe()
    assert time.monotonic() - start < 2
    assert inventory.gpus == ()
    assert inventory.error == "the GPU probe took longer than 0.001 s"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("12.5", 12.5, id="set"),
        pytest.param("", PROBE_TIMEOUT, id="empty"),
        pytest.param("soon", PROBE_TIMEOUT, id="not-a-number"),
        pytest.param("-1", PROBE_TIMEOUT, id="negative"),
    ],
)
def test_probe_timeout_setting(value: str, expected: float) -> None:
    assert probe_timeout({TIMEOUT_ENV: value}) == expected


async def test_auto_without_gpu_runs_on_cpu_and_says_why(
    monkeypatch: pytest.MonkeyPatch, prefix: Path, host_has_gpu: bool
) -> None:
    # No stand-in: the real probe, on a machine without a GPU.
    if host_has_gpu:
        pytest.skip(_NEEDS_NO_GPU)
    monkeypatch.delenv(INVENTORY_ENV, raising=False)
    set_env_choice(prefix, GpuChoice("auto"))
    grant = await grant_gpus("k1", prefix, None)
    assert grant.env["CUDA_VISIBLE_DEVICES"] == ""
    assert grant.messages[0] == CPU_ONLY_NO_GPU
    assert grant.messages[1].startswith("(GPU detection: ")


def test_probe_module_prints_the_inventory_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_envs.gpu.probe"],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=True,
    ).stdout
    data = json.loads(out)
    assert set(data) == {"driver_version", "cuda_version", "gpus", "error"}
    assert parse_inventory(data).gpus == run_probe().gpus


def test_probe_does_not_load_nvml_into_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INVENTORY_ENV, raising=False)
    sys.modules.pop("pynvml", None)
    read_inventory(max_age=0)
    assert "pynvml" not in sys.modules


def test_probe_result_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INVENTORY_ENV, raising=False)
    first = read_inventory(max_age=0)
    start = time.perf_counter()
    second = read_inventory()
    assert second is first
    assert time.perf_counter() - start < 0.01


def test_a_failed_probe_keeps_the_gpus_seen_recently(gpus: Path) -> None:
    seen = read_inventory()  # Stand-in: the substituted inventory plays the last good probe.
    failed = Inventory(error="the GPU probe took longer than 5 s")
    kept = merge_failed_probe(seen, 12.0, failed)
    assert kept.gpus == seen.gpus
    assert kept.error == "the GPU probe took longer than 5 s; listing the GPUs seen 12 s ago"
    assert merge_failed_probe(seen, STATIC_TTL, failed) == failed
    assert merge_failed_probe(None, 0.0, failed) == failed
    no_gpu_now = Inventory(driver_version="550.54.15", cuda_version="12.4")
    assert merge_failed_probe(seen, 1.0, no_gpu_now) == no_gpu_now  # no error: really gone


def test_static_callers_reuse_the_probe_but_not_a_stale_empty_one(
    monkeypatch: pytest.MonkeyPatch, host_has_gpu: bool
) -> None:
    if host_has_gpu:
        pytest.skip(_NEEDS_NO_GPU)
    monkeypatch.delenv(INVENTORY_ENV, raising=False)
    first = read_inventory(max_age=0)
    assert read_inventory(max_age=STATIC_TTL) is first
    monkeypatch.setattr(inventory_module._cache, "taken", first_taken := time.monotonic() - 61)
    again = read_inventory(max_age=STATIC_TTL)  # an empty result lives EMPTY_TTL at most
    assert again is not first
    assert inventory_module._cache.taken > first_taken


# -- the substituted inventory --------------------------------------------------------------


def test_substituted_inventory_is_reread(gpus: Path) -> None:
    assert [g.uuid for g in read_inventory().gpus] == UUIDS
    write_inventory(gpus, GPUS[:1])
    assert [g.index for g in read_inventory().gpus] == [0]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"gpus": {}}, id="gpus-not-a-list"),
        pytest.param({"gpus": [{"index": 0}]}, id="no-uuid"),
        pytest.param({"gpus": [{"index": "0", "uuid": "GPU-x"}]}, id="index-not-int"),
        pytest.param({"gpus": [GPUS[0], GPUS[0]]}, id="duplicate"),
    ],
)
def test_malformed_inventory_is_rejected(data: object) -> None:
    with pytest.raises(InvalidRequest, match="GPU inventory"):
        parse_inventory(data)


def test_find_by_index_uuid_and_unique_prefix(gpus: Path) -> None:
    inventory = read_inventory()
    assert inventory.find("2").index == 2  # type: ignore[union-attr]
    assert inventory.find(UUIDS[3]).index == 3  # type: ignore[union-attr]
    assert inventory.find("GPU-1111").index == 1  # type: ignore[union-attr]
    assert inventory.find("GPU-") is None  # too short to be a prefix
    assert inventory.find("7") is None


# -- choices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"mode": "all"}, GpuChoice("all"), id="all"),
        pytest.param({"mode": "none"}, GpuChoice("none"), id="none"),
        pytest.param({"mode": "auto"}, GpuChoice("auto", count=1), id="auto-default-count"),
        pytest.param({"mode": "auto", "count": 2}, GpuChoice("auto", count=2), id="auto-2"),
        pytest.param(
            {"mode": "devices", "devices": [1, "GPU-abc", 1]},
            GpuChoice("devices", devices=("1", "GPU-abc")),
            id="devices",
        ),
    ],
)
def test_parse_choice(data: object, expected: GpuChoice) -> None:
    assert parse_choice(data) == expected
    assert parse_choice(expected.to_json()) == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("auto", id="not-an-object"),
        pytest.param({"mode": "some"}, id="bad-mode"),
        pytest.param({"mode": "auto", "count": 0}, id="count-0"),
        pytest.param({"mode": "auto", "count": True}, id="count-bool"),
        pytest.param({"mode": "auto", "count": "2"}, id="count-str"),
        pytest.param({"mode": "devices"}, id="no-devices"),
        pytest.param({"mode": "devices", "devices": []}, id="empty-devices"),
        pytest.param({"mode": "devices", "devices": [-1]}, id="negative-index"),
        pytest.param({"mode": "devices", "devices": ["0;rm"]}, id="odd-characters"),
    ],
)
def test_parse_choice_rejects(data: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_choice(data)


def test_env_default_round_trip(prefix: Path, jupyter_dirs: Path) -> None:
    assert get_env_choice(prefix) is None
    set_env_choice(prefix, GpuChoice("auto", count=2))
    assert get_env_choice(prefix) == GpuChoice("auto", count=2)
    assert env_prefs_path() == jupyter_dirs / "jupyter-data" / "jupyter_envs" / "gpu.json"
    assert json.loads(env_prefs_path().read_text()) == {str(prefix): {"mode": "auto", "count": 2}}
    set_env_choice(prefix, None)
    assert get_env_choice(prefix) is None


# -- grants: each mode -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "visible"),
    [
        pytest.param(None, UUIDS, id="default-all"),
        pytest.param(GpuChoice("all"), UUIDS, id="all"),
        pytest.param(GpuChoice("none"), [], id="none"),
        pytest.param(GpuChoice("devices", ("2", UUIDS[0])), [UUIDS[2], UUIDS[0]], id="devices"),
        pytest.param(GpuChoice("auto", count=1), [UUIDS[1]], id="auto-1"),
        pytest.param(GpuChoice("auto", count=2), [UUIDS[1], UUIDS[2]], id="auto-2"),
    ],
)
async def test_each_mode_sets_cuda_visible_devices(
    gpus: Path, prefix: Path, choice: GpuChoice | None, visible: list[str]
) -> None:
    if choice is not None:
        set_env_choice(prefix, choice)
    grant = await grant_gpus("k1", prefix, None)
    assert grant.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert _visible(grant.env) == visible
    assert list(grant.devices) == visible
    assert grant.mode == (choice or GpuChoice()).mode
    assert grant.source == ("environment" if choice else "default")
    held = {a.kernel_id: a.devices for a in AssignmentStore().assignments()}
    assert held == ({"k1": tuple(visible)} if visible else {})


async def test_auto_is_exclusive_and_release_frees(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("auto", count=1))
    first = await grant_gpus("k1", prefix, None)
    second = await grant_gpus("k2", prefix, None)
    assert first.devices == (UUIDS[1],)
    assert second.devices == (UUIDS[2],)  # next least-loaded, not k1's
    assert any("holds GPU 1" in m for m in first.messages)
    set_env_choice(prefix, GpuChoice("auto", count=3))
    with pytest.raises(NoFreeGpu) as info:
        await grant_gpus("k3", prefix, None)
    assert str(info.value) == NO_FREE_GPU.format(count=3, free=2, total=4, held=2)
    assert http_status(info.value) == 409
    release_gpus("k1")
    third = await grant_gpus("k3", prefix, None)
    assert third.devices == (UUIDS[0], UUIDS[1], UUIDS[3])
    release_gpus("k3")
    release_gpus("k3")  # twice is harmless
    assert [a.kernel_id for a in AssignmentStore().assignments()] == ["k2"]


async def test_concurrent_auto_grants_never_share(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("auto", count=1))
    results = await asyncio.gather(
        *(grant_gpus(f"k{i}", prefix, None) for i in range(6)), return_exceptions=True
    )
    granted = [r.devices[0] for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert sorted(granted) == sorted(UUIDS)
    assert len(refused) == 2
    assert all(isinstance(r, NoFreeGpu) for r in refused)


async def test_restart_keeps_the_same_gpus(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("auto", count=1))
    await grant_gpus("k1", prefix, None)
    await grant_gpus("k2", prefix, None)
    release_gpus("k1")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    note_kernel_pid("k2", gone.pid)  # the old kernel process ended for the restart
    again = await grant_gpus("k2", prefix, None)  # a restart runs pre_launch again
    assert again.devices == (UUIDS[2],)  # kept, although GPU 1 is now less loaded
    [entry] = AssignmentStore().assignments()
    assert (entry.kernel_id, entry.kernel_pid) == ("k2", None)


async def test_dead_kernel_pid_is_reclaimed(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("auto", count=4))
    await grant_gpus("k1", prefix, None)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    note_kernel_pid("k1", gone.pid)
    grant = await grant_gpus("k2", prefix, None)
    assert len(grant.devices) == 4
    assert [a.kernel_id for a in AssignmentStore().assignments()] == ["k2"]


_OTHER_SERVER = """
import asyncio, sys
from pathlib import Path
from jupyter_envs.gpu import grant_gpus
grant = asyncio.run(grant_gpus("other-kernel", Path(sys.argv[1]), None))
print(",".join(grant.devices), flush=True)
sys.stdin.read()
"""


async def test_exclusive_across_servers_and_dead_server_reclaimed(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("auto", count=3))
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_SERVER, str(prefix)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == ",".join([UUIDS[1], UUIDS[2], UUIDS[3]])
        set_env_choice(prefix, GpuChoice("auto", count=2))
        with pytest.raises(NoFreeGpu, match="1 of the 4 GPUs are free"):
            await grant_gpus("mine", prefix, None)
    finally:
        other.communicate("", timeout=10)
    # The other server ended without releasing: its entry is stale and reclaimed.
    grant = await grant_gpus("mine", prefix, None)
    assert grant.devices == (UUIDS[1], UUIDS[2])
    assert state_path().parent == Path(os.environ["JUPYTER_RUNTIME_DIR"])


async def test_state_file_damage_and_other_hosts(gpus: Path, prefix: Path) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    set_env_choice(prefix, GpuChoice("auto", count=1))
    assert (await grant_gpus("k1", prefix, None)).devices == (UUIDS[1],)
    data = json.loads(path.read_text())
    # An entry from another host sharing this runtime dir: its pids mean nothing here.
    data["kernels"]["remote"] = {
        "devices": [UUIDS[2]],
        "exclusive": True,
        "server_pid": 999999999,
        "host": "elsewhere",
    }
    path.write_text(json.dumps(data))
    os.chmod(path, 0o660)
    # Not reclaimed (its pid is not ours to judge), so GPU 2 stays held: k2 gets GPU 3.
    assert (await grant_gpus("k2", prefix, None)).devices == (UUIDS[3],)
    assert {a.kernel_id for a in AssignmentStore().assignments()} == {"k1", "k2", "remote"}
    assert path.stat().st_mode & 0o777 == 0o660  # a shared file keeps its mode


async def test_devices_shared_with_an_auto_kernel_says_so(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("auto", count=1))
    await grant_gpus("k1", prefix, None)
    set_env_choice(prefix, GpuChoice("devices", ("1",)))
    grant = await grant_gpus("k2", prefix, None)
    assert grant.devices == (UUIDS[1],)
    assert any("GPU 1 is also held" in m for m in grant.messages)


async def test_unknown_device_is_refused(gpus: Path, prefix: Path) -> None:
    set_env_choice(prefix, GpuChoice("devices", ("7",)))
    with pytest.raises(NoFreeGpu, match="GPU 7 is not available"):
        await grant_gpus("k1", prefix, None)


@pytest.mark.parametrize(
    ("choice", "visible"),
    [
        pytest.param(GpuChoice("all"), None, id="all-leaves-it-unset"),
        pytest.param(GpuChoice("none"), [], id="none"),
        pytest.param(GpuChoice("auto"), [], id="auto-falls-back-to-cpu"),
        pytest.param(GpuChoice("devices", ("0",)), [], id="devices-falls-back-to-cpu"),
    ],
)
async def test_machine_without_gpu(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefix: Path,
    choice: GpuChoice,
    visible: list[str] | None,
) -> None:
    # Stand-in: an empty substituted inventory (as the real probe gives here).
    monkeypatch.setenv(
        INVENTORY_ENV, str(write_inventory(tmp_path / "none.json", [], cuda_version=None))
    )
    set_env_choice(prefix, choice)
    grant = await grant_gpus("k1", prefix, None)
    assert _visible(grant.env) == visible
    assert grant.devices == ()
    assert (CPU_ONLY_NO_GPU in grant.messages) == (choice.mode in ("auto", "devices"))


async def test_server_cuda_visible_devices_limits_the_pool(
    gpus: Path, prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"0,{UUIDS[3]}")
    assert _visible((await grant_gpus("k0", prefix, None)).env) == ["0", UUIDS[3]]
    set_env_choice(prefix, GpuChoice("auto", count=1))
    assert (await grant_gpus("k1", prefix, None)).devices == (UUIDS[3],)
    set_env_choice(prefix, GpuChoice("devices", ("1",)))
    with pytest.raises(NoFreeGpu, match="GPU 1 is not available"):
        await grant_gpus("k2", prefix, None)


# -- precedence: notebook > environment > all ---------------------------------------------


async def test_notebook_wins_over_environment(gpus: Path, prefix: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_notebook(root / "sub" / "a.ipynb", {"mode": "none"})
    write_notebook(root / "b.ipynb")  # no GPU entry
    set_env_choice(prefix, GpuChoice("devices", ("3",)))
    by_relative = await grant_gpus("k1", prefix, "sub/a.ipynb", root_dir=root)
    assert (by_relative.source, _visible(by_relative.env)) == ("notebook", [])
    by_absolute = await grant_gpus("k2", prefix, str(root / "sub" / "a.ipynb"))
    assert by_absolute.source == "notebook"
    no_entry = await grant_gpus("k3", prefix, "b.ipynb", root_dir=root)
    assert (no_entry.source, no_entry.devices) == ("environment", (UUIDS[3],))
    unsaved = await grant_gpus("k4", prefix, "Untitled.ipynb", root_dir=root)
    assert unsaved.source == "environment"
    console = await grant_gpus("k5", prefix, "Console 1", root_dir=root)
    assert console.source == "environment"
    set_env_choice(prefix, None)
    default = await grant_gpus("k6", prefix, "b.ipynb", root_dir=root)
    assert (default.source, default.devices) == ("default", tuple(UUIDS))


async def test_malformed_notebook_setting_is_ignored_with_a_warning(
    gpus: Path, prefix: Path, tmp_path: Path
) -> None:
    write_notebook(tmp_path / "a.ipynb", {"mode": "auto", "count": -1})
    (tmp_path / "broken.ipynb").write_text("{not json")
    set_env_choice(prefix, GpuChoice("none"))
    grant = await grant_gpus("k1", prefix, "a.ipynb", root_dir=tmp_path)
    assert grant.source == "environment"
    assert any("notebook's GPU setting is ignored" in m for m in grant.messages)
    broken = await grant_gpus("k2", prefix, "broken.ipynb", root_dir=tmp_path)
    assert broken.source == "environment"
