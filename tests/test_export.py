"""`recipegen export` into a local clone of staged-recipes, for real packages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import HTTPX_CLOSURE, json_lines

from recipegen.lint import lint_text

pytestmark = pytest.mark.e2e

TEN = ("idna==3.10", "six==1.17.0", "h11==0.16.0", "anyio==4.8.0", "tqdm==4.67.1",
       "python-dateutil==2.9.0.post0", "attrs==25.3.0", "platformdirs==4.3.6", "click==8.1.8",
       "jinja2==3.1.6")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """A minimal staged-recipes clone: main with recipes/example/."""
    repo = tmp_path / "staged-recipes"
    (repo / "recipes" / "example").mkdir(parents=True)
    (repo / "recipes" / "example" / "recipe.yaml").write_text("# the example recipe\n")
    (repo / "README.md").write_text("staged-recipes\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init")
    return repo


def _branch_files(repo: Path, branch: str) -> list[str]:
    return _git(repo, "diff", "--name-only", f"main..{branch}").splitlines()


def test_export_builds_lints_and_commits_one_branch(staged: Path, seed_channel: Path,
                                                    tmp_path: Path, run_cli) -> None:
    proc = run_cli("export", "ulid-py==1.1.0", "--to", staged, "--maintainer", "octocat",
                   "-c", seed_channel, "--work-root", tmp_path / "work",
                   "--constraints", HTTPX_CLOSURE, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json_lines(proc.stdout)[-1]
    assert result["branch"] == "add-ulid-py"
    # exactly one new commit, on add-ulid-py, touching only recipes/
    assert _git(staged, "rev-list", "--count", "main..add-ulid-py") == "1"
    assert _branch_files(staged, "add-ulid-py") == ["recipes/ulid-py/recipe.yaml"]
    assert _git(staged, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert _git(staged, "status", "--porcelain") == ""
    text = _git(staged, "show", "add-ulid-py:recipes/ulid-py/recipe.yaml") + "\n"
    assert [f for f in lint_text(text) if f.kind == "lint"] == []
    assert "files.pythonhosted.org/packages/" in text
    assert "- \"octocat\"" in text
    body = result["body"]
    assert "https://pypi.org/project/ulid-py/1.1.0/" in body
    assert "built and tested" in body
    assert "`LICENSE`" in body
    # Where conda-forge can be reached, its channel is asked too: a local channel that
    # offers ulid-py stands in for it (the work root's channel has the local build).
    again = run_cli("export", "ulid-py==1.1.0", "--to", staged, "--maintainer", "octocat",
                    "-c", seed_channel, "--work-root", tmp_path / "work2",
                    env={"RECIPEGEN_CONDA_FORGE_CHANNEL": str(tmp_path / "work" / "channel")})
    assert again.returncode == 1
    assert "already on conda-forge" in again.stderr and "has `ulid-py` (1.1.0)" in again.stderr


def test_export_brings_dependencies_conda_forge_lacks(staged: Path, seed_channel: Path,
                                                      tmp_path: Path, run_cli) -> None:
    """django-ulid needs ulid-py (not on conda-forge) and Django (on conda-forge)."""
    pins = tmp_path / "pins.txt"
    pins.write_text("django-ulid==0.0.4\nDjango==5.2.19\nulid-py==1.1.0\nasgiref==3.13.0\n"
                    "sqlparse==0.6.1\n" + HTTPX_CLOSURE.read_text())
    proc = run_cli("export", "django-ulid==0.0.4", "--to", staged, "--maintainer", "octocat",
                   "-c", seed_channel, "--work-root", tmp_path / "work", "--no-build",
                   "--constraints", pins)
    assert proc.returncode == 0, proc.stderr
    assert sorted(_branch_files(staged, "add-django-ulid")) == [
        "recipes/django-ulid/recipe.yaml", "recipes/ulid-py/recipe.yaml"]
    assert "not built (`--no-build`)" in proc.stdout or "--no-build" in proc.stdout


def test_packages_on_conda_forge_are_refused(staged: Path, seed_channel: Path,
                                             tmp_path: Path, run_cli) -> None:
    proc = run_cli("export", "idna==3.10", "--to", staged, "--maintainer", "octocat",
                   "-c", seed_channel, "--work-root", tmp_path / "work")
    assert proc.returncode == 1
    assert "already on conda-forge" in proc.stderr and "--force" in proc.stderr
    assert _git(staged, "branch", "--list", "add-idna") == ""


def test_no_maintainer_is_an_error(staged: Path, tmp_path: Path, run_cli) -> None:
    proc = run_cli("export", "ulid-py==1.1.0", "--to", staged, "--work-root", tmp_path / "w")
    assert proc.returncode == 2
    assert "--maintainer" in proc.stderr


def test_ten_real_packages_export_lint_clean(staged: Path, seed_channel: Path,
                                             tmp_path: Path, run_cli) -> None:
    proc = run_cli("export", *TEN, "--to", staged, "--maintainer", "octocat", "--force",
                   "--no-build", "-c", seed_channel, "--work-root", tmp_path / "work",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    files = _branch_files(staged, "add-idna")
    recipes = sorted(f for f in files if f.endswith("recipe.yaml"))
    assert len(recipes) >= 10
    assert all(f.startswith("recipes/") for f in files)
    for path in recipes:
        text = _git(staged, "show", f"add-idna:{path}") + "\n"
        folder = path.rsplit("/", 1)[0]
        platforms = f"{folder}/conda-forge.yml" in files
        lints = [str(f) for f in lint_text(text, noarch_platforms=platforms) if f.kind == "lint"]
        assert lints == [], (path, lints)
    # tqdm and click carry Windows-only colorama: their folders say noarch_platforms
    assert "recipes/tqdm/conda-forge.yml" in files
    assert "recipes/click/conda-forge.yml" in files
    assert json.loads(json.dumps(json_lines(proc.stdout)[-1]))["branch"] == "add-idna"
