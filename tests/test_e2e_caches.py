"""The warm path for real: a second identical install generates and builds nothing.

One cold install of idna (flit-core, then idna, against the seed channel) fills a work
root; every later install reuses it. What happened is read from ``--json`` events (cache
hits, "generating", "building"), never from timings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import json_lines

pytestmark = pytest.mark.e2e


def _install(run_cli, seed: Path, work: Path, prefix: Path, *extra) -> list[dict]:
    proc = run_cli("install", "idna==3.10", "-p", prefix, "-c", seed, "--work-root", work,
                   "--json", "--constraints", work.parent / "constraints.txt", *extra)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json_lines(proc.stdout)


def _statuses(events: list[dict], status: str) -> list[str]:
    return [e["package"] for e in events if e.get("event") == "package"
            and e.get("status") == status]


def _plan_cache(events: list[dict]) -> dict:
    return next(e for e in events if e.get("event") == "cache" and e["cache"] == "plan")


@pytest.fixture(scope="module")
def warm_work(seed_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work root after one cold install of idna (the module's only builds)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("warm")
    (root / "constraints.txt").write_text("idna==3.10\nflit-core==3.12.0\n")
    work = root / "work"
    proc = subprocess.run([sys.executable, "-m", "recipegen", "install", "idna==3.10",
                           "-p", root / "cold-env", "-c", seed_channel, "--work-root", work,
                           "--json", "--constraints", root / "constraints.txt"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          cwd=root, check=False)
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    assert _plan_cache(events)["hit"] is False
    assert _statuses(events, "built") == ["flit-core", "idna"]
    assert set(_statuses(events, "testing")) == {"flit-core", "idna"}  # the worker's phase
    shutil.copytree(work, root / "as-after-cold", symlinks=True)  # tests below change work
    return work


def test_second_install_generates_and_builds_nothing(seed_channel: Path, warm_work: Path,
                                                     tmp_path: Path, run_cli) -> None:
    prefix = tmp_path / "env"
    events = _install(run_cli, seed_channel, warm_work, prefix)
    assert _plan_cache(events)["hit"] is True
    assert not _statuses(events, "resolving")
    assert not _statuses(events, "generating")
    assert not _statuses(events, "building")
    assert sorted(_statuses(events, "cached")) == ["flit-core", "idna"]
    # The env is complete as conda expects it: bytecode, history, protection marker.
    site = prefix / "lib" / "python3.11" / "site-packages"
    assert (site / "idna" / "__pycache__" / "core.cpython-311.pyc").is_file()
    assert "+file://" in (prefix / "conda-meta" / "history").read_text()
    assert (prefix / "lib" / "python3.11" / "EXTERNALLY-MANAGED").is_file()
    result = events[-1]
    assert [c["name"] for c in result["changes"]] == ["idna", "python"]


def test_changed_constraints_or_mapping_plan_again(seed_channel: Path, warm_work: Path,
                                                   tmp_path: Path, run_cli) -> None:
    constraints = tmp_path / "other.txt"
    constraints.write_text("idna==3.10\n")  # flit-core no longer pinned
    proc = run_cli("install", "idna==3.10", "-p", tmp_path / "a", "-c", seed_channel,
                   "--work-root", warm_work, "--json", "--constraints", constraints)
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    miss = _plan_cache(events)
    assert miss["hit"] is False and "a constraints file" in miss["detail"]
    assert _statuses(events, "resolving") == ["idna"]
    # Recipes come from the recipe cache and packages from the local channel.
    generated = [e for e in events if e.get("status") == "generated"]
    assert generated and all(e.get("cached") for e in generated)
    assert not _statuses(events, "building")

    events = _install(run_cli, seed_channel, warm_work, tmp_path / "b",
                      "--map", "idna=idna-renamed-for-this-test")
    miss = _plan_cache(events)
    assert miss["hit"] is False and "the options" in miss["detail"]
    generated = [e for e in events if e.get("status") == "generated"]
    assert [e["package"] for e in generated if not e.get("cached")] == ["idna"]  # remapped
    assert _statuses(events, "building") == ["idna"]  # another recipe: another package


def test_refresh_plans_afresh_and_reuses_the_rest(seed_channel: Path, warm_work: Path,
                                                  tmp_path: Path, run_cli) -> None:
    events = _install(run_cli, seed_channel, warm_work, tmp_path / "env", "--refresh")
    assert not any(e.get("event") == "cache" and e["cache"] == "plan" for e in events)
    assert _statuses(events, "resolving") == ["idna"]
    assert not _statuses(events, "building")
    assert _statuses(events, "cached") == ["idna"]
    # A fresh plan finds the local channel's flit-core: reused, not even a build step.
    actions = {p["pypi_name"]: p["action"] for p in events[-1]["packages"]}
    assert actions == {"idna": "build", "flit-core": "reuse"}


def test_a_deleted_package_is_built_again_from_the_saved_plan(
        seed_channel: Path, warm_work: Path, tmp_path: Path, run_cli) -> None:
    work = tmp_path / "work"
    shutil.copytree(warm_work.parent / "as-after-cold", work, symlinks=True)
    (work.parent / "constraints.txt").write_text((warm_work.parent / "constraints.txt")
                                                 .read_text())
    for package in (work / "channel" / "noarch").glob("idna-*.conda"):
        package.unlink()
    from recipegen import localchannel

    localchannel.index(work / "channel")
    events = _install(run_cli, seed_channel, work, tmp_path / "env")
    assert _plan_cache(events)["hit"] is True  # the plan holds: its own build is missing
    assert _statuses(events, "built") == ["idna"]
    assert _statuses(events, "cached") == ["flit-core"]
