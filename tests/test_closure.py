"""The search for build requirements that need a host resolution of their own (an island):
the same answer as trying each package's requirements in turn, with fewer pip runs."""

from __future__ import annotations

import io

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from recipegen.closure import ClosureBuilder
from recipegen.progress import Reporter
from recipegen.resolve import Resolution, ResolutionConflict


def _builder(groups: dict[str, tuple[str, ...]], calls: list[list[str]]) -> ClosureBuilder:
    """A builder whose resolver refuses any set asking for two disjoint ranges of one name."""

    def resolver(requirements: list[str], constrained: bool) -> Resolution:
        calls.append(list(requirements))
        by_name: dict[str, SpecifierSet] = {}
        for text in requirements:
            req = Requirement(text)
            by_name[req.name] = by_name.get(req.name, SpecifierSet()) & req.specifier
        for name, spec in by_name.items():
            if not any(spec.contains(v) for v in ("3.9", "4.2", "5.0")):
                raise ResolutionConflict(f"no {name} satisfies {spec}")
        return Resolution(tuple(requirements), {}, {})

    builder = ClosureBuilder([Requirement("app")], resolver=resolver, generator=None,
                             decider=None, reporter=Reporter("quiet", stream=io.StringIO()))
    builder.host_groups.update(groups)
    return builder


def _sequential(groups: dict[str, tuple[str, ...]]) -> set[str]:
    """What trying each package's host requirements in turn makes islands of."""
    accepted: list[str] = []
    islands = set()
    for key in sorted(groups):
        reqs = [r for k in [*accepted, key] for r in groups[k]]
        names: dict[str, SpecifierSet] = {}
        for text in reqs:
            req = Requirement(text)
            names[req.name] = names.get(req.name, SpecifierSet()) & req.specifier
        if all(any(s.contains(v) for v in ("3.9", "4.2", "5.0")) for s in names.values()):
            accepted.append(key)
        else:
            islands.add(key)
    return islands


def test_one_conflicting_package_becomes_an_island_in_few_resolves() -> None:
    groups = {f"pkg{i:02}": ("flit_core>=4",) for i in range(16)}
    groups["pkg07"] = ("flit_core<4",)
    calls: list[list[str]] = []
    builder = _builder(groups, calls)
    main = builder._resolve_main()
    assert set(builder.islands) == {"pkg07"} == _sequential(groups)
    assert "flit_core<4" not in main.requirements
    assert len(calls) < len(groups)  # one pip run per package would be 18


def test_several_conflicts_give_what_one_at_a_time_gives() -> None:
    groups = {"a": ("setuptools>=5",), "b": ("setuptools<4",), "c": ("hatchling>=4",),
              "d": ("setuptools<5,>=4",), "e": ("hatchling<4",), "f": ("setuptools>=4",),
              "g": ("flit_core",)}
    builder = _builder(groups, [])
    builder._resolve_main()
    assert set(builder.islands) == _sequential(groups) == {"b", "d", "e"}
