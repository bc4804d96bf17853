"""File locks between recipegen processes: one per work root, one per prefix.

``flock`` locks die with their process (a killed recipegen never leaves a stale lock). A
process that finds a lock taken says who holds it and waits. The prefix lock lives
outside the prefix (in the user's cache), so taking it never creates or changes the env.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def lock_dir() -> Path:
    base = os.environ.get("RECIPEGEN_LOCK_DIR")
    if base:
        return Path(base)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "recipegen" / "locks"


def prefix_lock_file(prefix: Path) -> Path:
    """One lock file per env, named by its real path."""
    real = os.path.realpath(prefix)
    digest = hashlib.sha256(real.encode()).hexdigest()[:20]
    return lock_dir() / f"prefix-{digest}.lock"


def _holder(fh) -> str:
    try:
        fh.seek(0)
        info = json.loads(fh.read() or "{}")
    except (OSError, ValueError):
        return "another recipegen process"
    return f"recipegen (pid {info.get('pid', '?')}: {info.get('cmd', '?')})"


@contextlib.contextmanager
def exclusive(path: Path, what: str,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; if taken, call ``on_wait`` once, then wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"waiting for {_holder(fh)}, which is using {what}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "since": time.time(),
                                 "cmd": " ".join(["recipegen", *sys.argv[1:]])[:300]}))
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prefix_locked(prefix: Path, on_wait: Callable[[str], None] | None = None):
    return exclusive(prefix_lock_file(prefix), f"the env {prefix}", on_wait)


def work_root_locked(root: Path, on_wait: Callable[[str], None] | None = None):
    return exclusive(root / ".recipegen.lock", f"the work root {root}", on_wait)
