"""``recipegen.lock``: what one install or build used and made, to make it again exactly.

The lock is JSON (``schema`` 1), written atomically after every ``install`` and ``build``.
It holds, per package built, the PyPI release, its source (URL, sha256), the recipe (its
text, spec and content hash), how it was built (platform, python, timestamp, order) and
the output file with its sha256; per package reused from a channel, the channel, file name
and sha256; after an install, every package of the env. With ``--locked`` the plan is read
from here: nothing is resolved or generated, every source is downloaded and checked
against its locked sha256 before anything is built, and the env's solve may pick only the
locked builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import recipegen
from recipegen import channels as channels_mod
from recipegen import localchannel
from recipegen.channels import ChannelPackage
from recipegen.errors import RecipegenError, UsageError
from recipegen.fingerprint import installed_version
from recipegen.fsutil import sha256_file
from recipegen.install import Solution
from recipegen.pipeline import InstallPlan, InstallRequest, InstallResult
from recipegen.plan import BuildOrder, BuildStep, Decision
from recipegen.progress import Reporter
from recipegen.recipe import GeneratedRecipe, RecipeSpec
from recipegen.target import Target, inspect_target
from recipegen.workroot import WorkRoot

if TYPE_CHECKING:  # building and PyPI are loaded only where a lock makes a plan
    from recipegen.build import BuildOutcome

SCHEMA = 1
FILE_NAME = "recipegen.lock"


class LockError(RecipegenError):
    """The lock can't be read, doesn't fit this run, or doesn't match what is out there."""


@dataclass(frozen=True)
class LockedBuild:
    """One package built from PyPI, and everything needed to build it again."""

    pypi_name: str
    version: str
    conda_name: str
    requested: bool
    reason: str
    source_kind: str  # "sdist" | "wheel"
    source_url: str
    source_sha256: str
    source_filename: str
    recipe_path: str  # relative to the work root
    recipe_text: str
    recipe_sha256: str  # of recipe_text
    content_hash: str  # RecipeSpec.content_hash(): what the build string is made from
    spec: dict  # the RecipeSpec's fields
    host_requirements: tuple[str, ...]
    run_requirements: tuple[str, ...]
    subdir: str
    build_string: str
    timestamp: int  # seconds since the epoch; the package's build time
    after: tuple[str, ...]
    skip_tests: bool
    file_name: str
    sha256: str | None  # of the built .conda; None if it was not built (a failed run)


@dataclass(frozen=True)
class LockedPackage:
    """One package file taken from a channel (or, in ``env``, built here: ``built``)."""

    conda_name: str
    version: str
    build: str
    channel: str
    subdir: str
    file_name: str
    sha256: str | None
    pypi_name: str | None = None
    built: bool = False

    @property
    def exact_spec(self) -> str:
        spec = f"{self.conda_name} =={self.version} {self.build}"
        return f"{spec}[sha256={self.sha256}]" if self.sha256 and not self.built else spec


@dataclass(frozen=True)
class Lock:
    """Everything one install or build used and made, as the lock file holds it."""

    tools: dict[str, str]
    python: str
    platform: str
    specs: tuple[str, ...]  # the user's requirements (PEP 508)
    channels: tuple[str, ...]  # the user's channels (URLs), without the local channel
    requested: tuple[str, ...]  # the specs as conda specs
    pins: tuple[str, ...]
    builds: tuple[LockedBuild, ...]
    reused: tuple[LockedPackage, ...]
    env: tuple[LockedPackage, ...] = ()  # after an install: every package of the env


def default_path(work_root: Path) -> Path:
    return WorkRoot.at(work_root).root / FILE_NAME


def tool_versions() -> dict[str, str]:
    """Versions of everything that shapes the recipes and the bytes of the packages."""
    out = {"recipegen": recipegen.__version__,
           "recipegen-python": sys.version.split()[0]}  # the variant's python is the target's
    for dist in ("grayskull", "py-rattler-build", "py-rattler", "zstandard"):
        out[dist] = installed_version(dist)
    return out


# -- to and from JSON -----------------------------------------------------------------------


def to_json(lock: Lock) -> str:
    data = {
        "schema": SCHEMA,
        "generator": "recipegen",
        "tools": lock.tools,
        "variant": {"python": lock.python, "platform": lock.platform},
        "request": {"specs": list(lock.specs), "channels": list(lock.channels),
                    "conda_specs": list(lock.requested), "pins": list(lock.pins)},
        "builds": [_build_json(b) for b in lock.builds],
        "reused": [asdict(p) for p in lock.reused],
        "env": [asdict(p) for p in lock.env],
    }
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _build_json(b: LockedBuild) -> dict:
    return {
        "pypi_name": b.pypi_name, "version": b.version, "conda_name": b.conda_name,
        "requested": b.requested, "reason": b.reason,
        "source": {"kind": b.source_kind, "url": b.source_url, "sha256": b.source_sha256,
                   "filename": b.source_filename},
        "recipe": {"path": b.recipe_path, "sha256": b.recipe_sha256,
                   "content_hash": b.content_hash, "text": b.recipe_text, "spec": b.spec},
        "requirements": {"host": list(b.host_requirements), "run": list(b.run_requirements)},
        "build": {"subdir": b.subdir, "string": b.build_string, "timestamp": b.timestamp,
                  "after": list(b.after), "skip_tests": b.skip_tests},
        "output": {"file_name": b.file_name, "sha256": b.sha256},
    }


def from_json(text: str, where: str = "the lock") -> Lock:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{where} is not valid JSON: {exc}",
                        hint="restore it, or run without --locked to make a new one") from exc
    if not isinstance(data, dict) or data.get("generator") != "recipegen":
        raise LockError(f"{where} is not a recipegen lock file")
    if data.get("schema") != SCHEMA:
        raise LockError(f"{where} has lock schema {data.get('schema')!r}; this recipegen "
                        f"reads schema {SCHEMA}",
                        hint="use the recipegen that wrote it, or re-lock without --locked")
    try:
        return Lock(
            tools=dict(data["tools"]),
            python=data["variant"]["python"],
            platform=data["variant"]["platform"],
            specs=tuple(data["request"]["specs"]),
            channels=tuple(data["request"]["channels"]),
            requested=tuple(data["request"]["conda_specs"]),
            pins=tuple(data["request"]["pins"]),
            builds=tuple(_build_from(b) for b in data["builds"]),
            reused=tuple(LockedPackage(**p) for p in data["reused"]),
            env=tuple(LockedPackage(**p) for p in data.get("env") or ()),
        )
    except (KeyError, TypeError) as exc:
        raise LockError(f"{where} is incomplete or damaged ({type(exc).__name__}: {exc})",
                        hint="restore it, or run without --locked to make a new one") from exc


def _build_from(b: dict) -> LockedBuild:
    return LockedBuild(
        pypi_name=b["pypi_name"], version=b["version"], conda_name=b["conda_name"],
        requested=bool(b["requested"]), reason=b["reason"],
        source_kind=b["source"]["kind"], source_url=b["source"]["url"],
        source_sha256=b["source"]["sha256"], source_filename=b["source"]["filename"],
        recipe_path=b["recipe"]["path"], recipe_text=b["recipe"]["text"],
        recipe_sha256=b["recipe"]["sha256"], content_hash=b["recipe"]["content_hash"],
        spec=dict(b["recipe"]["spec"]),
        host_requirements=tuple(b["requirements"]["host"]),
        run_requirements=tuple(b["requirements"]["run"]),
        subdir=b["build"]["subdir"], build_string=b["build"]["string"],
        timestamp=int(b["build"]["timestamp"]), after=tuple(b["build"]["after"]),
        skip_tests=bool(b["build"]["skip_tests"]),
        file_name=b["output"]["file_name"], sha256=b["output"]["sha256"],
    )


def read(path: Path) -> Lock:
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise LockError(f"there is no lock file at {path}",
                        hint="run 'recipegen install' or 'recipegen build' without --locked "
                        "first (it writes one), or pass --lock PATH") from exc
    except OSError as exc:
        raise LockError(f"cannot read the lock file {path}: {exc.strerror or exc}") from exc
    return from_json(text, str(path))


def write(lock: Lock, path: Path) -> Path:
    """Write atomically: a reader sees the old lock or the new one, never half of one."""
    from recipegen.fsutil import atomic_write

    return atomic_write(Path(os.path.abspath(path)), to_json(lock), prefix=".recipegen-lock-")


# -- a plan and its results → a lock --------------------------------------------------------


def from_result(plan: InstallPlan, req: InstallRequest, result: InstallResult) -> Lock:
    """The lock of a finished install (``result.solution`` set) or build (no solution)."""
    work = WorkRoot.at(req.work_root)
    built = {o.name: o for o in result.builds}
    builds = [_locked_build(plan, step, work, built.get(step.name))
              for step in plan.order.steps]
    reused = [_from_channel_package(d.channel_package, d.name)
              for d in sorted(plan.decisions.values(), key=lambda d: d.name)
              if d.action == "reuse" and d.channel_package is not None]
    env = _env(result.solution, work) if result.solution is not None else []
    return Lock(
        tools=tool_versions(), python=plan.python_version, platform=plan.target.platform,
        specs=tuple(req.specs),
        channels=tuple(c for c in plan.channels if c != work.channel.as_uri()),
        requested=plan.requested, pins=plan.pins, builds=tuple(builds),
        reused=tuple(reused), env=tuple(env),
    )


def _locked_build(plan: InstallPlan, step: BuildStep, work: WorkRoot,
                  outcome: BuildOutcome | None) -> LockedBuild:
    recipe = plan.recipes[step.name]
    decision = plan.decisions[step.name]
    spec = recipe.spec
    subdir = "noarch" if spec.noarch else plan.target.platform
    file_name = f"{spec.name}-{spec.version}-{spec.build_string}.conda"
    package = work.channel / subdir / file_name
    if outcome is not None and outcome.package is not None:
        package = outcome.package
    return LockedBuild(
        pypi_name=step.name, version=recipe.version, conda_name=spec.name,
        requested=decision.requested, reason=decision.reason,
        source_kind=spec.source_kind, source_url=spec.source_url,
        source_sha256=spec.sha256,
        source_filename=spec.file_name or spec.source_url.rsplit("/", 1)[-1],
        recipe_path=str(Path("recipes") / spec.name / "recipe.yaml"),
        recipe_text=recipe.text,
        recipe_sha256=hashlib.sha256(recipe.text.encode()).hexdigest(),
        content_hash=spec.content_hash(), spec=_spec_json(spec),
        host_requirements=recipe.host_requirements,
        run_requirements=recipe.run_requirements,
        subdir=subdir, build_string=spec.build_string or "",
        timestamp=recipe.timestamp,
        after=tuple(sorted(step.after)), skip_tests=step.skip_tests,
        file_name=file_name, sha256=sha256_file(package) if package.is_file() else None,
    )


def _spec_json(spec: RecipeSpec) -> dict:
    return spec.as_json()


def _from_channel_package(pkg: ChannelPackage, pypi_name: str | None) -> LockedPackage:
    return LockedPackage(conda_name=pkg.name, version=pkg.version, build=pkg.build,
                         channel=pkg.channel, subdir=pkg.subdir, file_name=pkg.file_name,
                         sha256=pkg.sha256, pypi_name=pypi_name)


def _env(solution: Solution, work: WorkRoot) -> list[LockedPackage]:
    local = work.channel.as_uri().rstrip("/")
    out = []
    for rec in sorted(solution.records, key=lambda r: r.name.normalized):
        channel = str(rec.channel).rstrip("/")
        out.append(LockedPackage(
            conda_name=rec.name.normalized, version=str(rec.version), build=str(rec.build),
            channel="local" if channel == local else channel, subdir=rec.subdir,
            file_name=rec.file_name, sha256=rec.sha256.hex() if rec.sha256 else None,
            built=channel == local))
    return out


# -- a lock → a plan ------------------------------------------------------------------------


def _spec_from(build: LockedBuild) -> RecipeSpec:
    names = {f.name for f in fields(RecipeSpec)}
    unknown = set(build.spec) - names
    if unknown:
        raise LockError(f"the lock's recipe of {build.pypi_name} has fields this recipegen "
                        f"does not know: {', '.join(sorted(unknown))}",
                        hint="use the recipegen that wrote the lock (see its 'tools')",
                        package=build.pypi_name)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in build.spec.items()}
    try:
        return RecipeSpec(**values)
    except TypeError as exc:
        raise LockError(f"the lock's recipe of {build.pypi_name} is incomplete: {exc}",
                        package=build.pypi_name) from exc


def check_integrity(lock: Lock) -> None:
    """Each locked recipe is the one its hashes and its source entry say it is."""
    for b in lock.builds:
        if hashlib.sha256(b.recipe_text.encode()).hexdigest() != b.recipe_sha256:
            raise LockError(f"the locked recipe of {b.pypi_name} does not match its sha256: "
                            "the lock was edited or damaged",
                            hint="restore the lock, or re-lock without --locked",
                            package=b.pypi_name)
        spec = _spec_from(b)
        if spec.content_hash() != b.content_hash or spec.build_string != b.build_string:
            raise LockError(f"the locked recipe spec of {b.pypi_name} does not match its "
                            "content hash: the lock was edited or damaged",
                            package=b.pypi_name)
        if spec.sha256 != b.source_sha256 or spec.source_url != b.source_url:
            raise LockError(
                f"the lock's source of {b.pypi_name} ({b.source_sha256}) is not the one its "
                f"recipe builds ({spec.sha256}): the lock was edited or damaged",
                hint="restore the lock, or re-lock without --locked", package=b.pypi_name)


def fetch_sources(lock: Lock, cache: Path, *, offline: bool, reporter: Reporter) -> None:
    """Download every locked source and check its sha256, before anything is built."""
    from recipegen.pypi import DistFile, PyPI

    pypi = PyPI(cache / "pypi", offline=offline)
    reporter.phase("sources", f"checking {len(lock.builds)} source(s) against the lock")
    for b in lock.builds:
        dist = DistFile(filename=b.source_filename, url=b.source_url, sha256=b.source_sha256,
                        packagetype="sdist" if b.source_kind == "sdist" else "bdist_wheel")
        try:
            pypi.download(dist, cache / ("sdists" if b.source_kind == "sdist" else "wheels"))
        except RecipegenError as exc:
            raise LockError(
                f"the locked source of {b.pypi_name} {b.version} cannot be used: {exc.message}",
                hint="nothing was built. The file at the URL is not the one locked; if that "
                "is expected, re-lock without --locked and review the change",
                package=b.pypi_name) from exc
    check_integrity(lock)


def _check_channel_packages(lock: Lock, channels: list[str], platform: str, gateway,
                            installed: set[tuple[str, str, str]]) -> None:
    """Every locked channel package is still offered with the same sha256."""
    wanted = [p for p in (*lock.reused, *lock.env) if not p.built
              and (p.conda_name, p.version, p.build) not in installed]
    if not wanted:
        return
    found = channels_mod.query(channels, platform, sorted({p.conda_name for p in wanted}),
                               gateway=gateway)
    for p in wanted:
        offers = [c for c in found.of(p.conda_name)
                  if c.version == p.version and c.build == p.build]
        if not any(c.sha256 == p.sha256 for c in offers):
            what = (f"with another sha256 ({offers[0].sha256})" if offers
                    else "not at all")
            raise LockError(
                f"the locked {p.conda_name} {p.version} {p.build} (sha256 {p.sha256}) from "
                f"{p.channel} is offered {what} by the channels {', '.join(channels)}",
                hint="nothing was built; pass the channel that has it with -c, or re-lock "
                "without --locked", package=p.conda_name)


def plan_from_lock(lock: Lock, req: InstallRequest, reporter: Reporter, *,
                   install: bool) -> InstallPlan:
    """The plan the lock describes, after every source and channel package is checked.

    Nothing is resolved and no recipe is generated. ``req.channels`` (if given) replace
    the lock's channels; what they offer is still checked against the locked sha256.
    """
    if req.specs and set(req.specs) != set(lock.specs):
        raise UsageError(
            f"the lock was made for {' '.join(lock.specs)}, not {' '.join(req.specs)}",
            hint="run --locked without requirements, or without --locked to re-lock")
    work = WorkRoot.at(req.work_root)
    if install:
        target = inspect_target(req.prefix)
    else:
        target = Target(prefix=Path(os.path.abspath(req.prefix)), platform=lock.platform,
                        exists=False)
    if target.platform != lock.platform:
        raise LockError(f"the lock is for {lock.platform}; this machine is {target.platform}")
    if target.python_version and target.python_version != lock.python:
        raise LockError(f"the lock was made for python {lock.python}; the env at "
                        f"{target.prefix} has python {target.python_version}",
                        hint="use an env with that python, or re-lock without --locked")
    user_channels = ([channels_mod.channel_url(c) for c in req.channels] if req.channels
                     else list(lock.channels))
    import tempfile

    with contextlib.ExitStack() as stack:
        # A dry run checks everything too, but downloads into a directory it then removes.
        cache = (Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="recipegen-")))
                 if req.dry_run else work.cache)
        fetch_sources(lock, cache, offline=req.offline, reporter=reporter)
        gateway = channels_mod.make_gateway(cache / "repodata", offline=req.offline)
        installed = {(p.name, p.version, p.build) for p in target.installed}
        _check_channel_packages(lock, user_channels, lock.platform, gateway, installed)
    if not req.dry_run:
        work.ensure_writable()
        localchannel.ensure(work.channel, lock.platform)

    decisions: dict[str, Decision] = {}
    recipes: dict[str, GeneratedRecipe] = {}
    for b in lock.builds:
        spec = _spec_from(b)
        decisions[b.pypi_name] = Decision(b.pypi_name, b.version, b.conda_name, "build",
                                          f"locked ({b.reason})", requested=b.requested)
        recipes[b.pypi_name] = GeneratedRecipe(
            spec=spec, text=b.recipe_text, pypi_name=b.pypi_name, version=b.version,
            host_requirements=b.host_requirements, run_requirements=b.run_requirements,
            source_sha256=b.source_sha256, source_time=b.timestamp)
    for p in lock.reused:
        name = p.pypi_name or p.conda_name
        decisions[name] = Decision(
            name, p.version, p.conda_name, "reuse", f"locked from {p.channel}",
            channel_package=ChannelPackage(name=p.conda_name, version=p.version, build=p.build,
                                           channel=p.channel, subdir=p.subdir,
                                           file_name=p.file_name, url="", sha256=p.sha256,
                                           depends=()))
    order = BuildOrder(tuple(BuildStep(b.pypi_name, frozenset(b.after), b.skip_tests)
                             for b in lock.builds))
    return InstallPlan(
        target=target, channels=(work.channel.as_uri(), *user_channels),
        python_version=lock.python, decisions=decisions, recipes=recipes, order=order,
        requested=lock.requested, pins=lock.pins,
        constraints=tuple(p.exact_spec for p in lock.env), locked=True,
    )


def compare_outputs(lock: Lock, outcomes: tuple[BuildOutcome, ...],
                    reporter: Reporter) -> list[str]:
    """Locked builds whose package now differs from the locked sha256 (warned about)."""
    by_name = {o.name: o for o in outcomes}
    differ = []
    for b in lock.builds:
        outcome = by_name.get(b.pypi_name)
        if outcome is None or outcome.package is None or b.sha256 is None:
            continue
        now = sha256_file(outcome.package)
        if now != b.sha256:
            differ.append(b.pypi_name)
            how = "was already in the channel" if outcome.status == "cached" else "was built"
            reporter.warn(f"{b.file_name} {how} with sha256 {now}, the lock has {b.sha256}; "
                          "run 'recipegen verify' to see which files differ")
    return differ
