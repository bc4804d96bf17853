"""The ``recipegen`` command: parse arguments, call the stages, print. Nothing else."""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import recipegen
from recipegen.errors import RecipegenError, UsageError
from recipegen.progress import Reporter

if TYPE_CHECKING:  # the pipeline is imported by the commands that run it
    from collections.abc import Callable

    from recipegen.pipeline import InstallPlan


def _prefix(value: str | None) -> Path:
    prefix = value or os.environ.get("CONDA_PREFIX")
    if not prefix:
        raise UsageError("no target env: pass -p PREFIX or activate a conda env "
                         "($CONDA_PREFIX is not set)")
    return Path(prefix)


def _reporter(args: argparse.Namespace) -> Reporter:
    if getattr(args, "json", False):
        return Reporter("json")
    return Reporter("quiet" if getattr(args, "quiet", False) else "human")


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """Name-mapping overrides: config file first, ``--map`` flags on top."""
    from recipegen.config import load_config

    config = load_config(Path.cwd())
    flags = getattr(args, "map", None) or []
    if not flags:  # (the mapping module is loaded only for them: not on a warm install)
        return dict(config.mapping)
    from recipegen.mapping import parse_override

    return {**config.mapping, **dict(parse_override(t) for t in flags)}


def _config_channels() -> tuple[str, ...]:
    from recipegen.config import load_config

    return tuple(load_config(Path.cwd()).channels)


# -- seed ------------------------------------------------------------------------------------


def cmd_seed(args: argparse.Namespace) -> int:
    from recipegen.seed import seed_channel
    from recipegen.workroot import WorkRoot

    reporter = _reporter(args)
    channel = Path(args.channel) if args.channel else WorkRoot.at(args.work_root).seed
    result = seed_channel(channel, progress=reporter.info)
    data = {"channel": str(result.channel), "built": result.built, "existing": result.existing}
    if args.json:
        reporter.result(data)
    else:
        what = ", ".join(result.built) if result.built else "nothing (already seeded)"
        print(f"seed channel {result.channel}: built {what}")
        print(f"use it with: recipegen install SPEC -c {result.channel}")
    return 0


# -- install ---------------------------------------------------------------------------------


def _plan_text(plan: InstallPlan) -> str:
    lines = [f"Target: {plan.target.prefix} (python {plan.python_version}, "
             f"{plan.target.platform})",
             "Channels: " + ", ".join(plan.channels)]
    reuse = sorted((d for d in plan.decisions.values() if d.action == "reuse"),
                   key=lambda d: d.name)
    if reuse:
        lines.append("From channels:")
        for d in reuse:
            pkg = d.channel_package
            lines.append(f"  {d.conda_name:<28} {pkg.version:<14} {pkg.channel}")
    if plan.order.steps:
        lines.append("Build from PyPI, in this order:")
        for i, step in enumerate(plan.order.steps, 1):
            d = plan.decisions[step.name]
            recipe = plan.recipes[step.name]
            note = f"{recipe.spec.source_kind}; {d.reason}"
            if step.skip_tests:
                note += "; tests skipped (cycle)"
            lines.append(f"  {i:>3}. {recipe.spec.name:<24} {recipe.spec.version:<12} {note}")
    lines.append("Requested: " + ", ".join(plan.requested))
    return "\n".join(lines)


def _plan_json(plan: InstallPlan) -> dict:
    packages = []
    for d in sorted(plan.decisions.values(), key=lambda d: d.name):
        entry = {"pypi_name": d.name, "version": d.version, "conda_name": d.conda_name,
                 "action": d.action, "reason": d.reason}
        if d.channel_package is not None:
            entry["channel"] = d.channel_package.channel
            entry["channel_version"] = d.channel_package.version
        packages.append(entry)
    return {
        "prefix": str(plan.target.prefix),
        "python": plan.python_version,
        "channels": list(plan.channels),
        "packages": packages,
        "build_order": [{"name": plan.recipes[s.name].spec.name, "pypi_name": s.name,
                         "after": sorted(s.after), "skip_tests": s.skip_tests}
                        for s in plan.order.steps],
        "requested": list(plan.requested),
    }


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes or args.json or not sys.stdin.isatty():
        return True
    answer = input("Proceed ([y]/n)? ").strip().lower()
    return answer in ("", "y", "yes")


def _request(args: argparse.Namespace, prefix: Path):
    from recipegen.pipeline import InstallRequest

    specs = list(getattr(args, "extra_specs", None) or args.specs)
    if not specs and not args.locked:
        raise UsageError("nothing to do: give at least one requirement, -e PATH or --locked")
    req = InstallRequest(
        specs=tuple(specs),
        prefix=prefix,
        work_root=Path(args.work_root),
        channels=tuple(args.channel or ()) or (() if args.locked else _config_channels()),
        constraints=tuple(Path(c).absolute() for c in args.constraints or ()),
        jobs=args.jobs,
        dry_run=args.dry_run,
        offline=args.offline,
        keep_going=args.keep_going,
        mapping_overrides=_overrides(args),
        grayskull_timeout=args.grayskull_timeout,
        resolve_timeout=args.resolve_timeout,
        protect=not getattr(args, "no_protect", False),
        refresh=args.refresh,
    )
    for c in req.constraints:
        if not c.is_file():
            raise UsageError(f"constraints file {c} does not exist")
    if args.locked and req.constraints:
        raise UsageError("--constraints and --locked do not go together: the lock decides")
    return req


def _lock_path(args: argparse.Namespace) -> Path:
    from recipegen.lock import default_path

    return Path(args.lock) if args.lock else default_path(Path(args.work_root))


def _plan(args: argparse.Namespace, req, reporter: Reporter, *, install: bool):
    """The plan: made fresh, or read from the lock with ``--locked``."""
    from recipegen import lock
    from recipegen.pipeline import make_plan

    if args.locked:
        return lock.plan_from_lock(lock.read(_lock_path(args)), req, reporter, install=install)
    return make_plan(req, reporter)


def _record(args: argparse.Namespace, plan, req, result, reporter: Reporter) -> str:
    """Write the lock after a fresh run; after a locked one, check the outputs against it."""
    from recipegen import lock

    path = _lock_path(args)
    if args.locked:
        lock.compare_outputs(lock.read(path), result.builds, reporter)
        return str(path)
    return str(lock.write(lock.from_result(plan, req, result), path))


def cmd_install(args: argparse.Namespace) -> int:
    from recipegen.pipeline import execute

    reporter = _reporter(args)
    prefix = _prefix(args.prefix)
    if not args.dry_run:
        from recipegen.target import check_writable

        check_writable(prefix)
    project = None
    if args.editable:
        from recipegen.editable import read_project

        project = read_project(Path(args.editable), *_project_python(prefix))
        args.extra_specs = [*args.specs, *(s for s in project.specs if s not in args.specs)]
    req = _request(args, prefix)
    plan = _plan(args, req, reporter, install=True)
    if _shown_as_dry_run(args, plan, reporter):
        return 0
    if not _confirm(args):
        print("Aborted: nothing was changed.", file=sys.stderr)
        return 1
    result = execute(plan, req, reporter)
    if project is not None:
        from recipegen.editable import pip_install_editable
        from recipegen.locks import prefix_locked

        reporter.phase("editable", f"pip install -e {project.path} (no deps, no isolation)")
        with prefix_locked(plan.target.prefix, reporter.info):
            pip_install_editable(plan.target.prefix, project.path)
    lock_file = _record(args, plan, req, result, reporter)
    changes = [asdict(c) for c in result.solution.changes] if result.solution else []
    if args.json:
        reporter.result({**_plan_json(plan), "builds": _builds_json(result.builds),
                         "changes": changes, "lock": lock_file})
    elif not args.quiet:
        for c in changes:
            arrow = f"{c['old'] or '-'} -> {c['new'] or '-'}"
            print(f"  {c['name']:<28} {arrow}")
        if project is not None:
            print(f"  {project.name:<28} {project.version} (editable: {project.path})")
        print(f"Installed into {plan.target.prefix}.")
        print(f"Lock: {lock_file}")
    return 0


# -- generate --------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from recipegen.config import load_config
    from recipegen.pipeline import InstallRequest, generate_recipes

    reporter = _reporter(args)
    config = load_config(Path.cwd())
    out_dir = Path(args.output)
    req = InstallRequest(
        specs=tuple(args.specs),
        prefix=Path(args.prefix or os.environ.get("CONDA_PREFIX") or out_dir / ".no-env"),
        work_root=Path(args.work_root),
        channels=tuple(args.channel or ()) or tuple(config.channels),
        constraints=tuple(Path(c) for c in args.constraints or ()),
        jobs=os.cpu_count() or 1,
        mapping_overrides=_overrides(args),
        flavour=args.flavour,
        maintainers=tuple(args.maintainer or ()) or tuple(config.maintainers),
        use_channels=args.deps,
        follow=args.deps,
    )
    written = generate_recipes(req, out_dir, reporter)
    if args.json:
        reporter.result({"recipes": [{"name": r.spec.name, "pypi_name": r.pypi_name,
                                      "version": r.version, "path": str(p),
                                      "notes": [str(n) for n in r.notes],
                                      "warnings": r.warnings} for r, p in written]})
    else:
        for recipe, path in written:
            print(f"{recipe.spec.name} {recipe.version}: {path}")
            for note in recipe.notes:
                print(f"  note: {note}")
    return 0


# -- export ----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from recipegen.config import load_config
    from recipegen.export import ExportRequest, export

    reporter = _reporter(args)
    config = load_config(Path.cwd())
    token = None
    if args.open_pr:
        from recipegen.github import token_from_env

        token = token_from_env()  # fail before any long work when it is missing
    req = ExportRequest(
        specs=tuple(args.specs),
        clone=Path(args.to),
        maintainers=tuple(args.maintainer or ()) or tuple(config.maintainers),
        work_root=Path(args.work_root),
        channels=tuple(args.channel or ()) or tuple(config.channels),
        constraints=tuple(Path(c) for c in args.constraints or ()),
        no_build=args.no_build,
        force=args.force,
        jobs=args.jobs,
        mapping_overrides=_overrides(args),
    )
    result = export(req, reporter)
    url = None
    if token is not None:
        from recipegen.github import api_base_from_env, open_pr

        url = open_pr(req.clone, result.branch, result.title, result.body, token,
                      api_base_from_env())
    if args.json:
        reporter.result({"branch": result.branch, "commit": result.commit,
                         "title": result.title, "body": result.body, "pr_url": url,
                         "recipes": [r.spec.name for r in result.recipes]})
    else:
        print(f"Committed {len(result.recipes)} recipe(s) on branch {result.branch} "
              f"({result.commit[:12]}) in {req.clone}.")
        print(f"\nPR title: {result.title}\n\n{result.body}")
        if url:
            print(f"\nOpened {url}")
        else:
            print(f"\nPush it with: git -C {req.clone} push <your-fork> {result.branch}, or "
                  "run again with --open-pr (needs GITHUB_TOKEN).")
    return 0


def _project_python(prefix: Path) -> tuple[Path, dict[str, str]]:
    """The python that reads a project's metadata, and its marker values."""
    from recipegen.target import inspect_target, marker_environment

    target = inspect_target(prefix)
    python = target.python_exe if target.python_version else Path(sys.executable)
    return python, marker_environment(python)


# -- remove, list, protect -----------------------------------------------------------------


def cmd_remove(args: argparse.Namespace) -> int:
    from recipegen.remove import remove

    reporter = _reporter(args)
    prefix = _prefix(args.prefix)
    result = remove(prefix, args.packages, prune=args.prune, force=args.force,
                    dry_run=args.dry_run, reporter=reporter)
    gone = list(result.removal.remove) if result.removal else []
    pruned = list(result.removal.pruned) if result.removal else []
    if args.json:
        reporter.result({"prefix": str(prefix), "dry_run": result.dry_run, "removed": gone,
                         "pruned": pruned, "pip_removed": list(result.pip_removed),
                         "broken": {k: list(v) for k, v in
                                    (result.removal.broken if result.removal else {}).items()}})
    elif not args.quiet:
        verb = "Would remove" if result.dry_run else "Removed"
        for name in [*gone, *result.pip_removed]:
            print(f"  {verb.lower():<13} {name}")
        for name in pruned:
            print(f"  {verb.lower():<13} {name} (no longer needed)")
        print(f"{verb} from {prefix}." if not result.dry_run else "Dry run: nothing changed.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from recipegen.envmeta import list_env, unfinished_change

    prefix = _prefix(args.prefix)
    if not (prefix / "conda-meta").is_dir():
        raise UsageError(f"{prefix} is not a conda env (no conda-meta/)",
                         hint="pass -p with an existing env")
    packages = list_env(prefix)
    unfinished = unfinished_change(prefix)
    if unfinished:
        print(f"warning: a change of this env was stopped while linking "
              f"({unfinished.get('cmd', '?')}); run it again to complete the env",
              file=sys.stderr)
    if args.json:
        print(json.dumps([{
            "name": p.name, "version": p.version, "build": p.build, "channel": p.channel,
            "installer": p.kind, "requested_spec": p.requested,
            "recipegen": (asdict(p.provenance) if p.provenance else None),
            "editable": p.editable} for p in packages], indent=2))
        return 0
    print(f"# packages in environment at {prefix}:")
    print(f"# {'Name':<26} {'Version':<14} {'Build':<22} Channel / origin")
    for p in packages:
        if p.editable:
            origin = f"pypi (editable: {p.editable})"
        elif p.provenance:
            recipe = p.provenance.recipe or "recipe inside the package: info/recipe/recipe.yaml"
            origin = (f"recipegen from PyPI {p.provenance.pypi_name}=="
                      f"{p.provenance.pypi_version} ({recipe})")
        else:
            origin = p.channel
        print(f"{p.name:<28} {p.version:<14} {p.build:<22} {origin}")
    return 0


def cmd_protect(args: argparse.Namespace) -> int:
    from recipegen import protect

    prefix = _prefix(args.prefix)
    if not (prefix / "conda-meta").is_dir():
        raise UsageError(f"{prefix} is not a conda env (no conda-meta/)",
                         hint="pass -p with an existing env")
    if args.on:
        state = protect.enable(prefix)
    elif args.off:
        state = protect.disable(prefix)
    else:
        state = protect.status(prefix)
    if state.marker is None:
        raise UsageError(f"{prefix} has no python, so there is nothing to protect")
    if args.on and state.on and not state.ours:
        print(f"{state.marker} was written by someone else; it was left as it is",
              file=sys.stderr)
    if args.json:
        print(json.dumps({"prefix": str(prefix), "marker": str(state.marker),
                          "protected": state.on, "by_recipegen": state.ours}))
    else:
        word = "on" if state.on else "off"
        print(f"protection is {word} for {prefix} ({state.marker})")
    return 0


def _builds_json(outcomes) -> list[dict]:
    from recipegen.fsutil import sha256_file

    return [{"name": o.name, "status": o.status,
             "package": str(o.package) if o.package else None,
             "sha256": sha256_file(o.package) if o.package else None,
             "log": str(o.log), "seconds": round(o.seconds, 1)} for o in outcomes]


# -- build -----------------------------------------------------------------------------------


def _shown_as_dry_run(args: argparse.Namespace, plan: InstallPlan, reporter: Reporter) -> bool:
    """Show the plan; True for a dry run, which ends there (its plan goes to stdout)."""
    if args.dry_run:
        if args.json:
            reporter.result({"dry_run": True, **_plan_json(plan)})
        else:
            print(_plan_text(plan))
            print("Dry run: nothing was written.")
        return True
    if not args.json and not args.quiet:
        print(_plan_text(plan), file=sys.stderr)
    return False


def cmd_build(args: argparse.Namespace) -> int:
    """Build packages into the local channel (and lock them); no env is touched."""
    from recipegen.pipeline import InstallResult, build_packages

    reporter = _reporter(args)
    # Without -p the packages are built for a new env's python (from the channels).
    prefix = Path(args.prefix) if args.prefix else Path(args.work_root) / ".no-env"
    req = _request(args, prefix)
    plan = _plan(args, req, reporter, install=False)
    if _shown_as_dry_run(args, plan, reporter):
        return 0
    plan, builds = build_packages(plan, req, reporter)
    lock_file = _record(args, plan, req, InstallResult(plan, builds, None), reporter)
    if args.json:
        reporter.result({**_plan_json(plan), "builds": _builds_json(builds),
                         "channel": str(Path(args.work_root).resolve() / "channel"),
                         "lock": lock_file})
    elif not args.quiet:
        for o in builds:
            print(f"  {o.status:<7} {o.package}")
        print(f"Lock: {lock_file}")
    return 0


# -- verify ----------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    from recipegen.verify import verify

    reporter = _reporter(args)
    keep = Path(args.keep) if args.keep else None
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise UsageError(f"--keep {keep} is not empty", hint="pass a new directory")
    verdicts = verify(_lock_path(args), Path(args.work_root),
                      channels=tuple(args.channel or ()), jobs=args.jobs,
                      offline=args.offline, reporter=reporter, keep=keep)
    if args.json:
        reporter.result({"lock": str(_lock_path(args)),
                         "packages": [asdict(v) for v in verdicts]})
    else:
        for v in verdicts:
            print(f"{v.status:<10} {v.file_name}")
            for line in (*v.differences, *([v.error] if v.error else [])):
                print(f"           {line}")
        same = sum(v.status == "identical" for v in verdicts)
        print(f"{same} of {len(verdicts)} package(s) rebuilt identical.")
    return 0 if all(v.status == "identical" for v in verdicts) else 1


# -- map -------------------------------------------------------------------------------------


def cmd_map(args: argparse.Namespace) -> int:
    from recipegen.mapping import NameMapper

    mapper = NameMapper(_overrides(args))
    results = [mapper.to_conda(n) for n in args.names]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        for r in results:
            print(f"{r.pypi:<30} {r.conda:<30} ({r.source})")
    return 0


# -- lint ------------------------------------------------------------------------------------


def cmd_lint(args: argparse.Namespace) -> int:
    from recipegen.lint import find_recipes, has_lints, lint_paths, summary_line

    recipes = find_recipes(args.paths)
    findings = lint_paths(recipes)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding)
        print(summary_line(findings, len(recipes)), file=sys.stderr)
    return 1 if has_lints(findings) else 0


# -- parser ----------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, work_root: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    if work_root:
        p.add_argument("--work-root", default="recipes-out",
                       help="recipes, local channel, logs and caches (default: ./recipes-out)")


def _plan_options(p: argparse.ArgumentParser) -> None:
    """Options shared by install and build: how the plan is made and run."""
    p.add_argument("-c", "--channel", action="append",
                   help="conda channel (name, URL or directory); repeatable")
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel builds (default: the number of cores)")
    p.add_argument("--constraints", action="append", metavar="FILE",
                   help="pip constraints file for every resolution; repeatable")
    p.add_argument("--offline", action="store_true", help="use cached repodata and PyPI data")
    p.add_argument("--keep-going", action="store_true",
                   help="build independent packages after a failure (nothing is installed)")
    p.add_argument("--map", action="append", metavar="PYPI=CONDA",
                   help="override a PyPI→conda name mapping; repeatable")
    p.add_argument("--grayskull-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="kill recipe generation for one package after this long")
    p.add_argument("--resolve-timeout", type=float, default=900.0, metavar="SECONDS",
                   help="kill pip's resolver (and a build backend it runs) after this long")
    p.add_argument("--refresh", action="store_true",
                   help="plan afresh: do not reuse the saved plan of an earlier identical "
                   "request (recipes and packages are still reused when unchanged)")
    p.add_argument("--lock", metavar="PATH",
                   help="lock file to write, or to read with --locked "
                   "(default: WORK_ROOT/recipegen.lock)")
    p.add_argument("--locked", action="store_true",
                   help="build exactly what the lock says: its sources (sha256-checked before "
                   "any build), recipes and channel packages; no resolution")


#: The commands, as the parser knows them.
COMMANDS = ("seed", "install", "generate", "export", "remove", "list", "protect", "build",
            "verify", "map", "lint")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command; with ``only``, the options of that command alone (the others are
    listed without theirs): adding every option of every command takes 10 ms, a
    twentieth of a warm install."""
    parser = argparse.ArgumentParser(
        prog="recipegen",
        description="Install PyPI packages into conda envs as real conda packages, "
        "built from generated recipes.")
    parser.add_argument("--version", action="version", version=recipegen.__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int],
                **kwargs: str) -> argparse.ArgumentParser | None:
        p = sub.add_parser(name, **kwargs)
        p.set_defaults(func=func)
        return p if only in (None, name) else None

    if p := command("seed", cmd_seed,
                    help="make an offline base channel (python, pip) from this interpreter"):
        p.add_argument("--channel", help="channel directory (default: WORK_ROOT/seed)")
        _common(p)

    if p := command("install", cmd_install,
                    help="build what the channels lack and install into an env"):
        p.add_argument("specs", nargs="*", metavar="SPEC", help="PEP 508 requirement")
        p.add_argument("-e", "--editable", metavar="PATH",
                       help="a project directory: its dependencies as conda packages, then the "
                       "project itself with 'pip install -e'")
        p.add_argument("--no-protect", action="store_true",
                       help="do not write the EXTERNALLY-MANAGED marker that stops plain pip")
        p.add_argument("-p", "--prefix", help="target env (default: $CONDA_PREFIX)")
        _plan_options(p)
        p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        _common(p)

    if p := command("generate", cmd_generate, help="write recipes without building them"):
        p.add_argument("specs", nargs="+", metavar="SPEC", help="PEP 508 requirement")
        p.add_argument("-o", "--output", default="recipes-out/recipes",
                       help="one folder per package in here (default: recipes-out/recipes)")
        p.add_argument("--flavour", choices=("local", "conda-forge"), default="local",
                       help="local: for this env's python; conda-forge: for staged-recipes")
        p.add_argument("--deps", action="store_true",
                       help="also write recipes for dependencies no channel has (queries "
                       "channels like install)")
        p.add_argument("-p", "--prefix", help="target env whose python the recipes are for "
                       "(default: $CONDA_PREFIX, else this interpreter)")
        p.add_argument("-c", "--channel", action="append", help="conda channel (with --deps)")
        p.add_argument("--maintainer", action="append", metavar="GH_ID",
                       help="recipe maintainer (conda-forge flavour); repeatable")
        p.add_argument("--constraints", action="append", metavar="FILE",
                       help="pip constraints file; repeatable")
        p.add_argument("--map", action="append", metavar="PYPI=CONDA",
                       help="override a PyPI→conda name mapping; repeatable")
        _common(p)

    if p := command("export", cmd_export,
                    help="submit recipes to conda-forge/staged-recipes"):
        p.add_argument("specs", nargs="+", metavar="SPEC", help="PEP 508 requirement")
        p.add_argument("--to", required=True, metavar="DIR", help="a clone of staged-recipes")
        p.add_argument("--maintainer", action="append", metavar="GH_ID",
                       help="GitHub id of a recipe maintainer; repeatable (or config)")
        p.add_argument("--no-build", action="store_true",
                       help="skip the local build and test (the PR body says so)")
        p.add_argument("--force", action="store_true",
                       help="export even packages conda-forge already has")
        p.add_argument("--open-pr", action="store_true",
                       help="fork, push and open the PR on GitHub (needs GITHUB_TOKEN)")
        p.add_argument("-c", "--channel", action="append", help="conda channel; repeatable")
        p.add_argument("--constraints", action="append", metavar="FILE",
                       help="pip constraints file; repeatable")
        p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel builds")
        p.add_argument("--map", action="append", metavar="PYPI=CONDA",
                       help="override a PyPI→conda name mapping; repeatable")
        _common(p)

    if p := command("remove", cmd_remove,
                    help="remove packages from an env; every other one stays"):
        p.add_argument("packages", nargs="+", metavar="PKG", help="conda or PyPI name")
        p.add_argument("-p", "--prefix", help="target env (default: $CONDA_PREFIX)")
        p.add_argument("--prune", action="store_true",
                       help="also remove dependencies that nothing else needs")
        p.add_argument("--force", action="store_true",
                       help="remove even if other packages need it (they break)")
        p.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
        _common(p, work_root=False)

    if p := command("list", cmd_list,
                    help="the env's packages; what recipegen built is marked"):
        p.add_argument("-p", "--prefix", help="target env (default: $CONDA_PREFIX)")
        p.add_argument("--json", action="store_true", help="JSON output")

    if p := command("protect", cmd_protect,
                    help="turn the EXTERNALLY-MANAGED marker (stops plain pip) on or off; "
                    "without --on/--off, show it"):
        p.add_argument("-p", "--prefix", help="target env (default: $CONDA_PREFIX)")
        group = p.add_mutually_exclusive_group()
        group.add_argument("--on", action="store_true", help="protect the env")
        group.add_argument("--off", action="store_true", help="let plain pip write again")
        p.add_argument("--json", action="store_true", help="JSON output")

    if p := command("build", cmd_build,
                    help="build packages into the local channel; install nothing"):
        p.add_argument("specs", nargs="*", metavar="SPEC", help="PEP 508 requirement")
        p.add_argument("-p", "--prefix",
                       help="build for this env's python (default: a new env's python)")
        _plan_options(p)
        _common(p)

    if p := command("verify", cmd_verify,
                    help="rebuild the locked packages elsewhere; report per package whether "
                    "it is identical"):
        p.add_argument("--lock", metavar="PATH",
                       help="lock file (default: WORK_ROOT/recipegen.lock)")
        p.add_argument("-c", "--channel", action="append",
                       help="conda channel instead of the lock's; repeatable")
        p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                       help="parallel builds (default: the number of cores)")
        p.add_argument("--offline", action="store_true", help="use cached sources and repodata")
        p.add_argument("--keep", metavar="DIR", help="rebuild in DIR (new or empty) and keep it")
        _common(p)

    if p := command("map", cmd_map,
                    help="show the conda name of PyPI packages and its source"):
        p.add_argument("names", nargs="+", metavar="NAME")
        p.add_argument("--map", action="append", metavar="PYPI=CONDA",
                       help="override a mapping; repeatable")
        p.add_argument("--json", action="store_true", help="JSON output")

    if p := command("lint", cmd_lint,
                    help="check v1 recipes against conda-forge's linter rules",
                    description="Check v1 recipes against conda-forge's linter rules (by "
                    "conda-smithy's rule ids). Exit status 1 if any recipe has a lint; "
                    "hints are advice and do not change the exit status."):
        p.add_argument("paths", nargs="+", metavar="PATH",
                       help="a recipe.yaml, or a folder searched for recipe.yaml files")
        p.add_argument("--json", action="store_true",
                       help="print the findings as a JSON list (rule_id, kind, message, path, "
                       "line)")
    return parser


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C: children in sessions of their own (pip, grayskull) don't get it; end them."""
    from recipegen import procgroup

    procgroup.kill_all()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # A crash inside the Rust libraries should leave a Python traceback to report.
    faulthandler.enable()
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(words)
    if getattr(args, "jobs", 1) is not None and getattr(args, "jobs", 1) < 1:
        parser.error("--jobs must be at least 1")
    try:
        return args.func(args)
    except RecipegenError as exc:
        _print_error(exc, args)
        return exc.exit_code
    except KeyboardInterrupt:
        from recipegen.install import CHANGED

        if CHANGED:
            print(f"recipegen: interrupted after the change of {CHANGED[-1]} was complete",
                  file=sys.stderr)
        else:
            print("recipegen: interrupted; the env was not changed", file=sys.stderr)
        return 130


def run() -> None:
    """The console entry point: ``main()``, then exit without interpreter finalization.

    py-rattler's runtime threads sometimes touch the interpreter while it finalizes
    ("PyGILState_Release ... finalizing", SIGABRT) after a successful install, which
    would turn exit status 0 into -6. Everything is flushed first; nothing is lost.
    """
    signal.signal(signal.SIGINT, _interrupted)
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_error(exc: RecipegenError, args: argparse.Namespace) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"event": "error", "error": exc.message, "hint": exc.hint,
                          "package": exc.package, "log": exc.log}))
    print(f"recipegen: error: {exc.message}", file=sys.stderr)
    if exc.log:
        print(f"  log: {exc.log}", file=sys.stderr)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=sys.stderr)
