"""PEP 440 → conda spec translation, checked against py-rattler's own spec parser."""

from __future__ import annotations

import pytest
from rattler import Version, VersionSpec

from recipegen.errors import RecipegenError
from recipegen.specs import conda_requirement, satisfies, to_conda_spec


@pytest.mark.parametrize(
    ("pep440", "conda"),
    [
        ("", ""),
        ("==1.*", "1.*"),
        ("~=2.1", ">=2.1,<3"),
        ("~=2.1.3", ">=2.1.3,<2.2"),
        ("!=1.5", "!=1.5"),
        ("<5,>=3", ">=3,<5"),
        ("!=1.5,>=1.0,<2", ">=1.0,!=1.5,<2"),
        ("===1.0", "==1.0"),
        ("==2.0.1", "==2.0.1"),
        (">0.16", ">0.16"),
        ("<=4", "<=4"),
        ("!=1.5.*", "!=1.5.*"),
        (">=1!2.0", ">=1!2.0"),
    ],
)
def test_translation(pep440: str, conda: str) -> None:
    assert to_conda_spec(pep440) == conda
    if conda:
        VersionSpec(conda)  # conda (rattler) accepts what we write


@pytest.mark.parametrize(
    ("pep440", "inside", "outside"),
    [
        ("==1.*", ["1.0", "1.9.3"], ["2.0", "0.9"]),
        ("~=2.1", ["2.1", "2.9.9"], ["3.0", "2.0"]),
        ("~=2.1.3", ["2.1.3", "2.1.9"], ["2.2.0", "2.1.2"]),
        ("!=1.5,>=1.0,<2", ["1.0", "1.4", "1.6"], ["1.5", "2.0", "0.9"]),
    ],
)
def test_translation_means_the_same(pep440: str, inside: list[str], outside: list[str]) -> None:
    """The conda spec accepts exactly the versions the PEP 440 one does (on these samples)."""
    spec = VersionSpec(to_conda_spec(pep440))
    for v in inside:
        assert spec.matches(Version(v)), v
        assert satisfies(v, pep440)
    for v in outside:
        assert not spec.matches(Version(v)), v
        assert not satisfies(v, pep440)


def test_requirement_spacing() -> None:
    assert conda_requirement("httpcore", "==1.*") == "httpcore 1.*"
    assert conda_requirement("idna") == "idna"


def test_bad_specifiers_are_clear_errors() -> None:
    with pytest.raises(RecipegenError, match="invalid version specifier"):
        to_conda_spec(">=1.0+local")
    with pytest.raises(RecipegenError, match="invalid version specifier"):
        to_conda_spec("~=2")
