"""Build a real local conda channel for tests and benchmarks.

No conda is needed: a conda package is a ``.tar.bz2`` holding ``info/`` metadata and a
payload. The ``python`` package is venv-shaped and points at the interpreter running the
tests, so it only works on the machine that built it: build the channel per run.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import sysconfig
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import rattler
import rattler.index

# A fixed timestamp keeps rebuilt packages byte-identical (and so their hashes).
TIMESTAMP_MS = 1_700_000_000_000
PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
PY_XY = "{}.{}".format(*sys.version_info[:2])
SITE = f"lib/python{PY_XY}/site-packages"
ACTIVATE_VAR = "JUPYTER_ENVS_TEST_ACTIVATED"
ACTIVATE_VALUE = "from-activate-d"


@dataclass
class Pkg:
    """One package to build: metadata plus payload files (relative path -> bytes)."""

    name: str
    version: str
    build: str = "0"
    build_number: int = 0
    depends: list[str] = field(default_factory=list)
    subdir: str = "noarch"
    noarch: str | None = "generic"
    files: dict[str, bytes] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    entry_points: list[str] = field(default_factory=list)
    track_features: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = TIMESTAMP_MS // 1000
    tar.addfile(info, io.BytesIO(data))


def build_package(pkg: Pkg, channel: Path) -> Path:
    """Write ``pkg`` as a ``.tar.bz2`` into ``channel/<subdir>/`` and return its path."""
    index: dict[str, object] = {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": pkg.build_number,
        "depends": pkg.depends,
        "subdir": pkg.subdir,
        "timestamp": TIMESTAMP_MS,
        "license": "BSD-3-Clause",
    }
    if pkg.noarch:
        index["noarch"] = pkg.noarch
    else:
        index["arch"] = "x86_64"
        index["platform"] = "linux"
    if pkg.track_features:
        index["track_features"] = pkg.track_features
    paths = [
        {
            "_path": path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_in_bytes": len(data),
        }
        for path, data in sorted(pkg.files.items())
    ] + [{"_path": path, "path_type": "softlink"} for path in sorted(pkg.symlinks)]
    target = channel / pkg.subdir / pkg.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:bz2") as tar:
        _add(tar, "info/index.json", json.dumps(index, indent=1).encode())
        _add(tar, "info/paths.json", json.dumps({"paths": paths, "paths_version": 1}).encode())
        _add(tar, "info/files", "\n".join(p["_path"] for p in paths).encode() + b"\n")
        if pkg.noarch == "python":
            link = {
                "noarch": {"type": "python", "entry_points": pkg.entry_points},
                "package_metadata_version": 1,
            }
            _add(tar, "info/link.json", json.dumps(link).encode())
        for path, data in sorted(pkg.files.items()):
            _add(tar, path, data, 0o755 if path.startswith("bin/") else 0o644)
        for path, dest in sorted(pkg.symlinks.items()):
            info = tarfile.TarInfo(path)
            info.type = tarfile.SYMTYPE
            info.linkname = dest
            info.mtime = TIMESTAMP_MS // 1000
            tar.addfile(info)
    return target


def python_package(version: str = PY_VERSION) -> Pkg:
    """A venv-shaped ``python`` whose ``bin/python`` is the interpreter running the tests."""
    home = Path(os.path.realpath(sys._base_executable)).parent  # type: ignore[attr-defined]
    cfg = f"home = {home}\ninclude-system-site-packages = false\nversion = {version}\n"
    return Pkg(
        name="python",
        version=version,
        build="h0_0_cpython",
        subdir="linux-64",
        noarch=None,
        files={"pyvenv.cfg": cfg.encode(), f"{SITE}/.keep": b""},
        symlinks={
            "bin/python": os.path.realpath(sys._base_executable),  # type: ignore[attr-defined]
            "bin/python3": "python",
            f"bin/python{PY_XY}": "python",
        },
    )


def ipykernel_package() -> Pkg:
    """``ipykernel`` as a ``.pth`` pointing at the test runner's own site-packages."""
    purelib = sysconfig.get_paths()["purelib"]
    kernel_json = {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    return Pkg(
        name="ipykernel",
        version="6.29.5",
        build="pyh0_0",
        noarch="python",
        depends=[f"python >={PY_XY}"],
        files={
            "site-packages/jupyter_envs_test_host.pth": f"{purelib}\n".encode(),
            "share/jupyter/kernels/python3/kernel.json": json.dumps(kernel_json).encode(),
        },
    )


def default_packages() -> list[Pkg]:
    """The standard test channel: versions, dependencies, kernels, activation, CUDA."""
    activate = f'export {ACTIVATE_VAR}="{ACTIVATE_VALUE}"\n'.encode()
    deactivate = f"unset {ACTIVATE_VAR}\n".encode()
    return [
        python_package(),
        ipykernel_package(),
        # 1.9 < 1.10 < (later) 1.11: a string sort gets this wrong.
        Pkg("libfoo", "1.9", files={"share/libfoo/VERSION": b"1.9\n"}),
        Pkg("libfoo", "1.10", files={"share/libfoo/VERSION": b"1.10\n"}),
        Pkg("bar", "1.0", depends=["libfoo >=1.9"], files={"share/bar/1.0": b"bar\n"}),
        Pkg("bar", "2.0", depends=["libfoo >=1.10"], files={"share/bar/2.0": b"bar\n"}),
        Pkg("oldfoo-user", "1.0", depends=["libfoo <1.10"], files={"share/ofu": b"x\n"}),
        Pkg(
            "hello",
            "0.1.0",
            build="pyh0_0",
            noarch="python",
            depends=["python"],
            files={"site-packages/hello.py": b"def main():\n    print('hello from env')\n"},
            entry_points=["hello = hello:main"],
        ),
        Pkg(
            "envvars",
            "1.0",
            files={
                "etc/conda/activate.d/envvars.sh": activate,
                "etc/conda/deactivate.d/envvars.sh": deactivate,
            },
        ),
        # A CPU / CUDA build pair: the CUDA build needs a driver (__cuda), so it is
        # chosen only where one is detected or CONDA_OVERRIDE_CUDA says so.
        Pkg("torchlet", "1.0", build="cpu_0", build_number=0, files={"share/torchlet": b"cpu\n"}),
        Pkg(
            "torchlet",
            "1.0",
            build="cuda12_1",
            build_number=1,
            depends=["__cuda >=12", "cuda-version >=12,<13"],
            files={"share/torchlet": b"cuda\n"},
        ),
        Pkg("cuda-version", "12.4", files={"share/cuda-version": b"12.4\n"}),
    ]


def index_channel(channel: Path) -> None:
    """(Re)write the channel's repodata (no .zst, no shards: fast and enough here)."""
    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    (channel / "linux-64").mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))


def build_channel(channel: Path, packages: Iterable[Pkg] | None = None) -> Path:
    """Build and index a channel at ``channel``; return it."""
    for pkg in default_packages() if packages is None else packages:
        build_package(pkg, channel)
    index_channel(channel)
    return channel


def add_packages(channel: Path, packages: Iterable[Pkg]) -> None:
    """Add packages to an existing channel and re-index it."""
    for pkg in packages:
        build_package(pkg, channel)
    index_channel(channel)


def channel_url(channel: Path) -> str:
    return channel.resolve().as_uri()


async def install(
    channel: Path, specs: Iterable[str], prefix: Path, *, cache_dir: Path | None = None
) -> Path:
    """A real environment: py-rattler solves ``specs`` against ``channel`` (virtual packages
    detected, so ``CONDA_OVERRIDE_CUDA`` counts) and installs into ``prefix``."""
    vps = rattler.VirtualPackage.detect(rattler.VirtualPackageOverrides.from_env())
    records = await rattler.solve(
        [channel_url(channel)],
        list(specs),
        platforms=["linux-64", "noarch"],
        virtual_packages=vps,
    )
    await rattler.install(records, prefix, cache_dir=cache_dir, show_progress=False)
    return prefix


def isolated_environ(root: Path) -> Mapping[str, str]:
    """Environment variables that keep HOME, caches and conda config inside ``root``."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "RATTLER_CACHE_DIR": str(root / "cache" / "rattler"),
        "CONDARC": str(root / "condarc.yml"),
        "CONDA_PKGS_DIRS": str(root / "pkgs"),
    }
