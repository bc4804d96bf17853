"""Compiled bytecode kept per source file, so a package is compiled once per python.

conda compiles the ``.py`` files of every ``noarch: python`` package it links (recipegen
does the same, :func:`recipegen.envmeta.compile_bytecode`); for a fresh env that is most
of the time linking takes. The ``.pyc`` a file compiles to depends on the interpreter (its
exact python package), the file's bytes, the name it is compiled under (the
prefix-relative path, as conda compiles) and, in its header, the file's mtime and size.
Those are the key; the bytes by their sha256, as the env's record lists it (a file linked
unchanged from its package), or as read from the file.

rattler links a package's files from its package cache, so a file has the same mtime in
every env, and the cached ``.pyc`` is exactly the bytes a compile would write: it is
hard-linked into the env (one directory entry, no file written). Entries are never
changed in place (written under a temporary name, then renamed), so a linked ``.pyc``
never changes behind an env's back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
from pathlib import Path

from recipegen.fsutil import sha256_file

HEADER = 16  # magic, flags, source mtime, source size (PEP 552, timestamp mode)
LAYOUT = "pyc2"  # bump when what an entry holds changes


class PycCache:
    """``<dir>/<python dist>/pyc2/<2 hex>/<key>.<mtime>.<size>``: a timestamp-mode ``.pyc``.

    Paths are plain strings: a warm install links hundreds of files, and pathlib's
    objects cost more than the links.
    """

    def __init__(self, directory: Path, python: str) -> None:
        self.root = directory / python.replace("/", "_") / LAYOUT
        self._root = str(self.root)

    @staticmethod
    def key(rel_path: str, sha256: str) -> str:
        """The key of a file: its prefix-relative path and the sha256 of its bytes."""
        return hashlib.sha256(f"{sha256}\0{rel_path}".encode()).hexdigest()

    def _entry(self, key: str, st: os.stat_result) -> str:
        return f"{self._root}/{key[:2]}/{key}.{int(st.st_mtime)}.{st.st_size}"

    def put_pyc(self, key: str, sha256: str, source_path: str, pyc_path: str) -> bool:
        """Put ``pyc_path`` for ``source_path`` in place from the cache; False if not cached.

        ``sha256`` is what the file's bytes should be. An entry for the same mtime and size
        is linked as it is (python trusts that stamp alike); one for another stamp is
        reused only once the file's bytes are checked against ``sha256``.
        """
        st = os.stat(source_path)
        if _link(self._entry(key, st), pyc_path):
            return True
        other = next(iter(self._variants(key)), None)  # the same code for another mtime
        if other is None or sha256_file(source_path) != sha256:
            return False
        with open(other, "rb") as fh:
            data = fh.read()
        if len(data) <= HEADER:
            return False
        stamp = struct.pack("<III", 0, int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
        # py_compile gives a pyc its source's permission bits (less the umask); so does this.
        _atomic_write(pyc_path, data[:4] + stamp + data[HEADER:], mode=st.st_mode & 0o666)
        return True

    def _variants(self, key: str) -> list[str]:
        folder = f"{self._root}/{key[:2]}"
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        return [f"{folder}/{n}" for n in names if n.startswith(key + ".")]

    def store(self, key: str, source_path: str, pyc_path: str) -> None:
        """Keep a freshly compiled (timestamp-mode) ``.pyc``."""
        try:
            with open(pyc_path, "rb") as fh:
                data = fh.read()
            st = os.stat(source_path)
        except OSError:
            return
        if len(data) <= HEADER or struct.unpack("<I", data[4:8])[0] != 0:
            return  # not a timestamp pyc: nothing this cache would reproduce
        entry = self._entry(key, st)
        if not os.path.exists(entry):
            _atomic_write(entry, data)


def _link(entry: str, pyc_path: str) -> bool:
    try:
        os.link(entry, pyc_path)
    except FileNotFoundError:
        if not os.path.exists(entry):
            return False
        os.makedirs(os.path.dirname(pyc_path), exist_ok=True)  # a new __pycache__
        return _link(entry, pyc_path)
    except OSError:  # a stale .pyc is there, or another file system: write it instead
        return False
    return True


def _atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write via a temporary name and rename, as ``importlib`` writes pycs."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
