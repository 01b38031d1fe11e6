"""Changing environments: install / update / remove, dry runs, failures, rollback, delete."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import localchannel
import pytest
from opsutil import (
    Recorder,
    add_big_packages,
    apply_plan,
    cancel_at_first_link,
    dists,
    make_manager,
    registered,
    tree,
)

from jupyter_envs.envs import history, snapshots
from jupyter_envs.envs.backends.rattler_support import RESTORING
from jupyter_envs.envs.manager import CreateRequest, EnvManager
from jupyter_envs.envs.model import ChangeAction
from jupyter_envs.errors import (
    BackendError,
    Forbidden,
    InvalidRequest,
    NotFound,
    ReadOnly,
    SolveError,
)


@pytest.fixture
def manager() -> EnvManager:
    return make_manager()


@pytest.fixture
async def env(manager: EnvManager, envs_dir: Path) -> Path:
    """An environment at revision 0: bar 1.0 with libfoo 1.9 (both requested)."""
    await manager.create(CreateRequest(name="work", specs=("bar=1.0", "libfoo=1.9")), Recorder())
    assert dists(envs_dir / "work") == {"bar-1.0-0", "libfoo-1.9-0"}
    return envs_dir / "work"


@pytest.mark.parametrize(
    ("action", "specs", "expected"),
    [
        pytest.param("install", ["hello"], {"install": ["hello", "python"]}, id="install"),
        pytest.param("update", ["libfoo"], {"change": ["libfoo"]}, id="update"),
        pytest.param(
            "install", ["bar=2.0", "libfoo>=1.10"], {"change": ["bar", "libfoo"]}, id="upgrade"
        ),
        pytest.param("remove", ["bar"], {"remove": ["bar"]}, id="remove"),
    ],
)
async def test_change_does_what_the_plan_said(
    manager: EnvManager,
    env: Path,
    action: ChangeAction,
    specs: list[str],
    expected: dict[str, list[str]],
) -> None:
    before = dists(env)
    history_before = (env / "conda-meta" / "history").read_text()
    preview = await manager.preview_change(env, action, specs)
    assert dists(env) == before  # the dry run wrote nothing
    assert (env / "conda-meta" / "history").read_text() == history_before
    got = {
        "install": sorted(p.name for p in preview.install),
        "remove": sorted(p.name for p in preview.remove),
        "change": sorted(c.name for c in preview.change),
    }
    assert {k: v for k, v in got.items() if v} == expected
    plan = await manager.change(env, action, specs, Recorder())
    assert plan == preview
    assert dists(env) == apply_plan(before, plan)
    revisions = await manager.revisions(env)
    assert len(revisions) == 2
    assert revisions[1].command.startswith(f"jupyter-envs {action} --prefix ")
    if action == "remove":
        assert revisions[1].remove_specs == specs
    else:
        assert revisions[1].update_specs == specs


async def test_update_moves_to_newest(manager: EnvManager, env: Path) -> None:
    plan = await manager.change(env, "update", ["libfoo"], Recorder())
    assert [(c.old.version, c.new.version) for c in plan.change] == [("1.9", "1.10")]
    assert (env / "share/libfoo/VERSION").read_text() == "1.10\n"
    assert "libfoo" in history.requested_specs(env)


async def test_nothing_to_do_writes_no_revision(manager: EnvManager, env: Path) -> None:
    plan = await manager.change(env, "install", ["bar"], Recorder())
    assert plan.empty
    assert len(await manager.revisions(env)) == 1


async def test_remove_or_update_of_missing_package(manager: EnvManager, env: Path) -> None:
    before = tree(env)
    for action in ("remove", "update"):
        with pytest.raises(NotFound, match="hello"):
            await manager.change(env, action, ["hello"], Recorder())  # type: ignore[arg-type]
    assert tree(env) == before


async def test_conflicting_install_leaves_env_unchanged(manager: EnvManager, env: Path) -> None:
    before = tree(env)
    with pytest.raises(SolveError, match="libfoo"):
        await manager.change(env, "install", ["bar=2.0"], Recorder())  # libfoo=1.9 is pinned
    assert tree(env) == before


async def test_remove_of_a_needed_package_is_refused(manager: EnvManager, env: Path) -> None:
    before = tree(env)
    with pytest.raises(SolveError, match="libfoo"):
        await manager.change(env, "remove", ["libfoo"], Recorder())
    assert tree(env) == before


@pytest.mark.parametrize(
    ("action", "specs"),
    [
        pytest.param("install", ["--force"], id="option"),
        pytest.param("install", [], id="empty"),
        pytest.param("install", ["bar`id`"], id="backtick"),
        pytest.param("frobnicate", ["bar"], id="bad-action"),
    ],
)
async def test_bad_change_refused_before_disk(
    manager: EnvManager, env: Path, action: ChangeAction, specs: list[str]
) -> None:
    before = tree(env)
    with pytest.raises(InvalidRequest):
        manager.check_change(env, action, specs)
    with pytest.raises(InvalidRequest):
        await manager.change(env, action, specs, Recorder())
    assert tree(env) == before


async def test_failed_change_leaves_env_as_it_was(mutable_channel: Path, envs_dir: Path) -> None:
    url = localchannel.channel_url(mutable_channel)
    manager = make_manager()
    await manager.create(CreateRequest(name="f", specs=("bar=1.0",), channels=(url,)), Recorder())
    prefix = envs_dir / "f"
    # A package the index lists but whose archive is gone: the install must fail.
    pkg = localchannel.Pkg("ghost", "1.0", files={"share/ghost": b"boo\n"})
    await asyncio.to_thread(localchannel.add_packages, mutable_channel, [pkg])
    (mutable_channel / "noarch" / pkg.filename).unlink()
    before = tree(prefix)
    with pytest.raises(BackendError) as info:
        # bar 2.0 would also change bar and libfoo: they must be put back too.
        await manager.change(prefix, "install", ["ghost", "bar=2.0"], Recorder(), channels=[url])
    assert "left as it was" in str(info.value)
    assert tree(prefix) == before
    assert len(await manager.revisions(prefix)) == 1


async def test_cancelled_change_leaves_env_as_it_was(mutable_channel: Path, envs_dir: Path) -> None:
    url, specs = await add_big_packages(mutable_channel)
    manager = make_manager()
    req = CreateRequest(name="c", specs=("bar=1.0",), channels=(url,))
    await manager.create(req, Recorder())
    prefix = envs_dir / "c"
    await manager.create(CreateRequest(name="warm", specs=specs, channels=(url,)), Recorder())
    before = tree(prefix)
    rec = Recorder()
    work = manager.change(prefix, "install", [*specs, "bar=2.0"], rec, channels=[url])
    await cancel_at_first_link(work, rec)
    assert RESTORING in rec.lines
    assert tree(prefix) == before
    await asyncio.sleep(0.3)
    assert tree(prefix) == before
    assert len(await manager.revisions(prefix)) == 1


async def test_rollback_restores_exact_package_sets(manager: EnvManager, env: Path) -> None:
    sets = [dists(env)]
    await manager.change(env, "install", ["hello"], Recorder())
    sets.append(dists(env))
    await manager.change(env, "update", ["libfoo", "bar"], Recorder())
    sets.append(dists(env))
    await manager.change(env, "remove", ["hello"], Recorder())
    sets.append(dists(env))
    assert len({frozenset(s) for s in sets}) == 4
    for revision in (0, 2, 1):
        plan = await manager.rollback(env, revision, Recorder())
        assert not plan.empty
        assert dists(env) == sets[revision]
    revisions = await manager.revisions(env)
    assert len(revisions) == 7  # every rollback is a revision of its own
    assert revisions[-1].command.endswith("--revision 1")
    assert sorted(history.requested_specs(env)) == ["bar=1.0", "hello", "libfoo=1.9"]
    assert snapshots.snapshot_revisions(env) == list(range(7))


async def test_rollback_works_offline(mutable_channel: Path, envs_dir: Path) -> None:
    url = localchannel.channel_url(mutable_channel)
    manager = make_manager()
    await manager.create(
        CreateRequest(name="o", specs=("libfoo=1.9",), channels=(url,)), Recorder()
    )
    prefix = envs_dir / "o"
    first = dists(prefix)
    await manager.change(prefix, "update", ["libfoo"], Recorder(), channels=[url])
    shutil.rmtree(mutable_channel)
    await manager.rollback(prefix, 0, Recorder())
    assert dists(prefix) == first


async def test_rollback_errors(manager: EnvManager, env: Path) -> None:
    with pytest.raises(NotFound):
        await manager.rollback(env, 5, Recorder())
    with pytest.raises(InvalidRequest):
        await manager.rollback(env, -1, Recorder())
    # A revision made by another tool has no snapshot: refused, not guessed.
    snapshots.snapshot_path(env, 0).unlink()
    with pytest.raises(NotFound, match="no package snapshot"):
        await manager.rollback(env, 0, Recorder())


async def test_change_of_env_without_history_keeps_a_baseline(
    manager: EnvManager, env: Path
) -> None:
    # As if conda had made it without history: the state before the change becomes
    # revision 0 (as conda records it), so it can be rolled back to.
    (env / "conda-meta" / "history").write_text("")
    for path in snapshots.snapshot_revisions(env):
        snapshots.snapshot_path(env, path).unlink()
    first = dists(env)
    await manager.change(env, "install", ["hello"], Recorder())
    assert [r.number for r in await manager.revisions(env)] == [0, 1]
    await manager.rollback(env, 0, Recorder())
    assert dists(env) == first


async def test_delete_removes_and_unregisters(manager: EnvManager, env: Path) -> None:
    assert str(env) in registered()
    await manager.delete(env, Recorder())
    assert not env.exists()
    assert str(env) not in registered()
    assert list(env.parent.iterdir()) == []
    with pytest.raises(NotFound):
        await manager.delete(env, Recorder())


async def test_delete_outside_envs_dirs_is_forbidden(manager: EnvManager, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "conda-meta").mkdir(parents=True)
    with pytest.raises(Forbidden):
        await manager.delete(outside, Recorder())
    assert outside.exists()


async def test_read_only_refuses_every_change(env: Path) -> None:
    manager = make_manager(read_only=True)
    before = tree(env)
    with pytest.raises(ReadOnly):
        await manager.change(env, "install", ["hello"], Recorder())
    with pytest.raises(ReadOnly):
        await manager.rollback(env, 0, Recorder())
    with pytest.raises(ReadOnly):
        await manager.delete(env, Recorder())
    assert tree(env) == before
    # Reading still works.
    assert (await manager.export(env, "from-history")).text


async def test_listed_env_outside_envs_dirs_is_readable_not_changeable(
    make_env, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """An environment made with ``conda create -p`` elsewhere is listed through
    environments.txt: it can be read and exported, but not changed from here."""
    from jupyter_envs.envs.registry import environments_txt

    outside = await make_env("proj", ("libfoo",), prefix=tmp_path / "project" / "env")
    environments_txt().parent.mkdir(parents=True, exist_ok=True)
    environments_txt().write_text(f"{outside}\n")
    manager = make_manager()
    before = tree(outside)
    export = await manager.export(outside, "explicit")
    assert "@EXPLICIT" in export.text
    assert isinstance(await manager.revisions(outside), list)
    plan = await manager.preview_change(outside, "install", ["bar"])
    assert [p.name for p in plan.install] == ["bar"]
    with pytest.raises(Forbidden):
        manager.check_change(outside, "install", ["bar"])
    with pytest.raises(Forbidden):
        await manager.delete(outside, Recorder())
    assert tree(outside) == before


async def test_protected_env_is_never_deleted_even_when_changes_are_allowed(
    make_env,  # type: ignore[no-untyped-def]
) -> None:
    from jupyter_envs.envs.backends.rattler import RattlerBackend
    from jupyter_envs.envs.condaconfig import load_conda_config
    from jupyter_envs.envs.registry import EnvRegistry

    prefix = await make_env("guarded", ("libfoo",))
    registry = EnvRegistry(
        load_conda_config(), protected=[prefix], allow_protected_changes=True
    )
    manager = EnvManager(registry, RattlerBackend())
    manager.check_change(prefix, "install", ["bar"])  # changes are allowed...
    before = tree(prefix)
    with pytest.raises(Forbidden, match="never deleted"):
        await manager.delete(prefix, Recorder())  # ...deleting is not
    assert tree(prefix) == before
