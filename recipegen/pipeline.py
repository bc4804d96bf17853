"""The install pipeline: resolve → map and query channels → plan → generate → build → install.

This module only sequences the stages and moves their typed values between them; each
stage's rules live in its own module. Nothing touches the prefix before every build has
succeeded, and ``dry_run`` stops after planning, having written nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from recipegen import channels as channels_mod
from recipegen import localchannel
from recipegen.build import BuildJob, BuildOutcome, build_all
from recipegen.channels import Availability
from recipegen.errors import RecipegenError, UsageError
from recipegen.generate import (
    GenerateContext,
    GeneratedRecipe,
    generate,
    run_requirements,
    without_tests,
    write_recipe,
)
from recipegen.install import Solution, link, solve
from recipegen.mapping import NameMapper
from recipegen.plan import (
    BuildOrder,
    CycleError,
    Decision,
    build_order,
    combined_specifiers,
    decide,
)
from recipegen.progress import Reporter
from recipegen.pypi import PyPI
from recipegen.reproducible import FALLBACK_TIMESTAMP
from recipegen.resolve import Resolution, parse_requirement, resolve
from recipegen.specs import conda_requirement
from recipegen.target import Target, inspect_target
from recipegen.workroot import WorkRoot


@dataclass(frozen=True)
class InstallRequest:
    """What the user asked for, after the CLI parsed it."""

    specs: tuple[str, ...]
    prefix: Path
    work_root: Path
    channels: tuple[str, ...] = ()
    constraints: tuple[Path, ...] = ()
    jobs: int = 1
    dry_run: bool = False
    offline: bool = False
    keep_going: bool = False
    mapping_overrides: dict[str, str] = field(default_factory=dict)
    grayskull_timeout: float = 300.0


@dataclass(frozen=True)
class InstallPlan:
    """Everything decided before anything is built or installed."""

    target: Target
    channels: tuple[str, ...]  # URLs, the local build channel first
    python_version: str
    decisions: dict[str, Decision]
    recipes: dict[str, GeneratedRecipe]
    order: BuildOrder
    requested: tuple[str, ...]  # the user's specs as conda specs (recorded in conda-meta)
    pins: tuple[str, ...]  # exact builds of requested packages (steer the solve)
    #: Exact builds the final solve may pick and no other (a locked install's whole env).
    constraints: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstallResult:
    plan: InstallPlan
    builds: tuple[BuildOutcome, ...]
    solution: Solution | None


#: Resolutions of run + build requirements before giving up (each adds build requirements).
MAX_ROUNDS = 12


# -- channels -------------------------------------------------------------------------------


def choose_channels(req: InstallRequest, work: WorkRoot, gateway, platform: str,
                    reporter: Reporter) -> list[str]:
    """The user's channels; by default conda-forge, or the seed channel when it is away."""
    if req.channels:
        return [channels_mod.channel_url(c) for c in req.channels]
    forge = channels_mod.channel_url(channels_mod.CONDA_FORGE)
    try:
        channels_mod.query([forge], platform, ["python"], gateway=gateway)
        return [forge]
    except RecipegenError:
        pass
    seed = work.seed
    if not (seed / "noarch" / "repodata.json").exists():
        if req.dry_run:
            raise RecipegenError(
                "conda-forge cannot be reached and there is no seed channel at " + str(seed),
                hint="run 'recipegen seed' first (a dry run writes nothing), or pass -c CHANNEL",
            )
        from recipegen.seed import seed_channel

        reporter.phase("seed", f"conda-forge is unreachable; making the seed channel {seed}")
        seed_channel(seed, progress=reporter.info)
    else:
        reporter.info(f"conda-forge is unreachable; using the seed channel {seed}")
    return [seed.as_uri()]


def _python_for(target: Target, availability: Availability) -> str:
    """The python version the env has, or will get from the channels."""
    if target.python_version:
        return target.python_version
    offered = [p.version for p in availability.of("python")]
    if not offered:
        raise RecipegenError(
            "no channel offers python, so a new env cannot be created",
            hint="add a channel with python (-c), or run 'recipegen seed' and use it",
        )
    running = f"{sys.version_info.major}.{sys.version_info.minor}"

    def key(v: str) -> tuple[bool, Version]:
        try:
            return (v.startswith(running + "."), Version(v))
        except InvalidVersion:
            return (False, Version("0"))

    return max(offered, key=key)


def _resolver_python(target: Target, python_version: str) -> Path:
    """An interpreter that answers markers exactly as the target's python will."""
    if target.python_version and target.python_exe.exists():
        return target.python_exe
    if python_version.split(".")[:2] == [str(sys.version_info.major),
                                          str(sys.version_info.minor)]:
        return Path(sys.executable)
    raise RecipegenError(
        f"the new env would get python {python_version}, but recipegen runs on "
        f"{sys.version.split()[0]} and needs a python of the target's version to resolve",
        hint="create the env with python first, or run recipegen with that python",
    )


# -- planning -------------------------------------------------------------------------------


def _map_names(names: list[str], mapper: NameMapper) -> dict[str, str]:
    return {n: mapper.to_conda(n).conda for n in names}


def make_plan(req: InstallRequest, reporter: Reporter) -> InstallPlan:
    """Resolve, decide, generate recipes and order the builds; touch nothing outside caches.

    A dry run uses a temporary cache, removed at the end: it writes nothing anywhere.
    """
    if not req.dry_run:
        return _make_plan(req, reporter, WorkRoot.at(req.work_root).cache)
    with tempfile.TemporaryDirectory(prefix="recipegen-dry-run-") as tmp:
        return _make_plan(req, reporter, Path(tmp))


def _make_plan(req: InstallRequest, reporter: Reporter, cache: Path) -> InstallPlan:
    parsed = [parse_requirement(s) for s in req.specs]
    if not parsed:
        raise UsageError("nothing to install: give at least one requirement")
    target = inspect_target(req.prefix)
    work = WorkRoot.at(req.work_root)
    gateway = channels_mod.make_gateway(cache / "repodata", offline=req.offline)
    reporter.phase("channels", "checking which channels can be reached")
    user_channels = choose_channels(req, work, gateway, target.platform, reporter)
    if not req.dry_run:
        work.ensure_writable()
        localchannel.ensure(work.channel, target.platform)
    local = [work.channel.as_uri()] if (work.channel / "noarch" / "repodata.json").exists() else []
    all_channels = [*local, *user_channels]
    mapper = NameMapper(req.mapping_overrides)

    python_probe = channels_mod.query(all_channels, target.platform, ["python"], gateway=gateway)
    python_version = _python_for(target, python_probe)
    python_exe = _resolver_python(target, python_version)

    pypi = PyPI(cache / "pypi", offline=req.offline)
    ctx = GenerateContext(mapper=mapper, pypi=pypi, cache_dir=cache,
                          python_version=python_version, grayskull_timeout=req.grayskull_timeout)
    requested = {canonicalize_name(r.name) for r in parsed}
    generated: dict[tuple[str, str], GeneratedRecipe] = {}
    known: dict[str, tuple] = {}  # conda name → channel packages, queried once per name
    build_requirements: set[str] = set()
    reporter.phase("resolve", ", ".join(req.specs) + f" for python {python_version}")
    for _round in range(MAX_ROUNDS):
        # One resolution of the user's specs and every build requirement seen so far, so a
        # package needed at run time and at build time gets one version that suits both.
        resolution = resolve([*map(str, parsed), *sorted(build_requirements)],
                             python=python_exe, constraints=req.constraints,
                             use_cache=not req.dry_run)
        names = sorted(resolution.dists)
        conda_names = _map_names(names, mapper)
        new = sorted({conda_names[n] for n in names} - known.keys())
        if new:
            reporter.phase("channels", f"looking up {len(new)} packages in "
                           f"{len(all_channels)} channel(s)")
            found = channels_mod.query(all_channels, target.platform, new, gateway=gateway)
            known.update({c: found.of(c) for c in new})
        availability = Availability(tuple(all_channels), known)
        edges = [*parsed, *(r for d in resolution.dists.values()
                             for r in run_requirements(d, resolution)),
                 *map(Requirement, build_requirements)]
        specifiers = combined_specifiers(edges)
        decisions, recipes = _walk(requested, resolution, conda_names, specifiers,
                                   availability, generated, ctx, req.jobs, reporter)
        needed = {h for r in recipes.values() for h in r.host_requirements}
        if needed <= build_requirements:
            break
        reporter.phase("resolve", "again, with build requirements: "
                       + ", ".join(sorted(needed - build_requirements)))
        build_requirements |= needed
    else:
        raise RecipegenError("build requirements kept changing the resolution; giving up",
                             hint="pin the closure with --constraints")

    _check_versions(decisions, edges)
    order, recipes = _order(decisions, recipes, ctx, resolution, reporter)
    requested_specs, pins = _requested(parsed, decisions, recipes)
    return InstallPlan(target=target, channels=tuple(all_channels),
                       python_version=python_version, decisions=decisions, recipes=recipes,
                       order=order, requested=requested_specs, pins=pins)


def _walk(requested: set[str], resolution: Resolution, conda_names: dict[str, str],
          specifiers: dict, availability: Availability,
          generated: dict[tuple[str, str], GeneratedRecipe], ctx: GenerateContext, jobs: int,
          reporter: Reporter) -> tuple[dict[str, Decision], dict[str, GeneratedRecipe]]:
    """Decide from the requested packages outwards, through what is built.

    A reused package brings its dependencies from its channel, so only the run and host
    requirements of packages *built* here are followed; their recipes are generated
    level by level, each level concurrently.
    """
    decisions: dict[str, Decision] = {}
    recipes: dict[str, GeneratedRecipe] = {}
    level = sorted(requested)
    while level:
        for name in level:
            dist = resolution.dists[name]
            decisions[name] = decide(name, dist.version, conda_names[name],
                                     specifiers.get(name, SpecifierSet()), availability,
                                     requested=name in requested)
        to_build = [n for n in level if decisions[n].action == "build"]
        missing = [n for n in to_build if (n, resolution.dists[n].version) not in generated]
        generated.update({(n, resolution.dists[n].version): r for n, r in
                          _generate_all(missing, resolution, ctx, jobs, reporter).items()})
        following: set[str] = set()
        for name in to_build:
            recipe = generated[(name, resolution.dists[name].version)]
            recipes[name] = recipe
            for text in (*recipe.host_requirements, *recipe.run_requirements):
                dep = canonicalize_name(Requirement(text).name)
                if dep in resolution.dists and dep not in decisions:
                    following.add(dep)
        level = sorted(following)
    return decisions, recipes


def _generate_all(names: list[str], resolution: Resolution, ctx: GenerateContext, jobs: int,
                  reporter: Reporter) -> dict[str, GeneratedRecipe]:
    """Generate recipes concurrently (network- and subprocess-bound work)."""
    if not names:
        return {}
    reporter.phase("generate", f"{len(names)} recipe(s)")

    def one(name: str) -> GeneratedRecipe:
        reporter.package("generating", name)
        recipe = generate(resolution.dists[name], resolution, ctx)
        reporter.package("generated", name, {"recipe": recipe.spec.name})
        return recipe

    with ThreadPoolExecutor(max_workers=max(2, min(jobs * 2, 8))) as pool:
        results = dict(zip(names, pool.map(one, names), strict=True))
    return results


def _check_versions(decisions: dict[str, Decision], edges: list[Requirement]) -> None:
    """A package built at one version must satisfy every requirement on it."""
    specs = combined_specifiers(edges)
    for name, decision in decisions.items():
        spec = specs.get(name)
        if decision.action == "build" and spec is not None and not spec.contains(
                decision.version, prereleases=True):
            raise RecipegenError(
                f"{name} {decision.version} was resolved, but the closure also needs "
                f"{name}{spec} (a build requirement and a run requirement disagree)",
                hint="pin a version of it that satisfies both with --constraints",
                package=name,
            )


def _order(decisions: dict[str, Decision], recipes: dict[str, GeneratedRecipe],
           ctx: GenerateContext, resolution: Resolution,
           reporter: Reporter) -> tuple[BuildOrder, dict[str, GeneratedRecipe]]:
    """Build order; a host-dependency cycle is broken by building one member from its wheel."""
    building = {n for n, d in decisions.items() if d.action == "build"}
    while True:
        host = {n: {canonicalize_name(Requirement(t).name) for t in recipes[n].host_requirements}
                & building for n in building}
        run = {n: {canonicalize_name(Requirement(t).name) for t in recipes[n].run_requirements}
               & building for n in building}
        try:
            order = build_order(host, run)
        except CycleError as exc:
            member = exc.members[0]
            if recipes[member].spec.source_kind == "wheel":
                raise RecipegenError(
                    "build requirements form a cycle: " + " → ".join(exc.members),
                    hint="put one of them on a channel (-c) so it need not be built",
                ) from exc
            reporter.warn(f"build requirements form a cycle ({', '.join(exc.members)}); "
                          f"{member} is repackaged from its wheel to break it")
            recipes[member] = generate(resolution.dists[member], resolution,
                                       _wheel_context(ctx))
            continue
        for step in order.steps:
            if step.skip_tests:
                recipes[step.name] = without_tests(recipes[step.name])
        return order, recipes


def _wheel_context(ctx: GenerateContext) -> GenerateContext:
    from dataclasses import replace

    return replace(ctx, prefer_wheel=True)


def _requested(parsed: list[Requirement], decisions: dict[str, Decision],
               recipes: dict[str, GeneratedRecipe]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user's specs in conda terms (recorded), and exact pins on what we built."""
    specs: list[str] = []
    pins: list[str] = []
    for req in parsed:
        name = canonicalize_name(req.name)
        decision = decisions[name]
        specs.append(conda_requirement(decision.conda_name, req.specifier))
        recipe = recipes[name]
        pins.append(f"{recipe.spec.name} =={recipe.spec.version} {recipe.spec.build_string}")
    return tuple(specs), tuple(pins)


# -- execution ------------------------------------------------------------------------------


def build_jobs(plan: InstallPlan, work: WorkRoot) -> list[BuildJob]:
    """Write the recipes of the plan and describe their builds."""
    jobs = []
    for step in plan.order.steps:
        recipe = plan.recipes[step.name]
        path = write_recipe(recipe, work.recipe_dir(recipe.spec.name))
        subdir = "noarch" if recipe.spec.noarch else plan.target.platform
        file_name = f"{recipe.spec.name}-{recipe.spec.version}-{recipe.spec.build_string}.conda"
        jobs.append(BuildJob(name=step.name, conda_name=recipe.spec.name, recipe=path,
                             file_name=file_name, subdir=subdir, after=step.after,
                             skip_tests=step.skip_tests,
                             timestamp=recipe.source_time or FALLBACK_TIMESTAMP))
    return jobs


def build_packages(plan: InstallPlan, req: InstallRequest,
                   reporter: Reporter) -> tuple[BuildOutcome, ...]:
    """Build everything the plan builds into the local channel; install nothing."""
    work = WorkRoot.at(req.work_root)
    jobs = build_jobs(plan, work)
    if not jobs:
        return ()
    user_channels = [c for c in plan.channels if c != work.channel.as_uri()]
    reporter.phase("build", f"{len(jobs)} package(s), {req.jobs} at a time")
    return tuple(build_all(jobs, work, user_channels, max_jobs=req.jobs,
                           keep_going=req.keep_going,
                           progress=lambda s, n, d: reporter.package(s, n, d)))


def installed_builds(plan: InstallPlan) -> list[str]:
    """Exact specs of the built packages the env will hold (the run closure of the request).

    Rebuilt packages carry a fixed timestamp, so two builds of one version no longer differ
    by time: the solve is told which build to take rather than left to pick.
    """
    built = {n: r for n, r in plan.recipes.items() if plan.decisions[n].action == "build"}
    stack = [n for n, d in plan.decisions.items() if d.requested and n in built]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in built[name].run_requirements:
            dep = canonicalize_name(Requirement(text).name)
            if dep in built:
                stack.append(dep)
    return [f"{built[n].spec.name} =={built[n].spec.version} {built[n].spec.build_string}"
            for n in sorted(seen)]


def execute(plan: InstallPlan, req: InstallRequest, reporter: Reporter) -> InstallResult:
    """Build everything the plan builds, then solve and link the env in one step."""
    work = WorkRoot.at(req.work_root)
    outcomes = build_packages(plan, req, reporter)
    user_channels = [c for c in plan.channels if c != work.channel.as_uri()]
    reporter.phase("solve", "the env with " + ", ".join(plan.requested))
    gateway = channels_mod.make_gateway(work.cache / "repodata", offline=req.offline)
    channels = [work.channel.as_uri(), *user_channels]
    major, minor = plan.python_version.split(".")[:2]
    solution = solve(plan.target, list(plan.requested), channels, gateway=gateway,
                     requested_specs=list(plan.requested),
                     extra_specs=[*plan.pins, f"python {major}.{minor}.*"],
                     constraints=[*installed_builds(plan), *plan.constraints])
    reporter.phase("install", f"{len(solution.changes)} change(s) in {plan.target.prefix}")
    link(plan.target, solution)
    return InstallResult(plan, outcomes, solution)


def default_jobs() -> int:
    return os.cpu_count() or 1


__all__ = ["InstallPlan", "InstallRequest", "InstallResult", "build_packages", "execute",
           "make_plan"]
