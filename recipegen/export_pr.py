"""A staged-recipes pull request, locally: the branch with the recipes, and the PR's text.

conda-forge takes new packages as pull requests to conda-forge/staged-recipes, one folder
``recipes/<name>/`` per package. :func:`write_branch` commits the recipes onto a new branch
of a local clone with git plumbing (a private index, ``commit-tree``, ``update-ref``): the
checked-out branch, the index and the working tree are never touched, so a failure halfway
leaves the clone as it was. :func:`pr_title_body` writes the title and body reviewers read.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import recipegen
from recipegen.errors import RecipegenError, UsageError

FALLBACK_AUTHOR = ("recipegen", "recipegen@localhost")
_RECIPE_DIR = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_ZERO = "0" * 40


# -- the PR's data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NameRemap:
    """A dependency whose conda-forge name differs from its PyPI name."""

    pypi: str
    conda: str
    source: str
    """Which table decided it (``recipegen.mapping.SOURCES``: "grayskull", "override", ...)."""


@dataclass(frozen=True)
class Dropped:
    """A PyPI requirement the recipe leaves out, and why (an extra, a marker, ...)."""

    requirement: str
    """As PyPI states it, e.g. ``brotli; extra == "brotli"``."""
    reason: str


@dataclass(frozen=True)
class LocalBuild:
    """What the local rattler-build run said about one recipe."""

    built: bool
    tested: bool
    detail: str = ""
    """One line for reviewers, e.g. "rattler-build 0.73.0 on linux-64"."""


@dataclass(frozen=True)
class ExportedRecipe:
    """One recipe folder of the PR."""

    name: str
    """The conda name, and the folder ``recipes/<name>``."""
    pypi_name: str
    version: str
    license: str
    license_files: tuple[str, ...] = ()
    remaps: tuple[NameRemap, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    build: LocalBuild | None = None
    """None when the export ran with ``--no-build``."""
    source_kind: str = "sdist"
    """"sdist" or "wheel": what ``source.url`` points to."""


@dataclass(frozen=True)
class ExportSummary:
    """Everything the PR says. ``recipes[0]`` is the package asked for; the rest are
    dependencies conda-forge lacks, sent in the same PR."""

    recipes: tuple[ExportedRecipe, ...]
    maintainers: tuple[str, ...] = ()
    tool_version: str = field(default=recipegen.__version__)


def check_github_login(login: str) -> str:
    """``login`` unchanged, or UsageError if GitHub would not accept it as a user name."""
    if not _GITHUB_LOGIN.match(login):
        raise UsageError(f"not a GitHub user name: {login!r}",
                         "use the name as on github.com/NAME, without '@'")
    return login


def branch_name(name: str) -> str:
    """The staged-recipes branch for a package: ``add-<name>``."""
    return f"add-{name}"


# -- title and body --------------------------------------------------------------------------


def pr_title_body(summary: ExportSummary) -> tuple[str, str]:
    """The PR's title and Markdown body. Text from PyPI is shown in code spans only, so it
    cannot format the page or mention anyone. Call it once the recipes pass ``lint_text``:
    the body says they do."""
    if not summary.recipes:
        raise UsageError("nothing to export: no recipes in the summary")
    for login in summary.maintainers:
        check_github_login(login)
    main, deps = summary.recipes[0], summary.recipes[1:]
    return _title(main, deps), _body(summary, main, deps)


def _title(main: ExportedRecipe, deps: tuple[ExportedRecipe, ...]) -> str:
    if not deps:
        return f"Add {main.name}"
    listed = ", ".join(d.name for d in deps)
    title = f"Add {main.name} (with dependencies {listed})"
    return title if len(title) <= 90 else f"Add {main.name} (with {len(deps)} dependencies)"


def _body(summary: ExportSummary, main: ExportedRecipe,
          deps: tuple[ExportedRecipe, ...]) -> str:
    out = [f"This PR adds {_plural(len(summary.recipes), 'recipe')} for "
           f"{_code(main.name)}, written by recipegen {summary.tool_version} from PyPI."]
    if deps:
        out.append("")
        out.append(f"{_join(_code(d.name) for d in deps)} "
                   f"{'is a dependency' if len(deps) == 1 else 'are dependencies'} of "
                   f"{_code(main.name)} that conda-forge does not have yet, so "
                   f"{'it is' if len(deps) == 1 else 'they are'} in this PR too.")
    out += ["", "| recipe | PyPI | licence | licence files | local build and test |",
            "| --- | --- | --- | --- | --- |"]
    for r in summary.recipes:
        files = ", ".join(_code(f) for f in r.license_files) or "**none**"
        out.append("| " + " | ".join(_cell(c) for c in (
            _code(r.name), _pypi_link(r), _code(r.license), files, _build_text(r.build))) + " |")

    remaps = [(r, m) for r in summary.recipes for m in r.remaps]
    out += ["", "### Names changed from PyPI to conda-forge", ""]
    out += [f"- {_code(r.name)}: {_code(m.pypi)} is {_code(m.conda)} on conda-forge "
            f"(from {_code(m.source)})" for r, m in remaps] or ["None."]

    dropped = [(r, d) for r in summary.recipes for d in r.dropped]
    out += ["", "### PyPI requirements left out", ""]
    out += [f"- {_code(r.name)}: {_code(d.requirement)}: {_inline(d.reason)}"
            for r, d in dropped] or ["None."]

    out += ["", "### Local build and test", ""]
    unbuilt = [r for r in summary.recipes if r.build is None]
    if len(unbuilt) == len(summary.recipes):
        out.append("Not built: recipegen ran with `--no-build`, so the CI of this PR is the "
                   "first build.")
    else:
        for r in summary.recipes:
            out.append(f"- {_code(r.name)}: {_build_text(r.build)}"
                       + (f" ({_inline(r.build.detail)})" if r.build and r.build.detail else ""))

    out += ["", "### Checklist", ""]
    all_files = all(r.license_files for r in summary.recipes)
    out.append(f"- [{'x' if all_files else ' '}] The licence file is packaged "
               "(`about.license_file`) for every recipe.")
    wheels = [r.name for r in summary.recipes if r.source_kind != "sdist"]
    if wheels:
        out.append(f"- [ ] The source is the sdist from PyPI (a wheel for "
                   f"{_join(_code(w) for w in wheels)}: PyPI has no sdist).")
    else:
        out.append("- [x] The source is the sdist from PyPI, with its sha256.")
    out.append("- [x] `recipegen lint` (conda-forge's linter rules) found no lint.")
    out.append("- [ ] The packages do not vendor other packages (reviewer, please check).")
    if summary.maintainers:
        who = ", ".join(f"@{m}" for m in summary.maintainers)
        out.append(f"- [ ] The maintainers listed ({who}) have commented here that they are "
                   "willing to maintain these recipes.")
    else:
        out.append("- [ ] The recipes list at least one maintainer who has agreed to it.")
    return "\n".join(out) + "\n"


def _build_text(build: LocalBuild | None) -> str:
    if build is None:
        return "not built (`--no-build`)"
    if not build.built:
        return "**build failed**"
    return "built and tested" if build.tested else "built, tests not run"


def _pypi_link(r: ExportedRecipe) -> str:
    url = (f"https://pypi.org/project/{quote(r.pypi_name, safe='')}/"
           f"{quote(r.version, safe='')}/")
    return f"[{_code(f'{r.pypi_name} {r.version}')}]({url})"


def _code(text: str) -> str:
    """``text`` as one Markdown code span: one line, fenced by more backticks than it holds."""
    text = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _inline(text: str) -> str:
    """recipegen's own prose on one line (reasons, details); kept out of Markdown syntax."""
    return re.sub(r"([\\`*_\[\]<>|#@])", r"\\\1", " ".join(str(text).split()))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _join(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- the branch ------------------------------------------------------------------------------


def _git(clone: Path, *args: str, env: Mapping[str, str] | None = None,
         input: bytes | None = None) -> str:
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    for leak in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        if not env or leak not in env:
            full_env.pop(leak, None)
    try:
        proc = subprocess.run(["git", "-C", str(clone), *args], input=input,
                              capture_output=True, env=full_env, check=False)
    except FileNotFoundError as exc:
        raise RecipegenError("git is not installed", "install git and run again") from exc
    if proc.returncode != 0:
        raise RecipegenError(f"git {args[0]} failed in {clone}: "
                             f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace").strip()


def _ok(clone: Path, *args: str) -> bool:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, env=env,
                          check=False).returncode == 0


def default_branch(clone: Path) -> str:
    """The ref new branches start from: what ``origin/HEAD`` points to (the upstream's
    default branch as last fetched), else the local ``main`` or ``master``."""
    if _ok(clone, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"):
        return _git(clone, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    for ref in ("refs/heads/main", "refs/heads/master"):
        if _ok(clone, "rev-parse", "--verify", "--quiet", ref):
            return ref
    raise RecipegenError(f"{clone} has no default branch (no origin/HEAD, main or master)",
                         "clone conda-forge/staged-recipes with git clone")


def commit_identity(clone: Path, author: str | None = None) -> tuple[str, str]:
    """(name, email): ``author`` ("Name <email>"), else $GIT_AUTHOR_NAME/EMAIL, else the
    clone's git config, else ``recipegen <recipegen@localhost>``."""
    if author:
        match = re.fullmatch(r"\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*", author)
        if not match:
            raise UsageError(f"bad author {author!r}", 'write it as "Name <email>"')
        return match.group(1), match.group(2)
    name, email = os.environ.get("GIT_AUTHOR_NAME"), os.environ.get("GIT_AUTHOR_EMAIL")
    if name and email:
        return name, email
    name = _config(clone, "user.name")
    email = _config(clone, "user.email")
    return (name, email) if name and email else FALLBACK_AUTHOR


def _config(clone: Path, key: str) -> str | None:
    if not _ok(clone, "config", "--get", key):
        return None
    return _git(clone, "config", "--get", key) or None


def write_branch(clone: str | Path, name: str, recipes: Mapping[str, str], message: str, *,
                 author: str | None = None,
                 extra_files: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """Commit ``recipes/<folder>/recipe.yaml`` for each ``{folder: text}`` as one commit on a
    new branch ``add-<name>`` of the staged-recipes clone; return the commit's sha.

    ``extra_files`` adds other files to a recipe's folder (``{folder: {file: text}}``, e.g.
    ``conda-forge.yml``); only plain file names are allowed.

    The branch starts at :func:`default_branch`. Refused: a dirty working tree, an existing
    branch, a folder that already exists in ``recipes/``. HEAD, the index and the working
    tree are left as they were (``git switch add-<name>`` shows the result).
    """
    clone = Path(clone)
    if not clone.is_dir():
        raise UsageError(f"{clone} is not a directory", "pass a clone of staged-recipes")
    if not _ok(clone, "rev-parse", "--is-inside-work-tree"):
        raise UsageError(f"{clone} is not a git clone",
                         "git clone https://github.com/conda-forge/staged-recipes first")
    if name not in recipes:
        raise UsageError(f"no recipe for {name!r} among {sorted(recipes)}")
    extra_files = {k: dict(v) for k, v in (extra_files or {}).items() if v}
    for folder, files in extra_files.items():
        if folder not in recipes:
            raise UsageError(f"extra files for {folder!r}, which has no recipe")
        for file_name in files:
            if not _RECIPE_DIR.match(file_name) or file_name in (".", "..", "recipe.yaml"):
                raise UsageError(f"not a valid file name for recipes/{folder}: {file_name!r}")
    for folder, text in recipes.items():
        if not _RECIPE_DIR.match(folder) or folder in (".", ".."):
            raise UsageError(f"not a valid recipe folder name: {folder!r}")
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"the recipe for {folder} is empty")
    branch = branch_name(name)
    ref = f"refs/heads/{branch}"
    if _ok(clone, "rev-parse", "--verify", "--quiet", ref):
        raise RecipegenError(f"branch {branch} already exists in {clone}",
                             f"delete it (git branch -D {branch}) or export under another name")
    dirty = _git(clone, "status", "--porcelain", "--untracked-files=normal")
    if dirty:
        raise RecipegenError(f"{clone} has uncommitted changes:\n{dirty}",
                             "commit or stash them, then export again")
    base_ref = default_branch(clone)
    base = _git(clone, "rev-parse", "--verify", f"{base_ref}^{{commit}}")
    if not _ok(clone, "cat-file", "-e", f"{base}:recipes"):
        raise UsageError(f"{clone} has no recipes/ folder on {base_ref}: is it a clone of "
                         "conda-forge/staged-recipes?")
    for folder in recipes:
        if _ok(clone, "cat-file", "-e", f"{base}:recipes/{folder}"):
            raise RecipegenError(f"recipes/{folder} already exists on {base_ref}",
                                 "someone has submitted this package already; look for their "
                                 "pull request on staged-recipes")

    who, email = commit_identity(clone, author)
    ident = {"GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": email,
             "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME") or who,
             "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL") or email}
    with tempfile.TemporaryDirectory(prefix="recipegen-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(clone, "read-tree", base, env=env)
        for folder, text in sorted(recipes.items()):
            files = {"recipe.yaml": text, **extra_files.get(folder, {})}
            for file_name, content in sorted(files.items()):
                blob = _git(clone, "hash-object", "-w", "--stdin", "--no-filters",
                            input=content.encode("utf-8"))
                _git(clone, "update-index", "--add", "--cacheinfo",
                     f"100644,{blob},recipes/{folder}/{file_name}", env=env)
        tree = _git(clone, "write-tree", env=env)
    commit = _git(clone, "commit-tree", tree, "-p", base, "-F", "-", env=ident,
                  input=message.encode("utf-8"))
    # The zero old value makes git refuse if the branch appeared meanwhile.
    _git(clone, "update-ref", "-m", "recipegen export", ref, commit, _ZERO)
    return commit
