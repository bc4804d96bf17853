"""The baseline of the warm benchmark: a bare py-rattler solve and install.

``python bare_rattler.py PREFIX CHANNEL[,CHANNEL...] SPEC [SPEC...]`` solves SPECs against
the channels (with the machine's virtual packages, as recipegen does) and installs the
result into PREFIX, with rattler's default package cache. It prints the installed
packages as JSON, then exits without interpreter finalization, as recipegen's CLI does
(py-rattler's threads can crash a finalizing interpreter).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys


def main() -> int:
    from rattler import Channel, VirtualPackage, install, solve

    prefix, channels, *specs = sys.argv[1:]

    async def run() -> list:
        records = await solve(sources=[Channel(c) for c in channels.split(",")], specs=specs,
                              platforms=["linux-64", "noarch"],
                              virtual_packages=VirtualPackage.detect())
        await install(records, target_prefix=prefix, show_progress=False)
        return records

    records = asyncio.run(run())
    print(json.dumps(sorted(f"{r.name.normalized} {r.version} {r.build}" for r in records)))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
