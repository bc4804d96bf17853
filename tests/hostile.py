"""Helpers for the broken-and-hostile-input tests: a scene (an env, a work root, the seed
channel, the fake index) and the three checks every such test makes: a clear error,
the env unchanged, the local channel consistent."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import json_lines, snapshot
from fakeindex import FakeIndex

from recipegen import localchannel

#: Short network waits, so an unreachable index fails fast (and the bound is tested).
HTTP_ENV = {"RECIPEGEN_HTTP_TIMEOUT": "3", "RECIPEGEN_HTTP_TRIES": "2"}


@dataclass
class Scene:
    """Where one test runs recipegen: an env, a work root, channels and the fake index."""

    env: Path
    work: Path
    seed: Path
    index: FakeIndex
    run_cli: Callable[..., subprocess.CompletedProcess]
    extra_env: dict[str, str | None] = field(default_factory=dict)

    def environ(self) -> dict[str, str | None]:
        return {**self.index.env(), **HTTP_ENV, "PIP_CACHE_DIR": str(self.work.parent / "pip"),
                **self.extra_env}

    def install(self, *args: str | Path, channels: tuple[str | Path, ...] = ()
                ) -> subprocess.CompletedProcess:
        """``recipegen install ARGS -p ENV`` with the work root and the seed channel."""
        return self.run_cli("install", *args, "-p", self.env, "--work-root", self.work,
                            *(a for c in (*channels, self.seed) for a in ("-c", c)), "-y",
                            env=self.environ())

    def popen(self, *args: str | Path) -> subprocess.Popen:
        """The same install as a process of its own session, with JSON events on stdout."""
        env = dict(os.environ)
        env.pop("CONDA_PREFIX", None)
        for key, value in self.environ().items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        cmd = [sys.executable, "-m", "recipegen", "install", *map(str, args), "-p",
               str(self.env), "--work-root", str(self.work), "-c", str(self.seed), "-y",
               "--json"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.work.parent)


def copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest


def error_of(proc: subprocess.CompletedProcess) -> str:
    """recipegen's error (message, log, hint): what the user reads on stderr."""
    lines = proc.stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("recipegen: error:")),
                 None)
    assert start is not None, proc.stderr[-3000:]
    return "\n".join(lines[start:])


def assert_failed_clearly(proc: subprocess.CompletedProcess, *needles: str,
                          code: int | None = None) -> str:
    """A non-zero exit, one error (no traceback) that contains every needle."""
    assert proc.returncode != 0, proc.stderr[-3000:]
    if code is not None:
        assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    error = error_of(proc)
    print(error)  # shown with -s, and for a failing test
    assert proc.stderr.count("recipegen: error:") == 1
    for needle in needles:
        assert needle in error, f"{needle!r} not in:\n{error}"
    return error


def assert_channel_consistent(work: Path) -> None:
    """The local channel's repodata lists exactly the package files in it, per subdir."""
    channel = work / "channel"
    if not channel.exists():
        return
    assert localchannel.is_consistent(channel), (localchannel.listed_files(channel),
                                                 localchannel.present_files(channel))
    assert not list(channel.glob("*/.incoming-*"))


def assert_unchanged(env: Path, before: dict[str, str], work: Path) -> None:
    assert snapshot(env) == before
    assert_channel_consistent(work)


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen,
             timeout: float = 300) -> None:
    """Wait until ``condition`` holds; fail if recipegen ends first or it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"recipegen ended before {what}: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def events(text: str) -> list[dict]:
    return json_lines(text)


def packages_in(work: Path) -> set[str]:
    channel = work / "channel"
    return {p.name for p in channel.glob("*/*.conda")} if channel.exists() else set()


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line or environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if "\nState:\tZ" in (proc / "status").read_text():
                continue
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(proc.name))
    return found


def assert_no_processes_with(marker: str) -> None:
    """No process holding ``marker`` is left; a SIGKILLed one may take a moment to die."""
    import time

    for _ in range(200):
        if not processes_with(marker):
            return
        time.sleep(0.05)
    assert processes_with(marker) == []


def about_json(package: Path) -> dict:
    """``info/about.json`` of a ``.conda`` file."""
    import io
    import tarfile
    import zipfile

    import zstandard

    with zipfile.ZipFile(package) as zf:
        info = next(n for n in zf.namelist() if n.startswith("info-"))
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zf.read(info)))
        with tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                if member.name == "info/about.json":
                    return json.load(tar.extractfile(member))
    raise AssertionError(f"no info/about.json in {package}")


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a directory) cannot be written, even by root: ``chattr +i`` for root,
    ``chmod a-w`` for anyone else; skips the test where neither works."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        undo = ["chattr", "-i", str(path)]
        if done.returncode != 0:
            pytest.skip(f"cannot make {path} read-only here: {done.stderr.decode()}")
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        undo = None
    try:
        if os.access(path, os.W_OK):
            pytest.skip(f"{path} stays writable here")
        yield
    finally:
        if undo:
            subprocess.run(undo, check=False)
        else:
            path.chmod(mode)
