"""Generated conda-forge-flavour recipes against conda-forge's own, for 12 real packages.

The reference (run/host requirements of conda-forge's feedstock recipes at recorded
commits) is bundled in tests/data; the source is ../shared/data/fidelity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA

from recipegen.fidelity import names_in, recipe_run_specs, score
from recipegen.pipeline import InstallRequest, make_plan
from recipegen.progress import Reporter

SAMPLE = json.loads((DATA / "conda_forge_recipes_sample.json").read_text())["packages"]

#: Where our recipe differs from conda-forge's, and why ours is right.
KNOWN_DIFFERENCES = {
    # h11 0.16.0's metadata declares no Requires-Dist at all; conda-forge's recipe still
    # carries typing_extensions from h11 < 0.15 (needed there only for Python < 3.8).
    "h11": {"missing": {"typing-extensions"}, "extra": set()},
    # rich 14.3.3 requires only markdown-it-py and pygments (plus ipywidgets for the jupyter
    # extra); typing-extensions left its metadata with Python 3.8 support, conda-forge's
    # recipe still lists it.
    "rich": {"missing": {"typing-extensions"}, "extra": set()},
}


def _reference_run(entry: dict) -> list[str]:
    if "outputs" in entry:
        main = next(o for o in entry["outputs"] if o["name"] == entry["pypi_name"])
        return main["run"]
    return entry["run"]


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("work")
    specs = tuple(f"{e['pypi_name']}=={e['version']}" for e in SAMPLE)
    req = InstallRequest(specs=specs, prefix=work / "no-env", work_root=work,
                         flavour="conda-forge", use_channels=False, follow=False, jobs=2)
    return make_plan(req, Reporter("quiet"))


def test_names_in_reads_every_reference_spelling() -> None:
    assert names_in("charset-normalizer >=2,<4") == {"charset-normalizer"}
    assert names_in("[win] colorama") == {"colorama"}
    assert names_in("[unix] __unix") == set()
    assert names_in("python >={{ python_min }}") == set()
    assert names_in('${{ "colorama" if noarch_platform == "win" else "python" }}') == {
        "colorama"}
    assert names_in("__${{ noarch_platform }}") == set()
    assert names_in("typing_extensions") == {"typing-extensions"}


def test_all_twelve_match_conda_forge(plan) -> None:
    by_name = {r.pypi_name: r for r in plan.recipes.values()}
    pairs = []
    for entry in SAMPLE:
        recipe = by_name[entry["pypi_name"].lower()]
        assert recipe.version == entry["version"]
        pairs.append((entry["pypi_name"], recipe_run_specs(recipe.spec), _reference_run(entry)))
    result = score(pairs)
    print(result.report())
    for comparison in result.comparisons:
        known = KNOWN_DIFFERENCES.get(comparison.package, {"missing": set(), "extra": set()})
        assert set(comparison.missing) == known["missing"], comparison
        assert set(comparison.extra) == known["extra"], comparison
    explained = sum(c.matches or c.package in KNOWN_DIFFERENCES for c in result.comparisons)
    assert explained == len(SAMPLE) == 12


def test_conda_forge_flavour_shape(plan) -> None:
    recipes = {r.pypi_name: r for r in plan.recipes.values()}
    tqdm = recipes["tqdm"].spec
    assert tqdm.noarch == "python"
    assert tqdm.run[0] == "python >=${{ python_min }}"
    assert tqdm.host[0] == "python ${{ python_min }}.*"
    block = tqdm.run_conditional[0]
    assert (block.selector, block.then, block.otherwise) == ("win", ("colorama", "__win"),
                                                            ("__unix",))
    assert tqdm.build_string is None
    assert "python_version:" in recipes["tqdm"].text
    anyio = recipes["anyio"].spec
    # Markers python_min does not settle are kept, and said so.
    assert {"exceptiongroup >=1.0.2", "typing_extensions >=4.5"} <= set(anyio.run)
    assert any("exceptiongroup" in n.subject for n in recipes["anyio"].notes)
    # Optional extras pin versions without being pulled in; test extras do not.
    assert any(c.startswith("trio ") for c in anyio.run_constraints)
    assert not any(c.startswith("pytest") for c in anyio.run_constraints)


def test_score_is_reusable() -> None:
    result = score([("a", ["python >=3.8", "b_c >=1"], ["B-C", "python"]),
                    ("d", ["e"], ["f"])])
    assert result.rate == 0.5
    assert "DIFF d missing ['f'] extra ['e']" in result.report()


def test_reference_data_is_the_shared_copy() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "fidelity"
    source = shared / "conda_forge_recipes_sample.json"
    if not source.exists():
        pytest.skip(f"shared data not present at {shared} (fresh clone)")
    assert json.loads(source.read_text()) == json.loads(
        (DATA / "conda_forge_recipes_sample.json").read_text())
