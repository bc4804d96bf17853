"""Builds that fail, and Ctrl-C in every phase: the failed build's log is kept and named,
``--keep-going`` still finishes what does not depend on it, nothing is installed; an
interrupt leaves no half-written recipe, package or env record, and the next run goes on
from what was complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import snapshot
from fakeindex import Project
from hostile import (
    Scene,
    assert_channel_consistent,
    assert_failed_clearly,
    assert_no_processes_with,
    assert_unchanged,
    events,
    packages_in,
    wait_for,
)
from rattler_build import Stage0Recipe, VariantConfig

from recipegen.history import History, dist_str

pytestmark = pytest.mark.e2e

# -- 6. a build that fails -------------------------------------------------------------------

REFUSE = "raise RuntimeError('this package refuses to build: on purpose')\n"


@pytest.mark.parametrize("keep_going", [True, False], ids=["keep-going", "stop"])
def test_a_failing_build_keeps_its_log_and_installs_nothing(scene: Scene,
                                                            keep_going: bool) -> None:
    tag = "k" if keep_going else "s"
    breaks, steady, needs = f"breaks-{tag}", f"steady-{tag}", f"needs-breaks-{tag}"
    scene.index.add(Project(breaks, hooks={"build": REFUSE}))
    scene.index.add(Project(steady))
    scene.index.add(Project(needs, requires_dist=(breaks,)))
    before = snapshot(scene.env)
    proc = scene.install(breaks, steady, needs, "--jobs", "1",
                         *(["--keep-going"] if keep_going else []))
    log = scene.work / "logs" / f"{breaks}.log"
    error = assert_failed_clearly(proc, f"building {breaks} failed",
                                  "this package refuses to build: on purpose", f"log: {log}",
                                  "nothing was installed", code=1)
    assert "this package refuses to build: on purpose" in log.read_text()
    built = {name.rsplit("-", 2)[0] for name in packages_in(scene.work)}
    if keep_going:  # the independent build finished and is reported; the dependent one not
        assert steady in built
        assert f"built: {steady}" in error
        assert f"not built, a dependency failed: {needs}" in error
    else:  # nothing new started after the failure (they build in name order, one at a time)
        assert steady not in built
    assert needs not in built and breaks not in built
    assert_unchanged(scene.env, before, scene.work)


# -- 9. Ctrl-C in every phase --------------------------------------------------------------


def _interrupt(proc: subprocess.Popen) -> tuple[list[dict], str]:
    """Ctrl-C as a terminal sends it: to the whole foreground process group."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return events(out), err


def _assert_nothing_half_done(work: Path, marker: str) -> None:
    """Every recipe whole, every package whole and indexed, no scratch left, no process."""
    for recipe in (work / "recipes").glob("*/recipe.yaml"):
        Stage0Recipe.from_file(str(recipe)).render(VariantConfig())
    assert not [p for p in (work / "recipes").rglob(".*") if p.is_file()]
    assert not list((work / "cache").rglob(".part-*"))
    assert not list((work / "staging").glob("*"))
    assert_channel_consistent(work)
    assert_no_processes_with(marker)


def _statuses(found: list[dict]) -> dict[str, str]:
    return {e["package"]: e["status"] for e in found if e.get("event") == "package"
            and e["status"] in ("built", "cached", "failed")}


def test_ctrl_c_in_each_phase_then_the_next_run_goes_on(scene: Scene, tmp_path: Path) -> None:
    """One install, interrupted while resolving, generating, building and linking in turn;
    each run goes on from what the one before completed."""
    marker = f"recipegen-test-{uuid.uuid4().hex}"  # in the env of everything recipegen starts
    gates = {step: tmp_path / f"gate-{step}" for step in ("generate", "build")}
    started = {step: tmp_path / f"started-{step}" for step in ("generate", "build")}

    def gate(step: str) -> str:  # note that it runs, then wait while the gate is there
        return (f"import os, time\nopen({str(started[step])!r}, 'w').close()\n"
                f"while os.path.exists({str(gates[step])!r}):\n    time.sleep(0.05)\n")

    scene.index.add(Project("int-lib"))
    scene.index.add(Project("int-app", requires_dist=("int-lib",), setup_py=gate("generate"),
                            hooks={"build": gate("build")}))
    scene.env, scene.work = tmp_path / "int-env", tmp_path / "int-work"
    scene.extra_env = {"RECIPEGEN_TEST_MARKER": marker}

    # resolve: pip is waiting for the index
    scene.index.behave["/simple/int-app/"] = "hang"
    proc = scene.popen("int-app")
    wait_for(lambda: scene.index.hits["/simple/int-app/"] > 0, "pip asking the index", proc)
    _found, err = _interrupt(proc)
    assert proc.returncode == 130 and "interrupted; the env was not changed" in err, err
    assert not scene.env.exists()
    _assert_nothing_half_done(scene.work, marker)
    del scene.index.behave["/simple/int-app/"]

    # generate: grayskull is running int-app's setup.py
    for g in gates.values():
        g.touch()
    proc = scene.popen("int-app")
    wait_for(started["generate"].exists, "setup.py running under grayskull", proc)
    _found, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert not scene.env.exists()
    assert not list((scene.work / "cache" / "upstream").glob("int-app-*"))
    _assert_nothing_half_done(scene.work, marker)

    # build: int-lib is built, int-app's build is running
    gates["generate"].unlink()
    proc = scene.popen("int-app")
    wait_for(started["build"].exists, "int-app's build running", proc)
    found, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert _statuses(found)["int-lib"] == "built"
    assert _statuses(found).get("int-app") != "built"  # (killed: reported as failed)
    assert {p.split("-1.0-")[0] for p in packages_in(scene.work)} == {"int-lib"}
    assert not scene.env.exists()
    _assert_nothing_half_done(scene.work, marker)

    # link: Ctrl-C is held until the env is consistent
    gates["build"].unlink()
    proc = scene.popen("int-app")
    seen: list[dict] = []
    for line in proc.stdout:
        if line.startswith("{"):
            seen.append(json.loads(line))
            if seen[-1].get("phase") == "install":
                break
    found, err = _interrupt(proc)
    statuses = _statuses(seen + found)
    assert statuses["int-app"] == "built"
    assert statuses.get("int-lib", "cached") == "cached"  # the earlier run's build, reused
    warned = any("the change was finished first" in e.get("message", "") for e in found)
    if proc.returncode == 0:  # the usual case: the signal came while linking
        assert warned, err
    elif "interrupted; the env was not changed" in err:  # it came before linking began
        assert proc.returncode == 130
        assert not list((scene.env / "conda-meta").glob("*.json"))
    else:  # it came after linking
        assert proc.returncode == 130 and "interrupted after the change of" in err, err
    if (scene.env / "conda-meta").is_dir():  # what is there is consistent
        assert not (scene.env / "conda-meta" / "recipegen" / "pending.json").exists()
        assert History(scene.env).state() == {dist_str(json.loads(p.read_text())) for p in
                                              (scene.env / "conda-meta").glob("*.json")}
    _assert_nothing_half_done(scene.work, marker)

    # and once more: everything is there, or is finished now
    proc = scene.popen("int-app")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert set(_statuses(events(out)).values()) == {"cached"}
    records = {json.loads(p.read_text())["name"]: json.loads(p.read_text())
               for p in (scene.env / "conda-meta").glob("*.json")}
    assert set(records) == {"python", "int-lib", "int-app"}
    assert History(scene.env).state() == {dist_str(r) for r in records.values()}
    assert not (scene.env / "conda-meta" / "recipegen" / "pending.json").exists()
    done = subprocess.run([str(scene.env / "bin" / "python"), "-c", "import int_app, int_lib"],
                          check=False)
    assert done.returncode == 0
    assert_channel_consistent(scene.work)


# -- a package that imports what it does not declare -------------------------------------


def test_an_undeclared_import_drops_the_import_test_once(scene: Scene) -> None:
    """soupsieve imports bs4 and does not declare it (bs4 depends on soupsieve): pip
    installs it, so recipegen builds it too, without the import test, and says so; the
    next identical request builds nothing."""
    scene.index.add(Project("undeclared-dep",
                            init_source="import some_module_nobody_declares\n"))
    proc = scene.install("undeclared-dep", "--json")
    assert proc.returncode == 0, proc.stderr
    found = events(proc.stdout)
    warned = [e["message"] for e in found if e.get("event") == "warning"]
    assert any("needs some_module_nobody_declares" in w for w in warned), warned
    recipe = (scene.work / "recipes" / "undeclared-dep" / "recipe.yaml").read_text()
    assert "imports:" not in recipe and "pip_check: true" in recipe
    assert "Import test dropped" in recipe
    built = [p for p in packages_in(scene.work) if p.startswith("undeclared-dep-")]
    assert len(built) == 1  # the package that failed its test was never published

    scene.env = scene.env.with_name("env-again")
    again = scene.install("undeclared-dep", "--json")
    assert again.returncode == 0, again.stderr
    statuses = {e["package"]: e["status"] for e in events(again.stdout)
                if e.get("event") == "package" and e.get("status") in ("built", "failed")}
    assert statuses == {}, statuses  # its recipe is planned without the test straight away


def test_a_missing_module_of_its_own_still_fails(scene: Scene) -> None:
    scene.index.add(Project("broken-own", init_source="import broken_own.not_shipped\n"))
    proc = scene.install("broken-own")
    assert proc.returncode == 1
    assert "No module named 'broken_own.not_shipped'" in proc.stderr, proc.stderr
    assert not [p for p in packages_in(scene.work) if p.startswith("broken-own-")]
