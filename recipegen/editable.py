"""``recipegen install -e PATH``: a project of the user's, editable, on conda packages.

Every requirement of the project (and its build backend, which an editable install
without build isolation imports) becomes a conda package through the normal pipeline.
Only the project itself is then installed by pip, ``--no-deps --no-build-isolation``,
with the env's python, past the EXTERNALLY-MANAGED marker: the one thing in the env that
no conda record owns, and which ``recipegen list`` shows as editable.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from recipegen.errors import RecipegenError, UsageError
from recipegen.resolve import active_requirements, lend_pip

#: PEP 517's backend for a project without ``[build-system]``.
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)


@dataclass(frozen=True)
class Project:
    path: Path
    name: str
    version: str
    requirements: tuple[str, ...]  # run requirements that apply on the target
    build_requires: tuple[str, ...]  # [build-system] requires

    @property
    def specs(self) -> tuple[str, ...]:
        """What must be conda packages in the env before pip installs the project."""
        seen: dict[str, str] = {}
        for text in (*self.requirements, *self.build_requires):
            req = Requirement(text)
            req.marker = None
            seen.setdefault(req.name.lower(), str(req))
        return tuple(seen.values())


def read_project(path: Path, python: Path, marker_env: dict[str, str]) -> Project:
    """The project's name, version and requirements, from its PEP 517 metadata."""
    path = Path(os.path.abspath(path))
    if not ((path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
        raise UsageError(f"{path} is not a Python project (no pyproject.toml or setup.py)",
                         hint="pass the directory that holds the project's pyproject.toml")
    build_requires = DEFAULT_BUILD_REQUIRES
    if (path / "pyproject.toml").is_file():
        try:
            data = tomllib.loads((path / "pyproject.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read {path / 'pyproject.toml'}: {exc}") from exc
        system = data.get("build-system") or {}
        if "requires" in system:
            build_requires = tuple(str(r) for r in system["requires"])
    with tempfile.TemporaryDirectory(prefix="recipegen-editable-") as tmpdir:
        tmp = Path(tmpdir)
        report = tmp / "report.json"
        cmd = [str(python), "-m", "pip", "install", "--dry-run", "--no-deps",
               "--ignore-installed", "--report", str(report), "--quiet", str(path)]
        proc = subprocess.run(cmd, env=lend_pip(tmp), capture_output=True, text=True,
                              timeout=900, cwd=tmp)
        if proc.returncode != 0:
            raise RecipegenError(f"pip could not read the metadata of {path}:\n"
                                 + proc.stderr[-3000:],
                                 hint="check that 'pip install -e .' would work there")
        item = json.loads(report.read_text())["install"][0]["metadata"]
    try:
        run = active_requirements(tuple(item.get("requires_dist") or ()), marker_env)
        for text in build_requires:
            Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(f"{path}: malformed requirement: {exc}") from exc
    return Project(path, item["name"], item["version"], tuple(str(r) for r in run),
                   build_requires)


def pip_install_editable(prefix: Path, project: Path) -> None:
    """``pip install -e PATH --no-deps --no-build-isolation`` with the env's python."""
    python = prefix / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="recipegen-pip-") as tmpdir:
        cmd = [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
               "--break-system-packages", "--no-input", "-e", str(project)]
        proc = subprocess.run(cmd, env=lend_pip(Path(tmpdir)), capture_output=True,
                              text=True, timeout=1800, cwd=project)
    if proc.returncode != 0:
        raise RecipegenError(f"pip could not install {project} in editable mode:\n"
                             + proc.stderr[-3000:],
                             hint="its dependencies are installed as conda packages; fix the "
                             "project's build and run the same command again")


def pip_uninstall(prefix: Path, name: str) -> None:
    """Remove a distribution pip installed (an editable project) from the env."""
    python = prefix / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="recipegen-pip-") as tmpdir:
        cmd = [str(python), "-m", "pip", "uninstall", "--yes", "--break-system-packages",
               name]
        proc = subprocess.run(cmd, env=lend_pip(Path(tmpdir)), capture_output=True,
                              text=True, timeout=600, cwd=tmpdir)
    if proc.returncode != 0:
        raise RecipegenError(f"pip could not uninstall {name}:\n{proc.stderr[-2000:]}")

