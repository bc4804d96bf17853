"""Atomic file writes: every file recipegen keeps (recipes, caches, locks) is written here,
so a reader, or the next run after a crash or Ctrl-C, sees the old file or the new one and
never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, *, prefix: str = ".part-") -> Path:
    """Write ``data`` to a scratch file beside ``path`` (mode 0644), then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
