"""What conda expects to find in an env after a change, and what recipegen reads back.

The contract is conda's (CEP 32, "Management and structure of conda environments").
rattler links packages but leaves out some of it: the ``requested_spec``, ``constrains``
and ``package_tarball_full_path`` fields of a record, the compiled ``.pyc`` files of
``noarch: python`` packages (recorded as ``pyc_file`` paths, so removing the package
removes them), and history (:mod:`recipegen.history`). :func:`complete` adds the fields
and the bytecode wherever they are missing, so it also heals an env where a change was
interrupted.

Which packages recipegen built from PyPI is read from the package itself (its
``info/about.json`` carries ``extra.recipegen``, written by the recipe template) when it
is linked, and kept in ``conda-meta/recipegen/built/<dist>.json``: conda only reads
``conda-meta/*.json``, so the sidecar survives conda touching the env, and a sidecar
whose record is gone is ignored (and pruned by the next recipegen change).
"""

from __future__ import annotations

import contextlib
import email.parser
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from recipegen.errors import RecipegenError

SIDECAR_DIR = Path("conda-meta") / "recipegen" / "built"
#: conda's anchors for a python distribution in site-packages (``get_conda_anchor_files``).
ANCHOR_SUFFIXES = (".dist-info/RECORD", ".egg-info/PKG-INFO", ".egg-info")


# -- records -----------------------------------------------------------------------------


def record_paths(prefix: Path) -> list[Path]:
    meta = prefix / "conda-meta"
    return sorted(meta.glob("*.json")) if meta.is_dir() else []


def read_records(prefix: Path) -> list[dict]:
    out = []
    for path in record_paths(prefix):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise RecipegenError(f"cannot read conda record {path}: {exc}",
                                 hint="the env's conda-meta is damaged; remove that file "
                                 "or recreate the env") from exc
    return out


def dist_name(record: Mapping) -> str:
    return f"{record['name']}-{record['version']}-{record['build']}"


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def is_noarch_python(record: Mapping) -> bool:
    noarch = record.get("noarch")
    return noarch == "python" or (isinstance(noarch, dict) and noarch.get("type") == "python")


def python_version(prefix: Path) -> str | None:
    """``X.Y`` of the env's python package."""
    for path in record_paths(prefix):
        if path.name.startswith("python-") and path.name[7:8].isdigit():
            version = json.loads(path.read_text())["version"]
            return ".".join(version.split(".")[:2])
    return None


def site_packages(prefix: Path, py: str | None = None) -> Path | None:
    py = py or python_version(prefix)
    return prefix / "lib" / f"python{py}" / "site-packages" if py else None


def pyc_path(py_path: str, py: str) -> str:
    """conda's ``pyc_path``: ``a/b.py`` → ``a/__pycache__/b.cpython-XY.pyc``."""
    head, _, tail = py_path.rpartition("/")
    stem = tail[:-3]
    tag = "cpython-" + py.replace(".", "")
    return f"{head}/__pycache__/{stem}.{tag}.pyc" if head else f"__pycache__/{stem}.{tag}.pyc"


def _pyc_sources(record: Mapping, py: str) -> list[str]:
    prefix_dir = f"lib/python{py}/site-packages/"
    return [f for f in record.get("files", ()) if f.endswith(".py") and f.startswith(prefix_dir)]


def compile_bytecode(prefix: Path, records: list[tuple[Path, dict]], py: str) -> list[str]:
    """Compile the ``.py`` files of ``noarch: python`` records the way conda does, and
    record each ``.pyc`` in its record (``path_type: pyc_file``). Returns the names done."""
    python = prefix / "bin" / "python"
    todo: dict[Path, tuple[dict, list[tuple[str, str]]]] = {}
    for path, record in records:
        if not is_noarch_python(record):
            continue
        have = {p["_path"] for p in record.get("paths_data", {}).get("paths", ())}
        pairs = [(src, pyc_path(src, py)) for src in _pyc_sources(record, py)]
        missing = [(s, c) for s, c in pairs if c not in have]
        if missing:
            todo[path] = (record, missing)
    if not todo or not python.exists():
        return []
    sources = sorted({s for _r, pairs in todo.values() for s, _c in pairs})
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(sources) + "\n")
        listing = fh.name
    try:
        # conda's compile_multiple_pyc: relative paths from the prefix, -l, -j 0. In a
        # session of its own: a Ctrl-C is held until the env is consistent, for it too.
        proc = subprocess.run([str(python), "-Wi", "-m", "compileall", "-q", "-l", "-i",
                               listing, "-j", "0"], cwd=prefix, capture_output=True,
                              text=True, timeout=900, env=_clean_env(),
                              start_new_session=True)
    finally:
        os.unlink(listing)
    if proc.returncode not in (0, 1):  # 1: some file had a syntax error (conda logs it too)
        raise RecipegenError(f"compiling bytecode in {prefix} failed:\n{proc.stderr[-2000:]}")
    done = []
    for path, (record, pairs) in todo.items():
        made = [c for _s, c in pairs if (prefix / c).is_file()]
        if not made:
            continue
        record.setdefault("files", [])
        record["files"] = sorted(set(record["files"]) | set(made))
        paths = record.setdefault("paths_data", {"paths_version": 1, "paths": []})
        paths["paths"].extend({"_path": c, "path_type": "pyc_file"} for c in made)
        paths["paths"].sort(key=lambda p: p["_path"])
        _write_json(path, record)
        done.append(record["name"])
    return done


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "CONDA", "PIP_"))}
    env.pop("SOURCE_DATE_EPOCH", None)  # conda compiles with the default (timestamp) pycs
    return env


def _local_path(url: str) -> str | None:
    """The file behind a ``file://`` URL (rattler keeps no copy of the archive)."""
    if not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


def complete(prefix: Path, requested_specs: Iterable[str]) -> list[str]:
    """Give every record the fields conda writes that rattler leaves out; compile pycs.

    ``requested_specs`` are all the specs the user asked for in this env (conda keeps the
    one of each package in its record's ``requested_spec``).
    """
    from rattler import MatchSpec

    by_name: dict[str, list[str]] = {}
    for spec in requested_specs:
        name = MatchSpec(spec).name
        if name is not None:
            by_name.setdefault(name.normalized, []).append(spec)
    loaded = [(p, json.loads(p.read_text())) for p in record_paths(prefix)]
    for path, record in loaded:
        before = json.dumps(record, sort_keys=True)
        specs = by_name.get(record["name"], [])
        record["requested_specs"] = list(specs)
        if specs:
            record["requested_spec"] = specs[0]
        else:
            record.pop("requested_spec", None)
        record.setdefault("depends", [])
        record.setdefault("constrains", [])
        record.setdefault("build_number", 0)
        if record.get("url") and not record.get("fn"):
            record["fn"] = record["url"].rsplit("/", 1)[-1]
        tarball = _local_path(record.get("url") or "")
        if tarball and not record.get("package_tarball_full_path") and os.path.isfile(tarball):
            record["package_tarball_full_path"] = tarball
        if json.dumps(record, sort_keys=True) != before:
            _write_json(path, record)
    py = python_version(prefix)
    return compile_bytecode(prefix, loaded, py) if py else []


# -- a change in progress ----------------------------------------------------------------
# Linking is not atomic: a SIGKILL part-way leaves some packages linked. A journal written
# before linking and removed after the env is complete again lets the next run (and
# ``list``) say so; running any recipegen change then completes the env.

_PENDING = Path("conda-meta") / "recipegen" / "pending.json"


def begin_change(prefix: Path) -> None:
    import sys
    import time

    path = prefix / _PENDING
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"pid": os.getpid(), "started": time.time(),
                       "cmd": " ".join(["recipegen", *sys.argv[1:]])})


def end_change(prefix: Path) -> None:
    (prefix / _PENDING).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # leave no empty directory of ours behind
        (prefix / _PENDING).parent.rmdir()


def unfinished_change(prefix: Path) -> dict | None:
    try:
        return json.loads((prefix / _PENDING).read_text())
    except (OSError, ValueError):
        return None


# -- what recipegen built ----------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """A package recipegen built from PyPI."""

    pypi_name: str
    pypi_version: str
    recipe: str | None  # the recipe.yaml in a work root, if it is the one built
    recipe_sha256: str | None


def _sidecar(prefix: Path, record: Mapping) -> Path:
    return prefix / SIDECAR_DIR / f"{dist_name(record)}.json"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def record_provenance(prefix: Path, recipe_dirs: Iterable[Path] = ()) -> None:
    """Note, for each newly linked package recipegen built, its PyPI origin and recipe.

    Read from the unpacked package (``extracted_package_dir``) right after linking; the
    recipe is named only if its bytes are the recipe inside the package.
    """
    records = read_records(prefix)
    current = {f"{dist_name(r)}.json" for r in records}
    side = prefix / SIDECAR_DIR
    if side.is_dir():
        for stale in side.glob("*.json"):
            if stale.name not in current:
                stale.unlink()
    for record in records:
        target = _sidecar(prefix, record)
        if target.exists():
            continue
        pkg = Path(record.get("extracted_package_dir") or "/nonexistent")
        try:
            about = json.loads((pkg / "info" / "about.json").read_text())
        except (OSError, ValueError):
            continue
        origin = (about.get("extra") or {}).get("recipegen")
        if not isinstance(origin, dict) or not origin.get("pypi_name"):
            continue
        inside = _sha256(pkg / "info" / "recipe" / "recipe.yaml")
        recipe = None
        for directory in recipe_dirs:
            candidate = Path(directory) / record["name"] / "recipe.yaml"
            if inside is not None and _sha256(candidate) == inside:
                recipe = str(candidate)
                break
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_json(target, {"pypi_name": str(origin["pypi_name"]),
                             "pypi_version": str(origin.get("pypi_version") or
                                                 record["version"]),
                             "recipe": recipe, "recipe_sha256": inside})


def provenance(prefix: Path, record: Mapping) -> Provenance | None:
    try:
        data = json.loads(_sidecar(prefix, record).read_text())
    except (OSError, ValueError):
        return None
    return Provenance(data["pypi_name"], data["pypi_version"], data.get("recipe"),
                      data.get("recipe_sha256"))


# -- what is in the env ------------------------------------------------------------------


@dataclass(frozen=True)
class PipDistribution:
    """A distribution in site-packages that no conda record owns (pip put it there)."""

    name: str
    version: str
    anchor: str  # prefix-relative path of its RECORD / PKG-INFO
    editable: str | None  # the project directory of an editable install
    url: str | None


@dataclass(frozen=True)
class EnvPackage:
    name: str
    version: str
    build: str
    channel: str
    kind: str  # "conda" | "pypi" (installed by pip, unknown to conda)
    requested: str | None = None
    provenance: Provenance | None = None
    editable: str | None = None


def _anchor_pattern(sp_rel: str) -> re.Pattern:
    ends = "|".join(re.escape(e) for e in ANCHOR_SUFFIXES)
    return re.compile(rf"^{re.escape(sp_rel)}/[^/]+(?:{ends})$")


def conda_anchors(records: list[Mapping], sp_rel: str) -> dict[str, str]:
    """anchor path → package name, as conda's ``get_conda_anchor_files_and_records``."""
    match = _anchor_pattern(sp_rel).match
    out = {}
    for record in records:
        anchors = sorted((f for f in record.get("files", ()) if match(f)), key=len)
        if anchors:
            out[anchors[0]] = record["name"]
    return out


def pip_distributions(prefix: Path, records: list[Mapping] | None = None) -> list[PipDistribution]:
    """Distributions in site-packages that are not the anchor of any conda record."""
    records = read_records(prefix) if records is None else records
    sp = site_packages(prefix)
    if sp is None or not sp.is_dir():
        return []
    sp_rel = str(sp.relative_to(prefix))
    owned = set(conda_anchors(records, sp_rel))
    out = []
    for entry in sorted(sp.iterdir()):
        if entry.name.endswith(".dist-info"):
            anchor, meta_file = entry / "RECORD", entry / "METADATA"
        elif entry.name.endswith(".egg-info"):
            anchor = entry / "PKG-INFO" if entry.is_dir() else entry
            meta_file = anchor
        else:
            continue
        rel = str(anchor.relative_to(prefix))
        if rel in owned or str(entry.relative_to(prefix)) in owned or not anchor.exists():
            continue
        try:
            meta = email.parser.Parser().parsestr(meta_file.read_text(errors="replace"),
                                                  headersonly=True)
        except OSError:
            continue
        editable = url = None
        try:
            direct = json.loads((entry / "direct_url.json").read_text())
            url = direct.get("url")
            if (direct.get("dir_info") or {}).get("editable") and url and \
                    url.startswith("file://"):
                from urllib.parse import unquote, urlparse

                editable = unquote(urlparse(url).path)
        except (OSError, ValueError, AttributeError):
            pass
        out.append(PipDistribution(meta.get("Name", entry.name.split("-")[0]),
                                   meta.get("Version", ""), rel, editable, url))
    return out


def list_env(prefix: Path) -> list[EnvPackage]:
    """Every package: conda records (with what recipegen built marked), then pip's."""
    records = read_records(prefix)
    out = []
    for r in sorted(records, key=lambda r: r["name"]):
        specs = r.get("requested_specs") or ([r["requested_spec"]]
                                             if r.get("requested_spec") else [])
        out.append(EnvPackage(r["name"], r["version"], r["build"],
                              (r.get("channel") or "").rstrip("/"), "conda",
                              requested=specs[0] if specs else None,
                              provenance=provenance(prefix, r)))
    for d in pip_distributions(prefix, records):
        out.append(EnvPackage(d.name, d.version, "", "pypi", "pypi", editable=d.editable))
    return out
