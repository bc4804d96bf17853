"""Requirements of one release, as a recipe of a given flavour must state them.

PyPI dependencies carry markers; conda recipes have no markers. A *local* recipe is built
for one target, so each marker is simply evaluated there. A *conda-forge* recipe is
``noarch: python`` and must hold on every Python from ``python_min`` up and on every
platform, so a marker is evaluated over that whole range: dependencies that never apply
are dropped, ones that apply to some Pythons are kept, and platform-only ones become the
``if: win`` / ``__win`` / ``__unix`` blocks conda-forge's noarch recipes use. Every
dropped or moved requirement is reported with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from recipegen.mapping import NameMapper
from recipegen.recipe import Conditional, Note
from recipegen.specs import to_conda_spec

PLATFORM_ENVS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
              "machines": ("x86_64", "aarch64", "ppc64le")},
    "osx": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix",
            "machines": ("x86_64", "arm64")},
    "win": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
            "machines": ("AMD64", "ARM64")},
}
#: Marker variables a noarch recipe has no selector for.
NOT_EXPRESSIBLE = ("platform_machine", "platform_release", "platform_version",
                   "implementation_name", "platform_python_implementation")
#: The newest minor version considered when a marker is evaluated "for every Python".
NEWEST_MINOR = 15


@dataclass(frozen=True)
class RunRequirements:
    """Run requirements in conda terms, plus what happened to each marker and extra."""

    run: tuple[str, ...]
    conditional: tuple[Conditional, ...] = ()
    constraints: tuple[str, ...] = ()
    pypi: tuple[Requirement, ...] = ()  # the PyPI requirements kept (any platform)
    notes: tuple[Note, ...] = field(default=(), compare=False)


def strip_marker(req: Requirement) -> Requirement:
    clean = Requirement(str(req))
    clean.marker = None
    clean.extras = set()
    return clean


def _base_and_extra(marker: Marker | None) -> bool:
    """Whether a marker mentions ``extra`` (those requirements belong to extras)."""
    return marker is not None and "extra" in str(marker)


def python_range(python_min: str) -> list[str]:
    major, minor = (int(p) for p in python_min.split(".")[:2])
    return [f"{major}.{m}" for m in range(minor, max(minor, NEWEST_MINOR) + 1)]


def _envs(python_min: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Marker environments for every platform, machine and Python ≥ python_min."""
    for platform, values in PLATFORM_ENVS.items():
        for version in python_range(python_min):
            for machine in values["machines"]:
                yield platform, {
                    "python_version": version, "python_full_version": version + ".0",
                    "implementation_name": "cpython", "implementation_version": version + ".0",
                    "platform_python_implementation": "CPython", "platform_machine": machine,
                    "sys_platform": values["sys_platform"],
                    "platform_system": values["platform_system"],
                    "os_name": values["os_name"], "platform_release": "",
                    "platform_version": "", "extra": "",
                }


def platforms_where(marker: Marker, python_min: str) -> set[str]:
    """The platforms on which ``marker`` holds for at least one Python ≥ python_min."""
    return {platform for platform, env in _envs(python_min) if marker.evaluate(env)}


def _always(marker: Marker, python_min: str) -> bool:
    """Whether ``marker`` holds for every Python ≥ python_min on every platform/machine."""
    return all(marker.evaluate(env) for _, env in _envs(python_min))


def _merge(reqs: Iterable[Requirement], mapper: NameMapper,
           exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """PyPI requirements as conda specs, one line per conda name (specifiers intersected)."""
    merged: dict[str, SpecifierSet] = {}
    for req in reqs:
        conda = mapper.to_conda(req.name).conda
        if conda in exclude:
            continue
        merged[conda] = merged.get(conda, SpecifierSet()) & req.specifier
    out = []
    for conda, spec in merged.items():
        translated = to_conda_spec(spec)
        out.append(f"{conda} {translated}" if translated else conda)
    return tuple(out)


def _expand_extras(req: Requirement, dependencies: dict[str, tuple[str, ...]],
                   holds) -> list[Requirement]:
    """``foo[bar]``: what ``bar`` adds to ``foo`` (conda packages have no extras)."""
    requires = dependencies.get(canonicalize_name(req.name))
    if not req.extras or requires is None:
        return []
    added = []
    for text in requires:
        dep = Requirement(text)
        if dep.marker is None or not _base_and_extra(dep.marker):
            continue
        if any(dep.marker.evaluate(holds({"extra": e})) for e in sorted(req.extras)):
            added.append(dep)
    return added


#: Extras for developing the project, not for using it: never run constraints.
DEVELOPMENT_EXTRAS = {"test", "tests", "testing", "dev", "develop", "development", "doc", "docs",
                      "documentation", "lint", "linting", "typing", "types", "type", "mypy",
                      "check", "checks", "style", "all", "full", "complete", "benchmark",
                      "benchmarks", "bench", "coverage", "cov", "qa", "release", "ci"}


def _extras_of(marker: Marker) -> set[str]:
    return {canonicalize_name(e) for e in re.findall(r"""extra\s*==\s*['"]([^'"]+)['"]""",
                                                      str(marker))}


def extras_constraints(requires_dist: Iterable[str], run_names: set[str],
                       mapper: NameMapper) -> tuple[str, ...]:
    """Versioned requirements of optional extras as ``run_constraints`` (as conda-forge does).

    They pin a version if the user installs the optional dependency, without pulling it in.
    Test, docs and other development extras are left out.
    """
    reqs = []
    for text in requires_dist:
        req = Requirement(text)
        if not _base_and_extra(req.marker) or not req.specifier:
            continue
        if _extras_of(req.marker) <= DEVELOPMENT_EXTRAS:
            continue
        if mapper.to_conda(req.name).conda in run_names:
            continue
        reqs.append(strip_marker(req))
    return _merge(reqs, mapper)


def extras_notes(requires_dist: Iterable[str]) -> list[Note]:
    """One note per extra: a conda package has none, so its dependencies are not installed."""
    extras: set[str] = set()
    for text in requires_dist:
        marker = Requirement(text).marker
        if _base_and_extra(marker):
            extras |= _extras_of(marker)
    return [Note(f"[{extra}]", "dropped", "conda packages have no extras; its versioned "
                 "requirements are run_constraints" if extra not in DEVELOPMENT_EXTRAS else
                 "conda packages have no extras (a development extra)")
            for extra in sorted(extras)]


def local_run(requires_dist: Iterable[str], env: dict[str, str], mapper: NameMapper,
              dependencies: dict[str, tuple[str, ...]], python: str) -> RunRequirements:
    """Run requirements for one target: each marker evaluated in the target's environment."""
    requires_dist = list(requires_dist)
    kept: list[Requirement] = []
    notes: list[Note] = []
    for text in requires_dist:
        req = Requirement(text)
        if _base_and_extra(req.marker):
            continue
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            notes.append(Note(str(req), "dropped", "its marker is false on the target"))
            continue
        kept.append(req)
        for extra_req in _expand_extras(req, dependencies, lambda e: {**env, **e}):
            kept.append(extra_req)
    kept = [strip_marker(r) for r in kept]
    run = (python, *_merge(kept, mapper, ("python",)))
    names = {line.split()[0] for line in run}
    return RunRequirements(run=run, constraints=extras_constraints(requires_dist, names, mapper),
                           pypi=tuple(kept), notes=(*notes, *extras_notes(requires_dist)))


def _selector(platforms: set[str]) -> str | None:
    if platforms == {"win"}:
        return "win"
    if platforms == {"linux", "osx"}:
        return "unix"
    if len(platforms) == 1:
        return next(iter(platforms))
    return None


VIRTUAL = {"win": ("__win", "__unix"), "unix": ("__unix", "__win"),
           "linux": ("__linux", None), "osx": ("__osx", None)}


def noarch_run(requires_dist: Iterable[str], python_min: str, mapper: NameMapper,
               dependencies: dict[str, tuple[str, ...]], python: str) -> RunRequirements:
    """Run requirements of a ``noarch: python`` recipe valid for every Python ≥ python_min."""
    requires_dist = list(requires_dist)
    unconditional: list[Requirement] = []
    by_selector: dict[str, list[Requirement]] = {}
    notes: list[Note] = []
    for text in requires_dist:
        req = Requirement(text)
        if _base_and_extra(req.marker):
            continue
        if req.marker is None or _always(req.marker, python_min):
            unconditional.append(req)
            unconditional.extend(_expand_extras(req, dependencies, lambda e: e))
            continue
        platforms = platforms_where(req.marker, python_min)
        if not platforms:
            notes.append(Note(str(req), "dropped",
                              f"its marker is false for every Python >={python_min}"))
            continue
        if any(var in str(req.marker) for var in NOT_EXPRESSIBLE):
            notes.append(Note(str(req), "kept for all", "its marker depends on the machine or "
                              "interpreter, which a noarch recipe cannot express"))
            unconditional.append(req)
            continue
        if platforms == set(PLATFORM_ENVS):
            notes.append(Note(str(req), "kept for all", f"its marker holds for some Python "
                              f">={python_min} (a noarch recipe cannot say which)"))
            unconditional.append(req)
            continue
        selector = _selector(platforms)
        if selector is None:
            notes.append(Note(str(req), "kept for all", f"its marker holds on "
                              f"{', '.join(sorted(platforms))}, which no noarch selector says"))
            unconditional.append(req)
            continue
        notes.append(Note(str(req), f"only on {selector}",
                          f"an `if: {selector}` block with `{VIRTUAL[selector][0]}`"))
        by_selector.setdefault(selector, []).append(req)
    reqs = [strip_marker(r) for r in unconditional]
    run = (python, *_merge(reqs, mapper, ("python",)))
    conditional = []
    for selector, items in sorted(by_selector.items()):
        yes, no = VIRTUAL[selector]
        conditional.append(Conditional(
            selector=selector,
            then=(*_merge([strip_marker(r) for r in items], mapper), yes),
            otherwise=(no,) if no else (),
        ))
    names = {line.split()[0] for line in run}
    return RunRequirements(
        run=run, conditional=tuple(conditional),
        constraints=extras_constraints(requires_dist, names, mapper),
        pypi=tuple(reqs), notes=(*notes, *extras_notes(requires_dist)))


__all__ = ["Conditional", "Note", "RunRequirements", "local_run", "noarch_run", "platforms_where",
           "strip_marker"]
