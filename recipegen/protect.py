"""PEP 668 protection: the env's own pip refuses to install, and says to use recipegen.

A plain ``pip install x`` in a conda env writes files no conda record owns; conda then
shows them as "pypi" packages and may clobber or delete them. The ``EXTERNALLY-MANAGED``
file in the interpreter's stdlib directory makes pip stop with our message (and tells how
to override it once). Only a marker recipegen wrote is ever replaced or removed, and a
user's ``protect --off`` is remembered so the next install does not undo it.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

MARKER = "EXTERNALLY-MANAGED"
#: First line of every marker recipegen writes: how it knows the file is its own.
SIGNATURE = "# Written by recipegen: this conda env's Python packages are managed by conda."


@dataclass(frozen=True)
class Protection:
    """Whether an env carries the EXTERNALLY-MANAGED marker, and where it goes."""

    prefix: Path
    marker: Path | None  # where the marker goes (None: the env has no python)
    on: bool  # a marker is there
    ours: bool  # ... and recipegen wrote it
    off_by_user: bool  # ``recipegen protect --off`` was the last word


def _state_file(prefix: Path) -> Path:
    return prefix / "conda-meta" / "recipegen" / "state.json"


def _read_state(prefix: Path) -> dict:
    try:
        return json.loads(_state_file(prefix).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(prefix: Path, **values: object) -> None:
    path = _state_file(prefix)
    state = {**_read_state(prefix), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def stdlib_dir(prefix: Path) -> Path | None:
    """``sysconfig.get_path('stdlib')`` of a conda python: ``lib/pythonX.Y``."""
    from recipegen.envmeta import python_version

    major_minor = python_version(prefix)
    return prefix / "lib" / f"python{major_minor}" if major_minor else None


def message(prefix: Path) -> str:
    p = shlex.quote(str(prefix))
    return "\n".join([
        f"This conda env ({prefix}) is managed by conda and recipegen.",
        "pip would install files that no conda package owns. Install PyPI packages as",
        "conda packages instead (they are built from PyPI when no channel has them):",
        "",
        f"    recipegen install PACKAGE -p {p}",
        f"    recipegen install -e PATH -p {p}      (your project, editable)",
        "",
        "To let pip write here this once anyway, add --break-system-packages to the pip",
        f"command. To turn this protection off: recipegen protect --off -p {p}",
    ])


def _marker_text(prefix: Path) -> str:
    lines = message(prefix).splitlines()
    # pip reads it with configparser: continuation lines of a value are indented (pip
    # prints them dedented, blank lines kept).
    body = "\n".join("  " + line for line in lines[1:])
    return f"{SIGNATURE}\n[externally-managed]\nError={lines[0]}\n{body}\n"


def status(prefix: Path) -> Protection:
    prefix = Path(os.path.abspath(prefix))
    stdlib = stdlib_dir(prefix)
    marker = stdlib / MARKER if stdlib else None
    on = bool(marker and marker.is_file())
    ours = on and marker.read_text(errors="replace").startswith(SIGNATURE)
    return Protection(prefix, marker, on, ours,
                      off_by_user=_read_state(prefix).get("protect") is False)


def _remove_stale(prefix: Path, keep: Path | None) -> None:
    """Markers of ours left in another python's stdlib (after a python upgrade)."""
    for old in (prefix / "lib").glob(f"python*/{MARKER}"):
        if old != keep and old.read_text(errors="replace").startswith(SIGNATURE):
            old.unlink()


def enable(prefix: Path, *, remember: bool = True) -> Protection:
    """Write the marker (replacing one of ours, never someone else's)."""
    current = status(prefix)
    if current.marker is not None and (not current.on or current.ours):
        tmp = current.marker.with_name(f".{MARKER}.{os.getpid()}")
        tmp.write_text(_marker_text(current.prefix))
        os.replace(tmp, current.marker)
    _remove_stale(current.prefix, current.marker)
    if remember:
        _write_state(current.prefix, protect=True)
    return status(prefix)


def disable(prefix: Path) -> Protection:
    """Remove recipegen's marker and remember that the user wants it off."""
    current = status(prefix)
    if current.on and current.ours:
        current.marker.unlink()
    _remove_stale(current.prefix, None)
    _write_state(current.prefix, protect=False)
    return status(prefix)


def after_change(prefix: Path, *, skip: bool) -> Protection:
    """What an install does: protect, unless told not to now or turned off by the user."""
    current = status(prefix)
    if skip or current.off_by_user:
        _remove_stale(current.prefix, current.marker)
        return current
    return enable(prefix, remember=False)
