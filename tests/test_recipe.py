"""The v1 recipe text: valid for rattler-build, and PyPI metadata never evaluated."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from rattler_build import Stage0Recipe, VariantConfig

from recipegen.recipe import RecipeSpec, jinja_literal, render, yaml_quote

HOSTILE = [
    '${{ env.get("HOME") }}',
    "{% if true %}IF{% endif %}",
    "a: b # c",
    "line1\nline2 'single' \"double\" \\backslash",
    "x }} y {{ z",
    "{# comment #}",
    "unicode é ☃ 😀 \u2028 \x07",
    "- [not, a, list]",
    "&anchor *alias !tag",
]


def _spec(**kw) -> RecipeSpec:
    base = dict(name="demo", version="1.0", pypi_name="demo",
                source_url="https://example.invalid/demo-1.0.tar.gz", sha256="0" * 64,
                script=("${{ PYTHON }} -m pip install . -vv --no-deps --no-build-isolation",),
                license="MIT", host=("python", "pip"), run=("python >=3.8",),
                test_imports=("demo",))
    base.update(kw)
    return RecipeSpec(**base)


def _render_about(text: str):
    recipe = Stage0Recipe.from_yaml(text)
    return recipe.render(VariantConfig())[0].recipe


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_metadata_stays_literal(value: str) -> None:
    text = render(_spec(summary=value, description=value))
    rendered = _render_about(text)
    assert rendered.about.summary == value
    assert rendered.about.description == value


@pytest.mark.parametrize("url", ["https://example.invalid/${{env}}/{%x%}",
                                 "https://example.invalid/?q={{x}}#a:b"])
def test_hostile_urls_stay_literal(url: str) -> None:
    rendered = _render_about(render(_spec(homepage=url)))
    # rattler-build percent-encodes braces in URLs; the text itself is not evaluated.
    assert unquote(str(rendered.about.homepage)) == url


def test_build_script_jinja_is_left_for_rattler_build() -> None:
    text = render(_spec())
    assert '  script:\n    - "${{ PYTHON }} -m pip install . -vv --no-deps --no-build-isolation"' \
        in text


def test_render_is_deterministic_and_ordered() -> None:
    spec = _spec(entry_points=("demo = demo.cli:main",), license_files=("LICENSE", "NOTICE"),
                 provenance=True)
    text = render(spec)
    assert text == render(spec)
    keys = [line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()]
    assert keys == ["context", "package", "source", "build", "requirements", "tests", "about",
                    "extra"]
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert '      - "demo = demo.cli:main"' in text
    assert "  license_file:\n    - \"LICENSE\"\n    - \"NOTICE\"" in text


def test_no_license_means_no_license_key() -> None:
    assert "license:" not in render(_spec(license=""))


def test_content_hash_ignores_notes_and_build_string() -> None:
    a = _spec()
    b = _spec(notes=("x",), build_string="pyh0_0")
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != _spec(run=("python >=3.9",)).content_hash()


def test_quoting_helpers() -> None:
    assert yaml_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert jinja_literal("plain") == "plain"
    assert jinja_literal("${{ x }}") == '${{ "${{ x }}" }}'


def test_provenance_only_when_asked() -> None:
    assert "recipegen:" not in render(_spec())
    assert "  recipegen:\n    pypi_name: \"demo\"" in render(_spec(provenance=True))
