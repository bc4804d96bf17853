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


def lend_pip(tmp: Path) -> dict[str, str]:
    """An environment in which ``python -m pip`` is recipegen's own pip (envs need none),
    and ``python -m _recipegen_pip_guard`` is that pip refusing unsafe sdist members (see
    :mod:`recipegen._pip_guard`).

    The target's own ``PYTHON*``/``CONDA*`` settings are dropped, and no bytecode is
    written: asking an env's python a question must not change the env.
    """
    import pip

    from recipegen import _pip_guard

    for name, source in (("pip", Path(pip.__file__).parent),
                         ("_recipegen_pip_guard.py", Path(_pip_guard.__file__))):
        if not (tmp / name).exists():
            (tmp / name).symlink_to(source, target_is_directory=source.is_dir())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA"))}
    env.update(PYTHONPATH=str(tmp), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def _pip_error(output: str) -> str:
    """The lines of pip's output that say why it failed (ERROR lines and the conflict)."""
    lines = [line for line in output.splitlines() if not line.startswith(_PIP_CHATTER)]
    keep: list[str] = []
    capture = False
    for line in lines:
        if line.startswith("ERROR:") or "conflict is caused by" in line:
            capture = True
        if capture and line.strip():
            keep.append(line.rstrip())
    text = "\n".join(keep or lines[-15:])
    return _short_version_lists(text)[-4000:]


#: pip's progress lines, never part of an explanation.
_PIP_CHATTER = ("Collecting ", "Downloading ", "Looking in ", "  Downloading ", "Obtaining ",
                "  Using cached ", "Using cached ", "  Preparing ", "  Getting requirements",
                "  Installing build ", "Would install ", "  File was already ")


def _short_version_lists(text: str, keep: int = 12) -> str:
    """pip lists every version a project ever had; the newest few say enough."""

    def shorten(match: re.Match) -> str:
        versions = [v.strip() for v in match.group(1).split(",")]
        if len(versions) <= keep:
            return match.group(0)
        return f"(from versions: ..., {', '.join(versions[-keep:])})"

    return re.sub(r"\(from versions: ([^)]*)\)", shorten, text)


def _indexes(output: str) -> list[str]:
    """The index URLs pip says it looks in (credentials left out)."""
    for line in output.splitlines():
        if line.startswith("Looking in indexes:"):
            urls = [u.strip() for u in line.split(":", 1)[1].split(",") if u.strip()]
            return [re.sub(r"//[^/@]*@", "//", u) for u in urls]
    return ["https://pypi.org/simple/"]


def _probe(index: str, name: str) -> str | None:
    """What the index answers for ``name``: why pip found no versions, if it is the index."""
    import requests
    from packaging.utils import canonicalize_name

    from recipegen.pypi import http_timeout

    if not index.startswith(("http://", "https://")):
        return None  # a local folder: pip says itself when it is not there
    url = index.rstrip("/") + "/" + canonicalize_name(name) + "/"
    try:
        resp = requests.get(url, timeout=min(http_timeout(), 15.0),
                            verify=os.environ.get("PIP_CERT") or True)
    except requests.RequestException as exc:
        reason = str(exc.__context__ or exc).split(": ", 1)[-1][:200]
        return f"the package index {index} cannot be reached ({type(exc).__name__}: {reason})"
    if resp.status_code >= 500:
        return f"the package index {index} answers HTTP {resp.status_code} for {url}"
    return None


def _explain(output: str, parsed: list[Requirement]) -> RecipegenError:
    """One clear error for a failed resolution, with pip's own words below it."""
    from packaging.requirements import Requirement

    reason = _pip_error(output)
    asked = ", ".join(map(str, parsed))
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        return ResolutionConflict(
            f"the requirements conflict ({asked}); pip's explanation:\n{reason}",
            hint="relax or drop one of the conflicting requirements (see 'The conflict is "
            "caused by' above)")
    if "DO NOT MATCH THE HASHES" in output:
        return RecipegenError(
            "a file from the package index does not match the sha256 the index gives for "
            f"it, so pip refused it (resolving {asked}):\n{reason}",
            hint="the file was changed or corrupted on its way; nothing in it was run")
    refused = re.search(r"ERROR: (refusing \S+: member .*?); the archive", output)
    if refused:
        return RecipegenError(
            refused.group(1) + " (found while resolving " + asked + ")",
            hint="the archive could write outside its folder when unpacked; nothing in it "
            "was run (report it to the package's maintainers)")
    missing = re.findall(r"(?m)No matching distribution found for (.+?)\s*$", output)
    if missing:
        name = Requirement(missing[0]).name if _parses(missing[0]) else missing[0]
        for index in _indexes(output):
            trouble = _probe(index, name)
            if trouble:
                return RecipegenError(
                    f"{trouble}, so {missing[0]} cannot be resolved",
                    hint="check the network and pip's index settings (PIP_INDEX_URL, "
                    "pip.conf), then run again")
        versions = re.search(rf"requirement {re.escape(missing[0])}"
                             r"( \(from (?!versions:)[^)]*\))? \(from versions: ([^)]*)\)", output)
        needed_by = f" (needed by {versions.group(1)[7:-1]})" if versions and versions.group(1) \
            else ""
        if versions and versions.group(2).strip() == "none":
            return RecipegenError(
                f"no package named {name!r}{needed_by} on the package index "
                f"({', '.join(_indexes(output))}), or none with files for this python",
                hint="check the spelling of the name")
        return RecipegenError(
            f"no release of {name}{needed_by} matches {missing[0]!r} for this python:\n"
            f"{reason}", hint="ask for a version from the list above")
    return RecipegenError(f"pip could not resolve {asked}:\n{reason}",
                          hint="check the names, versions and extras; pip's reason is above")


def _parses(text: str) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def resolve(requirements: list[str], *, python: Path | str,
            constraints: tuple[Path, ...] = (), timeout: float = 900,
            use_cache: bool = True, log_dir: Path | None = None) -> Resolution:
    """Resolve ``requirements`` (PEP 508) for the interpreter ``python`` with pip.

    ``use_cache=False`` keeps pip from writing its HTTP cache (for dry runs). pip runs
    in its own process group, killed with whatever it started (a build backend preparing
    metadata) after ``timeout`` seconds. Raises RecipegenError with pip's own explanation
    when there is no solution; the whole pip output of a failure is kept in
    ``log_dir/resolve.log`` when ``log_dir`` is given.
    """
    import tempfile

    from recipegen import procgroup
    from recipegen.pypi import http_timeout, http_tries

    parsed = [parse_requirement(r) for r in requirements]
    if not parsed:
        raise UsageError("nothing to resolve")
    with tempfile.TemporaryDirectory(prefix="recipegen-resolve-") as tmpdir:
        tmp = Path(tmpdir)
        report = tmp / "report.json"
        cmd = [str(python), "-m", "_recipegen_pip_guard", "install", "--dry-run",
               "--ignore-installed", "--report", str(report), "--progress-bar", "off",
               "--timeout", f"{http_timeout():g}", "--retries", str(http_tries() - 1)]
        for c in constraints:
            cmd += ["--constraint", str(c)]
        cmd += [str(r) for r in parsed]
        env = lend_pip(tmp)
        if not use_cache:
            env["PIP_NO_CACHE_DIR"] = "1"
        log = tmp / "pip.log"
        done = procgroup.run(cmd, timeout=timeout, log=log, env=env, cwd=tmp)
        if done.returncode != 0:
            kept = _keep_log(log, log_dir)
            if done.timed_out:
                raise RecipegenError(
                    f"pip's resolver did not finish within {timeout:g} s for "
                    + ", ".join(map(str, parsed))
                    + " (killed with every process it started)",
                    hint="a build backend may hang while pip prepares metadata, or the index "
                    "is slow; see the log, raise --resolve-timeout if it is only slow",
                    log=kept)
            output = procgroup.tail(log, 200_000)
            error = _explain(output, parsed)
            error.log = kept
            raise error
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


def _keep_log(log: Path, log_dir: Path | None) -> str | None:
    import shutil

    if log_dir is None:
        return None
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, log_dir / "resolve.log")
    except OSError:
        return None
    return str(log_dir / "resolve.log")


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
