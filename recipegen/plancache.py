"""The plan of an install, kept so that the same request plans in milliseconds next time.

Planning runs pip's resolver once per round (about a second each), queries the channels
and generates recipes; even with every recipe cached that is seconds, while linking the
same packages into a new env takes a fraction of one. A saved plan is reused only when
nothing that decides it has changed:

* the **key** (:func:`plan_key`) holds the request (specs, the bytes of the constraints
  files, mapping overrides, flavour, options), the target (platform, python, the marker
  environment of the interpreter pip resolves with), the user's channels, recipegen's
  code and data (:func:`~recipegen.fingerprint.code_fingerprint`, which covers the
  mapping table), the versions of pip and grayskull, and pip's configuration (its
  config files' bytes, ``PIP_*`` variables, ``RECIPEGEN_PYPI_URL``);
* **channels** (:func:`check_channels`): what the channels offer under the plan's names
  is read again (remote channels through the gateway's HTTP cache); if it changed, every
  decision is made again, and the one difference accepted is that the local channel now
  holds the very file the plan builds;
* **PyPI** (:func:`check_pypi`): every resolved project whose version the request does
  not pin with ``==`` is fetched again, concurrently, and its release list (versions,
  files, hashes, yanked flags) compared with the one saved; for local pip sources
  (``find-links``, ``file://`` indexes) the directories' modification times are compared.
  A project pinned with ``==`` (in a spec or a constraints file) is not fetched: files
  on PyPI never change once uploaded, and ``==`` selects a release even when it is yanked
  (PEP 592), so pip's answer for it cannot change. (PyPI does allow *adding* a file to
  an old release; the saved recipe then still builds the file it names, sha256-checked.)

Any mismatch is a miss, reported with its reason, and the plan is made afresh.
``--refresh`` skips the cache. Entries live in ``WORK_ROOT/cache/plans/`` (safe to delete).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from recipegen.channels import Availability, ChannelPackage
from recipegen.errors import RecipegenError
from recipegen.fingerprint import code_fingerprint, installed_version
from recipegen.fsutil import atomic_write, sha256_if_readable
from recipegen.plan import BuildOrder, BuildStep, Decision
from recipegen.resolve import Resolution, ResolvedDist

SCHEMA = 1


# -- the key ---------------------------------------------------------------------------------


def pip_config_files(python: Path) -> list[Path]:
    """Where pip reads its configuration (``pip config debug``'s list, for Linux)."""
    home = Path.home()
    xdg_config = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    xdg_dirs = (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    files = [*(Path(d) / "pip" / "pip.conf" for d in xdg_dirs), Path("/etc/pip.conf"),
             home / ".pip" / "pip.conf", Path(xdg_config) / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    prefix = Path(python).parent.parent  # the interpreter's sys.prefix (a venv or an env)
    files.append(prefix / "pip.conf")
    return files


#: pip variables that change how pip talks and what it prints, never what it resolves.
_PIP_QUIET_VARS = {"PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_DEFAULT_TIMEOUT", "PIP_TIMEOUT",
                   "PIP_RETRIES", "PIP_PROGRESS_BAR", "PIP_DISABLE_PIP_VERSION_CHECK",
                   "PIP_NO_INPUT", "PIP_QUIET", "PIP_VERBOSE", "PIP_LOG", "PIP_NO_COLOR",
                   "PIP_ROOT_USER_ACTION"}


def pip_configuration(python: Path) -> dict:
    """What configures the resolver besides the request: pip's files and variables."""
    files = {str(p): sha256_if_readable(p) for p in pip_config_files(python) if p.is_file()}
    env = {k: v for k, v in sorted(os.environ.items())
           if (k.startswith("PIP_") and k not in _PIP_QUIET_VARS) or k == "RECIPEGEN_PYPI_URL"}
    return {"files": files, "env": env}


@functools.cache
def local_pip_sources(python: Path) -> list[Path]:
    """Local directories pip takes distributions from (``find-links``, ``file://`` indexes)."""
    import configparser  # only when pip has a configuration file

    values: list[str] = []
    for path in pip_config_files(python):
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            for option in ("find-links", "index-url", "extra-index-url"):
                if parser.has_option(section, option):
                    values.extend(parser.get(section, option).split())
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        values.extend(os.environ.get(var, "").split())
    out = []
    for value in values:
        if value.startswith("file:"):
            out.append(Path(unquote(urlparse(value).path)))
        elif "://" not in value:
            out.append(Path(value))
    return sorted(set(out))


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


#: What a key's inputs are called when a miss says which of them changed.
INPUT_NAMES = {
    "recipegen": "recipegen's code or data", "tools": "the pip or grayskull version",
    "specs": "the requirements", "constraints": "a constraints file",
    "options": "the options (mapping overrides, flavour)", "platform": "the platform",
    "python": "the target's python", "resolver": "the resolving interpreter",
    "channels": "the channels", "pip": "pip's configuration",
    "local_sources": "a local pip source directory",
}


def plan_inputs(*, specs: tuple[str, ...], constraints: tuple[Path, ...], options: dict,
                platform: str, python_version: str, resolver: Path,
                marker_environment: dict[str, str], channels: list[str]) -> dict:
    """Every input that decides a plan, apart from the channels' and PyPI's state."""
    return {
        "schema": SCHEMA,
        "recipegen": code_fingerprint(),
        "tools": {d: installed_version(d) for d in ("pip", "grayskull")},
        "specs": list(specs),
        "constraints": [sha256_if_readable(c) for c in constraints],
        "options": options,
        "platform": platform,
        "python": python_version,
        # The interpreter by what it is (its env and its real binary), not the name it was
        # started by: .venv/bin/python and .venv/bin/python3.11 resolve alike.
        "resolver": {"prefix": str(Path(resolver).parent.parent),
                     "binary": os.path.realpath(resolver), "environment": marker_environment},
        "channels": channels,
        "pip": pip_configuration(resolver),
        "local_sources": {str(p): _mtime(p) for p in local_pip_sources(resolver)},
    }


def plan_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def why_missing(directory: Path, inputs: dict) -> str:
    """Which input differs from the newest saved plan of the same requirements."""
    candidates = sorted(directory.glob("*.json"), key=_mtime_or_zero, reverse=True)
    for path in candidates[:20]:
        try:
            saved = json.loads(path.read_text()).get("inputs") or {}
        except (OSError, ValueError):
            continue
        if saved.get("specs") != inputs["specs"]:
            continue
        changed = [INPUT_NAMES.get(k, k) for k in sorted(inputs) if saved.get(k) != inputs[k]]
        if changed:
            return "changed since the last plan: " + ", ".join(changed)
    return "no saved plan for this request"


def _mtime_or_zero(path: Path) -> int:
    return _mtime(path) or 0


# -- what the request pins -------------------------------------------------------------------


def _exact(req) -> str | None:  # a packaging Requirement
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") \
            and not specs[0].version.endswith(".*"):
        return specs[0].version
    return None


def pinned_versions(specs: tuple[str, ...], constraints: tuple[Path, ...]) -> dict[str, str]:
    """Projects the request pins to one version with ``==``: in a spec or a constraint.

    A constraints line that is not a plain requirement (an option, ``-r``, a URL) pins
    nothing, so its projects are checked on PyPI like unpinned ones.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    lines = list(specs)
    for path in constraints:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        lines.extend(line.split(" #", 1)[0].strip() for line in text.splitlines())
    pins: dict[str, str] = {}
    for line in lines:
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        version = _exact(req)
        if version is not None and req.marker is None and not req.url:
            pins[canonicalize_name(req.name)] = version
    return pins


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


# -- PyPI state ------------------------------------------------------------------------------


def release_list(project: dict) -> str:
    """A hash of every release of a project: versions, files, hashes, yanked flags."""
    releases = []
    for version, files in sorted((project.get("releases") or {}).items()):
        releases.append([version, sorted(
            [f.get("filename"), (f.get("digests") or {}).get("sha256"), bool(f.get("yanked")),
             f.get("requires_python")] for f in files)])
    return hashlib.sha256(json.dumps(releases).encode()).hexdigest()


@dataclass(frozen=True)
class Project:
    """One resolved project and how to tell whether pip could answer differently now."""

    name: str
    version: str
    pinned: bool
    releases: str | None  # release_list() when saved; None when pinned
    local: dict[str, int | None]  # local pip source dir → mtime when saved


def _local_state(name: str, sources: list[Path]) -> dict[str, int | None]:
    out = {}
    for source in sources:
        for candidate in (source / name, source):  # a simple index's project dir; find-links
            if candidate.is_dir():
                out[str(candidate)] = _mtime(candidate)
                break
    return out


def projects_of(resolution: Resolution | None, decisions: dict[str, Decision],
                pins: dict[str, str], pypi, sources: list[Path], jobs: int = 8) -> list[Project]:
    """Every project the plan rests on, with its PyPI state now (fetched concurrently)."""
    wanted: dict[str, set[str]] = {}
    if resolution is not None:
        for n, d in resolution.dists.items():
            wanted.setdefault(n, set()).add(d.version)
    for d in decisions.values():  # second versions of host-only islands, too
        wanted.setdefault(d.name, set()).add(d.version)
    unpinned = sorted(n for n, versions in wanted.items()
                      if not (n in pins and all(_same_version(pins[n], v) for v in versions)))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        lists = dict(zip(unpinned, pool.map(lambda n: release_list(pypi.project(n)), unpinned),
                         strict=True))
    return [Project(n, ",".join(sorted(v)), n not in lists, lists.get(n),
                    _local_state(n, sources)) for n, v in sorted(wanted.items())]


def check_pypi(projects: list[Project], make_client, sources: list[Path],
               jobs: int = 8) -> str | None:
    """Why pip might resolve differently now (a reason), or None if it cannot."""
    for p in projects:
        if _local_state(p.name, sources) != p.local:
            return f"the local pip source of {p.name} changed"
    todo = [p for p in projects if not p.pinned]
    if not todo:
        return None

    def fetch(p: Project) -> str | None:
        client = make_client()  # one session per thread
        try:
            now = release_list(client.project(p.name))
        except RecipegenError as exc:
            return f"PyPI could not be asked about {p.name} ({exc.message})"
        return None if now == p.releases else f"{p.name} has new or changed releases on PyPI"

    from concurrent.futures import ThreadPoolExecutor  # a plan with unpinned projects

    with ThreadPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
        for reason in pool.map(fetch, todo):
            if reason:
                return reason
    return None


# -- channels --------------------------------------------------------------------------------


def availability_digest(availability: Availability) -> str:
    """A hash of every package the channels offer under the plan's names.

    ``decide`` is a function of this and of what the plan saved, so an unchanged digest
    means unchanged decisions, without deciding again.
    """
    rows = sorted([p.name, p.channel.rstrip("/"), p.subdir, p.file_name, p.version, p.build,
                   p.sha256 or ""] for pkgs in availability.packages.values() for p in pkgs)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def built_file(decision: Decision, recipe) -> str | None:
    if decision.action != "build" or recipe is None:
        return None
    spec = recipe.spec
    return f"{spec.name}-{spec.version}-{spec.build_string}.conda"


def check_channels(decisions: dict[str, Decision], recipes: dict, availability: Availability,
                   local_channel: str) -> str | None:
    """Why the channels would now decide differently (a reason), or None.

    A package the plan builds that the local channel now holds, as exactly that file, is no
    change: that is the plan's own output.
    """
    from packaging.specifiers import SpecifierSet

    from recipegen.plan import decide

    for key, old in sorted(decisions.items()):
        new = decide(old.name, old.version, old.conda_name, SpecifierSet(old.specifier),
                     availability, requested=old.requested)
        if new.action == old.action == "build":
            continue
        if new.action == old.action == "reuse":
            a, b = old.channel_package, new.channel_package
            if (a.channel, a.subdir, a.file_name) == (b.channel, b.subdir, b.file_name) \
                    and (a.sha256 is None or b.sha256 is None or a.sha256 == b.sha256):
                continue
            return f"{key}: the channels now offer {b.file_name} from {b.channel}"
        own = built_file(old, recipes.get(key))
        pkg = new.channel_package
        if (old.action == "build" and pkg is not None and pkg.file_name == own
                and pkg.channel.rstrip("/") == local_channel.rstrip("/")):
            continue
        return f"{key}: now {new.action} ({new.reason})"
    return None


# -- saving and loading ----------------------------------------------------------------------


def _dist_json(d: ResolvedDist) -> dict:
    return asdict(d)


def _dist_from(d: dict) -> ResolvedDist:
    return ResolvedDist(**{**d, "requires_dist": tuple(d["requires_dist"]),
                           "provides_extra": tuple(d["provides_extra"]),
                           "requested_extras": tuple(d["requested_extras"])})


def _decision_json(d: Decision) -> dict:
    return asdict(d)


def _decision_from(d: dict) -> Decision:
    pkg = d.get("channel_package")
    return Decision(**{**d, "channel_package": ChannelPackage(
        **{**pkg, "depends": tuple(pkg["depends"])}) if pkg else None})


@dataclass(frozen=True)
class SavedPlan:
    """The parts of an InstallPlan that do not depend on the env, and how to check them."""

    python_version: str
    decisions: dict[str, Decision]
    recipes: dict  # key → GeneratedRecipe
    order: BuildOrder
    requested: tuple[str, ...]
    pins: tuple[str, ...]
    resolution: Resolution | None
    projects: tuple[Project, ...]
    availability: str = ""  # availability_digest() of the channels when last checked


def to_json(saved: SavedPlan, key: str, inputs: dict) -> str:
    from recipegen.recipecache import recipe_to_json

    res = saved.resolution
    return json.dumps({
        "schema": SCHEMA,
        "key": key,
        "inputs": inputs,
        "python_version": saved.python_version,
        "decisions": {k: _decision_json(d) for k, d in saved.decisions.items()},
        "recipes": {k: recipe_to_json(r) for k, r in saved.recipes.items()},
        "order": {"steps": [[s.name, sorted(s.after), s.skip_tests] for s in saved.order.steps],
                  "broken_cycles": [list(c) for c in saved.order.broken_cycles]},
        "requested": list(saved.requested),
        "pins": list(saved.pins),
        "resolution": None if res is None else {
            "requirements": list(res.requirements), "environment": res.environment,
            "dists": {n: _dist_json(d) for n, d in res.dists.items()}},
        "projects": [asdict(p) for p in saved.projects],
        "availability": saved.availability,
    })


def from_json(text: str, key: str) -> SavedPlan | None:
    from recipegen.recipecache import recipe_from_json

    try:
        data = json.loads(text)
        if data.get("schema") != SCHEMA or data.get("key") != key:
            return None
        res = data["resolution"]
        resolution = None if res is None else Resolution(
            tuple(res["requirements"]), res["environment"],
            {n: _dist_from(d) for n, d in res["dists"].items()})
        order = data["order"]
        return SavedPlan(
            python_version=data["python_version"],
            decisions={k: _decision_from(d) for k, d in data["decisions"].items()},
            recipes={k: recipe_from_json(r) for k, r in data["recipes"].items()},
            order=BuildOrder(tuple(BuildStep(n, frozenset(a), bool(s))
                                   for n, a, s in order["steps"]),
                             tuple(tuple(c) for c in order["broken_cycles"])),
            requested=tuple(data["requested"]),
            pins=tuple(data["pins"]),
            resolution=resolution,
            projects=tuple(Project(**p) for p in data["projects"]),
            availability=data["availability"],
        )
    except (ValueError, KeyError, TypeError):
        return None  # damaged or from another layout: plan afresh


def path_for(directory: Path, key: str) -> Path:
    return directory / f"{key}.json"


def load(directory: Path, key: str) -> SavedPlan | None:
    try:
        text = path_for(directory, key).read_text()
    except OSError:
        return None
    return from_json(text, key)


def replace_recipes(directory: Path, key: str, recipes: dict, pins: tuple[str, ...]) -> None:
    """Keep other recipes (and pins on their builds) in the plan saved under ``key``: the
    ones that were built."""
    from recipegen.recipecache import recipe_to_json

    path = path_for(directory, key)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # no plan kept: nothing to correct
    data["recipes"] = {k: recipe_to_json(r) for k, r in recipes.items()}
    data["pins"] = list(pins)
    atomic_write(path, json.dumps(data))


def save(directory: Path, inputs: dict, saved: SavedPlan) -> str:
    """Keep ``saved`` under the key of ``inputs``; returns the key."""
    key = plan_key(inputs)
    atomic_write(path_for(directory, key), to_json(saved, key, inputs))
    return key


def note_availability(directory: Path, key: str, digest: str) -> None:
    """Record what the channels offer now in a saved plan whose decisions still hold."""
    path = path_for(directory, key)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if data.get("availability") != digest:
        data["availability"] = digest
        atomic_write(path, json.dumps(data))


