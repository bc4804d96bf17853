"""Project settings from ``recipegen.toml`` or ``[tool.recipegen]`` in ``pyproject.toml``.

Only the directory given is read (no search upwards), so what applies is obvious. If both
files exist, ``recipegen.toml`` wins and ``pyproject.toml`` is not read at all: a dedicated
file is the more deliberate choice, and merging two sources would hide where a value came
from. Keys (all optional)::

    mapping = {pypi-name = "conda-name", ...}   # name overrides, beat the bundled table
    channels = ["conda-forge", ...]
    maintainers = ["github-handle", ...]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from recipegen.errors import UsageError

RECIPEGEN_TOML = "recipegen.toml"
PYPROJECT_TOML = "pyproject.toml"
KEYS = ("mapping", "channels", "maintainers")


@dataclass(frozen=True)
class Config:
    """Settings; every field has a default, so a project without a config file works."""

    mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """PyPI → conda overrides, keys PEP 503 normalized."""
    channels: tuple[str, ...] = ()
    maintainers: tuple[str, ...] = ()
    path: Path | None = None
    """The file the settings came from, for messages; None if there was none."""


def load_config(start: Path) -> Config:
    """Read the settings in directory ``start``; UsageError on a bad file or unknown key."""
    own, pyproject = start / RECIPEGEN_TOML, start / PYPROJECT_TOML
    if own.is_file():
        return _parse(_read(own), own, where=own.name)
    if pyproject.is_file():
        tool = _read(pyproject).get("tool", {})
        if not isinstance(tool, dict) or "recipegen" not in tool:
            return Config()
        section = tool["recipegen"]
        if not isinstance(section, dict):
            raise UsageError(f"{pyproject}: [tool.recipegen] must be a table")
        return _parse(section, pyproject, where="[tool.recipegen]")
    return Config()


def _read(path: Path) -> dict[str, object]:
    import tomllib  # only when there is a file to read

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None


def _parse(data: Mapping[str, object], path: Path, *, where: str) -> Config:
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise UsageError(f"{path}: unknown key {names} in {where}",
                         f"known keys: {', '.join(KEYS)}")
    mapping = data.get("mapping", {})
    if not isinstance(mapping, dict):
        raise UsageError(f"{path}: 'mapping' must be a table of pypi-name = \"conda-name\"")
    from recipegen.mapping import check_conda_name, check_pypi_name  # only with a file

    overrides: dict[str, str] = {}
    for pypi, conda in mapping.items():
        if not isinstance(conda, str):
            raise UsageError(f"{path}: mapping.{pypi} must be a string (a conda package name)")
        try:
            key = check_pypi_name(pypi)
            check_conda_name(conda)
        except UsageError as e:
            raise UsageError(f"{path}: mapping.{pypi}: {e.message}", e.hint) from None
        if key in overrides:
            raise UsageError(f"{path}: mapping has {pypi!r} twice (names compare normalized)")
        overrides[key] = conda
    return Config(mapping=MappingProxyType(overrides), channels=_strings(data, "channels", path),
                  maintainers=_strings(data, "maintainers", path), path=path)


def _strings(data: Mapping[str, object], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{path}: {key!r} must be a list of non-empty strings")
    return tuple(value)
