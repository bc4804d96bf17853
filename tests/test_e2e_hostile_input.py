"""Bad requests and bad places: names, versions, specs and extras that cannot be had, a
final solve with no answer, prefixes and work roots that cannot be used. Each run of the
real command ends in one clear error, the env unchanged and the local channel consistent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import snapshot
from envhelpers import build_tiny_channel, link_env
from fakeindex import Project
from hostile import (
    Scene,
    assert_channel_consistent,
    assert_failed_clearly,
    assert_unchanged,
    copy_tree,
    packages_in,
    read_only,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def projects(fake_index_server) -> None:
    if "pair-user" not in fake_index_server.projects:
        fake_index_server.add(Project("pair-base", "1.0"))
        fake_index_server.add(Project("pair-base", "2.0"))
        fake_index_server.add(Project("pair-user", requires_dist=("pair-base==1.0",)))


# -- 1. what cannot be had ---------------------------------------------------------------


def test_a_package_that_does_not_exist(scene: Scene) -> None:
    before = snapshot(scene.env)
    proc = scene.install("recipegen-no-such-project")
    assert_failed_clearly(proc, "no package named 'recipegen-no-such-project'",
                          f"{scene.index.url}/simple/", "check the spelling", code=1)
    assert_unchanged(scene.env, before, scene.work)


def test_a_version_that_does_not_exist(scene: Scene) -> None:
    before = snapshot(scene.env)
    proc = scene.install("pair-base==9.9")
    assert_failed_clearly(proc, "no release of pair-base matches 'pair-base==9.9'",
                          "(from versions: 1.0, 2.0)", code=1)
    assert_unchanged(scene.env, before, scene.work)


@pytest.mark.parametrize("spec", ["plain-pkg>=<1", "plain pkg", "plain-pkg[", "plain-pkg==1.0;"])
def test_a_malformed_spec(scene: Scene, spec: str) -> None:
    before = snapshot(scene.env)
    proc = scene.install(spec)
    assert_failed_clearly(proc, f"malformed requirement {spec!r}", "PEP 508", code=2)
    assert_unchanged(scene.env, before, scene.work)


def test_an_extra_the_package_does_not_have(scene: Scene) -> None:
    before = snapshot(scene.env)
    proc = scene.install("plain-pkg[nope]")
    assert_failed_clearly(proc, "plain-pkg 1.0 has no extra nope", "its extras are: all",
                          code=2)
    assert_unchanged(scene.env, before, scene.work)


@pytest.mark.parametrize("specs", [("pair-user", "pair-base==2.0"),
                                   ("pair-base==1.0", "pair-base>=2")])
def test_conflicting_specs_show_the_resolvers_reason(scene: Scene, specs: tuple[str, str]
                                                     ) -> None:
    before = snapshot(scene.env)
    proc = scene.install(*specs)
    error = assert_failed_clearly(proc, "the requirements conflict", *specs, code=1)
    assert "The conflict is caused by:" in error
    if specs[0] == "pair-user":
        assert "pair-user 1.0 depends on pair-base==1.0" in error
    assert_unchanged(scene.env, before, scene.work)


# -- 7. no answer from the final solve ---------------------------------------------------


def test_an_unsatisfiable_final_solve_explains_and_changes_nothing(scene: Scene,
                                                                   tmp_path: Path) -> None:
    """plain-pkg builds (it is in the channel already), but the env holds a package that
    forbids every plain-pkg: the solver's reason is shown and nothing is linked."""
    tiny = build_tiny_channel(tmp_path / "tiny", {"blocker": {"constrains": ["plain-pkg <1"]}})
    env = tmp_path / "blocked-env"
    link_env(env, [scene.seed.as_uri(), tiny.as_uri()], ["python 3.11.*", "blocker"])
    scene.env = env
    before = snapshot(env)
    proc = scene.install("plain-pkg", channels=(tiny,))
    error = assert_failed_clearly(proc, "the final solve found no way to install plain-pkg",
                                  "nothing was changed", code=1)
    assert "blocker" in error and "plain-pkg <1" in error
    assert "├" not in error and "└" not in error  # the tree is made readable
    assert "in the env already: blocker 1.0" in error
    assert_unchanged(env, before, scene.work)


# -- 8. places that cannot be used ---------------------------------------------------------


def test_a_prefix_that_is_a_file(scene: Scene, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("not an env\n")
    scene.env = target
    proc = scene.install("plain-pkg")
    assert_failed_clearly(proc, f"{target} is a file", code=2)
    assert target.read_text() == "not an env\n"
    scene.env = target / "env"
    proc = scene.install("plain-pkg")
    assert_failed_clearly(proc, f"{target} is a file", code=2)
    assert_channel_consistent(scene.work)


def test_a_prefix_that_cannot_be_written(scene: Scene) -> None:
    before = snapshot(scene.env)
    packages = packages_in(scene.work)
    with read_only(scene.env), read_only(scene.env / "conda-meta"):
        proc = scene.install("pair-base==1.0")
    assert_failed_clearly(proc, f"the prefix {scene.env} cannot be written",
                          "nothing was built or changed", code=2)
    assert "resolve:" not in proc.stderr  # refused before any work
    assert packages_in(scene.work) == packages
    assert_unchanged(scene.env, before, scene.work)


def test_a_prefix_that_is_not_a_conda_env(scene: Scene, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    before = snapshot(project)
    scene.env = project
    assert_failed_clearly(scene.install("plain-pkg"), "is not a conda env (no conda-meta/)",
                          code=2)
    for command in (("list",), ("remove", "plain-pkg")):
        proc = scene.run_cli(*command, "-p", project)
        assert_failed_clearly(proc, "is not a conda env", code=2)
    assert snapshot(project) == before


@pytest.mark.parametrize("where", ["existing", "inside"])
def test_a_work_root_that_cannot_be_written(scene: Scene, tmp_path: Path, where: str) -> None:
    frozen = copy_tree(scene.work, tmp_path / "frozen")
    before = snapshot(scene.env)
    work_before = snapshot(frozen)
    with read_only(frozen):
        scene.work = frozen if where == "existing" else frozen / "work"
        proc = scene.install("pair-base==1.0")
    assert_failed_clearly(proc, f"the work root {scene.work} cannot be written",
                          "--work-root", code=2)
    assert snapshot(frozen) == work_before
    assert_unchanged(scene.env, before, frozen)
