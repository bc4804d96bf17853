"""What grayskull makes of one sdist, as typed data.

grayskull runs the sdist's ``setup.py`` in-process and pip-installs its imports, so it
runs in a subprocess (``recipegen._grayskull_worker``) in its own session, killed as a
whole process group at the timeout and after it finishes. Its answer is reported as it
is: no name remapping, marker fixing or spec translation happens here.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from recipegen.errors import RecipegenError

WORKER_MODULE = "recipegen._grayskull_worker"
CACHE_SCHEMA = 1  # bump when UpstreamRecipe or the worker's output changes
LOG_TAIL_CHARS = 4000
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Requirement:
    """One line of grayskull's requirements."""

    spec: str  # as grayskull wrote it, e.g. "packaging >=20" or "python >=3.8"
    selector: str | None  # its end-of-line selector, e.g. "py<311", "win", "darwin"


@dataclass(frozen=True)
class UpstreamRecipe:
    """What grayskull found in one sdist.

    ``raw`` is grayskull's recipe as plain data (jinja escapes undone), plus
    ``raw["_selectors"]`` (every end-of-line selector by dotted path, e.g.
    ``"build.skip"``) and ``raw["_recipegen"]`` (where the PyPI metadata came from,
    pip installs, timings). grayskull's "no license found" placeholders become
    ``None`` / ``[]``. ``description`` is the release's long description from PyPI
    (grayskull writes none).
    """

    name: str
    version: str
    sdist_url: str
    sha256: str
    build: list[Requirement]
    host: list[Requirement]
    run: list[Requirement]
    run_constrained: list[Requirement]
    entry_points: list[str]
    test_imports: list[str]
    test_commands: list[str]
    summary: str | None
    description: str | None
    homepage: str | None
    doc_url: str | None
    dev_url: str | None
    license: str | None
    license_files: list[str]
    noarch: str | None
    script: str | None
    raw: dict

    def to_json(self) -> dict[str, Any]:
        """Plain data; ``from_json`` reads it back."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpstreamRecipe:
        """Inverse of ``to_json`` (also reads the worker's answer)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("build", "host", "run", "run_constrained"):
            values[key] = [Requirement(**r) for r in values.get(key) or []]
        return cls(**values)


def grayskull_version() -> str:
    return importlib.metadata.version("grayskull")


def run_grayskull(name: str, version: str, *, sdist_url: str, sha256: str,
                  timeout: float = 300, cache_dir: Path | None = None) -> UpstreamRecipe:
    """grayskull's recipe for ``name==version`` built from exactly this sdist.

    ``cache_dir`` keeps the answer per (name, version, sha256, grayskull version) and
    keeps pip's installs of ``setup.py`` imports for later runs. Raises
    ``RecipegenError`` on timeout or failure, with the tail of grayskull's output.
    """
    cache_file = _cache_file(cache_dir, name, version, sha256) if cache_dir else None
    if cache_file and (cached := _read_cache(cache_file, name, version, sha256)):
        return cached
    request: dict[str, Any] = {"name": name, "version": version,
                               "sdist_url": sdist_url, "sha256": sha256}
    if cache_dir:
        request["pip_target_dir"] = str(Path(cache_dir, "pip-targets"))
        request["pip_cache_dir"] = str(Path(cache_dir, "pip-cache"))
    answer, log = _run_worker(request, timeout)
    if not answer.get("ok"):
        raise RecipegenError(
            f"grayskull failed for {name} {version}: {answer.get('error')}",
            package=name, log=_tail(answer.get("traceback", "") + "\n" + log),
        )
    recipe = UpstreamRecipe.from_json(answer["recipe"])
    if cache_file:
        _write_cache(cache_file, recipe)
    return recipe


# ---------------------------------------------------------------------- subprocess


def _run_worker(request: dict[str, Any], timeout: float) -> tuple[dict[str, Any], str]:
    """Run the worker on ``request``; return its JSON answer and its log."""
    name = request["name"]
    with tempfile.TemporaryDirectory(prefix=f"recipegen-grayskull-{name}-") as tmp:
        work = Path(tmp)
        request = {**request, "workdir": str(work / "work")}
        (work / "request.json").write_text(json.dumps(request))
        with (open(work / "request.json", "rb") as stdin,
              open(work / "answer.json", "wb") as stdout,
              open(work / "log.txt", "wb") as stderr):
            start = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE], stdin=stdin, stdout=stdout,
                stderr=stderr, cwd=tmp, env=_worker_env(), start_new_session=True,
            )
            status = _wait_then_kill_group(proc, timeout)
            elapsed = time.monotonic() - start
        log = _read_text(work / "log.txt")
        log += f"\n[recipegen: grayskull worker ran {elapsed:.2f} s]"
        if status is None:
            raise RecipegenError(
                f"grayskull timed out after {timeout:g} s for {name} {request['version']}"
                " (killed with its whole process group)",
                package=name, log=_tail(log),
            )
        answer = _read_answer(work / "answer.json")
        if answer is None:
            raise RecipegenError(
                f"grayskull worker for {name} {request['version']} died ({_describe(status)})"
                f" after {elapsed:.1f} s without an answer",
                package=name, log=_tail(log),
            )
        return answer, log


def _worker_env() -> dict[str, str]:
    """The parent's environment, with recipegen importable even when not installed."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["RECIPEGEN_ORIG_PYTHONPATH"] = env.get("PYTHONPATH", "")
    if root not in _site_dirs():  # installed: importable already, and must stay on sys.path
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"  # grayskull joins a set of license names: fix the order
    return env


def _site_dirs() -> set[str]:
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return {str(Path(d).resolve()) for d in dirs}


def _wait_then_kill_group(proc: subprocess.Popen, timeout: float) -> int | None:
    """Wait for the worker up to ``timeout``; then kill its whole process group.

    The group is killed before the worker is reaped, so its pid (the group id) can't
    have been reused meanwhile; it is killed on any way out (also Ctrl-C), since the
    worker's own session won't get the terminal's signals. Returns the worker's exit
    status, or None on timeout.
    """
    try:
        return _wait_unreaped(proc.pid, timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_unreaped(pid: int, timeout: float) -> int | None:
    """Poll until ``pid`` exits (leaving it a zombie) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            exited = info.si_code == os.CLD_EXITED
            return info.si_status if exited else -info.si_status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.025)  # cheap; keeps the added latency under 25 ms


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_answer(path: Path) -> dict[str, Any] | None:
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def _tail(log: str) -> str:
    text = ANSI_RE.sub("", log).strip()
    return text if len(text) <= LOG_TAIL_CHARS else "…" + text[-LOG_TAIL_CHARS:]


# ------------------------------------------------------------------------------ cache


def _cache_file(cache_dir: Path, name: str, version: str, sha256: str) -> Path:
    """One file per (name, version, sha256, grayskull version, schema)."""
    key = f"{name}\0{version}\0{sha256.lower()}\0{grayskull_version()}\0{CACHE_SCHEMA}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}-{version}")
    return Path(cache_dir, "upstream", f"{safe}-{digest}.json")


def _read_cache(path: Path, name: str, version: str, sha256: str) -> UpstreamRecipe | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        recipe = UpstreamRecipe.from_json(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if (recipe.name, recipe.version, recipe.sha256.lower()) != (name, version, sha256.lower()):
        return None
    return recipe


def _write_cache(path: Path, recipe: UpstreamRecipe) -> None:
    """Write atomically: a temp file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(recipe.to_json(), out, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
