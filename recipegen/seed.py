"""The seed channel: python, python_abi and pip, repackaged from the running interpreter.

No conda channel is reachable, yet every recipe needs a ``python`` in its host and run
environments. The seed channel is a local ``file://`` channel that provides one, built offline by
rattler-build from the interpreter that runs recipegen (``sys.base_prefix``) and from the pip
wheel that this interpreter bundles for ``ensurepip``.

What it holds (for Python 3.11.7 on linux-64):

- ``linux-64/python-3.11.7-0_cpython.conda``: ``bin/python3.11`` (+ ``python3``, ``python``,
  ``python3.11-config``, ``pydoc``, ``2to3``), ``lib/libpython3.11.so*``, ``include/python3.11``,
  the stdlib with checked-hash ``__pycache__`` and without its test suites, Tk and IDLE, and a
  ``site-packages`` holding only its README. It has no dependencies (it links the system's
  libssl, libsqlite3, ... like the interpreter it copies) and ``run_exports: weak:
  python_abi 3.11.* *_cp311``.
- ``linux-64/python_abi-3.11-2_cp311.conda``: no files, ``constrains: python 3.11.* *_cpython``.
- ``linux-64/pip-23.2.1-py311h<hash>_0.conda``: the bundled pip wheel alone, with
  checked-hash ``__pycache__`` like the stdlib's, entry points ``pip`` and ``pip3``, depends on
  ``python`` and ``python_abi``. Not ``noarch: python`` (as conda-forge's is): rattler, unlike
  conda, compiles nothing when it links a noarch package, and rattler-build strips bytecode
  from one, so every build and test env would import pip from source, a second per pip run
  and two runs per build (``pip install .``, ``pip check``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipegen import localchannel
from recipegen.errors import RecipegenError

PYTHON_BUILD_NUMBER = 0
# conda-forge's python_abi build strings read ``<n>_cp311``; the number only has to be stable.
PYTHON_ABI_BUILD_NUMBER = 2
PIP_BUILD_NUMBER = 0

_LOG_TAIL_CHARS = 4000
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class SeedResult:
    """What ``seed_channel`` did: the packages it built and those it found already there."""

    channel: Path
    built: list[str]  # file names of packages built this run
    existing: list[str]  # file names already present (a second run finds them: no-op)


@dataclass(frozen=True)
class _Interpreter:
    """The running interpreter, as the python package will describe it."""

    prefix: Path  # sys.base_prefix, resolved
    version: str  # "3.11.7"
    short: str  # "3.11"
    abi_tag: str  # "cp311"
    executable: Path  # <prefix>/bin/python3.11
    pip_wheel: Path  # <stdlib>/ensurepip/_bundled/pip-X-py3-none-any.whl

    @property
    def pip_version(self) -> str:
        return self.pip_wheel.name.split("-")[1]


@dataclass(frozen=True)
class _Wanted:
    """One seed package: what repodata must list for it (``build`` None: any build)."""

    subdir: str
    name: str
    version: str
    build: str | None
    label: str


@dataclass(frozen=True)
class SystemTool:
    """A compiler found on PATH, and the conda package name ``compiler()`` asks for."""

    package: str
    version: str
    path: str


#: ``compiler(lang)`` renders to ``<name>_<subdir>``; the command that provides it here.
COMPILERS = {"gcc": ("gcc", ["-dumpfullversion"]), "gxx": ("g++", ["-dumpfullversion"]),
             "gfortran": ("gfortran", ["-dumpfullversion"]), "rust": ("rustc", ["--version"])}
SYSTEM_BUILD = "system"


def system_toolchain(subdir: str) -> list[SystemTool]:
    """The machine's own compilers, as stand-ins for conda-forge's toolchain packages.

    Without a conda channel there are no compiler packages, so a recipe with
    ``${{ compiler('c') }}`` could not even solve its build env; the system compiler on
    PATH does the work, as it does for pip.
    """
    if not subdir.startswith("linux"):
        return []
    tools = []
    for name, (command, args) in COMPILERS.items():
        path = shutil.which(command)
        if path is None:
            continue
        try:
            out = subprocess.run([path, *args], capture_output=True, text=True, timeout=30,
                                 check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r"\d+(\.\d+)+", out)
        if match:
            tools.append(SystemTool(f"{name}_{subdir}", match.group(0), path))
    libc, version = platform.libc_ver()
    if tools and libc == "glibc" and version:
        # ``stdlib('c')`` (conda-forge recipes) asks for the C library: the system's glibc.
        tools.append(SystemTool(f"sysroot_{subdir}", version, f"glibc {version}"))
    return tools


def default_seed_dir(work_root: Path) -> Path:
    """Where the seed channel lives under a work root, so every command shares one seed."""
    return Path(work_root) / "seed"


def seed_channel(channel: Path, *, progress: Callable[[str], None] | None = None) -> SeedResult:
    """Make ``channel`` a ``file://`` conda channel holding python, python_abi and pip.

    The packages match the running interpreter; a channel seeded by another interpreter gets
    this one's packages beside the old ones. Packages already listed in the channel's repodata
    are not rebuilt, so a second call is a fast no-op. Each package is built in a scratch
    directory and moved in whole, so an interrupted seed never leaves half a package behind.
    Seeds of one channel are serialised with a lock file.
    """
    say = progress or (lambda _line: None)
    channel = Path(channel).resolve()
    interp = _interpreter()
    subdir = _current_subdir()
    wanted = [
        _Wanted(
            subdir,
            "python_abi",
            interp.short,
            f"{PYTHON_ABI_BUILD_NUMBER}_{interp.abi_tag}",
            f"python_abi {interp.short}",
        ),
        _Wanted(
            subdir,
            "python",
            interp.version,
            f"{PYTHON_BUILD_NUMBER}_cpython",
            f"python {interp.version} from {interp.prefix}",
        ),
        # pip's build string carries a hash rattler-build computes; its version is what counts.
        _Wanted(
            subdir,
            "pip",
            interp.pip_version,
            None,
            f"pip {interp.pip_version} from {interp.pip_wheel.name}",
        ),
    ]
    wanted.extend(_Wanted(subdir, tool.package, tool.version, SYSTEM_BUILD,
                          f"{tool.package} {tool.version} (the system's {tool.path})")
                  for tool in system_toolchain(subdir))
    try:
        for sub in (subdir, "noarch"):
            (channel / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecipegenError(
            f"cannot create the seed channel {channel}: {exc}", hint="pick a writable work root"
        ) from exc

    with _locked(channel):
        found = _find(channel, wanted)
        if any(fn is None for fn in found):
            # Packages moved in by a seed that stopped before indexing are listed now.
            _index(channel)
            found = _find(channel, wanted)
        existing = [fn for fn in found if fn is not None]
        todo = [w for w, fn in zip(wanted, found, strict=True) if fn is None]
        built: list[str] = []
        if todo:
            with tempfile.TemporaryDirectory(prefix="recipegen-seed-") as tmp:
                for w in todo:
                    built.append(_build(w, interp, Path(tmp) / w.name, channel, say))
            missing = [
                w.label for w, fn in zip(todo, _find(channel, todo), strict=True) if fn is None
            ]
            if missing:
                raise RecipegenError(
                    f"the seed channel {channel} does not list {', '.join(missing)} after building",
                    hint=f"delete {channel} and seed again",
                )
    return SeedResult(channel, built, existing)


# ---------------------------------------------------------------------------------------------
# What is there


def _interpreter() -> _Interpreter:
    """Describe ``sys.base_prefix``; refuse interpreters that cannot be repackaged."""
    if os.name != "posix" or sys.implementation.name != "cpython":
        raise RecipegenError(
            f"cannot seed from {sys.implementation.name} on {os.name}",
            hint="the seed channel repackages a CPython interpreter on Linux or macOS",
        )
    prefix = Path(sys.base_prefix).resolve()
    short = f"{sys.version_info.major}.{sys.version_info.minor}"
    executable = prefix / "bin" / f"python{short}"
    stdlib = prefix / "lib" / f"python{short}"
    distro = prefix in (Path("/"), Path("/usr"))
    if distro or not executable.is_file() or not (stdlib / "os.py").is_file():
        raise RecipegenError(
            f"the interpreter at {prefix} is not a self-contained CPython install",
            hint="run recipegen with a CPython installed by `make install` (pyenv, a python.org"
            " build); a distribution's /usr python, split into many packages, cannot be"
            " repackaged",
        )
    wheels = sorted((stdlib / "ensurepip" / "_bundled").glob("pip-*.whl"))
    if not wheels:
        raise RecipegenError(
            f"no bundled pip wheel in {stdlib / 'ensurepip' / '_bundled'}",
            hint="the seed's pip is made from the wheel ensurepip bundles; use an interpreter"
            " that kept ensurepip",
        )
    return _Interpreter(
        prefix=prefix,
        version=platform.python_version(),
        short=short,
        abi_tag=f"cp{sys.version_info.major}{sys.version_info.minor}",
        executable=executable,
        pip_wheel=wheels[-1],
    )


def _current_subdir() -> str:
    from rattler import Subdir

    return str(Subdir.current())


def _find(channel: Path, wanted: list[_Wanted]) -> list[str | None]:
    """For each wanted package, the file name the channel's repodata lists and disk holds."""
    records: dict[str, dict[str, Any]] = {}
    for sub in {w.subdir for w in wanted}:
        try:
            data = json.loads((channel / sub / "repodata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        for key in ("packages", "packages.conda"):
            for fn, rec in (data.get(key) or {}).items():
                records[f"{sub}/{fn}"] = rec
    found: list[str | None] = []
    for w in wanted:
        hits = sorted(
            key.split("/", 1)[1]
            for key, rec in records.items()
            if key.startswith(f"{w.subdir}/")
            and rec.get("name") == w.name
            and rec.get("version") == w.version
            and w.build in (None, rec.get("build"))
            and (channel / key).is_file()
        )
        found.append(hits[-1] if hits else None)
    return found


@contextlib.contextmanager
def _locked(channel: Path) -> Iterator[None]:
    """Hold an exclusive lock on the channel so two seeds never build into it at once."""
    with open(channel / ".seed.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Recipes


def _system_tool_recipe(w: _Wanted) -> dict[str, Any]:
    """An empty package standing for a compiler that is already on this machine."""
    return {
        "package": {"name": w.name, "version": w.version},
        "build": {"number": 0, "string": SYSTEM_BUILD},
        "about": {"summary": f"Stands for {w.label} so that recipes asking for "
                  "compiler(...) build offline; it installs nothing"},
    }


def _python_abi_recipe(interp: _Interpreter) -> dict[str, Any]:
    """A package without files that pins compiled packages to this interpreter's ABI."""
    return {
        "package": {"name": "python_abi", "version": interp.short},
        "build": {
            "number": PYTHON_ABI_BUILD_NUMBER,
            "string": f"{PYTHON_ABI_BUILD_NUMBER}_{interp.abi_tag}",
        },
        "requirements": {"run_constraints": [f"python {interp.short}.* *_cpython"]},
        "about": {
            "summary": f"Metapackage to select the Python ABI {interp.abi_tag}",
            "license": "BSD-3-Clause",
        },
    }


def _python_recipe(interp: _Interpreter, recipe_dir: Path) -> dict[str, Any]:
    """Repackage ``sys.base_prefix``: the interpreter, its library, headers and lean stdlib."""
    recipe_dir.mkdir(parents=True, exist_ok=True)
    stage = recipe_dir / "stage_python.py"
    stage.write_text(_STAGE_SCRIPT, encoding="utf-8")
    args = [interp.executable, "-I", "-S", stage, interp.prefix, "$PREFIX", interp.short]
    return {
        "package": {"name": "python", "version": interp.version},
        "build": {
            "number": PYTHON_BUILD_NUMBER,
            "string": f"{PYTHON_BUILD_NUMBER}_cpython",
            "script": [" ".join(f'"{a}"' for a in args)],
            # rattler-build would compile the few sources whose pycs the stage script drops,
            # stamped with a build-time mtime that is stale once installed: useless work.
            "python": {"skip_pyc_compilation": ["**/*.py"]},
        },
        "requirements": {
            "run_exports": {"weak": [f"python_abi {interp.short}.* *_{interp.abi_tag}"]},
        },
        "about": {
            "summary": f"CPython {interp.version}, repackaged from {interp.prefix}",
            "license": "PSF-2.0",
            "homepage": "https://www.python.org",
        },
    }


def _pip_recipe(interp: _Interpreter) -> dict[str, Any]:
    """pip from the wheel ensurepip bundles, which installs itself (and no setuptools)."""
    wheel = interp.pip_wheel.name
    pip_args = (
        "install --no-deps --no-index --no-cache-dir --no-compile --disable-pip-version-check"
        " --no-warn-script-location"
    )
    dist_info = f"$SP_DIR/pip-{interp.pip_version}.dist-info"
    return {
        "package": {"name": "pip", "version": interp.pip_version},
        # pip refuses a wheel whose file name is not a wheel name: keep the real one.
        "source": [{"path": str(interp.pip_wheel), "file_name": wheel}],
        "build": {
            "number": PIP_BUILD_NUMBER,
            "script": [
                f'"$PYTHON" "$SRC_DIR/{wheel}/pip" {pip_args} "$SRC_DIR/{wheel}"',
                # Hash-based pycs stay valid in any env (the package's mtimes are reset);
                # compiled under prefix-relative names, so no build path is baked in.
                'cd "$PREFIX" && "$PYTHON" -m compileall -q -j 0 --invalidation-mode '
                'checked-hash "${SP_DIR#"$PREFIX"/}/pip"',
                # The entry points below are the launchers; pip's own include a pip3.11.
                'rm -rf "$PREFIX/bin"',
                # direct_url.json names the scratch build dir; `pip freeze` would show it.
                f'rm -f "{dist_info}/direct_url.json"',
                f'sed -i "/direct_url.json/d" "{dist_info}/RECORD"',
            ],
            "python": {
                "entry_points": [
                    "pip = pip._internal.cli.main:main",
                    "pip3 = pip._internal.cli.main:main",
                ],
                # Its own timestamp pycs would be stale once installed; ours are kept.
                "skip_pyc_compilation": ["**/*.py"],
            },
        },
        "requirements": {"host": ["python"], "run": ["python"]},
        "about": {
            "summary": "The PyPA recommended tool for installing Python packages",
            "license": "MIT",
            "homepage": "https://pip.pypa.io",
        },
    }


# The python package's build script, run by the interpreter it packages (``python -I -S``):
# argv = source prefix, $PREFIX, "3.11".
_STAGE_SCRIPT = textwrap.dedent('''\
    """Copy an installed CPython into $PREFIX for rattler-build (written by recipegen.seed)."""
    import importlib.util
    import os
    import shutil
    import struct
    import sys

    src, dst, short = sys.argv[1:4]
    stdlib = os.path.join("lib", "python" + short)
    # Test suites and what needs Tk: ~130 MB that would make the build several times slower.
    SKIP_TOP = {"test", "idlelib", "tkinter", "turtledemo", "site-packages"}
    SKIP_NESTED = {"test", "tests", "idle_test"}  # lib2to3/tests, unittest/test, ctypes/test
    PROGRAMS = ["python" + short, "python3", "python", "python" + short + "-config",
                "python3-config", "python-config", "pydoc" + short, "pydoc3", "pydoc",
                "2to3-" + short, "2to3"]

    def ignore(directory, names):
        rel = os.path.relpath(directory, os.path.join(src, stdlib))
        skipped = set()
        for name in names:
            full = os.path.join(directory, name)
            if os.path.isdir(full) and not os.path.islink(full):
                if name in (SKIP_TOP if rel == "." else SKIP_NESTED):
                    skipped.add(name)
            elif rel.startswith("config-") and name.endswith((".a", ".o")):
                skipped.add(name)  # only for relinking the interpreter itself: 44 MB
            elif rel == "lib-dynload" and name.startswith("_tkinter"):
                skipped.add(name)
        return skipped

    def copy(path, target):
        if os.path.islink(path):
            os.symlink(os.readlink(path), target)
        else:
            shutil.copy2(path, target)

    os.makedirs(os.path.join(dst, "bin"), exist_ok=True)
    for prog in PROGRAMS:
        if os.path.lexists(os.path.join(src, "bin", prog)):
            copy(os.path.join(src, "bin", prog), os.path.join(dst, "bin", prog))
    os.makedirs(os.path.join(dst, "lib"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(src, "lib"))):
        if name.startswith("libpython"):
            copy(os.path.join(src, "lib", name), os.path.join(dst, "lib", name))
    for extra in (os.path.join("lib", "pkgconfig"), "include"):
        if os.path.isdir(os.path.join(src, extra)):
            shutil.copytree(os.path.join(src, extra), os.path.join(dst, extra), symlinks=True)
    shutil.copytree(os.path.join(src, stdlib), os.path.join(dst, stdlib), symlinks=True,
                    ignore=ignore)
    # A package holds no empty directory: site-packages keeps its README only.
    site = os.path.join(dst, stdlib, "site-packages")
    os.makedirs(site)
    with open(os.path.join(site, "README.txt"), "w") as f:
        f.write("This directory exists so that 3rd party packages can be installed here.\\n")

    # Text files naming the old prefix (sysconfigdata, python-config, *.pc, Makefile, shebangs)
    # name $PREFIX instead, which rattler-build records for prefix replacement at install.
    # The prefix as configured, as run and as resolved: any of them may be spelled out.
    olds = {src, sys.prefix, os.path.realpath(sys.prefix)}
    try:
        import sysconfig

        olds.add(__import__(sysconfig._get_sysconfigdata_name()).build_time_vars["prefix"])
    except Exception:
        pass
    olds = sorted((o.encode() for o in olds if len(o) > 1), key=len, reverse=True)
    new = dst.encode()
    rewritten = set()
    for root, dirs, files in os.walk(dst):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or name.endswith(".pyc"):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if b"\\0" in data or not any(old in data for old in olds):
                continue
            for old in olds:
                data = data.replace(old, new)
            mode = os.stat(path).st_mode
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode)
            rewritten.add(path)

    # pycs are stamped with their source's mtime, and packaging resets mtimes: every import
    # would recompile (and with PYTHONDONTWRITEBYTECODE never fix it). Valid pycs get a
    # checked-hash header instead (same code object, the header names the source's hash), which
    # stays valid in any env; pycs of rewritten or changed sources go.
    MAGIC = importlib.util.MAGIC_NUMBER

    def hash_header(pyc):
        module = os.path.basename(pyc).partition(".")[0]
        source = os.path.join(os.path.dirname(os.path.dirname(pyc)), module + ".py")
        if not pyc.endswith(".pyc") or source in rewritten or not os.path.isfile(source):
            return None
        with open(pyc, "rb") as f:
            header = f.read(16)
        with open(source, "rb") as f:
            data = f.read()
        stamp = os.stat(os.path.join(src, os.path.relpath(source, dst)))
        flags, mtime, size = struct.unpack("<III", header[4:16])
        if (header[:4] != MAGIC or flags != 0 or size != len(data) & 0xFFFFFFFF
                or mtime != int(stamp.st_mtime) & 0xFFFFFFFF):
            return None
        return MAGIC + struct.pack("<I", 0b11) + importlib.util.source_hash(data)

    for root, dirs, files in os.walk(os.path.join(dst, stdlib)):
        if os.path.basename(root) == "__pycache__":
            for name in files:
                header = hash_header(os.path.join(root, name))
                if header is None:
                    os.unlink(os.path.join(root, name))
                else:
                    with open(os.path.join(root, name), "r+b") as f:
                        f.write(header)
    ''')


# ---------------------------------------------------------------------------------------------
# Building and indexing


class _BuildLog:
    """rattler-build progress callback: keeps the log for error messages, prints nothing."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_build_step(self, event: Any) -> None:
        self.lines.append(f"[{event.step_name}] {event.message}")

    def on_log(self, event: Any) -> None:
        self.lines.append(str(event.message))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr, so nothing rattler-build writes lands on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _tail(log: str) -> str:
    text = _ANSI_RE.sub("", log).strip()
    return text if len(text) <= _LOG_TAIL_CHARS else "…" + text[-_LOG_TAIL_CHARS:]


def _build(
    w: _Wanted, interp: _Interpreter, work: Path, channel: Path, say: Callable[[str], None]
) -> str:
    """Build one seed package in ``work`` against ``channel``, move it in, re-index."""
    from rattler_build import RattlerBuildError, Stage0Recipe, ToolConfiguration

    recipe_dir = work / "recipe"
    if w.name == "python":
        recipe = _python_recipe(interp, recipe_dir)
    elif w.name == "python_abi":
        recipe = _python_abi_recipe(interp)
    elif w.build == SYSTEM_BUILD:
        recipe = _system_tool_recipe(w)
    else:
        recipe = _pip_recipe(interp)
    say(f"seed: building {w.label}")
    started = time.monotonic()
    log = _BuildLog()
    try:
        stage0 = Stage0Recipe.from_dict(recipe, recipe_dir=recipe_dir)
        with _stdout_to_stderr():
            results = stage0.run_build(
                tool_config=ToolConfiguration(test_strategy="skip"),
                output_dir=work / "out",
                # The default is conda-forge, unreachable here; the output dir comes first.
                channels=[channel.as_uri()],
                progress_callback=log,
                no_build_id=True,
            )
    except RattlerBuildError as exc:
        lines = getattr(exc, "log", None) or log.lines
        raise RecipegenError(
            f"building the seed package {w.label} failed: {exc}",
            hint="the seed repackages the running interpreter; the log shows the failed step",
            package=w.name,
            log=_tail("\n".join(map(str, lines))),
        ) from exc
    packages = [Path(p) for r in results for p in r.packages]
    if len(packages) != 1 or packages[0].parent.name != w.subdir:
        raise RecipegenError(
            f"building {w.label} gave {packages}, expected one {w.subdir} package", package=w.name
        )
    pkg = packages[0]
    dest = channel / w.subdir / pkg.name
    part = dest.with_name(f".{pkg.name}.part")
    shutil.copyfile(pkg, part)
    part.chmod(0o644)  # rattler-build writes 0600
    part.replace(dest)
    _index(channel)
    say(f"seed: built {pkg.name} in {time.monotonic() - started:.1f} s")
    return pkg.name


def _index(channel: Path) -> None:
    """Rewrite the seed channel's repodata.json files: all of them, since a seed may have
    stopped between moving a package in and indexing it."""
    localchannel.index(channel, force=True)
