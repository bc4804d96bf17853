"""recipegen's own version as its caches see it: the release number and its code and data.

The version string alone does not change while recipegen is developed (or patched in
place), so a cache keyed on it would serve recipes the current code would not write. The
fingerprint hashes every file of the package (code, templates, the name-mapping table):
any change to what recipegen would generate is a different fingerprint. Hashing them
takes a few milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
import sys
from pathlib import Path

import recipegen


def _roots() -> list[tuple[str, str]]:
    """(package, folder) of the files that decide what recipegen writes: the package, and
    its templates (``recipegen.templates`` when installed, ``templates/`` of a checkout, as
    :func:`recipegen.recipe` finds them)."""
    package = os.path.dirname(recipegen.__file__ or "")
    checkout = os.path.join(os.path.dirname(package), "templates")
    if os.path.isfile(os.path.join(checkout, "recipe.yaml.j2")):
        return [("recipegen", package), ("recipegen.templates", checkout)]
    templates = importlib.import_module("recipegen.templates")
    return [("recipegen", package),
            ("recipegen.templates", os.path.dirname(templates.__file__ or ""))]


def _files() -> list[tuple[str, str]]:
    """(name in the fingerprint, path) of every file of the packages, sorted."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for package, root in _roots():
        stack = [root]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir():
                        if entry.name != "__pycache__":
                            stack.append(entry.path)
                    elif not entry.name.endswith((".pyc", ".pyo")) and entry.path not in seen:
                        seen.add(entry.path)  # templates may sit inside the package too
                        out.append((f"{package}/{entry.path[len(root) + 1:]}", entry.path))
    return sorted(out)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recipegen"


@functools.cache
def code_fingerprint() -> str:
    """``<version>+<16 hex>``: the release and a hash of every file of the package.

    The hash of the files' bytes is remembered per list of (file, size, mtime, inode), so
    unchanged files are not read again: an edit changes the mtime.
    """
    files = _files()
    stats = hashlib.sha256()
    for name, path in files:
        st = os.stat(path)
        stats.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0".encode())
    memo = _cache_dir() / "fingerprints" / stats.hexdigest()[:32]
    try:
        return memo.read_text().strip()
    except OSError:
        pass
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as fh:
            digest.update(fh.read())
        digest.update(b"\0")
    value = f"{recipegen.__version__}+{digest.hexdigest()[:16]}"
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(value + "\n")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only home: hash again next time
    return value


@functools.cache
def installed_version(dist: str) -> str:
    """The installed version of a distribution, read from its ``.dist-info`` directory name.

    What ``importlib.metadata.version`` answers for a plain install, without importing it
    (about 17 ms, a tenth of a planned install); anything unusual is asked of it after all.
    """
    version = _dist_infos().get(re.sub(r"[-_.]+", "_", dist).lower())
    if version is not None:
        return version
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def _dist_infos() -> dict[str, str]:
    """Normalized name → version of each ``.dist-info`` on ``sys.path``, the first found
    winning as for imports; each directory is listed once for every name asked."""
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                stem, _, version = name[:-len(".dist-info")].partition("-")
                out.setdefault(re.sub(r"[-_.]+", "_", stem).lower(), version)
    return out
