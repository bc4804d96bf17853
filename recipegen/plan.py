"""Per package: reuse a channel's build or build from PyPI; and the order to build in.

Pure functions over data the other stages produced; no I/O, so every rule here can be
tested with hand-made inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from recipegen.channels import Availability, ChannelPackage

if TYPE_CHECKING:  # packaging is imported where a rule runs: a reused plan runs none
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version


@dataclass(frozen=True)
class Decision:
    """Where one distribution of the closure comes from."""

    name: str  # PyPI name, normalized
    version: str  # the version pip resolved (what a build would produce)
    conda_name: str
    action: Literal["build", "reuse"]
    reason: str
    specifier: str = ""  # what the closure requires of it
    channel_package: ChannelPackage | None = None
    requested: bool = False


@dataclass(frozen=True)
class BuildStep:
    """One package to build, after the steps named in ``after``."""

    name: str
    after: frozenset[str]
    skip_tests: bool = False


@dataclass(frozen=True)
class BuildOrder:
    """The builds in an order where each comes after what it needs."""

    steps: tuple[BuildStep, ...]
    broken_cycles: tuple[tuple[str, ...], ...] = field(default=())


def _version_key(pkg: ChannelPackage) -> tuple[int, Version | str, str]:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(pkg.version), pkg.build)
    except InvalidVersion:
        return (0, pkg.version, pkg.build)


def decide(name: str, version: str, conda_name: str, specifier: SpecifierSet,
           availability: Availability, *, requested: bool) -> Decision:
    """Reuse the newest channel package that satisfies ``specifier``; else build.

    A package the user named is always built from PyPI: that is what they asked for.
    """
    from recipegen.specs import satisfies

    spec_text = str(specifier)
    if requested:
        return Decision(name, version, conda_name, "build", "requested by name",
                        spec_text, requested=True)
    candidates = [p for p in availability.of(conda_name) if satisfies(p.version, specifier)]
    if candidates:
        best = max(candidates, key=_version_key)
        return Decision(name, version, conda_name, "reuse", f"{best.channel} has {best.version}",
                        spec_text, channel_package=best)
    offered = sorted({p.version for p in availability.of(conda_name)})
    why = (f"channels have {', '.join(offered[-3:])}, none satisfies '{spec_text or '*'}'"
           if offered else "no channel has it")
    return Decision(name, version, conda_name, "build", why, spec_text)


def combined_specifiers(edges: Iterable[Requirement]) -> dict[str, SpecifierSet]:
    """Everything the closure asks of each name, intersected."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    out: dict[str, SpecifierSet] = {}
    for req in edges:
        key = canonicalize_name(req.name)
        out[key] = out.get(key, SpecifierSet()) & req.specifier
    return out


def _closure(start: Iterable[str], run_edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(run_edges.get(node, ()))
    return seen


def _sccs(nodes: list[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative, deterministic order)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result


class CycleError(Exception):
    """Build-time (host) dependencies form a cycle no skipped test can break."""

    def __init__(self, members: list[str]) -> None:
        super().__init__(", ".join(members))
        self.members = members


def build_order(host: Mapping[str, set[str]], run: Mapping[str, set[str]]) -> BuildOrder:
    """Order builds so each package's host and test envs can be solved from the channel.

    ``host``/``run`` map each package to build onto the packages to build that it needs
    at build time / at run time. A package needs, before it builds, its host deps and
    their run closure (host env) and its run closure (test env). Cycles through run
    dependencies are broken by building one member without tests; a cycle of host
    dependencies raises :class:`CycleError` (the caller can switch a member to its wheel).
    """
    nodes = sorted(host.keys() | run.keys())
    known = set(nodes)
    hard = {n: _closure(set(host.get(n, ())) - {n}, run) & known for n in nodes}
    for n in nodes:
        if n in hard[n]:
            # Its host env would have to contain the package itself.
            raise CycleError([n, *sorted(hard[n] - {n})])
    soft = {n: (_closure(run.get(n, ()), run) & known) - {n} for n in nodes}
    skip: set[str] = set()
    broken: list[tuple[str, ...]] = []
    while True:
        edges = {n: hard[n] | (set() if n in skip else soft[n]) for n in nodes}
        cycles = [c for c in _sccs(nodes, edges) if len(c) > 1]
        if not cycles:
            break
        cycle = cycles[0]
        # Skip tests of the member whose soft edges cause the cycle; prefer fewer dependents.
        candidates = [n for n in cycle if n not in skip and soft[n] & set(cycle)]
        if not candidates:
            raise CycleError(cycle)
        victim = min(candidates, key=lambda n: (len(hard[n] & set(cycle)), n))
        skip.add(victim)
        broken.append(tuple(cycle))
    edges = {n: hard[n] | (set() if n in skip else soft[n]) for n in nodes}
    steps: list[BuildStep] = []
    done: set[str] = set()
    remaining = set(nodes)
    while remaining:
        ready = sorted(n for n in remaining if edges[n] <= done)
        for n in ready:
            steps.append(BuildStep(n, frozenset(edges[n]), n in skip))
        done.update(ready)
        remaining.difference_update(ready)
    return BuildOrder(tuple(steps), tuple(broken))
