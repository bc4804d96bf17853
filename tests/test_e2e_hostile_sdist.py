"""Hostile sdists from an index: members that leave the tree, files that are not what the
index says, a ``setup.py`` or build backend that hangs or floods, metadata that looks
like YAML or Jinja. Nothing in a refused archive runs; nothing hangs recipegen; metadata
is never evaluated.
"""

from __future__ import annotations

import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest
from conftest import snapshot
from fakeindex import Project
from hostile import (
    Scene,
    about_json,
    assert_channel_consistent,
    assert_failed_clearly,
    assert_no_processes_with,
    assert_unchanged,
)
from rattler_build import Stage0Recipe, VariantConfig

pytestmark = pytest.mark.e2e


def _ran(marker: Path) -> str:
    """Python source that leaves ``marker`` behind if it ever runs."""
    return f"open({str(marker)!r}, 'a').write('ran\\n')\n"


def _file(name: str, data: bytes = b"gotcha\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _members(kind: str, base: str, module: str, outside: Path):
    return {
        "dotdot": (_file(f"{base}/../../{outside.name}"), "points outside the archive (..)"),
        "absolute": (_file(str(outside)), "has an absolute path"),
        "symlink": (_link(f"{base}/{module}/data", "../../../../../../../etc/passwd"),
                    "links outside the archive (../../../../../../../etc/passwd)"),
        "absolute-symlink": (_link(f"{base}/{module}/data", "/etc"),
                             "links outside the archive (/etc)"),
        "hardlink": (_link(f"{base}/{module}/data", "../outside", hard=True),
                     "is a hard link outside the archive (../outside)"),
    }[kind]


# -- 3. archives that would write outside their folder ------------------------------------


@pytest.mark.parametrize("wheel", [True, False], ids=["with-wheel", "sdist-only"])
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "absolute-symlink",
                                  "hardlink"])
def test_an_archive_member_outside_the_tree_is_refused_before_anything_runs(
        scene: Scene, tmp_path: Path, kind: str, wheel: bool) -> None:
    """With a wheel, pip never unpacks the sdist and recipegen's check refuses it; without
    one, pip unpacks it to read its metadata, and recipegen's guard in pip refuses it."""
    name = f"evil-{kind}-{'w' if wheel else 's'}"
    marker = tmp_path / "it-ran"
    outside = Path("/tmp") / f"recipegen-escape-{uuid.uuid4().hex}"
    module = name.replace("-", "_")
    member, reason = _members(kind, f"{name}-1.0", module, outside)
    scene.index.add(Project(name, wheel=wheel, setup_py=_ran(marker),
                            hooks={"metadata": _ran(marker), "build": _ran(marker)},
                            extra_members=(member,)))
    before = snapshot(scene.env)
    proc = scene.install(name)
    shown = member[0].name if isinstance(member, tuple) else member.name
    assert_failed_clearly(proc, f"refusing {name}-1.0.tar.gz: member {shown!r} {reason}",
                          "nothing", code=1)
    assert not marker.exists()  # neither pip, grayskull nor a build ran its code
    assert not outside.exists()
    assert not (scene.work / "recipes" / name).exists()
    assert_unchanged(scene.env, before, scene.work)


def _not_from(*agents: str):
    """The file's true bytes for these user agents, other bytes for anyone else."""
    return lambda req, _n: None if any(a in req.headers.get("User-Agent", "")
                                       for a in agents) else b"not the file the index lists"


@pytest.mark.parametrize("who", ["pip", "recipegen"])
def test_a_file_that_does_not_match_its_sha256_is_refused(scene: Scene, tmp_path: Path,
                                                          who: str) -> None:
    name = f"tampered-{who}"
    marker = tmp_path / "it-ran"
    scene.index.add(Project(name, wheel=who == "recipegen", setup_py=_ran(marker),
                            hooks={"metadata": _ran(marker), "build": _ran(marker)}))
    sha256 = scene.index.file(f"{name}-1.0.tar.gz").sha256
    scene.index.behave[f"/files/{name}-1.0.tar.gz"] = _not_from("no one")
    before = snapshot(scene.env)
    proc = scene.install(name)
    if who == "pip":
        assert_failed_clearly(proc, "does not match the sha256 the index gives", sha256,
                              "nothing in it was run", code=1)
    else:
        assert_failed_clearly(proc, f"sha256 mismatch for {name}-1.0.tar.gz: the index says "
                              f"{sha256}", "nothing was run or built from it", code=1)
    assert not marker.exists()
    assert not list((scene.work / "cache" / "sdists").rglob(f"{name}*"))
    assert_unchanged(scene.env, before, scene.work)


def test_a_source_that_changes_before_the_build_fails_the_build(scene: Scene) -> None:
    """The recipe pins the sha256 recipegen checked; rattler-build gets other bytes."""
    name = "tampered-later"
    scene.index.add(Project(name, wheel=True))
    scene.index.behave[f"/files/{name}-1.0.tar.gz"] = _not_from("python-requests", "pip/")
    before = snapshot(scene.env)
    proc = scene.install(name)
    log = scene.work / "logs" / f"{name}.log"
    assert_failed_clearly(proc, f"building {name} failed", f"log: {log}", code=1)
    assert "sha256" in log.read_text().lower()
    assert not any(p.name.startswith(name) for p in (scene.work / "channel").rglob("*.conda"))
    assert_unchanged(scene.env, before, scene.work)


# -- 4. code that hangs or floods while recipes are made --------------------------------------


def _hang(marker: str) -> str:
    """Start a grandchild that sleeps (marked, to find it later), then sleep."""
    return ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)', "
            f"{marker!r}])\n"
            "time.sleep(3600)\n")


FLOOD = "import sys\nwhile True:\n    sys.stdout.write('flood ' * 10000)\n"


@pytest.mark.parametrize("how", ["hangs", "floods"])
def test_a_setup_py_that_hangs_or_floods_is_killed(scene: Scene, how: str) -> None:
    """grayskull runs setup.py: killed at --grayskull-timeout, or once its output passes
    the cap, with every process it started."""
    marker = f"recipegen-test-{uuid.uuid4().hex}"
    name = f"setup-{how}"
    scene.index.add(Project(name, setup_py=_hang(marker) if how == "hangs" else FLOOD))
    before = snapshot(scene.env)
    proc = scene.install(name, "--grayskull-timeout", "8" if how == "hangs" else "600")
    log = scene.work / "cache" / "logs" / f"grayskull-{name}-1.0.log"
    said = "timed out after 8 s" if how == "hangs" else "passed 64 MB"
    assert_failed_clearly(proc, f"grayskull {said}" if how == "hangs" else said, name,
                          "killed with every process it started", f"log: {log}", code=1)
    assert log.is_file()
    assert log.stat().st_size < (64 << 20) + (8 << 20)
    assert_no_processes_with(marker)
    assert_unchanged(scene.env, before, scene.work)


def test_a_build_backend_that_hangs_while_pip_resolves_is_killed(scene: Scene) -> None:
    marker = f"recipegen-test-{uuid.uuid4().hex}"
    scene.index.add(Project("backend-hangs", hooks={"metadata": _hang(marker)}))
    before = snapshot(scene.env)
    proc = scene.install("backend-hangs", "--resolve-timeout", "8")
    assert_failed_clearly(proc, "pip's resolver did not finish within 8 s for backend-hangs",
                          "killed with every process it started", "--resolve-timeout",
                          f"log: {scene.work / 'logs' / 'resolve.log'}", code=1)
    assert_no_processes_with(marker)
    assert_unchanged(scene.env, before, scene.work)


# -- 5. metadata that looks like YAML or Jinja ----------------------------------------------

SUMMARY = """${{ env.get("HOME") }} {% if true %}IF{% endif %} key: value # comment 'q' "dq" """
DESCRIPTION = ('line one: ${{ env.get("HOME") }}\n{% if true %}IF{% endif %}\n'
               '- [not, a, list]\n&anchor *alias !tag\nkey: value # not a comment\n'
               '"double" \'single\' \\backslash {# jinja comment #} }} {{\n')
LICENSE = 'Do as you like: ${{ env.get("HOME") }} {% raw %} # not SPDX'
HOMEPAGE = 'https://example.invalid/${{env.get("HOME")}}/{%x%}?q=a:b#frag'


def test_metadata_that_looks_like_yaml_or_jinja_stays_literal(scene: Scene,
                                                              tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    scene.index.add(Project("extra-dep"))
    scene.index.add(Project(
        "hostile-meta", summary=SUMMARY.strip(), description=DESCRIPTION, license=LICENSE,
        license_file="Whoever reads this may do as they like: ${{ env.get('HOME') }}\n",
        home_page=HOMEPAGE, project_urls={"Source": "https://example.invalid/{{x}}: #"},
        extras=("null", "yes", "on"), requires_dist=('extra-dep ; extra == "null"',),
        scripts={"hostile-cli": "hostile_meta.cli:main"},
        declared_scripts={f"x$(touch {marker})": "hostile_meta.cli:main",
                          "../escape": "hostile_meta.cli:main",
                          "ok = no": "${{ env.get('HOME') }}"},
        pyproject_project=True))
    scene.env = tmp_path / "fresh-env"
    proc = scene.install("hostile-meta[null]")
    assert proc.returncode == 0, proc.stderr
    assert "entry point" in proc.stderr and "'../escape = hostile_meta.cli:main'" in proc.stderr

    recipe_file = scene.work / "recipes" / "hostile-meta" / "recipe.yaml"
    text = recipe_file.read_text()
    assert os.environ["HOME"] not in text
    rendered = Stage0Recipe.from_file(str(recipe_file)).render(VariantConfig())[0].recipe
    assert rendered.about.summary == SUMMARY.strip()
    assert rendered.about.description == DESCRIPTION.strip()  # outer whitespace goes
    assert rendered.build.to_dict()["python"]["entry_points"] == [
        "hostile-cli = hostile_meta.cli:main"]
    assert not marker.exists()

    package = next((scene.work / "channel" / "noarch").glob("hostile-meta-1.0-*.conda"))
    about = about_json(package)
    assert about["summary"] == SUMMARY.strip()
    assert about["description"] == DESCRIPTION.strip()
    # rattler-build takes SPDX only (this one is grayskull's guess from the licence file,
    # if any): PyPI's own text is kept word for word.
    assert about.get("license") != LICENSE
    assert about["extra"]["recipegen"]["pypi_license"] == LICENSE
    from urllib.parse import unquote

    assert unquote(about["home"]) == HOMEPAGE
    assert os.environ["HOME"] not in json.dumps(about)

    records = {p.name.rsplit("-", 2)[0]: json.loads(p.read_text())
               for p in (scene.env / "conda-meta").glob("*.json")}
    assert set(records) == {"hostile-meta", "extra-dep", "python"}  # the extra brought one
    cli = scene.env / "bin" / "hostile-cli"
    assert cli.exists()
    assert_channel_consistent(scene.work)
