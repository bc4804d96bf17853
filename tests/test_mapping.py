"""PyPI → conda name mapping, its config, and the bundled table's provenance."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from recipegen.config import Config, load_config
from recipegen.errors import UsageError
from recipegen.mapping import SOURCES, MappedName, NameMapper, parse_override

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "conda-forge"
BUNDLED = REPO / "recipegen" / "data" / "mappings" / "pypi_to_conda.json"


@functools.cache
def _build_module() -> ModuleType:
    """tools/build_mapping.py, which is a script, not part of the package."""
    path = REPO / "tools" / "build_mapping.py"
    spec = importlib.util.spec_from_file_location("build_mapping", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_mapping"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mapper() -> NameMapper:
    return NameMapper()


@pytest.mark.parametrize(("pypi", "conda"), [
    ("torch", "pytorch"),
    ("tables", "pytables"),
    ("msgpack", "msgpack-python"),
    ("typing-extensions", "typing_extensions"),
    ("graphviz", "python-graphviz"),
    ("matplotlib", "matplotlib-base"),
])
def test_done_names(mapper: NameMapper, pypi: str, conda: str) -> None:
    assert mapper.to_conda(pypi).conda == conda


def test_sources_of_real_entries(mapper: NameMapper) -> None:
    # cf-scripts and grayskull agree on torch; the higher layer is the one reported.
    assert mapper.to_conda("torch").source == "cf-scripts"
    assert mapper.to_conda("msgpack").source == "grayskull"
    # parselmouth alone would say "dask"/"duckdb"; the curated layers win.
    assert mapper.to_conda("dask").conda == "dask-core"
    assert mapper.to_conda("duckdb").conda == "python-duckdb"
    # parselmouth's inversion gives "astropy"; conda-forge's hint wins over it.
    assert mapper.to_conda("astropy") == MappedName("astropy", "astropy", "astropy-base", "hint")
    assert mapper.to_conda("requests") == MappedName("requests", "requests", "requests",
                                                     "parselmouth")
    assert mapper.to_conda("acrv_datasets").conda == "acrv_datasets"


def test_identity_for_unknown(mapper: NameMapper) -> None:
    got = mapper.to_conda("No.Such__Project-xyzzy")
    assert got == MappedName("No.Such__Project-xyzzy", "no-such-project-xyzzy",
                             "no-such-project-xyzzy", "identity")


@pytest.mark.parametrize("name", ["Typing_Extensions", "typing.extensions", "TYPING--EXTENSIONS"])
def test_normalization(mapper: NameMapper, name: str) -> None:
    got = mapper.to_conda(name)
    assert (got.pypi, got.normalized, got.conda) == (name, "typing-extensions", "typing_extensions")


@pytest.mark.parametrize("name", ["", "foo bar", "-foo", "torch>=2"])
def test_invalid_pypi_name(mapper: NameMapper, name: str) -> None:
    with pytest.raises(UsageError):
        mapper.to_conda(name)


def test_override_beats_everything() -> None:
    m = NameMapper({"Torch": "my-torch", "requests": "requests-x", "astropy": "astropy"})
    assert m.to_conda("torch") == MappedName("torch", "torch", "my-torch", "override")
    assert m.to_conda("requests").source == "override"
    assert m.to_conda("astropy").conda == "astropy"
    assert m.to_pypi("my-torch") == "torch"
    assert m.version != NameMapper().version
    assert m.version.startswith(m.data_version + "+")
    assert NameMapper().version == NameMapper({}).version


def test_bad_override_in_mapper() -> None:
    with pytest.raises(UsageError, match="conda package name"):
        NameMapper({"torch": "PyTorch"})


def test_precedence_of_layers() -> None:
    """cf-scripts > grayskull > hint > parselmouth; the real data has no cf/grayskull clash."""
    bm = _build_module()
    got = bm.merge(
        cf_scripts={"a": "a-cf"},
        grayskull={"a": "a-gs", "b": "b-gs"},
        hints={"c": "c-base", "d": "libd"},
        parselmouth={"a": "a-pm", "b": "b-pm", "c": "c", "d": "d", "e": "python-e"},
        provides={"c": ["c"], "c-base": ["c"], "d": ["d"], "libd": None, "python-e": ["e"]},
    )
    assert got == {
        "a": ("a-cf", "cf-scripts"),
        "b": ("b-gs", "grayskull"),
        "c": ("c-base", "hint"),
        "d": ("d", "parselmouth"),  # the hint's target does not ship PyPI "d": ignored
        "e": ("python-e", "parselmouth"),
    }


def test_parselmouth_inversion() -> None:
    bm = _build_module()
    table, ambiguous = bm.invert_parselmouth({
        "pytorch": ["torch"], "pytorch-cpu": ["torch"],  # ambiguous
        "typing_extensions": ["typing-extensions"], "boto3-stubs": ["typing-extensions"],
        "importlib-metadata": ["importlib-metadata"], "importlib_metadata": ["importlib-metadata"],
        "msgpack-python": ["msgpack"], "mkl": None,
    })
    assert table == {"typing-extensions": "typing_extensions",
                     "importlib-metadata": "importlib-metadata", "msgpack": "msgpack-python"}
    assert ambiguous == 1


def test_reverse_lookup(mapper: NameMapper) -> None:
    for pypi in ["torch", "tables", "msgpack", "typing-extensions", "graphviz", "matplotlib"]:
        assert mapper.to_pypi(mapper.to_conda(pypi).conda) == pypi
    assert mapper.to_pypi("numpy") == "numpy"
    assert mapper.to_pypi("matplotlib") == "matplotlib"
    assert mapper.to_pypi("pyqt") == "pyqt5"
    assert mapper.to_pypi("mkl") is None
    assert mapper.to_pypi("no-such-conda-package-xyzzy") is None
    assert mapper.is_non_python("mkl")
    assert not mapper.is_non_python("numpy")


@pytest.mark.parametrize(("text", "want"), [
    ("torch=pytorch", ("torch", "pytorch")),
    (" Typing_Extensions = typing_extensions ", ("typing-extensions", "typing_extensions")),
])
def test_parse_override(text: str, want: tuple[str, str]) -> None:
    assert parse_override(text) == want


@pytest.mark.parametrize("text", ["torch", "torch=", "=pytorch", "torch==pytorch",
                                  "to rch=pytorch", "torch=PyTorch", "torch=py torch"])
def test_parse_override_errors(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_override(text)
    assert e.value.exit_code == 2


def test_sources_listed() -> None:
    assert SOURCES == ("override", "cf-scripts", "grayskull", "hint", "parselmouth", "identity")


# -- config ---------------------------------------------------------------------------

def test_config_absent(tmp_path: Path) -> None:
    assert load_config(tmp_path) == Config()


def test_config_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.recipegen]\n'
        'mapping = {Torch = "pytorch", foo = "foo-conda"}\n'
        'channels = ["conda-forge"]\nmaintainers = ["alice"]\n'
    )
    cfg = load_config(tmp_path)
    assert dict(cfg.mapping) == {"torch": "pytorch", "foo": "foo-conda"}
    assert cfg.channels == ("conda-forge",)
    assert cfg.maintainers == ("alice",)
    assert cfg.path == tmp_path / "pyproject.toml"
    assert NameMapper(cfg.mapping).to_conda("foo").conda == "foo-conda"


def test_config_pyproject_without_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(tmp_path) == Config()


def test_config_recipegen_toml_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.recipegen]\nchannels = ["from-pyproject"]\n')
    (tmp_path / "recipegen.toml").write_text(
        'channels = ["local", "conda-forge"]\n\n[mapping]\nfoo = "bar"\n'
    )
    cfg = load_config(tmp_path)
    assert cfg.channels == ("local", "conda-forge")
    assert dict(cfg.mapping) == {"foo": "bar"}
    assert cfg.maintainers == ()
    assert cfg.path == tmp_path / "recipegen.toml"


@pytest.mark.parametrize(("filename", "text"), [
    ("recipegen.toml", 'chanels = ["x"]\n'),
    ("pyproject.toml", '[tool.recipegen]\nchanels = ["x"]\n'),
])
def test_config_unknown_key(tmp_path: Path, filename: str, text: str) -> None:
    (tmp_path / filename).write_text(text)
    with pytest.raises(UsageError) as e:
        load_config(tmp_path)
    assert "'chanels'" in e.value.message
    assert filename in e.value.message


@pytest.mark.parametrize("text", [
    'channels = "conda-forge"\n',
    'maintainers = [1]\n',
    'mapping = ["torch"]\n',
    'mapping = {torch = 1}\n',
    'mapping = {torch = "PyTorch"}\n',
    'mapping = {"to rch" = "pytorch"}\n',
    'mapping = {Foo = "a", foo = "b"}\n',
    'channels = [\n',
])
def test_config_bad_values(tmp_path: Path, text: str) -> None:
    (tmp_path / "recipegen.toml").write_text(text)
    with pytest.raises(UsageError, match=r"recipegen\.toml"):
        load_config(tmp_path)


# -- bundled table ----------------------------------------------------------------------

@pytest.mark.skipif(not SHARED.is_dir(),
                    reason=f"conda-forge source data not present at {SHARED} (fresh clone)")
def test_bundled_table_is_generated_from_shared_data() -> None:
    bm = _build_module()
    assert BUNDLED.read_text(encoding="utf-8") == bm.render(SHARED), (
        "recipegen/data/mappings/pypi_to_conda.json is stale: run tools/build_mapping.py")


def test_bundled_table_is_small() -> None:
    assert BUNDLED.stat().st_size < 2_000_000
