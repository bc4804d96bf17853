"""`recipegen install` for real: resolve, generate, build with rattler-build, solve, link.

Offline except for PyPI: the only conda channel is the seed made from this interpreter,
so every build backend is generated and built by recipegen itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import HTTPX_CLOSURE, json_lines

pytestmark = pytest.mark.e2e


def _python(prefix: Path, code: str) -> str:
    proc = subprocess.run([str(prefix / "bin" / "python"), "-c", code], capture_output=True,
                          text=True, check=False, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _records(prefix: Path) -> dict[str, dict]:
    return {d["name"]: d for d in (json.loads(p.read_text())
                                   for p in (prefix / "conda-meta").glob("*.json"))}


def test_install_idna_builds_flit_core_first(seed_channel: Path, tmp_path: Path,
                                             run_cli) -> None:
    prefix, work = tmp_path / "env", tmp_path / "work"
    proc = run_cli("install", "idna==3.10", "-p", prefix, "-c", seed_channel,
                   "--work-root", work, "--json", "--constraints", HTTPX_CLOSURE)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    events = json_lines(proc.stdout)
    result = events[-1]
    assert result["event"] == "result"
    order = [step["name"] for step in result["build_order"]]
    assert order == ["flit-core", "idna"]
    assert [s["after"] for s in result["build_order"]] == [[], ["flit-core"]]
    built = [e["package"] for e in events if e.get("event") == "package"
             and e.get("status") == "built"]
    assert built == ["flit-core", "idna"]  # flit-core finished before idna started
    assert _python(prefix, "import idna; print(idna.encode('bücher.example').decode())") \
        == "xn--bcher-kva.example"
    records = _records(prefix)
    assert set(records) == {"idna", "python"}
    assert records["idna"]["requested_specs"] == ["idna ==3.10"]
    assert records["idna"]["noarch"] == "python"
    assert Path(work, "recipes", "idna", "recipe.yaml").is_file()
    assert Path(work, "logs", "flit-core.log").is_file()
    # The local channel's index lists exactly the packages that are in it.
    repodata = json.loads((work / "channel" / "noarch" / "repodata.json").read_text())
    files = {p.name for p in (work / "channel" / "noarch").glob("*.conda")}
    assert set(repodata["packages.conda"]) == files
    assert {f.split("-")[0] for f in files} == {"flit", "idna"}


def test_install_httpx_whole_closure(seed_channel: Path, tmp_path: Path, run_cli) -> None:
    prefix, work = tmp_path / "env", tmp_path / "work"
    proc = run_cli("install", "httpx==0.28.1", "-p", prefix, "-c", seed_channel,
                   "--work-root", work, "--constraints", HTTPX_CLOSURE, "-y")
    assert proc.returncode == 0, proc.stderr
    assert _python(prefix, "import httpx; print(httpx.__version__)") == "0.28.1"
    records = _records(prefix)
    # httpx and every runtime dependency, from the channels recipegen built; no backends.
    assert set(records) == {"python", "httpx", "httpcore", "h11", "anyio", "idna", "certifi",
                            "typing_extensions"}
    httpx = records["httpx"]
    assert httpx["version"] == "0.28.1"
    assert httpx["requested_specs"] == ["httpx ==0.28.1"]
    assert {d.split()[0] for d in httpx["depends"]} == {"python", "anyio", "certifi",
                                                        "httpcore", "idna"}
    assert "httpcore 1.*" in httpx["depends"]
    for name, rec in records.items():
        assert rec["channel"].rstrip("/") in (
            (work / "channel").as_uri(), seed_channel.as_uri()), name
        assert rec["files"], name
    # Build backends were built (they are in the channel) but not installed.
    channel = {p.name.rsplit("-", 2)[0] for p in (work / "channel").glob("*/*.conda")}
    assert {"hatchling", "flit-core", "setuptools", "hatch-fancy-pypi-readme",
            "pluggy"} <= channel
    # The entry point works.
    assert (prefix / "bin" / "httpx").exists()


def test_dry_run_writes_nothing(seed_channel: Path, tmp_path: Path, run_cli) -> None:
    prefix, work = tmp_path / "env", tmp_path / "work"
    proc = run_cli("install", "--dry-run", "idna==3.10", "-p", prefix, "-c", seed_channel,
                   "--work-root", work, "--constraints", HTTPX_CLOSURE)
    assert proc.returncode == 0, proc.stderr
    assert "flit-core" in proc.stdout and "idna" in proc.stdout
    assert "Build from PyPI, in this order" in proc.stdout
    assert not prefix.exists()
    assert not work.exists()


def test_unreachable_channel_is_named(tmp_path: Path, run_cli) -> None:
    missing = tmp_path / "no-such-channel"
    proc = run_cli("install", "idna==3.10", "-p", tmp_path / "env", "-c", missing,
                   "--work-root", tmp_path / "work")
    assert proc.returncode != 0
    assert str(missing) in proc.stderr
    assert "recipegen seed" in proc.stderr
    assert not (tmp_path / "env").exists()
