"""Real git repositories for the export tests: a staged-recipes stand-in and its clone.

Test modules wrap these in fixtures (``isolate_git`` autouse, ``staged_recipes``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

#: Identity for commits the tests themselves make (not the ones under test).
SETUP_IDENT = {"GIT_AUTHOR_NAME": "Setup", "GIT_AUTHOR_EMAIL": "setup@example.org",
               "GIT_COMMITTER_NAME": "Setup", "GIT_COMMITTER_EMAIL": "setup@example.org"}


def git(repo: Path, *args: str, ident: bool = False) -> str:
    env = {**os.environ, **(SETUP_IDENT if ident else {})}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env=env).stdout.strip()


def isolate_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git config and no identity from the environment."""
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL", "GIT_DIR", "GIT_WORK_TREE", "GITHUB_TOKEN",
                "RECIPEGEN_GITHUB_API"):
        monkeypatch.delenv(var, raising=False)


def make_staged_recipes(tmp_path: Path) -> Path:
    """A clone of a small staged-recipes look-alike (``origin/HEAD`` → ``origin/main``)."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    (upstream / "README.md").write_text("staged-recipes\n")
    (upstream / "recipes" / "example").mkdir(parents=True)
    (upstream / "recipes" / "example" / "recipe.yaml").write_text("package: {name: example}\n")
    (upstream / ".ci_support").mkdir()
    (upstream / ".ci_support" / "linux64.yaml").write_text("c_compiler: [gcc]\n")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "initial", ident=True)
    clone = tmp_path / "staged-recipes"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    return clone
