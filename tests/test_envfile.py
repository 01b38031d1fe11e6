"""environment.yml / lock file parsing and writing (no environment needed)."""

from __future__ import annotations

import pytest

from jupyter_envs.envs.envfile import (
    MAX_FILE_BYTES,
    PIP_NOT_SUPPORTED,
    EnvFile,
    parse_environment_yml,
    parse_explicit,
    read_lock,
    validate_channel,
    write_environment_yml,
)
from jupyter_envs.errors import InvalidRequest


def test_parse_full_file() -> None:
    text = (
        "name: science\n"
        "channels:\n  - conda-forge\n  - file:///srv/chan\n"
        "dependencies:\n  - python=3.11\n  - numpy >=1.26\n  - conda-forge::scipy\n"
    )
    assert parse_environment_yml(text) == EnvFile(
        name="science",
        channels=("conda-forge", "file:///srv/chan"),
        specs=("python=3.11", "numpy >=1.26", "conda-forge::scipy"),
    )


def test_nodefaults_is_not_a_channel() -> None:
    parsed = parse_environment_yml("channels: [conda-forge, nodefaults]\ndependencies: [bar]\n")
    assert parsed.channels == ("conda-forge",)


def test_prefix_is_ignored_on_purpose() -> None:
    parsed = parse_environment_yml("name: a\nprefix: /opt/x\ndependencies: [bar]\n")
    assert parsed == EnvFile(name="a", channels=(), specs=("bar",))


def test_name_is_optional() -> None:
    assert parse_environment_yml("dependencies: [bar]\n").name is None


def test_pip_list_is_refused_with_its_message() -> None:
    text = "dependencies:\n  - python\n  - pip\n  - pip:\n    - requests\n"
    with pytest.raises(InvalidRequest) as info:
        parse_environment_yml(text)
    assert str(info.value) == PIP_NOT_SUPPORTED


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("- bar\n", id="list-not-mapping"),
        pytest.param("dependencies: bar\n", id="deps-not-list"),
        pytest.param("dependencies: [bar]\nchannels: conda-forge\n", id="channels-not-list"),
        pytest.param("dependencies: [bar]\nchannels: ['-c x']\n", id="channel-option"),
        pytest.param("dependencies: [bar]\nvariables: {A: '1'}\n", id="unknown-key"),
        pytest.param("dependencies: [1.5]\n", id="number-spec"),
        pytest.param("dependencies: [{foo: [x]}]\n", id="other-mapping"),
        pytest.param("dependencies: ['bar; rm -rf /']\n", id="shell-spec"),
        pytest.param("name: 'a/b'\ndependencies: [bar]\n", id="bad-name"),
        pytest.param("dependencies: [bar]\n\x00", id="nul"),
        pytest.param("dependencies: !!python/name:os.system []\n", id="python-tag"),
        pytest.param("a: &x [*x]\n", id="recursive-alias"),
    ],
)
def test_bad_files_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_environment_yml(text)


def test_size_cap() -> None:
    text = "dependencies: [bar]\n" + "#" * MAX_FILE_BYTES
    with pytest.raises(InvalidRequest, match="larger than"):
        parse_environment_yml(text)


def test_write_then_parse_round_trip() -> None:
    text = write_environment_yml("e", ["file:///c"], ["bar=2.0=0", "libfoo=1.10=0"])
    assert "prefix" not in text
    assert parse_environment_yml(text) == EnvFile(
        name="e", channels=("file:///c",), specs=("bar=2.0=0", "libfoo=1.10=0")
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("not a lock", id="garbage"),
        pytest.param("version: 6\n", id="no-envs"),
        pytest.param("version: 999\nenvironments: {}\npackages: []\n", id="future-version"),
    ],
)
def test_bad_lock_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        read_lock(text, "linux-64")


@pytest.mark.parametrize(
    "name",
    [pytest.param("", id="empty"), pytest.param("a b", id="space"), pytest.param("-x", id="opt")],
)
def test_bad_channel(name: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_channel(name)


def test_parse_explicit() -> None:
    text = (
        "# platform: linux-64\n@EXPLICIT\n"
        "https://conda.anaconda.org/conda-forge/noarch/tzdata-2024a-h0c530f3_0.conda#"
        + "a" * 32
        + "\nfile:///srv/chan/linux-64/python-3.11.7-h0_0.tar.bz2#sha256:"
        + "b" * 64
        + "\nhttps://example.org/c/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2\n"
    )
    entries = parse_explicit(text)
    assert [(e.channel, e.subdir, e.name) for e in entries] == [
        ("https://conda.anaconda.org/conda-forge", "noarch", "tzdata"),
        ("file:///srv/chan", "linux-64", "python"),
        ("https://example.org/c", "noarch", "six"),
    ]
    assert entries[0].md5 == "a" * 32
    assert entries[1].sha256 == "b" * 64
    assert entries[2].md5 is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("https://x/c/noarch/a-1-0.tar.bz2\n", id="no-marker"),
        pytest.param("@EXPLICIT\n", id="no-packages"),
        pytest.param("@EXPLICIT\nhttps://x/c/noarch/a-1-0.zip\n", id="not-archive"),
        pytest.param("@EXPLICIT\nftp://x/c/noarch/a-1-0.tar.bz2\n", id="scheme"),
        pytest.param("@EXPLICIT\nhttps://x/c/noarch/a-1.tar.bz2\n", id="bad-filename"),
        pytest.param("@EXPLICIT\nhttps://x/c/noarch/a-1-0.tar.bz2#xyz\n", id="bad-hash"),
    ],
)
def test_bad_explicit_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_explicit(text)
