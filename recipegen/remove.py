"""``recipegen remove``: take packages out of an env and leave every other one as it is.

The new package set is the installed one without the removed records (and, with
``--prune``, without the dependencies only they needed); a package that a remaining one
depends on is not removed without ``--force``, and rattler links exactly that set. Names may be
conda names, or the PyPI names of packages recipegen built; an editable project (which
pip installed) is uninstalled with pip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recipegen import envmeta, locks
from recipegen.errors import UsageError
from recipegen.install import EnvChange, Removal, apply, plan_removal
from recipegen.progress import Reporter


@dataclass(frozen=True)
class RemoveResult:
    removal: Removal | None
    pip_removed: tuple[str, ...]
    dry_run: bool


def _aliases(prefix: Path) -> dict[str, str]:
    """PyPI names (as typed, normalized) of the conda packages recipegen built."""
    from packaging.utils import canonicalize_name

    out = {}
    for record in envmeta.read_records(prefix):
        origin = envmeta.provenance(prefix, record)
        if origin is not None:
            out[canonicalize_name(origin.pypi_name)] = record["name"]
            out[origin.pypi_name.lower()] = record["name"]
    return out


def remove(prefix: Path, names: list[str], *, prune: bool = False, force: bool = False,
           dry_run: bool = False, reporter: Reporter) -> RemoveResult:
    from packaging.utils import canonicalize_name

    if not names:
        raise UsageError("nothing to remove: name at least one package")
    if not (prefix / "conda-meta").is_dir():
        raise UsageError(f"{prefix} is not a conda env (no conda-meta/)",
                         hint="pass -p with an existing env")
    with locks.prefix_locked(prefix, reporter.info):
        records = {r["name"] for r in envmeta.read_records(prefix)}
        aliases = _aliases(prefix)
        pip_dists = {canonicalize_name(d.name): d for d in envmeta.pip_distributions(prefix)}
        by_pip = [n for n in names if n.lower() not in records
                  and canonicalize_name(n) not in aliases and canonicalize_name(n) in pip_dists]
        conda_names = [n for n in names if n not in by_pip]
        removal = None
        if conda_names:
            removal = plan_removal(prefix, conda_names, prune=prune, force=force,
                                   aliases={**aliases, **{canonicalize_name(n): n
                                                          for n in records}})
        if dry_run:
            return RemoveResult(removal, tuple(by_pip), True)
        if removal is not None and removal.broken:
            for name, dependents in sorted(removal.broken.items()):
                reporter.warn(f"--force: {', '.join(dependents)} still need {name} and "
                              "will not work without it")
        for name in by_pip:
            from recipegen.editable import pip_uninstall

            reporter.phase("remove", f"{name} (installed by pip) with pip")
            pip_uninstall(prefix, name)
        if removal is not None:
            reporter.phase("remove", ", ".join(removal.gone) + f" from {prefix}")
            apply(prefix, EnvChange(records=removal.keep,
                                    requested_specs=removal.requested_specs,
                                    remove_specs=removal.remove_specs), reporter)
    return RemoveResult(removal, tuple(by_pip), False)
