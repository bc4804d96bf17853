"""The lock file: its JSON round trip, its schema guard and its integrity checks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from recipegen import lock
from recipegen.generate import with_build_string
from recipegen.recipe import RecipeSpec, render


def _build(**kw) -> lock.LockedBuild:
    spec = with_build_string(RecipeSpec(
        name="demo", version="1.0", pypi_name="demo",
        source_url="https://example.invalid/demo-1.0.tar.gz", sha256="a" * 64,
        script=("${{ PYTHON }} -m pip install . --no-deps",), license="MIT",
        host=("python", "pip"), run=("python >=3.8",)), "3.11.7")
    text = render(spec)
    base = dict(
        pypi_name="demo", version="1.0", conda_name="demo", requested=True,
        reason="requested by name", source_kind="sdist", source_url=spec.source_url,
        source_sha256=spec.sha256, source_filename="demo-1.0.tar.gz",
        recipe_path="recipes/demo/recipe.yaml", recipe_text=text,
        recipe_sha256=hashlib.sha256(text.encode()).hexdigest(),
        content_hash=spec.content_hash(), spec=lock._spec_json(spec),
        host_requirements=("flit-core",), run_requirements=(), subdir="noarch",
        build_string=spec.build_string, timestamp=1_700_000_000, after=("flit-core",),
        skip_tests=False, file_name=f"demo-1.0-{spec.build_string}.conda", sha256="b" * 64)
    base.update(kw)
    return lock.LockedBuild(**base)


def _lock(**kw) -> lock.Lock:
    base = dict(
        tools=lock.tool_versions(), python="3.11.7", platform="linux-64",
        specs=("demo==1.0",), channels=("file:///seed",), requested=("demo ==1.0",),
        pins=("demo ==1.0 pyh0_0",), builds=(_build(),),
        reused=(lock.LockedPackage("flit-core", "3.12.0", "pyh_0", "file:///seed", "noarch",
                                   "flit-core-3.12.0-pyh_0.conda", "c" * 64, "flit-core"),),
        env=(lock.LockedPackage("python", "3.11.7", "0_cpython", "file:///seed", "linux-64",
                                "python-3.11.7-0_cpython.conda", "d" * 64),))
    base.update(kw)
    return lock.Lock(**base)


def test_round_trip(tmp_path: Path) -> None:
    original = _lock()
    path = lock.write(original, tmp_path / "sub" / "recipegen.lock")
    assert lock.read(path) == original
    assert [p.name for p in path.parent.iterdir()] == ["recipegen.lock"]  # no temp files
    data = json.loads(path.read_text())
    assert data["schema"] == lock.SCHEMA
    assert data["variant"] == {"python": "3.11.7", "platform": "linux-64"}
    assert data["builds"][0]["source"]["sha256"] == "a" * 64
    assert data["builds"][0]["output"]["sha256"] == "b" * 64
    assert set(data["tools"]) >= {"recipegen", "grayskull", "py-rattler-build", "zstandard"}
    lock.check_integrity(lock.read(path))


def test_exact_specs_of_locked_packages() -> None:
    env = _lock().env[0]
    assert env.exact_spec == f"python ==3.11.7 0_cpython[sha256={'d' * 64}]"
    assert replace(env, built=True).exact_spec == "python ==3.11.7 0_cpython"


def test_other_schema_is_refused(tmp_path: Path) -> None:
    data = json.loads(lock.to_json(_lock()))
    data["schema"] = 99
    with pytest.raises(lock.LockError, match="schema 99"):
        lock.from_json(json.dumps(data))
    with pytest.raises(lock.LockError, match="not valid JSON"):
        lock.from_json("{")
    with pytest.raises(lock.LockError, match="no lock file"):
        lock.read(tmp_path / "missing.lock")
    del data["builds"]
    data["schema"] = lock.SCHEMA
    with pytest.raises(lock.LockError, match="incomplete or damaged"):
        lock.from_json(json.dumps(data))


def test_edited_recipe_text_is_caught() -> None:
    b = _build()
    edited = replace(b, recipe_text=b.recipe_text.replace("pip install", "pip  install"))
    with pytest.raises(lock.LockError, match="does not match its sha256"):
        lock.check_integrity(_lock(builds=(edited,)))


def test_source_that_is_not_the_recipes_is_caught() -> None:
    with pytest.raises(lock.LockError, match="is not the one its recipe builds"):
        lock.check_integrity(_lock(builds=(_build(source_sha256="e" * 64),)))


def test_edited_spec_is_caught() -> None:
    b = _build()
    with pytest.raises(lock.LockError, match="content hash"):
        lock.check_integrity(_lock(builds=(replace(b, spec={**b.spec, "license": "GPL"}),)))
    with pytest.raises(lock.LockError, match="does not know: colour"):
        lock.check_integrity(_lock(builds=(replace(b, spec={**b.spec, "colour": 1}),)))
