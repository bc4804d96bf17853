"""PyPI's JSON API and file downloads: the only place recipegen talks to PyPI directly.

Mirrors differ from pypi.org (this one answers ``/pypi/<name>/json`` but not the
per-version URL, and gives file URLs relative to the JSON document), so every URL is
resolved with ``urljoin`` and recipes always carry the exact file URL and sha256.
Responses are cached on disk with HTTP validation; downloads are verified before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from recipegen.errors import RecipegenError
from recipegen.fsutil import atomic_write, sha256_file
from recipegen.mapping import normalize as canonicalize_name

if TYPE_CHECKING:
    import requests

DEFAULT_INDEX = "https://pypi.org/pypi/"


def index_url() -> str:
    """The JSON API root; ``RECIPEGEN_PYPI_URL`` points it at a mirror or a test server."""
    url = os.environ.get("RECIPEGEN_PYPI_URL", DEFAULT_INDEX)
    return url if url.endswith("/") else url + "/"


def http_timeout() -> float:
    """Seconds one request to a package index may wait (``RECIPEGEN_HTTP_TIMEOUT``)."""
    return _positive("RECIPEGEN_HTTP_TIMEOUT", 30.0)


def http_tries() -> int:
    """How often a failing request to a package index is tried (``RECIPEGEN_HTTP_TRIES``)."""
    return max(1, int(_positive("RECIPEGEN_HTTP_TRIES", 3)))


def _positive(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise RecipegenError(f"{variable}={text!r} is not a positive number",
                             hint="unset it or set a number of seconds/tries")
    return value


@dataclass(frozen=True)
class DistFile:
    """One file of a release, with an absolute URL."""

    filename: str
    url: str
    sha256: str
    packagetype: str  # "sdist" | "bdist_wheel"
    requires_python: str | None = None
    upload_time: str | None = None  # ISO 8601, UTC

    @property
    def upload_epoch(self) -> int | None:
        """When the file was uploaded, in whole seconds: a stable "build time" for it."""
        if not self.upload_time:
            return None
        from datetime import UTC, datetime

        try:
            moment = datetime.fromisoformat(self.upload_time.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())

    @property
    def is_pure_wheel(self) -> bool:
        """A wheel that runs on any CPython 3 and any platform (``py3-none-any``)."""
        if not self.filename.endswith(".whl"):
            return False
        python, abi, platform = self.filename[:-4].split("-")[-3:]
        return abi == "none" and platform == "any" and "py3" in python.split(".")


@dataclass(frozen=True)
class Release:
    """What PyPI says about one version of a project."""

    name: str
    version: str
    files: tuple[DistFile, ...]
    info: dict

    @property
    def sdist(self) -> DistFile | None:
        sdists = [f for f in self.files if f.packagetype == "sdist"]
        # .tar.gz is the standard (PEP 625); older releases may only have .zip.
        sdists.sort(key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename))
        return sdists[0] if sdists else None

    @property
    def pure_wheel(self) -> DistFile | None:
        wheels = [f for f in self.files if f.is_pure_wheel]
        return wheels[0] if wheels else None


class PyPI:
    """A small PyPI JSON client with an on-disk cache, bounded retries and timeouts."""

    def __init__(self, cache_dir: Path | None = None, *, timeout: float | None = None,
                 retries: int | None = None, offline: bool = False) -> None:
        self.base = index_url()
        self.cache_dir = cache_dir
        self.timeout = timeout or http_timeout()
        self.retries = retries or http_tries()
        self.offline = offline
        import requests  # here: a planned install that talks to no one need not load it

        self._session = requests.Session()
        self._memo: dict[str, dict] = {}

    # -- HTTP -----------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str] | None = None,
             stream: bool = False, package: str | None = None) -> requests.Response:
        """GET with bounded retries on connection errors, timeouts and 5xx; 4xx is final."""
        import requests

        last: str = ""
        for attempt in range(self.retries):
            try:
                resp = self._session.get(url, headers=headers or {}, timeout=self.timeout,
                                         stream=stream)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 500:
                    return resp
                last = f"HTTP {resp.status_code}"
            if attempt + 1 < self.retries:
                time.sleep(min(0.5 * 2**attempt, 4.0))
        raise RecipegenError(
            f"PyPI is not answering at {url} ({last}; tried {self.retries} times, "
            f"{self.timeout:g} s each)" + (f", for {package}" if package else ""),
            hint="check the network or RECIPEGEN_PYPI_URL, then run again "
            "(RECIPEGEN_HTTP_TIMEOUT / RECIPEGEN_HTTP_TRIES to wait longer)",
            package=package,
        )

    def _cache_path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / "json" / f"{key}.json"

    def project(self, name: str) -> dict:
        """The project's JSON document (all releases), validated against the cache."""
        key = canonicalize_name(name)
        if key in self._memo:
            return self._memo[key]
        url = urljoin(self.base, f"{key}/json")
        cache = self._cache_path(key)
        cached: dict | None = None
        if cache is not None and cache.exists():
            try:
                cached = json.loads(cache.read_text())
            except ValueError:
                cached = None
        if self.offline:
            if cached is None:
                raise RecipegenError(f"no cached PyPI data for {name!r} and --offline is set",
                                     package=name)
            self._memo[key] = cached["body"]
            return cached["body"]
        headers = {"Accept": "application/json"}
        if cached and cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached and cached.get("last_modified"):
            headers["If-Modified-Since"] = cached["last_modified"]
        resp = self._get(url, headers=headers, package=name)
        if resp.status_code == 304 and cached is not None:
            body = cached["body"]
        elif resp.status_code == 404:
            raise RecipegenError(f"{name!r} is not a project on PyPI ({url} answered 404)",
                                 hint="check the spelling of the package name", package=name)
        elif resp.status_code != 200:
            raise RecipegenError(f"PyPI answered HTTP {resp.status_code} for {url} ({name})",
                                 package=name)
        else:
            try:
                body = resp.json()
            except ValueError as exc:
                raise RecipegenError(f"PyPI sent invalid JSON for {name!r}: {exc}",
                                     package=name) from exc
            body["_url"] = url
            if cache is not None:
                atomic_write(cache, json.dumps({
                    "etag": resp.headers.get("ETag"),
                    "last_modified": resp.headers.get("Last-Modified"),
                    "body": body,
                }).encode())
        self._memo[key] = body
        return body

    def release(self, name: str, version: str) -> Release:
        """One release with absolute file URLs; a clear error if PyPI has no such version."""
        doc = self.project(name)
        releases = doc.get("releases") or {}
        files = releases.get(version)
        if files is None:
            # PyPI versions are matched after normalization (1.0 == 1.0.0 is *not* assumed).
            from packaging.version import InvalidVersion, Version

            try:
                wanted = Version(version)
                for key, value in releases.items():
                    try:
                        if Version(key) == wanted:
                            files = value
                            break
                    except InvalidVersion:
                        continue
            except InvalidVersion:
                pass
        if files is None:
            raise RecipegenError(f"PyPI has no release {version} of {name}", package=name,
                                 hint=f"see {urljoin(self.base, canonicalize_name(name))}/json")
        base = doc.get("_url") or urljoin(self.base, f"{canonicalize_name(name)}/json")
        dist_files = tuple(
            DistFile(
                filename=f["filename"],
                url=urljoin(base, f["url"]),
                sha256=f["digests"]["sha256"],
                packagetype=f.get("packagetype", ""),
                requires_python=f.get("requires_python"),
                upload_time=f.get("upload_time_iso_8601") or f.get("upload_time"),
            )
            for f in files
        )
        return Release(name=doc["info"]["name"], version=version, files=dist_files,
                       info=doc.get("info") or {})

    # -- files ----------------------------------------------------------------------------

    def download(self, file: DistFile, dest_dir: Path) -> Path:
        """Fetch a file into ``dest_dir`` (a cache), verify its sha256, return its path.

        A file already there is re-hashed rather than trusted; a mismatch is never used.
        """
        import requests

        dest = dest_dir / file.sha256[:2] / file.sha256 / file.filename
        if dest.exists() and sha256_file(dest) == file.sha256:
            return dest
        if self.offline:
            raise RecipegenError(f"{file.filename} is not in the cache and --offline is set")
        dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.retries + 1):
            resp = self._get(file.url, stream=True, package=file.filename)
            if resp.status_code != 200:
                raise RecipegenError(f"downloading {file.url} failed: HTTP {resp.status_code}",
                                     hint="check the index (RECIPEGEN_PYPI_URL), then run again")
            try:
                digest = _fetch_into(resp, dest, file.sha256)
            except requests.RequestException as exc:  # the body stalled or broke off
                if attempt == self.retries:
                    raise RecipegenError(
                        f"downloading {file.url} failed: {type(exc).__name__}: {exc} "
                        f"(tried {self.retries} times)",
                        hint="check the network or RECIPEGEN_PYPI_URL, then run again") from exc
                continue
            if digest != file.sha256:
                raise RecipegenError(
                    f"sha256 mismatch for {file.filename}: the index says {file.sha256}, "
                    f"the file downloaded from {file.url} has {digest}",
                    hint="the file on the index changed or the download was corrupted; "
                    "nothing was run or built from it",
                )
            break
        return dest


def _fetch_into(resp: requests.Response, dest: Path, sha256: str) -> str:
    """Stream a response to ``dest``, renamed into place only if whole and its sha256
    matches; return the sha256 it has."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in resp.iter_content(1 << 16):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() == sha256:
            os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest.hexdigest()


_PYPI_FILE_PATH = re.compile(r"/packages/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{60})/([^/?#]+)$")


def public_url(url: str) -> str:
    """The file's address on pypi.org's own file host, for recipes published elsewhere.

    Mirrors serve PyPI's files under their own prefixes; a recipe for conda-forge must name
    the canonical ``files.pythonhosted.org`` address (the same file, the same sha256).
    """
    match = _PYPI_FILE_PATH.search(url)
    if match is None:
        return url
    return "https://files.pythonhosted.org/packages/{}/{}/{}/{}".format(*match.groups())


