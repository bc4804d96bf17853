"""Independent recipes are generated at the same time, and builds run side by side up to
``--jobs``. Each package holds a gate (its ``setup.py`` under grayskull, or its build
backend under rattler-build) that notes it has started, then waits while a gate file
exists: seeing two packages started while both are held proves they ran at once, without
measuring time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fakeindex import Project
from hostile import Scene, events, wait_for

pytestmark = pytest.mark.e2e


def _gate(started: Path, gate: Path) -> str:
    return (f"import os, time\nopen({str(started)!r}, 'w').close()\n"
            f"while os.path.exists({str(gate)!r}):\n    time.sleep(0.05)\n")


def _finish(proc: subprocess.Popen) -> list[dict]:
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    return events(out)


def _built(found: list[dict]) -> set[str]:
    return {e["package"] for e in found if e.get("event") == "package"
            and e.get("status") == "built"}


def test_independent_recipes_are_generated_at_the_same_time(scene: Scene,
                                                            tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    names = ("conc-gen-a", "conc-gen-b")
    started = {n: tmp_path / f"started-{n}" for n in names}
    for n in names:
        scene.index.add(Project(n, setup_py=_gate(started[n], gate)))
    proc = scene.popen(*names, "--jobs", "1")  # generation is not limited to --jobs
    try:
        wait_for(lambda: all(p.exists() for p in started.values()),
                    "both setup.py files running under grayskull at once", proc)
    finally:
        gate.unlink()
    assert _built(_finish(proc)) == set(names)


@pytest.mark.parametrize("jobs", [2, 1])
def test_builds_run_side_by_side_up_to_jobs(scene: Scene, tmp_path: Path, jobs: int) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    names = (f"conc-build{jobs}-a", f"conc-build{jobs}-b")
    started = {n: tmp_path / f"started-{n}" for n in names}
    for n in names:
        scene.index.add(Project(n, hooks={"build": _gate(started[n], gate)}))
    proc = scene.popen(*names, "--jobs", str(jobs))
    try:
        if jobs == 2:
            wait_for(lambda: all(p.exists() for p in started.values()),
                        "both builds running at once", proc)
        else:
            wait_for(lambda: any(p.exists() for p in started.values()),
                        "one build running", proc)
            time.sleep(3)  # room for a second build to start, if the limit did not hold
            assert sum(p.exists() for p in started.values()) == 1
    finally:
        gate.unlink()
    assert _built(_finish(proc)) == set(names)
