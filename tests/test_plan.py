"""Planning rules: reuse vs build, and the build order with cycles broken."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from recipegen.channels import Availability, ChannelPackage
from recipegen.plan import CycleError, build_order, combined_specifiers, decide


def _pkg(name: str, version: str, channel: str = "file:///ch") -> ChannelPackage:
    return ChannelPackage(name=name, version=version, build="0", channel=channel,
                          subdir="noarch", file_name=f"{name}-{version}-0.conda",
                          url=f"{channel}/noarch/{name}-{version}-0.conda", sha256=None,
                          depends=())


AVAILABLE = Availability(("file:///ch",), {"idna": (_pkg("idna", "3.7"), _pkg("idna", "2.10")),
                                           "anyio": (_pkg("anyio", "3.0"),)})


def test_reuse_the_newest_channel_version_that_satisfies() -> None:
    d = decide("idna", "3.10", "idna", SpecifierSet(">=2.8"), AVAILABLE, requested=False)
    assert d.action == "reuse"
    assert d.channel_package is not None and d.channel_package.version == "3.7"


def test_build_when_no_channel_version_satisfies() -> None:
    d = decide("anyio", "4.8.0", "anyio", SpecifierSet(">=4"), AVAILABLE, requested=False)
    assert d.action == "build"
    assert "none satisfies" in d.reason and "3.0" in d.reason


def test_build_when_no_channel_has_it() -> None:
    d = decide("h11", "0.16.0", "h11", SpecifierSet(), AVAILABLE, requested=False)
    assert (d.action, d.reason) == ("build", "no channel has it")


def test_requested_packages_are_always_built() -> None:
    d = decide("idna", "3.10", "idna", SpecifierSet(), AVAILABLE, requested=True)
    assert d.action == "build" and d.requested


def test_combined_specifiers_intersect() -> None:
    specs = combined_specifiers([Requirement("idna>=2.8"), Requirement("IDNA<4"),
                                 Requirement("anyio")])
    assert specs["idna"] == SpecifierSet(">=2.8,<4")
    assert specs["anyio"] == SpecifierSet()


def test_order_puts_backends_and_their_run_closure_first() -> None:
    host = {"hatchling": {"packaging", "pluggy"}, "pluggy": {"setuptools", "setuptools-scm"},
            "setuptools-scm": {"setuptools"}, "packaging": {"flit-core"}, "setuptools": set(),
            "flit-core": set(), "httpx": {"hatchling"}}
    run = {"hatchling": {"packaging", "pluggy"}, "setuptools-scm": {"packaging", "setuptools"}}
    order = build_order(host, run)
    names = [s.name for s in order.steps]
    for step in order.steps:
        for dep in step.after:
            assert names.index(dep) < names.index(step.name)
    httpx = next(s for s in order.steps if s.name == "httpx")
    # The host env of httpx holds hatchling and hatchling's run dependencies.
    assert httpx.after == {"hatchling", "packaging", "pluggy"}
    assert not any(s.skip_tests for s in order.steps)


def test_run_cycle_is_broken_by_skipping_one_test() -> None:
    order = build_order({"a": set(), "b": set()}, {"a": {"b"}, "b": {"a"}})
    assert [(s.name, s.skip_tests) for s in order.steps] == [("a", True), ("b", False)]
    assert order.broken_cycles == (("a", "b"),)


def test_host_cycle_raises() -> None:
    with pytest.raises(CycleError) as info:
        build_order({"a": {"b"}, "b": {"a"}}, {})
    assert set(info.value.members) == {"a", "b"}


def test_self_hosting_backend_is_not_a_cycle() -> None:
    order = build_order({"flit-core": {"flit-core"}}, {})
    assert [s.name for s in order.steps] == ["flit-core"]
