"""What grayskull makes of one sdist, as typed data.

grayskull runs the sdist's ``setup.py`` in-process and pip-installs its imports, so it
runs in a subprocess (``recipegen._grayskull_worker``) in its own session, killed as a
whole process group at the timeout, when its output floods, on Ctrl-C and after it
finishes (:mod:`recipegen.procgroup`). Its answer is reported as it
is: no name remapping, marker fixing or spec translation happens here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from recipegen import procgroup
from recipegen.errors import RecipegenError
from recipegen.fsutil import atomic_write

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

    ``cache_dir`` keeps the answer per (name, version, sha256, grayskull version), keeps
    pip's installs of ``setup.py`` imports for later runs, and keeps the log of a failed
    run (``logs/``). Raises ``RecipegenError`` on timeout, an output flood or failure.
    """
    from recipegen.pypi import index_url

    cache_file = _cache_file(cache_dir, name, version, sha256) if cache_dir else None
    if cache_file and (cached := _read_cache(cache_file, name, version, sha256)):
        return cached
    request: dict[str, Any] = {"name": name, "version": version, "sdist_url": sdist_url,
                               "sha256": sha256, "pypi_url": index_url()}
    if cache_dir:
        request["pip_target_dir"] = str(Path(cache_dir, "pip-targets"))
        request["pip_cache_dir"] = str(Path(cache_dir, "pip-cache"))
    keep = _log_file(cache_dir, name, version) if cache_dir else None
    answer, log = _run_worker(request, timeout, keep)
    if not answer.get("ok"):
        if keep is not None:
            with open(keep, "a", encoding="utf-8") as fh:
                fh.write("\n" + answer.get("traceback", ""))
        raise RecipegenError(
            f"grayskull failed for {name} {version}: {_first_line(answer.get('error'))}",
            hint="the sdist's setup.py or metadata could not be read; pin another version "
            "(or --map the package to a conda channel's) and run again",
            package=name, log=str(keep) if keep else _tail(
                answer.get("traceback", "") + "\n" + log),
        )
    recipe = UpstreamRecipe.from_json(answer["recipe"])
    if keep is not None:
        keep.unlink(missing_ok=True)
    if cache_file:
        _write_cache(cache_file, recipe)
    return recipe


# ---------------------------------------------------------------------- subprocess


def _run_worker(request: dict[str, Any], timeout: float,
                keep: Path | None = None) -> tuple[dict[str, Any], str]:
    """Run the worker on ``request``; return its JSON answer and the tail of its log.

    The log goes to ``keep`` when given (and stays there), else to a temporary file.
    """
    name, version = request["name"], request["version"]
    with tempfile.TemporaryDirectory(prefix=f"recipegen-grayskull-{name}-") as tmp:
        work = Path(tmp)
        request = {**request, "workdir": str(work / "work")}
        (work / "request.json").write_text(json.dumps(request))
        log_path = keep or work / "log.txt"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")
        with (open(work / "request.json", "rb") as stdin,
              open(work / "answer.json", "wb") as stdout):
            done = procgroup.run([sys.executable, "-m", WORKER_MODULE], timeout=timeout,
                                 log=log_path, stdout=stdout, stdin=stdin, cwd=tmp,
                                 env=_worker_env())
        where = str(keep) if keep else None
        log = procgroup.tail(log_path, LOG_TAIL_CHARS)
        log += f"\n[recipegen: grayskull worker ran {done.seconds:.2f} s]"
        if done.timed_out:
            raise RecipegenError(
                f"grayskull timed out after {timeout:g} s for {name} {version}"
                " (killed with every process it started)",
                hint="its setup.py may wait for something that never comes; raise "
                "--grayskull-timeout if it is only slow",
                package=name, log=where or _tail(log),
            )
        if done.flooded:
            raise RecipegenError(
                f"grayskull's output for {name} {version} passed "
                f"{procgroup.MAX_OUTPUT >> 20} MB (its setup.py floods its output); "
                "killed with every process it started",
                hint="pin another version of the package, or --map it to a conda channel's",
                package=name, log=where or _tail(log),
            )
        answer = _read_answer(work / "answer.json")
        if answer is None:
            raise RecipegenError(
                f"grayskull worker for {name} {version} died "
                f"({procgroup.describe(done.returncode or 0)}) after {done.seconds:.1f} s "
                "without an answer",
                package=name, log=where or _tail(log),
            )
        return answer, log


def _log_file(cache_dir: Path, name: str, version: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}-{version}")
    return Path(cache_dir, "logs", f"grayskull-{safe}.log")


def _first_line(text: object) -> str:
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    return lines[0][:500] if lines else "unknown error"


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
    atomic_write(path, json.dumps(recipe.to_json(), indent=1, sort_keys=True))
