"""normalize(): two builds that differ only in time, paths and modes become the same bytes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import zstandard

from recipegen.reproducible import (
    canonical_placeholder,
    differences,
    normalize,
    read_package,
)

STEM = "demo-1.0-pyh0_0"


def _tar_zst(files: dict[str, tuple[bytes, int]], mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        for name, (data, mode) in files.items():  # insertion order, not sorted
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            info.uid, info.uname = 1000, "builder"
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor(level=3).compress(buffer.getvalue())


def _package(path: Path, *, build_time: int, build_dir: str, umask_mode: int) -> Path:
    """A .conda as rattler-build leaves it: build time, build paths and modes in it."""
    placeholder = (build_dir + "/host_env" + "_placehold" * 30)[:255]
    script = b"#!" + placeholder.encode() + b"/bin/python\nprint('hi')\n"
    pkg = {
        "site-packages/demo/__init__.py": (b"x = 1\n", umask_mode),
        "bin/demo": (script, 0o775),
    }
    paths = {"paths": [
        {"_path": "bin/demo", "path_type": "hardlink", "file_mode": "text",
         "prefix_placeholder": placeholder,
         "sha256": hashlib.sha256(script).hexdigest(), "size_in_bytes": len(script)},
        {"_path": "site-packages/demo/__init__.py", "path_type": "hardlink",
         "sha256": hashlib.sha256(b"x = 1\n").hexdigest(), "size_in_bytes": 6},
    ], "paths_version": 1}
    info = {
        "info/index.json": (json.dumps({"name": "demo", "version": "1.0",
                                        "timestamp": build_time * 1000}).encode(), 0o644),
        "info/about.json": (json.dumps({"channels": [f"file://{build_dir}/channel/",
                                                     "https://conda.anaconda.org/x/"],
                                        "license": "MIT"}).encode(), umask_mode),
        "info/paths.json": (json.dumps(paths).encode(), 0o644),
        "info/recipe/recipe.yaml": (b"package: {name: demo}\n", 0o644),
        "info/recipe/rendered_recipe.yaml": (f"work_dir: {build_dir}/work\n".encode(), 0o644),
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", b'{"conda_pkg_format_version":2}')
        archive.writestr(f"pkg-{STEM}.tar.zst", _tar_zst(pkg, build_time))
        archive.writestr(f"info-{STEM}.tar.zst", _tar_zst(info, build_time))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_builds_become_identical(tmp_path: Path) -> None:
    a = _package(tmp_path / "a.conda", build_time=1_700_000_000,
                 build_dir="/tmp/root-one/staging/demo-1-2/out", umask_mode=0o664)
    b = _package(tmp_path / "b.conda", build_time=1_800_000_123,
                 build_dir="/var/tmp/another-root/staging/demo-99-7/out", umask_mode=0o644)
    assert _sha(a) != _sha(b)
    normalize(a, timestamp=1_600_000_000)
    normalize(b, timestamp=1_600_000_000)
    assert _sha(a) == _sha(b)
    assert differences(a, b) == []
    # Idempotent: normalizing a normalized package changes nothing.
    before = _sha(a)
    normalize(a, timestamp=1_600_000_000)
    assert _sha(a) == before


def test_what_normalize_writes(tmp_path: Path) -> None:
    build_dir = "/tmp/root-one/staging/demo-1-2/out"
    src = _package(tmp_path / "src.conda", build_time=1_700_000_000, build_dir=build_dir,
                   umask_mode=0o664)
    out = tmp_path / "out" / "demo.conda"
    leaks = normalize(src, timestamp=1_600_000_000, dest=out, build_paths=(build_dir,))
    assert leaks == []  # the only build paths were in the placeholder and rendered recipe
    _metadata, info, pkg, stem = read_package(out)
    assert stem == STEM
    infos = {m.name: m for m in info}
    files = {m.name: m for m in pkg}
    assert "info/recipe/rendered_recipe.yaml" not in infos
    assert "info/recipe/recipe.yaml" in infos
    assert json.loads(infos["info/index.json"].data)["timestamp"] == 1_600_000_000_000
    assert json.loads(infos["info/about.json"].data)["channels"] == [
        "https://conda.anaconda.org/x/"]
    entry = next(p for p in json.loads(infos["info/paths.json"].data)["paths"]
                 if p["_path"] == "bin/demo")
    assert entry["prefix_placeholder"] == canonical_placeholder(255)
    script = files["bin/demo"].data
    assert canonical_placeholder(255).encode() in script and build_dir.encode() not in script
    assert entry["sha256"] == hashlib.sha256(script).hexdigest()
    assert entry["size_in_bytes"] == len(script)
    assert files["bin/demo"].mode == 0o755
    assert files["site-packages/demo/__init__.py"].mode == 0o644
    assert {m.mtime for m in (*info, *pkg)} == {1_600_000_000}
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["metadata.json", f"pkg-{STEM}.tar.zst",
                                      f"info-{STEM}.tar.zst"]
        assert {i.date_time for i in archive.infolist()} == {(2020, 9, 13, 12, 26, 40)}


def test_leftover_build_paths_are_reported(tmp_path: Path) -> None:
    build_dir = "/tmp/root-one/staging/demo-1-2/out"
    src = _package(tmp_path / "src.conda", build_time=1, build_dir=build_dir, umask_mode=0o644)
    # A path that is not the host prefix placeholder (e.g. the work dir) stays, and is named.
    assert normalize(src, timestamp=0, build_paths=("/tmp/root-one",)) == []
    assert normalize(src, timestamp=0, build_paths=("x = 1",)) == [
        "site-packages/demo/__init__.py"]


def test_differences_names_changed_members(tmp_path: Path) -> None:
    a = _package(tmp_path / "a.conda", build_time=1, build_dir="/a", umask_mode=0o644)
    b = _package(tmp_path / "b.conda", build_time=1, build_dir="/a", umask_mode=0o664)
    assert differences(a, b) == ["info/about.json: metadata (mode or mtime) differs",
                                 "site-packages/demo/__init__.py: metadata (mode or mtime) "
                                 "differs"]
    normalize(a, timestamp=5)
    normalize(b, timestamp=6)
    assert "info/index.json: content differs" in differences(a, b)
