"""All or nothing: a failed build, an unsatisfiable solve, Ctrl-C or a kill while building
leave the env byte for byte as it was; two recipegen processes at once corrupt nothing."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import HTTPX_CLOSURE, snapshot
from envhelpers import build_tiny_channel, link_env, records

from recipegen import localchannel, locks
from recipegen.history import History, dist_str

pytestmark = pytest.mark.e2e


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CONDA_PREFIX", None)
    return env


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recipegen", *map(str, args)],
                          capture_output=True, text=True, env=_env(),
                          stdin=subprocess.DEVNULL, timeout=1800, check=False)


@pytest.fixture(scope="module")
def work(seed_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("atomic-work") / "work"
    proc = cli("install", "idna==3.10", "-p", root.parent / "first-env", "-c", seed_channel,
               "--work-root", root, "--constraints", HTTPX_CLOSURE, "-y", "-q")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def env_with_idna(seed_channel: Path, work: Path, tmp_path: Path) -> Path:
    env = tmp_path / "env"
    proc = cli("install", "idna==3.10", "-p", env, "-c", seed_channel, "--work-root", work,
               "--constraints", HTTPX_CLOSURE, "-y", "-q")
    assert proc.returncode == 0, proc.stderr
    return env


def _channel_consistent(channel: Path) -> None:
    listed, present = localchannel.listed_files(channel), localchannel.present_files(channel)
    assert {k: v for k, v in listed.items() if v} == {k: v for k, v in present.items() if v}


def test_failing_build_leaves_env_unchanged(env_with_idna: Path, seed_channel: Path,
                                            tmp_path: Path) -> None:
    # A flit-core that is not flit-core: typing-extensions' build cannot import its backend.
    bogus = build_tiny_channel(tmp_path / "bogus", {"flit-core": {"version": "3.12.0"}})
    before = snapshot(env_with_idna)
    proc = cli("install", "typing-extensions==4.16.0", "-p", env_with_idna, "-c", bogus,
               "-c", seed_channel, "--work-root", tmp_path / "work2",
               "--constraints", HTTPX_CLOSURE, "-y")
    assert proc.returncode == 1
    assert "building typing-extensions failed" in proc.stderr
    assert "No module named 'flit_core'" in proc.stderr
    assert snapshot(env_with_idna) == before
    _channel_consistent(tmp_path / "work2" / "channel")


def test_unsatisfiable_final_solve_leaves_env_unchanged(seed_channel: Path, work: Path,
                                                        tmp_path: Path) -> None:
    # The env holds a package (asked for by the user) that forbids idna >= 3.
    tiny = build_tiny_channel(tmp_path / "tiny", {"blocker": {"constrains": ["idna <3"]}})
    env = tmp_path / "env"
    link_env(env, [seed_channel.as_uri(), tiny.as_uri()], ["python 3.11.*", "blocker"])
    before = snapshot(env)
    proc = cli("install", "idna==3.10", "-p", env, "-c", tiny, "-c", seed_channel,
               "--work-root", work, "--constraints", HTTPX_CLOSURE, "-y")
    assert proc.returncode == 1
    assert "the final solve found no way to install idna ==3.10" in proc.stderr
    assert "nothing was changed" in proc.stderr
    assert snapshot(env) == before


def _start_build(env: Path, seed: Path, work: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "recipegen", "install", "typing-extensions==4.16.0", "-p", env,
         "-c", seed, "--work-root", work, "--constraints", HTTPX_CLOSURE, "-y", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_for_building(proc: subprocess.Popen) -> str:
    for line in proc.stdout:
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "package" and event.get("status") == "building":
                return event["package"]
    raise AssertionError("no build started: " + proc.stderr.read())


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupt_or_kill_while_building_leaves_env_unchanged(
        how: str, env_with_idna: Path, seed_channel: Path, tmp_path: Path) -> None:
    before = snapshot(env_with_idna)
    work = tmp_path / "work2"
    proc = _start_build(env_with_idna, seed_channel, work)
    try:
        assert _wait_for_building(proc) == "flit-core"
        if how == "SIGINT":  # Ctrl-C in a terminal: the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        else:  # the OOM killer or `kill -9`: recipegen alone, no chance to clean up
            os.kill(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # build workers orphaned by SIGKILL
    if how == "SIGINT":
        assert proc.returncode == 130
        assert "interrupted; the env was not changed" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert snapshot(env_with_idna) == before
    if (work / "channel").exists():
        _channel_consistent(work / "channel")


def test_two_processes_share_a_work_root_and_an_env(seed_channel: Path,
                                                    tmp_path: Path) -> None:
    env, work = tmp_path / "env", tmp_path / "work"
    common = ["-p", env, "-c", seed_channel, "--work-root", work,
              "--constraints", HTTPX_CLOSURE, "-y"]
    procs = [subprocess.Popen([sys.executable, "-m", "recipegen", "install", spec, *map(str,
                                                                                        common)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(), stdin=subprocess.DEVNULL)
             for spec in ("idna==3.10", "typing-extensions==4.16.0")]
    results = [p.communicate(timeout=1800) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    # Neither install undid the other: the second linked on top of the first.
    recs = records(env)
    assert {"idna", "typing_extensions", "python"} <= set(recs)
    assert recs["idna"]["requested_specs"] == ["idna ==3.10"]
    assert recs["typing_extensions"]["requested_specs"] == ["typing_extensions ==4.16.0"]
    assert History(env).state() == {dist_str(r) for r in recs.values()}
    _channel_consistent(work / "channel")
    assert subprocess.run([str(env / "bin" / "python"), "-c",
                           "import idna, typing_extensions"], check=False).returncode == 0


_HOLDER = """
import sys
from pathlib import Path
from recipegen import locks
with locks.exclusive(Path(sys.argv[1]), "the test env"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_process_waits_and_says_for_whom(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said: list[str] = []
    got = threading.Event()

    def second() -> None:
        with locks.exclusive(lock, "the test env", said.append):
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    for _ in range(2400):  # it reports before it blocks
        if said or got.is_set():
            break
        thread.join(0.05)
    assert not got.is_set()
    assert f"pid {holder.pid}" in said[0] and "using the test env" in said[0]
    holder.communicate("go\n", timeout=60)
    thread.join(60)
    assert got.is_set()


def test_a_failed_link_puts_the_env_back(tmp_path: Path, monkeypatch) -> None:
    """rattler fails part-way (a package archive vanished): the old package set returns."""
    import asyncio

    from rattler import Channel, VirtualPackage, solve

    from recipegen.errors import RecipegenError
    from recipegen.install import EnvChange, apply
    from recipegen.progress import Reporter

    monkeypatch.setenv("RATTLER_CACHE_DIR", str(tmp_path / "rattler-cache"))
    channel = build_tiny_channel(tmp_path / "tiny", {"libb": [], "libc": ["libb"],
                                                     "extra": ["libb"]})
    env = tmp_path / "env"
    link_env(env, [channel.as_uri()], ["libc"])
    before = snapshot(env)
    records_after = asyncio.run(solve(sources=[Channel(channel.as_uri())],
                                      specs=["extra", "libb"], platforms=["linux-64", "noarch"],
                                      virtual_packages=VirtualPackage.detect()))
    for archive in (channel / "noarch").glob("extra-*.conda"):
        archive.unlink()  # not in the (fresh) cache either: fetching it fails
    shutil.rmtree(tmp_path / "rattler-cache" / "pkgs" / "extra", ignore_errors=True)
    with pytest.raises(RecipegenError, match="linking the packages"):
        apply(env, EnvChange(records=tuple(records_after), requested_specs=("extra", "libb")),
              Reporter("quiet"))
    after = snapshot(env)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {k for k in before if k.startswith("conda-meta/libc-")}, changed
    assert set(records(env)) == {"libb", "libc"}
    assert (env / "share" / "tiny" / "libc.txt").is_file()


def _normalized(prefix: Path) -> dict[str, object]:
    """A snapshot where records compare as JSON (key order is rattler's or ours)."""
    out: dict[str, object] = {}
    for key, value in snapshot(prefix).items():
        if key == "conda-meta/history":
            continue
        if key.startswith("conda-meta/") and key.endswith(".json"):
            out[key] = json.loads((prefix / key).read_text())
        else:
            out[key] = value
    return out


def test_kill_while_linking_then_the_same_command_completes_the_env(
        seed_channel: Path, work: Path, tmp_path: Path) -> None:
    """Linking is not atomic (rattler links package by package); a SIGKILL there leaves a
    partial env that the next recipegen change completes, to the same bytes as a clean
    install."""
    env = tmp_path / "env"
    cmd = [sys.executable, "-m", "recipegen", "install", "idna==3.10", "-p", str(env), "-c",
           str(seed_channel), "--work-root", str(work), "--constraints", str(HTTPX_CLOSURE),
           "-y", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        if '"phase": "install"' in line:
            proc.kill()
            break
    proc.communicate(timeout=300)
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900,
                           check=False)
    assert again.returncode == 0, again.stderr
    assert not (env / "conda-meta" / "recipegen" / "pending.json").exists()
    recovered = _normalized(env)
    assert History(env).state() == {dist_str(r) for r in records(env).values()}
    shutil.rmtree(env)
    clean = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900,
                           check=False)
    assert clean.returncode == 0, clean.stderr
    assert recovered == _normalized(env)
