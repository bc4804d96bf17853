#!/usr/bin/env python
"""Build recipegen's bundled PyPI→conda name table from conda-forge's reference data.

Reads ``<repo>/../shared/data/conda-forge`` (see its README for provenance) and writes
``recipegen/data/mappings/pypi_to_conda.json``. The output is deterministic, so a test can
rebuild it and compare bytes.

Precedence, per normalized PyPI name (first that decides wins):

1. cf-scripts static mapping (conda-forge's autotick bot overrides),
2. grayskull's strategy config (hand-curated),
3. conda-forge's linter hints: a hint "use Y instead of X" replaces the name X that
   parselmouth or identity would give, but only when parselmouth confirms that Y ships
   the same PyPI distribution (so `jpeg` → `libjpeg-turbo` can never hit a PyPI name),
4. parselmouth inverted (conda → PyPI turned around), kept only where the PyPI name has
   one candidate, or a candidate equal to it (exactly, else after normalization),
5. the normalized name itself (not stored).

User overrides sit above all of these at run time (``recipegen.mapping.NameMapper``).

Usage: ``python tools/build_mapping.py [--source DIR] [--output FILE] [--check]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "conda-forge"
DEFAULT_OUTPUT = REPO / "recipegen" / "data" / "mappings" / "pypi_to_conda.json"
FORMAT = 1

CF_SCRIPTS = "cf-scripts"
GRAYSKULL = "grayskull"
HINT = "hint"
PARSELMOUTH = "parselmouth"
LAYERS = (CF_SCRIPTS, GRAYSKULL, HINT, PARSELMOUTH)

# How a hint message names the replacement. Messages naming no single replacement
# (pathlib: "drop it", xz: several options, libboost: "use ... in host") match none.
_HINT_PATTERNS = (
    re.compile(r"depend on `([^`]+)` as opposed to"),
    re.compile(r"superseded by `([^`]+)`"),
    re.compile(r"renamed to `([^`]+)`"),
    re.compile(r"[Uu]se `([^`]+)` instead"),
    re.compile(r"depend on `([^`]+)` directly"),
)


def normalize(name: str) -> str:
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_yaml(path: Path) -> object:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def read_cf_scripts(path: Path) -> dict[str, str]:
    """cf-scripts' list of {pypi_name, conda_name}; version delimiters are ignored (pyqt)."""
    out: dict[str, str] = {}
    for entry in _load_yaml(path):  # type: ignore[union-attr]
        key = normalize(entry["pypi_name"])
        if out.setdefault(key, entry["conda_name"]) != entry["conda_name"]:
            raise ValueError(f"{path.name}: {key} maps to two conda names")
    return out


def read_grayskull(path: Path) -> dict[str, str]:
    """grayskull's config: {pypi: {conda_forge: name, import_name, ...}}."""
    data = _load_yaml(path)
    return {normalize(k): v["conda_forge"] for k, v in data.items()}  # type: ignore[union-attr]


def read_hints(path: Path) -> dict[str, str]:
    """conda-forge's linter hints reduced to {discouraged conda name: preferred conda name}."""
    hints = tomllib.loads(path.read_text(encoding="utf-8"))["hints"]
    out: dict[str, str] = {}
    for name, message in hints.items():
        for pattern in _HINT_PATTERNS:
            match = pattern.search(" ".join(message.split()))
            if match and match.group(1) != name:
                out[name] = match.group(1)
                break
    return out


def invert_parselmouth(v0: Mapping[str, list[str] | None]) -> tuple[dict[str, str], int]:
    """PyPI → conda from parselmouth's conda → PyPI, keeping only unambiguous answers.

    Returns the table and how many PyPI names were left out as ambiguous.
    """
    candidates: dict[str, set[str]] = defaultdict(set)
    for conda, pypi_names in v0.items():
        for pypi in pypi_names or ():
            candidates[normalize(pypi)].add(conda)
    out: dict[str, str] = {}
    ambiguous = 0
    for pypi, conda_names in candidates.items():
        same = [c for c in conda_names if normalize(c) == pypi]
        if len(conda_names) == 1:
            out[pypi] = next(iter(conda_names))
        elif pypi in conda_names:
            out[pypi] = pypi
        elif len(same) == 1:
            out[pypi] = same[0]
        else:
            ambiguous += 1
    return out, ambiguous


def merge(
    cf_scripts: Mapping[str, str],
    grayskull: Mapping[str, str],
    hints: Mapping[str, str],
    parselmouth: Mapping[str, str],
    provides: Mapping[str, Iterable[str]],
) -> dict[str, tuple[str, str]]:
    """Resolve every known PyPI name to (conda name, deciding layer), by precedence.

    ``provides`` is parselmouth's conda → PyPI names, used to check a hint applies.
    """
    provided = {
        conda: {normalize(p) for p in pypi_names or ()} for conda, pypi_names in provides.items()
    }
    known = {p for names in provided.values() for p in names}
    result: dict[str, tuple[str, str]] = {}
    for name in sorted({*cf_scripts, *grayskull, *parselmouth, *known}):
        if name in cf_scripts:
            result[name] = (cf_scripts[name], CF_SCRIPTS)
        elif name in grayskull:
            result[name] = (grayskull[name], GRAYSKULL)
        else:
            conda = parselmouth.get(name, name)
            preferred = hints.get(conda)
            if preferred and name in provided.get(preferred, ()):
                result[name] = (preferred, HINT)
            elif name in parselmouth:
                result[name] = (conda, PARSELMOUTH)
    return result


def reverse_table(
    forward: Mapping[str, tuple[str, str]], as_grayskull: Mapping[str, str]
) -> dict[str, str]:
    """conda → PyPI: the PyPI names that map to a conda name, tie-broken by parselmouth.

    Where several PyPI names map to one conda name, parselmouth's own choice wins, then
    the one equal to the conda name, then the highest-precedence layer, then the first by
    name. Conda names no PyPI name maps to still reverse to parselmouth's choice
    (``matplotlib`` → ``matplotlib``).
    """
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    sources: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pypi, (conda, layer) in forward.items():
        sources[conda].append((rank[layer], pypi))
    out: dict[str, str] = {}
    for conda in sorted({*sources, *as_grayskull}):
        names = sorted(sources.get(conda, ()))
        preferred = as_grayskull.get(conda)
        pypis = [p for _, p in names]
        if preferred is not None and (preferred in pypis or not pypis):
            out[conda] = normalize(preferred)
        elif normalize(conda) in pypis:
            out[conda] = normalize(conda)
        else:
            out[conda] = pypis[0]
    return out


def build_table(source: Path) -> dict[str, object]:
    """The bundled table as a JSON-ready dict (see recipegen/data/mappings/README.md)."""
    maps = source / "mappings"
    v0 = json.loads((maps / "parselmouth_v0_conda-forge_compressed_mapping.json").read_text())
    as_grayskull = json.loads((maps / "parselmouth_mapping_as_grayskull.json").read_text())
    parselmouth, _ = invert_parselmouth(v0)
    forward = merge(
        read_cf_scripts(maps / "cf_scripts_pypi_name_mapping_static.yaml"),
        read_grayskull(maps / "grayskull_strategy_config.yaml"),
        read_hints(source / "linter" / "conda-forge-pinning_linter_hints.toml"),
        parselmouth,
        v0,
    )
    entries = {p: [c, layer] for p, (c, layer) in forward.items() if c != p}
    same_name: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for pypi, (conda, layer) in forward.items():
        if conda == pypi:
            same_name[layer].append(pypi)
    known_same = {p for names in same_name.values() for p in names}
    reverse = {
        c: p for c, p in reverse_table(forward, as_grayskull).items()
        if c != p or c not in known_same
    }
    no_pypi = sorted(c for c, names in v0.items() if names is None)
    body: dict[str, object] = {
        "format": FORMAT,
        "entries": entries,
        "same_name": {k: v for k, v in same_name.items() if v},
        "reverse": reverse,
        "no_pypi": no_pypi,
    }
    digest = hashlib.sha256(_dump(body).encode()).hexdigest()[:16]
    return {"format": FORMAT, "version": digest, **body}


def _dump(table: Mapping[str, object]) -> str:
    return json.dumps(table, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def render(source: Path) -> str:
    """The exact text of the bundled file built from ``source``."""
    return _dump(build_table(source))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the output file is not up to date; write nothing")
    args = parser.parse_args(argv)
    text = render(args.source)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run tools/build_mapping.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    table = json.loads(text)
    print(f"wrote {args.output} ({len(text.encode()):,} bytes, version {table['version']}, "
          f"{len(table['entries']):,} renames, {len(table['reverse']):,} reverse)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
