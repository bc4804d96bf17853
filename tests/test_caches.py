"""Caches and their invalidation, progress events, and the build order: without builds.

Every cache is checked both ways: an unchanged input is a hit, a changed one (recipe,
mapping, target, recipegen's own code) is a miss. Hits and misses are read from what the
code reports, never from timings.
"""

from __future__ import annotations

import io
import json
import marshal
import os
import struct
import sys
from pathlib import Path

import pytest

from recipegen import envmeta, fingerprint, plancache, recipecache
from recipegen.build import BuildJob, critical_path
from recipegen.channels import Availability, ChannelPackage
from recipegen.generate import GenerateContext, generate, with_build_string
from recipegen.mapping import NameMapper
from recipegen.plan import Decision
from recipegen.progress import Reporter
from recipegen.pyccache import PycCache
from recipegen.pypi import PyPI
from recipegen.recipe import RecipeSpec
from recipegen.resolve import resolve

# -- the plan cache's key ---------------------------------------------------------------------


def _inputs(**changes) -> dict:
    values = dict(specs=("idna==3.10",), constraints=(), options={"flavour": "local"},
                  platform="linux-64", python_version="3.11.7", resolver=Path(sys.executable),
                  marker_environment={"python_version": "3.11"}, channels=["file:///seed"])
    values.update(changes)
    return plancache.plan_inputs(**values)


def test_plan_key_is_stable_and_changes_with_every_input(tmp_path: Path) -> None:
    base = plancache.plan_key(_inputs())
    assert plancache.plan_key(_inputs()) == base
    constraints = tmp_path / "c.txt"
    constraints.write_text("idna==3.10\n")
    changed = [
        _inputs(specs=("idna==3.9",)),
        _inputs(constraints=(constraints,)),
        _inputs(options={"flavour": "local", "overrides": [["idna", "idna-x"]]}),
        _inputs(platform="osx-arm64"),
        _inputs(python_version="3.12.1"),
        _inputs(marker_environment={"python_version": "3.12"}),
        _inputs(channels=["file:///other"]),
    ]
    keys = {plancache.plan_key(i) for i in changed}
    assert base not in keys and len(keys) == len(changed)
    # The constraints file is keyed by its bytes, not its name.
    first = plancache.plan_key(_inputs(constraints=(constraints,)))
    constraints.write_text("idna==3.9\n")
    assert plancache.plan_key(_inputs(constraints=(constraints,))) != first


def test_a_changed_recipegen_is_a_miss_and_says_so(tmp_path: Path, monkeypatch) -> None:
    saved = tmp_path / "plans"
    inputs = _inputs()
    plancache.save(saved, inputs, _saved_plan())
    assert plancache.load(saved, plancache.plan_key(inputs)) is not None
    monkeypatch.setattr(plancache, "code_fingerprint", lambda: "0.1.0+0000000000000000")
    again = _inputs()
    assert plancache.plan_key(again) != plancache.plan_key(inputs)
    assert plancache.load(saved, plancache.plan_key(again)) is None
    assert plancache.why_missing(saved, again) == ("changed since the last plan: "
                                                   "recipegen's code or data")
    assert "the target's python" in plancache.why_missing(saved, _inputs(
        python_version="3.12.1"))


def test_code_fingerprint_follows_the_files(tmp_path: Path, monkeypatch) -> None:
    """An edit of any file of the package is a new fingerprint (its memo is by stat)."""
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("x = 1\n")
    monkeypatch.setattr(fingerprint, "_roots", lambda: [("fakepkg", str(pkg))])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fingerprint.code_fingerprint.cache_clear()
    first = fingerprint.code_fingerprint()
    fingerprint.code_fingerprint.cache_clear()
    assert fingerprint.code_fingerprint() == first
    (pkg / "__init__.py").write_text("x = 22\n")
    fingerprint.code_fingerprint.cache_clear()
    assert fingerprint.code_fingerprint() != first
    fingerprint.code_fingerprint.cache_clear()


def test_fingerprint_covers_the_templates_of_a_checkout_and_of_an_install() -> None:
    """A checkout's ``templates/`` (``python -m recipegen`` run from it imports the source
    tree, which has no ``recipegen.templates``) or the installed ``recipegen.templates``."""
    names = {name for name, _path in fingerprint._files()}
    assert names & {"recipegen.templates/recipe.yaml.j2",  # a checkout's templates/
                    "recipegen/templates/recipe.yaml.j2"}  # installed inside the package
    assert "recipegen/pipeline.py" in names


def test_pip_settings_that_change_resolution_are_in_the_key(monkeypatch) -> None:
    base = plancache.plan_key(_inputs())
    monkeypatch.setenv("PIP_CACHE_DIR", "/elsewhere")  # where pip caches: same answers
    assert plancache.plan_key(_inputs()) == base
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    assert plancache.plan_key(_inputs()) != base


def test_pins_come_from_specs_and_constraints(tmp_path: Path) -> None:
    constraints = tmp_path / "c.txt"
    constraints.write_text("# pins\nanyio==4.16.0\nsniffio>=1\n-r other.txt\n"
                           "h11===0.16.0  # exact\nidna==3.*\n")
    pins = plancache.pinned_versions(("httpx==0.28.1", "rich>=13"), (constraints,))
    assert pins == {"httpx": "0.28.1", "anyio": "4.16.0", "h11": "0.16.0"}


# -- the plan cache's checks ---------------------------------------------------------------

LOCAL = "file:///work/channel"


def _pkg(name: str, version: str, build: str, channel: str = LOCAL) -> ChannelPackage:
    return ChannelPackage(name=name, version=version, build=build, channel=channel,
                          subdir="noarch", file_name=f"{name}-{version}-{build}.conda",
                          url=f"{channel}/noarch/{name}-{version}-{build}.conda",
                          sha256=None, depends=())


def _recipe(name: str, version: str, build: str):
    from recipegen.recipe import GeneratedRecipe

    spec = RecipeSpec(name=name, version=version, pypi_name=name, source_url="https://x/y",
                      sha256="0" * 64, script=("true",), license="MIT", build_string=build)
    return GeneratedRecipe(spec=spec, text="", pypi_name=name, version=version,
                           host_requirements=(), run_requirements=(), source_sha256="0" * 64)


def _saved_plan() -> plancache.SavedPlan:
    from recipegen.plan import BuildOrder, BuildStep

    decisions = {"idna": Decision("idna", "3.10", "idna", "build", "requested by name",
                                  "==3.10", requested=True),
                 "flit-core": Decision("flit-core", "3.12.0", "flit-core", "build",
                                       "no channel has it", ">=3.2,<4")}
    recipes = {"idna": _recipe("idna", "3.10", "pyh1_0"),
               "flit-core": _recipe("flit-core", "3.12.0", "pyh2_0")}
    return plancache.SavedPlan(
        python_version="3.11.7", decisions=decisions, recipes=recipes,
        order=BuildOrder((BuildStep("flit-core", frozenset()),
                          BuildStep("idna", frozenset({"flit-core"})))),
        requested=("idna ==3.10",), pins=(), resolution=None, projects=())


def test_saved_plan_round_trips(tmp_path: Path) -> None:
    saved = _saved_plan()
    plancache.save(tmp_path, _inputs(), saved)
    loaded = plancache.load(tmp_path, plancache.plan_key(_inputs()))
    assert loaded == saved
    assert loaded.recipes["idna"].spec == saved.recipes["idna"].spec


def test_the_plans_own_builds_in_the_local_channel_are_no_change() -> None:
    saved = _saved_plan()
    before = Availability((LOCAL,), {})
    assert plancache.check_channels(saved.decisions, saved.recipes, before, LOCAL) is None
    built = Availability((LOCAL,), {"flit-core": (_pkg("flit-core", "3.12.0", "pyh2_0"),)})
    assert plancache.check_channels(saved.decisions, saved.recipes, built, LOCAL) is None
    # Another build of it (another recipe), or one on a user channel, is a change.
    other = Availability((LOCAL,), {"flit-core": (_pkg("flit-core", "3.12.0", "pyh9_0"),)})
    assert "flit-core" in plancache.check_channels(saved.decisions, saved.recipes, other,
                                                   LOCAL)
    forge = Availability((LOCAL,), {"flit-core": (_pkg("flit-core", "3.12.0", "pyh2_0",
                                                       channel="https://forge"),)})
    assert plancache.check_channels(saved.decisions, saved.recipes, forge, LOCAL)
    assert plancache.availability_digest(before) != plancache.availability_digest(built)


def test_pinned_projects_are_not_asked_and_unpinned_ones_are(tmp_path: Path) -> None:
    asked: list[str] = []

    class Client:
        def project(self, name: str) -> dict:
            asked.append(name)
            return {"releases": {"1.0": [{"filename": f"{name}-1.0.tar.gz",
                                          "digests": {"sha256": "a"}}]}}

    projects = [plancache.Project("idna", "3.10", True, None, {}),
                plancache.Project("anyio", "4.16.0", False,
                                  plancache.release_list(Client().project("anyio")), {})]
    asked.clear()
    assert plancache.check_pypi(projects, Client, []) is None
    assert asked == ["anyio"]
    changed = [plancache.Project("anyio", "4.16.0", False, "another list", {})]
    assert "anyio" in plancache.check_pypi(changed, Client, [])
    source = tmp_path / "wheels"
    source.mkdir()
    local = [plancache.Project("idna", "3.10", True, None, {str(source): 1})]
    assert "local pip source" in plancache.check_pypi(local, Client, [source])


# -- the recipe cache (real PyPI, real grayskull) ----------------------------------------


@pytest.fixture(scope="module")
def idna_resolution():
    return resolve(["idna==3.10"], python=sys.executable)


def _ctx(tmp: Path, **changes) -> GenerateContext:
    values = dict(mapper=NameMapper(), pypi=PyPI(tmp / "pypi"), cache_dir=tmp,
                  python_version="3.11.7")
    values.update(changes)
    return GenerateContext(**values)


def test_recipe_cache_hits_and_misses(tmp_path: Path, idna_resolution, monkeypatch) -> None:
    dist = idna_resolution.dists["idna"]
    first = recipecache.cached_generate(dist, idna_resolution, _ctx(tmp_path))
    assert not first.from_cache
    again = recipecache.cached_generate(dist, idna_resolution, _ctx(tmp_path))
    assert again.from_cache and again == first and again.text == first.text
    assert again.text == generate(dist, idna_resolution, _ctx(tmp_path)).text
    misses = [
        _ctx(tmp_path, python_version="3.11.8"),  # another target
        _ctx(tmp_path, mapper=NameMapper({"idna": "idna-renamed"})),  # another mapping
        _ctx(tmp_path, flavour="conda-forge"),
    ]
    for ctx in misses:
        assert not recipecache.cached_generate(dist, idna_resolution, ctx).from_cache
    monkeypatch.setattr(recipecache, "code_fingerprint", lambda: "9.9.9+ffffffffffffffff")
    assert not recipecache.cached_generate(dist, idna_resolution, _ctx(tmp_path)).from_cache


def test_a_changed_recipe_is_another_package_file() -> None:
    """Built packages are reused by file name, which carries the recipe's hash."""
    spec = _recipe("idna", "3.10", "").spec
    one = with_build_string(spec, "3.11.7").build_string
    assert with_build_string(spec, "3.11.7").build_string == one
    from dataclasses import replace

    assert with_build_string(replace(spec, run=("python",)), "3.11.7").build_string != one
    arch = replace(spec, noarch=None)
    assert with_build_string(arch, "3.11.7").build_string != \
        with_build_string(arch, "3.12.1").build_string  # the variant: python


# -- the bytecode cache ----------------------------------------------------------------------


def _env(root: Path, source: str) -> tuple[Path, list[tuple[Path, dict]]]:
    """A prefix with this interpreter as its python and one noarch package of one module."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to(sys.executable)
    rel = f"lib/python{py}/site-packages/demo/mod.py"
    (root / rel).parent.mkdir(parents=True)
    (root / rel).write_text(source)
    import hashlib

    meta = root / "conda-meta"
    meta.mkdir()
    (meta / f"python-{sys.version.split()[0]}-0_cpython.json").write_text(json.dumps(
        {"name": "python", "version": sys.version.split()[0], "build": "0_cpython"}))
    record = {"name": "demo", "version": "1", "build": "0", "noarch": "python",
              "files": [rel], "paths_data": {"paths_version": 1, "paths": [
                  {"_path": rel, "path_type": "hardlink",
                   "sha256": hashlib.sha256(source.encode()).hexdigest()}]}}
    path = meta / "demo-1-0.json"
    path.write_text(json.dumps(record))
    return root, [(path, record)]


def _source(record: dict) -> str:
    return next(f for f in record["files"] if f.endswith(".py"))


def _pyc_ok(prefix: Path, record: dict) -> bool:
    rel = _source(record)
    pyc = prefix / envmeta.pyc_path(rel, f"{sys.version_info.major}.{sys.version_info.minor}")
    data = pyc.read_bytes()
    st = (prefix / rel).stat()
    flags, mtime, size = struct.unpack("<III", data[4:16])
    code = marshal.loads(data[16:])
    return (flags, mtime, size) == (0, int(st.st_mtime) & 0xFFFFFFFF, st.st_size) \
        and code.co_filename == rel


def test_bytecode_cache_compiles_once_and_links(tmp_path: Path) -> None:
    cache_dir = tmp_path / "bytecode"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    one, records = _env(tmp_path / "one", "VALUE = 1\n")
    cache = PycCache(cache_dir, "python-x")
    assert envmeta.compile_bytecode(one, records, py, cache) == ["demo"]
    assert _pyc_ok(one, records[0][1])
    entries = sorted(p for p in cache_dir.rglob("*") if p.is_file())
    assert len(entries) == 1
    # The same file in another env: linked from the cache, nothing compiled.
    two, records2 = _env(tmp_path / "two", "VALUE = 1\n")
    os.utime(two / _source(records2[0][1]),
             ns=(0, (one / _source(records[0][1])).stat().st_mtime_ns))
    assert envmeta.compile_bytecode(two, records2, py, cache) == ["demo"]
    pyc = two / envmeta.pyc_path(_source(records2[0][1]), py)
    assert pyc.stat().st_ino == entries[0].stat().st_ino  # the cached file itself
    assert _pyc_ok(two, records2[0][1])
    # Changed source: another key, compiled anew, the old entry untouched.
    three, records3 = _env(tmp_path / "three", "VALUE = 3\n")
    envmeta.compile_bytecode(three, records3, py, cache)
    assert _pyc_ok(three, records3[0][1])
    assert len([p for p in cache_dir.rglob("*") if p.is_file()]) == 2
    # Another interpreter is another cache.
    assert PycCache(cache_dir, "python-y").root != cache.root


def test_bytecode_for_another_mtime_is_rewritten_only_for_the_same_bytes(
        tmp_path: Path) -> None:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    cache = PycCache(tmp_path / "bytecode", "python-x")
    one, records = _env(tmp_path / "one", "VALUE = 1\n")
    envmeta.compile_bytecode(one, records, py, cache)
    two, records2 = _env(tmp_path / "two", "VALUE = 1\n")
    os.utime(two / _source(records2[0][1]), (1_000_000, 1_000_000))
    envmeta.compile_bytecode(two, records2, py, cache)
    assert _pyc_ok(two, records2[0][1])  # this env's header on the cached code
    # A file edited after linking, its record still naming the old bytes: compiled anew.
    three, records3 = _env(tmp_path / "three", "VALUE = 1\n")
    src = three / _source(records3[0][1])
    src.write_text("VALUE = 333\n")
    os.utime(src, (2_000_000, 2_000_000))
    envmeta.compile_bytecode(three, records3, py, cache)
    pyc = three / envmeta.pyc_path(_source(records3[0][1]), py)
    assert 333 in marshal.loads(pyc.read_bytes()[16:]).co_consts


# -- records: written once, fields kept ------------------------------------------------------


def test_record_fields_kept_as_text_when_unchanged() -> None:
    record = {"name": "python", "files": ["a", "b"], "paths_data": {"paths": [{"_path": "a"}]}}
    original = json.dumps(record, indent=2)
    changed = {**record, "constrains": [], "fn": "python.conda"}
    text = envmeta._splice(changed, original, {"constrains", "fn"})
    assert json.loads(text) == changed
    assert '"paths_data": {\n    "paths": [' in text  # copied as it was
    assert envmeta._splice(changed, json.dumps(record), {"constrains"}) is None  # one line


def test_big_compiled_records_are_completed_without_parsing_their_file_lists(
        tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    files = [f"lib/python3.11/mod{i}.py" for i in range(3000)]  # python's: far over 64 KiB
    record = {"name": "python", "version": "3.11.7", "build": "0_cpython", "files": files,
              "paths_data": {"paths_version": 1,
                             "paths": [{"_path": f, "path_type": "hardlink"} for f in files]},
              "url": "file:///nowhere/python-3.11.7-0_cpython.conda"}
    original = json.dumps(record, indent=2)
    (meta / "python-3.11.7-0_cpython.json").write_text(original)
    (written,) = envmeta.complete(tmp_path, ["python >=3.11"])
    assert isinstance(written["files"], envmeta.Verbatim)  # never parsed
    text = (meta / "python-3.11.7-0_cpython.json").read_text()
    after = json.loads(text)
    assert after == {**record, "requested_specs": ["python >=3.11"],
                     "requested_spec": "python >=3.11", "depends": [], "constrains": [],
                     "build_number": 0, "fn": "python-3.11.7-0_cpython.conda"}
    assert original[original.index('"files"'):original.index('"url"')] in text  # as it was


# -- progress ----------------------------------------------------------------------------------


def test_json_events_carry_elapsed_seconds_per_package() -> None:
    out = io.StringIO()
    r = Reporter("json", out=out)
    for status in ("building", "testing", "built"):
        r.package(status, "idna")
    r.cache("plan", True, "the plan of an earlier run still holds")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["status"] for e in events[:3]] == ["building", "testing", "built"]
    assert "seconds" in events[2] and "seconds" not in events[1]
    assert events[3] == {**events[3], "event": "cache", "cache": "plan", "hit": True}


def test_the_reporter_knows_the_phase_under_way() -> None:
    """(The planner files a conflict search's pip runs under resolve by it, not under the
    channel lookup that happened to come before.)"""
    r = Reporter("json", out=io.StringIO())
    assert r.current_phase is None
    r.phase("channels", "looking up 3 packages")
    r.phase("resolve", "2 requirement(s)")
    assert r.current_phase == "resolve"


def test_quiet_prints_only_warnings_and_plain_lines_without_a_terminal() -> None:
    quiet = io.StringIO()
    r = Reporter("quiet", stream=quiet)
    r.phase("build", "2 package(s)")
    r.package("building", "idna")
    r.warn("careful")
    assert quiet.getvalue().count("\n") == 1 and "careful" in quiet.getvalue()
    plain = io.StringIO()  # not a terminal: no live table, one line per change
    r = Reporter("human", stream=plain)
    r.package("building", "idna")
    r.package("testing", "idna")
    r.package("built", "idna", {"seconds": 3.5})
    lines = plain.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["build", "test", "built"]
    assert "\x1b[" not in plain.getvalue() and lines[-1].endswith("idna (3.5 s)")


def test_live_table_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    r = Reporter("human", stream=tty)
    assert r.live
    r.package("building", "flit-core")
    r.package("testing", "flit-core")
    assert "test      flit-core" in tty.getvalue()  # in the table, not a log line
    r.package("built", "flit-core", {"seconds": 2.0})
    assert tty.getvalue().rstrip().endswith("built     flit-core (2.0 s)")
    assert "\x1b[1F\x1b[J" in tty.getvalue()  # the table was cleared before the line


# -- the build order -------------------------------------------------------------------------


def _job(name: str, *after: str) -> BuildJob:
    return BuildJob(name=name, conda_name=name, recipe=Path("r.yaml"), file_name=f"{name}.conda",
                    subdir="noarch", after=frozenset(after))


def test_the_longest_chain_starts_first() -> None:
    jobs = [_job("certifi"), _job("flit-core"), _job("setuptools"), _job("poetry-core"),
            _job("packaging", "flit-core"), _job("tomlkit", "poetry-core"),
            _job("vcs", "packaging", "setuptools"), _job("scm", "vcs", "setuptools"),
            _job("pluggy", "scm"), _job("hatchling", "pluggy", "tomlkit"),
            _job("httpx", "hatchling", "certifi")]
    rank = critical_path(jobs)
    ready = sorted(["certifi", "flit-core", "setuptools", "poetry-core"], key=rank.get)
    assert ready[:2] == ["flit-core", "setuptools"]  # heads of the 7-deep chain
    assert ready[-1] == "certifi"  # only httpx waits for it


def test_marker_values_are_packagings() -> None:
    """The marker values read without importing ``platform`` are what pip evaluates."""
    from packaging.markers import default_environment

    from recipegen.target import marker_environment

    assert marker_environment() == default_environment()
    other = Path(sys.executable).resolve()  # this interpreter by another name: a subprocess
    assert other != Path(sys.executable)
    assert marker_environment(other) == default_environment()
