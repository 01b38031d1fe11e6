"""nb_conda_kernels-compatible kernel names and display names."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_envs.kernels import naming


@pytest.mark.parametrize(
    ("env", "kernel_dir", "expected"),
    [
        pytest.param("myenv", "python3", "conda-env-myenv-py", id="python3"),
        pytest.param("myenv", "python2", "conda-env-myenv-py", id="python2"),
        pytest.param("myenv", "ir", "conda-env-myenv-r", id="irkernel"),
        pytest.param("root", "python3", "conda-root-py", id="root"),
        pytest.param("root", "julia-1.9", "conda-root-julia-1.9", id="root-other"),
        pytest.param("my env", "Python3", "conda-env-my_env-py", id="space-and-case"),
        pytest.param("café", "python3", "conda-env-cafe-py", id="accent"),
    ],
)
def test_kernel_name(env: str, kernel_dir: str, expected: str) -> None:
    assert naming.kernel_name(env, kernel_dir) == expected


def test_env_names_follow_nb_conda_kernels() -> None:
    base = Path("/opt/conda")
    prefixes = [
        base,
        base / "envs" / "a",
        base / "conda-bld" / "build_env",
        Path("/home/u/.conda/envs/b"),
        Path("/home/u/.conda/envs/a"),
        Path("/srv/project/envs/a"),
        Path("/data/loose"),
        Path("/other/loose"),
    ]
    names = naming.env_names(prefixes, base_prefix=base, default_envs_dir=base / "envs")
    assert names == {
        base: "root",
        base / "envs" / "a": "a",
        Path("/home/u/.conda/envs/b"): ".conda-b",
        Path("/home/u/.conda/envs/a"): ".conda-a",
        Path("/srv/project/envs/a"): "project-a",
        Path("/data/loose"): "loose",
        Path("/other/loose"): "loose-2",
    }


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        pytest.param(naming.DEFAULT_NAME_FORMAT, "Python [conda env:myenv]", id="default"),
        pytest.param("{0} ({1})", "Python (myenv)", id="positional"),
        pytest.param("{display_name}", "Python 3 (ipykernel)", id="display_name"),
        pytest.param("{kernel}/{conda_kernel}", "python3/conda-env-myenv-py", id="kernel"),
    ],
)
def test_display_name(fmt: str, expected: str) -> None:
    shown = naming.display_name(
        fmt,
        env_name="myenv",
        kernel_name="conda-env-myenv-py",
        kernel_dir_name="python3",
        original="Python 3 (ipykernel)",
    )
    assert shown == expected


def test_display_name_keeps_non_python_language() -> None:
    shown = naming.display_name(
        naming.DEFAULT_NAME_FORMAT,
        env_name="r",
        kernel_name="conda-env-r-r",
        kernel_dir_name="ir",
        original="R",
    )
    assert shown == "R [conda env:r]"
