"""recipegen.upstream against real PyPI sdists (pinned) and small local ones.

Each pinned package runs grayskull once per session (the answers are cached in a
session-wide cache dir, as recipegen itself would).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from recipegen.errors import RecipegenError
from recipegen.upstream import Requirement, UpstreamRecipe, run_grayskull

PYPI_JSON = "https://pypi.org/pypi/{name}/json"


def _sdist(name: str, version: str) -> tuple[str, str]:
    """The sdist's absolute URL and sha256 from the PyPI JSON API (relative URLs here)."""
    json_url = PYPI_JSON.format(name=name)
    data = requests.get(json_url, timeout=60).json()
    sdist = next(f for f in data["releases"][version] if f["packagetype"] == "sdist")
    return urllib.parse.urljoin(json_url, sdist["url"]), sdist["digests"]["sha256"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upstream-cache")


@pytest.fixture(scope="session")
def upstream(cache_dir: Path) -> Callable[[str, str], UpstreamRecipe]:
    """grayskull's answer for a pinned PyPI release, computed once per session."""
    seen: dict[tuple[str, str], UpstreamRecipe] = {}

    def get(name: str, version: str) -> UpstreamRecipe:
        if (name, version) not in seen:
            url, sha256 = _sdist(name, version)
            seen[name, version] = run_grayskull(name, version, sdist_url=url, sha256=sha256,
                                                timeout=300, cache_dir=cache_dir)
        return seen[name, version]

    return get


def names(reqs: list[Requirement]) -> list[str]:
    return [r.spec.split()[0] for r in reqs]


def by_name(reqs: list[Requirement], name: str) -> Requirement:
    return next(r for r in reqs if r.spec.split()[0] == name)


# ------------------------------------------------------------------------- real PyPI


def test_idna_flit_core(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("idna", "3.10")
    assert (r.name, r.version) == ("idna", "3.10")
    assert r.sdist_url.endswith("/idna-3.10.tar.gz") and "/packages/source/" not in r.sdist_url
    assert r.sha256 == "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9"
    assert names(r.host) == ["python", "flit-core", "pip"]
    assert by_name(r.host, "flit-core").spec == "flit-core >=3.2,<4"
    # idna 3.10's own Requires-Python, not the latest release's (the JSON API's "info").
    assert [x.spec for x in r.run] == ["python >=3.6"]
    assert r.raw["_recipegen"]["metadata_source"].startswith("wheel:idna-3.10-")
    assert r.raw["_recipegen"]["setup_root"] == "idna-3.10/pyproject.toml"
    assert r.noarch == "python"
    assert r.build == [] and r.entry_points == []
    assert r.test_imports == ["idna"]
    assert r.license == "BSD-3-Clause" and r.license_files == ["LICENSE.md"]
    assert r.script == "{{ PYTHON }} -m pip install . -vv"
    assert r.description and "IDNA" in r.description


def test_httpx_hatchling(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("httpx", "0.28.1")
    assert r.entry_points == ["httpx = httpx:main"]
    assert set(names(r.run)) == {"python", "anyio", "certifi", "httpcore", "idna"}
    assert by_name(r.run, "httpcore").spec == "httpcore ==1.*"
    assert all(x.selector is None for x in r.run)
    assert {"hatchling", "hatch-fancy-pypi-readme", "pip"} <= set(names(r.host))
    assert "httpx --help" in r.test_commands
    assert r.homepage == "https://github.com/encode/httpx"
    assert r.doc_url == "https://www.python-httpx.org"
    assert r.noarch == "python"


def test_pluggy_setuptools_scm(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("pluggy", "1.5.0")
    assert {"setuptools", "setuptools-scm", "pip"} <= set(names(r.host))
    assert [x.spec for x in r.run] == ["python >=3.8"]
    # The root setup.py, not docs/examples/eggsample/setup.py.
    assert r.raw["_recipegen"]["setup_root"] == "pluggy-1.5.0/setup.py"
    assert r.license == "MIT"


def test_tqdm_platform_selector(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("tqdm", "4.67.1")
    assert by_name(r.run, "colorama") == Requirement("colorama", "win")
    assert r.entry_points == ["tqdm = tqdm.cli:main"]
    assert "tqdm" in r.test_imports
    assert r.noarch is None  # grayskull drops noarch for any marker
    assert r.raw["_selectors"]["build.skip"] == "py<37"


def test_anyio_marker_selectors(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("anyio", "4.8.0")
    assert by_name(r.run, "exceptiongroup") == Requirement("exceptiongroup >=1.0.2", "py<311")
    assert by_name(r.run, "typing_extensions") == Requirement("typing_extensions >=4.5",
                                                              "py<313")
    assert by_name(r.run, "idna") == Requirement("idna >=2.8", None)
    assert by_name(r.run, "sniffio").selector is None
    assert "trio" not in names(r.run)  # extras stay out
    assert {"setuptools", "setuptools-scm"} <= set(names(r.host))
    assert r.noarch is None


def test_markupsafe_c_extension(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("markupsafe", "3.0.2")
    assert [x.spec for x in r.build] == ["{{ compiler('c') }}"]
    assert r.noarch is None
    assert by_name(r.host, "setuptools").spec == "setuptools >=70.1"
    assert r.raw["_recipegen"]["setup_root"] == "markupsafe-3.0.2/setup.py"
    # grayskull pip-installs what setup.py imports before running it.
    assert "setuptools" in [p["dep"] for p in r.raw["_recipegen"]["pip_installs"]]
    assert r.license == "BSD-3-Clause"


def test_cache_hit_and_pip_reuse(upstream: Callable[[str, str], UpstreamRecipe],
                                 cache_dir: Path) -> None:
    first = upstream("markupsafe", "3.0.2")
    url, sha256 = _sdist("markupsafe", "3.0.2")
    start = time.monotonic()
    again = run_grayskull("markupsafe", "3.0.2", sdist_url=url, sha256=sha256,
                          cache_dir=cache_dir)
    assert time.monotonic() - start < 1
    assert again == first
    # Without the answer cache, the pip installs of setup.py imports are reused.
    for path in (cache_dir / "upstream").glob("markupsafe-3.0.2-*.json"):
        path.unlink()
    fresh = run_grayskull("markupsafe", "3.0.2", sdist_url=url, sha256=sha256,
                          cache_dir=cache_dir)
    installs = fresh.raw["_recipegen"]["pip_installs"]
    assert installs and all(p["cached"] for p in installs)
    assert (fresh.build, fresh.host, fresh.run) == (first.build, first.host, first.run)


def test_flit_core_ignores_sample_files(upstream: Callable[[str, str], UpstreamRecipe]) -> None:
    r = upstream("flit-core", "3.10.1")
    assert r.raw["_recipegen"]["setup_root"] == "flit_core-3.10.1/pyproject.toml"
    assert names(r.host) == ["python", "pip"]
    assert sorted(r.license_files) == ["LICENSE", "flit_core/vendor/tomli-1.2.3.dist-info/LICENSE"]


# ---------------------------------------------------------------------- local sdists


def _make_sdist(tmp_path: Path, name: str, files: dict[str, str]) -> tuple[str, str]:
    """A ``name-1.0.tar.gz`` holding ``files`` under ``name-1.0/``; its URL and sha256."""
    import hashlib

    path = tmp_path / f"{name}-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-1.0/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest()


def _pkg_info(name: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: test sdist\n"


def _processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line or environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if "\nState:\tZ" in (proc / "status").read_text():
                continue
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(proc.name))
    return found


def test_timeout_kills_whole_process_group(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"recipegen-sleepy-{uuid.uuid4().hex}"
    setup_py = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)',"
        f" '{marker}'])\n"
        "time.sleep(3600)\n"
    )
    url, sha256 = _make_sdist(tmp_path, "sleepy", {"setup.py": setup_py,
                                                   "PKG-INFO": _pkg_info("sleepy")})
    monkeypatch.setenv("RECIPEGEN_TEST_MARKER", marker)
    start = time.monotonic()
    with pytest.raises(RecipegenError) as err:
        run_grayskull("sleepy", "1.0", sdist_url=url, sha256=sha256, timeout=8)
    elapsed = time.monotonic() - start
    assert 8 <= elapsed < 15
    assert "timed out" in err.value.message and "sleepy" in err.value.message
    assert err.value.package == "sleepy"
    assert "Executing injected distutils" in (err.value.log or "")
    time.sleep(0.2)
    assert _processes_with(marker) == []


def test_sample_setup_py_is_not_run(tmp_path: Path) -> None:
    """A flit-style sdist with setup.py / setup.cfg / LICENSE only in test samples.

    Unpatched, grayskull 3.2.0 runs the sample setup.py (pip-installing setuptools for
    it), adds ``bogus-sample-dep`` to run and takes the sample's MIT license.
    """
    sample_setup = (
        "import os\n"
        "from setuptools import setup\n"
        "setup(name='sample', install_requires=['bogus-sample-dep'])\n"
    )
    files = {
        "PKG-INFO": _pkg_info("rooty"),
        "pyproject.toml": (
            '[build-system]\nrequires = ["flit_core >=3.2,<4"]\n'
            'build-backend = "flit_core.buildapi"\n\n'
            '[project]\nname = "rooty"\nversion = "1.0"\ndescription = "x"\n'
            'dependencies = ["packaging >=20"]\n'
        ),
        "rooty.py": "",
        "tests/samples/one/setup.py": sample_setup,
        "tests/samples/one/setup.cfg": "[metadata]\nname = sample\n",
        "tests/samples/one/pyproject.toml": '[project]\nname = "sample"\n',
        "tests/samples/one/LICENSE": "MIT License\n\nPermission is hereby granted",
    }
    url, sha256 = _make_sdist(tmp_path, "rooty", files)
    r = run_grayskull("rooty", "1.0", sdist_url=url, sha256=sha256, timeout=120)
    assert r.raw["_recipegen"]["setup_root"] == "rooty-1.0/pyproject.toml"
    assert r.raw["_recipegen"]["pip_installs"] == []
    assert [x.spec for x in r.run] == ["python", "packaging >=20"]
    assert [x.spec for x in r.host] == ["python", "flit-core >=3.2,<4", "pip"]
    assert r.raw["_recipegen"]["metadata_source"] == "sdist:PKG-INFO"
    assert (r.license, r.license_files) == (None, [])


def test_pip_results_for_setup_py_imports_are_kept(tmp_path: Path, cache_dir: Path) -> None:
    """grayskull pip-installs each non-stdlib import of setup.py (its stdlib list stops at
    3.8, so ``tomllib`` too); with a cache dir a later run asks pip nothing."""
    setup_py = (
        "import tomllib\n"
        "from setuptools import setup\n"
        "setup(name='importer', version='1.0', install_requires=['packaging'])\n"
    )
    url, sha256 = _make_sdist(tmp_path, "importer", {"setup.py": setup_py,
                                                     "PKG-INFO": _pkg_info("importer")})
    runs = []
    for _ in range(2):
        for path in (cache_dir / "upstream").glob("importer-1.0-*.json"):
            path.unlink()
        runs.append(run_grayskull("importer", "1.0", sdist_url=url, sha256=sha256,
                                  timeout=120, cache_dir=cache_dir))
    first, second = (r.raw["_recipegen"]["pip_installs"] for r in runs)
    assert {p["dep"]: p["ok"] for p in first} == {"tomllib": False, "setuptools": True}
    assert all(p["cached"] for p in second)
    assert runs[0].run == runs[1].run
    assert "tomllib" not in names(runs[1].host)  # grayskull adds only what pip installed
    assert "packaging" in names(runs[1].run)


def test_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    url, _ = _make_sdist(tmp_path, "wrong", {"PKG-INFO": _pkg_info("wrong")})
    with pytest.raises(RecipegenError) as err:
        run_grayskull("wrong", "1.0", sdist_url=url, sha256="0" * 64, timeout=60)
    assert "sha256 mismatch" in str(err.value)


def test_json_round_trip() -> None:
    recipe = UpstreamRecipe(
        name="x", version="1", sdist_url="u", sha256="s", build=[],
        host=[Requirement("python", None)], run=[Requirement("a >=1", "py<311")],
        run_constrained=[], entry_points=["x = x:main"], test_imports=["x"],
        test_commands=["pip check"], summary=None, description=None, homepage=None,
        doc_url=None, dev_url=None, license=None, license_files=[], noarch="python",
        script=None, raw={"k": [1]},
    )
    assert UpstreamRecipe.from_json(json.loads(json.dumps(recipe.to_json()))) == recipe
