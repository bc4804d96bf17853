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

    def run(*args: str | Path, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 1800) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.pop("CONDA_PREFIX", None)
        full_env.update(env or {})
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
