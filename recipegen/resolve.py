"""PyPI dependency closure for a target, by pip's own resolver run under the target's python.

Running pip *under the target interpreter* (``install --dry-run --ignore-installed
--report``) makes every marker, ``Requires-Python`` and wheel tag decision the target's,
without a home-made resolver. recipegen's own pip is lent to that interpreter through
``PYTHONPATH``, so envs without pip resolve the same way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recipegen.errors import RecipegenError, UsageError

if TYPE_CHECKING:  # imported where used: a reused plan holds a Resolution, parses nothing
    from packaging.markers import Marker
    from packaging.requirements import Requirement


@dataclass(frozen=True)
class ResolvedDist:
    """One distribution pip picked, with the metadata that planning and recipes need."""

    name: str  # PEP 503 normalized
    display_name: str
    version: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    provides_extra: tuple[str, ...]
    requested: bool
    requested_extras: tuple[str, ...]
    metadata: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Resolution:
    """The closure of some requirements, for one marker environment."""

    requirements: tuple[str, ...]
    environment: dict[str, str] = field(compare=False, hash=False)
    dists: dict[str, ResolvedDist] = field(compare=False, hash=False)

    def requirements_of(self, name: str, extras: tuple[str, ...] = ()) -> list[Requirement]:
        """The requirements of ``name`` that apply on the target with ``extras`` active."""
        from packaging.utils import canonicalize_name

        dist = self.dists[canonicalize_name(name)]
        return active_requirements(dist.requires_dist, self.environment, extras)



class ResolutionConflict(RecipegenError):
    """pip found the requirements themselves incompatible (not a missing package)."""


def parse_requirement(text: str) -> Requirement:
    """A PEP 508 requirement from the command line, or a clear usage error."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(f"malformed requirement {text!r}: {exc}",
                         hint="write a PEP 508 requirement, e.g. 'httpx==0.28.1' or 'rich>=13'"
                         ) from exc
    if req.url:
        raise UsageError(f"direct URL requirements are not supported: {text!r}",
                         hint="name a PyPI release instead, or use 'install -e PATH'")
    return req


def active_requirements(requires_dist: tuple[str, ...] | list[str], env: dict[str, str],
                        extras: tuple[str, ...] = ()) -> list[Requirement]:
    """Requirements whose markers hold in ``env`` for the base package or any active extra."""
    from packaging.requirements import Requirement

    active: list[Requirement] = []
    for text in requires_dist:
        req = Requirement(text)
        if req.marker is None or _marker_holds(req.marker, env, extras):
            active.append(req)
    return active


def _marker_holds(marker: Marker, env: dict[str, str], extras: tuple[str, ...]) -> bool:
    return any(marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def _lend_pip(tmp: Path) -> dict[str, str]:
    """An environment for a subprocess in which ``python -m pip`` is recipegen's pip."""
    import pip

    (tmp / "pip").symlink_to(Path(pip.__file__).parent, target_is_directory=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def _pip_error(stderr: str) -> str:
    """The lines of pip's stderr that say why it failed (ERROR lines and the conflict)."""
    lines = stderr.splitlines()
    keep: list[str] = []
    capture = False
    for line in lines:
        if line.startswith("ERROR:") or "conflict is caused by" in line:
            capture = True
        if capture and line.strip():
            keep.append(line.rstrip())
    text = "\n".join(keep or lines[-15:])
    return text[-4000:]


def resolve(requirements: list[str], *, python: Path | str,
            constraints: tuple[Path, ...] = (), timeout: float = 900,
            use_cache: bool = True) -> Resolution:
    """Resolve ``requirements`` (PEP 508) for the interpreter ``python`` with pip.

    ``use_cache=False`` keeps pip from writing its HTTP cache (for dry runs).
    Raises RecipegenError with pip's own explanation when there is no solution.
    """
    parsed = [parse_requirement(r) for r in requirements]
    if not parsed:
        raise UsageError("nothing to resolve")
    with tempfile.TemporaryDirectory(prefix="recipegen-resolve-") as tmpdir:
        tmp = Path(tmpdir)
        report = tmp / "report.json"
        cmd = [str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--report", str(report), "--quiet", "--progress-bar", "off"]
        for c in constraints:
            cmd += ["--constraint", str(c)]
        cmd += [str(r) for r in parsed]
        env = _lend_pip(tmp)
        if not use_cache:
            env["PIP_NO_CACHE_DIR"] = "1"
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise RecipegenError(f"pip's resolver did not finish within {timeout:.0f} s",
                                 hint="check PyPI's reachability and try again") from exc
        if proc.returncode != 0:
            conflict = "ResolutionImpossible" in proc.stderr or "conflicting dependencies" \
                in proc.stderr
            raise (ResolutionConflict if conflict else RecipegenError)(
                "pip could not resolve " + ", ".join(map(str, parsed)) + ":\n"
                + _pip_error(proc.stderr),
                hint="check the names, versions and extras; pip's reason is above",
            )
        data = json.loads(report.read_text())
    from packaging.utils import canonicalize_name

    dists: dict[str, ResolvedDist] = {}
    for item in data["install"]:
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        dists[name] = ResolvedDist(
            name=name,
            display_name=meta["name"],
            version=meta["version"],
            requires_dist=tuple(meta.get("requires_dist") or ()),
            requires_python=meta.get("requires_python"),
            provides_extra=tuple(canonicalize_name(e) for e in meta.get("provides_extra") or ()),
            requested=bool(item.get("requested")),
            requested_extras=tuple(item.get("requested_extras") or ()),
            metadata={k: meta.get(k) for k in ("summary", "license", "license_expression",
                                                "home_page", "project_url", "classifier")},
        )
    _check_extras(parsed, dists)
    return Resolution(tuple(str(r) for r in parsed), data["environment"], dists)


def _extras_in_markers(requires_dist: tuple[str, ...]) -> set[str]:
    """Extras named in markers: old metadata lists them only there, not in Provides-Extra."""
    from packaging.utils import canonicalize_name

    found = re.findall(r"""extra\s*==\s*['"]([^'"]+)['"]""", " ".join(requires_dist))
    return {canonicalize_name(e) for e in found}


def _check_extras(requested: list[Requirement], dists: dict[str, ResolvedDist]) -> None:
    """pip only warns about an unknown extra; for an install that is an error."""
    from packaging.utils import canonicalize_name

    for req in requested:
        dist = dists.get(canonicalize_name(req.name))
        if dist is None:
            continue
        provided = set(dist.provides_extra) | _extras_in_markers(dist.requires_dist)
        unknown = sorted(e for e in req.extras if canonicalize_name(e) not in provided)
        if unknown:
            known = ", ".join(sorted(provided)) or "none"
            raise UsageError(
                f"{dist.display_name} {dist.version} has no extra {', '.join(unknown)!s}",
                hint=f"its extras are: {known}",
            )
