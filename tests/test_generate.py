"""Recipes generated from real PyPI releases (pinned), read back as rattler-build sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from rattler_build import Stage0Recipe

from recipegen.archive import SdistInfo
from recipegen.errors import RecipegenError
from recipegen.generate import GenerateContext, generate
from recipegen.mapping import NameMapper
from recipegen.pipeline import InstallRequest, make_plan
from recipegen.progress import Reporter
from recipegen.pypi import PyPI
from recipegen.resolve import Resolution, ResolvedDist
from recipegen.toolchain import detect

SPECS = ("tqdm==4.67.1", "pluggy==1.5.0", "httpx==0.28.1", "markupsafe==3.0.2",
         "certifi==2026.10.19.post1")


def _plan(tmp: Path, flavour: str):
    req = InstallRequest(specs=SPECS, prefix=tmp / "no-env", work_root=tmp, flavour=flavour,
                         use_channels=False, follow=False, jobs=2)
    plan = make_plan(req, Reporter("quiet"))
    return {r.pypi_name: r for r in plan.recipes.values()}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory):
    return _plan(tmp_path_factory.mktemp("work"), "local")


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory):
    return _plan(tmp_path_factory.mktemp("work"), "conda-forge")


def test_every_recipe_parses_in_rattler_build(local, forge) -> None:
    for recipe in [*local.values(), *forge.values()]:
        Stage0Recipe.from_yaml(recipe.text)


def test_tqdm_licence_file_and_real_dependencies_only(local) -> None:
    tqdm = local["tqdm"].spec
    assert tqdm.license_files == ("LICENCE",)  # grayskull misses the British spelling
    assert tqdm.license == "MPL-2.0 AND MIT"
    assert tqdm.run == ("python >=3.7",)  # colorama is Windows-only: not on this target
    assert tqdm.noarch == "python"  # markers do not make it arch-specific
    assert tqdm.test_imports == ("tqdm",)
    assert tqdm.test_commands == ("tqdm --help",)
    assert tqdm.entry_points == ("tqdm = tqdm.cli:main",)


def test_pluggy_has_no_docs_example_dependency(local) -> None:
    pluggy = local["pluggy"].spec
    assert pluggy.run == ("python >=3.8",)
    assert pluggy.license_files == ("LICENSE",)
    assert {"setuptools >=45.0", "setuptools-scm >=6.2.3"} <= set(pluggy.host)
    assert "eggsample" not in local["pluggy"].text


def test_entry_point_needing_an_extra_gets_no_smoke_test(local) -> None:
    httpx = local["httpx"].spec
    assert httpx.entry_points == ("httpx = httpx:main",)
    assert httpx.test_commands == ()  # `httpx --help` needs the cli extra (click, rich)
    assert httpx.test_imports == ("httpx",)
    assert "httpcore 1.*" in httpx.run


def test_c_extension_gets_an_arch_recipe_with_a_compiler(local, forge) -> None:
    markupsafe = local["markupsafe"].spec
    assert markupsafe.noarch is None
    assert markupsafe.build == ("${{ compiler('c') }}",)
    assert markupsafe.run[0] == "python >=3.11,<3.12.0a0"
    assert markupsafe.build_string.startswith("py311h")
    assert forge["markupsafe"].spec.build == ("${{ compiler('c') }}", "${{ stdlib('c') }}")
    assert "${{ compiler('c') }}" in forge["markupsafe"].text


def test_wheel_only_release_repackages_the_pure_wheel(local) -> None:
    certifi = local["certifi"].spec
    assert certifi.source_kind == "wheel"
    assert certifi.file_name == "certifi-2026.10.19.post1-py3-none-any.whl"
    assert certifi.host == ("python", "pip")
    assert certifi.script[0].startswith("${{ PYTHON }} -m pip install ./certifi-")


def test_no_sdist_and_no_pure_wheel_is_a_clear_error(tmp_path: Path) -> None:
    pypi = PyPI(tmp_path / "pypi")
    doc = pypi.project("nvidia-cuda-runtime-cu12")
    version = next(v for v, files in sorted(doc["releases"].items(), reverse=True)
                   if files and not any(f["packagetype"] == "sdist" for f in files))
    dist = ResolvedDist(name="nvidia-cuda-runtime-cu12", display_name="nvidia-cuda-runtime-cu12",
                        version=version, requires_dist=(), requires_python=None,
                        provides_extra=(), requested=True, requested_extras=())
    ctx = GenerateContext(mapper=NameMapper(), pypi=pypi, cache_dir=tmp_path,
                          python_version="3.11.7")
    with pytest.raises(RecipegenError, match="neither an sdist nor a py3-none-any wheel"):
        generate(dist, Resolution(("x",), {}, {dist.name: dist}), ctx)


def _info(files: tuple[str, ...], backend: str = "") -> SdistInfo:
    pyproject = {"build-system": {"build-backend": backend}} if backend else {}
    return SdistInfo(path=Path("x.tar.gz"), root="x", files=files, pyproject=pyproject)


@pytest.mark.parametrize(
    ("files", "backend", "build"),
    [
        (("src/lib.rs", "Cargo.toml"), "maturin",
         ("${{ compiler('c') }}", "${{ compiler('rust') }}")),
        (("src/ext.cpp",), "scikit_build_core.build",
         ("${{ compiler('c') }}", "${{ compiler('cxx') }}", "cmake", "ninja")),
        (("src/mod.c", "meson.build"), "mesonpy", ("${{ compiler('c') }}", "meson", "ninja",
                                                   "pkg-config")),
        (("pkg/_speedups.pyx",), "setuptools.build_meta", ("${{ compiler('c') }}",)),
        (("pkg/__init__.py", "tests/fixture.c"), "setuptools.build_meta", ()),
    ],
)
def test_toolchain_detection(files, backend, build) -> None:
    assert detect(_info(files, backend)).build_requirements(stdlib=False) == build


def test_build_string_follows_the_recipe_text(local) -> None:
    from dataclasses import replace

    from recipegen.generate import with_build_string, without_tests

    tqdm = local["tqdm"]
    assert tqdm.spec.build_string.startswith("pyh") and tqdm.spec.build_string.endswith("_0")
    untested = without_tests(tqdm)
    assert untested.spec.build_string.startswith("pyh")
    assert untested.spec.build_string != tqdm.spec.build_string  # the package holds its tests
    same = with_build_string(replace(tqdm.spec, build_string=None), "3.11.7")
    assert same.build_string == tqdm.spec.build_string  # deterministic
