"""``recipegen lint``: conda-forge's rule ids on v1 recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recipegen.errors import UsageError
from recipegen.lint import Finding, find_recipes, lint_paths, lint_text, rule_kinds

FEEDSTOCKS = Path(__file__).parent / "data" / "feedstock-recipes"

#: A clean noarch python recipe (no lint, no hint); every broken case below changes one thing.
GOOD = """\
schema_version: 1

context:
  name: idna
  version: "3.10"

package:
  name: ${{ name|lower }}
  version: ${{ version }}

source:
  url: https://pypi.org/packages/source/i/idna/idna-${{ version }}.tar.gz
  sha256: 12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9

build:
  number: 0
  noarch: python
  script: ${{ PYTHON }} -m pip install . -vv --no-deps --no-build-isolation

requirements:
  host:
    - flit-core <4
    - pip
    - python ${{ python_min }}.*
  run:
    - python >=${{ python_min }}

tests:
  - python:
      imports:
        - idna
      pip_check: true
      python_version:
        - ${{ python_min }}.*
        - "*"

about:
  homepage: https://github.com/kjd/idna
  summary: Internationalized Domain Names in Applications (IDNA)
  license: BSD-3-Clause
  license_file: LICENSE.md

extra:
  recipe-maintainers:
    - ocefpaf
"""

TESTS = """\
tests:
  - python:
      imports:
        - idna
      pip_check: true
      python_version:
        - ${{ python_min }}.*
        - "*"

"""
WHEEL = "https://files.pythonhosted.org/packages/76/c6/idna-3.10-py3-none-any.whl"
COMPILED = ("https://files.pythonhosted.org/packages/a1/b2/"
            "markupsafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.whl")
NOT_NOARCH = {"  noarch: python\n": "", "    - python >=${{ python_min }}\n": "    - python\n"}


def changed(*pairs: tuple[str, str], text: str = GOOD) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def ids(findings: list[Finding], kind: str) -> list[str]:
    return sorted({f.rule_id for f in findings if f.kind == kind})


def test_good_recipe_has_no_findings():
    assert lint_text(GOOD) == []


# (rule id expected, recipe text, hints expected alongside)
BROKEN = [
    ("R-000", GOOD + "\nfeedstock:\n  name: idna\n", []),
    ("R-001", changed(("\nextra:\n  recipe-maintainers:\n    - ocefpaf\n", ""),
                      ("about:\n", "extra:\n  recipe-maintainers:\n    - ocefpaf\n\nabout:\n")),
     []),
    ("R-002", changed(("  summary: Internationalized Domain Names in Applications (IDNA)\n",
                       "")), []),
    ("R-003", changed(("\nextra:\n  recipe-maintainers:\n    - ocefpaf\n", "")), []),
    ("R-004", changed(("  recipe-maintainers:\n    - ocefpaf\n",
                       "  recipe-maintainers: ocefpaf\n")), []),
    ("R-005", changed((TESTS, "")), ["R-047"]),
    ("R-007", changed(("license: BSD-3-Clause", "license: unknown")), []),
    ("R-008", changed(("  number: 0\n", "")), []),
    ("R-009", changed(("  host:\n    - flit-core <4\n    - pip\n    - python ${{ python_min }}.*\n"
                       "  run:\n    - python >=${{ python_min }}\n",
                       "  run:\n    - python >=${{ python_min }}\n  host:\n    - flit-core <4\n"
                       "    - pip\n    - python ${{ python_min }}.*\n")), []),
    ("R-010", changed(("license: BSD-3-Clause", "license: BSD 3-Clause License")), ["R-044"]),
    ("R-011", GOOD + "\n\n", []),
    ("R-012", GOOD.rstrip("\n"), []),
    ("R-013", changed(("  license_file: LICENSE.md\n", "")), []),
    ("R-014", changed(("name: ${{ name|lower }}", "name: IDNA_${{ name }}")), []),
    ("R-015", changed(("  version: ${{ version }}\n", "")), []),
    ("R-016", changed(('version: "3.10"', 'version: "3.10-1"')), []),
    ("R-016", changed(('version: "3.10"', 'version: "3..10"')), []),
    ("R-019", changed(("  sha256: 12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13"
                       "ea9\n", "")), []),
    ("R-020", changed(("noarch: python", "noarch: pure")), []),
    ("R-021", changed(("flit-core <4", "flit-core < 4")), []),
    ("R-022", changed(("flit-core <4", "flit-core<4")), []),
    ("R-023", changed(("  noarch: python\n", ""),
                      ("    - python >=${{ python_min }}\n", "    - certifi\n")), []),
    ("R-024", changed(("  noarch: python\n", "")), []),
    ("R-026", changed(("    - python >=${{ python_min }}\n", "    - python\n")), ["R-047"]),
    ("R-026", changed(("    - python >=${{ python_min }}\n", "    - python <4\n")), ["R-047"]),
    ("R-028", changed(("url: https://pypi.org/packages/source/i/idna/idna-${{ version }}.tar.gz",
                       f"url: {COMPILED}")), []),
    ("R-029", changed(*NOT_NOARCH.items(),
                      ("url: https://pypi.org/packages/source/i/idna/idna-${{ version }}.tar.gz",
                       f"url: {WHEEL}")), []),
    ("R-036", GOOD + "about: [unclosed\n", []),
    ("R-040", changed(('version: "3.10"', "version: 3.10")), []),
    ("R1-001", changed(("  number: 0\n", "  number: 0  # [win]\n")), []),
    ("R1-002", changed(("    - python >=${{ python_min }}\n",
                        "    - python >=${{ python_min }}\n    - if: win\n      then: pywin32\n")),
     []),
    ("R1-002", changed(("  number: 0\n", "  number: 0\n  skip: win\n")), []),
]


@pytest.mark.parametrize(("rule", "text", "hints"), BROKEN,
                         ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(BROKEN)])
def test_broken_recipe_fails_with_exactly_its_rule(rule, text, hints):
    findings = lint_text(text, "recipe.yaml")
    assert ids(findings, "lint") == [rule], [str(f) for f in findings]
    assert ids(findings, "hint") == hints, [str(f) for f in findings]
    assert all(f.path == "recipe.yaml" for f in findings)


HINTED = [
    ("R-030", changed(("url: https://pypi.org/packages/source/i/idna/idna-${{ version }}.tar.gz",
                       f"url: {WHEEL}"))),
    ("R-044", changed(("license: BSD-3-Clause", "license: BSD-3-Clause-Modification-X"))),
    ("R-045", changed(("license: BSD-3-Clause", "license: Apache-2.0 WITH Made-Up-exception"))),
    ("R-046", changed(("    - flit-core <4\n", ""))),
    ("R-047", changed(("    - python ${{ python_min }}.*\n", "    - python\n"))),
    ("R-047", changed(("    - python >=${{ python_min }}\n", "    - python >=3.9\n"))),
    ("R1-004", changed(("      python_version:\n        - ${{ python_min }}.*\n        - \"*\"\n",
                        "      python_version: ${{ python_min }}.*\n"))),
    ("CF-002", changed(("    - python >=${{ python_min }}\n",
                        "    - python >=${{ python_min }}\n    - matplotlib >=3.8\n"))),
    ("CF-002", changed(("    - pip\n", "    - pip\n    - build\n"))),
]


@pytest.mark.parametrize(("rule", "text"), HINTED,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(HINTED)])
def test_hint_alone_is_not_a_lint(rule, text):
    findings = lint_text(text)
    assert ids(findings, "lint") == []
    assert ids(findings, "hint") == [rule], [str(f) for f in findings]


def test_pure_wheel_is_allowed_when_asked():
    text = changed(*NOT_NOARCH.items(),
                   ("url: https://pypi.org/packages/source/i/idna/idna-${{ version }}.tar.gz",
                    f"url: {WHEEL}"))
    findings = lint_text(text, allow_wheel=True)
    assert ids(findings, "lint") == [] and ids(findings, "hint") == ["R-030"]
    compiled = text.replace(WHEEL, COMPILED)
    assert ids(lint_text(compiled, allow_wheel=True), "lint") == ["R-028"]


def test_hints_table_message_and_line():
    text = changed(("    - python >=${{ python_min }}\n",
                    "    - python >=${{ python_min }}\n    - matplotlib >=3.8\n"))
    (hint,) = lint_text(text)
    assert "matplotlib-base" in hint.message
    assert text.splitlines()[hint.line - 1].strip() == "- matplotlib >=3.8"


def test_hint_for_the_package_itself_is_not_given():
    """The matplotlib recipe may be named matplotlib; only dependencies are hinted."""
    text = changed(("name: ${{ name|lower }}", "name: build"),
                   ("    - pip\n", "    - pip\n    - build\n"))
    assert lint_text(text) == []


def test_line_numbers_point_at_the_problem():
    text = changed(("  number: 0\n", "  number: 0  # [win]\n"), ("flit-core <4", "flit-core<4"))
    by_id = {f.rule_id: f for f in lint_text(text)}
    lines = text.splitlines()
    assert "# [win]" in lines[by_id["R1-001"].line - 1]
    assert "flit-core<4" in lines[by_id["R-022"].line - 1]
    assert "flit-core <4" in by_id["R-022"].message  # says how to write it


def test_selector_lookalikes_inside_strings_are_not_comments():
    text = changed(("  summary: Internationalized Domain Names in Applications (IDNA)\n",
                    '  summary: "IDNA # [not a selector]"\n'),
                   ("  license_file: LICENSE.md\n",
                    "  license_file: LICENSE.md\n  description: |\n    text # [win]\n"))
    assert lint_text(text) == []


def test_conditional_sources_are_checked_too():
    text = changed(("source:\n  url: https://pypi.org/packages/source/i/idna/idna-${{ version }}"
                    ".tar.gz\n  sha256: 12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01"
                    "b13ea9\n",
                    "source:\n  - if: unix\n    then:\n      url: https://example.org/a.tar.gz\n"
                    "    else:\n      url: https://example.org/a.zip\n"
                    "      sha256: 12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13"
                    "ea9\n"))
    assert [f.rule_id for f in lint_text(text)] == ["R-019"]


def test_multi_output_recipe():
    text = """\
schema_version: 1

context:
  version: "1.0"

recipe:
  name: split
  version: ${{ version }}

source:
  url: https://example.org/split-${{ version }}.tar.gz
  sha256: 12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9

build:
  number: 0

outputs:
  - package:
      name: libsplit
    requirements:
      build:
        - ${{ compiler('c') }}
    tests:
      - script:
          - test -f $PREFIX/lib/libsplit.so
  - package:
      name: split-python
    build:
      noarch: python
    requirements:
      host:
        - python>=3.9
      run:
        - if: win
          then: pywin32

about:
  homepage: https://example.org
  summary: A split package
  license: MIT
  license_file: LICENSE

extra:
  recipe-maintainers:
    - someone
"""
    findings = lint_text(text)
    assert ids(findings, "lint") == ["R-022", "R1-002"], [str(f) for f in findings]
    assert ids(findings, "hint") == ["R-006"]
    # the same keys in single-output order are unexpected here
    assert "R-000" in ids(lint_text(text.replace("recipe:", "package:")), "lint")


def test_every_rule_reported_is_in_the_registry_with_its_kind():
    registry = rule_kinds()
    cases = [t for _, t, _ in BROKEN] + [t for _, t in HINTED]
    for finding in (f for t in cases for f in lint_text(t)):
        assert registry[finding.rule_id] == finding.kind


@pytest.mark.parametrize("recipe", sorted(FEEDSTOCKS.glob("*/recipe.yaml")),
                         ids=lambda p: p.parent.name)
def test_feedstock_recipes_have_no_lint(recipe):
    findings = lint_paths([recipe])
    expected_hints = ["R1-004"] if recipe.parent.name == "rich" else []
    assert ids(findings, "lint") == [], [str(f) for f in findings]
    assert ids(findings, "hint") == expected_hints, [str(f) for f in findings]


def test_feedstock_recipes_are_enough():
    assert len(list(FEEDSTOCKS.glob("*/recipe.yaml"))) >= 5


def test_meta_yaml_next_to_recipe_yaml(tmp_path):
    (tmp_path / "recipe.yaml").write_text(GOOD)
    (tmp_path / "meta.yaml").write_text("package: {name: idna}\n")
    assert ids(lint_paths([tmp_path]), "lint") == ["R-051"]


def test_find_recipes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "recipe.yaml").write_text(GOOD)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "recipe.yaml").write_text(GOOD)
    assert find_recipes([tmp_path, tmp_path / "a" / "recipe.yaml"]) == [
        tmp_path / "a" / "recipe.yaml", tmp_path / "b" / "recipe.yaml"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no recipe\.yaml"):
        find_recipes([tmp_path / "empty"])
    with pytest.raises(UsageError, match="does not exist"):
        find_recipes([tmp_path / "missing"])


# -- the command -----------------------------------------------------------------------------


def test_cli_clean_recipes_exit_zero(run_cli):
    result = run_cli("lint", FEEDSTOCKS)
    assert result.returncode == 0, result.stderr
    assert "0 lint(s)" in result.stderr
    assert "hints alone do not fail" in result.stderr
    assert "R1-004" in result.stdout  # rich's hint is shown


def test_cli_lint_exits_one_and_json_lists_findings(run_cli, tmp_path):
    bad = tmp_path / "bad" / "recipe.yaml"
    bad.parent.mkdir()
    bad.write_text(changed(("  license_file: LICENSE.md\n", ""), ("flit-core <4", "flit-core<4")))
    result = run_cli("lint", bad)
    assert result.returncode == 1
    assert f"{bad}:" in result.stdout and "R-013" in result.stdout and "R-022" in result.stdout

    result = run_cli("lint", "--json", tmp_path, FEEDSTOCKS / "idna")
    assert result.returncode == 1
    findings = json.loads(result.stdout)
    assert sorted(f["rule_id"] for f in findings) == ["R-013", "R-022"]
    assert {f["kind"] for f in findings} == {"lint"}
    assert all(f["path"] == str(bad) for f in findings)
    assert set(findings[0]) == {"rule_id", "kind", "message", "path", "line"}


def test_cli_hints_only_exit_zero(run_cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(HINTED[0][1])
    result = run_cli("lint", "--json", recipe)
    assert result.returncode == 0
    assert [f["rule_id"] for f in json.loads(result.stdout)] == ["R-030"]


def test_cli_missing_path_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("lint", tmp_path / "nope")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_only_simple_expressions_are_evaluated():
    """Names and versions come from context, but a hostile expression is not computed."""
    text = changed(('  version: "3.10"\n',
                    '  version: "3.10"\n  big: ${{ name|replace("", "aaaaaaaaaaaaaaaaaaaa")'
                    '|replace("", "aaaaaaaaaaaaaaaaaaaa")|replace("", "aaaaaaaaaaaaaaaaaaaa") }}'
                    '\n  bigger: ${{ big|replace("", "aaaaaaaaaaaaaaaaaaaa")'
                    '|replace("", "aaaaaaaaaaaaaaaaaaaa") }}\n  loop: "{% for i in range(9) %}'
                    '{% for j in range(9) %}x{% endfor %}{% endfor %}"\n'),
                   ("name: ${{ name|lower }}", "name: ${{ bigger }}${{ loop }}"))
    assert lint_text(text) == []  # nothing evaluated, so nothing to judge
    assert ids(lint_text(GOOD.replace("name: ${{ name|lower }}", "name: ${{ name|upper }}")),
               "lint") == ["R-014"]


def test_os_blocks_in_noarch_need_noarch_platforms(tmp_path):
    """tqdm's feedstock style: `if: win` + __win/__unix, allowed with noarch_platforms."""
    text = changed(("    - python >=${{ python_min }}\n",
                    "    - python >=${{ python_min }}\n    - if: win\n      then:\n"
                    "        - colorama\n        - __win\n      else:\n        - __unix\n"))
    assert ids(lint_text(text, noarch_platforms=False), "lint") == ["R1-002"]
    assert ids(lint_text(text, noarch_platforms=True), "lint") == []
    recipe = tmp_path / "tqdm" / "recipe.yaml"
    recipe.parent.mkdir()
    recipe.write_text(text)
    assert ids(lint_paths([recipe]), "lint") == ["R1-002"]
    (recipe.parent / "conda-forge.yml").write_text("noarch_platforms:\n  - linux_64\n  - win_64\n")
    assert ids(lint_paths([recipe]), "lint") == []
    # a non-OS condition is never allowed in a noarch recipe
    other = text.replace("if: win", "if: cuda_compiler_version != 'None'")
    assert ids(lint_text(other, noarch_platforms=True), "lint") == ["R1-002"]
