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
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from recipegen.errors import RecipegenError
from recipegen.fsutil import sha256_if_readable
from recipegen.pyccache import PycCache

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


def _dumps(data: object) -> str:
    """JSON with one top-level field per line.

    ``json.dumps(indent=2)`` runs the pure-Python encoder: 15 ms for python's record
    (3000 paths), rewritten on every install. Each field's value here goes through the C
    encoder instead; the file still reads a field per line, and any JSON reader reads it.
    """
    if not isinstance(data, dict) or not data:
        return json.dumps(data)
    fields = [f"  {json.dumps(str(k))}: {_encode(v)}" for k, v in data.items()]
    return "{\n" + ",\n".join(fields) + "\n}"


def _encode(value: object) -> str:
    return value if isinstance(value, Verbatim) else json.dumps(value)


_KEY = json.JSONDecoder()


def _fields(text: str) -> dict[str, str]:
    """The text of each top-level field's value, for a JSON object printed a field per line
    at two spaces' indent (as rattler, conda and :func:`_dumps` print records); ``{}`` for
    anything else. Nested lines are indented further, and JSON strings hold no newline, so
    a line starting with two spaces and a string is a top-level key."""
    if not text.startswith("{\n"):
        return {}
    starts: list[int] = []
    at = text.find('\n  "')
    while at != -1:
        starts.append(at + 3)
        at = text.find('\n  "', at + 1)
    if not starts:
        return {}
    end = text.rfind("\n}")
    out = {}
    for start, following in zip(starts, [*starts[1:], None], strict=True):
        try:
            key, colon = _KEY.raw_decode(text, start)
        except ValueError:
            return {}
        if text[colon:colon + 2] != ": ":
            return {}
        stop = following - 3 if following else end
        out[key] = text[colon + 2:stop].rstrip().removesuffix(",")
    return out


class Verbatim(str):
    """A field's value as JSON text, written as it is: a file list left unparsed."""


#: What only ``noarch: python`` records need parsed here (their ``.pyc`` files are added).
_FILE_LISTS = ("files", "paths_data")


def _load_record(text: str) -> dict:
    """A record, its file lists kept as text unless it is ``noarch: python``.

    python's record lists its 3000 files: parsing that takes longer than completing the
    rest of a new env, and nothing here reads a compiled package's file lists.
    """
    fields = _fields(text) if len(text) > 65536 else {}
    if not any(k in fields for k in _FILE_LISTS):
        return json.loads(text)
    record: dict = {k: Verbatim(v) if k in _FILE_LISTS else json.loads(v)
                    for k, v in fields.items()}
    return json.loads(text) if is_noarch_python(record) else record


def _splice(data: dict, original: str, changed: set[str]) -> str | None:
    """``data`` as JSON, the fields not in ``changed`` copied as text from ``original``;
    None if ``original`` is not laid out so that its fields can be told apart."""
    kept = _fields(original)
    unchanged = [k for k in data if k not in changed]
    if not kept or any(k not in kept for k in unchanged) \
            or any(k not in data and k not in changed for k in kept):
        return None
    lines = [f"  {json.dumps(str(k))}: {_encode(v) if k in changed else kept[k]}"
             for k, v in data.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def _write_json(path: Path, data: object, original: str | None = None,
                changed: Iterable[str] = ()) -> None:
    """Write ``data``; fields other than ``changed`` keep their text from ``original``.

    Re-encoding python's record (3000 paths) takes longer than all the rest of completing
    an env; its paths never change here, so their text is kept as it was.
    """
    text = None
    if original is not None and isinstance(data, dict):
        text = _splice(data, original, set(changed))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text((text if text is not None else _dumps(data)) + "\n")
    os.replace(tmp, path)


def is_noarch_python(record: Mapping) -> bool:
    noarch = record.get("noarch")
    return noarch == "python" or (isinstance(noarch, dict) and noarch.get("type") == "python")


def python_version(prefix: Path) -> str | None:
    """``X.Y`` of the env's python package.

    Read from the record's file name (``<name>-<version>-<build>.json``, as conda and
    rattler name them): python's record lists every file of the stdlib and takes
    milliseconds to parse.
    """
    for path in record_paths(prefix):
        name, _, rest = path.stem.partition("-")
        if name == "python" and rest[:1].isdigit():
            return ".".join(rest.rsplit("-", 1)[0].split(".")[:2])
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


def compile_bytecode(prefix: Path, records: list[tuple[Path, dict]], py: str,
                     cache: PycCache | None = None) -> list[str]:
    """Compile the ``.py`` files of ``noarch: python`` records the way conda does, and
    record each ``.pyc`` in its record (``path_type: pyc_file``, in memory: the caller
    writes the records). Returns the names of the records changed.

    Files whose code ``cache`` holds get their ``.pyc`` from it; only the others are
    compiled (and then kept in it).
    """
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
    root = str(prefix)  # strings, not Paths: hundreds of files per env
    pycs = {s: c for _r, pairs in todo.values() for s, c in pairs}
    sources = sorted(pycs)
    if cache is not None:
        digests: dict[str, str] = {}
        for record, pairs in todo.values():
            digests.update(_digests(prefix, record, [s for s, _c in pairs]))
        keys = {s: cache.key(s, d) for s, d in digests.items()}
        sources = [s for s in sources if s not in keys or not cache.put_pyc(
            keys[s], digests[s], f"{root}/{s}", f"{root}/{pycs[s]}")]
    if sources:
        _compileall(prefix, python, sources)
        if cache is not None:
            for src in sources:
                if src in keys:
                    cache.store(keys[src], f"{root}/{src}", f"{root}/{pycs[src]}")
    done = []
    for record, pairs in todo.values():
        made = [c for _s, c in pairs if os.path.isfile(f"{root}/{c}")]
        if not made:
            continue
        record.setdefault("files", [])
        record["files"] = sorted(set(record["files"]) | set(made))
        paths = record.setdefault("paths_data", {"paths_version": 1, "paths": []})
        paths["paths"].extend({"_path": c, "path_type": "pyc_file"} for c in made)
        paths["paths"].sort(key=lambda p: p["_path"])
        done.append(record["name"])
    return done


def _digests(prefix: Path, record: dict, sources: list[str]) -> dict[str, str]:
    """The sha256 of each source: as the record lists it (what was linked), else read."""
    listed = {p["_path"]: p.get("sha256_in_prefix") or p.get("sha256")
              for p in record.get("paths_data", {}).get("paths", ())
              if not p.get("prefix_placeholder") or p.get("sha256_in_prefix")}
    out = {}
    for src in sources:
        digest = listed.get(src)
        digest = digest or sha256_if_readable(f"{prefix}/{src}")
        if digest:
            out[src] = digest
    return out


def _compileall(prefix: Path, python: Path, sources: list[str]) -> None:
    import tempfile

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


#: The record fields :func:`complete` fills in.
_COMPLETED = ("requested_specs", "requested_spec", "depends", "constrains", "build_number",
              "fn", "package_tarball_full_path")
_MISSING = object()


def complete(prefix: Path, requested_specs: Iterable[str],
             bytecode_cache: Path | None = None) -> list[dict]:
    """Give every record the fields conda writes that rattler leaves out; compile pycs.

    ``requested_specs`` are all the specs the user asked for in this env (conda keeps the
    one of each package in its record's ``requested_spec``). ``bytecode_cache`` is a
    directory of compiled code to reuse (:mod:`recipegen.pyccache`). Each record is read
    once and written at most once; the records as written are returned, with the file
    lists of packages other than ``noarch: python`` as their JSON text (:class:`Verbatim`).
    """
    from rattler import MatchSpec

    by_name: dict[str, list[str]] = {}
    for spec in requested_specs:
        name = MatchSpec(spec).name
        if name is not None:
            by_name.setdefault(name.normalized, []).append(spec)
    texts = {p: p.read_text() for p in record_paths(prefix)}
    loaded = [(p, _load_record(t)) for p, t in texts.items()]
    changed: set[str] = set()
    for _path, record in loaded:
        before = [record.get(k, _MISSING) for k in _COMPLETED]
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
        if [record.get(k, _MISSING) for k in _COMPLETED] != before:
            changed.add(record["name"])
    py = python_version(prefix)
    compiled: set[str] = set()
    if py:
        cache = None
        if bytecode_cache is not None:
            python = next((r for _p, r in loaded if r["name"] == "python"), None)
            if python is not None:
                cache = PycCache(bytecode_cache, dist_name(python))
        compiled = set(compile_bytecode(prefix, loaded, py, cache))
        changed |= compiled
    for path, record in loaded:
        if record["name"] in changed:
            touched = {*_COMPLETED, *(("files", "paths_data") if record["name"] in compiled
                                      else ())}
            _write_json(path, record, texts[path], touched)
    return [record for _path, record in loaded]


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


def record_provenance(prefix: Path, recipe_dirs: Iterable[Path] = (),
                      records: list[dict] | None = None) -> None:
    """Note, for each newly linked package recipegen built, its PyPI origin and recipe.

    Read from the unpacked package (``extracted_package_dir``) right after linking; the
    recipe is named only if its bytes are the recipe inside the package. ``records`` are
    the env's records if the caller has them read already.
    """
    records = read_records(prefix) if records is None else records
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
        inside = sha256_if_readable(pkg / "info" / "recipe" / "recipe.yaml")
        recipe = None
        for directory in recipe_dirs:
            candidate = Path(directory) / record["name"] / "recipe.yaml"
            if inside is not None and sha256_if_readable(candidate) == inside:
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
    """One package of an env as ``recipegen list`` shows it."""

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
    import email.parser

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
