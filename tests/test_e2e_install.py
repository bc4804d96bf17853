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


@pytest.fixture(scope="module")
def shared_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work root for the httpx-family tests: later tests reuse earlier builds."""
    return tmp_path_factory.mktemp("shared") / "work"


def test_install_httpx_whole_closure(seed_channel: Path, tmp_path: Path, run_cli,
                                     shared_work: Path) -> None:
    prefix, work = tmp_path / "env", shared_work
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


def test_install_extra_brings_its_dependencies(seed_channel: Path, tmp_path: Path, run_cli,
                                               shared_work: Path) -> None:
    prefix = tmp_path / "env"
    proc = run_cli("install", "httpx[http2]==0.28.1", "-p", prefix, "-c", seed_channel,
                   "--work-root", shared_work, "--constraints", HTTPX_CLOSURE, "-y")
    assert proc.returncode == 0, proc.stderr
    assert _python(prefix, "import h2, httpx; print(h2.__version__)") == "4.4.1"
    records = _records(prefix)
    assert {"h2", "hpack", "hyperframe"} <= set(records)
    assert records["h2"]["requested_specs"] == ["h2 >=3,<5"]


def test_install_anyio_builds_noarch_despite_markers(seed_channel: Path, tmp_path: Path,
                                                    run_cli, shared_work: Path) -> None:
    """anyio 4.8.0 has markers (exceptiongroup on py<3.11): still a noarch: python package."""
    constraints = tmp_path / "anyio.txt"
    pins = [line for line in HTTPX_CLOSURE.read_text().splitlines()
            if not line.startswith("anyio==")]
    constraints.write_text("\n".join([*pins, "anyio==4.8.0"]) + "\n")
    prefix = tmp_path / "env"
    proc = run_cli("install", "anyio==4.8.0", "-p", prefix, "-c", seed_channel,
                   "--work-root", shared_work, "--constraints", constraints, "-y")
    assert proc.returncode == 0, proc.stderr
    records = _records(prefix)
    assert records["anyio"]["version"] == "4.8.0"
    assert records["anyio"]["noarch"] == "python"
    assert records["anyio"]["subdir"] == "noarch"
    assert "exceptiongroup" not in records  # its marker is false on python 3.11
    assert {d.split()[0] for d in records["anyio"]["depends"]} == {
        "python", "idna", "sniffio", "typing_extensions"}
    assert _python(prefix, "import anyio; print(anyio.__name__)") == "anyio"


def test_unknown_extra_is_an_error(seed_channel: Path, tmp_path: Path, run_cli) -> None:
    proc = run_cli("install", "idna[nope]==3.10", "-p", tmp_path / "env", "-c", seed_channel,
                   "--work-root", tmp_path / "work")
    assert proc.returncode == 2
    assert "has no extra nope" in proc.stderr and "its extras are: all" in proc.stderr
    assert not (tmp_path / "env").exists()


def test_map_command(run_cli) -> None:
    proc = run_cli("map", "torch", "tables", "msgpack", "typing-extensions", "graphviz",
                   "matplotlib", "--json")
    assert proc.returncode == 0, proc.stderr
    got = [entry["conda"] for entry in json.loads(proc.stdout)]
    assert got == ["pytorch", "pytables", "msgpack-python", "typing_extensions",
                   "python-graphviz", "matplotlib-base"]


def test_install_c_extension_with_the_system_compiler(seed_channel: Path, tmp_path: Path,
                                                      run_cli, shared_work: Path) -> None:
    """markupsafe compiles _speedups.c: an arch package, built with the seed's gcc stand-in."""
    prefix = tmp_path / "env"
    proc = run_cli("install", "markupsafe==3.0.2", "-p", prefix, "-c", seed_channel,
                   "--work-root", shared_work, "--constraints", HTTPX_CLOSURE, "-y")
    assert proc.returncode == 0, proc.stderr
    records = _records(prefix)
    assert records["markupsafe"]["subdir"] == "linux-64"
    assert records["markupsafe"]["build"].startswith("py311h")
    assert "python_abi 3.11.* *_cp311" in records["markupsafe"]["depends"]
    recipe = (shared_work / "recipes" / "markupsafe" / "recipe.yaml").read_text()
    assert "${{ compiler('c') }}" in recipe
    code = "import markupsafe, markupsafe._speedups as s; print(markupsafe.escape('<'), s.__file__)"
    escaped, ext = _python(prefix, code).split()
    assert escaped == "&lt;" and ext.endswith(".so")
