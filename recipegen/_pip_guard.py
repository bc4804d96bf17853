"""Archive member rules, and pip run under them (``python -m _recipegen_pip_guard ARGS``).

pip unpacks an sdist, and runs its build backend, while it resolves: before recipegen
has seen the file. pip 23 extracts symlinks that point outside the tree, so the resolver
runs pip through this module, which makes pip refuse any tar member that
:func:`member_problem` refuses, before anything in the archive runs. ``recipegen.archive``
applies the same rules to every sdist before grayskull or rattler-build unpack it.

Standard library only, and any Python 3: it runs under the target env's interpreter,
lent by a symlink next to pip.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tarfile


def name_problem(name: str) -> str | None:
    """Why a member name is unsafe to extract, or None."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        return "points outside the archive (..)"
    return None


def link_escapes(member_name: str, target: str) -> bool:
    """Whether a symlink at ``member_name`` pointing at ``target`` leaves the tree."""
    if target.startswith("/"):
        return True
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member_name), target))
    return joined == ".." or joined.startswith("../")


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is unsafe to extract (absolute, ``..``, links out, device), or None."""
    problem = name_problem(member.name)
    if problem:
        return problem
    if member.islnk():
        # Hard link targets are archive paths: the same rules as names.
        if name_problem(member.linkname):
            return f"is a hard link outside the archive ({member.linkname})"
    elif member.issym():
        if link_escapes(posixpath.normpath(member.name), member.linkname):
            return f"links outside the archive ({member.linkname})"
    elif member.isdev() or member.isfifo():
        return "is a device or fifo"
    return None


def refusal(archive: str, member: str, problem: str) -> str:
    return f"refusing {archive}: member {member!r} {problem}"


def _guard_pip() -> None:
    from pip._internal.exceptions import InstallationError
    from pip._internal.utils import unpacking

    untar_file = unpacking.untar_file

    def checked_untar_file(filename: str, location: str) -> None:
        try:
            with tarfile.open(filename) as tar:
                members = tar.getmembers()
        except tarfile.TarError:
            members = []  # pip reports an unreadable archive itself
        for member in members:
            problem = member_problem(member)
            if problem:
                raise InstallationError(
                    refusal(os.path.basename(filename), member.name, problem)
                    + "; the archive could write outside its folder, so nothing in it was run")
        untar_file(filename, location)

    unpacking.untar_file = checked_untar_file


def main() -> int:
    if sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path.pop(0)  # as pip's own __main__: the working directory is not for imports
    _guard_pip()
    from pip._internal.cli.main import main as pip_main

    return pip_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
