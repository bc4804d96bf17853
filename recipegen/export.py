"""``recipegen export``: conda-forge-flavour recipes as a staged-recipes submission.

The order is what a reviewer would ask for: refuse what conda-forge already has, find the
dependencies it lacks (they go in the same branch), write every recipe in conda-forge's
flavour, lint it by conda-smithy's rule ids, build and test it here, and only then commit
``recipes/<name>/`` on ``add-<name>`` and write the pull request's text.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from recipegen.build import BuildFailed, BuildJob, BuildOutcome, build_all
from recipegen.channels import CONDA_FORGE, channel_url, make_gateway, query
from recipegen.errors import RecipegenError, UsageError
from recipegen.export_pr import (
    Dropped,
    ExportedRecipe,
    ExportSummary,
    LocalBuild,
    NameRemap,
    branch_name,
    pr_title_body,
    write_branch,
)
from recipegen.generate import GeneratedRecipe, write_recipe
from recipegen.lint import Finding, has_lints, lint_text
from recipegen.mapping import NameMapper
from recipegen.pipeline import InstallRequest, build_packages, make_plan, user_channels
from recipegen.progress import Reporter
from recipegen.target import current_platform
from recipegen.workroot import WorkRoot

#: conda-forge.yml for a recipe with OS-only ``if:`` blocks: one noarch build per OS.
NOARCH_PLATFORMS = "noarch_platforms:\n  - linux_64\n  - win_64\n"


@dataclass(frozen=True)
class ExportRequest:
    specs: tuple[str, ...]
    clone: Path
    maintainers: tuple[str, ...]
    work_root: Path
    channels: tuple[str, ...] = ()
    constraints: tuple[Path, ...] = ()
    no_build: bool = False
    force: bool = False
    jobs: int = 1
    mapping_overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult:
    branch: str
    commit: str
    title: str
    body: str
    recipes: tuple[GeneratedRecipe, ...]
    findings: tuple[Finding, ...] = ()


def on_conda_forge(pypi_name: str, mapper: NameMapper) -> str | None:
    """Why we think conda-forge has this PyPI package, or None.

    The bundled mapping data are built from conda-forge's own packages: a name any of them
    knows is on conda-forge. (Where conda-forge is reachable, a channel query says more;
    it is not reachable from here.)
    """
    mapped = mapper.to_conda(pypi_name)
    if mapped.source != "identity":
        return f"conda-forge has it as `{mapped.conda}` (mapping data: {mapped.source})"
    if mapper.is_non_python(mapped.conda):
        return f"conda-forge has a non-Python package named `{mapped.conda}`"
    return None


def conda_forge_channel() -> str:
    """conda-forge's channel URL (``RECIPEGEN_CONDA_FORGE_CHANNEL`` points elsewhere)."""
    return os.environ.get("RECIPEGEN_CONDA_FORGE_CHANNEL") or channel_url(CONDA_FORGE)


def on_conda_forge_channel(names: dict[str, str], reporter: Reporter) -> dict[str, str]:
    """PyPI name → why, for the packages conda-forge's channel itself offers.

    Asked only where conda-forge can be reached; otherwise the mapping data decide alone.
    """
    channel = conda_forge_channel()
    platform = current_platform()
    try:
        found = query([channel], platform, sorted(set(names.values())),
                      gateway=make_gateway(None))
    except RecipegenError:
        reporter.info(f"{channel} cannot be reached; the mapping data decide what conda-forge "
                      "has")
        return {}
    out = {}
    for pypi, conda in names.items():
        versions = sorted({p.version for p in found.of(conda)})
        if versions:
            out[pypi] = f"{channel} has `{conda}` ({', '.join(versions[-3:])})"
    return out


def _check_clone(clone: Path) -> None:
    if not (clone / ".git").exists() or not (clone / "recipes").is_dir():
        raise UsageError(f"{clone} is not a clone of staged-recipes (no .git or recipes/)",
                         "git clone https://github.com/conda-forge/staged-recipes and pass it "
                         "with --to")


def _closure(names: set[str], plan) -> set[str]:
    """``names`` plus every package they need (run and build) that conda-forge lacks."""
    mapper = NameMapper()
    todo, seen = list(names), set(names)
    while todo:
        recipe = plan.recipes.get(todo.pop())
        if recipe is None:
            continue
        for text in (*recipe.run_requirements, *recipe.host_requirements):
            dep = canonicalize_name(Requirement(text).name)
            if dep not in seen and dep in plan.recipes and on_conda_forge(dep, mapper) is None:
                seen.add(dep)
                todo.append(dep)
    return seen


def _summary(recipe: GeneratedRecipe, mapper: NameMapper,
             build: LocalBuild | None) -> ExportedRecipe:
    remaps = []
    for text in (recipe.pypi_name, *recipe.run_requirements):
        name = canonicalize_name(Requirement(text).name)
        mapped = mapper.to_conda(name)
        if mapped.conda != name:
            remaps.append(NameRemap(name, mapped.conda, mapped.source))
    dropped = tuple(Dropped(n.subject, f"{n.action}: {n.reason}") for n in recipe.notes
                    if n.action != "remapped")
    return ExportedRecipe(
        name=recipe.spec.name, pypi_name=recipe.pypi_name, version=recipe.version,
        license=recipe.spec.license, license_files=recipe.spec.license_files,
        remaps=tuple(dict.fromkeys(remaps)), dropped=dropped, build=build,
        source_kind=recipe.spec.source_kind)


def _files(recipe: GeneratedRecipe) -> dict[str, str]:
    files = {"recipe.yaml": recipe.text}
    if recipe.spec.noarch and recipe.spec.run_conditional:
        files["conda-forge.yml"] = NOARCH_PLATFORMS
    return files


def _trial_builds(recipes: list[GeneratedRecipe], work: WorkRoot, channels: list[str],
                  jobs: int, reporter: Reporter) -> dict[str, LocalBuild]:
    """Build and test each conda-forge recipe here, against what the local channel holds.

    ``python_min`` is set to this machine's python for the trial (conda-forge's CI uses its
    own); the packages are thrown away.
    """
    python_min = f"{sys.version_info.major}.{sys.version_info.minor}"
    tried = work.root / "export"
    build_jobs = []
    for recipe in recipes:
        folder = tried / recipe.spec.name
        for name, text in _files(recipe).items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        variant = (f"python_min:\n  - \"{recipe.spec.python_min or python_min}\"\n"
                   "c_stdlib:\n  - sysroot\n")
        build_jobs.append(BuildJob(name=recipe.pypi_name, conda_name=recipe.spec.name,
                                   recipe=folder / "recipe.yaml", file_name="",
                                   subdir="noarch", variant=variant, publish=False))
    reporter.phase("build", f"trial builds of {len(build_jobs)} conda-forge recipe(s)")
    try:
        outcomes = build_all(build_jobs, work, channels, max_jobs=jobs, keep_going=True,
                             progress=lambda s, n, d: reporter.package(s, n, d))
    except BuildFailed as exc:
        outcomes = exc.outcomes
    return {o.name: _local_build(o) for o in outcomes}


def _local_build(outcome: BuildOutcome) -> LocalBuild:
    if outcome.status == "built":
        return LocalBuild(True, True, f"built and tested with rattler-build in "
                          f"{outcome.seconds:.0f} s")
    return LocalBuild(False, False, f"{outcome.status}: {outcome.error or ''} "
                      f"(log: {outcome.log})".strip())


def export(req: ExportRequest, reporter: Reporter) -> ExportResult:
    """Run the whole export; raise before touching the clone if anything is wrong."""
    clone = Path(req.clone)
    _check_clone(clone)
    if not req.maintainers:
        raise UsageError("no maintainer for the recipes",
                         "pass --maintainer YOUR_GITHUB_ID (or set maintainers in "
                         "[tool.recipegen]); conda-forge needs a real person")
    mapper = NameMapper(req.mapping_overrides)
    work = WorkRoot.at(req.work_root)
    requested = [canonicalize_name(Requirement(s).name) for s in req.specs]
    on_channel = {} if req.force else on_conda_forge_channel(
        {n: mapper.to_conda(n).conda for n in requested}, reporter)
    for name in requested:
        why = on_conda_forge(name, mapper) or on_channel.get(name)
        if why and not req.force:
            raise RecipegenError(f"{name} is already on conda-forge: {why}",
                                 "add --force to export it anyway (e.g. to a private "
                                 "channel's staged-recipes)", package=name)

    # 1. The local plan: what everything resolves to, and local builds of all of it, so the
    #    conda-forge recipes can be built and tested against real packages.
    base = InstallRequest(specs=req.specs, prefix=work.root / ".export-target",
                          work_root=req.work_root, channels=req.channels,
                          constraints=req.constraints, jobs=req.jobs,
                          mapping_overrides=req.mapping_overrides)
    plan = make_plan(base, reporter)
    if not req.no_build:
        build_packages(plan, base, reporter)

    # 2. The submission: the requested packages and what conda-forge lacks of their closure.
    names = _closure(set(requested), plan)
    pins = tuple(f"{plan.resolution.dists[n].display_name}=={plan.resolution.dists[n].version}"
                 for n in sorted(names))
    reporter.phase("generate", f"conda-forge recipes for {', '.join(sorted(names))}")
    forge = make_plan(replace(base, specs=pins, flavour="conda-forge", use_channels=False,
                              follow=False, maintainers=req.maintainers), reporter)
    # The first package named is the submission's name (branch add-<name>, PR title).
    order = [*requested, *sorted(names - set(requested))]
    recipes = [forge.recipes[n] for n in dict.fromkeys(order)]

    # 3. Lint: any lint stops the export.
    findings: list[Finding] = []
    for recipe in recipes:
        folder = work.root / "export" / recipe.spec.name
        path = write_recipe(recipe, folder)
        if "conda-forge.yml" in _files(recipe):
            (folder / "conda-forge.yml").write_text(NOARCH_PLATFORMS)
        findings.extend(lint_text(recipe.text, path))
    if has_lints(findings):
        raise RecipegenError(
            "the recipes do not pass conda-forge's lint:\n" + "\n".join(
                f"  {f}" for f in findings if f.kind == "lint"),
            hint="nothing was committed; fix the recipes (or report a recipegen bug)")

    # 4. Trial builds.
    builds: dict[str, LocalBuild] = {}
    if not req.no_build:
        builds = _trial_builds(recipes, work,
                               [work.channel.as_uri(), *user_channels(plan, work)],
                               req.jobs, reporter)
        failed = [n for n, b in builds.items() if not b.built]
        if failed:
            raise RecipegenError(
                "the trial build failed for " + ", ".join(failed) + ":\n" + "\n".join(
                    f"  {builds[n].detail}" for n in failed),
                hint="nothing was committed; read the log, or export with --no-build "
                "(the PR body will say so)")

    # 5. One commit on add-<name>, and the PR text.
    summary = ExportSummary(
        recipes=tuple(_summary(r, mapper, builds.get(r.pypi_name)) for r in recipes),
        maintainers=req.maintainers)
    title, body = pr_title_body(summary)
    main = recipes[0].spec.name
    files = {r.spec.name: _files(r) for r in recipes}
    commit = write_branch(clone, main, {n: f["recipe.yaml"] for n, f in files.items()},
                          title, extra_files={n: {k: v for k, v in f.items()
                                                  if k != "recipe.yaml"}
                                              for n, f in files.items()})
    return ExportResult(branch=branch_name(main), commit=commit, title=title, body=body,
                        recipes=tuple(recipes), findings=tuple(findings))
