"""Markers per flavour: evaluated for the target (local) or over every Python/platform."""

from __future__ import annotations

from packaging.markers import Marker

from recipegen.mapping import NameMapper
from recipegen.requirements import local_run, noarch_run, platforms_where

MAPPER = NameMapper()
LINUX_311 = {"python_version": "3.11", "python_full_version": "3.11.7",
             "implementation_name": "cpython", "implementation_version": "3.11.7",
             "platform_python_implementation": "CPython", "platform_machine": "x86_64",
             "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
             "platform_release": "", "platform_version": ""}
ANYIO = ['exceptiongroup>=1.0.2; python_version < "3.11"', "idna>=2.8", "sniffio>=1.1",
         'typing_extensions>=4.5; python_version < "3.13"', 'trio>=0.26.1; extra == "trio"',
         'pytest>=7.0; extra == "test"']


def test_local_evaluates_markers_for_the_target() -> None:
    result = local_run(ANYIO, LINUX_311, MAPPER, {}, "python >=3.9")
    assert result.run == ("python >=3.9", "idna >=2.8", "sniffio >=1.1",
                          "typing_extensions >=4.5")
    dropped = [n for n in result.notes if n.action == "dropped"]
    assert [n.subject for n in dropped] == ['exceptiongroup>=1.0.2; python_version < "3.11"',
                                            "[test]", "[trio]"]
    assert result.constraints == ("trio >=0.26.1",)  # the test extra is not a constraint


def test_noarch_keeps_what_python_min_does_not_settle() -> None:
    result = noarch_run(ANYIO, "3.10", MAPPER, {}, "python >=${{ python_min }}")
    assert "exceptiongroup >=1.0.2" in result.run
    assert "typing_extensions >=4.5" in result.run
    later = noarch_run(ANYIO, "3.11", MAPPER, {}, "python >=${{ python_min }}")
    assert not any(r.startswith("exceptiongroup") for r in later.run)
    assert any("false for every Python >=3.11" in n.reason for n in later.notes)


def test_platform_markers_become_valid_v1_blocks() -> None:
    reqs = ['colorama; platform_system == "Windows"', 'uvloop; sys_platform != "win32"',
            'appnope; sys_platform == "darwin"']
    result = noarch_run(reqs, "3.10", MAPPER, {}, "python")
    blocks = {b.selector: b for b in result.conditional}
    assert blocks["win"].then == ("colorama", "__win") and blocks["win"].otherwise == ("__unix",)
    assert blocks["unix"].then == ("uvloop", "__unix")
    assert blocks["osx"].then == ("appnope", "__osx")  # never the invalid selector "darwin"
    assert result.run == ("python",)


def test_machine_markers_are_never_silently_unconditional() -> None:
    result = noarch_run(['greenlet; platform_machine == "x86_64"'], "3.10", MAPPER, {}, "python")
    assert "greenlet" in result.run
    assert any(n.subject.startswith("greenlet") and n.action == "kept for all"
               for n in result.notes)
    local = local_run(['greenlet; platform_machine == "aarch64"'], LINUX_311, MAPPER, {}, "py")
    assert local.run == ("py",)  # false on this x86_64 target: dropped, and said so
    assert local.notes


def test_extras_of_dependencies_are_expanded() -> None:
    deps = {"httpcore": ("certifi", "h11>=0.16", 'h2<5,>=3; extra == "http2"')}
    result = local_run(["httpcore[http2]==1.*"], LINUX_311, MAPPER, deps, "python")
    assert result.run == ("python", "httpcore 1.*", "h2 >=3,<5")


def test_names_are_remapped() -> None:
    result = local_run(["typing-extensions>=4", "msgpack"], LINUX_311, MAPPER, {}, "python")
    assert result.run == ("python", "typing_extensions >=4", "msgpack-python")


def test_platforms_where() -> None:
    assert platforms_where(Marker('os_name == "nt"'), "3.10") == {"win"}
    assert platforms_where(Marker('python_version < "3.8"'), "3.10") == set()
