"""Solve and link the env with py-rattler.

``rattler.install`` makes the prefix hold exactly the records it is given, so an install
is always "solve everything that should be there, then link that set": the user's new
specs plus every spec they asked for before, with the installed packages as locked
preferences so nothing moves without a reason. A removal is the installed set without
some records. :func:`apply` is the one place that changes an env: link, then write what
conda would have written (records' fields, bytecode, history, the PEP 668 marker).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recipegen import __version__
from recipegen.errors import RecipegenError, UsageError
from recipegen.target import Target


@dataclass(frozen=True)
class Change:
    """One package's change in an env, as shown to the user and recorded."""

    name: str
    old: str | None  # "version build" installed now, None if new
    new: str | None  # "version build" after, None if removed
    channel: str | None = None


@dataclass(frozen=True)
class Solution:
    """The full package set the env should hold, and how that differs from now."""

    records: tuple  # tuple[rattler.RepoDataRecord, ...]
    changes: tuple[Change, ...]
    requested_specs: tuple[str, ...]

    @property
    def is_noop(self) -> bool:
        return not self.changes


def _installed_records(prefix: Path) -> list:
    from rattler import PrefixRecord

    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return []
    return [PrefixRecord.from_path(str(p)) for p in sorted(meta.glob("*.json"))]


def _spec_name(spec: str) -> str:
    from rattler import MatchSpec

    name = MatchSpec(spec).name
    return name.normalized if name is not None else spec.split()[0]


def merge_specs(old: list[str], new: list[str]) -> list[str]:
    """The env's requested specs after an install: a new spec replaces one of the same name."""
    new_names = {_spec_name(s) for s in new}
    kept = [s for s in old if _spec_name(s) not in new_names]
    return sorted(set(kept + new), key=_spec_name)


def solve(target: Target, specs: list[str], channels: list[str], *, gateway,
          requested_specs: list[str], extra_specs: list[str] = (),
          constraints: list[str] = ()) -> Solution:
    """Solve ``specs`` (plus the env's earlier requests) against ``channels``.

    ``extra_specs`` steer this solve (exact builds to pick) without being recorded;
    ``constraints`` restrict a package *if* the env holds it (they install nothing).
    """
    from rattler import Channel, ChannelPriority, VirtualPackage
    from rattler import solve as rattler_solve
    from rattler.exceptions import SolverError

    installed = _installed_records(target.prefix)
    all_specs = merge_specs(target.requested_specs, [*specs, *extra_specs])
    try:
        records = asyncio.run(rattler_solve(
            sources=[Channel(c) for c in channels],
            specs=all_specs,
            gateway=gateway,
            platforms=[target.platform, "noarch"],
            locked_packages=installed,
            virtual_packages=VirtualPackage.detect(),
            channel_priority=ChannelPriority.Disabled,
            constraints=list(constraints) or None,
        ))
    except SolverError as exc:
        explanation = readable_solver_error(str(exc))
        involved = [f"{r.name.normalized} {r.version}" for r in installed
                    if re.search(rf"(?m)^\s*- {re.escape(r.name.normalized)} ", explanation)]
        raise RecipegenError(
            "the final solve found no way to install " + ", ".join(specs) + ":\n"
            + explanation + ("\n  in the env already: " + ", ".join(involved)
                             if involved else ""),
            hint="nothing was changed; relax a version pin, remove what conflicts from the "
            "env (recipegen remove NAME), or add a channel with -c",
        ) from exc
    before = {r.name.normalized: r for r in installed}
    after = {r.name.normalized: r for r in records}
    changes: list[Change] = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        old_id = f"{old.version} {old.build}" if old is not None else None
        new_id = f"{new.version} {new.build}" if new is not None else None
        if old_id != new_id:
            changes.append(Change(name, old_id, new_id, new.channel if new is not None else None))
    requested = merge_specs(target.requested_specs, specs)
    return Solution(tuple(records), tuple(changes), tuple(requested))


def readable_solver_error(text: str) -> str:
    """The solver's explanation as an indented list: its box-drawing tree, spelt plainly."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    plain = [line.replace("├─ ", "- ").replace("└─ ", "- ").replace("│", " ")
             .replace("Cannot solve the request because of: ", "") for line in lines[:40]]
    if len(lines) > 40:
        plain.append(f"... ({len(lines) - 40} more lines)")
    return "\n".join("  " + line for line in plain)



# -- changing the env ---------------------------------------------------------------------


@dataclass(frozen=True)
class EnvChange:
    """One change of an env: the exact package set after it, and what to remember."""

    records: tuple  # every record the env holds afterwards (RepoDataRecord / PrefixRecord)
    requested_specs: tuple[str, ...]  # every spec the user has asked for in this env
    update_specs: tuple[str, ...] = ()  # history: what this change asked for
    remove_specs: tuple[str, ...] = ()  # history: what this change removed
    recipe_dirs: tuple[Path, ...] = ()  # where recipes of packages built here live
    protect: bool = True  # write the EXTERNALLY-MANAGED marker (unless turned off)
    bytecode_cache: Path | None = None  # compiled code to reuse (recipegen.pyccache)


@contextlib.contextmanager
def _deferred_signals(reporter) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the env is consistent again, then say so."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum))
                for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:  # (an error on the way out says what happened instead)
        reporter.warn("interrupted while changing the env: the change was finished "
                      "first, so the env is consistent")


def apply(prefix: Path, change: EnvChange, reporter) -> None:
    """Make the prefix hold exactly ``change.records``, then write what conda expects.

    The caller holds the prefix lock. Ctrl-C is held from the first change of the env
    (creating its folder) to the last; if rattler fails part-way, the previous package set
    is linked back.
    """
    with _deferred_signals(reporter):
        _apply(prefix, change, reporter)
    CHANGED.append(prefix)


#: Envs this process has changed (completely): what an interrupt afterwards must not deny.
CHANGED: list[Path] = []


def _apply(prefix: Path, change: EnvChange, reporter) -> None:
    from rattler import MatchSpec
    from rattler import install as rattler_install

    from recipegen import envmeta, protect
    from recipegen.history import History, dist_str

    existed = prefix.exists()
    try:
        prefix.mkdir(parents=True, exist_ok=True)
        if not os.access(prefix, os.W_OK):
            raise PermissionError(f"{prefix} is not writable")
    except OSError as exc:
        raise RecipegenError(f"cannot write to the prefix {prefix}: {exc}",
                             hint="choose a prefix you can write with -p") from exc
    before_records = _installed_records(prefix)
    before = {dist_str(r) for r in envmeta.read_records(prefix)}
    specs = [MatchSpec(s)._match_spec for s in change.requested_specs]
    unfinished = envmeta.unfinished_change(prefix)
    if unfinished:
        reporter.warn(f"an earlier change of this env was stopped while linking "
                      f"({unfinished.get('cmd', '?')}); this change completes the env")
    envmeta.begin_change(prefix)
    try:
        asyncio.run(rattler_install(list(change.records), target_prefix=prefix,
                                    installed_packages=before_records, platform=None,
                                    show_progress=False, requested_specs=specs))
    except Exception as exc:
        restored = _roll_back(prefix, before_records, existed, reporter)
        if restored and prefix.exists():
            envmeta.end_change(prefix)
        raise RecipegenError(
            f"linking the packages into {prefix} failed: {exc}",
            hint=("the env was put back as it was; " if restored else "")
            + "check the channels, disk space and permissions, then try again") from exc
    records = envmeta.complete(prefix, change.requested_specs, change.bytecode_cache)
    envmeta.record_provenance(prefix, change.recipe_dirs, records)
    after = {dist_str(r) for r in records}
    History(prefix).record_change(before, after, cmd=["recipegen", *sys.argv[1:]],
                                  update_specs=change.update_specs,
                                  remove_specs=change.remove_specs,
                                  tool_version=__version__)
    protect.after_change(prefix, skip=not change.protect)
    envmeta.end_change(prefix)


def _roll_back(prefix: Path, before: list, existed: bool, reporter) -> bool:
    """Link the package set of before the change again; False if that failed too."""
    from rattler import MatchSpec
    from rattler import install as rattler_install

    specs = [MatchSpec(s)._match_spec for r in before for s in r.requested_specs]
    try:
        asyncio.run(rattler_install(before, target_prefix=prefix,
                                    installed_packages=_installed_records(prefix),
                                    show_progress=False, requested_specs=specs))
    except Exception as exc:  # the env is now part old, part new: say exactly that
        reporter.warn(f"could not put {prefix} back as it was ({exc}); run the same "
                      "command again to finish the change")
        return False
    if not existed:
        import shutil  # a failed change only

        shutil.rmtree(prefix, ignore_errors=True)
    return True


# -- removing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """What ``recipegen remove`` will do, decided from the records alone."""

    remove: tuple[str, ...]  # conda names asked for
    pruned: tuple[str, ...]  # dependencies nothing else needs any more (--prune)
    broken: dict[str, tuple[str, ...]]  # with --force: package → dependents left without it
    keep: tuple  # PrefixRecords that stay
    requested_specs: tuple[str, ...]
    remove_specs: tuple[str, ...]

    @property
    def gone(self) -> tuple[str, ...]:
        return tuple(sorted({*self.remove, *self.pruned}))


def _depends_names(record) -> set[str]:
    names = set()
    for dep in record.depends:
        name = dep.split()[0].split("[")[0]
        if not name.startswith("__"):
            names.add(name)
    return names


def plan_removal(prefix: Path, names: list[str], *, prune: bool = False,
                 force: bool = False, aliases: dict[str, str] | None = None) -> Removal:
    """Which records go, refusing to break a dependency unless ``force``.

    ``aliases`` maps other names (a package's PyPI name) to conda names.
    """
    records = {r.name.normalized: r for r in _installed_records(prefix)}
    if not records:
        raise UsageError(f"{prefix} is not a conda env with packages (no conda-meta records)",
                         hint="pass -p with an existing env")
    aliases = aliases or {}
    wanted: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        conda = name if name in records else aliases.get(name)
        if conda is None:
            raise UsageError(f"{raw} is not installed in {prefix}",
                             hint="see what is with: recipegen list -p " + str(prefix))
        if conda not in wanted:
            wanted.append(conda)
    gone = set(wanted)
    dependents = {n: sorted(o for o, r in records.items()
                            if o not in gone and n in _depends_names(r)) for n in wanted}
    needed = {n: tuple(d) for n, d in dependents.items() if d}
    if needed and not force:
        lines = [f"  {n} is needed by {', '.join(d)}" for n, d in sorted(needed.items())]
        raise RecipegenError("nothing was removed; other packages still need what you "
                             "asked to remove:\n" + "\n".join(lines),
                             hint="remove those too, or pass --force to remove anyway "
                             "(they will be broken)")
    pruned: set[str] = set()
    if prune:
        requested = {n for n, r in records.items() if _specs_of(r)}
        candidates: set[str] = set()
        frontier = set(gone)
        while frontier:  # everything the removed packages needed, transitively
            deps = set().union(*(_depends_names(records[n]) for n in frontier)) & set(records)
            frontier = deps - candidates - gone
            candidates |= frontier
        while True:
            left = [r for n, r in records.items() if n not in gone | pruned]
            used = set().union(*(_depends_names(r) for r in left))
            extra = {n for n in candidates - pruned
                     if n not in used and n not in requested and n != "python"}
            if not extra:
                break
            pruned |= extra
    keep = tuple(r for n, r in records.items() if n not in gone | pruned)
    kept_specs = [s for n, r in sorted(records.items()) if n not in gone | pruned
                  for s in _specs_of(r)]
    return Removal(tuple(wanted), tuple(sorted(pruned)), needed, keep, tuple(kept_specs),
                   remove_specs=tuple(wanted))


def _specs_of(record) -> list[str]:
    return list(record.requested_specs) or ([record.requested_spec]
                                            if record.requested_spec else [])
