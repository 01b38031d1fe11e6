"""Discovery, reading and rules of EnvRegistry, on real environments from the local channel."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import localchannel
import pytest

from jupyter_envs.envs import history
from jupyter_envs.envs.condaconfig import load_conda_config
from jupyter_envs.envs.model import env_id
from jupyter_envs.envs.registry import EnvRegistry, environments_txt
from jupyter_envs.errors import Conflict, Forbidden, InvalidRequest, NotFound

SITE = localchannel.SITE


def install(channel: Path, prefix: Path, specs: list[str], cache: Path) -> None:
    """A real solve + install with py-rattler into ``prefix`` (replacing what is there)."""
    asyncio.run(localchannel.install(channel, specs, prefix, cache_dir=cache))


@pytest.fixture
def mk(channel: Path, package_cache: Path):  # type: ignore[no-untyped-def]
    def make(prefix: Path, specs: tuple[str, ...] = ("python", "ipykernel")) -> Path:
        install(channel, prefix, list(specs), package_cache)
        return prefix

    return make


def _registry(**kwargs: object) -> EnvRegistry:
    return EnvRegistry(load_conda_config(), **kwargs)  # type: ignore[arg-type]


def test_discovers_root_named_and_registered_envs(mk, conda_root: Path, envs_dir: Path,
                                                  tmp_path: Path) -> None:
    mk(conda_root, ("python",))
    mk(envs_dir / "alpha")
    mk(envs_dir / "beta", ("libfoo",))
    (envs_dir / "not-an-env").mkdir()
    elsewhere = mk(tmp_path / "projects" / "proj-env", ("bar",))
    reg = _registry()
    reg.register(elsewhere)
    reg.register(tmp_path / "vanished")  # listed in environments.txt but not on disk

    infos = reg.list()
    assert [(i.name, i.prefix) for i in infos] == [
        ("base", str(conda_root)),
        ("alpha", str(envs_dir / "alpha")),
        ("beta", str(envs_dir / "beta")),
        (str(elsewhere), str(elsewhere)),
    ]
    base, alpha, beta, proj = infos
    assert base.is_root
    assert base.protected
    assert not alpha.is_root
    assert not alpha.protected
    assert alpha.python_version == localchannel.PY_VERSION
    assert alpha.has_kernel
    assert alpha.package_count == 2
    assert beta.python_version is None
    assert not beta.has_kernel
    assert beta.package_count == 1
    assert proj.package_count == 2  # bar + libfoo
    assert alpha.id == env_id(alpha.prefix)
    assert reg.get(envs_dir / "alpha") == alpha


def test_identity_is_the_resolved_path(mk, envs_dir: Path, tmp_path: Path) -> None:
    real = mk(tmp_path / "real" / "env", ("libfoo",))
    link = tmp_path / "link-env"
    link.symlink_to(real)
    reg = _registry()
    reg.register(link)
    reg.register(real)
    assert [i.prefix for i in reg.list()] == [str(real)]
    assert reg.get(link).prefix == str(real)


def test_vanished_environment_is_skipped(mk, envs_dir: Path) -> None:
    mk(envs_dir / "keep", ("libfoo",))
    gone = mk(envs_dir / "gone", ("libfoo",))
    reg = _registry()
    assert len(reg.list()) == 2
    shutil.rmtree(gone)
    assert [i.name for i in reg.list()] == ["keep"]
    with pytest.raises(NotFound):
        reg.get(gone)
    with pytest.raises(NotFound):
        reg.details(gone)


def test_get_refuses_unlisted_prefixes(mk, tmp_path: Path) -> None:
    stray = mk(tmp_path / "stray", ("libfoo",))
    with pytest.raises(NotFound):
        _registry().get(stray)


def test_cache_follows_installs_and_removals(mk, channel: Path, envs_dir: Path,
                                             package_cache: Path) -> None:
    env = mk(envs_dir / "e", ("libfoo",))
    reg = _registry()
    assert reg.list()[0].package_count == 1
    assert reg.list()[0] is not reg.list()[0]  # callers get copies
    install(channel, env, ["libfoo", "bar", "python"], package_cache)
    info = reg.list()[0]
    assert info.package_count == 3
    assert info.python_version == localchannel.PY_VERSION
    assert [p.name for p in reg.details(env).packages] == ["bar", "libfoo", "python"]
    install(channel, env, ["libfoo"], package_cache)
    assert reg.list()[0].package_count == 1
    assert [p.name for p in reg.details(env).packages] == ["libfoo"]
    # A new environment in an envs dir shows up without invalidate().
    mk(envs_dir / "f", ("libfoo",))
    assert [i.name for i in reg.list()] == ["e", "f"]


def test_details_reads_packages_history_kernels_and_pip(mk, envs_dir: Path) -> None:
    env = mk(envs_dir / "d", ("python", "ipykernel", "hello", "bar"))
    history.append_revision(env, command="jupyter-envs create -n d", before=[], after=[],
                            update_specs=["python", "ipykernel", "hello", "bar >=1"])
    # A distribution pip installed: in site-packages, owned by no conda package.
    dist = env / SITE / "requests_lite-2.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: requests-lite\nVersion: 2.1.0\n")
    reg = _registry()
    details = reg.details(env)
    by_name = {p.name: p for p in details.packages}
    assert set(by_name) == {"python", "ipykernel", "hello", "bar", "libfoo"}
    bar = by_name["bar"]
    assert (bar.version, bar.build, bar.subdir) == ("2.0", "0", "noarch")
    assert bar.channel == localchannel.channel_url(Path(bar.url.split("/noarch/")[0][7:]))
    assert bar.url.endswith("/noarch/bar-2.0-0.tar.bz2")
    assert bar.size
    assert bar.size > 0
    assert bar.requested
    assert not by_name["libfoo"].requested
    assert details.requested_specs == ["python", "ipykernel", "hello", "bar >=1"]
    assert [(p.name, p.version) for p in details.pip_packages] == [("requests-lite", "2.1.0")]
    assert details.kernelspecs == ["python3"]
    assert details.revision_count == 1
    assert details.size_bytes is None
    assert details.python_version == localchannel.PY_VERSION

    # pip removes it again: details follow although conda-meta did not change.
    shutil.rmtree(dist)
    assert reg.details(env).pip_packages == []


def test_dist_info_owned_by_a_conda_package_is_not_pip(mutable_channel: Path, envs_dir: Path,
                                                        package_cache: Path) -> None:
    owned = localchannel.Pkg(
        "ownedpy", "1.0", build="pyh0_0", noarch="python", depends=["python"],
        files={
            "site-packages/ownedpy.py": b"",
            "site-packages/ownedpy-1.0.dist-info/METADATA": b"Name: ownedpy\nVersion: 1.0\n",
        },
    )
    localchannel.add_packages(mutable_channel, [owned])
    env = envs_dir / "o"
    install(mutable_channel, env, ["python", "ownedpy"], package_cache)
    assert (env / SITE / "ownedpy-1.0.dist-info" / "METADATA").is_file()
    assert _registry().details(env).pip_packages == []


def test_size_counts_hardlinks_once_and_is_cached(mk, envs_dir: Path) -> None:
    env = mk(envs_dir / "s", ("libfoo",))
    reg = _registry()
    first = reg.details(env, with_size=True).size_bytes
    assert first is not None
    assert first > 0
    blob = env / "share" / "blob"
    blob.write_bytes(os.urandom(64 * 1024))
    os.link(blob, env / "share" / "blob-link")
    reg.invalidate(env)
    second = reg.details(env, with_size=True).size_bytes
    assert second is not None
    assert 64 * 1024 <= second - first < 2 * 64 * 1024
    # pip adds a distribution: site-packages changes, conda-meta does not.
    env2 = mk(envs_dir / "s2", ("python",))
    before = reg.details(env2, with_size=True).size_bytes
    dist = env2 / SITE / "blob-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_bytes(b"Name: blob\nVersion: 1.0\n" + b"#" * 64 * 1024)
    after = reg.details(env2, with_size=True)
    assert before is not None
    assert after.size_bytes is not None
    assert after.size_bytes - before >= 64 * 1024
    assert [p.name for p in after.pip_packages] == ["blob"]


def test_protected_envs(mk, conda_root: Path, envs_dir: Path) -> None:
    mk(conda_root, ("libfoo",))
    team = mk(envs_dir / "team", ("libfoo",))
    mine = mk(envs_dir / "mine", ("libfoo",))
    reg = _registry(protected=[team])
    assert {i.name: i.protected for i in reg.list()} == {"base": True, "team": True, "mine": False}
    assert reg.check_mutable(mine) == mine
    for prefix in (conda_root, team):
        assert reg.check_allowed(prefix) == prefix
        with pytest.raises(Forbidden):
            reg.check_mutable(prefix)
    assert _registry(protected=[team], allow_protected_changes=True).check_mutable(team) == team


def test_the_servers_own_conda_prefix_is_protected(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "conda-root" / "envs" / "server"
    (own / "conda-meta").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(own))
    reg = _registry()
    assert reg.is_protected(own)
    with pytest.raises(Forbidden):
        reg.check_mutable(own)


def test_check_allowed_refuses_paths_outside(envs_dir: Path, conda_root: Path,
                                             tmp_path: Path) -> None:
    reg = _registry()
    outside = tmp_path / "outside"
    (outside / "conda-meta").mkdir(parents=True)
    (envs_dir / "sneaky").symlink_to(outside)
    (envs_dir / "nested").mkdir()
    assert reg.check_allowed(envs_dir / "ok") == envs_dir / "ok"
    assert reg.check_allowed(envs_dir / "x" / ".." / "ok") == envs_dir / "ok"
    for bad in (
        outside,
        envs_dir / "sneaky",  # a symlink inside pointing outside
        envs_dir / ".." / ".." / "outside",
        envs_dir / "nested" / "deeper",  # not directly inside an envs dir
        envs_dir,
        Path("/"),
        conda_root / "pkgs",
    ):
        with pytest.raises(Forbidden):
            reg.check_allowed(bad)
    for bad_input in (Path("relative/env"), Path(f"{envs_dir}/x\x00y")):
        with pytest.raises(InvalidRequest):
            reg.check_allowed(bad_input)
        with pytest.raises(InvalidRequest):
            reg.get(bad_input)
    with pytest.raises(InvalidRequest):
        reg.new_prefix(prefix=f"{envs_dir}\x00/x")


def test_new_prefix(mk, envs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = _registry()
    assert reg.new_prefix(name="fresh") == envs_dir / "fresh"
    assert reg.new_prefix(prefix=str(envs_dir / "by-path")) == envs_dir / "by-path"
    mk(envs_dir / "taken", ("libfoo",))
    with pytest.raises(Conflict):
        reg.new_prefix(name="taken")
    with pytest.raises(Conflict):
        reg.new_prefix(prefix=str(envs_dir / "taken"))
    (envs_dir / "a-file").write_text("")
    with pytest.raises(Conflict):
        reg.new_prefix(name="a-file")
    for bad in ("bad name", "a/b", "base", "", "-x", "x:y"):
        with pytest.raises(InvalidRequest):
            reg.new_prefix(name=bad)
    with pytest.raises(InvalidRequest):
        reg.new_prefix()
    with pytest.raises(InvalidRequest):
        reg.new_prefix(name="a", prefix=str(envs_dir / "a"))
    with pytest.raises(InvalidRequest):
        reg.new_prefix(prefix="relative/env")
    with pytest.raises(InvalidRequest):
        reg.new_prefix(prefix=str(envs_dir / ".." / "envs" / "x"))
    with pytest.raises(Forbidden):
        reg.new_prefix(prefix=str(tmp_path / "elsewhere"))


def test_new_prefix_conflicts_with_a_name_in_another_envs_dir(mk, tmp_path: Path,
                                                              envs_dir: Path) -> None:
    second = tmp_path / "second-envs"
    mk(second / "twin", ("libfoo",))
    reg = EnvRegistry(load_conda_config(extra_envs_dirs=[second]))
    assert reg.new_prefix(name="other") == envs_dir / "other"
    with pytest.raises(Conflict):
        reg.new_prefix(name="twin")


def test_register_and_unregister_like_conda(tmp_path: Path) -> None:
    txt = environments_txt()
    txt.parent.mkdir(parents=True)
    txt.write_text("/opt/other/env\n/home/someone/env")  # no trailing newline
    reg = _registry()
    reg.register(tmp_path / "a")
    reg.register(tmp_path / "a")
    reg.register(tmp_path / "b")
    assert txt.read_text().splitlines() == [
        "/opt/other/env", "/home/someone/env", str(tmp_path / "a"), str(tmp_path / "b")]
    reg.unregister(tmp_path / "a")
    reg.unregister(tmp_path / "never-there")
    assert txt.read_text() == f"/opt/other/env\n/home/someone/env\n{tmp_path / 'b'}\n"


def test_register_creates_the_file(tmp_path: Path) -> None:
    _registry().register(tmp_path / "x")
    assert environments_txt().read_text() == f"{tmp_path / 'x'}\n"


def test_listing_runs_no_subprocess(mk, envs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = mk(envs_dir / "n", ("libfoo",))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("discovery must not start a process")

    import subprocess

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    reg = _registry()
    assert [i.name for i in reg.list(refresh=True)] == ["n"]
    assert reg.details(env, with_size=True).packages


def test_env_that_appears_inside_a_listed_dir_is_found(mk, envs_dir: Path,
                                                      package_cache: Path) -> None:
    reg = _registry()
    (envs_dir / "late").mkdir()  # an install that has not written conda-meta yet
    assert reg.list() == []
    mk(envs_dir / "late", ("libfoo",))
    assert [i.name for i in reg.list()] == ["late"]


def test_history_and_kernels_changes_refresh_the_cache(mk, envs_dir: Path) -> None:
    env = mk(envs_dir / "h", ("libfoo",))
    reg = _registry()
    assert reg.details(env).requested_specs == []
    assert not reg.list()[0].has_kernel
    history.append_revision(env, command="jupyter-envs install libfoo", before=[], after=[],
                            update_specs=["libfoo >=1.9"])
    details = reg.details(env)
    assert details.requested_specs == ["libfoo >=1.9"]
    assert details.revision_count == 1
    assert details.packages[0].requested
    spec = env / "share" / "jupyter" / "kernels" / "custom"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text('{"argv": ["x"], "display_name": "X", "language": "x"}')
    assert reg.list()[0].has_kernel
    assert reg.details(env).kernelspecs == ["custom"]


def test_damaged_records_do_not_break_reading(mk, envs_dir: Path) -> None:
    env = mk(envs_dir / "damaged", ("libfoo",))
    (env / "conda-meta" / "broken-1.0-0.json").write_text("{not json")
    (env / "conda-meta" / "weird.json").write_text("[]")
    reg = _registry()
    assert reg.list()[0].package_count == 2  # counted by file name, as conda lists them
    assert [p.name for p in reg.details(env).packages] == ["libfoo"]


def test_warm_list_rereads_only_changed_envs(mk, channel: Path, envs_dir: Path,
                                             package_cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_envs.envs import reader

    first = mk(envs_dir / "w0", ("libfoo",))
    for i in range(1, 5):
        shutil.copytree(first, envs_dir / f"w{i}", symlinks=True, copy_function=os.link)
    reads: list[Path] = []
    real = reader.read_summary
    monkeypatch.setattr(reader, "read_summary", lambda p: reads.append(p) or real(p))
    reg = _registry()
    assert len(reg.list()) == 5
    assert len(reads) == 5
    reads.clear()
    reg.list()
    reg.get(envs_dir / "w3")
    assert reads == []
    install(channel, envs_dir / "w2", ["bar"], package_cache)
    assert [i.package_count for i in reg.list()] == [1, 1, 2, 1, 1]
    assert reads == [envs_dir / "w2"]
    reads.clear()
    assert len(reg.list(refresh=True)) == 5
    assert len(reads) == 5
