"""A package index in a thread, for input PyPI cannot give: hostile sdists, a failing index.

It serves what pip and recipegen read from PyPI: PEP 503 simple pages (``/simple/``), the
JSON API (``/pypi/<name>/json``, with file URLs relative to the document, like this
machine's mirror) and the files (``/files/``). ``behave`` makes a path misbehave (an HTTP
status, a hang, other bytes than advertised); ``hits`` counts requests per path.

The sdists are real: an in-tree PEP 517 backend (``_build/backend.py``, no build
requirements) builds the wheel, so pip, grayskull and rattler-build treat them like any
sdist without reaching another index. Hooks (Python source) run inside the backend at
``metadata`` and ``build`` time, or as the sdist's ``setup.py``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import tarfile
import threading
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name

#: The in-tree backend. ``HOOKS`` maps a stage ("metadata", "build") to Python source run
#: before the stage; ``SCRIPTS`` are console scripts (name -> "module:function").
BACKEND = '''\
import base64, hashlib, json, os, zipfile
from pathlib import Path

HOOKS = json.loads(%(hooks)r)
SCRIPTS = json.loads(%(scripts)r)
ROOT = Path(__file__).resolve().parent.parent


def _hook(stage):
    code = HOOKS.get(stage)
    if code:
        exec(compile(code, f"<{stage} hook>", "exec"), {"__name__": "hook"})


def _metadata():
    text = (ROOT / "PKG-INFO").read_text(encoding="utf-8")
    fields = dict(line.split(": ", 1) for line in text.split("\\n\\n")[0].splitlines()
                  if ": " in line and not line.startswith(" "))
    return text, fields["Name"], fields["Version"]


def _dist_info(name, version):
    return name.replace("-", "_") + "-" + version + ".dist-info"


def _meta_files():
    text, name, version = _metadata()
    files = {"METADATA": text.encode(),
             "WHEEL": b"Wheel-Version: 1.0\\nGenerator: fake\\nRoot-Is-Purelib: true\\n"
                      b"Tag: py3-none-any\\n"}
    if SCRIPTS:
        lines = ["[console_scripts]"] + [f"{k} = {v}" for k, v in SCRIPTS.items()]
        files["entry_points.txt"] = ("\\n".join(lines) + "\\n").encode()
    return name, version, files


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _hook("metadata")
    name, version, files = _meta_files()
    target = Path(metadata_directory) / _dist_info(name, version)
    target.mkdir(parents=True, exist_ok=True)
    for file, data in files.items():
        (target / file).write_bytes(data)
    return target.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _hook("build")
    name, version, files = _meta_files()
    dist_info = _dist_info(name, version)
    wheel = name.replace("-", "_") + "-" + version + "-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as zf:
        members = [(str(p.relative_to(ROOT)), p.read_bytes())
                   for p in sorted(ROOT.rglob("*.py"))
                   if p.relative_to(ROOT).parts[0] not in ("_build", "setup.py")]
        members += [(dist_info + "/" + k, v) for k, v in files.items()]
        for arcname, data in members:
            zf.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arcname},sha256={digest.decode()},{len(data)}")
        record.append(dist_info + "/RECORD,,")
        zf.writestr(dist_info + "/RECORD", "\\n".join(record) + "\\n")
    return wheel
'''

CLI = '''\
import sys


def main():
    print("usage: this command takes no arguments")
    return 0 if sys.argv[1:] in ([], ["--help"]) else 2
'''


@dataclass
class Project:
    """One release of a made-up project and the metadata it declares."""

    name: str
    version: str = "1.0"
    summary: str = "a made-up package for recipegen's tests"
    description: str = "A made-up package."
    license: str | None = "MIT"
    license_file: str | None = "MIT License\n\nCopyright (c) the makers of a test package\n"
    home_page: str | None = None
    project_urls: dict[str, str] = field(default_factory=dict)
    requires_dist: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    scripts: dict[str, str] = field(default_factory=dict)  # name -> "module:function"
    hooks: dict[str, str] = field(default_factory=dict)  # stage -> Python source
    setup_py: str | None = None  # a setup.py (grayskull runs it); None: none
    extra_members: tuple[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes], ...] = ()
    wheel: bool = False  # also offer a py3-none-any wheel (pip then skips the sdist)
    pyproject_project: bool = False  # a PEP 621 [project] table (grayskull reads it)
    declared_scripts: dict[str, str] = field(default_factory=dict)  # [project.scripts] only
    init_source: str = ""  # more code for the package's __init__.py

    @property
    def module(self) -> str:
        return canonicalize_name(self.name).replace("-", "_")

    @property
    def base(self) -> str:
        return f"{self.name}-{self.version}"

    def pkg_info(self) -> str:
        lines = ["Metadata-Version: 2.1", f"Name: {self.name}", f"Version: {self.version}",
                 f"Summary: {_one_line(self.summary)}"]
        if self.home_page:
            lines.append(f"Home-page: {self.home_page}")
        if self.license:
            lines.append(f"License: {_one_line(self.license)}")
        lines += [f"Project-URL: {label}, {url}" for label, url in self.project_urls.items()]
        lines += [f"Provides-Extra: {extra}" for extra in self.extras]
        lines += [f"Requires-Dist: {req}" for req in self.requires_dist]
        lines.append("Description-Content-Type: text/plain")
        return "\n".join(lines) + "\n\n" + self.description + "\n"

    def package_files(self) -> dict[str, bytes]:
        files = {f"{self.module}/__init__.py":
                 f"NAME = {self.name!r}\n{self.init_source}".encode()}
        if self.scripts:
            files[f"{self.module}/cli.py"] = CLI.encode()
        return files

    def pyproject(self) -> str:
        text = ('[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                'backend-path = ["_build"]\n')
        if not self.pyproject_project:
            return text
        lines = ["", "[project]", f"name = {_toml(self.name)}", f"version = {_toml(self.version)}",
                 f"description = {_toml(self.summary)}"]
        if self.license:
            lines.append(f"license = {{text = {_toml(self.license)}}}")
        scripts = {**self.scripts, **self.declared_scripts}
        if scripts:
            lines += ["", "[project.scripts]",
                      *(f"{_toml(k)} = {_toml(v)}" for k, v in scripts.items())]
        if self.project_urls:
            lines += ["", "[project.urls]",
                      *(f"{_toml(k)} = {_toml(v)}" for k, v in self.project_urls.items())]
        return text + "\n".join(lines) + "\n"

    def sdist(self) -> bytes:
        backend = BACKEND % {"hooks": json.dumps(self.hooks), "scripts": json.dumps(self.scripts)}
        files = {
            "PKG-INFO": self.pkg_info().encode(),
            "pyproject.toml": self.pyproject().encode(),
            "_build/backend.py": backend.encode(),
            **self.package_files(),
        }
        if self.license_file is not None:
            files["LICENSE"] = self.license_file.encode()
        if self.setup_py is not None:
            files["setup.py"] = self.setup_py.encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            for rel, data in sorted(files.items()):
                info = tarfile.TarInfo(f"{self.base}/{rel}")
                info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
                tar.addfile(info, io.BytesIO(data))
            for member in self.extra_members:
                info, data = member if isinstance(member, tuple) else (member, b"")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if data else None)
        return buf.getvalue()

    def wheel_bytes(self) -> bytes:
        dist_info = f"{self.module}-{self.version}.dist-info"
        files = {**self.package_files(),
                 f"{dist_info}/METADATA": self.pkg_info().encode(),
                 f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: fake\n"
                                       b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
        if self.scripts:
            lines = ["[console_scripts]", *(f"{k} = {v}" for k, v in self.scripts.items())]
            files[f"{dist_info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
        record = []
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                record.append(f"{name},sha256={digest.decode()},{len(data)}")
            zf.writestr(f"{dist_info}/RECORD", "\n".join([*record, f"{dist_info}/RECORD,,"]))
        return buf.getvalue()

    def info(self) -> dict:
        """The JSON API's ``info`` block, as warehouse writes it from the metadata."""
        urls = dict(self.project_urls)
        if self.home_page:
            urls = {"Homepage": self.home_page, **urls}
        return {"name": self.name, "version": self.version, "summary": self.summary,
                "description": self.description, "description_content_type": "text/plain",
                "license": self.license, "home_page": self.home_page,
                "project_urls": urls or None, "requires_dist": list(self.requires_dist) or None,
                "provides_extra": list(self.extras) or None, "requires_python": None,
                "classifiers": [], "project_url": f"https://pypi.org/project/{self.name}/"}


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for what these tests use)."""
    return json.dumps(text, ensure_ascii=False)


@dataclass
class File:
    filename: str
    data: bytes
    packagetype: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


#: What a misbehaving path does: an HTTP status, "hang" (answer nothing until released),
#: "stall" (send the headers and half the body, then nothing), or bytes to send instead of
#: the real file (its advertised sha256 stays); or a function of the request and how often
#: its path was asked for that says which.
Behaviour = int | str | bytes | Callable[[BaseHTTPRequestHandler, int], "int | str | bytes | None"]


class FakeIndex:
    """A threaded HTTP server with a simple index, the JSON API and the files."""

    def __init__(self) -> None:
        self.projects: dict[str, list[tuple[Project, list[File]]]] = {}
        self.behave: dict[str, Behaviour] = {}  # path prefix -> behaviour
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # set: hanging requests give up
        self.static: Path | None = None  # a directory served under /static/ (a conda channel)
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index._serve(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that give up on a hanging answer reset their connection

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- content -------------------------------------------------------------------------

    def add(self, project: Project) -> Project:
        files = [File(f"{project.base}.tar.gz", project.sdist(), "sdist")]
        if project.wheel:
            files.append(File(f"{project.module}-{project.version}-py3-none-any.whl",
                              project.wheel_bytes(), "bdist_wheel"))
        self.projects.setdefault(canonicalize_name(project.name), []).append((project, files))
        return project

    def file(self, filename: str) -> File:
        for releases in self.projects.values():
            for _project, files in releases:
                for f in files:
                    if f.filename == filename:
                        return f
        raise KeyError(filename)

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self, **extra: str | None) -> dict[str, str | None]:
        """Environment for recipegen (and the pip it runs) to use this index alone."""
        return {"RECIPEGEN_PYPI_URL": f"{self.url}/pypi/",
                "PIP_CONFIG_FILE": "/dev/null",  # not this machine's extra index and wheels
                "PIP_INDEX_URL": f"{self.url}/simple/",
                "PIP_EXTRA_INDEX_URL": None,
                "PIP_FIND_LINKS": None,
                "PIP_TRUSTED_HOST": None,
                **extra}

    def __enter__(self) -> FakeIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- serving -------------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        self.hits[path] += 1
        behaviour = next((b for p, b in self.behave.items() if path.startswith(p)), None)
        if callable(behaviour):
            behaviour = behaviour(req, self.hits[path])
        if behaviour == "hang":
            self.release.wait()
            return
        if isinstance(behaviour, int):
            return self._send(req, behaviour, b"index trouble\n", "text/plain")
        try:
            status, body, ctype = self._content(path)
        except KeyError:
            return self._send(req, 404, b"not found\n", "text/plain")
        if isinstance(behaviour, bytes) and path.startswith("/files/"):
            body = behaviour
        if behaviour == "stall":
            self._send(req, status, body, ctype, stop_after=len(body) // 2)
            self.release.wait()
            return
        self._send(req, status, body, ctype)

    def _content(self, path: str) -> tuple[int, bytes, str]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["simple"] and len(parts) == 2:
            releases = self.projects[canonicalize_name(parts[1])]
            links = "".join(
                f'<a href="/files/{f.filename}#sha256={f.sha256}">{html.escape(f.filename)}'
                "</a><br>\n" for _p, files in releases for f in files)
            return 200, f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode(), \
                "text/html"
        if parts[:1] == ["pypi"] and len(parts) == 3 and parts[2] == "json":
            releases = self.projects[canonicalize_name(parts[1])]
            latest = releases[-1][0]
            doc = {"info": latest.info(), "urls": [], "releases": {
                p.version: [{"filename": f.filename, "url": f"../../files/{f.filename}",
                             "digests": {"sha256": f.sha256}, "packagetype": f.packagetype,
                             "requires_python": None, "size": len(f.data),
                             "upload_time_iso_8601": "2024-01-02T03:04:05.000000Z"}
                            for f in files] for p, files in releases}}
            return 200, json.dumps(doc).encode(), "application/json"
        if parts[:1] == ["files"] and len(parts) == 2:
            return 200, self.file(parts[1]).data, "application/octet-stream"
        if parts[:1] == ["static"] and self.static is not None:
            target = (self.static / "/".join(parts[1:])).resolve()
            if self.static.resolve() in target.parents and target.is_file():
                return 200, target.read_bytes(), "application/octet-stream"
        raise KeyError(path)

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
              stop_after: int | None = None) -> None:
        try:
            req.send_response(status)
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body[:stop_after])
            req.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def closed_port_url() -> str:
    """An address where nothing listens (connections are refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
