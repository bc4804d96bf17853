"""Solve and link the env with py-rattler.

``rattler.install`` makes the prefix hold exactly the records it is given, so an install
is always "solve everything that should be there, then link that set": the user's new
specs plus every spec they asked for before, with the installed packages as locked
preferences so nothing moves without a reason.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from recipegen.errors import RecipegenError
from recipegen.target import Target


@dataclass(frozen=True)
class Change:
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
        raise RecipegenError(
            "the final solve found no way to install " + ", ".join(specs) + ":\n"
            + readable_solver_error(str(exc)),
            hint="nothing was changed; relax a version pin, or add a channel with -c",
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
    """The solver's explanation, without its tree-drawing noise."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join("  " + line for line in lines[:40])


def link(target: Target, solution: Solution) -> None:
    """Make the prefix hold exactly ``solution.records``; record the requested specs."""
    from rattler import MatchSpec
    from rattler import install as rattler_install

    try:
        target.prefix.mkdir(parents=True, exist_ok=True)
        if not os.access(target.prefix, os.W_OK):
            raise PermissionError(f"{target.prefix} is not writable")
    except OSError as exc:
        raise RecipegenError(f"cannot write to the prefix {target.prefix}: {exc}",
                             hint="choose a prefix you can write with -p") from exc
    asyncio.run(rattler_install(
        list(solution.records),
        target_prefix=target.prefix,
        installed_packages=_installed_records(target.prefix),
        platform=None,
        show_progress=False,
        requested_specs=[MatchSpec(s)._match_spec for s in solution.requested_specs],
    ))
