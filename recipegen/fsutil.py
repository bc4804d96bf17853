"""Atomic file writes and file digests: every file recipegen keeps (recipes, caches, locks)
is written here, so a reader, or the next run after a crash or Ctrl-C, sees the old file or
the new one and never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, *, prefix: str = ".part-") -> Path:
    """Write ``data`` to a scratch file beside ``path`` (mode 0644), then rename it over.

    The scratch name is made here rather than by :mod:`tempfile`, whose import costs more
    than the whole write on the warm path.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = os.path.join(path.parent, f"{prefix}{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_if_readable(path: str | os.PathLike[str]) -> str | None:
    """The file's sha256, or None if it cannot be read (missing, a directory, no access)."""
    try:
        return sha256_file(path)
    except OSError:
        return None
