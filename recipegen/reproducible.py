"""Make a built ``.conda`` the same bytes wherever and whenever it is built.

rattler-build's output differs per build in three ways: the build time (``info/index.json``
``timestamp``, every archive member's mtime, the zip entries' dates), the absolute build
paths (``info/recipe/rendered_recipe.yaml``, the local channel in ``info/about.json``, the
padded host prefix in files that carry a prefix placeholder), and file modes that follow
the umask. :func:`normalize` rewrites a package with all of these fixed: one timestamp
given by the caller, no rendered recipe (the plain ``recipe.yaml`` stays), ``file://``
channels dropped, a canonical placeholder of the same length (so binary prefix
replacement still works), sorted members with fixed owner, mode and mtime, and
single-threaded zstd at a fixed level.

The package's contents (the installed files, ``paths.json`` apart from hashes of rewritten
placeholder files, tests, licences, link.json) are not otherwise touched.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recipegen.fsutil import atomic_write

#: zstd level for both inner archives (conda-build's default for ``.conda``).
ZSTD_LEVEL = 19
#: What rattler-build pads host prefixes with; the canonical placeholder repeats it.
_PLACEHOLDER_UNIT = "_placehold"
_PLACEHOLDER_STEM = "/recipegen/host_env"
#: Files that only describe one build (absolute paths, times) and are left out.
_DROPPED = frozenset({"info/recipe/rendered_recipe.yaml"})
#: Zip can't store dates before 1980.
_ZIP_EPOCH = 315532800


@dataclass(frozen=True)
class Member:
    """One archive member as read: enough to write it back exactly."""

    name: str
    kind: bytes  # tarfile.REGTYPE, SYMTYPE, LNKTYPE or DIRTYPE
    mode: int
    data: bytes = b""
    linkname: str = ""
    mtime: int = 0


def canonical_placeholder(length: int) -> str:
    """A fixed host-prefix placeholder of exactly ``length`` characters."""
    text = _PLACEHOLDER_STEM
    while len(text) < length:
        text += _PLACEHOLDER_UNIT
    return text[:length]


def _read_tar_zst(blob: bytes) -> list[Member]:
    import tarfile

    import zstandard

    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
    members: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar:
            data = b""
            if info.isreg():
                fh = tar.extractfile(info)
                data = fh.read() if fh is not None else b""
            members.append(Member(info.name, info.type, info.mode, data, info.linkname,
                                  int(info.mtime)))
    return members


def _write_tar_zst(members: list[Member], mtime: int) -> bytes:
    import tarfile

    import zstandard

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for member in sorted(members, key=lambda m: m.name):
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.kind == tarfile.SYMTYPE:
                info.mode = 0o777
                info.linkname = member.linkname
                tar.addfile(info)
            elif member.kind == tarfile.LNKTYPE:
                info.mode = 0o755 if member.mode & 0o111 else 0o644
                info.linkname = member.linkname
                tar.addfile(info)
            elif member.kind == tarfile.DIRTYPE:
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = 0o755 if member.mode & 0o111 else 0o644
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0).compress(buffer.getvalue())


def _zip_date(timestamp: int) -> tuple[int, int, int, int, int, int]:
    moment = datetime.fromtimestamp(max(timestamp, _ZIP_EPOCH), UTC)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute,
            moment.second)


def read_package(path: Path) -> tuple[bytes, list[Member], list[Member], str]:
    """``metadata.json``, info members, pkg members and the archive stem of a ``.conda``."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        info_name = next((n for n in names if n.startswith("info-") and n.endswith(".tar.zst")),
                         None)
        pkg_name = next((n for n in names if n.startswith("pkg-") and n.endswith(".tar.zst")),
                        None)
        if info_name is None or pkg_name is None or "metadata.json" not in names:
            raise ValueError(f"{path} is not a .conda package (v2 format)")
        metadata = archive.read("metadata.json")
        info = _read_tar_zst(archive.read(info_name))
        pkg = _read_tar_zst(archive.read(pkg_name))
    return metadata, info, pkg, info_name.removeprefix("info-").removesuffix(".tar.zst")


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _fix_info(info: list[Member], pkg: list[Member], timestamp: int) -> tuple[list[Member],
                                                                                list[Member]]:
    by_name = {m.name: m for m in info}
    files = {m.name: m for m in pkg}
    out_pkg = dict(files)
    if "info/paths.json" in by_name:
        paths = json.loads(by_name["info/paths.json"].data)
        changed = False
        for entry in paths.get("paths", []):
            old = entry.get("prefix_placeholder")
            member = files.get(entry.get("_path", ""))
            if not old or member is None:
                continue
            new = canonical_placeholder(len(old))
            data = member.data.replace(old.encode(), new.encode())
            out_pkg[member.name] = Member(member.name, member.kind, member.mode, data)
            entry["prefix_placeholder"] = new
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["size_in_bytes"] = len(data)
            changed = True
        if changed:
            old_member = by_name["info/paths.json"]
            by_name["info/paths.json"] = Member(old_member.name, old_member.kind,
                                                old_member.mode, _json_bytes(paths))
    if "info/index.json" in by_name:
        index = json.loads(by_name["info/index.json"].data)
        index["timestamp"] = timestamp * 1000
        m = by_name["info/index.json"]
        by_name[m.name] = Member(m.name, m.kind, m.mode, _json_bytes(index))
    if "info/about.json" in by_name:
        about = json.loads(by_name["info/about.json"].data)
        channels = [c for c in about.get("channels") or [] if not c.startswith("file:")]
        if channels:
            about["channels"] = channels
        else:
            about.pop("channels", None)
        m = by_name["info/about.json"]
        by_name[m.name] = Member(m.name, m.kind, m.mode, _json_bytes(about))
    kept = [m for name, m in by_name.items() if name not in _DROPPED]
    return kept, list(out_pkg.values())


def normalize(package: Path, *, timestamp: int, dest: Path | None = None,
              build_paths: tuple[str, ...] = ()) -> list[str]:
    """Rewrite ``package`` (into ``dest``, default in place) reproducibly; see the module doc.

    ``timestamp`` (seconds since the epoch) becomes the package's build time and every
    member's mtime. Returns the members that still contain one of ``build_paths``: such a
    package cannot be the same bytes when built elsewhere.
    """
    import zipfile

    metadata, info, pkg, stem = read_package(package)
    info, pkg = _fix_info(info, pkg, timestamp)
    leaks = sorted(m.name for m in (*info, *pkg)
                   if any(p.encode() in m.data for p in build_paths if p))
    date = _zip_date(timestamp)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in (("metadata.json", metadata),
                           (f"pkg-{stem}.tar.zst", _write_tar_zst(pkg, timestamp)),
                           (f"info-{stem}.tar.zst", _write_tar_zst(info, timestamp))):
            entry = zipfile.ZipInfo(name, date_time=date)
            entry.compress_type = zipfile.ZIP_STORED
            entry.create_system = 3
            entry.external_attr = 0o100644 << 16
            archive.writestr(entry, data)
    atomic_write(dest or package, buffer.getvalue(), prefix=".normalize-")
    return leaks


def manifest(package: Path) -> dict[str, str]:
    """Every member of a package → a digest of its content and tar metadata (for diffs)."""
    _metadata, info, pkg, _stem = read_package(package)
    out: dict[str, str] = {}
    for m in (*info, *pkg):
        digest = hashlib.sha256(m.data).hexdigest()[:16]
        out[m.name] = f"{digest} mode={m.mode:o} mtime={m.mtime} {m.linkname}".rstrip()
    return out


def differences(a: Path, b: Path) -> list[str]:
    """Members that differ between two packages, each with a short reason."""
    left, right = manifest(a), manifest(b)
    out: list[str] = []
    for name in sorted(left.keys() | right.keys()):
        if name not in right:
            out.append(f"{name}: only in {a.name} ({a.parent})")
        elif name not in left:
            out.append(f"{name}: only in the rebuild")
        elif left[name] != right[name]:
            same_content = left[name].split()[0] == right[name].split()[0]
            out.append(f"{name}: " + ("metadata (mode or mtime) differs" if same_content
                                      else "content differs"))
    return out
