"""One PyPI release → one v1 recipe (local flavour), from grayskull's data and PyPI metadata.

grayskull reads the sdist (host requirements, entry points, imports, licence files); the
run requirements come from the release's own ``Requires-Dist`` as pip resolved it, with
each marker evaluated for the target, because grayskull drops or mangles markers. Names
are remapped to conda names and PEP 440 specifiers translated to conda specs here.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from recipegen import licenses
from recipegen.archive import (
    SdistInfo,
    choose_imports,
    inspect_sdist,
    is_license_name,
    sdist_imports,
    wheel_imports,
)
from recipegen.errors import RecipegenError
from recipegen.mapping import NameMapper
from recipegen.pypi import PyPI, Release
from recipegen.recipe import RecipeSpec, render
from recipegen.resolve import Resolution, ResolvedDist, active_requirements
from recipegen.specs import to_conda_spec
from recipegen.upstream import UpstreamRecipe, run_grayskull

PIP_INSTALL_SDIST = "${{ PYTHON }} -m pip install . -vv --no-deps --no-build-isolation"
#: pip records the (temporary) build directory in ``direct_url.json``; a conda package must
#: not carry it (``pip freeze`` would show ``pkg @ file:///...`` and builds would differ),
#: nor the ``RECORD`` line naming it. ``RECORD``'s hashes of console scripts are dropped too
#: (an empty hash is allowed): they hash a shebang holding the build's own prefix, and
#: conda writes those scripts anew at install time anyway. (pip ends RECORD lines with CRLF.)
DROP_DIRECT_URL = (
    'for d in "$SP_DIR"/*.dist-info; do if [ -f "$d/direct_url.json" ]; then '
    'rm -f "$d/direct_url.json"; '
    'sed -i -e "/\\/direct_url\\.json,/d" '
    '-e "s#^\\(\\.\\./[^,]*bin/[^,]*\\),sha256=[^,]*,[0-9]*#\\1,,#" "$d/RECORD"; '
    'fi; done')

#: Build backends that compile: their packages are never ``noarch: python``.
COMPILING_BACKENDS = ("maturin", "scikit_build_core", "mesonpy", "setuptools_rust", "cmake")
COMPILED_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".rs", ".f90", ".f")
MAX_DESCRIPTION = 4000
#: A wheel name safe to put in a shell command (it goes into the build script).
WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!]+-[A-Za-z0-9_.+!-]+\.whl")
#: PEP 517's fallback for projects without ``[build-system]``.
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0",)


@dataclass(frozen=True)
class GenerateContext:
    """What every recipe of one run shares."""

    mapper: NameMapper
    pypi: PyPI
    cache_dir: Path
    python_version: str  # the target's full python version
    grayskull_timeout: float = 300.0
    prefer_wheel: bool = False  # repackage the pure wheel even when there is an sdist


@dataclass(frozen=True)
class GeneratedRecipe:
    """A rendered recipe and what planning needs to know about it."""

    spec: RecipeSpec
    text: str
    pypi_name: str
    version: str
    host_requirements: tuple[str, ...]  # PEP 508, PyPI names: build-time dependencies
    run_requirements: tuple[str, ...]  # PEP 508, PyPI names: what the package needs to run
    source_sha256: str
    source_time: int | None = None  # the source file's upload time (the package's timestamp)

    @property
    def name(self) -> str:
        return self.spec.name


def run_requirements(dist: ResolvedDist, resolution: Resolution) -> list[Requirement]:
    """``dist``'s base requirements on the target, with extras of its dependencies expanded.

    A conda package has no extras: ``foo[bar]`` becomes ``foo`` plus what ``bar`` adds.
    """
    env = resolution.environment
    base = active_requirements(dist.requires_dist, env)
    out: list[Requirement] = []
    for req in base:
        out.append(req)
        if not req.extras:
            continue
        dep = resolution.dists.get(canonicalize_name(req.name))
        if dep is None:
            continue
        plain = {str(r) for r in active_requirements(dep.requires_dist, env)}
        extra = active_requirements(dep.requires_dist, env, tuple(sorted(req.extras)))
        out.extend(r for r in extra if str(r) not in plain)
    return out


def _strip_marker(req: Requirement) -> Requirement:
    clean = Requirement(str(req))
    clean.marker = None
    clean.extras = set()
    return clean


def host_requirements(info: SdistInfo | None, upstream: UpstreamRecipe | None,
                      run: list[Requirement], mapper: NameMapper,
                      env: dict[str, str]) -> list[Requirement]:
    """What must be in the host env to build: PEP 517/518 plus in-tree backends' needs.

    An in-tree backend (``backend-path``, e.g. hatchling building itself) imports the
    project's own runtime dependencies, which ``requires`` does not list.
    """
    if info is None:
        return []
    system = info.build_system
    if not info.pyproject or "build-system" not in info.pyproject:
        texts = list(LEGACY_BUILD_REQUIRES)
    else:
        texts = list(system.get("requires") or [])
    reqs = [Requirement(t) for t in texts]
    if system.get("backend-path"):
        reqs.extend(run)
    seen = {canonicalize_name(r.name) for r in reqs}
    for item in (upstream.host if upstream else []):
        name = item.spec.split()[0] if item.spec.split() else ""
        if not name or item.selector or name in ("python", "pip"):
            continue
        pypi = canonicalize_name(mapper.to_pypi(name) or name)
        if pypi not in seen:
            seen.add(pypi)
            reqs.append(Requirement(pypi))
    active = [r for r in reqs if r.marker is None or r.marker.evaluate({**env, "extra": ""})]
    return [_strip_marker(r) for r in active]


def conda_requirements(reqs: list[Requirement], mapper: NameMapper,
                       exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """PyPI requirements as conda specs, one line per conda name (specifiers merged)."""
    merged: dict[str, SpecifierSet] = {}
    for req in reqs:
        conda = mapper.to_conda(req.name).conda
        if conda in exclude:
            continue
        merged[conda] = merged.get(conda, SpecifierSet()) & req.specifier
    lines = []
    for conda, spec in merged.items():
        translated = to_conda_spec(spec)
        lines.append(f"{conda} {translated}" if translated else conda)
    return tuple(lines)


def _python_run(requires_python: str | None) -> str:
    spec = to_conda_spec(requires_python) if requires_python else ""
    return f"python {spec}" if spec else "python"


def is_pure(release: Release, info: SdistInfo | None, upstream: UpstreamRecipe | None) -> bool:
    """Pure Python: a ``py3-none-any`` wheel exists, or nothing in the sdist compiles."""
    if release.pure_wheel is not None:
        return True
    if any(f.packagetype == "bdist_wheel" for f in release.files):
        return False  # only platform wheels: it compiles something
    if info is None:
        return False
    backend = str(info.build_system.get("build-backend") or "")
    if any(b in backend.replace("-", "_") for b in COMPILING_BACKENDS):
        return False
    sources = (f for f in info.files if not f.startswith(("tests/", "docs/")))
    return not any(f.endswith(COMPILED_SUFFIXES) for f in sources)


def _url(value: str | None) -> str | None:
    """An absolute http(s) URL, or None: rattler-build rejects anything else."""
    if not value:
        return None
    value = value.strip()
    parts = urlparse(value)
    ok = parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace()
                                                                        for c in value)
    return value if ok else None


def _homepage(dist: ResolvedDist, upstream: UpstreamRecipe | None) -> str:
    candidates = [upstream.homepage if upstream else None]
    for entry in dist.metadata.get("project_url") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository"):
            candidates.append(url)
    candidates.append(dist.metadata.get("home_page"))
    for candidate in candidates:
        url = _url(candidate)
        if url:
            return url
    return f"https://pypi.org/project/{dist.name}/"


def _license_files(info: SdistInfo | None, upstream: UpstreamRecipe | None) -> tuple[str, ...]:
    """Licence files that exist in the sdist; grayskull's picks only if they look like one."""
    if info is None:
        return ()
    present = set(info.files)
    from_grayskull = tuple(f for f in (upstream.license_files if upstream else [])
                           if f in present and is_license_name(f.rsplit("/", 1)[-1]))
    return from_grayskull or info.license_files()


def _test_imports(dist: ResolvedDist, release: Release, info: SdistInfo | None,
                  upstream: UpstreamRecipe | None, ctx: GenerateContext) -> tuple[str, ...]:
    """Imports that exist in what gets installed: read from the wheel when there is one."""
    wheel = release.pure_wheel
    if wheel is not None:
        candidates = wheel_imports(ctx.pypi.download(wheel, ctx.cache_dir / "wheels"))
    elif info is not None:
        candidates = sdist_imports(info)
    else:
        candidates = []
    suggested = list(upstream.test_imports) if upstream else []
    return tuple(choose_imports(dist.name, suggested, candidates))


def generate(dist: ResolvedDist, resolution: Resolution, ctx: GenerateContext) -> GeneratedRecipe:
    """Make the recipe for one resolved distribution (sdist, or its pure wheel if none)."""
    release = ctx.pypi.release(dist.display_name, dist.version)
    sdist = release.sdist
    wheel = release.pure_wheel
    if ctx.prefer_wheel and wheel is not None:
        sdist = None
    if sdist is None and wheel is None:
        raise RecipegenError(
            f"{dist.display_name} {dist.version} has neither an sdist nor a py3-none-any wheel "
            "on PyPI, so there is nothing recipegen can build a conda package from",
            hint="pick another version, or find the package on a conda channel (-c)",
            package=dist.name,
        )
    run = run_requirements(dist, resolution)
    info: SdistInfo | None = None
    upstream: UpstreamRecipe | None = None
    if sdist is not None:
        path = ctx.pypi.download(sdist, ctx.cache_dir / "sdists")
        info = inspect_sdist(path)
        upstream = run_grayskull(dist.display_name, dist.version, sdist_url=sdist.url,
                                 sha256=sdist.sha256, timeout=ctx.grayskull_timeout,
                                 cache_dir=ctx.cache_dir)
    host = (host_requirements(info, upstream, run, ctx.mapper, resolution.environment)
            if sdist is not None else [])
    mapped = ctx.mapper.to_conda(dist.name)
    pure = is_pure(release, info, upstream)
    meta = dist.metadata
    notes = []
    if mapped.conda != dist.name:
        notes.append(f"PyPI name {dist.display_name!r} is {mapped.conda!r} in conda "
                     f"(source: {mapped.source}).")
    license_id = licenses.from_metadata(
        expression=meta.get("license_expression"), license_field=meta.get("license"),
        classifiers=meta.get("classifier") or (),
        grayskull=upstream.license if upstream else None)
    if license_id is None:
        notes.append("No SPDX licence could be read from the metadata.")
    description = upstream.description if upstream else None
    if description and len(description) > MAX_DESCRIPTION:
        description = None
    exclude = ("python", "pip")
    host_conda = ("python", "pip", *conda_requirements(host, ctx.mapper, exclude))
    run_conda = (_python_run(dist.requires_python) if pure else _arch_python(ctx),
                 *conda_requirements(run, ctx.mapper, ("python",)))
    if sdist is not None:
        source_url, sha256, file_name, kind = sdist.url, sdist.sha256, None, "sdist"
        source_time = sdist.upload_epoch
        script = (PIP_INSTALL_SDIST, DROP_DIRECT_URL)
    else:
        assert wheel is not None
        if not WHEEL_NAME.fullmatch(wheel.filename):
            raise RecipegenError(f"refusing wheel file name {wheel.filename!r} from PyPI",
                                 package=dist.name)
        source_url, sha256, file_name, kind = wheel.url, wheel.sha256, wheel.filename, "wheel"
        source_time = wheel.upload_epoch
        script = (f"${{{{ PYTHON }}}} -m pip install ./{wheel.filename} -vv --no-deps "
                  "--no-build-isolation", DROP_DIRECT_URL)
        notes.append("No sdist on PyPI: this recipe repackages the py3-none-any wheel.")
    spec = RecipeSpec(
        name=mapped.conda,
        version=dist.version,
        pypi_name=dist.display_name,
        source_url=source_url,
        sha256=sha256,
        file_name=file_name,
        source_kind=kind,
        script=script,
        noarch="python" if pure else None,
        entry_points=tuple(upstream.entry_points) if upstream else (),
        host=host_conda,
        run=run_conda,
        test_imports=_test_imports(dist, release, info, upstream, ctx),
        pip_check=True,
        homepage=_homepage(dist, upstream),
        summary=(upstream.summary if upstream else None) or meta.get("summary"),
        description=description,
        license=license_id or "",
        license_files=_license_files(info, upstream),
        notes=tuple(notes),
    )
    spec = with_build_string(spec, ctx.python_version)
    return GeneratedRecipe(
        spec=spec,
        text=render(spec),
        pypi_name=dist.name,
        version=dist.version,
        host_requirements=tuple(str(r) for r in host),
        run_requirements=tuple(str(_strip_marker(r)) for r in run),
        source_sha256=sha256,
        source_time=source_time,
    )


def _arch_python(ctx: GenerateContext) -> str:
    major, minor = ctx.python_version.split(".")[:2]
    return f"python >={major}.{minor},<{major}.{int(minor) + 1}.0a0"


def with_build_string(spec: RecipeSpec, python_version: str) -> RecipeSpec:
    """A build string carrying the recipe's content hash: a changed recipe is a new build."""
    digest = spec.content_hash()[:10]
    if spec.noarch == "python":
        tag = "pyh"
    else:
        major, minor = python_version.split(".")[:2]
        tag = f"py{major}{minor}h"
    return replace(spec, build_string=f"{tag}{digest}_{spec.build_number}")


def without_tests(recipe: GeneratedRecipe) -> GeneratedRecipe:
    """The same recipe with its tests dropped (used to break a dependency cycle)."""
    spec = replace(recipe.spec, test_imports=(), pip_check=False, test_commands=(),
                   notes=(*recipe.spec.notes, "Tests skipped: this package is part of a "
                          "dependency cycle and is built before its dependencies exist."))
    return replace(recipe, spec=spec, text=render(spec))


def write_recipe(recipe: GeneratedRecipe, recipe_dir: Path) -> Path:
    """Write ``recipe.yaml`` atomically (a reader never sees half a recipe)."""
    recipe_dir.mkdir(parents=True, exist_ok=True)
    path = recipe_dir / "recipe.yaml"
    fd, tmp = tempfile.mkstemp(dir=recipe_dir, prefix=".recipe-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(recipe.text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
