"""Kernel names and display names for environment kernels, as nb_conda_kernels makes them.

Notebooks saved with nb_conda_kernels record names such as ``conda-env-myenv-py`` or
``conda-root-py``; producing the same names lets them open with our kernels unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

DEFAULT_NAME_FORMAT = "{language} [conda env:{environment}]"


def clean_kernel_name(name: str) -> str:
    """Strip accents and replace anything outside ``[a-zA-Z0-9._-]`` with ``_``."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-zA-Z0-9._\-]", "_", name)


def env_names(
    prefixes: Iterable[Path], *, base_prefix: Path | None, default_envs_dir: Path | None
) -> dict[Path, str]:
    """nb_conda_kernels' short environment name for each prefix, in the given order.

    The base prefix is ``root``; environments in the default ``envs`` folder keep their folder
    name; those in another ``envs`` folder (or clashing) get its parent's name in front
    (``project-myenv``); remaining clashes get ``-2``, ``-3``, ... Environments inside the base
    prefix's ``conda-bld`` folder are left out.
    """
    build_dir = base_prefix / "conda-bld" if base_prefix is not None else None
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for prefix in prefixes:
        if base_prefix is not None and prefix == base_prefix:
            name = "root"
        elif build_dir is not None and build_dir in prefix.parents:
            continue
        else:
            name = prefix.name
            parent = prefix.parent
            if parent.name == "envs" and (parent != default_envs_dir or name in taken):
                name = f"{parent.parent.name}-{name}"
        if name in taken:
            base, count = name, 2
            while f"{base}-{count}" in taken:
                count += 1
            name = f"{base}-{count}"
        taken.add(name)
        names[prefix] = name
    return names


def kernel_name(env_name: str, kernel_dir_name: str) -> str:
    """``conda-env-<env>-<kernel>`` (``conda-<kernel>`` form for root: ``conda-root-py``)."""
    short = kernel_dir_name.lower()
    if short in ("python2", "python3"):
        short = "py"
    elif short == "ir":
        short = "r"
    middle = "" if env_name == "root" else "env-"
    return clean_kernel_name(f"conda-{middle}{env_name}-{short}")


def display_name(
    name_format: str, *, env_name: str, kernel_name: str, kernel_dir_name: str, original: str
) -> str:
    """The display name from ``name_format`` (nb_conda_kernels' fields: ``{0}`` language,
    ``{1}`` environment, ``{conda_kernel}``, ``{display_name}``, ``{environment}``,
    ``{kernel}``, ``{language}``)."""
    language = "Python" if original.startswith("Python") else original
    return name_format.format(
        language,
        env_name,
        conda_kernel=kernel_name,
        display_name=original,
        environment=env_name,
        kernel=kernel_dir_name,
        language=language,
    )
