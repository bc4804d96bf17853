"""Helpers for the env tests: tiny real conda packages, hand-written channels, conda 4.3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from recipegen.localchannel import index


def build_tiny_channel(channel: Path, packages: dict[str, list[str] | dict]) -> Path:
    """Real ``noarch: generic`` packages, one file each (``share/tiny/NAME.txt``).

    ``packages`` maps a name to its run dependencies, or to ``{"depends": [...],
    "constrains": [...], "version": "1.0"}``. Built with rattler-build.
    """
    from rattler_build import Stage0Recipe, ToolConfiguration

    work = channel.parent / f".{channel.name}-build"
    for name, spec in packages.items():
        spec = spec if isinstance(spec, dict) else {"depends": spec}
        depends = spec.get("depends", [])
        recipe = {
            "package": {"name": name, "version": spec.get("version", "1.0")},
            "build": {"number": 0, "noarch": "generic",
                      "script": ['mkdir -p "$PREFIX/share/tiny"',
                                 f'echo {name} > "$PREFIX/share/tiny/{name}.txt"']},
            "requirements": {"run": list(depends),
                             "run_constraints": list(spec.get("constrains", []))},
            "about": {"summary": f"tiny test package {name}", "license": "MIT"},
        }
        recipe_dir = work / name
        recipe_dir.mkdir(parents=True, exist_ok=True)
        Stage0Recipe.from_dict(recipe, recipe_dir=recipe_dir).run_build(
            tool_config=ToolConfiguration(test_strategy="skip"),
            output_dir=work / "out", channels=[(work / "out").as_uri()], no_build_id=True)
    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    for pkg in (work / "out" / "noarch").glob("*.conda"):
        shutil.copyfile(pkg, channel / "noarch" / pkg.name)
    index(channel)
    return channel


def link_env(prefix: Path, channels: list[str], specs: list[str]) -> None:
    """Make an env with py-rattler alone (as pixi or a script would), with requested specs."""
    code = """
import asyncio, json, sys
from rattler import Channel, MatchSpec, VirtualPackage, install, solve
prefix, channels, specs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
records = asyncio.run(solve(sources=[Channel(c) for c in channels], specs=specs,
                            platforms=["linux-64", "noarch"],
                            virtual_packages=VirtualPackage.detect()))
asyncio.run(install(records, target_prefix=prefix, show_progress=False,
                    requested_specs=[MatchSpec(s)._match_spec for s in specs]))
"""
    # py-rattler can crash the interpreter at exit: judge by the files, not the exit code.
    proc = subprocess.run([sys.executable, "-c", code + "print('linked', flush=True)\n",
                           str(prefix), json.dumps(channels), json.dumps(specs)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert "linked" in proc.stdout, proc.stderr


def broken_channel(channel: Path, name: str, version: str, depends: list[str]) -> Path:
    """A channel whose only package depends on something no channel has (repodata only)."""
    for subdir in ("noarch", "linux-64"):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
        packages = {}
        if subdir == "noarch":
            packages = {f"{name}-{version}-0.conda": {
                "name": name, "version": version, "build": "0", "build_number": 0,
                "depends": depends, "subdir": "noarch", "noarch": "python",
                "sha256": "0" * 64, "md5": "0" * 32, "size": 1}}
        (channel / subdir / "repodata.json").write_text(json.dumps({
            "info": {"subdir": subdir}, "packages": {}, "packages.conda": packages,
            "repodata_version": 1}))
    return channel


def lent_pip(tmp: Path) -> dict[str, str]:
    """An environment in which ``python -m pip`` is the test runner's pip."""
    import pip

    target = tmp / "lent-pip"
    target.mkdir(exist_ok=True)
    if not (target / "pip").exists():
        (target / "pip").symlink_to(Path(pip.__file__).parent, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA"))}
    env["PYTHONPATH"] = str(target)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def records(prefix: Path) -> dict[str, dict]:
    return {d["name"]: d for d in (json.loads(p.read_text())
                                   for p in (prefix / "conda-meta").glob("*.json"))}
