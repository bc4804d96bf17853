"""The local conda channel recipegen builds into: created, published to, indexed, locked.

A package enters the channel only whole (built elsewhere, then renamed into place) and the
repodata is rewritten under a file lock, so parallel builds and parallel recipegen
processes never leave a channel whose index disagrees with its files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from recipegen.errors import RecipegenError

#: py-rattler's indexer can crash the interpreter at exit, so it runs in a child process.
_INDEX_SNIPPET = """
import asyncio, sys
from pathlib import Path
from rattler.index import index_fs
asyncio.run(index_fs(Path(sys.argv[1]), write_zst=False, write_shards=False,
                     force=sys.argv[2] == "force"))
"""


@contextlib.contextmanager
def locked(channel: Path) -> Iterator[None]:
    """An exclusive lock on the channel, for other threads and other processes alike."""
    channel.mkdir(parents=True, exist_ok=True)
    with open(channel / ".recipegen.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def index(channel: Path, subdirs: tuple[str, ...] = (), *, force: bool = False) -> None:
    """Rewrite the channel's repodata from the package files in it (``force``: all of it).

    The indexer runs in a session of its own and is let finish even when recipegen is
    interrupted (it takes a fraction of a second): killed, it could leave a repodata
    file that lists half the channel.
    """
    for subdir in {"noarch", *subdirs}:
        (channel / subdir).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _INDEX_SNIPPET, str(channel),
                             "force" if force else ""],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _out, err = proc.communicate(timeout=600)
    except BaseException:
        proc.communicate(timeout=600)
        raise
    if not (channel / "noarch" / "repodata.json").exists():
        raise RecipegenError(f"indexing the channel {channel} failed:\n{err[-2000:]}")


def ensure(channel: Path, platform: str) -> None:
    """Make ``channel`` a valid (possibly empty) channel for ``platform`` and noarch.

    A channel whose index disagrees with its files (a process was killed between placing
    a package and indexing it) is indexed again.
    """
    with locked(channel):
        missing = [s for s in ("noarch", platform)
                   if not (channel / s / "repodata.json").exists()]
        if missing or not is_consistent(channel):
            index(channel, (platform,))


def is_consistent(channel: Path) -> bool:
    """Whether the repodata lists exactly the package files that are there, per subdir."""
    try:
        listed = listed_files(channel)
    except (OSError, ValueError):
        return False
    present = present_files(channel)
    return ({k: v for k, v in listed.items() if v} == {k: v for k, v in present.items() if v})


def has_package(channel: Path, subdir: str, file_name: str) -> Path | None:
    path = channel / subdir / file_name
    return path if path.exists() else None


def publish(packages: list[Path], channel: Path) -> list[Path]:
    """Move finished package files into the channel and re-index it, under the lock.

    A package is copied under a name no indexer takes for a package, then renamed: the
    channel never holds part of one, even after a kill. Copies left by a killed process
    are removed (under the lock, no other process is copying).
    """
    import shutil  # only when adding; indexing and reading need none of it

    placed: list[Path] = []
    with locked(channel):
        for package in packages:
            subdir = package.parent.name
            dest_dir = channel / subdir
            dest_dir.mkdir(parents=True, exist_ok=True)
            for stale in dest_dir.glob(".incoming-*"):
                stale.unlink(missing_ok=True)
            tmp = dest_dir / f".incoming-{os.getpid()}-{package.name}.part"
            try:
                shutil.copyfile(package, tmp)
                os.chmod(tmp, 0o644)  # rattler-build writes 0600; a channel is for everyone
                os.replace(tmp, dest_dir / package.name)
            finally:
                tmp.unlink(missing_ok=True)
            placed.append(dest_dir / package.name)
        index(channel, tuple({p.parent.name for p in placed}))
    return placed


def listed_files(channel: Path) -> dict[str, set[str]]:
    """Package file names per subdir, as the repodata lists them."""
    out: dict[str, set[str]] = {}
    for repodata in channel.glob("*/repodata.json"):
        data = json.loads(repodata.read_text())
        names = set(data.get("packages", {})) | set(data.get("packages.conda", {}))
        out[repodata.parent.name] = names
    return out


def present_files(channel: Path) -> dict[str, set[str]]:
    """Package file names per subdir, as they are on disk."""
    out: dict[str, set[str]] = {}
    for sub in channel.iterdir() if channel.is_dir() else []:
        if sub.is_dir() and (sub / "repodata.json").exists():
            out[sub.name] = {p.name for p in sub.iterdir()
                             if p.name.endswith((".conda", ".tar.bz2"))}
    return out
