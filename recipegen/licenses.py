"""Licence text from PyPI metadata → one SPDX expression, or None.

rattler-build rejects a recipe whose ``license`` is not SPDX, and conda-forge lints
"License" words and unknowns, so guesses are never written: a candidate is used only
when the SPDX licensing parser accepts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

#: Trove classifiers → SPDX ids, for projects whose metadata has nothing better.
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: BSD License": None,  # which BSD is unknown
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Zope Public License": "ZPL-2.1",
    "License :: OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "License :: OSI Approved :: Academic Free License (AFL)": "AFL-3.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

#: Free-text spellings seen in ``License:`` fields.
ALIASES = {
    "mit license": "MIT",
    "the mit license": "MIT",
    "mit/x11": "MIT",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "psf": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "mpl 2.0": "MPL-2.0",
    "mpl-2": "MPL-2.0",
    "lgpl": "LGPL-2.1-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv2": "GPL-2.0-only",
    "isc license": "ISC",
    "public domain": "LicenseRef-Public-Domain",
}


@cache
def _licensing():  # -> license_expression.Licensing
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def spdx(text: str | None) -> str | None:
    """``text`` as a normalized SPDX expression, or None if it is not one."""
    if not text:
        return None
    text = " ".join(text.split())
    if len(text) > 200 or "\n" in text:
        return None  # a whole licence text pasted into the field
    alias = ALIASES.get(text.lower())
    if alias:
        return alias
    if text.startswith("LicenseRef-"):
        return text if text.replace("-", "").replace(".", "").isalnum() else None
    try:
        info = _licensing().validate(text)
    except Exception:  # license_expression itself fails on some input ("MIT AND")
        return None
    if info.errors or not info.normalized_expression:
        return None
    return str(info.normalized_expression)


def from_metadata(*, expression: str | None, license_field: str | None,
                  classifiers: Iterable[str] = (), grayskull: str | None = None) -> str | None:
    """The best SPDX expression the metadata declares (PEP 639 first), or None."""
    for candidate in (expression, license_field):
        found = spdx(candidate)
        if found:
            return found
    ids = sorted({CLASSIFIERS[c] for c in classifiers if CLASSIFIERS.get(c)})
    if ids:
        return " OR ".join(ids) if len(ids) > 1 else ids[0]
    # grayskull's guess comes last: it reads licence files, vendored ones included.
    return spdx(grayskull)
