"""Generated recipes kept per input: a release is turned into a recipe once per target.

The key is everything :func:`recipegen.generate.generate` reads: the resolved
distribution (name, version, metadata), the metadata of the dependencies its extras expand
into, the target's marker environment and python, the flavour and its options, the
release's file list as PyPI lists it now (the project's JSON is fetched with HTTP
validation on every run, as generation does), recipegen's code and data
(:func:`~recipegen.fingerprint.code_fingerprint`, which covers the name-mapping table), the
mapping overrides and grayskull's version. Any change is a miss, and a miss generates
afresh. Entries are written atomically, so parallel runs may share a cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from recipegen.fingerprint import code_fingerprint, installed_version
from recipegen.fsutil import atomic_write
from recipegen.recipe import Conditional, GeneratedRecipe, Note, RecipeSpec
from recipegen.resolve import Resolution, ResolvedDist

if TYPE_CHECKING:
    from recipegen.generate import GenerateContext
    from recipegen.pypi import Release

SCHEMA = 1


# -- GeneratedRecipe ⇄ JSON ----------------------------------------------------------------


def recipe_to_json(recipe: GeneratedRecipe) -> dict:
    return {
        "spec": recipe.spec.as_json(),
        "text": recipe.text,
        "pypi_name": recipe.pypi_name,
        "version": recipe.version,
        "host_requirements": list(recipe.host_requirements),
        "run_requirements": list(recipe.run_requirements),
        "source_sha256": recipe.source_sha256,
        "warnings": list(recipe.warnings),
        "notes": [asdict(n) for n in recipe.notes],
        "source_time": recipe.source_time,
    }


def spec_from_json(data: dict) -> RecipeSpec:
    """A RecipeSpec from ``asdict`` output (lists back to tuples, ``if:`` blocks rebuilt)."""
    known = {f.name for f in fields(RecipeSpec)}
    values = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown recipe field {key!r}")
        if key == "run_conditional":
            value = tuple(Conditional(c["selector"], tuple(c["then"]),
                                      tuple(c.get("otherwise") or ())) for c in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return RecipeSpec(**values)


def recipe_from_json(data: dict) -> GeneratedRecipe:
    return GeneratedRecipe(
        spec=spec_from_json(data["spec"]),
        text=data["text"],
        pypi_name=data["pypi_name"],
        version=data["version"],
        host_requirements=tuple(data["host_requirements"]),
        run_requirements=tuple(data["run_requirements"]),
        source_sha256=data["source_sha256"],
        warnings=tuple(data["warnings"]),
        notes=tuple(Note(**n) for n in data["notes"]),
        source_time=data["source_time"],
    )


# -- the key ---------------------------------------------------------------------------------


def release_files(release: Release) -> list[list]:
    """The release's files as generation sees them (which sdist or wheel, where, when)."""
    return sorted([f.filename, f.url, f.sha256, f.packagetype, f.upload_time]
                  for f in release.files)


def _extras_metadata(dist: ResolvedDist, resolution: Resolution) -> dict[str, list[str]]:
    """Requires-Dist of the dependencies ``dist`` asks extras of (``foo[bar]``)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    out = {}
    for text in dist.requires_dist:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if req.extras and name in resolution.dists:
            out[name] = list(resolution.dists[name].requires_dist)
    return out


def recipe_key(dist: ResolvedDist, resolution: Resolution, ctx: GenerateContext,
               release: Release) -> str:
    data = {
        "schema": SCHEMA,
        "recipegen": code_fingerprint(),
        "grayskull": installed_version("grayskull"),
        "mapping": ctx.mapper.version,
        "dist": {"name": dist.name, "display_name": dist.display_name,
                 "version": dist.version, "requires_dist": list(dist.requires_dist),
                 "requires_python": dist.requires_python,
                 "provides_extra": list(dist.provides_extra), "metadata": dist.metadata},
        "extras": _extras_metadata(dist, resolution),
        "environment": resolution.environment,
        "target": {"python": ctx.python_version, "flavour": ctx.flavour,
                   "prefer_wheel": ctx.prefer_wheel, "python_min": ctx.python_min,
                   "maintainers": list(ctx.maintainers)},
        "release": release_files(release),
    }
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


# -- the cache -------------------------------------------------------------------------------


class RecipeCache:
    """``<dir>/<name>-<version>-<key>.json`` per generated recipe."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, dist: ResolvedDist, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "._-" else "_"
                       for c in f"{dist.name}-{dist.version}")
        return self.directory / f"{safe}-{key[:24]}.json"

    def get(self, dist: ResolvedDist, key: str) -> GeneratedRecipe | None:
        try:
            data = json.loads(self.path(dist, key).read_text())
            if data.get("key") != key:
                return None
            recipe = recipe_from_json(data["recipe"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return replace(recipe, from_cache=True)

    def put(self, dist: ResolvedDist, key: str, recipe: GeneratedRecipe) -> None:
        atomic_write(self.path(dist, key),
                     json.dumps({"key": key, "recipe": recipe_to_json(recipe)}))


def cached_generate(dist: ResolvedDist, resolution: Resolution,
                    ctx: GenerateContext) -> GeneratedRecipe:
    """``generate``, answered from the cache in ``ctx.cache_dir/recipes`` when it can be."""
    release = ctx.pypi.release(dist.display_name, dist.version)
    key = recipe_key(dist, resolution, ctx, release)
    cache = RecipeCache(ctx.cache_dir / "recipes")
    hit = cache.get(dist, key)
    if hit is not None:
        return hit
    from recipegen.generate import generate

    recipe = generate(dist, resolution, ctx)
    cache.put(dist, key, recipe)
    return recipe
