"""How close generated recipes come to conda-forge's own: run requirement names compared.

Names are compared after normalizing ``-``/``_`` and case; ``python`` and the ``__unix`` /
``__win`` virtual packages are ignored, and a dependency counts whether it is
unconditional or inside an ``if:`` block (conda-forge writes platform-only dependencies
several ways). Any list of packages can be scored with :func:`score`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

IGNORED = {"python"}
_QUOTED = re.compile(r"""["']([A-Za-z0-9_.-]+)["']""")


def normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def names_in(spec: str) -> set[str]:
    """Package names in one requirement line, however conda-forge wrote it.

    Handles ``name >=1``, ``[win] name`` (a selector written in front), and Jinja such as
    ``${{ "colorama" if noarch_platform == "win" else "python" }}``.
    """
    text = spec.strip()
    if text.startswith("["):
        text = text.split("]", 1)[1].strip()
    if text.startswith("__"):
        return set()
    if "${{" in text:
        values = {normalize(m.group(1)) for m in _QUOTED.finditer(text)
                  if not text[:m.start()].rstrip().endswith(("==", "!="))}
        return values - IGNORED
    name = normalize(text.split()[0]) if text.split() else ""
    return set() if not name or name in IGNORED else {name}


def run_names(specs: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for spec in specs:
        out |= names_in(spec)
    return out


@dataclass(frozen=True)
class Comparison:
    package: str
    generated: frozenset[str]
    reference: frozenset[str]

    @property
    def missing(self) -> frozenset[str]:
        """In conda-forge's recipe, not in ours."""
        return self.reference - self.generated

    @property
    def extra(self) -> frozenset[str]:
        """In ours, not in conda-forge's."""
        return self.generated - self.reference

    @property
    def matches(self) -> bool:
        return self.generated == self.reference


@dataclass(frozen=True)
class Score:
    comparisons: tuple[Comparison, ...]

    @property
    def rate(self) -> float:
        if not self.comparisons:
            return 0.0
        return sum(c.matches for c in self.comparisons) / len(self.comparisons)

    def report(self) -> str:
        lines = [f"run-requirement match: {sum(c.matches for c in self.comparisons)}/"
                 f"{len(self.comparisons)} ({self.rate:.0%})"]
        for c in self.comparisons:
            status = "ok" if c.matches else "DIFF"
            detail = ""
            if c.missing:
                detail += f" missing {sorted(c.missing)}"
            if c.extra:
                detail += f" extra {sorted(c.extra)}"
            lines.append(f"  {status:<4} {c.package}{detail}")
        return "\n".join(lines)


def score(pairs: Iterable[tuple[str, Iterable[str], Iterable[str]]]) -> Score:
    """Compare ``(package, generated run specs, reference run specs)`` triples."""
    return Score(tuple(Comparison(pkg, frozenset(run_names(gen)), frozenset(run_names(ref)))
                       for pkg, gen, ref in pairs))


def recipe_run_specs(spec) -> list[str]:
    """Every run line of a RecipeSpec, conditional blocks included."""
    lines = list(spec.run)
    for block in spec.run_conditional:
        lines.extend(block.then)
        lines.extend(block.otherwise)
    return lines
