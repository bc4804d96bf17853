"""A v1 recipe as data (:class:`RecipeSpec`) and its one way to text (:func:`render`).

Everything in a recipe that came from PyPI is untrusted: a summary can hold YAML syntax,
and rattler-build evaluates ``${{ }}`` and ``{% %}`` in *every* string of a recipe. So
values never reach the text unescaped: the template's finalizer quotes each one for YAML
and wraps any Jinja syntax in a Jinja string literal, which rattler-build prints verbatim.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import recipegen
from recipegen.fsutil import atomic_write

if TYPE_CHECKING:  # imported when the first recipe is rendered: a planned install renders none
    import jinja2

#: Top-level keys of a v1 recipe, in conda-forge's order.
REQUIREMENT_SECTIONS = ("build", "host", "run", "run_constraints")

_JINJA_MARKERS = ("${{", "{{", "}}", "{%", "%}", "{#", "#}")


#: The timestamp of a package whose source has no known upload time (2000-01-01).
FALLBACK_TIMESTAMP = 946684800


@dataclass(frozen=True)
class Conditional:
    """A v1 ``if:`` block of run requirements."""

    selector: str  # "win" | "unix" | "linux" | "osx"
    then: tuple[str, ...]
    otherwise: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    """What happened to one requirement (or extra) on its way into a recipe, and why."""

    subject: str  # the PyPI requirement or ``[extra]``
    action: str  # "dropped" | "kept" | "conditional" | "constraint" | "remapped" | ...
    reason: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.action}, {self.reason}"


@dataclass(frozen=True)
class RecipeSpec:
    """Everything a single-output v1 recipe says, before it is text."""

    name: str
    version: str
    pypi_name: str
    source_url: str
    sha256: str
    script: tuple[str, ...]
    license: str
    source_kind: str = "sdist"  # "sdist" | "wheel"
    file_name: str | None = None
    noarch: str | None = "python"
    build_number: int = 0
    build_string: str | None = None
    entry_points: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    run: tuple[str, ...] = ()
    run_constraints: tuple[str, ...] = ()
    run_conditional: tuple[Conditional, ...] = ()
    test_imports: tuple[str, ...] = ()
    pip_check: bool = True
    test_commands: tuple[str, ...] = ()
    homepage: str | None = None
    summary: str | None = None
    description: str | None = None
    license_files: tuple[str, ...] = ()
    repository: str | None = None
    documentation: str | None = None
    python_min: str | None = None  # a recipe-level override of conda-forge's python_min
    test_python_min: bool = False  # test on ${{ python_min }}.* and the newest python
    maintainers: tuple[str, ...] = ()
    provenance: bool = False  # extra.recipegen (PyPI name and version): local builds only
    #: PyPI's licence field when it is no SPDX expression (rattler-build takes only SPDX in
    #: ``license``): kept word for word in ``extra.recipegen.pypi_license``.
    license_text: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def as_json(self) -> dict:
        """The fields as JSON values: ``asdict`` without its deep copies, which cost more
        than the rest of locking a plan (every spec is hashed and locked on each run)."""
        return _plain(self)

    def content_hash(self) -> str:
        """A hash of what the recipe builds (notes and build string left out)."""
        data = self.as_json()
        data.pop("notes")
        data.pop("build_string")
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()



def _plain(value: object) -> object:
    """Dataclasses as dicts and tuples as lists, recursively; other values as they are."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    return value

@dataclass(frozen=True)
class GeneratedRecipe:
    """A rendered recipe and what planning needs to know about it."""

    spec: RecipeSpec
    text: str
    pypi_name: str
    version: str
    host_requirements: tuple[str, ...]  # PEP 508, PyPI names: build-time dependencies
    run_requirements: tuple[str, ...]  # PEP 508, PyPI names: what the package needs to run
    source_sha256: str
    warnings: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()  # what was dropped, moved or remapped, and why
    source_time: int | None = None  # the source file's upload time (the package's timestamp)
    from_cache: bool = field(default=False, compare=False)  # answered by the recipe cache

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def timestamp(self) -> int:
        """The package's build time: its source's upload time, else a fixed one."""
        return self.source_time or FALLBACK_TIMESTAMP


class Raw(str):
    """A trusted YAML fragment that the finalizer passes through as is."""


class Trusted(str):
    """A value of recipegen's own whose Jinja (``${{ PYTHON }}``) rattler-build must see."""


def jinja_literal(value: str) -> str:
    """``value`` as rattler-build will print it: Jinja syntax wrapped in a string literal."""
    if not any(marker in value for marker in _JINJA_MARKERS):
        return value
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return '${{ "' + escaped + '" }}'


def yaml_quote(value: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly ``value``."""
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _finalize(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Trusted):
        return yaml_quote(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return '""'
    return yaml_quote(jinja_literal(str(value)))


def _comment(value: object) -> Raw:
    """Text safe inside a ``#`` comment: one line, printable."""
    text = " ".join(str(value).split())
    return Raw("".join(ch for ch in text if ch.isprintable()))


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
    )
    env.filters["raw"] = lambda v: Raw(str(v))
    env.filters["trusted"] = lambda v: Trusted(str(v))
    env.filters["comment"] = _comment
    return env


def _load_template(name: str) -> str:
    """From the installed ``recipegen.templates``, or ``templates/`` of a source checkout."""
    checkout = Path(__file__).resolve().parent.parent / "templates" / name
    if checkout.is_file():
        return checkout.read_text()
    from importlib import resources

    return resources.files("recipegen.templates").joinpath(name).read_text()


_ENV: jinja2.Environment | None = None


def render(spec: RecipeSpec, template: str = "recipe.yaml.j2") -> str:
    """The recipe's text; the same spec always gives the same bytes."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    sections = [(s, getattr(spec, s)) for s in REQUIREMENT_SECTIONS if getattr(spec, s)]
    text = _ENV.get_template(template).render(
        **{k: getattr(spec, k) for k in spec.__dataclass_fields__},
        requirement_sections=sections,
        tool_version=recipegen.__version__,
    )
    return text.rstrip("\n") + "\n"


def write_recipe(recipe: GeneratedRecipe, recipe_dir: Path) -> Path:
    """Write ``recipe.yaml`` atomically (a reader never sees half a recipe)."""
    path = recipe_dir / "recipe.yaml"
    try:
        if path.read_bytes() == recipe.text.encode():
            return path  # unchanged: leave the file (and its time stamp) as it is
    except OSError:
        pass
    return atomic_write(path, recipe.text, prefix=".recipe-")
