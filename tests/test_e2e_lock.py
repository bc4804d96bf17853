"""recipegen.lock for real: bit-identical rebuilds, --locked, tampering, verify.

Each rebuild happens in another work root (other absolute paths, another staging dir) and
later than the first build, which is what made rattler-build's own output differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HTTPX_CLOSURE

from recipegen.reproducible import normalize

pytestmark = pytest.mark.e2e


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CONDA_PREFIX", None)
    return subprocess.run([sys.executable, "-m", "recipegen", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, timeout=1800, check=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _packages(work: Path) -> dict[str, str]:
    return {p.name: _sha(p) for p in (work / "channel").glob("*/*.conda")}


def _result(proc: subprocess.CompletedProcess) -> dict:
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["event"] == "result", proc.stdout + proc.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def idna_lock(seed_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``install idna==3.10`` into a new env: the work root holds the lock it wrote."""
    base = tmp_path_factory.mktemp("idna-lock")
    proc = _cli("install", "idna==3.10", "-p", base / "env", "-c", seed_channel,
                "--work-root", base / "work", "--constraints", HTTPX_CLOSURE, "-y", cwd=base)
    assert proc.returncode == 0, proc.stderr
    return base / "work" / "recipegen.lock"


def test_install_writes_the_lock(idna_lock: Path, seed_channel: Path) -> None:
    work = idna_lock.parent
    data = json.loads(idna_lock.read_text())
    assert data["schema"] == 1
    assert data["request"]["specs"] == ["idna==3.10"]
    assert data["variant"]["platform"] and data["variant"]["python"].startswith("3.")
    assert set(data["tools"]) >= {"recipegen", "grayskull", "py-rattler-build"}
    builds = {b["pypi_name"]: b for b in data["builds"]}
    assert list(builds) == ["flit-core", "idna"]
    idna = builds["idna"]
    assert idna["version"] == "3.10" and idna["requested"]
    assert idna["source"]["filename"] == "idna-3.10.tar.gz"
    assert idna["source"]["sha256"] in idna["recipe"]["text"]
    assert idna["recipe"]["text"] == (work / idna["recipe"]["path"]).read_text()
    # The build string carries a hash of the recipe's text, and the text names it.
    assert f'string: "{idna["build"]["string"]}"' in idna["recipe"]["text"]
    assert idna["build"]["after"] == ["flit-core"]
    # Each output is the file in the channel, by name and sha256.
    for b in builds.values():
        path = work / "channel" / b["build"]["subdir"] / b["output"]["file_name"]
        assert _sha(path) == b["output"]["sha256"]
    # The env: idna built here, python from the seed channel with its sha256.
    env = {p["conda_name"]: p for p in data["env"]}
    assert set(env) == {"idna", "python"}
    assert env["idna"]["built"] and env["idna"]["sha256"] == idna["output"]["sha256"]
    python = env["python"]
    assert python["channel"] == seed_channel.as_uri()
    assert python["sha256"] == _sha(seed_channel / python["subdir"] / python["file_name"])


def test_locked_install_elsewhere_is_bit_identical_and_verifies(idna_lock: Path,
                                                                 tmp_path: Path) -> None:
    """Rebuilt later, in another work root, into another env: the same bytes."""
    first = _packages(idna_lock.parent)
    work, prefix = tmp_path / "elsewhere" / "work", tmp_path / "env"
    proc = _cli("install", "--locked", "--lock", idna_lock, "-p", prefix, "--work-root", work,
                "-y", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sha256" not in proc.stderr  # no "differs from the lock" warning
    assert _packages(work) == first
    records = {json.loads(p.read_text())["name"]: json.loads(p.read_text())
               for p in (prefix / "conda-meta").glob("*.json")}
    assert set(records) == {"idna", "python"}
    lock = json.loads(idna_lock.read_text())
    idna = next(b for b in lock["builds"] if b["pypi_name"] == "idna")
    assert records["idna"]["sha256"] == idna["output"]["sha256"]
    assert records["idna"]["requested_specs"] == ["idna ==3.10"]
    assert not (work / "recipegen.lock").exists()  # --locked reads the lock; it writes none

    proc = _cli("verify", "--lock", idna_lock, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    verdicts = {v["name"]: v for v in _result(proc)["packages"]}
    assert {n: v["status"] for n, v in verdicts.items()} == {"flit-core": "identical",
                                                               "idna": "identical"}
    assert verdicts["idna"]["rebuilt_sha256"] == idna["output"]["sha256"]


def test_locked_build_ignores_what_the_resolver_would_pick_now(
        seed_channel: Path, tmp_path: Path) -> None:
    """A new upstream release does not move a locked build.

    PyPI cannot be made to publish a release for a test, so this shows the same thing the
    other way round: the lock is made while a constraints file holds idna at 3.9 (as if
    3.9 were the newest release then); without the constraints the resolver now picks a
    newer idna (as it would after a new release), yet ``build --locked`` builds 3.9.
    """
    old = tmp_path / "old-idna.txt"
    old.write_text("idna==3.9\nflit-core==3.12.0\n")
    first = tmp_path / "first"
    proc = _cli("build", "idna", "-c", seed_channel, "--work-root", first, "--constraints",
                old, "--json", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((first / "recipegen.lock").read_text())
    assert [(b["pypi_name"], b["version"]) for b in lock["builds"]] == [
        ("flit-core", "3.12.0"), ("idna", "3.9")]
    assert lock["env"] == []  # build installs nothing

    now = _cli("build", "idna", "-c", seed_channel, "--work-root", tmp_path / "now",
               "--dry-run", "--json", cwd=tmp_path)
    assert now.returncode == 0, now.stderr
    resolved = {p["pypi_name"]: p["version"] for p in _result(now)["packages"]}
    assert resolved["idna"] != "3.9"

    second = tmp_path / "second"
    proc = _cli("build", "--locked", "--lock", first / "recipegen.lock", "--work-root",
                second, "--json", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _packages(second) == _packages(first)
    assert any(name.startswith("idna-3.9-") for name in _packages(second))


def test_tampered_source_sha256_fails_before_any_build(idna_lock: Path,
                                                        tmp_path: Path) -> None:
    data = json.loads(idna_lock.read_text())
    idna = next(b for b in data["builds"] if b["pypi_name"] == "idna")
    idna["source"]["sha256"] = "0" * 64
    tampered = tmp_path / "tampered.lock"
    tampered.write_text(json.dumps(data))
    work = tmp_path / "work"
    proc = _cli("build", "--locked", "--lock", tampered, "--work-root", work, cwd=tmp_path)
    assert proc.returncode == 1
    assert "the locked source of idna 3.10 cannot be used" in proc.stderr
    assert "0" * 64 in proc.stderr and "nothing was built" in proc.stderr
    # flit-core's source was fine and comes first, yet nothing at all was built.
    assert not list(work.glob("channel/*/*.conda"))
    assert not (work / "logs").exists()


def test_locked_refuses_other_requirements(idna_lock: Path, tmp_path: Path) -> None:
    proc = _cli("build", "--locked", "--lock", idna_lock, "idna==3.9", "--work-root",
                tmp_path / "w", cwd=tmp_path)
    assert proc.returncode == 2
    assert "the lock was made for idna==3.10" in proc.stderr


def test_verify_names_the_files_that_differ(idna_lock: Path, tmp_path: Path) -> None:
    """A locked package made at another time than the lock says: verify shows what differs."""
    work = tmp_path / "work"
    data = json.loads(idna_lock.read_text())
    idna = next(b for b in data["builds"] if b["pypi_name"] == "idna")
    original = idna_lock.parent / "channel" / "noarch" / idna["output"]["file_name"]
    other = work / "channel" / "noarch" / original.name
    normalize(original, timestamp=idna["build"]["timestamp"] + 3600, dest=other)
    idna["output"]["sha256"] = _sha(other)
    (work / "recipegen.lock").write_text(json.dumps(data))
    proc = _cli("verify", "--work-root", work, "--json", cwd=tmp_path)
    assert proc.returncode == 1
    verdicts = {v["name"]: v for v in _result(proc)["packages"]}
    assert verdicts["flit-core"]["status"] == "identical"
    assert verdicts["idna"]["status"] == "differs"
    assert "info/index.json: content differs" in verdicts["idna"]["differences"]
    assert "site-packages/idna/core.py: metadata (mode or mtime) differs" in \
        verdicts["idna"]["differences"]


def test_hatchling_built_package_rebuilds_identically(seed_channel: Path,
                                                      tmp_path: Path) -> None:
    """annotated-types is built with hatchling, which is built (by itself) here too.

    ``build`` makes the lock and the packages; ``verify`` rebuilds all of them minutes
    later in a temporary work root and finds every one identical.
    """
    work = tmp_path / "work"
    proc = _cli("build", "annotated-types==0.7.0", "-c", seed_channel, "--work-root", work,
                "--constraints", HTTPX_CLOSURE, "--json", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((work / "recipegen.lock").read_text())
    builds = {b["pypi_name"]: b for b in lock["builds"]}
    assert "hatchling" in builds["annotated-types"]["build"]["after"]
    assert '- "hatchling"' in builds["annotated-types"]["recipe"]["text"]
    built = _packages(work)
    assert {b["output"]["file_name"]: b["output"]["sha256"] for b in builds.values()} == built

    proc = _cli("verify", "--work-root", work, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    verdicts = _result(proc)["packages"]
    assert {v["name"] for v in verdicts} >= {"hatchling", "annotated-types", "flit-core"}
    assert {v["status"] for v in verdicts} == {"identical"}
    assert {v["file_name"]: v["rebuilt_sha256"] for v in verdicts} == built
