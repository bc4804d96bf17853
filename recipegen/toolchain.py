"""Which compilers a source distribution needs, in recipe terms.

A package that compiles anything is not ``noarch: python``: it gets an arch recipe with
``${{ compiler(...) }}`` build requirements for each language found in its sources or
implied by its build backend (maturin and setuptools-rust mean Rust; scikit-build and
meson-python mean CMake or Meson with Ninja).
"""

from __future__ import annotations

from dataclasses import dataclass

from recipegen.archive import SdistInfo

SUFFIXES = {
    ".c": "c", ".h": "c",
    ".cc": "cxx", ".cpp": "cxx", ".cxx": "cxx", ".hpp": "cxx", ".hh": "cxx",
    ".pyx": "c", ".pxd": "c",
    ".rs": "rust",
    ".f": "fortran", ".f90": "fortran", ".f95": "fortran",
}
#: Build backends (module prefix) → languages and build tools they bring.
BACKENDS = {
    "maturin": ({"rust", "c"}, ()),
    "setuptools_rust": ({"rust", "c"}, ()),
    "scikit_build_core": ({"c", "cxx"}, ("cmake", "ninja")),
    "skbuild": ({"c", "cxx"}, ("cmake", "ninja")),
    "mesonpy": ({"c"}, ("meson", "ninja", "pkg-config")),
}
#: Folders whose sources are never compiled into the package.
NOT_BUILT = ("tests/", "test/", "docs/", "doc/", "examples/", "benchmarks/", "bench/")
#: Build backends of pure-Python packages.
PURE_BACKENDS = ("flit_core", "hatchling", "poetry.core", "pdm.backend", "setuptools",
                 "whey", "uv_build")


@dataclass(frozen=True)
class Toolchain:
    languages: frozenset[str]
    tools: tuple[str, ...] = ()

    @property
    def compiles(self) -> bool:
        return bool(self.languages)

    def build_requirements(self, *, stdlib: bool) -> tuple[str, ...]:
        """``build:`` entries: one ``compiler()`` per language, conda-forge's order."""
        order = ("c", "cxx", "fortran", "rust")
        out = [f"${{{{ compiler('{lang}') }}}}" for lang in order if lang in self.languages]
        if stdlib and self.languages & {"c", "cxx", "fortran", "rust"}:
            out.append("${{ stdlib('c') }}")
        out.extend(self.tools)
        return tuple(out)


def detect(info: SdistInfo | None) -> Toolchain:
    """Languages an sdist compiles, from its files and its build backend."""
    if info is None:
        return Toolchain(frozenset())
    languages: set[str] = set()
    tools: tuple[str, ...] = ()
    backend = str(info.build_system.get("build-backend") or "").replace("-", "_")
    for prefix, (langs, extra_tools) in BACKENDS.items():
        if backend.startswith(prefix):
            languages |= langs
            tools = extra_tools
    for path in info.files:
        if path.startswith(NOT_BUILT) or "/tests/" in path:
            continue
        if path.endswith("Cargo.toml"):
            languages |= {"rust", "c"}
        for suffix, lang in SUFFIXES.items():
            if path.endswith(suffix):
                languages.add(lang)
    # A header alone (vendored for a C API user, shipped as data) does not make a compiler.
    if languages == {"c"} and not any(p.endswith((".c", ".pyx")) for p in info.files
                                      if not p.startswith(NOT_BUILT)):
        languages = set()
    return Toolchain(frozenset(languages), tools)
