"""conda-forge's recipe rules for v1 ``recipe.yaml`` files, without conda-smithy.

conda-smithy, conda-forge's linter, is not on PyPI and asks GitHub about maintainers, so a
recipe is checked here against the same rule ids (the registry, SPDX lists and package hints
are bundled in ``recipegen/data/linter/``; the messages are recipegen's own). The YAML is
parsed, never rendered: comments and key order are part of what is checked, and ``${{ }}``
is evaluated only to read ``package.name`` and ``package.version`` from ``context``.

A *lint* fails the check; a *hint* is advice and does not.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.tokens import CommentToken

from recipegen.errors import UsageError

Kind = Literal["lint", "hint"]

SINGLE_OUTPUT_ORDER = ("schema_version", "context", "package", "source", "build",
                       "requirements", "tests", "about", "extra")
MULTI_OUTPUT_ORDER = ("schema_version", "context", "recipe", "source", "build", "outputs",
                      "about", "extra")
REQUIREMENTS_ORDER = ("build", "host", "run", "run_constraints")
NOARCH_VALUES = ("python", "generic")

#: Packages that are a PEP 517 build backend (or bring one): one of them belongs in ``host``
#: of a recipe that runs ``pip install``.
BUILD_BACKENDS = frozenset({
    "setuptools", "flit-core", "flit", "hatchling", "poetry-core", "poetry", "pdm-backend",
    "pdm-pep517", "meson-python", "maturin", "scikit-build-core", "scikit-build", "uv-build",
    "whey", "sip", "enscons", "sphinx-theme-builder", "jupyter_packaging", "mesonpep517",
})

_NAME = re.compile(r"^[a-z0-9_\-.]+$")
_OPERATORS = ("==", ">=", "<=", "=", ">", "<", "!=", "~=")
_LICENSE_REF = re.compile(r"^LicenseRef[a-zA-Z0-9\-.]*$")
_SELECTOR_COMMENT = re.compile(r"#.*\[[^\[\]]+\]\s*$")
_PYTHON_MIN = re.compile(r"\$\{\{\s*python_min\s*\}\}")
_JINJA_BODY = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_LITERAL = r"""(?:'[^'\\]{0,20}'|"[^"\\]{0,20}")"""
_SIMPLE_EXPR = re.compile(
    r"\s*[A-Za-z_]\w*(?:\s*\[\s*-?\d{1,3}\s*\])?"
    r"(?:\s*\|\s*(?:lower|upper|trim|replace\(\s*" + _LITERAL + r"\s*,\s*" + _LITERAL
    + r"\s*\))){0,3}\s*")


@dataclass(frozen=True)
class Finding:
    """One broken rule (``kind`` "lint") or one piece of advice (``kind`` "hint")."""

    rule_id: str
    kind: Kind
    message: str
    path: str | None = None
    line: int | None = None
    """1-based line in the recipe, where the finding has one place."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.path or '<recipe>'}" + (f":{self.line}" if self.line else "")
        return f"{where}: {self.rule_id} ({self.kind}) {self.message}"


# -- bundled data ----------------------------------------------------------------------------


def _data(name: str) -> str:
    return resources.files("recipegen.data").joinpath("linter", name).read_text("utf-8")


@functools.cache
def rule_kinds() -> dict[str, Kind]:
    """Rule id → kind, from conda-smithy's registry: kinds are never restated here."""
    registry = json.loads(_data("conda_smithy_linter-messages.json"))
    return {m["identifier"]: m["kind"] for m in registry["messages"]}


@functools.cache
def _spdx_ids() -> frozenset[str]:
    return frozenset(s.strip() for s in _data("conda_smithy_spdx_licenses.txt").splitlines()
                     if s.strip())


@functools.cache
def _spdx_exceptions() -> frozenset[str]:
    return frozenset(s.strip() for s in
                     _data("conda_smithy_spdx_license_exceptions.txt").splitlines() if s.strip())


@functools.cache
def package_hints() -> dict[str, str]:
    """Package name → why conda-forge prefers something else (CF-002)."""
    table = tomllib.loads(_data("conda-forge-pinning_linter_hints.toml"))["hints"]
    return {name: " ".join(text.split()) for name, text in table.items()}


# -- public entry points ---------------------------------------------------------------------


def lint_text(text: str, path: str | Path | None = None, *,
              allow_wheel: bool = False, noarch_platforms: bool | None = None) -> list[Finding]:
    """Every finding for one v1 recipe, lints and hints, in rule order.

    ``allow_wheel``: a pure-Python wheel as the source is a hint (R-030) instead of a lint
    (R-029), for recipes that must use one; a compiled wheel is always a lint (R-028).
    ``path`` names the recipe in the findings; when it is a real file, its folder is also
    checked for a second recipe file (R-051) and for a ``conda-forge.yml`` with
    ``noarch_platforms`` (which allows OS-only ``if:`` blocks in a noarch recipe).
    """
    if noarch_platforms is None:
        noarch_platforms = path is not None and has_noarch_platforms(Path(path).parent)
    check = _Checker(text, str(path) if path is not None else None, allow_wheel=allow_wheel,
                     noarch_platforms=noarch_platforms)
    return check.run(Path(path) if path is not None else None)


def has_noarch_platforms(recipe_dir: Path) -> bool:
    """Whether the recipe folder's ``conda-forge.yml`` asks for per-platform noarch builds."""
    config = recipe_dir / "conda-forge.yml"
    if not config.is_file():
        return False
    try:
        data = YAML(typ="safe", pure=True).load(config.read_text("utf-8"))
    except (YAMLError, OSError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and bool(data.get("noarch_platforms"))


def find_recipes(paths: Iterable[str | Path]) -> list[Path]:
    """``recipe.yaml`` files named, or found under the directories named, in order."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            here = sorted(q for q in p.rglob("recipe.yaml") if q.is_file())
            if not here:
                raise UsageError(f"no recipe.yaml under {p}",
                                 "pass a recipe.yaml or a folder that contains one")
            found.extend(here)
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"{p} does not exist", "pass a recipe.yaml or a folder")
    return list(dict.fromkeys(found))


def lint_paths(paths: Iterable[str | Path], *, allow_wheel: bool = False) -> list[Finding]:
    """Findings of every recipe under ``paths`` (see :func:`find_recipes`), file by file."""
    findings: list[Finding] = []
    for recipe in find_recipes(paths):
        try:
            text = recipe.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {recipe}: {exc}") from exc
        findings.extend(lint_text(text, recipe, allow_wheel=allow_wheel))
    return findings


def has_lints(findings: Iterable[Finding]) -> bool:
    return any(f.kind == "lint" for f in findings)


# -- helpers on the parsed YAML --------------------------------------------------------------


def _line_of_key(node: Any, key: str) -> int | None:
    if isinstance(node, CommentedMap) and key in node:
        try:
            return node.lc.key(key)[0] + 1
        except (KeyError, TypeError, AttributeError):
            return None
    return None


def _line_of_item(node: Any, index: int) -> int | None:
    if isinstance(node, CommentedSeq):
        try:
            return node.lc.item(index)[0] + 1
        except (KeyError, TypeError, AttributeError):
            return None
    return None


def _mapping(node: Any) -> dict:
    return node if isinstance(node, dict) else {}


@dataclass(frozen=True)
class _Item:
    """One list entry with its ``if:`` branches flattened away."""

    value: Any
    line: int | None
    conditional: bool
    condition: str | None = None  # the innermost ``if:`` expression


def _flatten(node: Any, condition: str | None = None) -> Iterator[_Item]:
    """Entries of a v1 list, looking into ``if/then/else`` (both branches)."""
    seq = node if isinstance(node, list) else [node] if node is not None else []
    for i, item in enumerate(seq):
        line = _line_of_item(seq, i)
        if isinstance(item, dict) and "if" in item:
            for branch in ("then", "else"):
                for inner in _flatten(item.get(branch), str(item["if"])):
                    yield _Item(inner.value, inner.line or line, True, inner.condition)
        else:
            yield _Item(item, line, condition is not None, condition)


def _spec_name(spec: str) -> str:
    """The package name of a match spec, also when written without spaces (``foo>=1``)."""
    return re.split(r"[\s<>=!~\[]", spec.strip(), maxsplit=1)[0]


class _Unit:
    """What a package output says: the whole recipe, or one entry of ``outputs``."""

    def __init__(self, label: str, node: dict, *, top: dict | None = None) -> None:
        self.label = label
        self.node = node
        self.package = _mapping(node.get("package"))
        build = _mapping(node.get("build")) or _mapping((top or {}).get("build"))
        self.build = build
        self.requirements = _mapping(node.get("requirements"))
        self.tests = node.get("tests")

    @property
    def noarch(self) -> Any:
        return self.build.get("noarch")

    def specs(self, section: str) -> list[_Item]:
        return [i for i in _flatten(self.requirements.get(section))
                if isinstance(i.value, str | int | float)]

    def names(self, section: str) -> list[str]:
        return [_spec_name(str(i.value)) for i in self.specs(section)]


# -- the checks ------------------------------------------------------------------------------


class _Checker:
    def __init__(self, text: str, path: str | None, *, allow_wheel: bool,
                 noarch_platforms: bool = False) -> None:
        self.text = text
        self.path = path
        self.allow_wheel = allow_wheel
        self.noarch_platforms = noarch_platforms
        self.findings: list[Finding] = []
        self.doc: Any = None

    def add(self, rule_id: str, message: str, line: int | None = None) -> None:
        self.findings.append(Finding(rule_id, rule_kinds()[rule_id], message, self.path, line))

    def run(self, file: Path | None) -> list[Finding]:
        self.trailing_newline()
        self.comment_selectors()
        try:
            self.doc = YAML(typ="rt", pure=True).load(self.text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.add("R-036", f"the recipe is not valid YAML: {problem}",
                     mark.line + 1 if mark is not None else None)
            return self.findings
        if not isinstance(self.doc, dict):
            self.add("R-036", "the recipe is not a YAML mapping of sections")
            return self.findings
        if file is not None and file.is_file() and (file.parent / "meta.yaml").exists():
            self.add("R-051", f"{file.parent} holds both meta.yaml and recipe.yaml; "
                     "keep only recipe.yaml")
        doc = self.doc
        self.multi = "outputs" in doc
        self.context = _render_context(_mapping(doc.get("context")))
        self.units = self._units()
        self.sections()
        self.about()
        self.maintainers()
        self.tests()
        self.build_number()
        self.requirements_order()
        self.sources()
        self.name_and_version()
        self.noarch()
        self.spec_spacing()
        self.language_host_run()
        self.python_lower_bound()
        self.wheels()
        self.floats()
        self.python_backend()
        self.python_min()
        self.test_latest_python()
        self.package_hints()
        order = list(rule_kinds())
        return sorted(self.findings, key=lambda f: (order.index(f.rule_id), f.line or 0))

    def _units(self) -> list[_Unit]:
        if not self.multi:
            return [_Unit("the recipe", self.doc)]
        units = []
        for item in _flatten(self.doc.get("outputs")):
            if isinstance(item.value, dict):
                name = _mapping(item.value.get("package")).get("name", "?")
                units.append(_Unit(f"output {name}", item.value, top=self.doc))
        return units

    #
    def trailing_newline(self) -> None:
        lines = self.text.split("\n")
        empty = 0
        for line in reversed(lines):
            if line != "":
                break
            empty += 1
        if empty > 1:
            self.add("R-011", f"the file ends with {empty - 1} blank line(s) too many; "
                     "end it with exactly one newline")
        elif empty < 1:
            self.add("R-012", "the file does not end with a newline; add exactly one")

    # R1-001
    def comment_selectors(self) -> None:
        """``# [win]`` after a value selected lines in v0; in v1 it is only a comment."""
        lines = self.text.splitlines()
        bad: list[int] = []
        try:
            tokens = list(YAML(typ="rt", pure=True).scan(self.text))
        except YAMLError:
            return  # R-036 reports it
        for token in tokens:
            for comment in _comments(getattr(token, "_comment", None)):
                first = comment.start_mark.line
                column = comment.start_mark.column
                text = comment.value.split("\n", 1)[0]
                before = lines[first][:column] if first < len(lines) else ""
                if before.strip() and _SELECTOR_COMMENT.search(text):
                    bad.append(first + 1)
        if bad:
            where = ", ".join(map(str, sorted(set(bad))))
            self.add("R1-001", f"line(s) {where} end in a `# [selector]` comment, which v1 "
                     "recipes ignore; use an `if:`/`then:`/`else:` list entry instead",
                     min(bad))

    #
    def sections(self) -> None:
        expected = MULTI_OUTPUT_ORDER if self.multi else SINGLE_OUTPUT_ORDER
        known = []
        for key in self.doc:
            if key in expected:
                known.append(key)
            else:
                self.add("R-000", f"unknown top-level section `{key}`; a "
                         f"{'multi' if self.multi else 'single'}-output v1 recipe has only "
                         + ", ".join(expected), _line_of_key(self.doc, key))
        wanted = sorted(known, key=expected.index)
        if known != wanted:
            self.add("R-001", "top-level sections are out of order: expected "
                     + ", ".join(wanted) + "; found " + ", ".join(known))

    #
    def about(self) -> None:
        about = _mapping(self.doc.get("about"))
        line = _line_of_key(self.doc, "about")
        for item in ("homepage", "license", "summary"):
            if not about.get(item):
                self.add("R-002", f"`about.{item}` is missing or empty", line)
        license_ = str(about.get("license") or "").strip()
        lline = _line_of_key(about, "license") or line
        if license_.lower() == "unknown":
            self.add("R-007", "`about.license` is `unknown`; find the real licence", lline)
        low = license_.lower()
        if ("license" in low and "unlicense" not in low and "licenseref" not in low
                and "-license" not in low):
            self.add("R-010", f"`about.license` ({license_!r}) should be an SPDX id, without "
                     "the word \"License\"", lline)
        if not about.get("license_file"):
            self.add("R-013", "`about.license_file` is missing: conda-forge packages must "
                     "ship their licence text", line)
        if license_ and license_.lower() != "unknown":
            self._spdx(license_, lline)

    def _spdx(self, expression: str, line: int | None) -> None:
        from license_expression import (
            ExpressionError,
            LicenseWithExceptionSymbol,
            Licensing,
        )

        ids: list[str] = []
        exceptions: list[str] = []
        try:
            for symbol in Licensing().license_symbols(expression, decompose=False):
                if isinstance(symbol, LicenseWithExceptionSymbol):
                    ids.append(symbol.license_symbol.key)
                    exceptions.append(symbol.exception_symbol.key)
                else:
                    ids.append(symbol.key)
        except ExpressionError:
            ids = [expression]
        unknown = [i for i in ids if i not in _spdx_ids() and not _LICENSE_REF.match(i)]
        if unknown:
            self.add("R-044", f"`about.license` {expression!r}: {', '.join(unknown)} is not an "
                     "SPDX licence id (or LicenseRef-...); see "
                     "https://spdx.org/licenses/", line)
        bad_exceptions = [e for e in exceptions if e not in _spdx_exceptions()]
        if bad_exceptions:
            self.add("R-045", f"`about.license` {expression!r}: {', '.join(bad_exceptions)} is "
                     "not an SPDX licence exception", line)

    #
    def maintainers(self) -> None:
        extra = _mapping(self.doc.get("extra"))
        value = extra.get("recipe-maintainers")
        line = _line_of_key(extra, "recipe-maintainers") or _line_of_key(self.doc, "extra")
        if not value:
            self.add("R-003", "no maintainers: list GitHub user names under "
                     "`extra.recipe-maintainers`", line)
        elif not isinstance(value, list) or not all(isinstance(m, str) for m in value):
            self.add("R-004", "`extra.recipe-maintainers` must be a list of GitHub user names",
                     line)

    #
    def tests(self) -> None:
        if not self.multi:
            if not self.doc.get("tests"):
                self.add("R-005", "the recipe has no `tests`; add at least an import test",
                         _line_of_key(self.doc, "tests"))
            return
        for unit in self.units:
            if not unit.tests:
                self.add("R-006", f"{unit.label} has no `tests`")

    #
    def build_number(self) -> None:
        build = _mapping(self.doc.get("build"))
        if build.get("number") is None:
            self.add("R-008", "`build.number` is missing (0 for a new package)",
                     _line_of_key(self.doc, "build"))

    #
    def requirements_order(self) -> None:
        for unit in self.units:
            seen = [k for k in unit.requirements if k in REQUIREMENTS_ORDER]
            wanted = sorted(seen, key=REQUIREMENTS_ORDER.index)
            if seen != wanted:
                self.add("R-009", f"requirements of {unit.label} are out of order: expected "
                         + ", ".join(wanted) + "; found " + ", ".join(seen),
                         _line_of_key(unit.node, "requirements"))

    def _sources(self) -> list[_Item]:
        nodes = [self.doc.get("source")] + [u.node.get("source") for u in self.units
                                            if u.node is not self.doc]
        return [i for n in nodes for i in _flatten(n) if isinstance(i.value, dict)]

    #
    def sources(self) -> None:
        for item in self._sources():
            source = item.value
            if "url" in source and not {"sha256", "sha1", "md5"} & set(source):
                self.add("R-019", f"source {_first_url(source.get('url'))} has no checksum; "
                         "add its sha256", item.line)

    #
    def name_and_version(self) -> None:
        head = _mapping(self.doc.get("recipe" if self.multi else "package"))
        where = "recipe" if self.multi else "package"
        names = [(f"{where}.name", head.get("name"), _line_of_key(head, "name"))]
        names += [(f"{u.label} name", u.package.get("name"), _line_of_key(u.package, "name"))
                  for u in self.units if u.node is not self.doc]
        for label, raw, line in names:
            if raw is None:
                continue
            name = _render(str(raw), self.context)
            if name is not None and not _NAME.match(name):
                self.add("R-014", f"{label} {name!r} may only hold lowercase letters, digits, "
                         "`_`, `-` and `.`", line)
        raw_version = head.get("version")
        line = _line_of_key(head, "version") or _line_of_key(self.doc, where)
        if raw_version is None or str(raw_version).strip() == "":
            self.add("R-015", f"`{where}.version` is missing", line)
            return
        version = _render(str(raw_version), self.context)
        if version is None:
            return  # an expression this linter cannot evaluate; rattler-build will
        problem = _version_problem(version)
        if problem:
            self.add("R-016", f"version {version!r} is not a valid conda version: {problem}",
                     line)

    # R-020, R1-002
    def noarch(self) -> None:
        for unit in self.units:
            value = unit.noarch
            if value is None:
                continue
            line = _line_of_key(unit.build, "noarch")
            if value not in NOARCH_VALUES:
                self.add("R-020", f"`noarch: {value}` is not valid; use `python` or `generic`",
                         line)
            skip = unit.build.get("skip")
            if skip not in (None, False, []):
                self.add("R1-002", f"{unit.label} is noarch (built once for all platforms) but "
                         "has `build.skip`; drop the skip or drop `noarch`",
                         _line_of_key(unit.build, "skip"))
            for section in REQUIREMENTS_ORDER:
                conditional = [i for i in _flatten(unit.requirements.get(section))
                               if i.conditional and not self._platform_block(section, i)]
                if conditional:
                    self.add("R1-002", f"{unit.label} is noarch (built once for all "
                             f"platforms) but `requirements.{section}` has `if:` entries; "
                             "drop the condition or drop `noarch`", conditional[0].line)

    def _platform_block(self, section: str, item: _Item) -> bool:
        """An OS-only ``if:`` in host/run, allowed when conda-forge.yml sets noarch_platforms.

        conda-forge then builds the noarch package once per platform (as tqdm's feedstock
        does for colorama on Windows).
        """
        if not self.noarch_platforms or section not in ("host", "run"):
            return False
        words = set((item.condition or "").split()) - {"not", "and", "or"}
        return bool(words) and words <= {"win", "linux", "osx", "unix"}

    #
    def spec_spacing(self) -> None:
        for unit in self.units:
            for section in unit.requirements:
                if section not in REQUIREMENTS_ORDER:
                    continue
                for item in unit.specs(section):
                    self._one_spec(section, str(item.value), item.line)

    def _one_spec(self, section: str, spec: str, line: int | None) -> None:
        if spec.lstrip().startswith("${{"):
            return
        parts = spec.split()
        if not parts:
            return
        if len(parts) > 2 and parts[1] in _OPERATORS:
            fixed = " ".join([parts[0], parts[1] + parts[2], *parts[3:]])
            self.add("R-021", f"`{spec}` in requirements.{section}: no space between the "
                     f"operator and the version; write `{fixed}`", line)
            return
        cuts = [parts[0].find(c) for c in "<>=!~" if c in parts[0]]
        if cuts:
            i = min(cuts)
            fixed = " ".join([parts[0][:i], parts[0][i:], *parts[1:]])
            self.add("R-022", f"`{spec}` in requirements.{section}: separate the name from "
                     f"the version with a space; write `{fixed}`", line)

    #
    def language_host_run(self) -> None:
        if self.multi:
            return
        unit = self.units[0]
        if unit.noarch is not None:
            return
        for language in ("python", "r-base"):
            host = [str(i.value) for i in unit.specs("host")
                    if _spec_name(str(i.value)) == language]
            run = [str(i.value) for i in unit.specs("run")
                   if _spec_name(str(i.value)) == language]
            if host and not run:
                self.add("R-023", f"`{language}` is in requirements.host but not in run; "
                         "add it to run", _line_of_key(unit.requirements, "run")
                         or _line_of_key(unit.requirements, "host"))
            for spec in host + run:
                constraint = spec.strip().split(None, 1)[1:] or [""]
                if constraint[0].startswith(("<", ">")):
                    self.add("R-024", f"`{spec}`: a package that is not noarch is built per "
                             f"{language} version; leave `{language}` unconstrained")
                    break

    #
    def python_lower_bound(self) -> None:
        if self.multi:
            return
        unit = self.units[0]
        if unit.noarch != "python":
            return
        for item in unit.specs("run"):
            parts = str(item.value).split(None, 1)
            if parts and parts[0] == "python" and len(parts) > 1 and _lower_bound(parts[1]):
                return
        self.add("R-026", "a `noarch: python` recipe needs a lower bound on python in "
                 "requirements.run, usually `python >=${{ python_min }}`",
                 _line_of_key(unit.requirements, "run") or _line_of_key(self.doc,
                                                                        "requirements"))

    #
    def wheels(self) -> None:
        for item in self._sources():
            urls = item.value.get("url")
            for url in urls if isinstance(urls, list) else [urls]:
                if not isinstance(url, str) or not url.strip().endswith(".whl"):
                    continue
                noarch_python = any(u.noarch == "python" for u in self.units)
                if not url.strip().endswith("-none-any.whl"):
                    self.add("R-028", f"source {url} is a compiled wheel; conda-forge builds "
                             "from source (the sdist)", item.line)
                elif noarch_python or self.allow_wheel:
                    self.add("R-030", f"source {url} is a wheel; an sdist is preferred where "
                             "one exists", item.line)
                else:
                    self.add("R-029", f"source {url} is a wheel; build from the sdist, or "
                             "make the package `noarch: python`", item.line)

    #
    def floats(self) -> None:
        context = _mapping(self.doc.get("context"))
        for key, value in context.items():
            if isinstance(value, float):
                self.add("R-040", f"`context.{key}` is read as the number {value!r}; quote it "
                         f"(\"{_float_text(self.text, context, key, value)}\") to keep it "
                         "as written", _line_of_key(context, key))
        head = _mapping(self.doc.get("recipe" if self.multi else "package"))
        units = [head] + [u.package for u in self.units if u.node is not self.doc]
        for package in units:
            value = package.get("version")
            if isinstance(value, float):
                self.add("R-040", f"`version` is read as the number {value!r}; quote it "
                         f"(\"{_float_text(self.text, package, 'version', value)}\") to keep "
                         "it as written", _line_of_key(package, "version"))

    #
    def python_backend(self) -> None:
        for unit in self.units:
            host = unit.names("host")
            if "pip" not in host and not _runs_pip(unit.build.get("script")):
                continue
            if not BUILD_BACKENDS & set(host):
                name = _render(str(unit.package.get("name", "")), self.context) or "?"
                self.add("R-046", f"{name} is installed with pip but requirements.host has no "
                         "build backend (setuptools, flit-core, hatchling, poetry-core, ...); "
                         "add the one named in pyproject.toml's [build-system]",
                         _line_of_key(unit.requirements, "host"))

    #
    def python_min(self) -> None:
        if self.multi:
            return
        unit = self.units[0]
        if unit.noarch != "python":
            return
        advice = []
        host = [_normal(str(i.value)) for i in unit.specs("host")]
        if "python ${{ python_min }}.*" not in host:
            advice.append("requirements.host: `python ${{ python_min }}.*`")
        run = [_normal(str(i.value)) for i in unit.specs("run")]
        if "python >=${{ python_min }}" not in run:
            advice.append("requirements.run: `python >=${{ python_min }}`")
        if not _tests_python_min(unit.tests):
            advice.append("tests: a python test with `python_version: ${{ python_min }}.*`")
        if advice:
            self.add("R-047", "`noarch: python` recipes build and test on the oldest python "
                     "they support and run on any newer one; use " + "; ".join(advice)
                     + " (set `python_min` in `context` when the package needs a newer "
                     "python than conda-forge's default)")

    # R1-004
    def test_latest_python(self) -> None:
        for unit in self.units:
            if unit.noarch != "python":
                continue
            for item in _flatten(unit.tests):
                test = item.value
                if not isinstance(test, dict) or "python" not in test:
                    continue
                versions = _mapping(test["python"]).get("python_version")
                if not isinstance(versions, list) or len(versions) < 2:
                    whose = f" of {unit.label}" if self.multi else ""
                    self.add("R1-004", f"the python test{whose} runs on one python only; a "
                             "noarch package installs on every python from python_min up, so "
                             "test both ends: `python_version: [\"${{ python_min }}.*\", "
                             "\"*\"]`", item.line)

    # CF-002
    def package_hints(self) -> None:
        table = package_hints()
        own = {_render(str(u.package.get("name", "")), self.context) for u in self.units}
        for unit in self.units:
            deps = [(s, i) for s in REQUIREMENTS_ORDER for i in unit.specs(s)]
            deps += [("tests", i) for i in _test_requirements(unit.tests)]
            for section, item in deps:
                name = _spec_name(str(item.value))
                if name in table and name not in own:
                    self.add("CF-002", f"`{name}` in {section}: {table[name]}", item.line)


# -- small pure helpers ----------------------------------------------------------------------


def _comments(node: Any) -> Iterator[CommentToken]:
    if isinstance(node, CommentToken):
        yield node
    elif isinstance(node, list | tuple):
        for child in node:
            yield from _comments(child)


def _render_context(context: dict) -> dict[str, Any]:
    """``context`` values in order, each rendered against the ones before it."""
    out: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, str):
            rendered = _render(value, out)
            if rendered is not None:
                out[str(key)] = rendered
        elif value is not None and not isinstance(value, dict | list):
            out[str(key)] = value
    return out


@functools.cache
def _jinja_env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(variable_start_string="${{", variable_end_string="}}",
                                         undefined=StrictUndefined, autoescape=False)


def _render(value: str, context: dict[str, Any]) -> str | None:
    """``value`` with ``${{ }}`` evaluated from ``context``, or None if it cannot be.

    Only the simple expressions recipes use for names and versions are evaluated (a
    variable, an index, up to three of lower/upper/trim/replace with short literals), so
    a hostile recipe cannot make the linter compute something huge.
    """
    if "${{" not in value:
        return value
    if "{%" in value or "{#" in value:
        return None
    if not all(_SIMPLE_EXPR.fullmatch(body) for body in _JINJA_BODY.findall(value)):
        return None
    try:
        rendered = _jinja_env().from_string(value).render(context)
    except Exception:  # any template error: leave the value to rattler-build
        return None
    return rendered if len(rendered) <= 1000 else None


def _version_problem(version: str) -> str | None:
    """Why conda would refuse ``version``, or None."""
    if "-" in version:
        return "`-` separates name, version and build in a package file name"
    import rattler

    try:
        rattler.Version(version)
    except Exception as exc:  # rattler's InvalidVersionError
        return str(exc)
    return None


def _lower_bound(constraint: str) -> bool:
    """Whether a version constraint sets a floor (``>=3.9``, ``3.10.*``, ``>=3.9,<4``)."""
    for part in re.split(r"[,|]", constraint.split()[0] if constraint.split() else ""):
        part = part.strip()
        if part.startswith((">", "==", "~=")) or part[:1].isdigit() or part.startswith("${{"):
            return True
        if part.startswith("=") and not part.startswith("=="):
            return True
    return False


def _first_url(url: Any) -> str:
    return str(url[0] if isinstance(url, list) and url else url)


def _float_text(text: str, node: Any, key: str, value: float) -> str:
    """The number as written in the file (``1.10``, not ``1.1``), for the advice."""
    line = _line_of_key(node, key)
    if line is not None:
        written = text.splitlines()[line - 1].split(":", 1)[-1].split("#")[0].strip()
        if written:
            return written
    return repr(value)


def _normal(spec: str) -> str:
    """A spec with ``${{python_min}}`` spelled one way, for comparison."""
    return _PYTHON_MIN.sub("${{ python_min }}", " ".join(spec.split()))


def _runs_pip(script: Any) -> bool:
    if isinstance(script, dict):
        script = script.get("content")
    if isinstance(script, list):
        script = "\n".join(str(s) for s in script)
    return isinstance(script, str) and "pip install" in script


def _python_versions(test: dict) -> list[str]:
    versions = _mapping(test.get("python")).get("python_version")
    if versions is None:
        return []
    return [str(v) for v in (versions if isinstance(versions, list) else [versions])]


def _test_requirements(tests: Any) -> list[_Item]:
    out: list[_Item] = []
    for item in _flatten(tests):
        if isinstance(item.value, dict):
            requirements = _mapping(item.value.get("requirements"))
            for section in ("run", "build"):
                out.extend(i for i in _flatten(requirements.get(section))
                           if isinstance(i.value, str))
    return out


def _tests_python_min(tests: Any) -> bool:
    """Whether some test runs on ``python_min``: a python test's ``python_version``, or a
    script test that requires ``python ${{ python_min }}.*``."""
    for item in _flatten(tests):
        if not isinstance(item.value, dict):
            continue
        if any(_normal(v) == "${{ python_min }}.*" for v in _python_versions(item.value)):
            return True
    return any(_normal(str(i.value)) == "python ${{ python_min }}.*"
               for i in _test_requirements(tests))


def summary_line(findings: Sequence[Finding], recipes: int) -> str:
    lints = sum(f.kind == "lint" for f in findings)
    hints = len(findings) - lints
    return (f"{recipes} recipe(s): {lints} lint(s), {hints} hint(s)"
            + ("" if lints else "; hints alone do not fail the check"))
