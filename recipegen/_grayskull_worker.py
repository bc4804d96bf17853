"""Runs grayskull for one sdist in a throw-away process; see ``recipegen.upstream``.

grayskull executes the sdist's ``setup.py`` in-process (it chdirs, edits ``sys.path``,
pip-installs that script's imports, prints a lot), so it runs here, in a child that the
parent can kill as a process group. Before it runs, grayskull is patched to work on this
machine and to be faithful to the exact sdist the caller chose:

- every conda package counts as available (recipegen decides availability itself);
- PyPI metadata comes from ``/pypi/<name>/json`` (the mirror 404s on the per-version URL);
  that ``info`` block describes the *latest* release, so for any other version the
  release's own core metadata (a wheel's ``METADATA``, else the sdist's ``PKG-INFO``) is
  used instead;
- the sdist is the caller's URL, checked against the caller's sha256, downloaded once;
- the sdist's root ``setup.py`` / ``setup.cfg`` / ``pyproject.toml`` win over nested
  sample files;
- license lookups stay offline (spdx.org, opensource.org and GitHub are unreachable here);
- every HTTP request gets a timeout, and pip gets a short one;
- pip installs of ``setup.py`` imports can be reused across runs (``pip_target_dir``).

Protocol: one JSON request on stdin; one JSON answer on the original stdout. Everything
else written to fd 1 or 2 (by grayskull, setup.py, pip) goes to stderr, which the parent
keeps as the log.
"""

from __future__ import annotations

import contextlib
import glob as globmod
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HTTP_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds for every requests call
PIP_TIMEOUT_S = "20"  # pip's per-socket timeout; this machine's default is 180 s
SELECTOR_RE = re.compile(r"#\s*\[(.*)\]")
LICENSE_SENTINELS = frozenset({"Other", "IT-WAS-NOT-POSSIBLE-TO-RECOVER-LICENCE"})
LICENSE_FILE_SENTINEL = "PLEASE_ADD_LICENSE_FILE"
# Directories whose license files belong to test data, not to the package.
SAMPLE_DIR_RE = re.compile(
    r"^(tests?|testing|tests?[_-].+|.+[_-]tests?|samples?|examples?|fixtures?)$", re.I
)


@dataclass(frozen=True)
class Request:
    """What the parent asks for."""

    name: str
    version: str
    sdist_url: str
    sha256: str
    workdir: str
    pypi_url: str = "https://pypi.org/pypi"
    pip_target_dir: str | None = None  # persistent per-dependency pip --target dirs
    pip_cache_dir: str | None = None


@dataclass
class State:
    """What the patches learn while grayskull runs, reported alongside the recipe."""

    request: Request
    sdist_path: Path | None = None
    release_info: dict[str, Any] = field(default_factory=dict)
    metadata_source: str = ""
    pip_installs: list[dict[str, Any]] = field(default_factory=list)
    setup_root: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


STATE: State | None = None


def _state() -> State:
    assert STATE is not None, "worker state used before main() set it"
    return STATE


# --------------------------------------------------------------------------- network


def _http_get(url: str) -> bytes:
    """GET with a timeout; ``file://`` is allowed so tests can serve local sdists."""
    import requests

    if url.startswith("file:"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)).read_bytes()
    response = requests.get(url, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.content


def _download(url: str, sha256: str, dest: Path) -> Path:
    """Fetch ``url`` to ``dest`` and refuse it unless its sha256 matches."""
    data = _http_get(url)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise RuntimeError(f"sha256 mismatch for {url}: expected {sha256}, got {digest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def _filename(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(url).path.rsplit("/", 1)[-1])


def _add_default_timeouts() -> None:
    """Safety net: no requests call made by grayskull may wait forever."""
    import requests

    original = requests.Session.request

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = HTTP_TIMEOUT
        return original(self, method, url, *args, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign]


# ----------------------------------------------------------------- release metadata


def _core_metadata_info(dist: Any) -> dict[str, Any]:
    """PyPI's JSON ``info`` fields for one release, rebuilt from its core metadata.

    Follows warehouse: ``project_urls`` gets ``Homepage``/``Download`` from the
    ``Home-page``/``Download-URL`` fields, then the ``Project-URL`` entries.
    """
    urls: dict[str, str] = {}
    if dist.home_page:
        urls["Homepage"] = dist.home_page
    if dist.download_url:
        urls["Download"] = dist.download_url
    for entry in dist.project_urls or ():
        label, _, url = entry.partition(",")
        urls[label.strip()] = url.strip()
    return {
        "name": dist.name,
        "version": dist.version,
        "summary": dist.summary or None,
        "description": dist.description or None,
        "description_content_type": dist.description_content_type or None,
        "home_page": dist.home_page or None,
        "download_url": dist.download_url or None,
        "license": dist.license or None,
        "license_expression": getattr(dist, "license_expression", None) or None,
        "requires_dist": list(dist.requires_dist) or None,
        "requires_python": dist.requires_python or None,
        "project_urls": urls or None,
        "provides_extra": list(getattr(dist, "provides_extras", ()) or ()) or None,
        "classifiers": list(dist.classifiers or ()),
        "keywords": dist.keywords or None,
        "author": dist.author or None,
        "author_email": dist.author_email or None,
    }


def _release_info_from_files(files: list[dict[str, Any]], json_url: str) -> tuple[dict, str]:
    """Core metadata of one release: the smallest wheel's METADATA, else the sdist's."""
    import pkginfo

    state = _state()
    wheels = [f for f in files if f.get("packagetype") == "bdist_wheel"]
    if wheels:
        wheel = min(wheels, key=lambda f: f.get("size") or 0)
        url = urllib.parse.urljoin(json_url, wheel["url"])
        dest = Path(state.request.workdir, "wheel", wheel["filename"])
        _download(url, wheel["digests"]["sha256"], dest)
        return _core_metadata_info(pkginfo.Wheel(str(dest))), f"wheel:{wheel['filename']}"
    assert state.sdist_path is not None
    return _core_metadata_info(pkginfo.SDist(str(state.sdist_path))), "sdist:PKG-INFO"


def _release_info(request: Request) -> tuple[dict[str, Any], str]:
    """PyPI ``info`` for exactly ``request.version`` (the JSON API only has the latest's)."""
    import pkginfo
    from packaging.version import Version

    state = _state()
    if request.sdist_url.startswith("file:"):
        assert state.sdist_path is not None
        return _core_metadata_info(pkginfo.SDist(str(state.sdist_path))), "sdist:PKG-INFO"
    json_url = f"{request.pypi_url.rstrip('/')}/{request.name}/json"
    data = json.loads(_http_get(json_url))
    releases = data.get("releases") or {}
    files = releases.get(request.version)
    if files is None:
        wanted = Version(request.version)
        files = next((v for k, v in releases.items() if _same_version(k, wanted)), None)
    if files is None:
        raise RuntimeError(f"{request.name} {request.version} is not in {json_url}")
    info = dict(data["info"])
    if _same_version(info.get("version", ""), Version(request.version)):
        return info, "pypi-json-info"
    own, source = _release_info_from_files(files, json_url)
    for key in ("project_url", "package_url", "docs_url", "bugtrack_url"):
        own.setdefault(key, info.get(key))
    return own, source


def _same_version(text: str, wanted: Any) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text) == wanted
    except InvalidVersion:
        return False


def get_pypi_metadata(config: Any) -> dict[str, Any]:
    """Replaces ``grayskull.strategy.pypi.get_pypi_metadata`` (same return shape)."""
    state = _state()
    request = state.request
    start = time.monotonic()
    state.sdist_path = _download(
        request.sdist_url, request.sha256,
        Path(request.workdir, "sdist", _filename(request.sdist_url)),
    )
    info, state.metadata_source = _release_info(request)
    state.release_info = info
    state.timings["metadata_s"] = round(time.monotonic() - start, 3)
    return {
        "name": config.name,
        "version": request.version,
        "requires_dist": info.get("requires_dist") or [],
        "requires_python": info.get("requires_python"),
        "summary": info.get("summary"),
        "project_url": info.get("project_url"),
        "project_urls": info.get("project_urls") or {},
        "docs_url": info.get("docs_url"),
        "home_page": info.get("home_page"),
        "dev_url": info.get("dev_url"),
        "url": info.get("home_page"),
        "license": info.get("license"),
        "source": {"url": request.sdist_url, "sha256": request.sha256},
        "sdist_url": request.sdist_url,
    }


def download_sdist_pkg(sdist_url: str, dest: str, name: str | None = None) -> None:
    """Replaces grayskull's download: hand over the sdist fetched (and checked) above."""
    state = _state()
    if state.sdist_path is None or sdist_url != state.request.sdist_url:
        raise RuntimeError(f"grayskull asked for an unexpected sdist: {sdist_url}")
    shutil.copyfile(state.sdist_path, dest)


# ----------------------------------------------------------------- sdist root files


def _depth(path: str | Path, top: str | Path) -> int:
    return len(Path(path).relative_to(top).parts)


def search_setup_root(path_folder: str | Path) -> Path | None:
    """Replaces grayskull's: the shallowest build file wins, not the first found.

    grayskull takes the first ``setup.py`` anywhere, so an sdist without a root
    ``setup.py`` but with one in its tests or docs gets that sample executed.
    """
    found = [
        (_depth(p, path_folder), rank, p)
        for rank, name in enumerate(("setup.py", "setup.cfg", "pyproject.toml"))
        for p in Path(path_folder).rglob(name)
    ]
    if not found:
        return None
    best = min(found, key=lambda item: (item[0], item[1], str(item[2])))[2]
    _state().setup_root = str(best.relative_to(path_folder))
    return best


def _root_glob(original: Any) -> Any:
    """``glob`` whose matches come shallowest first (grayskull takes ``[0]``)."""

    def glob(pathname: str, *args: Any, **kwargs: Any) -> list[str]:
        return sorted(original(pathname, *args, **kwargs), key=lambda p: Path(p).parts.__len__())

    return glob


def _root_setup_cfg(original: Any) -> Any:
    """grayskull's ``get_setup_cfg`` reads any nested ``setup.cfg``; only the root counts."""

    def get_setup_cfg(source_path: str) -> dict:
        if not Path(source_path, "setup.cfg").is_file():
            return {}
        return original(source_path)

    return get_setup_cfg


# ----------------------------------------------------------------------- pip installs


def _pip_env() -> dict[str, str]:
    """Settings for every pip this worker starts, also setuptools' ``setup_requires``
    fetch: a short socket timeout (this machine's default is 180 s), no prompts, and the
    parent's persistent cache when it gave one."""
    env = {"PIP_DEFAULT_TIMEOUT": PIP_TIMEOUT_S, "PIP_RETRIES": "1", "PIP_NO_INPUT": "1",
           "PIP_PROGRESS_BAR": "off", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if _state().request.pip_cache_dir:
        env["PIP_CACHE_DIR"] = str(_state().request.pip_cache_dir)
    return env


def _pip_target(dep: str) -> tuple[Path, bool | None]:
    """Where ``dep`` gets installed, and what an earlier run found: True (installed
    there), False (pip found no such distribution), None (not tried)."""
    request = _state().request
    root = Path(request.pip_target_dir or Path(request.workdir, "pip-targets"))
    target = root / re.sub(r"[^a-z0-9._-]", "_", dep.lower())
    if (target / ".ok").is_file():
        return target, True
    return target, False if (target.parent / f"{target.name}.nomatch").is_file() else None


def _pip_install(dep: str, target: Path) -> tuple[bool, str]:
    """``pip install dep --target``, into a fresh dir renamed into place (runs may race).

    "No matching distribution" is remembered, as grayskull tries every non-stdlib import
    name (``yaml``, and ``tomllib``: its stdlib list stops at 3.8), each time.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", dep, f"--target={tmp}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    sys.stderr.write(proc.stdout)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        if "No matching distribution found" in proc.stdout:
            (target.parent / f"{target.name}.nomatch").write_text(proc.stdout[-2000:])
        return False, proc.stdout[-2000:]
    (tmp / ".ok").write_text(dep)
    try:
        tmp.rename(target)
    except OSError:  # another run got there first; its copy is as good
        shutil.rmtree(tmp, ignore_errors=True)
    return True, ""


def pip_install_dep(data_dist: dict, dep_name: str, pip_dir: str) -> None:
    """Replaces grayskull's: same effect on ``data_dist``, but installs are reusable.

    grayskull pip-installs every non-stdlib import of ``setup.py`` into a temp dir that
    it puts on ``sys.path``, and records the import name as a host requirement when the
    install worked. Here each dependency gets its own target dir (kept across runs
    when the parent gives ``pip_target_dir``), which is put on ``sys.path`` instead.
    """
    if not data_dist.get("setup_requires"):
        data_dist["setup_requires"] = []
    if dep_name == "pkg_resources":
        dep_name = "setuptools"
    start = time.monotonic()
    target, known = _pip_target(dep_name)
    ok, err = (known, "cached") if known is not None else _pip_install(dep_name, target)
    _state().pip_installs.append({"dep": dep_name, "ok": ok, "cached": known is not None,
                                  "seconds": round(time.monotonic() - start, 3)})
    if not ok:
        print(f"pip install {dep_name} failed:\n{err}", file=sys.stderr)
        return
    if str(target) not in sys.path:
        sys.path.append(str(target))  # grayskull restores sys.path after each setup.py run
    if dep_name.lower() not in data_dist["setup_requires"] and dep_name.lower() != "setuptools":
        data_dist["setup_requires"].append(dep_name.lower())


# ---------------------------------------------------------------------------- license


def _offline_spdx_licenses() -> list[dict[str, Any]]:
    """The SPDX list grayskull would fetch from spdx.org, from data installed here.

    Ids come from ``packaging.licenses``; full names, where known, from grayskull's own
    cached OSI list. Without this, every license named in metadata ends up
    ``IT-WAS-NOT-POSSIBLE-TO-RECOVER-LICENCE`` on this machine.
    """
    from grayskull.license.discovery import read_licence_cache
    from packaging.licenses._spdx import LICENSES

    names = {lic.get("spdx_id"): lic.get("name") for lic in read_licence_cache()}
    return [
        {"licenseId": lic["id"], "name": names.get(lic["id"]) or lic["id"],
         "isDeprecatedLicenseId": False}
        for lic in LICENSES.values()
        if not lic["deprecated"]
    ]


def _without_sample_licenses(original: Any) -> Any:
    """grayskull walks the whole sdist for license files, test samples included
    (flit-core's ``tests_core/samples/*/LICENSE`` made it "BSD-3-Clause AND Unlicense
    AND MIT"); vendored code's licenses stay."""

    def search_license_folder(path: str | Path, *args: Any, **kwargs: Any) -> list:
        found = original(path, *args, **kwargs)
        return [lic for lic in found
                if not any(SAMPLE_DIR_RE.match(part)
                           for part in Path(lic.path).relative_to(path).parts[:-1])]

    return search_license_folder


# ---------------------------------------------------------------------------- patching


def _replace_everywhere(original: Any, replacement: Any) -> None:
    """Rebind every grayskull module global that holds ``original`` (imported by name)."""
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("grayskull") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)


def patch_grayskull() -> None:
    """Make grayskull work on this machine; see the module docstring for why."""
    import functools

    import grayskull.base.factory  # imports every strategy module, to patch them all
    import grayskull.base.github as gh
    import grayskull.base.pkg_info as pkg_info
    import grayskull.cli.stdout  # noqa: F401
    import grayskull.license.discovery as discovery
    import grayskull.strategy.py_base as py_base
    import grayskull.strategy.pypi as pypi
    from grayskull.cli import CLIConfig

    CLIConfig(stdout=True)  # its chatter goes to the log the parent keeps
    _add_default_timeouts()

    def is_pkg_available(pkg_name: str, channel: str | None = None) -> bool:
        return True

    _replace_everywhere(pkg_info.is_pkg_available, is_pkg_available)
    _replace_everywhere(pypi.get_pypi_metadata, get_pypi_metadata)
    _replace_everywhere(py_base.download_sdist_pkg, download_sdist_pkg)
    _replace_everywhere(py_base.search_setup_root, search_setup_root)
    _replace_everywhere(py_base.get_setup_cfg, _root_setup_cfg(py_base.get_setup_cfg))
    _replace_everywhere(py_base.pip_install_dep, pip_install_dep)
    py_base.glob = _root_glob(globmod.glob)

    spdx = functools.lru_cache(maxsize=1)(_offline_spdx_licenses)
    _replace_everywhere(discovery.get_all_licenses_from_spdx, spdx)
    _replace_everywhere(discovery.get_opensource_license_data,
                        functools.lru_cache(maxsize=1)(discovery.read_licence_cache))
    _replace_everywhere(discovery.search_license_folder,
                        _without_sample_licenses(discovery.search_license_folder))
    _replace_everywhere(discovery.search_license_api_github, lambda *a, **k: None)
    _replace_everywhere(discovery.search_license_repo, lambda *a, **k: None)

    def no_github(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("GitHub is not reachable from recipegen's grayskull worker")

    for fn in ("get_latest_version_from_github", "handle_gh_version", "get_git_current_user"):
        if hasattr(gh, fn):
            _replace_everywhere(getattr(gh, fn), no_github)


# -------------------------------------------------------------------------- extraction


def _plain_text(value: str) -> str:
    """Undo ruamel.yaml.jinja2's escapes (``<{`` and ``<%``), as its dumper would."""
    return value.replace("<{", "{{").replace("<%", "{%")


def _selector(token: Any) -> str | None:
    """The ``[...]`` selector in the first line of a ruamel comment token."""
    if token is None or not getattr(token, "value", None):
        return None
    match = SELECTOR_RE.search(token.value.split("\n", 1)[0])
    return match.group(1).strip() if match else None


def _eol_token(node: Any, key: Any) -> Any:
    """A CommentedSeq item keeps its end-of-line comment at [0], a map value at [2]."""
    from ruamel.yaml.comments import CommentedSeq

    tokens = node.ca.items.get(key) if hasattr(node, "ca") else None
    if not tokens:
        return None
    return tokens[0] if isinstance(node, CommentedSeq) else tokens[2]


def to_plain(node: Any, path: str = "", selectors: dict[str, str] | None = None) -> Any:
    """ruamel data as JSON-able data; selectors collected by dotted path."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    elif isinstance(node, str):
        return _plain_text(str(node))
    elif node is None or isinstance(node, bool | int | float):
        return node
    else:
        return _plain_text(str(node))
    out: Any = {} if isinstance(node, dict) else []
    for key, value in items:
        sub = f"{path}.{key}" if path else str(key)
        if selectors is not None and (sel := _selector(_eol_token(node, key))):
            selectors[sub] = sel
        plain = to_plain(value, sub, selectors)
        if isinstance(out, dict):
            out[str(key)] = plain
        else:
            out.append(plain)
    return out


def _requirements(node: Any) -> list[dict[str, str | None]]:
    if not node:
        return []
    return [{"spec": _plain_text(str(item)), "selector": _selector(_eol_token(node, i))}
            for i, item in enumerate(node) if item is not None]


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _strs(node: Any) -> list[str]:
    if node is None:
        return []
    if isinstance(node, str):
        return [_plain_text(node)]
    return [_plain_text(str(x)) for x in node if x is not None]


def _opt_str(node: Any) -> str | None:
    return None if node is None else _plain_text(str(node))


def extract(recipe_yaml: Any, request: Request) -> dict[str, Any]:
    """grayskull's recipe as the fields of ``recipegen.upstream.UpstreamRecipe``."""
    state = _state()
    selectors: dict[str, str] = {}
    raw = to_plain(recipe_yaml, "", selectors)
    raw["_selectors"] = selectors
    raw["_recipegen"] = {
        "metadata_source": state.metadata_source,
        "setup_root": state.setup_root,
        "pip_installs": state.pip_installs,
        "timings": state.timings,
        "grayskull_version": importlib.metadata.version("grayskull"),
    }
    reqs = _get(recipe_yaml, "requirements") or {}
    about = _get(recipe_yaml, "about") or {}
    license_name = _opt_str(about.get("license"))
    license_files = [f for f in _strs(about.get("license_file"))
                     if f != LICENSE_FILE_SENTINEL]
    return {
        "name": request.name,
        "version": request.version,
        "sdist_url": request.sdist_url,
        "sha256": request.sha256,
        "build": _requirements(reqs.get("build")),
        "host": _requirements(reqs.get("host")),
        "run": _requirements(reqs.get("run")),
        "run_constrained": _requirements(reqs.get("run_constrained")),
        "entry_points": _strs(_get(recipe_yaml, "build", "entry_points")),
        "test_imports": _strs(_get(recipe_yaml, "test", "imports")),
        "test_commands": _strs(_get(recipe_yaml, "test", "commands")),
        "summary": _opt_str(about.get("summary")),
        "description": _opt_str(about.get("description"))
        or state.release_info.get("description"),
        "homepage": _opt_str(about.get("home")),
        "doc_url": _opt_str(about.get("doc_url")),
        "dev_url": _opt_str(about.get("dev_url")),
        "license": None if license_name in LICENSE_SENTINELS else license_name or None,
        "license_files": license_files,
        "noarch": _opt_str(_get(recipe_yaml, "build", "noarch")),
        "script": _opt_str(_get(recipe_yaml, "build", "script")),
        "raw": raw,
    }


# -------------------------------------------------------------------------------- main


def run(request: Request) -> dict[str, Any]:
    """Patch grayskull, run it for the request, return the extracted fields."""
    global STATE
    STATE = State(request=request)
    start = time.monotonic()
    tmp = Path(request.workdir, "tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    os.chdir(request.workdir)  # grayskull takes a package name that is a file for a recipe
    os.environ["TMPDIR"] = str(tmp)  # grayskull's mkdtemp()s and pip's temp files
    tempfile.tempdir = str(tmp)
    os.environ.update(_pip_env())
    patch_grayskull()
    from grayskull.base.factory import GrayskullFactory
    from grayskull.config import Configuration

    STATE.timings["import_s"] = round(time.monotonic() - start, 3)
    config = Configuration(name=request.name, version=request.version)
    recipe = GrayskullFactory.create_recipe("pypi", config)
    STATE.timings["grayskull_s"] = round(time.monotonic() - start, 3)
    STATE.timings["pip_s"] = round(sum(p["seconds"] for p in STATE.pip_installs), 3)
    os.chdir(request.workdir)  # grayskull may leave us inside the unpacked sdist
    return extract(recipe.yaml, request)


def _restore_pythonpath() -> None:
    """The parent put recipegen's checkout on PYTHONPATH for us alone: not for setup.py
    code run in-process, nor for pip."""
    original = os.environ.pop("RECIPEGEN_ORIG_PYTHONPATH", None)
    if original is None:
        return
    added = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    if original:
        os.environ["PYTHONPATH"] = original
    else:
        os.environ.pop("PYTHONPATH", None)
    if added in sys.path and added not in original.split(os.pathsep):
        sys.path.remove(added)


def main() -> None:
    """Keep fd 1 for the JSON answer alone; everything else goes to stderr."""
    _restore_pythonpath()
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    answer: dict[str, Any]
    try:
        request = Request(**json.load(sys.stdin))
        answer = {"ok": True, "recipe": run(request)}
    except BaseException as err:  # setup.py may raise SystemExit & co.
        answer = {"ok": False, "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()}
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    with os.fdopen(answer_fd, "w", encoding="utf-8") as out:
        json.dump(answer, out, default=str)  # stray ruamel scalar types as text
    os._exit(0)  # don't wait on threads or atexit hooks left by setup.py code


if __name__ == "__main__":
    main()
