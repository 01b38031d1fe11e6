"""Parsing recorded ``--json`` outputs of conda, mamba and micromamba into Plans and errors.

The outputs were pasted from the real tools into public issue threads; tests/data/cli/README.md
names the tool, version and thread of each (``synthetic-*`` files are written by hand).
"""

from __future__ import annotations

import json

import pytest
from cliutil import DATA, recorded, result_of

from jupyter_envs.envs.backends.cli_parse import (
    error_from_result,
    final_document,
    is_error,
    package_from_record,
    parse_documents,
    parse_progress,
    plan_from_result,
    split_records,
)
from jupyter_envs.envs.model import CondaPackage
from jupyter_envs.errors import BackendError, NotFound, SolveError


def test_conda_packages_not_found_is_a_solve_error() -> None:
    exc = error_from_result(
        result_of("conda-4.13.0-install-dry-run-PackagesNotFoundError.json"), "conda"
    )
    assert isinstance(exc, SolveError)
    assert "xyz" in str(exc)


def test_conda_packages_not_found_while_removing_is_not_found() -> None:
    result = result_of("conda-4.13.0-install-dry-run-PackagesNotFoundError.json")
    exc = error_from_result(result, "conda", removing=True)
    assert isinstance(exc, NotFound)


def test_micromamba_solver_problems_are_a_solve_error() -> None:
    exc = error_from_result(result_of("micromamba-1.4-create-solver-problems.json"), "micromamba")
    assert isinstance(exc, SolveError)
    assert "libevent >=2.1.12" in str(exc)


def test_old_conda_unsatisfiable_after_a_progress_bar() -> None:
    exc = error_from_result(result_of("conda-3.18-create-unsatisfiable.txt"), "conda")
    assert isinstance(exc, SolveError)
    assert "python 3.5*" in str(exc)


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        pytest.param(
            "synthetic-conda-LibMambaUnsatisfiableError.json",
            SolveError,
            "libfoo >=1.10",
            id="libmamba-unsatisfiable",
        ),
        pytest.param(
            "synthetic-conda-EnvironmentLocationNotFound.json",
            NotFound,
            "/nowhere/env",
            id="location-not-found",
        ),
    ],
)
def test_synthetic_conda_errors(name: str, kind: type[Exception], text: str) -> None:
    exc = error_from_result(result_of(name), "conda")
    assert type(exc) is kind
    assert text in str(exc)


def test_unknown_error_keeps_the_tool_message() -> None:
    exc = error_from_result(
        {"exception_name": "CondaHTTPError", "message": "HTTP 000 CONNECTION FAILED"}, "conda"
    )
    assert type(exc) is BackendError
    assert "CONNECTION FAILED" in str(exc)


def test_no_json_at_all_uses_stderr() -> None:
    exc = error_from_result(None, "mamba", stderr="info x\ncritical libmamba Could not open\n")
    assert type(exc) is BackendError
    assert "critical libmamba Could not open" in str(exc)


def test_mamba_dry_run_after_text_line() -> None:
    docs = parse_documents(recorded("mamba-0.3-create-dry-run.txt"))
    assert len(docs) == 1
    plan = plan_from_result(docs[0])
    assert plan.install == [
        CondaPackage(
            "zlib", "1.2.11", "h01d97ff_1006", 1006, "api/conda/conda-remote-conda-forge", "osx-64"
        )
    ]
    assert not plan.remove
    assert not plan.change


def test_mamba2_link_entry() -> None:
    entry = json.loads(recorded("mamba-2.0-env-create-link-entry.json"))
    pkg = package_from_record(entry)
    assert (pkg.name, pkg.version, pkg.build, pkg.build_number) == (
        "python_abi",
        "3.13",
        "5_cp313",
        5,
    )
    assert pkg.subdir == "linux-64"
    assert pkg.size == 6217
    assert pkg.url.endswith("/linux-64/python_abi-3.13-5_cp313.conda")


def test_conda43_actions_list_is_a_change() -> None:
    plan = plan_from_result(result_of("conda-4.3-update-all-dry-run-actions.json"))
    assert not plan.install
    assert not plan.remove
    [change] = plan.change
    assert (change.name, change.old.version, change.new.version) == ("pytest", "3.3.0", "3.3.1")


def test_conda42_string_entries() -> None:
    # The conda 4.2 shape quoted in conda/conda PR #5628.
    plan = plan_from_result({"actions": {"LINK": ["defaults::vs2015_runtime-14.00.23026.0-0 1"]}})
    [pkg] = plan.install
    assert (pkg.name, pkg.version, pkg.build, pkg.channel) == (
        "vs2015_runtime",
        "14.00.23026.0",
        "0",
        "defaults",
    )


def test_empty_dry_run_is_an_empty_plan() -> None:
    plan = plan_from_result(result_of("conda-create-empty-dry-run.json"))
    assert plan.empty


def test_already_installed_is_success_with_an_empty_plan() -> None:
    result = result_of("mamba-0.10-env-create-already-installed.json")
    assert not is_error(result)
    assert plan_from_result(result).empty


def test_synthetic_update_pairs_link_and_unlink() -> None:
    plan = plan_from_result(result_of("synthetic-conda-install-update.json"))
    assert [p.dist for p in plan.install] == ["bar-2.0-0"]
    assert [p.dist for p in plan.remove] == ["oldfoo-user-1.0-0"]
    [change] = plan.change
    assert (change.old.version, change.new.version) == ("1.9", "1.10")


def test_env_list_document() -> None:
    doc = result_of("conda-env-list.json")
    assert doc["envs"][1].endswith("my-first-env")


def test_conda_list_entries() -> None:
    [entry] = json.loads(recorded("conda-4.6-list.json"))
    pkg = package_from_record(entry)
    assert (pkg.name, pkg.version, pkg.build, pkg.channel, pkg.subdir) == (
        "testhash",
        "1.0.0",
        "haw3s0m3ha5h",
        "local",
        "",
    )


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(42, id="number"),
        pytest.param({"name": "x"}, id="no-version"),
        pytest.param({"dist_name": "nodashes"}, id="bad-dist"),
        pytest.param("", id="empty-string"),
    ],
)
def test_unreadable_entries_are_backend_errors(entry: object) -> None:
    with pytest.raises(BackendError):
        package_from_record(entry)


def test_nul_separated_fetch_records() -> None:
    raw = (DATA / "conda-22.11-create-fetch-progress.bin").read_bytes().decode()
    records = [json.loads(r) for r in split_records(raw)]
    assert len(records) == 3
    steps = [parse_progress(r) for r in records]
    assert [(s.phase, s.done, s.total, s.label) for s in steps if s] == [
        ("download", 8, 100, "pandas-1.5.2"),
        ("download", 1, 100, "mkl-2021.4.0"),
        ("download", 21, 100, "numpy-base-1.23.5"),
    ]
    assert final_document(records) is None


def test_old_newline_progress_records() -> None:
    docs = parse_documents(recorded("conda-4.1-install-progress.txt"))
    steps = [parse_progress(d) for d in docs]
    assert all(s is not None for s in steps)
    first, last = steps[0], steps[-1]
    assert first is not None
    assert last is not None
    assert (first.phase, first.done, first.total, first.label) == (
        "download",
        100,
        100,
        "numpy-1.11.1-p",
    )
    assert (last.phase, last.done, last.total, last.finished) == ("link", 2, 2, True)
