"""The install pipeline: resolve → map and query channels → plan → generate → build → install.

This module only sequences the stages and moves their typed values between them; each
stage's rules live in its own module. Nothing touches the prefix before every build has
succeeded, and ``dry_run`` stops after planning, having written nothing.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from recipegen import channels as channels_mod
from recipegen import localchannel, locks, plancache
from recipegen.channels import Availability
from recipegen.errors import RecipegenError, UsageError
from recipegen.fsutil import atomic_write
from recipegen.install import EnvChange, Solution, apply, solve
from recipegen.plan import (
    BuildOrder,
    CycleError,
    Decision,
    build_order,
    decide,
)
from recipegen.progress import Reporter
from recipegen.resolve import Resolution, parse_requirement
from recipegen.target import Target, inspect_target
from recipegen.workroot import WorkRoot

if TYPE_CHECKING:
    # Loaded where they are used: a warm install (a saved plan, nothing to build) needs
    # none of generation, PyPI or building, and importing them costs more than its checks.
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    from recipegen.build import BuildJob, BuildOutcome
    from recipegen.closure import Closure
    from recipegen.generate import Flavour, GenerateContext
    from recipegen.pypi import PyPI
    from recipegen.recipe import GeneratedRecipe


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
    resolve_timeout: float = 900.0  # pip's resolver, with the build backends it runs
    flavour: Flavour = "local"
    maintainers: tuple[str, ...] = ()
    use_channels: bool = True  # False: plan as if no channel had anything (generate)
    follow: bool = True  # False: recipes for the requested packages only (generate)
    protect: bool = True  # write the EXTERNALLY-MANAGED marker into the env
    refresh: bool = False  # plan afresh: don't reuse a saved plan


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
    resolution: Resolution | None = field(default=None, compare=False)
    #: Exact builds the final solve may pick and no other (a locked install's whole env).
    constraints: tuple[str, ...] = ()
    #: The key this plan is kept under in the plan cache (None: not kept).
    saved_as: str | None = field(default=None, compare=False)
    #: From a lock file: its recipes are built as they are, or not at all.
    locked: bool = False


@dataclass(frozen=True)
class InstallResult:
    """What an executed plan built and the env solution it installed."""

    plan: InstallPlan
    builds: tuple[BuildOutcome, ...]
    solution: Solution | None


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


def _python_for(target: Target, availability: Availability, *, required: bool = True) -> str:
    """The python version the env has, or will get from the channels."""
    if target.python_version:
        return target.python_version
    offered = [p.version for p in availability.of("python")]
    if not offered and not required:
        return ".".join(map(str, sys.version_info[:3]))
    if not offered:
        raise RecipegenError(
            "no channel offers python, so a new env cannot be created",
            hint="add a channel with python (-c), or run 'recipegen seed' and use it",
        )
    from rattler import Version  # conda's order of versions, as the solver's
    from rattler.exceptions import InvalidVersionError

    running = f"{sys.version_info.major}.{sys.version_info.minor}"

    def key(v: str) -> tuple[bool, Version]:
        try:
            return (v.startswith(running + "."), Version(v))
        except InvalidVersionError:
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


def make_plan(req: InstallRequest, reporter: Reporter) -> InstallPlan:
    """Resolve, decide, generate recipes and order the builds; touch nothing outside caches.

    A dry run uses a temporary cache, removed at the end: it writes nothing anywhere.
    """
    if not req.dry_run:
        return _make_plan(req, reporter, WorkRoot.at(req.work_root).cache)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="recipegen-dry-run-") as tmp:
        try:
            return _make_plan(req, reporter, Path(tmp))
        except RecipegenError as exc:
            if exc.log and exc.log.startswith(tmp):  # a log in the folder that goes now
                from recipegen.procgroup import tail

                exc.log = tail(Path(exc.log), 2000)
            raise


def _lookup_writes_nothing(req: InstallRequest, work: WorkRoot) -> bool:
    """Whether finding a saved plan needs no seeding and no new local channel."""
    return (req.use_channels and (work.channel / "noarch" / "repodata.json").exists()
            and bool(req.channels or (work.seed / "noarch" / "repodata.json").exists()))


def _make_plan(req: InstallRequest, reporter: Reporter, cache: Path) -> InstallPlan:
    if not req.specs:
        raise UsageError("nothing to install: give at least one requirement")
    work = WorkRoot.at(req.work_root)
    reuse = not req.dry_run and not req.refresh
    # Plans are saved only for requirements that parsed, so reusing one needs no parsing.
    # It is looked up first when that writes nothing; otherwise bad input is refused
    # before anything is written.
    parsed = None
    if not (reuse and _lookup_writes_nothing(req, work)):
        parsed = [parse_requirement(s) for s in req.specs]
    target = inspect_target(req.prefix)
    gateway = channels_mod.make_gateway(cache / "repodata", offline=req.offline)
    all_channels: list[str] = []
    user_channels: list[str] = []
    if req.use_channels:
        reporter.phase("channels", "checking which channels can be reached")
        user_channels = choose_channels(req, work, gateway, target.platform, reporter)
        if not req.dry_run:
            work.ensure_writable()
            localchannel.ensure(work.channel, target.platform)
        local_index = work.channel / "noarch" / "repodata.json"
        all_channels = [*([work.channel.as_uri()] if local_index.exists() else []),
                        *user_channels]
        if local_index.exists():
            channels_mod.forget(gateway, work.channel.as_uri())  # builds may have changed it

    python_probe = channels_mod.query(all_channels, target.platform, ["python"], gateway=gateway)
    python_version = _python_for(target, python_probe, required=req.use_channels)
    python_exe = _resolver_python(target, python_version)

    inputs = None
    if not req.dry_run:  # a dry run plans in a temporary cache: nothing to reuse or keep
        inputs = _plan_inputs(req, target, python_version, python_exe, user_channels)
        saved = _saved_plan(inputs, req, target, python_version, python_exe, all_channels,
                            work, cache, gateway, reporter) if reuse else None
        if saved is not None:
            return saved
    if parsed is None:
        parsed = [parse_requirement(s) for s in req.specs]

    from recipegen.closure import ClosureBuilder
    from recipegen.generate import GenerateContext, without_import_tests
    from recipegen.mapping import NameMapper
    from recipegen.recipecache import cached_generate
    from recipegen.resolve import resolve

    mapper = NameMapper(req.mapping_overrides)
    pypi = _pypi(cache, req.offline)
    ctx = GenerateContext(mapper=mapper, pypi=pypi, cache_dir=cache,
                          python_version=python_version, grayskull_timeout=req.grayskull_timeout,
                          flavour=req.flavour, maintainers=req.maintainers)
    known: dict[str, tuple] = {}  # conda name → channel packages, queried once per name

    def decider(name: str, version: str, spec: SpecifierSet, requested: bool) -> Decision:
        conda = mapper.to_conda(name).conda
        if conda not in known and all_channels:
            found = channels_mod.query(all_channels, target.platform, [conda], gateway=gateway)
            known[conda] = found.of(conda)
        return decide(name, version, conda, spec, Availability(tuple(all_channels), known),
                      requested=requested)

    def resolver(requirements: list[str], constrained: bool) -> Resolution:
        if reporter.current_phase == "channels":  # the conflict search's next pip run
            reporter.phase("resolve", f"{len(requirements)} requirement(s)")
        return resolve(requirements, python=python_exe,
                       constraints=req.constraints if constrained else (),
                       use_cache=not req.dry_run, timeout=req.resolve_timeout,
                       log_dir=None if req.dry_run else work.logs)

    def prefetch(resolution: Resolution) -> None:
        """One batched channel query for every name a resolution brings."""
        new = sorted({mapper.to_conda(n).conda for n in resolution.dists} - known.keys())
        if new and all_channels:
            reporter.phase("channels", f"looking up {len(new)} packages in "
                           f"{len(all_channels)} channel(s)")
            found = channels_mod.query(all_channels, target.platform, new, gateway=gateway)
            known.update({c: found.of(c) for c in new})

    def batched_resolver(requirements: list[str], constrained: bool) -> Resolution:
        resolution = resolver(requirements, constrained)
        prefetch(resolution)
        return resolution

    reporter.phase("resolve", ", ".join(req.specs) + f" for python {python_version}")
    builder = ClosureBuilder(parsed, resolver=batched_resolver,
                             generator=lambda dist, res: cached_generate(dist, res, ctx),
                             decider=decider, reporter=reporter, jobs=req.jobs,
                             follow=req.follow)
    closure = builder.build()
    for name, recipe in closure.recipes.items():  # what earlier builds found out
        module = _undeclared_import_seen(work, recipe)
        if module is not None:
            closure.recipes[name] = without_import_tests(recipe, module)
    order = _order(closure, ctx, reporter)
    requested_specs, pins = _requested(parsed, closure)
    plan = InstallPlan(target=target, channels=tuple(all_channels),
                       python_version=python_version, decisions=closure.decisions,
                       recipes=closure.recipes, order=order, requested=requested_specs,
                       pins=pins, resolution=closure.resolution)
    if inputs is not None:
        key = _save_plan(inputs, plan, req, python_exe, pypi, cache, gateway, reporter)
        plan = replace(plan, saved_as=key)
    return plan


# -- the plan cache -------------------------------------------------------------------------


def _plan_inputs(req: InstallRequest, target: Target, python_version: str, python_exe: Path,
                 user_channels: list[str]) -> dict:
    from recipegen.target import marker_environment

    environment = marker_environment(python_exe)
    options = {"overrides": sorted(req.mapping_overrides.items()), "flavour": req.flavour,
               "maintainers": list(req.maintainers), "use_channels": req.use_channels,
               "follow": req.follow}
    return plancache.plan_inputs(specs=req.specs, constraints=req.constraints,
                                 options=options, platform=target.platform,
                                 python_version=python_version, resolver=python_exe,
                                 marker_environment=environment, channels=user_channels)


def _saved_plan(inputs: dict, req: InstallRequest, target: Target, python_version: str,
                python_exe: Path, all_channels: list[str], work: WorkRoot, cache: Path,
                gateway, reporter: Reporter) -> InstallPlan | None:
    """The plan saved for this key, if the channels and PyPI would still give it."""
    key = plancache.plan_key(inputs)
    saved = plancache.load(cache / "plans", key)
    if saved is None:
        reporter.cache("plan", False, plancache.why_missing(cache / "plans", inputs))
        return None
    availability = _availability(saved.decisions, all_channels, target.platform, gateway)
    digest = plancache.availability_digest(availability)
    reason = None
    if digest != saved.availability:
        reason = plancache.check_channels(saved.decisions, saved.recipes, availability,
                                          work.channel.as_uri())
    if reason is None:
        reason = plancache.check_pypi(list(saved.projects), lambda: _pypi(cache, req.offline),
                                      plancache.local_pip_sources(python_exe))
    if reason is not None:
        reporter.cache("plan", False, reason)
        return None
    if digest != saved.availability:  # same decisions: check by digest next time
        plancache.note_availability(cache / "plans", key, digest)
    reporter.cache("plan", True, f"the plan of an earlier run still holds: "
                   f"{len(saved.order.steps)} package(s) to build, "
                   f"{sum(d.action == 'reuse' for d in saved.decisions.values())} from channels")
    return InstallPlan(target=target, channels=tuple(all_channels),
                       python_version=python_version, decisions=saved.decisions,
                       recipes=saved.recipes, order=saved.order, requested=saved.requested,
                       pins=saved.pins, resolution=saved.resolution, saved_as=key)


def _pypi(cache: Path, offline: bool) -> PyPI:
    from recipegen.pypi import PyPI

    return PyPI(cache / "pypi", offline=offline)


def _availability(decisions: dict[str, Decision], channels: list[str], platform: str,
                  gateway) -> Availability:
    names = sorted({d.conda_name for d in decisions.values()})
    return (channels_mod.query(channels, platform, names, gateway=gateway) if channels
            else Availability((), {}))


def _save_plan(inputs: dict, plan: InstallPlan, req: InstallRequest, python_exe: Path, pypi: PyPI,
               cache: Path, gateway, reporter: Reporter) -> str | None:
    pins = plancache.pinned_versions(req.specs, req.constraints)
    try:
        projects = plancache.projects_of(plan.resolution, plan.decisions, pins, pypi,
                                         plancache.local_pip_sources(python_exe))
    except RecipegenError as exc:  # the plan stands; only its reuse next time is lost
        reporter.info(f"the plan is not saved for reuse: {exc.message}")
        return None
    return plancache.save(cache / "plans", inputs, plancache.SavedPlan(
        python_version=plan.python_version, decisions=plan.decisions, recipes=plan.recipes,
        order=plan.order, requested=plan.requested, pins=plan.pins,
        resolution=plan.resolution, projects=tuple(projects),
        availability=plancache.availability_digest(_availability(
            plan.decisions, list(plan.channels), plan.target.platform, gateway))))


def _order(closure: Closure, ctx: GenerateContext, reporter: Reporter) -> BuildOrder:
    """Build order; a host-dependency cycle is broken by building one member from its wheel.

    Recipes change in place (wheel recipes, tests dropped to break run cycles).
    """
    from recipegen.generate import generate, without_tests

    building = closure.building()
    while True:
        host = {k: closure.host.get(k, set()) & building for k in building}
        run = {k: closure.run.get(k, set()) & building for k in building}
        try:
            order = build_order(host, run)
        except CycleError as exc:
            member = exc.members[0]
            if closure.recipes[member].spec.source_kind == "wheel":
                raise RecipegenError(
                    "build requirements form a cycle: " + " → ".join(exc.members),
                    hint="put one of them on a channel (-c) so it need not be built",
                ) from exc
            reporter.warn(f"build requirements form a cycle ({', '.join(exc.members)}); "
                          f"{member} is repackaged from its wheel to break it")
            node = closure.nodes[member]
            closure.recipes[member] = generate(node.dist, node.resolution,
                                               replace(ctx, prefer_wheel=True))
            closure.host[member] = set()
            continue
        for step in order.steps:
            if step.skip_tests:
                closure.recipes[step.name] = without_tests(closure.recipes[step.name])
        return order


def _requested(parsed: list[Requirement],
               closure: Closure) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user's specs in conda terms (recorded), and exact pins on what we built.

    conda has no extras, so ``pkg[extra]`` is recorded as ``pkg`` plus what the extra adds.
    """
    from packaging.utils import canonicalize_name

    from recipegen.closure import extra_roots
    from recipegen.resolve import active_requirements
    from recipegen.specs import conda_requirement

    resolution = closure.resolution
    specs: list[str] = []
    pins: list[str] = []
    for req in parsed:
        name = canonicalize_name(req.name)
        specs.append(conda_requirement(closure.decisions[name].conda_name, req.specifier))
        recipe = closure.recipes[name]
        if recipe.spec.build_string:
            pins.append(_pin(recipe))
    for name in sorted(extra_roots(parsed, resolution)):
        wanted = [r for p in parsed for r in active_requirements(
            resolution.dists[canonicalize_name(p.name)].requires_dist,
            resolution.environment, tuple(sorted(p.extras)))
            if canonicalize_name(r.name) == name]
        spec = wanted[0].specifier if wanted else ""
        specs.append(conda_requirement(closure.decisions[name].conda_name, spec))
    return tuple(dict.fromkeys(specs)), tuple(pins)


# -- execution ------------------------------------------------------------------------------


def build_jobs(plan: InstallPlan, work: WorkRoot) -> list[BuildJob]:
    """Write the recipes of the plan and describe their builds."""
    from recipegen.build import BuildJob
    from recipegen.recipe import write_recipe

    jobs = []
    for step in plan.order.steps:
        recipe = plan.recipes[step.name]
        folder = recipe_folder(step.name, recipe)
        path = write_recipe(recipe, work.recipe_dir(folder))
        subdir = "noarch" if recipe.spec.noarch else plan.target.platform
        file_name = f"{recipe.spec.name}-{recipe.spec.version}-{recipe.spec.build_string}.conda"
        jobs.append(BuildJob(name=step.name, conda_name=folder, recipe=path,
                             file_name=file_name, subdir=subdir, after=step.after,
                             skip_tests=step.skip_tests,
                             timestamp=recipe.timestamp))
    return jobs


def recipe_folder(key: str, recipe: GeneratedRecipe) -> str:
    """``recipes/<conda name>``; a second version of a package gets ``<name>-<version>``."""
    return recipe.spec.name if "==" not in key else f"{recipe.spec.name}-{recipe.spec.version}"


def build_packages(plan: InstallPlan, req: InstallRequest, reporter: Reporter
                   ) -> tuple[InstallPlan, tuple[BuildOutcome, ...]]:
    """Write the plan's recipes and build them into the local channel; install nothing.

    A package whose import test fails on a module it does not declare is built again
    without that test (once); the plan returned holds the recipes that were built.
    """
    from recipegen.build import BuildFailed, build_all

    work = WorkRoot.at(req.work_root)
    retested: set[str] = set()
    while True:
        jobs = build_jobs(plan, work)
        if not jobs:
            return plan, ()
        present = sum(localchannel.has_package(work.channel, j.subdir, j.file_name)
                      is not None for j in jobs)
        reporter.phase("build", f"{len(jobs) - present} package(s), {req.jobs} at a time"
                       + (f"; {present} already in the local channel" if present else ""))
        try:
            outcomes = tuple(build_all(jobs, work, user_channels(plan, work),
                                       max_jobs=req.jobs, keep_going=req.keep_going,
                                       progress=lambda s, n, d: reporter.package(s, n, d)))
            break
        except BuildFailed as exc:
            undeclared = {} if plan.locked else _undeclared_imports(exc.outcomes, plan,
                                                                    retested)
            if not undeclared:
                raise
            plan = _without_import_tests(plan, undeclared, work, reporter)
            retested |= undeclared.keys()
    if plan.saved_as and any(o.status == "built" for o in outcomes):
        _note_builds(plan, req, work)
    return plan, outcomes


def _pin(recipe: GeneratedRecipe) -> str:
    return f"{recipe.spec.name} =={recipe.spec.version} {recipe.spec.build_string}"


def _undeclared_imports(outcomes: list[BuildOutcome], plan: InstallPlan,
                        retested: set[str]) -> dict[str, str]:
    """Failed builds whose import test needs a module from outside the package."""
    from recipegen.build import import_test_missing

    found = {}
    for outcome in outcomes:
        module = import_test_missing(outcome)
        recipe = plan.recipes.get(outcome.name)
        if module is None or recipe is None or outcome.name in retested:
            continue
        own = {name.split(".")[0] for name in recipe.spec.test_imports}
        if own and module.split(".")[0] not in own:
            found[outcome.name] = module
    return found


def _undeclared_import_record(work: WorkRoot, recipe: GeneratedRecipe) -> Path:
    """Where a build's finding is kept: this source's import test needs an undeclared
    module (so the next plan drops the test before building, not after a failure)."""
    return (work.cache / "undeclared-imports"
            / f"{recipe.spec.name}-{recipe.version}-{recipe.source_sha256[:16]}")


def _undeclared_import_seen(work: WorkRoot, recipe: GeneratedRecipe) -> str | None:
    if not recipe.spec.test_imports:
        return None
    try:
        return _undeclared_import_record(work, recipe).read_text().strip() or None
    except OSError:
        return None


def _without_import_tests(plan: InstallPlan, undeclared: dict[str, str], work: WorkRoot,
                          reporter: Reporter) -> InstallPlan:
    from recipegen.generate import without_import_tests

    recipes = dict(plan.recipes)
    pins = {}
    for name, module in sorted(undeclared.items()):
        recipes[name] = without_import_tests(recipes[name], module)
        atomic_write(_undeclared_import_record(work, recipes[name]), module)
        pins[_pin(plan.recipes[name])] = _pin(recipes[name])
        reporter.warn(f"{name}: importing it needs {module}, which it does not declare; "
                      "building it again without the import test (pip check is kept)")
    plan = replace(plan, recipes=recipes, pins=tuple(pins.get(p, p) for p in plan.pins))
    if plan.saved_as:  # the next identical request builds these recipes straight away
        plancache.replace_recipes(work.cache / "plans", plan.saved_as, recipes, plan.pins)
    return plan


def _note_builds(plan: InstallPlan, req: InstallRequest, work: WorkRoot) -> None:
    """The local channel now holds the plan's builds: if the saved plan's decisions still
    hold (they do, unless another process changed a channel meanwhile), note what the
    channels offer now, so the next identical request need not decide again."""
    gateway = channels_mod.make_gateway(work.cache / "repodata", offline=req.offline)
    channels_mod.forget(gateway, work.channel.as_uri())
    availability = _availability(plan.decisions, list(plan.channels), plan.target.platform,
                                 gateway)
    if plancache.check_channels(plan.decisions, plan.recipes, availability,
                                work.channel.as_uri()) is None:
        plancache.note_availability(work.cache / "plans", plan.saved_as,
                                    plancache.availability_digest(availability))


def user_channels(plan: InstallPlan, work: WorkRoot) -> list[str]:
    """The plan's channels without the local build channel."""
    return [c for c in plan.channels if c != work.channel.as_uri()]


_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _requirement_name(text: str) -> str:
    """The normalized name a PEP 508 requirement starts with (without parsing the rest).

    ``mapping.normalize``'s rule, spelt here: the mapping module (its table's types) is
    not otherwise loaded by a warm install, and this runs on every install."""
    match = _NAME.match(text.strip())
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else text


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
            dep = _requirement_name(text)
            if dep in built:
                stack.append(dep)
    return [_pin(built[n]) for n in sorted(seen)]


def execute(plan: InstallPlan, req: InstallRequest, reporter: Reporter) -> InstallResult:
    """Build everything the plan builds, then solve and link the env in one step.

    Builds run under the work root's lock and touch only the work root; the env is
    locked, read afresh (another process may have changed it meanwhile), solved and
    changed only after every build has succeeded.
    """
    work = WorkRoot.at(req.work_root)
    with locks.work_root_locked(work.root, reporter.info):
        plan, outcomes = build_packages(plan, req, reporter)
    with locks.prefix_locked(plan.target.prefix, reporter.info):
        target = inspect_target(plan.target.prefix)
        reporter.phase("solve", "the env with " + ", ".join(plan.requested))
        gateway = channels_mod.make_gateway(work.cache / "repodata", offline=req.offline)
        channels_mod.forget(gateway, work.channel.as_uri())  # it holds the new builds now
        channels = [work.channel.as_uri(), *user_channels(plan, work)]
        major, minor = plan.python_version.split(".")[:2]
        with localchannel.locked(work.channel):
            solution = solve(target, list(plan.requested), channels, gateway=gateway,
                             requested_specs=list(plan.requested),
                             extra_specs=[*plan.pins, f"python {major}.{minor}.*"],
                             constraints=[*installed_builds(plan), *plan.constraints])
        reporter.phase("install", f"{len(solution.changes)} change(s) in {target.prefix}")
        apply(target.prefix, EnvChange(records=solution.records,
                                       requested_specs=solution.requested_specs,
                                       update_specs=plan.requested,
                                       recipe_dirs=(work.recipes,),
                                       protect=req.protect,
                                       bytecode_cache=work.cache / "bytecode"), reporter)
    return InstallResult(plan, outcomes, solution)


def generate_recipes(req: InstallRequest, out_dir: Path, reporter: Reporter,
                     ) -> list[tuple[GeneratedRecipe, Path]]:
    """Plan like ``install`` (without building) and write the recipes into ``out_dir``.

    Each recipe goes to ``out_dir/<conda name>/recipe.yaml``, the same file install builds
    and export submits.
    """
    from recipegen.recipe import write_recipe

    plan = make_plan(req, reporter)
    written = []
    for name in [s.name for s in plan.order.steps]:
        recipe = plan.recipes[name]
        written.append((recipe, write_recipe(recipe, out_dir / recipe.spec.name)))
    return written


__all__ = ["InstallPlan", "InstallRequest", "InstallResult", "build_packages", "execute",
           "generate_recipes",
           "make_plan"]
