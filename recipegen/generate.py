"""One PyPI release → one v1 recipe, from grayskull's data and the release's own metadata.

grayskull reads the sdist (build requirements, entry points, licence files); run
requirements come from the release's ``Requires-Dist`` because grayskull drops or mangles
markers (``requirements.py`` handles them per flavour). Two flavours:

* ``local``: built here for one target env: markers evaluated for it, a build string
  carrying the recipe's content hash, tests against the target's python.
* ``conda-forge``: for a staged-recipes submission: ``python_min``, ``if: win`` blocks for
  platform-only dependencies, tests on ``python_min`` and the newest python, maintainers.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from recipegen import licenses, requirements, toolchain
from recipegen.archive import (
    SdistInfo,
    choose_imports,
    inspect_sdist,
    is_license_name,
    read_member,
    sdist_imports,
    wheel_imports,
)
from recipegen.errors import RecipegenError
from recipegen.mapping import NameMapper
from recipegen.pypi import PyPI, Release, public_url
from recipegen.recipe import GeneratedRecipe, RecipeSpec, render, write_recipe
from recipegen.resolve import Resolution, ResolvedDist
from recipegen.specs import to_conda_spec
from recipegen.upstream import UpstreamRecipe, run_grayskull

Flavour = Literal["local", "conda-forge"]
FLAVOURS = ("local", "conda-forge")
__all__ = ["GenerateContext", "GeneratedRecipe", "generate", "without_import_tests",
           "without_tests", "write_recipe"]
#: conda-forge's global ``python_min`` (CFEP-25) when this was written.
CONDA_FORGE_PYTHON_MIN = "3.10"

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
MAX_DESCRIPTION = 4000
#: A wheel name safe to put in a shell command (it goes into the build script).
WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!]+-[A-Za-z0-9_.+!-]+\.whl")
#: A console script rattler-build can write and a test can run: a plain file name, and a
#: dotted ``module:function`` (PyPI metadata could name ``../x`` or shell syntax).
ENTRY_POINT = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9._+-]*)\s*=\s*"
                         r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*:\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*")
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
    flavour: Flavour = "local"
    python_min: str = CONDA_FORGE_PYTHON_MIN
    maintainers: tuple[str, ...] = ()


def dependency_metadata(resolution: Resolution) -> dict[str, tuple[str, ...]]:
    """Requires-Dist of every resolved distribution (to expand ``foo[bar]``)."""
    return {name: dist.requires_dist for name, dist in resolution.dists.items()}


def run_requirements(dist: ResolvedDist, resolution: Resolution) -> list[Requirement]:
    """``dist``'s run requirements on the target (PyPI names, markers evaluated)."""
    result = requirements.local_run(dist.requires_dist, resolution.environment,
                                    NameMapper(), dependency_metadata(resolution), "python")
    return list(result.pypi)


def host_requirements(info: SdistInfo | None, upstream: UpstreamRecipe | None,
                      run: list[Requirement], mapper: NameMapper,
                      env: dict[str, str]) -> list[Requirement]:
    """What must be in the host env to build: PEP 517/518 plus in-tree backends' needs.

    An in-tree backend (``backend-path``, e.g. hatchling building itself) imports the
    project's own runtime dependencies, which ``requires`` does not list; grayskull adds
    what a ``setup.py`` needs (``setup_requires``).
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
    return [requirements.strip_marker(r) for r in active]


def _conda_specs(reqs: list[Requirement], mapper: NameMapper,
                 exclude: tuple[str, ...]) -> tuple[str, ...]:
    merged: dict[str, SpecifierSet] = {}
    for req in reqs:
        conda = mapper.to_conda(req.name).conda
        if conda not in exclude:
            merged[conda] = merged.get(conda, SpecifierSet()) & req.specifier
    return tuple(f"{c} {to_conda_spec(s)}".rstrip() for c, s in merged.items())


def is_pure(release: Release, info: SdistInfo | None, tools: toolchain.Toolchain) -> bool:
    """Pure Python: a ``py3-none-any`` wheel exists, or nothing in the sdist compiles."""
    if release.pure_wheel is not None:
        return True
    if any(f.packagetype == "bdist_wheel" for f in release.files):
        return False  # only platform wheels: it compiles something
    return info is not None and not tools.compiles


def _url(value: str | None) -> str | None:
    """An absolute http(s) URL, or None: rattler-build rejects anything else."""
    if not value:
        return None
    value = value.strip()
    if any(c.isspace() or not c.isprintable() for c in value):
        return None
    try:
        parts = urlparse(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # "https://[oops": metadata is not always a URL
        return None
    return value if ok else None


def _project_urls(dist: ResolvedDist) -> dict[str, str]:
    urls = {}
    for entry in dist.metadata.get("project_url") or []:
        label, _, url = entry.partition(",")
        key = label.strip().lower().replace(" ", "").replace("-", "")
        if _url(url):
            urls.setdefault(key, url.strip())
    return urls


def _homepage(dist: ResolvedDist, upstream: UpstreamRecipe | None) -> str:
    urls = _project_urls(dist)
    # The release's own metadata first: grayskull's copy went through YAML and lost text.
    candidates = [urls.get("homepage"), urls.get("home"), dist.metadata.get("home_page"),
                  upstream.homepage if upstream else None, urls.get("source"),
                  urls.get("repository")]
    for candidate in candidates:
        url = _url(candidate)
        if url:
            return url
    return f"https://pypi.org/project/{dist.name}/"


def _license_files(info: SdistInfo | None, upstream: UpstreamRecipe | None) -> tuple[str, ...]:
    """Licence files that exist in the sdist (any folder; grayskull's if they look like one).

    An AUTHORS file joins them when a licence refers to "the AUTHORS" for its copyright.
    """
    if info is None:
        return ()
    present = set(info.files)
    from_grayskull = [f for f in (upstream.license_files if upstream else [])
                      if f in present and is_license_name(f.rsplit("/", 1)[-1])]
    files = list(dict.fromkeys([*from_grayskull, *info.license_files()]))
    mentions_authors = any(b"AUTHORS" in (read_member(info, f) or b"") for f in files)
    authors = [f for f in info.files if "/" not in f and f.upper().startswith("AUTHORS")]
    if mentions_authors and authors:
        files.extend(a for a in authors if a not in files)
    return tuple(files)


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


def _module_file(info: SdistInfo, module: str) -> str | None:
    stem = module.replace(".", "/")
    for base in ("", "src/"):
        for candidate in (f"{base}{stem}/__init__.py", f"{base}{stem}.py"):
            if candidate in info.files:
                return candidate
    return None


def _imported_modules(info: SdistInfo, module: str, depth: int = 3) -> set[str]:
    """Top-level names a module imports, following imports within its own package."""
    seen: set[str] = set()
    found: set[str] = set()
    todo = [(module, depth)]
    package_root = module.split(".")[0]
    while todo:
        name, left = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(info, name)
        source = read_member(info, path) if path else None
        if source is None:
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        is_package = path.endswith("__init__.py") if path else False
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = name.split(".")
                    base = parts if is_package else parts[:-1]
                    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                    prefix = ".".join(base)
                    targets = [f"{prefix}.{node.module}" if node.module else prefix]
                    if not node.module:
                        targets = [f"{prefix}.{a.name}" for a in node.names]
                elif node.module:
                    targets = [node.module]
            for target in targets:
                top = target.split(".")[0]
                if top == package_root:
                    if left > 0:
                        todo.append((target, left - 1))
                else:
                    found.add(top)
    return found


def entry_point_tests(info: SdistInfo | None, entry_points: tuple[str, ...],
                      requires_dist: tuple[str, ...]) -> tuple[str, ...]:
    """``<command> --help`` for entry points whose code imports no extra-only dependency."""
    if info is None or not entry_points:
        return ()
    base = {canonicalize_name(Requirement(t).name) for t in requires_dist
            if "extra" not in str(Requirement(t).marker or "")}
    extra_only = {canonicalize_name(Requirement(t).name).replace("-", "_") for t in requires_dist
                  if "extra" in str(Requirement(t).marker or "")}
    extra_only -= {b.replace("-", "_") for b in base}
    tests = []
    for entry in entry_points:
        command, _, target = (part.strip() for part in entry.partition("="))
        module = target.split(":")[0].strip()
        if not command or not module or not _module_file(info, module):
            continue
        imported = {m.lower() for m in _imported_modules(info, module)}
        if imported & extra_only:
            continue
        tests.append(f"{command} --help")
    return tuple(tests[:1])


def safe_entry_points(entries: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Entry points as ``name = module:function``, and those refused (kept for a warning)."""
    kept: list[str] = []
    refused: list[str] = []
    for entry in entries:
        match = ENTRY_POINT.fullmatch(entry)
        if match and not match.group(1).startswith("."):
            kept.append(f"{match.group(1)} = {match.group(2)}:{match.group(3)}")
        else:
            refused.append(entry)
    return tuple(dict.fromkeys(kept)), tuple(refused)


def _python_min_for(dist: ResolvedDist, global_min: str) -> str | None:
    """``python_min`` to set in the recipe: only when the package needs a newer Python."""
    if not dist.requires_python:
        return None
    try:
        spec = SpecifierSet(dist.requires_python)
    except ValueError:
        return None
    lows = [Version(s.version) for s in spec if s.operator in (">=", ">", "~=", "==")
            and not s.version.endswith("*")]
    if not lows:
        return None
    low = max(lows)
    wanted = f"{low.major}.{low.minor}"
    return wanted if Version(wanted) > Version(global_min) else None


def _source(dist: ResolvedDist, release: Release, ctx: GenerateContext):
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
    if sdist is None and not WHEEL_NAME.fullmatch(wheel.filename):
        raise RecipegenError(f"refusing wheel file name {wheel.filename!r} from PyPI",
                             package=dist.name)
    return sdist, wheel


def generate(dist: ResolvedDist, resolution: Resolution, ctx: GenerateContext) -> GeneratedRecipe:
    """Make the recipe for one resolved distribution (sdist, or its pure wheel if none)."""
    release = ctx.pypi.release(dist.display_name, dist.version)
    sdist, wheel = _source(dist, release, ctx)
    info: SdistInfo | None = None
    upstream: UpstreamRecipe | None = None
    if sdist is not None:
        try:
            info = inspect_sdist(ctx.pypi.download(sdist, ctx.cache_dir / "sdists"))
        except RecipegenError as exc:
            exc.package = exc.package or dist.name
            raise
        upstream = run_grayskull(dist.display_name, dist.version, sdist_url=sdist.url,
                                 sha256=sdist.sha256, timeout=ctx.grayskull_timeout,
                                 cache_dir=ctx.cache_dir)
    tools = toolchain.detect(info) if release.pure_wheel is None else toolchain.Toolchain(
        frozenset())
    pure = is_pure(release, info, tools)
    conda_forge = ctx.flavour == "conda-forge"
    python_min = _python_min_for(dist, ctx.python_min) if conda_forge else None
    deps = dependency_metadata(resolution)
    if conda_forge and pure:
        run = requirements.noarch_run(dist.requires_dist, python_min or ctx.python_min,
                                      ctx.mapper, deps, "python >=${{ python_min }}")
        host_env = _python_min_env(python_min or ctx.python_min)
    else:
        python = _python_run(dist.requires_python) if pure else _arch_python(ctx)
        if conda_forge:
            python = "python"
        run = requirements.local_run(dist.requires_dist, resolution.environment, ctx.mapper,
                                     deps, python)
        host_env = resolution.environment
    local_pypi_run = requirements.local_run(dist.requires_dist, resolution.environment,
                                            ctx.mapper, deps, "python").pypi
    host = (host_requirements(info, upstream, list(run.pypi), ctx.mapper, host_env)
            if sdist is not None else [])
    mapped = ctx.mapper.to_conda(dist.name)
    meta = dist.metadata
    notes = list(run.notes)
    warnings: list[str] = []
    if mapped.conda != dist.name:
        notes.insert(0, requirements.Note(dist.display_name, "remapped",
                                          f"conda name {mapped.conda} (from {mapped.source})"))
    license_id = licenses.from_metadata(
        expression=meta.get("license_expression"), license_field=meta.get("license"),
        classifiers=meta.get("classifier") or (),
        grayskull=upstream.license if upstream else None)
    license_files = _license_files(info, upstream)
    # PyPI's licence field, word for word, when it is no SPDX expression itself.
    license_text = meta.get("license_expression") or meta.get("license") or None
    if (license_text and licenses.spdx(license_text)) or len(license_text or "") > \
            MAX_DESCRIPTION or conda_forge:
        license_text = None
    if license_id is None:
        warnings.append(f"{dist.display_name} {dist.version}: no SPDX licence in its metadata; "
                        "the recipe has no license field"
                        + (" (the text is kept in extra.recipegen.pypi_license)"
                           if license_text else ""))
    if not license_files:
        warnings.append(f"{dist.display_name} {dist.version}: no licence file found in the "
                        "source; the recipe has no license_file")
    # Outer whitespace goes: rattler-build trims a value that went through Jinja anyway.
    description = (upstream.description or "").strip() if upstream else None
    if not description or len(description) > MAX_DESCRIPTION:
        description = None
    python_host = "python ${{ python_min }}.*" if conda_forge and pure else "python"
    host_conda = (python_host, "pip", *_conda_specs(host, ctx.mapper, ("python", "pip")))
    build_reqs = () if pure else tools.build_requirements(stdlib=conda_forge)
    if sdist is not None:
        source_url, sha256, file_name, kind = sdist.url, sdist.sha256, None, "sdist"
        source_time = sdist.upload_epoch
        if conda_forge:
            source_url = public_url(source_url)
        script = (PIP_INSTALL_SDIST,) if conda_forge else (PIP_INSTALL_SDIST, DROP_DIRECT_URL)
    else:
        source_url, sha256, file_name, kind = wheel.url, wheel.sha256, wheel.filename, "wheel"
        source_time = wheel.upload_epoch
        if conda_forge:
            source_url = public_url(source_url)
        install = (f"${{{{ PYTHON }}}} -m pip install ./{wheel.filename} -vv --no-deps "
                   "--no-build-isolation")
        script = (install,) if conda_forge else (install, DROP_DIRECT_URL)
        notes.append(requirements.Note(dist.display_name, "from the wheel",
                                       f"no sdist on PyPI; the recipe repackages "
                                       f"{wheel.filename}"))
    entry_points, refused = safe_entry_points(list(upstream.entry_points) if upstream else [])
    for entry in refused:
        warnings.append(f"{dist.display_name} {dist.version}: entry point {entry!r} left out: "
                        "not a plain command name and module:function")
        notes.append(requirements.Note(dist.display_name, "entry point left out",
                                       f"{entry!r} is not a plain command name = "
                                       "module:function"))
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
        entry_points=entry_points,
        build=build_reqs,
        host=host_conda,
        run=run.run,
        run_conditional=run.conditional,
        run_constraints=run.constraints,
        test_imports=_test_imports(dist, release, info, upstream, ctx),
        pip_check=True,
        test_commands=entry_point_tests(info, entry_points, dist.requires_dist),
        homepage=_homepage(dist, upstream),
        summary=(meta.get("summary") or (upstream.summary if upstream else None) or "").strip()
        or None,
        description=description,
        license=license_id or "",
        license_files=license_files,
        repository=_url(_project_urls(dist).get("source") or _project_urls(dist).get(
            "repository")) if conda_forge else None,
        documentation=_url(_project_urls(dist).get("documentation")) if conda_forge else None,
        python_min=python_min,
        test_python_min=conda_forge and pure,
        maintainers=ctx.maintainers if conda_forge else (),
        provenance=not conda_forge,
        license_text=license_text,
        notes=tuple(str(n) for n in notes if n.action != "dropped" or n.subject[0] != "["),
    )
    if not conda_forge:
        spec = with_build_string(spec, ctx.python_version)
    return GeneratedRecipe(
        spec=spec,
        text=render(spec),
        pypi_name=dist.name,
        version=dist.version,
        host_requirements=tuple(str(r) for r in host),
        run_requirements=tuple(str(r) for r in local_pypi_run),
        source_sha256=sha256,
        warnings=tuple(warnings),
        notes=tuple(notes),
        source_time=source_time,
    )


def _python_min_env(python_min: str) -> dict[str, str]:
    """The marker environment of conda-forge's noarch build: linux-64, python_min."""
    return {"python_version": python_min, "python_full_version": python_min + ".0",
            "implementation_name": "cpython", "implementation_version": python_min + ".0",
            "platform_python_implementation": "CPython", "platform_machine": "x86_64",
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_release": "", "platform_version": ""}


def _python_run(requires_python: str | None) -> str:
    spec = to_conda_spec(requires_python) if requires_python else ""
    return f"python {spec}" if spec else "python"


def _arch_python(ctx: GenerateContext) -> str:
    major, minor = ctx.python_version.split(".")[:2]
    return f"python >={major}.{minor},<{major}.{int(minor) + 1}.0a0"


def build_tag(spec: RecipeSpec, python_version: str) -> str:
    """``pyh`` for noarch python, ``py311h`` for a package built for one python."""
    if spec.noarch == "python":
        return "pyh"
    major, minor = python_version.split(".")[:2]
    return f"py{major}{minor}h"


def with_build_string(spec: RecipeSpec, python_version: str, *, tag: str | None = None,
                      ) -> RecipeSpec:
    """A build string carrying a hash of the recipe's text: a changed recipe (or template)
    is a new build, never confused with an older one of the same version."""
    text = render(replace(spec, build_string=None))
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    tag = tag or build_tag(spec, python_version)
    return replace(spec, build_string=f"{tag}{digest}_{spec.build_number}")


def without_tests(recipe: GeneratedRecipe) -> GeneratedRecipe:
    """The same recipe with its tests dropped (used to break a dependency cycle)."""
    return _retested(recipe, replace(
        recipe.spec, test_imports=(), pip_check=False, test_commands=(),
        notes=(*recipe.spec.notes, "Tests skipped: this package is part of a dependency "
               "cycle and is built before its dependencies exist.")))


def without_import_tests(recipe: GeneratedRecipe, missing: str) -> GeneratedRecipe:
    """The same recipe without its import test, which needs ``missing``: a module the
    package imports but does not declare (soupsieve imports bs4, whose package depends on
    soupsieve). pip installs such a package; so does recipegen, with ``pip check`` kept."""
    note = (f"Import test dropped: importing {', '.join(recipe.spec.test_imports)} needs "
            f"the module {missing}, which the package does not declare as a dependency.")
    out = _retested(recipe, replace(recipe.spec, test_imports=(),
                                    notes=(*recipe.spec.notes, note)))
    return replace(out, warnings=(*recipe.warnings, note))


def _retested(recipe: GeneratedRecipe, spec: RecipeSpec) -> GeneratedRecipe:
    """``recipe`` with other tests: the package holds its tests, so a new build string
    (same tag)."""
    old = recipe.spec.build_string
    if old:
        spec = with_build_string(spec, "", tag=old[: old.index("h") + 1])
    return replace(recipe, spec=spec, text=render(spec))
