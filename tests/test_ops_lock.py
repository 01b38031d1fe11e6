"""Lock files, clones and exports against the real local channel."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import localchannel
import pytest
import yaml
from opsutil import Recorder, dists, make_manager, registered

from jupyter_envs.envs import history
from jupyter_envs.envs.envfile import parse_environment_yml
from jupyter_envs.envs.manager import CreateRequest, EnvManager
from jupyter_envs.errors import InvalidRequest, NotFound


@pytest.fixture
def manager() -> EnvManager:
    return make_manager()


async def test_lock_round_trip_ignores_newer_versions(
    manager: EnvManager, mutable_channel: Path, envs_dir: Path
) -> None:
    url = localchannel.channel_url(mutable_channel)
    await manager.create(CreateRequest(name="src", specs=("bar",), channels=(url,)), Recorder())
    source = envs_dir / "src"
    lock = await manager.export(source, "lock")
    assert lock.filename == "src-lock.yml"
    assert lock.media_type == "application/yaml"
    newer = localchannel.Pkg("libfoo", "1.11", files={"share/libfoo/VERSION": b"1.11\n"})
    await asyncio.to_thread(localchannel.add_packages, mutable_channel, [newer])
    # The channel now really offers 1.11: a fresh solve takes it ...
    fresh = await manager.preview_create(
        CreateRequest(name="fresh", specs=("bar",), channels=(url,))
    )
    assert "libfoo-1.11-0" in {p.dist for p in fresh.install}
    # ... while the lock rebuilds exactly the locked set.
    preview = await manager.preview_create(CreateRequest(name="copy", lockfile=lock.text))
    assert {p.dist for p in preview.install} == dists(source)
    await manager.create(CreateRequest(name="copy", lockfile=lock.text), Recorder())
    copy = envs_dir / "copy"
    assert dists(copy) == dists(source) == {"bar-2.0-0", "libfoo-1.10-0"}
    assert (copy / "share/libfoo/VERSION").read_text() == "1.10\n"
    assert str(copy) in registered()
    assert len(await manager.revisions(copy)) == 1


async def test_lock_for_another_platform_is_refused(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="src", specs=("libfoo",)), Recorder())
    lock = (await manager.export(envs_dir / "src", "lock")).text
    other = lock.replace("linux-64", "osx-arm64")
    with pytest.raises(InvalidRequest, match="no packages for"):
        manager.check_create(CreateRequest(name="x", lockfile=other))
    assert not (envs_dir / "x").exists()


async def test_clone_works_after_the_channel_is_gone(
    manager: EnvManager, mutable_channel: Path, envs_dir: Path
) -> None:
    url = localchannel.channel_url(mutable_channel)
    req = CreateRequest(name="src", specs=("bar", "hello"), channels=(url,))
    await manager.create(req, Recorder())
    source = envs_dir / "src"
    shutil.rmtree(mutable_channel)
    preview = await manager.preview_create(CreateRequest(name="twin", clone_from=source))
    assert {p.dist for p in preview.install} == dists(source)
    info = await manager.create(CreateRequest(name="twin", clone_from=source), Recorder())
    twin = envs_dir / "twin"
    assert info.prefix == str(twin)
    assert dists(twin) == dists(source)
    assert (twin / "bin" / "hello").exists()
    assert sorted(history.requested_specs(twin)) == ["bar", "hello"]
    assert str(twin) in registered()


async def test_clone_of_unknown_env(manager: EnvManager, envs_dir: Path) -> None:
    with pytest.raises(NotFound):
        manager.check_create(CreateRequest(name="twin", clone_from=envs_dir / "missing"))


async def test_export_yml_pins_everything(
    manager: EnvManager, envs_dir: Path, channel: Path
) -> None:
    await manager.create(CreateRequest(name="pins", specs=("bar", "hello")), Recorder())
    source = envs_dir / "pins"
    exported = await manager.export(source, "yml")
    assert exported.filename == "pins-environment.yml"
    data = yaml.safe_load(exported.text)
    assert set(data) == {"name", "channels", "dependencies"}  # no prefix line
    assert data["name"] == "pins"
    assert data["channels"] == [localchannel.channel_url(channel)]
    assert "bar=2.0=0" in data["dependencies"]
    assert "libfoo=1.10=0" in data["dependencies"]
    assert len(data["dependencies"]) == len(dists(source))
    # It creates the same environment again.
    parsed = parse_environment_yml(exported.text)
    assert parsed.name == "pins"
    await manager.create(CreateRequest(name="again", environment_yml=exported.text), Recorder())
    assert dists(envs_dir / "again") == dists(source)


async def test_export_from_history(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="h", specs=("bar>=1",)), Recorder())
    prefix = envs_dir / "h"
    await manager.change(prefix, "install", ["hello"], Recorder())
    data = yaml.safe_load((await manager.export(prefix, "from-history")).text)
    assert data["dependencies"] == ["bar>=1", "hello"]
    await manager.change(prefix, "remove", ["hello"], Recorder())
    data = yaml.safe_load((await manager.export(prefix, "from-history")).text)
    assert data["dependencies"] == ["bar>=1"]


async def test_export_explicit(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="e", specs=("bar",)), Recorder())
    exported = await manager.export(envs_dir / "e", "explicit")
    assert exported.filename == "e-explicit.txt"
    assert exported.media_type == "text/plain"
    lines = exported.text.splitlines()
    assert "# platform: linux-64" in lines
    body = lines[lines.index("@EXPLICIT") + 1 :]
    # Install order: libfoo before bar, which depends on it; each with its md5.
    assert [ln.rsplit("/", 1)[1].split("#")[0] for ln in body] == [
        "libfoo-1.10-0.tar.bz2",
        "bar-2.0-0.tar.bz2",
    ]
    assert all(len(ln.split("#")[1]) == 32 for ln in body)
    assert all(ln.startswith("file://") for ln in body)


async def test_export_unknown_format(manager: EnvManager, envs_dir: Path) -> None:
    await manager.create(CreateRequest(name="u", specs=("libfoo",)), Recorder())
    with pytest.raises(InvalidRequest):
        await manager.export(envs_dir / "u", "zip")  # type: ignore[arg-type]


async def test_channel_names_resolve_through_conda_config(
    mutable_channel: Path, envs_dir: Path
) -> None:
    # custom_channels maps a channel name to where it lives, as a mirror setup does.
    condarc = Path(os.environ["CONDARC"])
    config = yaml.safe_load(condarc.read_text())
    config["custom_channels"] = {"mutable-channel": mutable_channel.parent.as_uri()}
    condarc.write_text(yaml.safe_dump(config))
    manager = make_manager()
    req = CreateRequest(name="named", specs=("bar",), channels=("mutable-channel",))
    await manager.create(req, Recorder())
    prefix = envs_dir / "named"
    data = yaml.safe_load((await manager.export(prefix, "yml")).text)
    assert data["channels"] == ["mutable-channel"]
    explicit = (await manager.export(prefix, "explicit")).text
    assert localchannel.channel_url(mutable_channel) + "/noarch/bar-2.0-0.tar.bz2#" in explicit


async def test_explicit_file_round_trip(
    manager: EnvManager, mutable_channel: Path, envs_dir: Path
) -> None:
    url = localchannel.channel_url(mutable_channel)
    req = CreateRequest(name="src", specs=("bar", "hello"), channels=(url,))
    await manager.create(req, Recorder())
    source = envs_dir / "src"
    explicit = (await manager.export(source, "explicit")).text
    newer = localchannel.Pkg("libfoo", "1.11", files={"share/libfoo/VERSION": b"1.11\n"})
    await asyncio.to_thread(localchannel.add_packages, mutable_channel, [newer])
    preview = await manager.preview_create(CreateRequest(name="copy", lockfile=explicit))
    assert {p.dist for p in preview.install} == dists(source)
    await manager.create(CreateRequest(name="copy", lockfile=explicit), Recorder())
    assert dists(envs_dir / "copy") == dists(source)
    assert (envs_dir / "copy" / "bin" / "hello").exists()


def _wrong_md5(text: str) -> str:
    """A well-formed but wrong md5 on the first package line."""
    lines = text.splitlines()
    first = lines.index("@EXPLICIT") + 1
    lines[first] = lines[first].split("#")[0] + "#" + "0" * 32
    return "\n".join(lines) + "\n"


def _unknown_version(text: str) -> str:
    return text.replace("bar-2.0-0", "bar-9.9-0")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(_wrong_md5, InvalidRequest, id="bad-hash"),
        pytest.param(_unknown_version, NotFound, id="not-indexed"),
    ],
)
async def test_bad_explicit_file_leaves_nothing(
    manager: EnvManager, envs_dir: Path, change: Callable[[str], str], error: type[Exception]
) -> None:
    await manager.create(CreateRequest(name="src", specs=("bar",)), Recorder())
    text = (await manager.export(envs_dir / "src", "explicit")).text
    with pytest.raises(error):
        await manager.create(CreateRequest(name="copy", lockfile=change(text)), Recorder())
    assert not (envs_dir / "copy").exists()
    assert str(envs_dir / "copy") not in registered()
