"""The conda env we install into: where it is, what it holds, which Python and platform.

Everything downstream (resolution, markers, recipes, the solve) is *for a target*, not for
the interpreter recipegen happens to run on, so this is read first and passed along.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from recipegen.errors import RecipegenError, UsageError

#: PEP 508 marker variables as an interpreter sees them (stdlib only, any CPython 3): run
#: in a subprocess for another interpreter, in-process for this one.
#: On POSIX ``platform``'s answers are ``os.uname()``'s, read here without importing it.
_MARKER_ENV_CODE = r"""
import os, sys
def fmt(info):
    v = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        v += info.releaselevel[0] + str(info.serial)
    return v
def marker_values():
    if hasattr(os, "uname") and sys.implementation.name == "cpython":
        u = os.uname()
        machine, release, system, version = u.machine, u.release, u.sysname, u.version
        full, impl = sys.version.split()[0], "CPython"
    else:
        import platform
        machine, release, system, version = (platform.machine(), platform.release(),
                                             platform.system(), platform.version())
        full, impl = platform.python_version(), platform.python_implementation()
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": fmt(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": machine,
        "platform_release": release,
        "platform_system": system,
        "platform_version": version,
        "python_full_version": full,
        "platform_python_implementation": impl,
        "python_version": "%d.%d" % sys.version_info[:2],
        "sys_platform": sys.platform,
    }
"""
_MARKER_ENV_SNIPPET = _MARKER_ENV_CODE + "import json\nprint(json.dumps(marker_values()))\n"


@dataclass(frozen=True)
class InstalledPackage:
    """One conda-meta record, reduced to what planning needs."""

    name: str
    version: str
    build: str
    channel: str
    requested_spec: str | None


@dataclass(frozen=True)
class Target:
    """A conda prefix as found on disk (it may not exist yet)."""

    prefix: Path
    platform: str
    exists: bool
    installed: tuple[InstalledPackage, ...] = field(default=())

    @property
    def python_version(self) -> str | None:
        """Full version of the env's python package, if it has one."""
        for pkg in self.installed:
            if pkg.name == "python":
                return pkg.version
        return None

    @property
    def python_exe(self) -> Path:
        return self.prefix / "bin" / "python"

    @property
    def requested_specs(self) -> list[str]:
        """Specs the user asked for in earlier installs (conda keeps them per record)."""
        return [p.requested_spec for p in self.installed if p.requested_spec]


def current_platform() -> str:
    """The conda subdir of this machine (linux-64, osx-arm64, ...)."""
    from rattler import Subdir

    return str(Subdir.current())


def _read_record(path: Path) -> InstalledPackage:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RecipegenError(
            f"cannot read conda record {path}: {exc}",
            hint="the env's conda-meta is damaged; remove that file or recreate the env",
        ) from exc
    specs = data.get("requested_specs") or []
    requested = data.get("requested_spec") or (specs[0] if specs else None)
    return InstalledPackage(
        name=data["name"],
        version=data["version"],
        build=data.get("build", ""),
        channel=data.get("channel", ""),
        requested_spec=requested,
    )


def inspect_target(prefix: Path) -> Target:
    """Read a prefix; refuse anything that is not a conda env or a place to make one."""
    prefix = Path(os.path.abspath(prefix))
    platform = current_platform()
    if prefix.exists() and not prefix.is_dir():
        raise UsageError(f"prefix {prefix} is a file, not a directory",
                         hint="pass -p with a new or existing conda env directory")
    meta = prefix / "conda-meta"
    if not prefix.exists():
        return Target(prefix=prefix, platform=platform, exists=False)
    if not meta.is_dir():
        if any(prefix.iterdir()):
            raise UsageError(
                f"{prefix} is not a conda env (no conda-meta/) and not empty",
                hint="pass -p with a conda env, a new path, or an empty directory",
            )
        return Target(prefix=prefix, platform=platform, exists=False)
    records = tuple(sorted((_read_record(p) for p in meta.glob("*.json")), key=lambda r: r.name))
    return Target(prefix=prefix, platform=platform, exists=True, installed=records)


def check_writable(prefix: Path) -> None:
    """Refuse, before any long work, a prefix that cannot be changed: under a file, on a
    read-only file system, or owned by someone else. An env is only written at the end,
    after every build; finding out then would waste them."""
    prefix = Path(os.path.abspath(prefix))
    existing = prefix
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"prefix {prefix} cannot be created: {existing} is a file",
                         hint="pass -p with a new or existing conda env directory")
    places = [existing] if existing != prefix else [prefix, prefix / "conda-meta"]
    for place in places:
        if place.is_dir() and not os.access(place, os.W_OK | os.X_OK):
            raise UsageError(
                f"the prefix {prefix} cannot be written: no write permission on {place}"
                + (" (a read-only file system?)" if _read_only_fs(place) else ""),
                hint="pass -p with an env you can write, or fix its permissions; "
                "nothing was built or changed")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def marker_environment(python: Path | str = sys.executable) -> dict[str, str]:
    """PEP 508 marker values as the given interpreter sees them."""
    if Path(python) == Path(sys.executable):
        namespace: dict = {}
        exec(_MARKER_ENV_CODE, namespace)  # the same code, without starting a process
        return namespace["marker_values"]()
    try:
        # -B: asking an env's python a question must not write bytecode into the env.
        out = subprocess.run([str(python), "-I", "-B", "-c", _MARKER_ENV_SNIPPET], check=True,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RecipegenError(f"cannot run the target's python {python}: {exc}") from exc
    return json.loads(out.stdout)
