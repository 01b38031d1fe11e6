"""conda-meta/history: conda's format read and written, requested specs as conda sees them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from jupyter_envs.envs import history
from jupyter_envs.envs.model import CondaPackage
from jupyter_envs.errors import NotFound

# A history in the shape conda writes it: a first block listing the full state (as old
# conda did), diffs, update / install / remove specs, the conda < 4.5 spec syntax, and
# the channel-qualified dist strings of conda >= 4.4.
CONDA_HISTORY = """\
==> 2023-03-01 10:00:00 <==
# cmd: /opt/conda/bin/conda create -n demo python=3.10 numpy
numpy-1.24.2-py310_0
python-3.10.9-h0_0
zlib-1.2.13-h1_0
==> 2023-03-02 11:30:00 <==
# cmd: /opt/conda/bin/conda install "numpy>=1.25" requests
# conda version: 23.1.0
-defaults/linux-64::numpy-1.24.2-py310_0
+conda-forge/linux-64::numpy-1.25.0-py310_0
+conda-forge/noarch::requests-2.31.0-pyhd8ed1ab_0
# update specs: ['numpy>=1.25', 'requests']
==> 2023-03-03 09:15:00 <==
# cmd: /opt/conda/bin/conda install "scipy >=1.9,<2.0" pandas
# conda version: 4.4.0
+conda-forge/linux-64::scipy-1.10.0-py310_0
+conda-forge/linux-64::pandas-2.0.0-py310_0
# install specs: scipy >=1.9,<2.0,pandas
==> 2023-03-04 08:00:00 <==
# cmd: /opt/conda/bin/conda remove requests
# conda version: 23.1.0
-conda-forge/noarch::requests-2.31.0-pyhd8ed1ab_0
# remove specs: ['requests']
==> 2023-03-05 08:00:00 <==
# cmd: /opt/conda/bin/conda update numpy
# conda version: 23.1.0
# update specs: ['numpy 1.25.*']
"""


def _write(prefix: Path, text: str, installed: list[str]) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    (meta / "history").write_text(text)
    for dist in installed:
        (meta / f"{dist}.json").write_text("{}")


def _pkg(name: str, version: str, build: str = "0", channel: str = "conda-forge") -> CondaPackage:
    return CondaPackage(name, version, build, channel=channel, subdir="linux-64")


def test_reads_conda_written_revisions(tmp_path: Path) -> None:
    _write(tmp_path, CONDA_HISTORY, [])
    revs = history.read_revisions(tmp_path)
    assert [r.number for r in revs] == [0, 1, 2, 3, 4]
    assert revs[0].date == "2023-03-01 10:00:00"
    assert revs[0].command == "/opt/conda/bin/conda create -n demo python=3.10 numpy"
    assert revs[0].added == ["numpy-1.24.2-py310_0", "python-3.10.9-h0_0", "zlib-1.2.13-h1_0"]
    assert revs[1].removed == ["defaults/linux-64::numpy-1.24.2-py310_0"]
    assert revs[1].update_specs == ["numpy>=1.25", "requests"]
    assert revs[2].update_specs == ["scipy >=1.9,<2.0", "pandas"]  # conda < 4.5 syntax
    assert revs[3].remove_specs == ["requests"]


def test_requested_specs_follow_condas_spec_map(tmp_path: Path) -> None:
    installed = ["numpy-1.25.0-py310_0", "python-3.10.9-h0_0", "scipy-1.10.0-py310_0",
                 "pandas-2.0.0-py310_0", "zlib-1.2.13-h1_0"]
    _write(tmp_path, CONDA_HISTORY, installed)
    # python / numpy of the first block are not specs (no "specs:" line there); the later
    # numpy spec replaces the earlier one; requests was removed.
    assert history.requested_specs(tmp_path) == ["numpy 1.25.*", "scipy >=1.9,<2.0", "pandas"]


def test_neutered_specs_override_update_specs(tmp_path: Path) -> None:
    text = CONDA_HISTORY + (
        "==> 2023-03-06 08:00:00 <==\n"
        "# cmd: /opt/conda/bin/conda install pandas\n"
        "# update specs: ['pandas']\n"
        "# neutered specs: ['numpy']\n"
    )
    _write(tmp_path, text, ["numpy-1.25.0-py310_0", "pandas-2.0.0-py310_0"])
    assert history.requested_specs(tmp_path) == ["numpy", "pandas"]


def test_requested_specs_skip_packages_no_longer_installed(tmp_path: Path) -> None:
    _write(tmp_path, CONDA_HISTORY, ["numpy-1.25.0-py310_0"])
    assert history.requested_specs(tmp_path) == ["numpy 1.25.*"]


def test_states_apply_diffs_to_the_first_full_block(tmp_path: Path) -> None:
    _write(tmp_path, CONDA_HISTORY, [])
    assert history.revision_state(tmp_path, 0) == [
        "numpy-1.24.2-py310_0", "python-3.10.9-h0_0", "zlib-1.2.13-h1_0"]
    assert "conda-forge/noarch::requests-2.31.0-pyhd8ed1ab_0" in history.revision_state(
        tmp_path, 1)
    assert "conda-forge/noarch::requests-2.31.0-pyhd8ed1ab_0" not in history.revision_state(
        tmp_path, 4)
    with pytest.raises(NotFound):
        history.revision_state(tmp_path, 5)


def test_missing_or_garbled_history_reads_as_empty(tmp_path: Path) -> None:
    assert history.read_revisions(tmp_path) == []
    assert history.requested_specs(tmp_path) == []
    _write(tmp_path, "stray line before any header\n\x00\x01garbage\n", [])
    assert history.read_revisions(tmp_path) == []
    (tmp_path / "conda-meta" / "history").write_bytes(b"==> 2024 <==\n# update specs: [oops\n")
    assert history.read_revisions(tmp_path)[0].update_specs == []


def test_append_writes_condas_format_and_round_trips(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").touch()  # py-rattler leaves it empty
    v1 = [_pkg("libfoo", "1.9"), _pkg("bar", "1.0")]
    rev = history.append_revision(tmp_path, command="jupyter-envs create -n demo bar",
                                  before=[], after=v1, update_specs=["bar"])
    assert rev == 0
    v2 = [_pkg("libfoo", "1.10"), _pkg("bar", "2.0"), _pkg("hello", "0.1.0", channel="")]
    rev = history.append_revision(tmp_path, command="jupyter-envs install bar=2 hello",
                                  before=v1, after=v2, update_specs=["bar=2", "hello"])
    assert rev == 1
    rev = history.append_revision(tmp_path, command="jupyter-envs remove hello",
                                  before=v2, after=v2[:2], remove_specs=["hello"])
    assert rev == 2

    text = (tmp_path / "conda-meta" / "history").read_text()
    blocks = text.split("==> ")[1:]
    assert len(blocks) == 3
    header = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d <==\n# cmd: .+\n# conda version: \d")
    assert all(header.match(b) for b in blocks)
    assert "+conda-forge/linux-64::bar-1.0-0\n" in blocks[0]
    lines = blocks[1].splitlines()
    cf = "conda-forge/linux-64::"
    assert lines[3:7] == [f"-{cf}bar-1.0-0", f"-{cf}libfoo-1.9-0",
                          f"+{cf}bar-2.0-0", f"+{cf}libfoo-1.10-0"]
    spec_line = next(ln for ln in blocks[1].splitlines() if ln.startswith("# update specs: "))
    assert ast.literal_eval(spec_line.split(": ", 1)[1]) == ["bar=2", "hello"]
    assert "# remove specs: ['hello']" in blocks[2]

    assert history.revision_state(tmp_path, 0) == sorted(history.dist_str(p) for p in v1)
    assert history.revision_state(tmp_path, 1) == sorted(history.dist_str(p) for p in v2)
    assert history.revision_state(tmp_path, 2) == sorted(history.dist_str(p) for p in v2[:2])
    for dist in ("bar-2.0-0", "libfoo-1.10-0"):
        (tmp_path / "conda-meta" / f"{dist}.json").write_text("{}")
    assert history.requested_specs(tmp_path) == ["bar=2"]


def test_first_revision_of_a_populated_env_lists_everything(tmp_path: Path) -> None:
    # conda diffs against the recorded state: an env whose history is empty gets a full list.
    before = [_pkg("libfoo", "1.9")]
    after = [_pkg("libfoo", "1.9"), _pkg("bar", "1.0")]
    history.append_revision(tmp_path, command="x", before=before, after=after)
    assert history.revision_state(tmp_path, 0) == sorted(history.dist_str(p) for p in after)


def test_append_keeps_a_file_without_trailing_newline_intact(tmp_path: Path) -> None:
    _write(tmp_path, CONDA_HISTORY.rstrip("\n"), [])
    history.append_revision(tmp_path, command="x", before=[], after=[_pkg("zlib", "1.3")])
    revs = history.read_revisions(tmp_path)
    assert len(revs) == 6
    assert revs[4].update_specs == ["numpy 1.25.*"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://conda.anaconda.org/conda-forge/", "conda-forge", id="alias"),
        pytest.param("https://repo.anaconda.com/pkgs/main", "pkgs/main", id="defaults"),
        pytest.param("file:///srv/chan/", "file:///srv/chan", id="local-url"),
        pytest.param("conda-forge", "conda-forge", id="already-a-name"),
    ],
)
def test_dist_str_uses_condas_channel_names(url: str, expected: str) -> None:
    pkg = CondaPackage("bar", "1.0", "0", channel=url, subdir="noarch")
    assert history.dist_str(pkg) == f"{expected}/noarch::bar-1.0-0"
