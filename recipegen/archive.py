"""Look inside source archives and wheels without trusting them.

Sdists come from anyone. Before grayskull or rattler-build unpacks one, every member is
checked: no absolute paths, no ``..``, no links that leave the tree, no device files.
Nothing is extracted here; only ``pyproject.toml`` is read, from the archive's root
(sdists of build backends carry sample ``pyproject.toml`` files in their tests).
"""

from __future__ import annotations

import posixpath
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from recipegen._pip_guard import member_problem, name_problem, refusal
from recipegen.errors import RecipegenError

LICENSE_STEMS = ("license", "licence", "copying", "notice", "copyright", "unlicense")


@dataclass(frozen=True)
class SdistInfo:
    """What recipegen needs to know of an sdist's contents."""

    path: Path
    root: str  # the archive's top directory ('' if members sit at the top)
    files: tuple[str, ...]  # regular files, relative to root
    pyproject: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def build_system(self) -> dict:
        return self.pyproject.get("build-system") or {}

    @property
    def has_setup_py(self) -> bool:
        return "setup.py" in self.files

    def license_files(self) -> tuple[str, ...]:
        """Licence-like files: at the root first, then in ``LICENSES/``-style folders."""
        found = [f for f in self.files if is_license_name(f)]
        return tuple(sorted(found, key=lambda f: (f.count("/"), f.lower())))


def is_license_name(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1].lower()
    stem = name.split(".")[0].split("-")[0].split("_")[0]
    if stem in LICENSE_STEMS:
        # Root files, or files in a licence folder; not licences of vendored test data.
        return len(parts) == 1 or parts[0].lower() in ("licenses", "licences", "license")
    return len(parts) == 2 and parts[0].lower() in ("licenses", "licences")


def _unsafe(name: str, reason: str, archive: Path) -> RecipegenError:
    return RecipegenError(
        refusal(archive.name, name, reason),
        hint="the archive could write outside its folder when unpacked; nothing was run "
        "or built from it (report it to the package's maintainers)",
    )


def _check_member(name: str, archive: Path) -> str:
    problem = name_problem(name)
    if problem:
        raise _unsafe(name, problem, archive)
    return posixpath.normpath(name)


def _tar_members(path: Path) -> tuple[list[str], dict[str, bytes]]:
    names: list[str] = []
    wanted: dict[str, bytes] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                problem = member_problem(member)
                if problem:
                    raise _unsafe(member.name, problem, path)
                if not member.isfile():
                    continue
                name = posixpath.normpath(member.name)
                names.append(name)
                if name.count("/") <= 1 and name.endswith("pyproject.toml"):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        wanted[name] = fh.read()
    except tarfile.TarError as exc:
        raise RecipegenError(f"{path.name} is not a readable tar archive: {exc}") from exc
    return names, wanted


def _zip_members(path: Path) -> tuple[list[str], dict[str, bytes]]:
    names: list[str] = []
    wanted: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = _check_member(info.filename, path)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:
                    raise _unsafe(info.filename, "is a symlink in a zip archive", path)
                if info.is_dir():
                    continue
                names.append(name)
                if name.count("/") <= 1 and name.endswith("pyproject.toml"):
                    wanted[name] = zf.read(info)
    except zipfile.BadZipFile as exc:
        raise RecipegenError(f"{path.name} is not a readable zip archive: {exc}") from exc
    return names, wanted


def read_member(info: SdistInfo, relpath: str, limit: int = 1 << 20) -> bytes | None:
    """One regular file of a checked sdist (by its path under the root), or None."""
    if relpath not in info.files:
        return None
    name = f"{info.root}/{relpath}" if info.root else relpath
    if info.path.suffix == ".zip":
        with zipfile.ZipFile(info.path) as zf:
            return zf.read(name)[:limit]
    with tarfile.open(info.path) as tar:
        fh = tar.extractfile(name)
        return fh.read(limit) if fh is not None else None


def inspect_sdist(path: Path) -> SdistInfo:
    """Check every member of an sdist and read its root ``pyproject.toml``."""
    if path.suffix == ".zip":
        names, wanted = _zip_members(path)
    else:
        names, wanted = _tar_members(path)
    tops = {n.split("/", 1)[0] for n in names}
    root = tops.pop() if len(tops) == 1 and all("/" in n for n in names) else ""
    strip = len(root) + 1 if root else 0
    files = tuple(sorted(n[strip:] for n in names))
    pyproject: dict = {}
    raw = wanted.get(f"{root}/pyproject.toml" if root else "pyproject.toml")
    if raw is not None:
        try:
            pyproject = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RecipegenError(f"{path.name}: its pyproject.toml is not valid TOML: {exc}"
                                 ) from exc
    return SdistInfo(path=path, root=root, files=files, pyproject=pyproject)


#: Top-level folders of an sdist that never hold the installed package.
NOT_PACKAGES = {"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks",
                "bench", "scripts", "tools", "build", "dist", "ci", "tasks", "_build",
                "_custom_build", "misc", "contrib", "samples", "sample"}
NOT_MODULES = {"setup", "conftest", "noxfile", "fabfile", "tasks", "versioneer", "build",
               "setup_build", "_build", "dodo"}


def _importable(files: list[str]) -> list[str]:
    """Top-level import names in a tree of files (packages first, then modules).

    A folder without ``__init__.py`` that holds packages is a namespace: its
    sub-packages are reported (``poetry.core``), since the namespace itself imports
    nothing worth testing.
    """
    names: set[str] = set()
    dirs_with_init = {f.rsplit("/", 1)[0] for f in files if f.endswith("/__init__.py")}
    for d in dirs_with_init:
        parts = d.split("/")
        # the outermost package of each chain
        top = next(i for i in range(1, len(parts) + 1) if "/".join(parts[:i]) in dirs_with_init)
        dotted = parts[:top]
        if all(p.isidentifier() for p in dotted):
            names.add(".".join(dotted))
    for f in files:
        if "/" not in f and f.endswith(".py"):
            stem = f[:-3]
            if stem.isidentifier() and stem not in NOT_MODULES:
                names.add(stem)
    return sorted(names, key=lambda n: (n.count("."), n))


def wheel_imports(path: Path) -> list[str]:
    """Import names a wheel installs (from its file list; nothing is extracted)."""
    with zipfile.ZipFile(path) as zf:
        files = [n for n in zf.namelist()
                 if not n.split("/", 1)[0].endswith((".dist-info", ".data"))]
    return _importable(files)


def sdist_imports(info: SdistInfo) -> list[str]:
    """Import names an sdist probably installs: its ``src/`` or root packages and modules."""
    src = [f[4:] for f in info.files if f.startswith("src/")]
    if any(f.endswith(".py") for f in src):
        files = src
    else:
        files = [f for f in info.files if f.split("/", 1)[0].lower() not in NOT_PACKAGES]
    return [n for n in _importable(files) if n.split(".")[0].lower() not in NOT_PACKAGES]


def choose_imports(dist_name: str, suggested: list[str], candidates: list[str]) -> list[str]:
    """The modules a recipe test should import: suggestions that exist, else the best guess.

    ``suggested`` (grayskull's list) is kept where it names something the package really
    installs; otherwise the candidate named like the distribution wins, then any
    candidate that does not look like a test or private helper.
    """
    tops = {c.split(".")[0] for c in candidates} | set(candidates)
    valid = [m for m in suggested if m in tops or m.split(".")[0] in tops]
    if valid:
        return valid
    plain = [c for c in candidates
             if not c.startswith(("test", "_")) and not c.split(".")[-1].endswith("_test")]
    wanted = dist_name.lower().replace("-", "_").replace(".", "_")
    named = [c for c in plain if c.replace(".", "_") == wanted or c == wanted]
    return named or plain[:5]
