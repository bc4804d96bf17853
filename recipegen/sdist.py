"""Look inside a source archive without trusting it.

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
        found = [f for f in self.files if _is_license_name(f)]
        return tuple(sorted(found, key=lambda f: (f.count("/"), f.lower())))


def _is_license_name(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1].lower()
    stem = name.split(".")[0].split("-")[0].split("_")[0]
    if stem in LICENSE_STEMS:
        # Root files, or files in a licence folder; not licences of vendored test data.
        return len(parts) == 1 or parts[0].lower() in ("licenses", "licences", "license")
    return len(parts) == 2 and parts[0].lower() in ("licenses", "licences")


def _unsafe(name: str, reason: str, archive: Path) -> RecipegenError:
    return RecipegenError(
        f"refusing {archive.name}: member {name!r} {reason}",
        hint="the archive could write outside its folder when unpacked; nothing was run "
        "or built from it (report it to the package's maintainers)",
    )


def _check_member(name: str, archive: Path) -> str:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _unsafe(name, "has an absolute path", archive)
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{norm}/":
        raise _unsafe(name, "points outside the archive (..)", archive)
    return norm


def _link_escapes(member_name: str, target: str) -> bool:
    if target.startswith("/"):
        return True
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member_name), target))
    return joined == ".." or joined.startswith("../")


def _tar_members(path: Path) -> tuple[list[str], dict[str, bytes]]:
    names: list[str] = []
    wanted: dict[str, bytes] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = _check_member(member.name, path)
                if member.islnk():
                    # Hard link targets are archive paths: the same rules as names.
                    _check_member(member.linkname, path)
                    continue
                if member.issym():
                    if _link_escapes(name, member.linkname):
                        raise _unsafe(member.name, f"links outside the archive "
                                      f"({member.linkname})", path)
                    continue
                if member.isdev() or member.isfifo():
                    raise _unsafe(member.name, "is a device or fifo", path)
                if member.isfile():
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
