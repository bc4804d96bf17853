"""The env stays conda's: protection, remove, list, editable installs, conda's formats.

Every test runs the real ``recipegen`` command on a real env. One work root per module
holds the packages built once (flit-core, idna); each test makes its own env from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HTTPX_CLOSURE, snapshot
from envhelpers import build_tiny_channel, lent_pip, link_env, records

from recipegen.envmeta import conda_anchors, pip_distributions
from recipegen.history import History, dist_str

pytestmark = pytest.mark.e2e

def cli(*args: str | Path, cwd: Path | None = None,
        timeout: float = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CONDA_PREFIX", None)
    return subprocess.run([sys.executable, "-m", "recipegen", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def work(seed_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work root whose channel already holds flit-core and idna."""
    root = tmp_path_factory.mktemp("env-work") / "work"
    proc = cli("install", "idna==3.10", "-p", root.parent / "first-env", "-c", seed_channel,
               "--work-root", root, "--constraints", HTTPX_CLOSURE, "-y", "-q")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def install(seed_channel: Path, work: Path):
    def run(prefix: Path, *args: str | Path) -> subprocess.CompletedProcess:
        return cli("install", *args, "-p", prefix, "-c", seed_channel, "--work-root", work,
                   "--constraints", HTTPX_CLOSURE, "-y")
    return run


def _pip(prefix: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(prefix / "bin" / "python"), "-m", "pip", *args],
                          capture_output=True, text=True, env=lent_pip(tmp), timeout=600,
                          check=False)


# -- 1. protection --------------------------------------------------------------------------


def test_plain_pip_in_a_protected_env_stops_with_recipegen_message(
        install, seed_channel: Path, tmp_path: Path) -> None:
    env = tmp_path / "env"
    # An env with python and pip (as conda or pixi would make it), then a recipegen install.
    link_env(env, [seed_channel.as_uri()], ["python 3.11.*", "pip"])
    proc = install(env, "idna==3.10")
    assert proc.returncode == 0, proc.stderr
    marker = env / "lib" / "python3.11" / "EXTERNALLY-MANAGED"
    assert marker.is_file()
    # The env's own pip (from the seed channel), as a user would type it.
    pip = subprocess.run([str(env / "bin" / "pip"), "install", "six"], capture_output=True,
                         text=True, timeout=600, check=False,
                         env={"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert pip.returncode != 0
    assert "externally-managed-environment" in pip.stderr
    assert f"recipegen install PACKAGE -p {env}" in pip.stderr
    assert "--break-system-packages" in pip.stderr
    assert not list((env / "lib" / "python3.11" / "site-packages").glob("six*"))

    off = cli("protect", "--off", "-p", env)
    assert off.returncode == 0, off.stderr
    assert "protection is off" in off.stdout
    assert not marker.exists()
    dry = _pip(env, "install", "--dry-run", "six", tmp=tmp_path)
    assert dry.returncode == 0, dry.stderr
    # The user's "off" is remembered: the next install does not turn it back on.
    assert install(env, "idna==3.10").returncode == 0
    assert not marker.exists()

    on = cli("protect", "--on", "-p", env, "--json")
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["protected"] is True
    assert _pip(env, "install", "--dry-run", "six", tmp=tmp_path).returncode != 0


def test_no_protect_writes_no_marker(install, tmp_path) -> None:
    env = tmp_path / "env"
    assert install(env, "idna==3.10", "--no-protect").returncode == 0
    assert not (env / "lib" / "python3.11" / "EXTERNALLY-MANAGED").exists()
    status = cli("protect", "-p", env, "--json")
    assert json.loads(status.stdout)["protected"] is False


def test_a_foreign_marker_is_never_replaced(install, tmp_path) -> None:
    env = tmp_path / "env"
    assert install(env, "idna==3.10", "--no-protect").returncode == 0
    marker = env / "lib" / "python3.11" / "EXTERNALLY-MANAGED"
    marker.write_text("[externally-managed]\nError=the admin's own words\n")
    assert cli("protect", "--on", "-p", env).returncode == 0
    assert cli("protect", "--off", "-p", env).returncode == 0
    assert marker.read_text() == "[externally-managed]\nError=the admin's own words\n"


# -- 2. remove ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tool → liba → libb, libc → libb, all real conda packages."""
    return build_tiny_channel(tmp_path_factory.mktemp("tiny") / "channel",
                              {"libb": [], "liba": ["libb"], "libc": ["libb"],
                               "tool": ["liba"]})


def _tiny_env(tiny: Path, prefix: Path) -> Path:
    link_env(prefix, [tiny.as_uri()], ["tool", "libc"])
    assert set(records(prefix)) == {"tool", "liba", "libb", "libc"}
    return prefix


def test_remove_refuses_what_others_need(tiny: Path, tmp_path: Path) -> None:
    env = _tiny_env(tiny, tmp_path / "env")
    before = snapshot(env)
    proc = cli("remove", "libb", "-p", env)
    assert proc.returncode == 1
    assert "libb is needed by liba, libc" in proc.stderr
    assert "--force" in proc.stderr
    assert snapshot(env) == before


#: What recipegen adds to records rattler wrote (conda writes them, rattler does not).
ADDED_FIELDS = ("constrains", "requested_spec", "package_tarball_full_path")


def test_remove_takes_only_what_was_named(tiny: Path, tmp_path: Path) -> None:
    env = _tiny_env(tiny, tmp_path / "env")
    before, before_records = snapshot(env), records(env)
    proc = cli("remove", "tool", "-p", env, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["removed"] == ["tool"]
    after, after_records = snapshot(env), records(env)
    assert set(after_records) == {"liba", "libb", "libc"}
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)
               and not (k.startswith("conda-meta/lib") and k in after)}
    # Only tool's own files and record went; conda-meta/history gained the change.
    assert changed == {"share/tiny/tool.txt", "conda-meta/history",
                       next(k for k in before if k.startswith("conda-meta/tool-"))}
    # The other records only gained the fields conda writes and rattler does not.
    for name, rec in after_records.items():
        assert {k: v for k, v in rec.items() if k not in ADDED_FIELDS} == \
            before_records[name], name
    assert after_records["libc"]["requested_specs"] == ["libc"]


def test_remove_prune_takes_dependencies_nothing_else_needs(tiny: Path, tmp_path: Path) -> None:
    env = _tiny_env(tiny, tmp_path / "env")
    dry = cli("remove", "tool", "--prune", "--dry-run", "-p", env)
    assert dry.returncode == 0 and "liba (no longer needed)" in dry.stdout
    assert set(records(env)) == {"tool", "liba", "libb", "libc"}
    proc = cli("remove", "tool", "--prune", "-p", env)
    assert proc.returncode == 0, proc.stderr
    assert set(records(env)) == {"libb", "libc"}  # libb: libc still needs it
    assert sorted(p.name for p in (env / "share" / "tiny").iterdir()) == ["libb.txt",
                                                                         "libc.txt"]


def test_remove_force(tiny: Path, tmp_path: Path) -> None:
    env = _tiny_env(tiny, tmp_path / "env")
    proc = cli("remove", "libb", "--force", "-p", env)
    assert proc.returncode == 0, proc.stderr
    assert "liba, libc still need libb" in proc.stderr
    assert set(records(env)) == {"tool", "liba", "libc"}


def test_install_remove_install_leaves_no_stray_files(install, tmp_path) -> None:
    env = tmp_path / "env"
    assert install(env, "idna==3.10").returncode == 0
    # Importing writes no bytecode: recipegen compiled and recorded it at install time.
    subprocess.run([str(env / "bin" / "python"), "-c", "import idna"], check=True)
    first = snapshot(env)
    refused = cli("remove", "python", "-p", env)
    assert refused.returncode == 1 and "python is needed by idna" in refused.stderr
    proc = cli("remove", "idna", "-p", env)  # the PyPI name works too
    assert proc.returncode == 0, proc.stderr
    assert not [k for k in snapshot(env) if "site-packages/idna" in k]
    assert not list((env / "conda-meta" / "recipegen" / "built").glob("idna-*"))
    assert install(env, "idna==3.10").returncode == 0
    again = snapshot(env)
    assert {k for k in set(first) | set(again) if first.get(k) != again.get(k)} == {
        "conda-meta/history"}


# -- 3. list --------------------------------------------------------------------------------


def test_list_marks_what_recipegen_built(install, work: Path, tmp_path: Path) -> None:
    env = tmp_path / "env"
    assert install(env, "idna==3.10").returncode == 0
    proc = cli("list", "-p", env, "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {p["name"]: p for p in json.loads(proc.stdout)}
    assert set(listed) == {"idna", "python"}
    assert listed["python"]["recipegen"] is None
    origin = listed["idna"]["recipegen"]
    assert origin["pypi_name"] == "idna" and origin["pypi_version"] == "3.10"
    assert origin["recipe"] == str(work / "recipes" / "idna" / "recipe.yaml")
    assert listed["idna"]["requested_spec"] == "idna ==3.10"
    human = cli("list", "-p", env)
    assert "recipegen from PyPI idna==3.10" in human.stdout


# -- 4. editable ----------------------------------------------------------------------------


def test_install_editable_project(install, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    (project / "demo_pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core >=3.2,<4"]\n'
        'build-backend = "flit_core.buildapi"\n\n[project]\nname = "demo-pkg"\n'
        'version = "0.1.0"\ndescription = "demo"\n'
        "dependencies = [\"idna>=3\", \"colorama; sys_platform == 'win32'\"]\n")
    (project / "demo_pkg" / "__init__.py").write_text(
        "import idna\n\ndef hello():\n    return idna.encode('bücher.example').decode()\n")
    env = tmp_path / "env"
    proc = install(env, "-e", project)
    assert proc.returncode == 0, proc.stderr
    # Dependencies and the build backend are conda packages; colorama's marker is false.
    assert set(records(env)) == {"python", "idna", "flit-core"}
    run = subprocess.run([str(env / "bin" / "python"), "-c",
                          "import demo_pkg; print(demo_pkg.hello()); print(demo_pkg.__file__)"],
                         capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["xn--bcher-kva.example",
                                  str(project / "demo_pkg" / "__init__.py")]
    listed = {p["name"]: p for p in json.loads(cli("list", "-p", env, "--json").stdout)}
    assert listed["demo-pkg"]["editable"] == str(project)
    assert listed["demo-pkg"]["installer"] == "pypi"
    # The marker still protects the env after pip went past it.
    assert (env / "lib" / "python3.11" / "EXTERNALLY-MANAGED").is_file()
    gone = cli("remove", "demo-pkg", "-p", env)
    assert gone.returncode == 0, gone.stderr
    assert not pip_distributions(env)


# -- 5. conda's formats ---------------------------------------------------------------------

#: Every field conda reads from a conda-meta record that a package can have.
CONDA_FIELDS = {"name", "version", "build", "build_number", "channel", "url", "fn", "sha256",
                "md5", "depends", "constrains", "files", "paths_data", "link", "subdir",
                "requested_specs", "package_tarball_full_path", "extracted_package_dir",
                "size", "timestamp", "license"}


def test_records_history_and_bytecode_are_conda_s(install, tmp_path: Path) -> None:
    env = tmp_path / "env"
    assert install(env, "idna==3.10").returncode == 0
    recs = records(env)
    for name, rec in recs.items():
        assert set(rec) >= CONDA_FIELDS, (name, CONDA_FIELDS - set(rec))
        assert rec["fn"] == rec["url"].rsplit("/", 1)[-1]
        assert rec["link"]["type"] == 1 and Path(rec["link"]["source"]).name == rec["fn"][:-6]
        assert all(not p.startswith("/") for p in rec["files"])
    assert recs["idna"]["requested_spec"] == "idna ==3.10"
    assert "requested_spec" not in recs["python"]
    # conda's bytecode: one cpython-311 pyc per .py of the noarch package, recorded as pyc_file.
    idna = recs["idna"]
    sources = [f for f in idna["files"] if f.endswith(".py")]
    pycs = {p["_path"] for p in idna["paths_data"]["paths"] if p["path_type"] == "pyc_file"}
    assert sources and len(pycs) == len(sources)
    for src in sources:
        head, tail = src.rsplit("/", 1)
        pyc = f"{head}/__pycache__/{tail[:-3]}.cpython-311.pyc"
        assert pyc in pycs and pyc in idna["files"] and (env / pyc).is_file()
    # conda list's anchors: one dist-info RECORD per python package, nothing left to pip.
    sp = "lib/python3.11/site-packages"
    anchors = conda_anchors(list(recs.values()), sp)
    assert set(anchors.values()) == {"idna"}
    assert all((env / anchor).is_file() for anchor in anchors)  # conda deletes it otherwise
    assert pip_distributions(env) == []
    # History: conda's format; replaying it gives exactly the records.
    history = History(env)
    assert history.state() == {dist_str(r) for r in recs.values()}
    text = (env / "conda-meta" / "history").read_text()
    assert text.startswith("==> ") and "# cmd: recipegen install idna==3.10" in text
    assert "# update specs: ['idna ==3.10']" in text
    assert "# conda version" not in text
    assert history.user_requests()[-1]["update_specs"] == ["idna ==3.10"]
    assert cli("remove", "idna", "-p", env).returncode == 0
    assert History(env).state() == {dist_str(r) for r in records(env).values()}
    assert History(env).user_requests()[-1]["remove_specs"] == ["idna"]
