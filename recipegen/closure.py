"""The build closure: every package to reuse or build, with its host and run edges.

Run requirements come from one pip resolution; build requirements (backends) are only
known once recipes exist, so resolution and generation alternate until no new build
requirement appears. Build requirements join the same resolution, so a package needed at
run time and at build time gets one version that suits both. When a package's build
requirements cannot share that resolution (python-dateutil wants ``setuptools_scm<8``
while others want ``>=8``), its host env gets a resolution of its own, an *island*, and
the versions only it needs become extra nodes keyed ``name==version``: conda builds each
package's host env separately, so the channel may hold both.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from recipegen.errors import RecipegenError
from recipegen.generate import GeneratedRecipe, run_requirements
from recipegen.plan import Decision, combined_specifiers
from recipegen.progress import Reporter
from recipegen.resolve import Resolution, ResolutionConflict, ResolvedDist, active_requirements

#: Rounds of resolve-and-generate before giving up (each round adds build requirements).
MAX_ROUNDS = 12

Resolver = Callable[[list[str], bool], Resolution]  # (requirements, with constraints)
Generator = Callable[[ResolvedDist, Resolution], GeneratedRecipe]
Decider = Callable[[str, str, SpecifierSet, bool], Decision]  # name, version, spec, requested


@dataclass(frozen=True)
class Node:
    """One distribution of the closure, and the resolution its requirements come from."""

    key: str  # the PyPI name, or ``name==version`` for a second version of it
    dist: ResolvedDist
    resolution: Resolution = field(compare=False, hash=False)


@dataclass
class Closure:
    """The dependency closure planned so far: resolutions, decisions, recipes."""

    resolution: Resolution  # the main one
    nodes: dict[str, Node]
    decisions: dict[str, Decision]
    recipes: dict[str, GeneratedRecipe]
    host: dict[str, set[str]]  # build node → build nodes its host env needs
    run: dict[str, set[str]]  # build node → build nodes it needs at run time

    def building(self) -> set[str]:
        return {k for k, d in self.decisions.items() if d.action == "build"}


def extra_roots(parsed: list[Requirement], resolution: Resolution) -> set[str]:
    """Packages an extra of a requested package adds (``httpx[http2]`` → h2)."""
    roots: set[str] = set()
    for req in parsed:
        if req.extras:
            dist = resolution.dists[canonicalize_name(req.name)]
            base = {str(r) for r in active_requirements(dist.requires_dist,
                                                        resolution.environment)}
            for extra in active_requirements(dist.requires_dist, resolution.environment,
                                             tuple(sorted(req.extras))):
                if str(extra) not in base:
                    roots.add(canonicalize_name(extra.name))
    return roots


class ClosureBuilder:
    """Alternates resolution and recipe generation until the closure stops growing."""

    def __init__(self, parsed: list[Requirement], *, resolver: Resolver, generator: Generator,
                 decider: Decider, reporter: Reporter, jobs: int = 1,
                 follow: bool = True) -> None:
        self.parsed = parsed
        self.resolver = resolver
        self.generator = generator
        self.decider = decider
        self.reporter = reporter
        self.jobs = jobs
        self.follow = follow
        self.generated: dict[tuple[str, str], GeneratedRecipe] = {}
        self.host_groups: dict[str, tuple[str, ...]] = {}  # build node → host requirements
        self.islands: dict[str, Resolution] = {}

    # -- resolution ----------------------------------------------------------------------------

    def _user(self) -> list[str]:
        return [str(r) for r in self.parsed]

    def _joint(self, groups: list[str]) -> list[str]:
        reqs = {r for g in groups for r in self.host_groups[g]}
        return [*self._user(), *sorted(reqs)]

    def _resolve_main(self) -> Resolution:
        """User specs plus every build requirement that can share their resolution."""
        shared = sorted(k for k in self.host_groups if k not in self.islands)
        try:
            return self.resolver(self._joint(shared), True)
        except ResolutionConflict:
            pass
        self.reporter.phase("resolve", "build requirements conflict; finding which "
                            "package's host env needs a resolution of its own")
        accepted: list[str] = []
        middle = len(shared) // 2
        self._accept(accepted, shared[:middle])
        self._accept(accepted, shared[middle:])
        return self.resolver(self._joint(accepted), True)

    def _accept(self, accepted: list[str], keys: list[str]) -> None:
        """Accept ``keys`` in order, each if it resolves with what is accepted so far; the
        others become islands. As one resolve per key would, but a block that resolves as
        a whole is accepted in one go (a pip run costs seconds; conflicts are few)."""
        if not keys:
            return
        try:
            self.resolver(self._joint([*accepted, *keys]), True)
            accepted.extend(keys)
            return
        except ResolutionConflict:
            if len(keys) == 1:
                self.islands[keys[0]] = self._island(keys[0])
                return
        middle = len(keys) // 2
        self._accept(accepted, keys[:middle])
        self._accept(accepted, keys[middle:])

    def _island(self, key: str) -> Resolution:
        reqs = list(self.host_groups[key])
        self.reporter.info(f"{key}: its build requirements ({', '.join(reqs)}) get their own "
                           "resolution")
        try:
            return self.resolver(reqs, True)
        except ResolutionConflict:
            # The user's constraints pin the shared closure; this host env cannot follow them.
            return self.resolver(reqs, False)

    # -- the walk ------------------------------------------------------------------------------

    def build(self) -> Closure:
        roots = list(dict.fromkeys(canonicalize_name(r.name) for r in self.parsed))
        for name in roots:
            self.reporter.package("resolving", name)
        for round_ in range(MAX_ROUNDS):
            main = self._resolve_main()
            if round_ == 0:
                for name in roots:
                    self.reporter.package("resolved", name, {"version": main.dists[name].version})
            closure = self._walk(main)
            needed = ({k: closure.recipes[k].host_requirements for k in closure.building()}
                      if self.follow else {})
            new = {k: v for k, v in needed.items() if self.host_groups.get(k) != v}
            if not new:  # the last walk: its recipes are the plan's, warned about once
                for recipe in closure.recipes.values():
                    for warning in recipe.warnings:
                        self.reporter.warn(warning)
                return closure
            added = sorted({r for v in new.values() for r in v}
                           - {r for v in self.host_groups.values() for r in v})
            if added:
                self.reporter.phase("resolve", "again, with build requirements: "
                                    + ", ".join(added))
            self.host_groups.update(new)
        raise RecipegenError("build requirements kept changing the resolution; giving up",
                             hint="pin the closure with --constraints")

    def _key(self, name: str, resolution: Resolution, main: Resolution) -> str:
        version = resolution.dists[name].version
        if resolution is main or (name in main.dists and main.dists[name].version == version):
            return name
        return f"{name}=={version}"

    def _specifiers(self, resolution: Resolution, extra: list[str]) -> dict[str, SpecifierSet]:
        edges = [*(r for d in resolution.dists.values() for r in run_requirements(d, resolution)),
                 *map(Requirement, extra)]
        return combined_specifiers(edges)

    def _walk(self, main: Resolution) -> Closure:
        closure = Closure(main, {}, {}, {}, {}, {})
        requested = {canonicalize_name(r.name) for r in self.parsed}
        shared = self._joint([k for k in self.host_groups if k not in self.islands])
        main_specs = self._specifiers(main, shared)  # user specs and shared build reqs
        island_specs: dict[str, dict[str, SpecifierSet]] = {}
        level = []
        for name in sorted(requested | extra_roots(self.parsed, main)):
            closure.nodes[name] = Node(name, main.dists[name], main)
            level.append(name)
        while level:
            for key in level:
                node = closure.nodes[key]
                specs = main_specs if node.resolution is main else island_specs[key]
                closure.decisions[key] = self.decider(
                    node.dist.name, node.dist.version,
                    specs.get(node.dist.name, SpecifierSet()), key in requested)
            to_build = [k for k in level if closure.decisions[k].action == "build"]
            self._generate(closure, to_build)
            following: list[str] = []
            for key in to_build:
                recipe = closure.recipes[key]
                node = closure.nodes[key]
                host_res = self.islands.get(key, main)
                closure.host[key] = self._edges(closure, recipe.host_requirements, host_res,
                                                main, following, island_specs)
                closure.run[key] = self._edges(closure, recipe.run_requirements,
                                               node.resolution, main, following, island_specs)
            level = sorted(set(following)) if self.follow else []
        for key in closure.building():
            closure.host[key] -= {key}
        return closure

    def _edges(self, closure: Closure, requirements: tuple[str, ...], resolution: Resolution,
               main: Resolution, following: list[str],
               island_specs: dict[str, dict[str, SpecifierSet]]) -> set[str]:
        keys: set[str] = set()
        for text in requirements:
            name = canonicalize_name(Requirement(text).name)
            if name not in resolution.dists:
                continue  # a new build requirement: the next round resolves it
            key = self._key(name, resolution, main)
            keys.add(key)
            if key not in closure.nodes:
                closure.nodes[key] = Node(key, resolution.dists[name],
                                          main if key == name else resolution)
                if key != name:
                    island_specs[key] = self._specifiers(resolution, list(requirements))
                following.append(key)
        return keys

    def _generate(self, closure: Closure, keys: list[str]) -> None:
        """Recipes for ``keys``, generated concurrently (network- and subprocess-bound)."""
        missing = [k for k in keys if (closure.nodes[k].dist.name,
                                       closure.nodes[k].dist.version) not in self.generated]
        if missing:
            self.reporter.phase("generate", f"{len(missing)} recipe(s)")

            def one(key: str) -> GeneratedRecipe:
                node = closure.nodes[key]
                self.reporter.package("generating", key)
                recipe = self.generator(node.dist, node.resolution)
                self.reporter.package("generated", key, {"recipe": recipe.spec.name,
                                                         "cached": recipe.from_cache})
                return recipe

            with ThreadPoolExecutor(max_workers=max(2, min(self.jobs * 2, 8))) as pool:
                for key, recipe in zip(missing, pool.map(one, missing), strict=True):
                    node = closure.nodes[key]
                    self.generated[(node.dist.name, node.dist.version)] = recipe
        for key in keys:
            node = closure.nodes[key]
            closure.recipes[key] = self.generated[(node.dist.name, node.dist.version)]
