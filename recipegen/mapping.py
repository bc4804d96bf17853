"""PyPI → conda package names.

A recipe built from a PyPI package must depend on what conda-forge calls its dependencies
(``torch`` is ``pytorch``, ``tables`` is ``pytables``), or the solver pulls in the wrong
package or none. The table is built offline by ``tools/build_mapping.py`` from
conda-forge's own data (see ``recipegen/data/mappings/README.md``); precedence:

    override > cf-scripts > grayskull > hint > parselmouth > identity
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from recipegen.errors import UsageError

OVERRIDE = "override"
CF_SCRIPTS = "cf-scripts"
GRAYSKULL = "grayskull"
HINT = "hint"
PARSELMOUTH = "parselmouth"
IDENTITY = "identity"
SOURCES = (OVERRIDE, CF_SCRIPTS, GRAYSKULL, HINT, PARSELMOUTH, IDENTITY)
"""Every value of ``MappedName.source``, highest precedence first."""

_PYPI_NAME = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$", re.IGNORECASE)
_CONDA_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.+-]*$")
_TABLE = ("mappings", "pypi_to_conda.json")


def normalize(name: str) -> str:
    """PEP 503 normalized name: lowercase, runs of ``-_.`` become one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_pypi_name(name: str) -> str:
    """The normalized name, or UsageError if ``name`` cannot be a PyPI project name."""
    if not _PYPI_NAME.match(name):
        raise UsageError(f"not a valid PyPI project name: {name!r}",
                         "names use letters, digits, '-', '_' and '.', e.g. typing-extensions")
    return normalize(name)


def check_conda_name(name: str) -> str:
    """``name`` unchanged, or UsageError if conda would not accept it as a package name."""
    if not _CONDA_NAME.match(name):
        raise UsageError(f"not a valid conda package name: {name!r}",
                         "conda names are lowercase letters, digits, '-', '_', '.' and '+'")
    return name


def parse_override(text: str) -> tuple[str, str]:
    """``"pypi=conda"`` from a command-line flag → (normalized PyPI name, conda name)."""
    pypi, sep, conda = text.partition("=")
    pypi, conda = pypi.strip(), conda.strip()
    if not sep or not pypi or not conda or "=" in conda:
        raise UsageError(f"bad name override {text!r}: expected PYPI=CONDA",
                         "for example --map torch=pytorch")
    return check_pypi_name(pypi), check_conda_name(conda)


@dataclass(frozen=True)
class MappedName:
    """One answer of the mapper, with the layer that decided it (shown by ``recipegen map``)."""

    pypi: str
    """The name as given."""
    normalized: str
    """PEP 503 normalized."""
    conda: str
    source: str
    """One of ``SOURCES``."""


@dataclass(frozen=True)
class _Table:
    """The bundled PyPI↔conda name table, indexed both ways."""

    version: str
    forward: Mapping[str, tuple[str, str]]
    """normalized PyPI name → (conda name, source), same-name entries included."""
    reverse: Mapping[str, str]
    """conda name → normalized PyPI name, only where known."""
    no_pypi: frozenset[str]


@functools.cache
def _table() -> _Table:
    """The bundled table, parsed once per process (about 20 ms)."""
    from importlib import resources

    raw = json.loads(resources.files("recipegen.data").joinpath(*_TABLE).read_text("utf-8"))
    forward: dict[str, tuple[str, str]] = {}
    reverse: dict[str, str] = {}
    for source, names in raw["same_name"].items():
        for name in names:
            forward[name] = (name, source)
            reverse[name] = name
    for name, (conda, source) in raw["entries"].items():
        forward[name] = (conda, source)
    reverse.update(raw["reverse"])
    return _Table(raw["version"], forward, reverse, frozenset(raw["no_pypi"]))


class NameMapper:
    """Maps PyPI names to conda-forge names: user overrides first, then the bundled table."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self._table = _table()
        self._overrides = MappingProxyType({
            check_pypi_name(pypi): check_conda_name(conda)
            for pypi, conda in (overrides or {}).items()
        })
        self._reverse_overrides = {conda: pypi for pypi, conda in self._overrides.items()}
        self.data_version: str = self._table.version
        """Version of the bundled table (a content hash)."""
        self.version: str = self.data_version
        """Cache key for everything the mapping decides: the table, plus overrides if any."""
        if self._overrides:
            blob = json.dumps(sorted(self._overrides.items())).encode()
            self.version += "+" + hashlib.sha256(blob).hexdigest()[:8]

    @property
    def overrides(self) -> Mapping[str, str]:
        """The user overrides, keys normalized."""
        return self._overrides

    def to_conda(self, pypi_name: str) -> MappedName:
        """The conda name for a PyPI project name; raises UsageError for an invalid name."""
        key = check_pypi_name(pypi_name.strip())
        if key in self._overrides:
            conda, source = self._overrides[key], OVERRIDE
        else:
            conda, source = self._table.forward.get(key, (key, IDENTITY))
        return MappedName(pypi=pypi_name, normalized=key, conda=conda, source=source)

    def to_pypi(self, conda_name: str) -> str | None:
        """The normalized PyPI name of a conda package, or None if none is known."""
        name = conda_name.strip().lower()
        if name in self._reverse_overrides:
            return self._reverse_overrides[name]
        return self._table.reverse.get(name)

    def is_non_python(self, conda_name: str) -> bool:
        """True if conda-forge has a package of this name that carries no PyPI metadata.

        An identity-mapped name that lands here (``opencv``, ``mkl``) collides with a
        non-Python conda package; callers may want to warn.
        """
        return conda_name.strip().lower() in self._table.no_pypi
