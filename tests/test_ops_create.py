"""Creating environments with the embedded engine, against the real local test channel."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import localchannel
import pytest
from gatedchannel import GatedChannelServer
from opsutil import (
    Recorder,
    add_big_packages,
    cancel_at_first_link,
    dists,
    make_manager,
    registered,
    tree,
)

from jupyter_envs.envs import history
from jupyter_envs.envs.backends.rattler import RattlerBackend
from jupyter_envs.envs.envfile import PIP_NOT_SUPPORTED
from jupyter_envs.envs.manager import CreateRequest, EnvManager
from jupyter_envs.errors import BackendError, Conflict, InvalidRequest, ReadOnly, SolveError


@pytest.fixture
def manager() -> EnvManager:
    return make_manager()


async def test_solver_picks_newest_versions(manager: EnvManager, envs_dir: Path) -> None:
    rec = Recorder()
    info = await manager.create(CreateRequest(name="pick", specs=("bar",)), rec)
    prefix = envs_dir / "pick"
    assert info.prefix == str(prefix)
    # 1.10 > 1.9 (a string sort would pick 1.9) and bar 2.0 needs libfoo >= 1.10.
    assert dists(prefix) == {"bar-2.0-0", "libfoo-1.10-0"}
    assert (prefix / "share/libfoo/VERSION").read_text() == "1.10\n"
    assert str(prefix) in registered()
    assert "link bar-2.0-0" in rec.lines
    assert rec.steps[-1] == ("install", 2, 2)


async def test_constraints_are_respected(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="old", specs=("bar", "libfoo<1.10")), Recorder())
    assert dists(envs_dir / "old") == {"bar-1.0-0", "libfoo-1.9-0"}


async def test_history_in_conda_format(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="hist", specs=("bar", "python")), Recorder())
    prefix = envs_dir / "hist"
    text = (prefix / "conda-meta" / "history").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("==> ")
    assert lines[0].endswith(" <==")
    assert lines[1].startswith("# cmd: jupyter-envs create --prefix ")
    assert any(ln.startswith("+") and ln.endswith("::bar-2.0-0") for ln in lines)
    assert "# update specs: ['bar', 'python']" in lines
    assert history.requested_specs(prefix) == ["bar", "python"]
    revisions = await manager.revisions(prefix)
    assert [r.number for r in revisions] == [0]
    assert revisions[0].update_specs == ["bar", "python"]
    exported = await manager.export(prefix, "from-history")
    assert "- bar\n- python\n" in exported.text


async def test_create_from_environment_yml(manager: EnvManager, envs_dir: Path) -> None:
    yml = "name: fromyml\nchannels: []\ndependencies:\n  - bar=1.0\n  - hello\n"
    info = await manager.create(CreateRequest(environment_yml=yml), Recorder())
    prefix = envs_dir / "fromyml"
    assert info.name == "fromyml"
    assert {"bar-1.0-0", "libfoo-1.10-0", "hello-0.1.0-pyh0_0"} <= dists(prefix)
    assert "python" in {d.rsplit("-", 2)[0] for d in dists(prefix)}
    assert (prefix / "bin" / "hello").exists()  # the noarch: python entry point


@pytest.mark.parametrize(
    "yml",
    [
        pytest.param("name: p\ndependencies:\n  - bar\n  - pip:\n    - requests\n", id="pip"),
        pytest.param("name: p\ndependencies: [bar]\nvariables: {A: b}\n", id="unknown-key"),
        pytest.param("name: p\ndependencies: [bar, '--force']\n", id="option-spec"),
        pytest.param("name: p\ndependencies: [bar\n", id="bad-yaml"),
        pytest.param("name: p/q\ndependencies: [bar]\n", id="bad-name"),
        pytest.param("name: p\ndependencies: []\n", id="no-deps"),
        pytest.param("!!python/object:os.system {}\n", id="unsafe-tag"),
    ],
)
async def test_bad_environment_yml_refused(
    manager: EnvManager, envs_dir: Path, tmp_path: Path, yml: str
) -> None:
    before = tree(tmp_path)
    with pytest.raises(InvalidRequest) as info:
        manager.check_create(CreateRequest(environment_yml=yml))
    with pytest.raises(InvalidRequest):
        await manager.create(CreateRequest(environment_yml=yml), Recorder())
    assert tree(tmp_path) == before
    if "pip:" in yml:
        assert str(info.value) == PIP_NOT_SUPPORTED


@pytest.mark.parametrize(
    "req",
    [
        pytest.param(CreateRequest(name="a b", specs=("bar",)), id="space-in-name"),
        pytest.param(CreateRequest(name="base", specs=("bar",)), id="reserved-name"),
        pytest.param(CreateRequest(name="../x", specs=("bar",)), id="path-name"),
        pytest.param(CreateRequest(name="ok", specs=("--force",)), id="option-spec"),
        pytest.param(CreateRequest(name="ok", specs=("bar; rm -rf /",)), id="shell-spec"),
        pytest.param(CreateRequest(name="ok", specs=("bar >=>= 1",)), id="bad-spec"),
        pytest.param(CreateRequest(name="ok"), id="no-source"),
        pytest.param(
            CreateRequest(name="ok", specs=("bar",), environment_yml="dependencies: [bar]"),
            id="two-sources",
        ),
        pytest.param(CreateRequest(specs=("bar",)), id="no-name"),
        pytest.param(CreateRequest(prefix="relative/env", specs=("bar",)), id="relative-prefix"),
        pytest.param(CreateRequest(name="ok", specs=("bar",), channels=("-c x",)), id="bad-chan"),
        pytest.param(CreateRequest(name="ok", lockfile="not: a lock"), id="bad-lock"),
        pytest.param(CreateRequest(name="ok", specs="bar"), id="specs-str"),  # type: ignore[arg-type]
        pytest.param(
            CreateRequest(name="ok", specs=("bar",), channels="file:///x"),  # type: ignore[arg-type]
            id="channels-str",
        ),
    ],
)
async def test_bad_requests_refused_before_disk(
    manager: EnvManager, tmp_path: Path, req: CreateRequest
) -> None:
    before = tree(tmp_path)
    with pytest.raises(InvalidRequest):
        manager.check_create(req)
    with pytest.raises(InvalidRequest):
        await manager.create(req, Recorder())
    assert tree(tmp_path) == before


async def test_existing_name_conflicts(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="twice", specs=("libfoo",)), Recorder())
    before = tree(envs_dir)
    with pytest.raises(Conflict):
        await manager.create(CreateRequest(name="twice", specs=("bar",)), Recorder())
    assert tree(envs_dir) == before


async def test_unsatisfiable_names_the_conflict(
    manager: EnvManager, envs_dir: Path, tmp_path: Path
) -> None:
    req = CreateRequest(name="clash", specs=("oldfoo-user", "libfoo>=1.10"))
    with pytest.raises(SolveError) as info:
        await manager.preview_create(req)
    message = str(info.value)
    assert "oldfoo-user" in message
    assert "libfoo" in message
    assert "Cannot solve the request" not in message  # rattler's prefix is trimmed
    with pytest.raises(SolveError):
        await manager.create(req, Recorder())
    assert not (envs_dir / "clash").exists()
    assert str(envs_dir / "clash") not in registered()


async def test_failed_install_leaves_nothing(mutable_channel: Path, envs_dir: Path) -> None:
    pkg = localchannel.Pkg("ghost", "1.0", files={"share/ghost": b"boo\n"})
    await asyncio.to_thread(localchannel.add_packages, mutable_channel, [pkg])
    (mutable_channel / "noarch" / pkg.filename).unlink()  # listed, but the archive is gone
    manager = make_manager()
    url = localchannel.channel_url(mutable_channel)
    req = CreateRequest(name="g", specs=("bar", "ghost"), channels=(url,))
    with pytest.raises(BackendError, match="ghost"):
        await manager.create(req, Recorder())
    assert list(envs_dir.iterdir()) == []
    assert registered() == []


async def test_unknown_package_is_named(manager: EnvManager, envs_dir: Path) -> None:
    with pytest.raises(SolveError, match="no-such-package"):
        await manager.create(CreateRequest(name="nope", specs=("no-such-package",)), Recorder())
    assert not (envs_dir / "nope").exists()


@pytest.mark.parametrize(
    ("override", "build"),
    [pytest.param("12.4", "cuda12_1", id="cuda-12.4"), pytest.param(None, "cpu_0", id="no-cuda")],
)
async def test_cuda_override_picks_the_build(
    manager: EnvManager,
    envs_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    override: str | None,
    build: str,
) -> None:
    if override is None:
        monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")  # no driver, whatever the host has
    else:
        monkeypatch.setenv("CONDA_OVERRIDE_CUDA", override)
    plan = await manager.preview_create(CreateRequest(name="t", specs=("torchlet",)))
    assert {p.dist for p in plan.install if p.name == "torchlet"} == {f"torchlet-1.0-{build}"}
    await manager.create(CreateRequest(name="t", specs=("torchlet",)), Recorder())
    assert f"torchlet-1.0-{build}" in dists(envs_dir / "t")
    assert ("cuda-version-12.4-0" in dists(envs_dir / "t")) == (override is not None)


async def test_preview_create_touches_nothing(
    manager: EnvManager, envs_dir: Path, tmp_path: Path
) -> None:
    before = tree(tmp_path / "conda-root")
    plan = await manager.preview_create(CreateRequest(name="dry", specs=("bar",)))
    assert {p.dist for p in plan.install} == {"bar-2.0-0", "libfoo-1.10-0"}
    assert not plan.remove
    assert not plan.change
    assert tree(tmp_path / "conda-root") == before
    assert registered() == []


async def test_read_only_refuses_create(envs_dir: Path) -> None:
    manager = make_manager(read_only=True)
    with pytest.raises(ReadOnly):
        await manager.create(CreateRequest(name="ro", specs=("bar",)), Recorder())
    assert not (envs_dir / "ro").exists()


@pytest.fixture
async def big_channel(mutable_channel: Path) -> tuple[str, tuple[str, ...]]:
    return await add_big_packages(mutable_channel)


async def test_cancelled_install_is_finished_before_cancel_returns(
    big_channel: tuple[str, tuple[str, ...]], tmp_path: Path
) -> None:
    # py-rattler keeps linking after its future is cancelled; the backend must wait for
    # that, or clean-up code would race with it (measured: see rattler_support).
    url, specs = big_channel
    backend = RattlerBackend()
    await backend.create(tmp_path / "warm", specs, [url], Recorder())  # warm package cache
    prefix = tmp_path / "target"
    rec = Recorder()
    await cancel_at_first_link(backend.create(prefix, specs, [url], rec), rec)
    settled = tree(prefix)
    await asyncio.sleep(0.5)
    assert tree(prefix) == settled


async def test_cancel_mid_create_leaves_no_prefix(
    big_channel: tuple[str, tuple[str, ...]], envs_dir: Path
) -> None:
    url, specs = big_channel
    manager = make_manager()
    req = CreateRequest(name="cancelled", specs=specs, channels=(url,))
    rec = Recorder()
    await cancel_at_first_link(manager.create(req, rec), rec)
    prefix = envs_dir / "cancelled"
    assert not prefix.exists()
    await asyncio.sleep(0.5)
    assert not prefix.exists()
    assert list(envs_dir.iterdir()) == []
    assert str(prefix) not in registered()


async def test_cancel_during_download_is_prompt(tmp_path: Path, envs_dir: Path) -> None:
    # An HTTP channel whose package downloads hang until released: a cancel must not wait
    # for them (nothing was linked yet, so the transaction is dropped at once).
    server = await asyncio.to_thread(
        GatedChannelServer.build, tmp_path / "gated", count=1, max_wait=30
    )
    try:
        manager = make_manager()
        req = CreateRequest(name="dl", specs=tuple(server.names), channels=(server.url,))
        task = asyncio.ensure_future(manager.create(req, Recorder()))
        for _ in range(1000):
            if server.downloads or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.downloads, "no download started"
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - start < 5
        server.release()
        await asyncio.sleep(0.5)
        assert list(envs_dir.iterdir()) == []
        assert registered() == []
    finally:
        server.stop()
