"""``recipegen verify``: rebuild every locked package elsewhere and compare it with the lock.

The rebuild runs in a temporary work root (other paths, another time) from the locked
sources and recipes only, so an identical sha256 shows the package depends on nothing
but what the lock records. For a package that differs, the locked file (if the original
work root still has it) is opened and compared member by member.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from recipegen import lock as lock_mod
from recipegen.build import BuildFailed, BuildOutcome
from recipegen.fsutil import sha256_file
from recipegen.pipeline import InstallRequest, build_packages
from recipegen.progress import Reporter
from recipegen.reproducible import differences
from recipegen.workroot import WorkRoot


@dataclass(frozen=True)
class Verdict:
    """What the rebuild of one locked package gave."""

    name: str
    file_name: str
    status: Literal["identical", "differs", "failed", "not-locked"]
    locked_sha256: str | None
    rebuilt_sha256: str | None
    differences: tuple[str, ...] = ()
    error: str | None = None


def verify(lock_path: Path, work_root: Path, *, channels: tuple[str, ...] = (), jobs: int = 1,
           offline: bool = False, reporter: Reporter, keep: Path | None = None
           ) -> list[Verdict]:
    """Rebuild the lock's packages in a fresh root; one verdict per locked build.

    ``work_root`` is where the locked packages were built (their files are compared when
    a rebuild differs); ``keep`` keeps the rebuild root there instead of deleting it.
    """
    lock = lock_mod.read(lock_path)
    root = Path(tempfile.mkdtemp(prefix="recipegen-verify-")) if keep is None else keep
    try:
        req = InstallRequest(specs=(), prefix=root / "no-env", work_root=root,
                             channels=channels, jobs=jobs, offline=offline, keep_going=True)
        plan = lock_mod.plan_from_lock(lock, req, reporter, install=False)
        try:
            _plan, outcomes = build_packages(plan, req, reporter)
        except BuildFailed as exc:
            outcomes = tuple(exc.outcomes)
        originals = (WorkRoot.at(work_root).channel, lock_path.resolve().parent / "channel")
        return _verdicts(lock, outcomes, originals)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def _verdicts(lock: lock_mod.Lock, outcomes: tuple[BuildOutcome, ...],
              originals: tuple[Path, ...]) -> list[Verdict]:
    by_name = {o.name: o for o in outcomes}
    out: list[Verdict] = []
    for b in lock.builds:
        outcome = by_name.get(b.pypi_name)
        base = Verdict(b.conda_name, b.file_name, "failed", b.sha256, None)
        if outcome is None or outcome.package is None:
            out.append(replace(base, error=(outcome.error if outcome else None)
                               or "not rebuilt"))
            continue
        rebuilt = sha256_file(outcome.package)
        if b.sha256 is None:
            out.append(replace(base, status="not-locked", rebuilt_sha256=rebuilt,
                               error="the lock has no sha256 for it (it was not built)"))
            continue
        if rebuilt == b.sha256:
            out.append(replace(base, status="identical", rebuilt_sha256=rebuilt))
            continue
        candidates = [c / b.subdir / b.file_name for c in originals]
        locked_file = next((p for p in candidates
                            if p.is_file() and sha256_file(p) == b.sha256), None)
        if locked_file is not None:
            diff = tuple(differences(locked_file, outcome.package)) or (
                "the members are the same; the archive around them differs",)
        else:
            diff = ("the locked file is not at hand to compare with (looked in "
                    + ", ".join(str(c) for c in originals) + ")",)
        out.append(replace(base, status="differs", rebuilt_sha256=rebuilt, differences=diff))
    return out

