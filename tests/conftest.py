"""Shared fixtures: a cached seed channel, the CLI as a subprocess, tree snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
HTTPX_CLOSURE = DATA / "httpx-closure.txt"


def _cache_root() -> Path:
    root = os.environ.get("RECIPEGEN_TEST_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "recipegen-tests"


def _seed_key() -> str:
    """Everything that changes what the seed contains: a stale cache can't be reused."""
    import rattler
    import rattler_build

    h = hashlib.sha256()
    h.update((REPO / "recipegen" / "seed.py").read_bytes())
    h.update(sys.version.encode())
    h.update(sys.base_prefix.encode())
    h.update(rattler_build.rattler_build_version().encode()
             if hasattr(rattler_build, "rattler_build_version") else b"")
    h.update(getattr(rattler, "__version__", "").encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def seed_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seed channel (python, pip), built once per seed.py/interpreter and then reused.

    Installs only read it, so tests share one copy.
    """
    from recipegen.seed import seed_channel as make_seed

    cached = _cache_root() / f"seed-{_seed_key()}"
    if (cached / "noarch" / "repodata.json").exists():
        return cached
    fresh = tmp_path_factory.mktemp("seed") / "seed"
    make_seed(fresh)
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = cached.with_name(cached.name + f".part-{os.getpid()}")
    shutil.copytree(fresh, staging)
    try:
        os.replace(staging, cached)
    except OSError:  # another session won the race; use its copy
        shutil.rmtree(staging, ignore_errors=True)
    return cached


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python -m recipegen ARGS`` like a user would (no terminal on stdin)."""

    def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str | None] | None = None,
            timeout: float = 1800) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.pop("CONDA_PREFIX", None)
        for key, value in (env or {}).items():  # None: leave the variable out
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        # Not from the checkout: the installed recipegen is what users run.
        return subprocess.run([sys.executable, "-m", "recipegen", *map(str, args)],
                              capture_output=True, text=True, cwd=cwd or tmp_path,
                              env=full_env, stdin=subprocess.DEVNULL, timeout=timeout,
                              check=False)

    return run


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256 (symlinks by target): to prove no change."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[rel + "/"] = "dir"
    return out


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="session")
def fake_index_server():
    """One package index server for the session (see ``fakeindex``)."""
    from fakeindex import FakeIndex

    with FakeIndex() as index:
        yield index


@pytest.fixture
def fake_index(fake_index_server):
    """The session's index, behaving well and with fresh hit counts for each test."""
    fake_index_server.behave.clear()
    fake_index_server.hits.clear()
    yield fake_index_server
    fake_index_server.behave.clear()


@pytest.fixture(scope="session")
def hostile_base(seed_channel: Path, fake_index_server,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An env holding ``plain-pkg`` (built from the fake index) and its work root."""
    from fakeindex import Project
    from hostile import HTTP_ENV

    fake_index_server.add(Project("plain-pkg", extras=("all",),
                                  scripts={"plain-cli": "plain_pkg.cli:main"}))
    root = tmp_path_factory.mktemp("hostile-base")
    env = dict(os.environ)
    env.pop("CONDA_PREFIX", None)
    for key, value in {**fake_index_server.env(), **HTTP_ENV}.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    proc = subprocess.run([sys.executable, "-m", "recipegen", "install", "plain-pkg", "-p",
                           str(root / "env"), "--work-root", str(root / "work"), "-c",
                           str(seed_channel), "-y", "-q"], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    return root / "env", root / "work"


@pytest.fixture
def scene(hostile_base: tuple[Path, Path], seed_channel: Path, fake_index, run_cli,
          tmp_path: Path):
    """A copy of the base env and work root for one test, with the fake index."""
    from hostile import Scene, copy_tree

    env, work = hostile_base
    return Scene(env=copy_tree(env, tmp_path / "env"), work=copy_tree(work, tmp_path / "work"),
                 seed=seed_channel, index=fake_index, run_cli=run_cli)
