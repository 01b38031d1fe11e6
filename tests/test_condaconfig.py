"""conda configuration: search order, precedence, merging, and channel resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jupyter_envs.envs.condaconfig import (
    DEFAULT_CHANNELS,
    CondaConfig,
    canonical_channel_name,
    channel_url,
    load_conda_config,
    resolve_channels,
)
from jupyter_envs.errors import InvalidRequest


def _rc(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "h"
    home.mkdir()
    return home


def test_defaults_without_any_configuration(home: Path) -> None:
    cfg = load_conda_config({"HOME": str(home)})
    assert cfg.root_prefixes == ()
    assert cfg.envs_dirs == (home / ".conda" / "envs",)
    assert cfg.channels == DEFAULT_CHANNELS
    assert cfg.channel_alias == "https://conda.anaconda.org"
    assert cfg.pkgs_dirs == (home / ".conda" / "pkgs",)


def test_root_prefixes_from_environment_and_config(tmp_path: Path, home: Path) -> None:
    _rc(home / ".condarc", {"root_prefix": str(tmp_path / "configured")})
    env = {
        "HOME": str(home),
        "CONDA_ROOT": str(tmp_path / "croot"),
        "CONDA_EXE": str(tmp_path / "miniforge" / "condabin" / "conda"),
        "MAMBA_ROOT_PREFIX": str(tmp_path / "mamba"),
    }
    cfg = load_conda_config(env)
    assert cfg.root_prefixes == (
        tmp_path / "croot", tmp_path / "miniforge", tmp_path / "mamba", tmp_path / "configured")


def test_later_files_win_scalars_and_come_first_in_lists(tmp_path: Path, home: Path) -> None:
    root = tmp_path / "root"
    _rc(root / ".condarc", {"channel_alias": "https://root.example", "channels": ["r1"],
                            "envs_dirs": [str(tmp_path / "root-envs")]})
    _rc(home / ".config" / "conda" / ".condarc", {"channels": ["xdg"]})
    _rc(home / ".condarc", {"channel_alias": "https://home.example", "channels": ["h1", "r1"]})
    condarc = _rc(tmp_path / "explicit.yml", {"envs_dirs": ["~/my-envs"], "channels": ["c1"]})
    env = {"HOME": str(home), "CONDA_ROOT": str(root), "CONDARC": str(condarc)}
    cfg = load_conda_config(env)
    assert cfg.channel_alias == "https://home.example"
    assert cfg.channels == tuple(f"https://home.example/{c}" for c in ("c1", "h1", "r1", "xdg"))
    assert cfg.envs_dirs[:2] == (home / "my-envs", tmp_path / "root-envs")


def test_condarc_d_and_xdg_config_home_are_read(tmp_path: Path, home: Path) -> None:
    xdg = tmp_path / "xdg"
    _rc(xdg / "conda" / "condarc.d" / "10-team.yml", {"channels": ["team"]})
    _rc(xdg / "conda" / "condarc.d" / "notes.txt", {"channels": ["ignored"]})
    cfg = load_conda_config({"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)})
    assert cfg.channels == ("https://conda.anaconda.org/team",)


def test_envs_dirs_order_env_vars_first_then_config_then_fixed(
    tmp_path: Path, home: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _rc(home / ".condarc", {"envs_dirs": [str(tmp_path / "rc-envs")]})
    env = {
        "HOME": str(home),
        "CONDA_ROOT": str(root),
        "CONDA_ENVS_PATH": f"{tmp_path / 'a'}:{tmp_path / 'b'}",
    }
    cfg = load_conda_config(env, extra_envs_dirs=[tmp_path / "extra"])
    assert cfg.envs_dirs == (
        tmp_path / "a", tmp_path / "b", tmp_path / "rc-envs", root / "envs",
        home / ".conda" / "envs", tmp_path / "extra",
    )


def test_unwritable_root_puts_user_envs_first(tmp_path: Path, home: Path) -> None:
    cfg = load_conda_config({"HOME": str(home), "CONDA_ROOT": str(tmp_path / "missing-root")})
    assert cfg.envs_dirs == (home / ".conda" / "envs", tmp_path / "missing-root" / "envs")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"channels: [unclosed\n", id="bad-yaml"),
        pytest.param(b"- just\n- a list\n", id="not-a-mapping"),
        pytest.param(b"\xff\xfe\x00binary", id="binary"),
        pytest.param(b"channels: 42\nenvs_dirs: {a: 1}\n", id="wrong-types"),
        pytest.param(b"# " + b"x" * 1_100_000, id="oversized"),
    ],
)
def test_garbled_files_are_skipped(tmp_path: Path, home: Path, content: bytes) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_bytes(content)
    _rc(home / ".condarc", {"channels": ["fine"]})
    cfg = load_conda_config({"HOME": str(home), "CONDARC": str(bad)})
    assert cfg.channels == ("https://conda.anaconda.org/fine",)


def test_environment_variables_override_files(tmp_path: Path, home: Path) -> None:
    _rc(home / ".condarc", {"channels": ["file-chan"], "channel_alias": "https://file.example"})
    env = {
        "HOME": str(home),
        "CONDA_CHANNELS": "env-chan",
        "CONDA_CHANNEL_ALIAS": "https://env.example/",
        "CONDA_PKGS_DIRS": str(tmp_path / "p1") + "," + str(tmp_path / "p2"),
    }
    cfg = load_conda_config(env)
    assert cfg.channels == ("https://env.example/env-chan", "https://env.example/file-chan")
    assert cfg.pkgs_dirs[:2] == (tmp_path / "p1", tmp_path / "p2")


def test_channels_argument_replaces_configured_ones(home: Path) -> None:
    _rc(home / ".condarc", {"channels": ["conda-forge"]})
    cfg = load_conda_config({"HOME": str(home)}, channels=["bioconda", "defaults"])
    assert cfg.channels == ("https://conda.anaconda.org/bioconda", *DEFAULT_CHANNELS)


def test_mirror_setup_custom_and_default_channels(home: Path) -> None:
    _rc(home / ".condarc", {
        "channel_alias": "https://mirror.example/conda",
        "default_channels": ["https://mirror.example/pkgs/main"],
        "custom_channels": {"internal": "https://artifacts.example/conda/"},
        "mirrored_channels": {"conda-forge": ["https://cf-mirror.example/conda-forge"]},
        "channels": ["conda-forge", "internal", "internal/label/dev", "bioconda", "defaults"],
    })
    cfg = load_conda_config({"HOME": str(home)})
    assert cfg.channels == (
        "https://cf-mirror.example/conda-forge",
        "https://artifacts.example/conda/internal",
        "https://artifacts.example/conda/internal/label/dev",
        "https://mirror.example/conda/bioconda",
        "https://mirror.example/pkgs/main",
    )
    assert channel_url("pkgs/main", cfg) == "https://mirror.example/pkgs/main"
    assert canonical_channel_name("https://artifacts.example/conda/internal", cfg) == "internal"
    assert canonical_channel_name("https://mirror.example/conda/bioconda/noarch", cfg) == "bioconda"


def test_conftest_condarc_gives_the_local_channel(channel: Path, conda_root: Path) -> None:
    cfg = load_conda_config()
    assert cfg.channels == (channel.resolve().as_uri(),)
    assert cfg.root_prefixes == (conda_root,)
    assert cfg.envs_dirs[0] == conda_root / "envs"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("conda-forge", "https://conda.anaconda.org/conda-forge", id="name"),
        pytest.param("conda-forge/label/dev", "https://conda.anaconda.org/conda-forge/label/dev",
                     id="label"),
        pytest.param("https://host.example/chan/", "https://host.example/chan", id="url"),
        pytest.param("file:///srv/chan", "file:///srv/chan", id="file-url"),
        pytest.param("/srv/chan/", "file:///srv/chan", id="abs-path"),
        pytest.param("/srv/x/../chan", "file:///srv/chan", id="dotdot-path"),
        pytest.param("pkgs/main", "https://repo.anaconda.com/pkgs/main", id="defaults-member"),
    ],
)
def test_channel_url(given: str, expected: str) -> None:
    assert channel_url(given, CondaConfig()) == expected


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("", id="empty"),
        pytest.param("two words", id="space"),
        pytest.param("javascript://x", id="scheme"),
        pytest.param("defaults", id="defaults-is-several"),
        pytest.param("a/../b", id="dotdot-name"),
    ],
)
def test_channel_url_refuses(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        channel_url(bad, CondaConfig())


def test_resolve_channels_expands_defaults_and_dedups() -> None:
    cfg = CondaConfig()
    got = resolve_channels(["defaults", "pkgs/main", "conda-forge"], cfg)
    assert got == (*DEFAULT_CHANNELS, "https://conda.anaconda.org/conda-forge")


def test_restricted_search_path_reads_only_condarc(tmp_path: Path, home: Path) -> None:
    _rc(home / ".condarc", {"channels": ["from-home"]})
    condarc = _rc(tmp_path / "only.yml", {"channels": ["only"]})
    env = {"HOME": str(home), "CONDARC": str(condarc), "CONDA_RESTRICT_RC_SEARCH_PATH": "1"}
    assert load_conda_config(env).channels == ("https://conda.anaconda.org/only",)
    del env["CONDA_RESTRICT_RC_SEARCH_PATH"]
    assert load_conda_config(env).channels == tuple(
        f"https://conda.anaconda.org/{c}" for c in ("only", "from-home"))


def test_roots_from_conda_python_exe(tmp_path: Path, home: Path) -> None:
    env = {"HOME": str(home), "CONDA_PYTHON_EXE": str(tmp_path / "mf" / "bin" / "python")}
    assert load_conda_config(env).root_prefixes == (tmp_path / "mf",)


def test_roots_found_in_environments_txt_when_nothing_names_one(tmp_path: Path,
                                                                home: Path) -> None:
    install = tmp_path / "miniforge3"
    (install / "conda-meta").mkdir(parents=True)
    (install / "condabin").mkdir()
    plain_env = tmp_path / "miniforge3" / "envs" / "work"
    (plain_env / "conda-meta").mkdir(parents=True)
    txt = home / ".conda" / "environments.txt"
    txt.parent.mkdir()
    txt.write_text(f"{install}\n{plain_env}\n{tmp_path / 'gone'}\n")
    cfg = load_conda_config({"HOME": str(home)})
    assert cfg.root_prefixes == (install,)
    assert install / "envs" in cfg.envs_dirs
    # A root named by the environment wins; the registered one is not guessed then.
    named = load_conda_config({"HOME": str(home), "CONDA_ROOT": str(tmp_path / "other")})
    assert named.root_prefixes == (tmp_path / "other",)
