"""The seed channel, built for real from the running interpreter and installed with rattler."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rattler import Channel, Subdir, VirtualPackage, install, solve

from recipegen.errors import RecipegenError
from recipegen.seed import SeedResult, default_seed_dir, seed_channel, system_toolchain

pytestmark = pytest.mark.e2e

SHORT = f"{sys.version_info.major}.{sys.version_info.minor}"
BUNDLED_PIP = next(
    (Path(sys.base_prefix) / "lib" / f"python{SHORT}" / "ensurepip" / "_bundled").glob("pip-*.whl")
).name.split("-")[1]


_SEED_IN_SUBPROCESS = """
import dataclasses, json, sys
from pathlib import Path
from recipegen.seed import seed_channel
result = seed_channel(Path(sys.argv[1]), progress=lambda line: print(line, file=sys.stderr))
print(json.dumps(dataclasses.asdict(result), default=str))
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SeedResult:
    """One seed for the module (~20 s), in a subprocess to see exactly what it prints."""
    channel = default_seed_dir(tmp_path_factory.mktemp("work"))
    proc = subprocess.run(
        [sys.executable, "-c", _SEED_IN_SUBPROCESS, str(channel)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    # stdout holds our JSON line only: no rattler-build output leaks onto it.
    data = json.loads(proc.stdout)
    assert "seed: built python-" in proc.stderr
    return SeedResult(Path(data["channel"]), data["built"], data["existing"])


@pytest.fixture(scope="module")
def env(seeded: SeedResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment solved from the seed channel alone and linked by rattler."""
    prefix = tmp_path_factory.mktemp("env") / "prefix"
    cache = tmp_path_factory.mktemp("pkgs")

    async def make() -> None:
        records = await solve(
            sources=[Channel(seeded.channel.as_uri())],
            specs=["python", "pip"],
            platforms=[Subdir.current(), "noarch"],
            virtual_packages=VirtualPackage.detect(),
        )
        names = sorted(r.name.normalized for r in records)
        assert names == ["pip", "python", "python_abi"], names  # pip is built for this python
        await install(records, target_prefix=prefix, cache_dir=cache, show_progress=False)

    asyncio.run(make())
    return prefix


def _run(*args: str | Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _repodata(channel: Path, subdir: str) -> dict:
    return json.loads((channel / subdir / "repodata.json").read_text())["packages.conda"]


def test_default_seed_dir(tmp_path: Path) -> None:
    assert default_seed_dir(tmp_path) == tmp_path / "seed"


def test_repodata_lists_the_seed(seeded: SeedResult) -> None:
    arch = _repodata(seeded.channel, str(Subdir.current()))
    noarch = _repodata(seeded.channel, "noarch")
    by_name = {rec["name"]: rec for rec in [*arch.values(), *noarch.values()]}
    tools = {t.package for t in system_toolchain(str(Subdir.current()))}
    assert set(by_name) == {"python", "python_abi", "pip", *tools}
    for tool in tools:  # empty stand-ins for the machine's compilers
        assert by_name[tool]["build"] == "system"
    python = by_name["python"]
    assert python["version"] == ".".join(map(str, sys.version_info[:3]))
    assert python["build"] == "0_cpython"
    assert python["run_exports"] == {"weak": [f"python_abi {SHORT}.* *_cp{SHORT.replace('.', '')}"]}
    assert by_name["python_abi"]["version"] == SHORT
    pip = by_name["pip"]
    assert pip["version"] == BUNDLED_PIP
    # Not noarch: it carries hash-based bytecode (rattler compiles none at link time).
    assert "noarch" not in pip
    assert pip["depends"] == ["python", f"python_abi {SHORT}.* *_cp{SHORT.replace('.', '')}"]
    assert sorted(seeded.built) == sorted([*arch, *noarch])
    assert seeded.existing == []
    for fn in seeded.built:
        assert any((seeded.channel / sub / fn).is_file() for sub in ("noarch", "linux-64"))


def test_second_seed_is_a_noop(seeded: SeedResult) -> None:
    before = {p: p.stat().st_mtime_ns for p in seeded.channel.rglob("*") if p.is_file()}
    again = seed_channel(seeded.channel)
    assert again.built == []
    assert sorted(again.existing) == sorted(seeded.built)
    after = {p: p.stat().st_mtime_ns for p in seeded.channel.rglob("*") if p.is_file()}
    assert after == before


def test_env_runs_from_its_own_prefix(env: Path) -> None:
    python = env / "bin" / "python"
    out = _run(python, "-c", "import ssl, sqlite3, json, sys; print(sys.prefix)")
    assert Path(out.strip()) == env
    assert f"pip {BUNDLED_PIP} from {env}" in _run(python, "-m", "pip", "--version")
    # Entry points made by rattler-build from the recipe's python.entry_points.
    assert BUNDLED_PIP in _run(env / "bin" / "pip", "--version")
    assert BUNDLED_PIP in _run(env / "bin" / "pip3", "--version")


def test_env_holds_only_pip_and_a_lean_stdlib(env: Path) -> None:
    stdlib = env / "lib" / f"python{SHORT}"
    site = {p.name for p in (stdlib / "site-packages").iterdir()}
    site -= {"README.txt", "__pycache__"}
    assert site == {"pip", f"pip-{BUNDLED_PIP}.dist-info"}
    for gone in ("test", "idlelib", "tkinter", "turtledemo", "lib2to3/tests"):
        assert not (stdlib / gone).exists(), gone
    assert (stdlib / "__pycache__").is_dir()
    assert (env / "include" / f"python{SHORT}" / "Python.h").is_file()
    bins = {p.name for p in (env / "bin").iterdir()}
    assert {"python", "python3", f"python{SHORT}", "pip", "pip3"} <= bins
    assert not bins & {"pytest", "ipython", f"pip{SHORT}"}


def test_sysconfig_points_into_the_env(env: Path) -> None:
    code = (
        "import sysconfig; v = sysconfig.get_config_vars();"
        "print(v['prefix']); print(v['LIBDIR']); print(sysconfig.get_paths()['include'])"
    )
    prefix, libdir, include = _run(env / "bin" / "python", "-c", code).split()
    assert Path(prefix) == env
    assert Path(libdir) == env / "lib"
    assert Path(include) == env / "include" / f"python{SHORT}"


@pytest.mark.parametrize("module", ["json", "pip._internal.cli.main"])
def test_stdlib_and_pip_bytecode_stays_valid(env: Path, module: str) -> None:
    """Packaging resets mtimes: the pycs must be hash-based to be of any use."""
    code = (
        f"import importlib.util, {module} as m; src = m.__file__;"
        "pyc = importlib.util.cache_from_source(src);"
        "head = open(pyc, 'rb').read(16); data = open(src, 'rb').read();"
        "print(int.from_bytes(head[4:8], 'little'), head[8:16] == importlib.util.source_hash(data))"
    )
    assert _run(env / "bin" / "python", "-c", code).split() == ["3", "True"]


def test_reseed_after_an_interrupted_index(seeded: SeedResult, tmp_path: Path) -> None:
    """Packages moved in before a seed stopped are found by re-indexing, not rebuilt."""
    channel = tmp_path / "seed"
    shutil.copytree(seeded.channel, channel)
    for repodata in channel.glob("*/repodata.json"):
        repodata.unlink()
    again = seed_channel(channel)
    assert again.built == []
    assert sorted(again.existing) == sorted(seeded.built)
    assert (channel / "noarch" / "repodata.json").is_file()


def test_unusable_channel_path_is_a_recipegen_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RecipegenError, match="cannot create the seed channel"):
        seed_channel(blocker / "seed")
