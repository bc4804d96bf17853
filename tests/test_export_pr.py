"""The staged-recipes branch (real git in tmp dirs) and the pull request's text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gitrepos import git, isolate_git, make_staged_recipes

from recipegen.errors import RecipegenError, UsageError
from recipegen.export_pr import (
    Dropped,
    ExportedRecipe,
    ExportSummary,
    LocalBuild,
    NameRemap,
    pr_title_body,
    write_branch,
)

HTTPX = "schema_version: 1\npackage:\n  name: httpx\n"
HTTPCORE = "schema_version: 1\npackage:\n  name: httpcore\n"


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


@pytest.fixture
def staged_recipes(tmp_path: Path) -> Path:
    return make_staged_recipes(tmp_path)


def test_one_commit_on_add_branch_touching_only_recipes(staged_recipes: Path):
    clone = staged_recipes
    base = git(clone, "rev-parse", "origin/main")
    sha = write_branch(clone, "httpx", {"httpx": HTTPX, "httpcore": HTTPCORE},
                       "Add httpx (with dependencies httpcore)")
    assert git(clone, "rev-parse", "refs/heads/add-httpx") == sha
    assert git(clone, "rev-list", f"{base}..add-httpx").splitlines() == [sha]
    assert git(clone, "rev-parse", f"{sha}^") == base
    changed = git(clone, "diff", "--name-status", base, sha).splitlines()
    assert changed == ["A\trecipes/httpcore/recipe.yaml", "A\trecipes/httpx/recipe.yaml"]
    assert git(clone, "show", f"{sha}:recipes/httpx/recipe.yaml") + "\n" == HTTPX
    assert git(clone, "log", "-1", "--format=%s", sha) == "Add httpx (with dependencies httpcore)"
    # no identity anywhere: the fallback
    assert git(clone, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha) == (
        "recipegen <recipegen@localhost>|recipegen <recipegen@localhost>")
    # the checkout is as it was
    assert git(clone, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(clone, "status", "--porcelain") == ""
    assert not (clone / "recipes" / "httpx").exists()


def test_author_from_clone_config_env_or_argument(staged_recipes: Path, monkeypatch):
    clone = staged_recipes
    git(clone, "config", "user.name", "Jane Doe")
    git(clone, "config", "user.email", "jane@example.org")
    sha = write_branch(clone, "a", {"a": HTTPX}, "Add a")
    assert git(clone, "log", "-1", "--format=%an <%ae>", sha) == "Jane Doe <jane@example.org>"

    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env Person")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.org")
    sha = write_branch(clone, "b", {"b": HTTPX}, "Add b")
    assert git(clone, "log", "-1", "--format=%an <%ae>", sha) == "Env Person <env@example.org>"

    sha = write_branch(clone, "c", {"c": HTTPX}, "Add c", author="Bot <bot@example.org>")
    assert git(clone, "log", "-1", "--format=%an <%ae>", sha) == "Bot <bot@example.org>"
    with pytest.raises(UsageError, match="bad author"):
        write_branch(clone, "d", {"d": HTTPX}, "Add d", author="no email")


def test_branch_starts_at_the_default_branch_not_the_checkout(staged_recipes: Path):
    clone = staged_recipes
    git(clone, "switch", "-q", "-c", "work")
    (clone / "mine.txt").write_text("local work\n")
    git(clone, "add", "mine.txt")
    git(clone, "commit", "-q", "-m", "local", ident=True)
    sha = write_branch(clone, "httpx", {"httpx": HTTPX}, "Add httpx")
    assert git(clone, "rev-parse", f"{sha}^") == git(clone, "rev-parse", "origin/main")
    assert git(clone, "symbolic-ref", "HEAD") == "refs/heads/work"


def test_without_origin_the_local_main_is_the_base(tmp_path: Path, staged_recipes: Path):
    repo = tmp_path / "upstream"  # the clone's origin: a plain repo on main
    sha = write_branch(repo, "httpx", {"httpx": HTTPX}, "Add httpx")
    assert git(repo, "rev-parse", f"{sha}^") == git(repo, "rev-parse", "main")


def test_refusals_leave_the_clone_unchanged(staged_recipes: Path):
    clone = staged_recipes
    write_branch(clone, "httpx", {"httpx": HTTPX}, "Add httpx")
    refs = git(clone, "for-each-ref")
    with pytest.raises(RecipegenError, match="already exists"):
        write_branch(clone, "httpx", {"httpx": HTTPX}, "Add httpx")
    with pytest.raises(RecipegenError, match=r"recipes/example already exists"):
        write_branch(clone, "example", {"example": HTTPX}, "Add example")
    with pytest.raises(UsageError, match="not a valid recipe folder"):
        write_branch(clone, "x", {"x": HTTPX, "../evil": HTTPX}, "Add x")
    with pytest.raises(UsageError, match="no recipe for"):
        write_branch(clone, "y", {"z": HTTPX}, "Add y")
    (clone / "README.md").write_text("edited\n")
    with pytest.raises(RecipegenError, match="uncommitted changes"):
        write_branch(clone, "z", {"z": HTTPX}, "Add z")
    git(clone, "checkout", "README.md")
    (clone / "recipes" / "stray").mkdir()
    (clone / "recipes" / "stray" / "recipe.yaml").write_text("x\n")
    with pytest.raises(RecipegenError, match="uncommitted changes"):
        write_branch(clone, "z", {"z": HTTPX}, "Add z")
    assert git(clone, "for-each-ref") == refs


def test_not_a_staged_recipes_clone(tmp_path: Path):
    with pytest.raises(UsageError, match="not a git clone"):
        write_branch(tmp_path, "a", {"a": HTTPX}, "Add a")
    repo = tmp_path / "other"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "x").write_text("x\n")
    git(repo, "add", "x")
    git(repo, "commit", "-q", "-m", "x", ident=True)
    with pytest.raises(UsageError, match="no recipes/ folder"):
        write_branch(repo, "a", {"a": HTTPX}, "Add a")


# -- title and body --------------------------------------------------------------------------


def _summary(**kw) -> ExportSummary:
    httpx = ExportedRecipe(
        name="httpx", pypi_name="httpx", version="0.28.1", license="BSD-3-Clause",
        license_files=("LICENSE.md",),
        remaps=(NameRemap("typing-extensions", "typing_extensions", "grayskull"),),
        dropped=(Dropped('brotli; platform_python_implementation == "CPython" and '
                         'extra == "brotli"', "optional extra 'brotli'"),
                 Dropped("evil `x` | @someone", "marker `os_name == 'nt'` is Windows-only")),
        build=LocalBuild(built=True, tested=True, detail="rattler-build 0.73.0 on linux-64"))
    httpcore = ExportedRecipe(name="httpcore", pypi_name="httpcore", version="1.0.7",
                              license="BSD-3-Clause", license_files=("LICENSE.md",),
                              build=LocalBuild(built=True, tested=False))
    return ExportSummary(recipes=kw.pop("recipes", (httpx, httpcore)),
                         maintainers=kw.pop("maintainers", ("octo-cat",)), tool_version="9.9",
                         **kw)


def test_pr_title_and_body():
    title, body = pr_title_body(_summary())
    assert title == "Add httpx (with dependencies httpcore)"
    assert "https://pypi.org/project/httpx/0.28.1/" in body
    assert "https://pypi.org/project/httpcore/1.0.7/" in body
    assert "`typing-extensions` is `typing_extensions` on conda-forge (from `grayskull`)" in body
    assert "optional extra 'brotli'" in body
    assert "`httpx`: built and tested (rattler-build 0.73.0 on linux-64)" in body
    assert "`httpcore`: built, tests not run" in body
    assert "`LICENSE.md`" in body
    assert "@octo-cat" in body
    assert "recipegen 9.9" in body
    assert "- [x] The source is the sdist from PyPI" in body


def test_untrusted_text_stays_in_code_spans():
    _, body = pr_title_body(_summary())
    assert "``evil `x` | @someone``" in body
    outside = re.sub(r"(`+).*?\1", "", body)  # everything not in a code span
    assert "@someone" not in outside
    for row in (line for line in body.splitlines() if line.startswith("| `")):
        assert row.count(" | ") == 4  # no cell split by a stray '|'


def test_no_build_is_said():
    recipe = ExportedRecipe(name="idna", pypi_name="idna", version="3.10", license="BSD-3-Clause",
                            license_files=("LICENSE.md",), source_kind="wheel")
    title, body = pr_title_body(_summary(recipes=(recipe,), maintainers=()))
    assert title == "Add idna"
    assert "- [ ] The source is the sdist from PyPI (a wheel for `idna`" in body
    assert "Not built: recipegen ran with `--no-build`" in body
    assert "not built (`--no-build`)" in body
    assert "None." in body  # no remaps, nothing dropped


def test_bad_maintainer_and_long_title():
    with pytest.raises(UsageError, match="GitHub user name"):
        pr_title_body(_summary(maintainers=("@octo",)))
    deps = tuple(ExportedRecipe(name=f"dependency-number-{i}", pypi_name=f"d{i}", version="1",
                                license="MIT") for i in range(6))
    main = ExportedRecipe(name="top", pypi_name="top", version="1", license="MIT")
    title, body = pr_title_body(_summary(recipes=(main, *deps)))
    assert title == "Add top (with 6 dependencies)"
    assert "- [ ] The licence file is packaged" in body  # none listed: not ticked
