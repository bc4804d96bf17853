"""Build recipes with rattler-build, in dependency order, several at a time.

Each build runs in its own process (``recipegen._build_worker``) into a private staging
directory; only a finished, tested package is moved into the local channel. A package
whose exact file (name, version, content-hash build string) is already in the channel is
not built again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recipegen import localchannel
from recipegen.errors import RecipegenError
from recipegen.workroot import WorkRoot


@dataclass(frozen=True)
class BuildJob:
    """One recipe to build, after the jobs named in ``after``."""

    name: str  # the step's key (PyPI name)
    conda_name: str
    recipe: Path
    file_name: str  # the package file the recipe produces
    subdir: str  # "noarch" or the target platform
    after: frozenset[str] = frozenset()
    skip_tests: bool = False
    variant: str = ""  # variants.yaml text, for recipes that need variables (python_min)
    publish: bool = True  # False: build and test only (export's trial build)
    #: The package's build time (seconds since the epoch): fixed, so rebuilds are identical.
    timestamp: int = 0


@dataclass(frozen=True)
class BuildOutcome:
    name: str
    status: Literal["built", "cached", "failed", "skipped"]
    package: Path | None
    log: Path
    seconds: float = 0.0
    error: str | None = None


Progress = Callable[[str, str, dict], None]  # (event, package name, details)


def _noop(event: str, name: str, details: dict) -> None:
    pass


class BuildFailed(RecipegenError):
    """At least one build failed; ``outcomes`` says what happened to each."""

    def __init__(self, outcomes: list[BuildOutcome]) -> None:
        failed = [o for o in outcomes if o.status == "failed"]
        first = failed[0]
        names = ", ".join(o.name for o in failed)
        done = [o.name for o in outcomes if o.status in ("built", "cached")]
        skipped = [o.name for o in outcomes if o.status == "skipped"]
        summary = "".join(f"\n  {label}: {', '.join(group)}" for label, group in
                          (("built", done), ("not built, a dependency failed", skipped))
                          if group)
        super().__init__(
            f"building {names} failed: {first.error}{summary}",
            hint="nothing was installed; read the log, fix the cause (or pin another "
            "version) and run again; packages already built are kept and will not be "
            "rebuilt",
            package=first.name,
            log=str(first.log),
        )
        self.outcomes = outcomes


def run_one(job: BuildJob, work: WorkRoot, channels: list[str]) -> BuildOutcome:
    """Build one recipe in a worker process; publish the package on success."""
    log = work.log_path(job.conda_name)
    existing = (localchannel.has_package(work.channel, job.subdir, job.file_name)
                if job.publish else None)
    if existing is not None:
        return BuildOutcome(job.name, "cached", existing, log)
    work.logs.mkdir(parents=True, exist_ok=True)
    staging = work.staging / f"{job.conda_name}-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    answer = staging / "answer.json"
    request = {
        "recipe": str(job.recipe),
        "output_dir": str(staging / "out"),
        "channels": [work.channel.as_uri(), *channels],
        "skip_tests": job.skip_tests,
        "variant": job.variant,
        "timestamp": job.timestamp,
        "answer": str(answer),
    }
    start = time.monotonic()
    try:
        with open(log, "w") as log_fh:
            log_fh.write(f"recipegen: building {job.recipe}\n")
            log_fh.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "recipegen._build_worker", json.dumps(request)],
                stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            _ACTIVE.add(proc)
            try:
                proc.wait()
            finally:
                _ACTIVE.discard(proc)
        seconds = time.monotonic() - start
        result = json.loads(answer.read_text()) if answer.exists() else {
            "ok": False, "error": f"the build process died (exit status {proc.returncode})"}
        if not result["ok"]:
            return BuildOutcome(job.name, "failed", None, log, seconds,
                                _first_line(result["error"]) + _excerpt(log))
        built = [Path(p) for p in result["packages"]]
        if not job.publish:
            return BuildOutcome(job.name, "built", None, log, seconds)
        wanted = [p for p in built if p.name == job.file_name] or built
        placed = localchannel.publish(wanted, work.channel)
        return BuildOutcome(job.name, "built", placed[0], log, seconds)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: Build processes running now; each is its own process group (rattler-build starts
#: shells and pip), so an interrupt of recipegen must kill them explicitly.
_ACTIVE: set[subprocess.Popen] = set()


def kill_active() -> None:
    """Kill every running build with all its children (on Ctrl-C or another failure)."""
    for proc in list(_ACTIVE):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


#: Where the cause of a failed build ends in its log, most telling first: pip's report
#: of a backend that failed (the backend's own traceback is right above), pip's internal
#: traceback of that (noise), rattler-build's end of the script.
_CAUSE_ENDS = ("error: subprocess-exited-with-error", "Exception information:",
               "Script execution failed", "Traceback (most recent call last)")


def _excerpt(log: Path, lines: int = 12) -> str:
    """The lines of a build log that usually say why it failed."""
    try:
        raw = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    text = [line.removeprefix("[info] ").removeprefix("[error] ").rstrip() for line in raw]
    cut = len(text)
    for end in _CAUSE_ENDS:
        found = next((i for i, line in enumerate(text) if end in line), None)
        if found is not None:
            cut = found
            break
    keep = [line for line in text[:cut] if line.strip() not in ("", "[info]", "[error]")]
    tail = keep[-lines:]
    return ("\n    " + "\n    ".join(tail)) if tail else ""


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0][:500] if lines else "unknown error"


def build_all(jobs: list[BuildJob], work: WorkRoot, channels: list[str], *,
              max_jobs: int = 1, keep_going: bool = False,
              progress: Progress = _noop) -> list[BuildOutcome]:
    """Run every job once its ``after`` jobs are done, ``max_jobs`` at a time.

    On a failure, jobs that depend on it are skipped; with ``keep_going`` independent
    jobs still run, otherwise nothing new starts. Raises :class:`BuildFailed` at the end
    if anything failed.
    """
    pending = {j.name: j for j in jobs}
    outcomes: dict[str, BuildOutcome] = {}
    running: dict[str, threading.Thread] = {}
    lock = threading.Condition()

    def worker(job: BuildJob) -> None:
        progress("building", job.name, {"skip_tests": job.skip_tests})
        try:
            outcome = run_one(job, work, channels)
        except Exception as exc:  # an I/O error of ours: report it like a failed build
            outcome = BuildOutcome(job.name, "failed", None, work.log_path(job.conda_name),
                                   error=str(exc))
        progress(outcome.status, job.name, {"seconds": round(outcome.seconds, 1),
                                            "log": str(outcome.log), "error": outcome.error})
        with lock:
            outcomes[job.name] = outcome
            del running[job.name]
            lock.notify_all()

    try:
        _schedule(pending, outcomes, running, lock, worker, work, max_jobs, keep_going,
                  progress)
    except BaseException:
        kill_active()
        for thread in list(running.values()):
            thread.join(timeout=30)
        raise
    results = [outcomes[j.name] for j in jobs if j.name in outcomes]
    if any(o.status == "failed" for o in results):
        raise BuildFailed(results)
    return results


def _schedule(pending: dict[str, BuildJob], outcomes: dict[str, BuildOutcome],
              running: dict[str, threading.Thread], lock: threading.Condition,
              worker: Callable[[BuildJob], None], work: WorkRoot, max_jobs: int,
              keep_going: bool, progress: Progress) -> None:
    stop = False
    with lock:
        while pending or running:
            failed = {n for n, o in outcomes.items() if o.status in ("failed", "skipped")}
            if failed and not keep_going:
                stop = True
            for name in sorted(pending):
                job = pending[name]
                if job.after & failed:
                    outcomes[name] = BuildOutcome(name, "skipped", None,
                                                  work.log_path(job.conda_name),
                                                  error="a dependency failed to build")
                    progress("skipped", name, {"error": "a dependency failed to build"})
                    del pending[name]
            ready = [n for n in sorted(pending) if pending[n].after <= outcomes.keys()]
            while ready and not stop and len(running) < max_jobs:
                job = pending.pop(ready.pop(0))
                thread = threading.Thread(target=worker, args=(job,), daemon=True)
                running[job.name] = thread
                thread.start()
            if stop and not running:
                break
            if not running and pending and not ready:
                raise RecipegenError("internal error: build order has a cycle: "
                                     + ", ".join(sorted(pending)))
            lock.wait()
