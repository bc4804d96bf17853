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
import re
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
    """What became of one build job (the package file when built or cached)."""

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


def _cached(job: BuildJob, work: WorkRoot) -> BuildOutcome | None:
    """The outcome of a job whose package the local channel already has, else None."""
    existing = (localchannel.has_package(work.channel, job.subdir, job.file_name)
                if job.publish else None)
    if existing is None:
        return None
    return BuildOutcome(job.name, "cached", existing, work.log_path(job.conda_name))


def run_one(job: BuildJob, work: WorkRoot, channels: list[str],
            progress: Progress | None = None) -> BuildOutcome:
    """Build one recipe in a worker process; publish the package on success.

    ``progress`` hears the worker's phase changes ("testing") as they happen.
    """
    log = work.log_path(job.conda_name)
    cached = _cached(job, work)
    if cached is not None:
        return cached
    import shutil  # a real build: a warm install, with every package cached, needs none

    (progress or _noop)("building", job.name, {"skip_tests": job.skip_tests})
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
    status_r, status_w = os.pipe()
    request["status_fd"] = status_w
    listener = threading.Thread(target=_relay_status, daemon=True,
                                args=(status_r, job.name, progress or _noop))
    try:
        with open(log, "w") as log_fh:
            log_fh.write(f"recipegen: building {job.recipe}\n")
            log_fh.flush()
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "recipegen._build_worker", json.dumps(request)],
                    stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, pass_fds=(status_w,),
                )
            finally:
                os.close(status_w)  # the worker holds the only writer: EOF when it ends
            listener.start()
            _ACTIVE.add(proc)
            try:
                proc.wait()
            finally:
                _ACTIVE.discard(proc)
        listener.join(timeout=5)
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
        if not listener.is_alive() and listener.ident is None:
            os.close(status_r)  # the worker never started: nobody reads the pipe
        shutil.rmtree(staging, ignore_errors=True)


def _relay_status(fd: int, name: str, progress: Progress) -> None:
    """Pass the worker's status lines on as progress events, until the worker ends."""
    with os.fdopen(fd, "r") as stream:
        for line in stream:
            word = line.strip()
            if word:
                progress(word, name, {})


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


def import_test_missing(outcome: BuildOutcome) -> str | None:
    """The module a failed build's tests could not import, if that is why it failed: the
    package built, and ``import`` of it raised ModuleNotFoundError."""
    if outcome.status != "failed" or "Test failed" not in (outcome.error or ""):
        return None
    try:
        text = outcome.log.read_text(errors="replace")
    except OSError:
        return None
    found = re.findall(r"ModuleNotFoundError: No module named '([\w.]+)'", text)
    return found[-1] if found else None


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
    rank = critical_path(jobs)
    outcomes: dict[str, BuildOutcome] = {}
    for job in jobs:  # already built: no thread to start (a warm install has only these)
        cached = _cached(job, work)
        if cached is not None:
            outcomes[job.name] = cached
            del pending[job.name]
            progress("cached", job.name, {"seconds": 0.0, "log": str(cached.log),
                                          "error": None})
    running: dict[str, threading.Thread] = {}
    lock = threading.Condition()

    def worker(job: BuildJob) -> None:
        try:
            outcome = run_one(job, work, channels, progress)
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
                  progress, rank)
    except BaseException:
        kill_active()
        for thread in list(running.values()):
            thread.join(timeout=30)
        raise
    results = [outcomes[j.name] for j in jobs if j.name in outcomes]
    if any(o.status == "failed" for o in results):
        raise BuildFailed(results)
    return results


def critical_path(jobs: list[BuildJob]) -> dict[str, tuple]:
    """A sort key per job: the longest chain of builds waiting on it first.

    Starting the head of the longest chain first is what shortens the whole build on few
    cores (setuptools and flit-core head httpx's 8-deep backend chain); ties go to the job
    more builds wait for, then by name, so the order is deterministic.
    """
    waiting: dict[str, set[str]] = {j.name: set() for j in jobs}
    for job in jobs:
        for dep in job.after:
            if dep in waiting:
                waiting[dep].add(job.name)
    depth: dict[str, int] = {}

    def chain(name: str) -> int:
        if name not in depth:
            depth[name] = 0  # a cycle (reported by the scheduler) must not recurse forever
            depth[name] = 1 + max((chain(d) for d in waiting[name]), default=0)
        return depth[name]

    def dependents(name: str) -> int:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for d in waiting[stack.pop()] - seen:
                seen.add(d)
                stack.append(d)
        return len(seen)

    return {j.name: (-chain(j.name), -dependents(j.name), j.name) for j in jobs}


def _schedule(pending: dict[str, BuildJob], outcomes: dict[str, BuildOutcome],
              running: dict[str, threading.Thread], lock: threading.Condition,
              worker: Callable[[BuildJob], None], work: WorkRoot, max_jobs: int,
              keep_going: bool, progress: Progress, rank: dict[str, tuple]) -> None:
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
            ready = sorted((n for n in pending if pending[n].after <= outcomes.keys()),
                           key=lambda n: rank[n])
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
