"""The safeguards against hostile input, one by one (the end-to-end tests are in
``test_e2e_hostile_*``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from fakeindex import FakeIndex, Project
from hostile import assert_no_processes_with, processes_with

from recipegen import localchannel, procgroup
from recipegen._pip_guard import member_problem
from recipegen.errors import RecipegenError
from recipegen.generate import _url, safe_entry_points
from recipegen.install import readable_solver_error
from recipegen.licenses import spdx
from recipegen.pypi import DistFile, PyPI
from recipegen.resolve import ResolutionConflict, _explain, parse_requirement
from recipegen.workroot import WorkRoot


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(("member", "problem"), [
    (_member("pkg-1.0/setup.py"), None),
    (_member("pkg-1.0/a/../b.py"), None),
    (_member("pkg-1.0/../../x"), "points outside the archive (..)"),
    (_member("../x"), "points outside the archive (..)"),
    (_member("/etc/x"), "has an absolute path"),
    (_member("C:/x"), "has an absolute path"),
    (_member("pkg-1.0/l", tarfile.SYMTYPE, "data/f"), None),
    (_member("pkg-1.0/l", tarfile.SYMTYPE, "../other-1.0/f"), None),  # still in the tree
    (_member("pkg-1.0/l", tarfile.SYMTYPE, "../../f"), "links outside the archive (../../f)"),
    (_member("pkg-1.0/l", tarfile.SYMTYPE, "/etc/passwd"), "links outside the archive "
     "(/etc/passwd)"),
    (_member("pkg-1.0/h", tarfile.LNKTYPE, "pkg-1.0/setup.py"), None),
    (_member("pkg-1.0/h", tarfile.LNKTYPE, "../x"), "is a hard link outside the archive (../x)"),
    (_member("pkg-1.0/d", tarfile.CHRTYPE), "is a device or fifo"),
    (_member("pkg-1.0/f", tarfile.FIFOTYPE), "is a device or fifo"),
])
def test_archive_member_rules(member: tarfile.TarInfo, problem: str | None) -> None:
    assert member_problem(member) == problem


def test_entry_points_that_are_not_plain_are_left_out() -> None:
    kept, refused = safe_entry_points([
        "tool = pkg.cli:main", "tool2=pkg.cli:main", "tool = pkg.cli:main",
        "x$(touch /tmp/p) = pkg:main", "../escape = pkg:main", ".hidden = pkg:main",
        "name = ${{ env.get('HOME') }}", "a b = pkg:main", "ok = pkg.mod:obj.attr"])
    assert kept == ("tool = pkg.cli:main", "tool2 = pkg.cli:main", "ok = pkg.mod:obj.attr")
    assert refused == ("x$(touch /tmp/p) = pkg:main", "../escape = pkg:main",
                       ".hidden = pkg:main", "name = ${{ env.get('HOME') }}", "a b = pkg:main")


@pytest.mark.parametrize(("url", "kept"), [
    ("https://example.org/p", True), ("https://example.org/${{x}}?q=a:b#c", True),
    ("https://[not-ipv6", False), ("https://exa\x00mple.org", False), ("http://:80", False),
    ("javascript:alert(1)", False), ("https://exa mple.org", False), ("", False)])
def test_only_http_urls_become_homepages(url: str, kept: bool) -> None:
    assert _url(url) == (url if kept else None)  # ("https://[not-ipv6" raised ValueError)


@pytest.mark.parametrize("text", ["MIT AND", 'MIT ${{ env.get("HOME") }}', "{% if %}",
                                  "GPL-2.0 WITH", "(", "a: b # c"])
def test_licence_text_that_is_no_spdx_is_none(text: str) -> None:
    assert spdx(text) is None  # (license_expression raised AttributeError on "MIT AND")


def test_the_solvers_tree_becomes_a_plain_list() -> None:
    text = ("Cannot solve the request because of: The following packages are incompatible\n"
            "├─ a * can be installed with any of the following options:\n"
            "│  └─ a 1.0\n"
            "└─ b * cannot be installed because there are no viable options:\n"
            "   └─ b 1.0 would constrain\n")
    assert readable_solver_error(text) == (
        "  The following packages are incompatible\n"
        "  - a * can be installed with any of the following options:\n"
        "     - a 1.0\n"
        "  - b * cannot be installed because there are no viable options:\n"
        "     - b 1.0 would constrain")


# -- pip's failures, explained ----------------------------------------------------------------


def test_a_conflict_is_a_resolution_conflict_with_pips_reason() -> None:
    output = ("Collecting a\nERROR: Cannot install a==1 and b==2 because these package "
              "versions have conflicting dependencies.\n\nThe conflict is caused by:\n"
              "    a 1 depends on b==1\n\nERROR: ResolutionImpossible: for help visit x\n")
    error = _explain(output, [parse_requirement("a==1"), parse_requirement("b==2")])
    assert isinstance(error, ResolutionConflict)
    assert "The conflict is caused by:\n    a 1 depends on b==1" in error.message
    assert "Collecting" not in error.message


def test_a_long_version_list_is_cut_to_the_newest() -> None:
    versions = ", ".join(f"1.{i}" for i in range(40))
    output = (f"Looking in indexes: http://127.0.0.1:1/simple/\nERROR: Could not find a version "
              f"that satisfies the requirement a==9 (from versions: {versions})\n"
              "ERROR: No matching distribution found for a==9\n")
    with FakeIndex() as index:
        index.add(Project("a"))
        error = _explain(output.replace("127.0.0.1:1", index.url[7:]), [parse_requirement("a==9")])
    assert error.message.startswith("no release of a matches 'a==9'")
    assert "(from versions: ..., 1.28, 1.29" in error.message and "1.0," not in error.message


def test_a_missing_name_is_told_apart_from_a_failing_index() -> None:
    with FakeIndex() as index:
        output = (f"Looking in indexes: {index.url}/simple/\nERROR: Could not find a version "
                  "that satisfies the requirement nope (from versions: none)\n"
                  "ERROR: No matching distribution found for nope\n")
        missing = _explain(output, [parse_requirement("nope")])
        index.behave["/simple/"] = 502
        failing = _explain(output, [parse_requirement("nope")])
    assert missing.message.startswith("no package named 'nope' on the package index")
    assert failing.message.startswith(f"the package index {index.url}/simple/ answers HTTP 502")


# -- children: deadline, output cap, Ctrl-C -----------------------------------------------------

SLEEPER = ("import subprocess, sys, time\n"
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)',"
           " sys.argv[1]])\n"
           "time.sleep(3600)\n")


def test_a_child_is_killed_with_its_group_at_the_deadline(tmp_path: Path) -> None:
    marker = f"recipegen-test-{uuid.uuid4().hex}"
    done = procgroup.run([sys.executable, "-c", SLEEPER, marker], timeout=3,
                         log=tmp_path / "log")
    assert done.timed_out and done.returncode is None
    assert_no_processes_with(marker)


def test_a_flooding_child_is_killed_and_its_log_kept_to_the_cap(tmp_path: Path) -> None:
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    done = procgroup.run([sys.executable, "-c", flood], timeout=600, log=tmp_path / "log",
                         max_output=1 << 20)
    assert done.flooded and not done.timed_out
    assert (tmp_path / "log").stat().st_size == 1 << 20


def test_kill_all_ends_running_children_at_once(tmp_path: Path) -> None:
    marker = f"recipegen-test-{uuid.uuid4().hex}"
    result: list[procgroup.Finished] = []
    thread = threading.Thread(target=lambda: result.append(procgroup.run(
        [sys.executable, "-c", SLEEPER, marker], timeout=3600, log=tmp_path / "log")))
    thread.start()
    for _ in range(2400):  # until the grandchild runs
        if processes_with(marker):
            break
        time.sleep(0.05)
    procgroup.kill_all()
    thread.join(60)
    assert result and result[0].returncode == -9 and not result[0].timed_out
    assert_no_processes_with(marker)


def test_a_child_started_while_kill_all_runs_is_killed_too(tmp_path: Path,
                                                           monkeypatch) -> None:
    """Ctrl-C between a child's start and its registration must not let it run on."""
    marker = f"recipegen-test-{uuid.uuid4().hex}"
    real_popen = subprocess.Popen

    def popen_then_interrupt(*args, **kwargs):  # kill_all lands in the window, every time
        proc = real_popen(*args, **kwargs)
        procgroup.kill_all()
        return proc

    monkeypatch.setattr(procgroup.subprocess, "Popen", popen_then_interrupt)
    started = time.monotonic()
    done = procgroup.run([sys.executable, "-c", SLEEPER, marker], timeout=3600,
                         log=tmp_path / "log")
    assert done.returncode == -9 and time.monotonic() - started < 60
    assert_no_processes_with(marker)


# -- PyPI's client: bounded --------------------------------------------------------------------


def test_pypi_tries_a_failing_index_a_bounded_number_of_times(tmp_path: Path,
                                                              monkeypatch) -> None:
    with FakeIndex() as index:
        index.add(Project("flaky"))
        monkeypatch.setenv("RECIPEGEN_PYPI_URL", f"{index.url}/pypi/")
        index.behave["/pypi/"] = 503
        with pytest.raises(RecipegenError, match=r"HTTP 503; tried 3 times, 1 s each\), for flaky"):
            PyPI(tmp_path, timeout=1, retries=3).project("flaky")
        assert index.hits["/pypi/flaky/json"] == 3
        sdist = index.file("flaky-1.0.tar.gz")
        file = DistFile(sdist.filename, f"{index.url}/files/{sdist.filename}", sdist.sha256,
                        "sdist")
        index.behave = {"/files/": "stall"}
        with pytest.raises(RecipegenError, match=r"failed: .*tried 2 times"):
            PyPI(tmp_path, timeout=1, retries=2).download(file, tmp_path / "sdists")
        assert index.hits[f"/files/{sdist.filename}"] == 2
        assert not [p for p in (tmp_path / "sdists").rglob("*") if p.is_file()]
        index.behave = {}
        assert PyPI(tmp_path, timeout=5, retries=1).download(file, tmp_path / "sdists").is_file()


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_http_settings_must_be_positive(monkeypatch, value: str) -> None:
    monkeypatch.setenv("RECIPEGEN_HTTP_TIMEOUT", value)
    with pytest.raises(RecipegenError, match="RECIPEGEN_HTTP_TIMEOUT"):
        PyPI()


# -- what a killed run leaves behind -------------------------------------------------------------


def test_staging_of_dead_processes_is_removed(tmp_path: Path) -> None:
    work = WorkRoot.at(tmp_path / "work")
    dead = work.staging / "idna-999999999-140000"
    alive = work.staging / f"idna-{os.getpid()}-140000"
    for folder in (dead, alive):
        (folder / "out").mkdir(parents=True)
    work.ensure_writable()
    assert not dead.exists() and alive.exists()


def test_a_channel_heals_what_a_killed_publish_left(tmp_path: Path) -> None:
    from envhelpers import build_tiny_channel

    source = build_tiny_channel(tmp_path / "source", {"tiny": []})
    package = next((source / "noarch").glob("tiny-*.conda"))
    channel = tmp_path / "channel"
    localchannel.ensure(channel, "linux-64")
    # killed between placing the package and indexing it, and while copying another
    (channel / "noarch" / package.name).write_bytes(package.read_bytes())
    (channel / "noarch" / ".incoming-1-other-1.0-0.conda.part").write_bytes(b"half")
    assert not localchannel.is_consistent(channel)
    localchannel.ensure(channel, "linux-64")
    assert localchannel.is_consistent(channel)
    assert localchannel.listed_files(channel)["noarch"] == {package.name}
    localchannel.publish([package], channel)
    assert not list(channel.glob("*/.incoming-*"))
