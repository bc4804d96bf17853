"""PEP 440 specifiers → conda version specs.

The two languages look alike but differ where it hurts: conda reads ``==1.*`` as an exact
match of the string ``1.*``, has no ``~=`` and no ``===``. Every requirement that goes into
a recipe passes through :func:`to_conda_spec`, so the recipe stays installable by any conda
solver and passes conda-forge's spacing lints (``name >=1,<2``: one space, none inside).
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from recipegen.errors import RecipegenError


def _compatible_upper(version: str) -> str:
    """Upper bound of ``~=V``: drop the last release segment, bump the one before it."""
    head = list(Version(version).release[:-1])  # packaging guarantees two or more segments
    head[-1] += 1
    return ".".join(str(part) for part in head)


def _clause(spec: Specifier) -> list[str]:
    op, version = spec.operator, spec.version
    if op == "~=":
        return [f">={version}", f"<{_compatible_upper(version)}"]
    if op == "==" and version.endswith(".*"):
        return [version]
    if op == "===":
        return [f"=={version}"]
    if op in ("!=", "<", "<=", ">", ">=", "=="):
        return [f"{op}{version}"]
    raise RecipegenError(f"unsupported version operator {op!r} in '{spec}'")


def _sort_key(spec: Specifier) -> tuple[int, str]:
    order = {">=": 0, ">": 0, "~=": 0, "==": 1, "===": 1, "!=": 2, "<": 3, "<=": 3}
    return (order.get(spec.operator, 4), spec.version)


def to_conda_spec(specifier: SpecifierSet | str) -> str:
    """Translate a PEP 440 specifier set into a conda version spec ('' for no constraint).

    Clauses come out in a stable order (lower bounds, pins, exclusions, upper bounds), so
    the same requirement always gives the same recipe text.
    """
    try:
        spec_set = specifier if isinstance(specifier, SpecifierSet) else SpecifierSet(specifier)
    except InvalidSpecifier as exc:
        raise RecipegenError(f"invalid version specifier {specifier!r}: {exc}") from exc
    clauses: list[str] = []
    for spec in sorted(spec_set, key=_sort_key):
        try:
            clauses.extend(_clause(spec))
        except InvalidVersion as exc:
            raise RecipegenError(f"invalid version in specifier '{spec}': {exc}") from exc
    return ",".join(clauses)


def conda_requirement(name: str, specifier: SpecifierSet | str = "") -> str:
    """``name`` plus its translated version spec, separated by one space."""
    spec = to_conda_spec(specifier)
    return f"{name} {spec}" if spec else name


def satisfies(version: str, specifier: SpecifierSet | str) -> bool:
    """Whether a (conda or PyPI) version string satisfies a PEP 440 specifier set.

    Pre-releases count as satisfying when the specifier admits them explicitly or the
    version is the only thing there is; conda does not hide them the way pip does.
    """
    spec_set = specifier if isinstance(specifier, SpecifierSet) else SpecifierSet(specifier)
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    return spec_set.contains(parsed, prereleases=True)
