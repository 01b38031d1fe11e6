"""conda's configuration as jupyter-envs needs it: root prefixes, envs dirs, channels.

Read from the same places conda reads, in conda's order (``.condarc`` search path, then
``CONDA_*`` environment variables), without running conda. Later sources take precedence:
a scalar from a later file wins, a list merges with the later file's entries first, a map
merges key by key. Missing, unreadable or garbled files are skipped: configuration must
never stop environments from being listed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidRequest

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
DEFAULT_CHANNELS: tuple[str, ...] = (
    "https://repo.anaconda.com/pkgs/main",
    "https://repo.anaconda.com/pkgs/r",
)
#: The largest ``.condarc`` read; a bigger file is skipped as garbage.
MAX_CONDARC_BYTES = 1_000_000
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_URL_SCHEMES = ("http://", "https://", "file://", "s3://", "ftp://", "oci://", "gcs://")


@dataclass(frozen=True)
class CondaConfig:
    """The parts of conda's configuration that discovery and solving use."""

    #: Root (``base``) prefixes, most important first; they need not exist.
    root_prefixes: tuple[Path, ...] = ()
    #: Directories holding named environments, in conda's order; the first writable one
    #: receives new named environments.
    envs_dirs: tuple[Path, ...] = ()
    #: The channels to solve against, as full URLs (``defaults`` expanded).
    channels: tuple[str, ...] = ()
    channel_alias: str = DEFAULT_CHANNEL_ALIAS
    #: Channel name -> the location that serves it (``<location>/<name>``).
    custom_channels: Mapping[str, str] = field(default_factory=dict)
    pkgs_dirs: tuple[Path, ...] = ()
    #: What ``defaults`` stands for.
    default_channels: tuple[str, ...] = DEFAULT_CHANNELS
    #: Channel name -> mirror URLs (conda's ``mirrored_channels``); the first is used.
    mirrored_channels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _expand(path: str, environ: Mapping[str, str]) -> Path:
    """``~`` and ``$VAR`` expanded against ``environ`` (not the process environment)."""
    text = _VAR.sub(lambda m: environ.get(m.group(1) or m.group(2), m.group(0)), path)
    if text.startswith("~"):
        home = environ.get("HOME") or os.path.expanduser("~")
        text = home + text[1:]
    return Path(os.path.normpath(text))


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or os.path.expanduser("~"))


def condarc_search_path(
    environ: Mapping[str, str], root_prefixes: Sequence[Path]
) -> list[Path]:
    """The ``.condarc`` files and ``condarc.d`` dirs conda reads, lowest precedence first.

    With ``CONDA_RESTRICT_RC_SEARCH_PATH`` set, conda reads only ``$CONDARC``; so do we.
    """
    if "CONDA_RESTRICT_RC_SEARCH_PATH" in environ:
        rc = environ.get("CONDARC")
        return [_expand(rc, environ)] if rc else []
    home = _home(environ)
    places: list[Path] = [Path("/etc/conda"), Path("/var/lib/conda")]
    places += list(root_prefixes)
    xdg = environ.get("XDG_CONFIG_HOME")
    if xdg:
        places.append(Path(xdg) / "conda")
    places += [home / ".config" / "conda", home / ".conda"]
    found: list[Path] = []
    for place in places:
        found += [place / ".condarc", place / "condarc", place / "condarc.d"]
    found.append(home / ".condarc")
    active = environ.get("CONDA_PREFIX")
    if active:
        found += [Path(active) / ".condarc", Path(active) / "condarc", Path(active) / "condarc.d"]
    if environ.get("CONDARC"):
        found.append(_expand(environ["CONDARC"], environ))
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_CONDARC_BYTES:
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_condarc_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The parsed mappings of ``paths`` (``condarc.d`` dirs expanded), in the same order."""
    out: list[dict[str, Any]] = []
    for path in paths:
        if path.is_dir():
            try:
                children = sorted(p for p in path.iterdir() if p.suffix in {".yml", ".yaml"})
            except OSError:
                continue
            files = children
        else:
            files = [path]
        for file in files:
            data = _read_yaml(file)
            if data is not None:
                out.append(data)
    return out


def _strings(value: object) -> list[str]:
    """A configured list (or a single string) as strings; anything else as empty."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float)) and str(v).strip()]
    return []


def _merge_list(sources: Sequence[Mapping[str, Any]], *keys: str) -> list[str]:
    """conda's sequence merge: later sources' entries first, duplicates dropped."""
    merged: list[str] = []
    for source in reversed(sources):
        for key in keys:
            for item in _strings(source.get(key)):
                if item not in merged:
                    merged.append(item)
    return merged


def _merge_scalar(sources: Sequence[Mapping[str, Any]], key: str) -> str | None:
    for source in reversed(sources):
        value = source.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _merge_map(sources: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in sources:
        value = source.get(key)
        if isinstance(value, dict):
            merged.update({str(k): v for k, v in value.items()})
    return merged


def _env_root_prefixes(environ: Mapping[str, str]) -> list[Path]:
    roots: list[Path] = []
    if environ.get("CONDA_ROOT"):
        roots.append(_expand(environ["CONDA_ROOT"], environ))
    exe = environ.get("CONDA_EXE")
    if exe:
        exe_path = _expand(exe, environ)
        if exe_path.parent.name in {"bin", "condabin", "Scripts"}:
            roots.append(exe_path.parent.parent)
    if environ.get("MAMBA_ROOT_PREFIX"):
        roots.append(_expand(environ["MAMBA_ROOT_PREFIX"], environ))
    python = environ.get("CONDA_PYTHON_EXE")
    if python:
        python_path = _expand(python, environ)
        if python_path.parent.name == "bin":
            roots.append(python_path.parent.parent)
    return roots


def _is_installation(prefix: Path) -> bool:
    """Whether ``prefix`` looks like a conda / mamba installation (a root, not an env)."""
    if not (prefix / "conda-meta").is_dir():
        return False
    tools = ("condabin", "bin/conda", "bin/mamba", "bin/micromamba")
    return any(os.path.lexists(prefix / tool) for tool in tools)


#: ``environments.txt`` larger than this is not read (a real one is a few KiB).
MAX_ENVIRONMENTS_TXT_BYTES = 4 * 1024 * 1024


def environments_txt(environ: Mapping[str, str] | None = None) -> Path:
    """The user's ``~/.conda/environments.txt`` (conda's list of known prefixes)."""
    return _home(os.environ if environ is None else environ) / ".conda" / "environments.txt"


def read_environments_txt(path: Path) -> list[str]:
    """The absolute prefixes ``path`` lists, resolved; [] when missing, unreadable or huge."""
    try:
        if path.stat().st_size > MAX_ENVIRONMENTS_TXT_BYTES:
            return []
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    lines = (ln.strip() for ln in text.splitlines())
    return [os.path.realpath(ln) for ln in lines if ln.startswith("/")]


def _registered_roots(environ: Mapping[str, str]) -> list[Path]:
    """Installations listed in ``~/.conda/environments.txt`` (installers register base).

    Used when the environment names no root, e.g. Jupyter started outside any conda shell.
    """
    prefixes = read_environments_txt(environments_txt(environ))
    return [Path(p) for p in prefixes if _is_installation(Path(p))]


def _dedup_paths(paths: Iterable[Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for path in paths:
        if path not in out:
            out.append(path)
    return tuple(out)


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def load_conda_config(
    environ: Mapping[str, str] | None = None,
    *,
    extra_envs_dirs: Sequence[Path] = (),
    channels: Sequence[str] | None = None,
) -> CondaConfig:
    """conda's configuration as seen with ``environ`` (default: the process environment).

    ``extra_envs_dirs`` (directories configured for the extension) come after conda's own,
    so new named environments go where ``conda create -n`` would put them. ``channels``,
    when given, replaces the configured channels (names or URLs, resolved here).
    """
    env = dict(os.environ if environ is None else environ)
    roots = _env_root_prefixes(env) or _registered_roots(env)
    sources = read_condarc_files(condarc_search_path(env, roots))
    configured_root = _merge_scalar(sources, "root_prefix")
    if configured_root:
        roots.append(_expand(configured_root, env))
    root_prefixes = _dedup_paths(roots)

    alias = (env.get("CONDA_CHANNEL_ALIAS") or _merge_scalar(sources, "channel_alias") or "")
    custom = {
        name: str(loc).rstrip("/")
        for name, loc in _merge_map(sources, "custom_channels").items()
        if isinstance(loc, str) and loc.strip()
    }
    mirrors = {
        name: tuple(_strings(urls))
        for name, urls in _merge_map(sources, "mirrored_channels").items()
        if _strings(urls)
    }
    defaults = _merge_list(sources, "default_channels")
    base = CondaConfig(
        root_prefixes=root_prefixes,
        channel_alias=(alias or DEFAULT_CHANNEL_ALIAS).rstrip("/"),
        custom_channels=custom,
        default_channels=tuple(c.rstrip("/") for c in defaults) or DEFAULT_CHANNELS,
        mirrored_channels=mirrors,
    )

    env_envs: list[str] = []
    for var in ("CONDA_ENVS_DIRS", "CONDA_ENVS_PATH"):
        env_envs += [p for p in env.get(var, "").split(os.pathsep) if p.strip()]
    configured_envs = env_envs + _merge_list(sources, "envs_dirs", "envs_path")
    home = _home(env)
    user_envs = home / ".conda" / "envs"
    root_envs = [root / "envs" for root in root_prefixes]
    primary_writable = bool(root_prefixes) and _writable(root_prefixes[0])
    fixed = [*root_envs, user_envs] if primary_writable else [user_envs, *root_envs]
    envs_dirs = _dedup_paths(
        [_expand(p, env) for p in configured_envs] + fixed + [Path(p) for p in extra_envs_dirs]
    )

    env_pkgs = [p for p in env.get("CONDA_PKGS_DIRS", "").split(",") if p.strip()]
    configured_pkgs = env_pkgs + _merge_list(sources, "pkgs_dirs")
    fixed_pkgs = [root / "pkgs" for root in root_prefixes[:1]] + [home / ".conda" / "pkgs"]
    pkgs_dirs = _dedup_paths([_expand(p, env) for p in configured_pkgs] + fixed_pkgs)

    if channels is None:
        env_channels = [c for c in env.get("CONDA_CHANNELS", "").split(",") if c.strip()]
        names = env_channels + _merge_list(sources, "channels") or ["defaults"]
    else:
        names = list(channels)
    resolved = resolve_channels(names, base)
    return CondaConfig(
        root_prefixes=root_prefixes,
        envs_dirs=envs_dirs,
        channels=resolved,
        channel_alias=base.channel_alias,
        custom_channels=base.custom_channels,
        pkgs_dirs=pkgs_dirs,
        default_channels=base.default_channels,
        mirrored_channels=base.mirrored_channels,
    )


def channel_url(name_or_url: str, config: CondaConfig) -> str:
    """The full URL of one channel given by name (``conda-forge``), URL or local path.

    Names go through ``mirrored_channels``, ``custom_channels``, the default channels'
    names (``pkgs/main``) and finally ``channel_alias``. ``defaults`` stands for several
    channels: use :func:`resolve_channels` for it. Raises InvalidRequest.
    """
    text = name_or_url.strip() if isinstance(name_or_url, str) else ""
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        raise InvalidRequest(f"Not a channel name or URL: {str(name_or_url)[:200]!r}.")
    if text.lower().startswith(_URL_SCHEMES):
        return text.rstrip("/")
    if "://" in text:
        raise InvalidRequest(f"Unsupported channel URL scheme: {text[:200]!r}.")
    if text.startswith(("/", "~", "./", "../")):
        path = Path(os.path.expanduser(text)).absolute()
        return Path(os.path.normpath(path)).as_uri()
    name = text.strip("/")
    if name == "defaults":
        raise InvalidRequest("'defaults' stands for several channels; it has no single URL.")
    if ".." in name.split("/"):
        raise InvalidRequest(f"Not a channel name: {text[:200]!r}.")
    if name in config.mirrored_channels:
        return config.mirrored_channels[name][0].rstrip("/")
    best = ""
    for key in config.custom_channels:
        if (name == key or name.startswith(key + "/")) and len(key) > len(best):
            best = key
    if best:
        return f"{config.custom_channels[best]}/{name}"
    for url in config.default_channels:
        if url.endswith("/" + name):
            return url
    return f"{config.channel_alias}/{name}"


def resolve_channels(names: Iterable[str], config: CondaConfig) -> tuple[str, ...]:
    """Full URLs for channel names / URLs, ``defaults`` expanded, duplicates dropped."""
    urls: list[str] = []
    for name in names:
        if isinstance(name, str) and name.strip().strip("/") == "defaults":
            found = list(config.default_channels)
        else:
            found = [channel_url(name, config)]
        urls += [u for u in found if u not in urls]
    return tuple(urls)


def canonical_channel_name(url: str, config: CondaConfig | None = None) -> str:
    """The short name conda shows for a channel URL (``conda-forge``, ``pkgs/main``).

    A URL outside the alias, custom and default channels keeps its full form, as in conda.
    """
    cfg = config or CondaConfig()
    text = url.rstrip("/")
    for subdir in ("/noarch", "/linux-64", "/linux-aarch64", "/osx-64", "/osx-arm64", "/win-64"):
        if text.endswith(subdir):
            text = text[: -len(subdir)]
    for default in cfg.default_channels:
        if text == default.rstrip("/"):
            return default.rstrip("/").rsplit("/", 2)[-2] + "/" + default.rsplit("/", 1)[-1]
    for name, location in cfg.custom_channels.items():
        if text == f"{location.rstrip('/')}/{name}":
            return name
    alias = cfg.channel_alias.rstrip("/") + "/"
    if text.startswith(alias) and len(text) > len(alias):
        return text[len(alias) :]
    return text
