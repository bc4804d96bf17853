"""Which conda packages exist, in which versions: one batched query over every channel.

A channel that cannot be reached fails the query loudly and by name; a silent
"everything is missing" would make recipegen rebuild the world from PyPI.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from recipegen.errors import RecipegenError

CONDA_FORGE = "conda-forge"


def channel_url(channel: str) -> str:
    """A channel as py-rattler understands it: local directories become ``file://`` URLs."""
    if "://" in channel:
        return channel.rstrip("/")
    path = Path(channel).expanduser()
    if path.is_dir() or channel.startswith((".", "/", "~")):
        return Path(os.path.abspath(path)).as_uri()
    return f"https://conda.anaconda.org/{channel}"


def is_local(channel: str) -> bool:
    return channel_url(channel).startswith("file://")


def local_path(channel: str) -> Path:
    """The directory of a ``file://`` channel."""
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(channel_url(channel)).path))


@dataclass(frozen=True)
class ChannelPackage:
    """One package file a channel offers."""

    name: str
    version: str
    build: str
    channel: str
    subdir: str
    file_name: str
    url: str
    sha256: str | None
    depends: tuple[str, ...]


@dataclass(frozen=True)
class Availability:
    """Every version of the asked-for names, across all channels (channel order kept)."""

    channels: tuple[str, ...]
    packages: dict[str, tuple[ChannelPackage, ...]] = field(compare=False, hash=False)

    def of(self, name: str) -> tuple[ChannelPackage, ...]:
        return self.packages.get(name, ())


_GATEWAYS: dict[tuple[str, bool], object] = {}


def make_gateway(cache_dir: Path | None, *, offline: bool = False):  # -> rattler.Gateway
    """A Gateway with its disk cache under the work root; ``offline`` uses only that cache.

    One per cache and mode in a process: a Gateway keeps the repodata it read in memory, so
    planning and the final solve read each channel once. A channel that changed meanwhile
    (the local one, after builds) must be :func:`forget` -ten first.
    """
    key = (str(cache_dir), offline)
    if key not in _GATEWAYS:
        from rattler import Gateway, SourceConfig

        config = SourceConfig(cache_action="force-cache-only" if offline else "cache-or-fetch",
                              sharded_enabled=False)
        _GATEWAYS[key] = Gateway(cache_dir=cache_dir, default_config=config)
    return _GATEWAYS[key]


def forget(gateway, channel: str) -> None:
    """Drop what ``gateway`` holds in memory of ``channel``: the next query reads it anew."""
    from rattler import Channel

    gateway.clear_repodata_cache(Channel(channel_url(channel)))


def _unreachable(channel: str, exc: BaseException) -> RecipegenError:
    local = is_local(channel)
    hint = (
        "create it with 'recipegen seed --channel DIR' or pass an existing channel with -c"
        if local
        else "no conda channel may be reachable from here: run 'recipegen seed' and pass "
        "-c recipes-out/seed, or use --offline to work from cached repodata"
    )
    return RecipegenError(f"conda channel {channel} cannot be read: {exc}", hint=hint)


def check_local_channel(channel: str) -> None:
    """A ``file://`` channel must exist and be indexed; py-rattler would say little."""
    if not is_local(channel):
        return
    path = local_path(channel)
    if not path.is_dir():
        raise _unreachable(channel, FileNotFoundError(f"{path} does not exist"))
    if not (path / "noarch" / "repodata.json").exists():
        raise _unreachable(channel, FileNotFoundError(f"{path}/noarch/repodata.json is missing"))


async def _query(gateway, channels: list[str], platforms: list[str], names: list[str]):
    from rattler import Channel

    return await gateway.query([Channel(c) for c in channels], platforms, names,
                               recursive=False, channel_relations="disabled")


def query(channels: list[str], platform: str, names: list[str], *, gateway) -> Availability:
    """All records for ``names`` in ``channels`` (by URL) for ``platform`` and noarch."""
    from rattler.exceptions import GatewayError

    urls = [channel_url(c) for c in channels]
    for url in urls:
        check_local_channel(url)
    platforms = [platform, "noarch"]
    packages: dict[str, list[ChannelPackage]] = {}
    if not urls or not names:
        return Availability(tuple(urls), {})
    try:
        result = asyncio.run(_query(gateway, urls, platforms, sorted(set(names))))
    except GatewayError as exc:
        # One failing channel fails the whole query: find out which, to name it.
        for url in urls:
            try:
                asyncio.run(_query(gateway, [url], platforms, sorted(set(names))[:1]))
            except GatewayError as one:
                raise _unreachable(url, one) from one
        raise _unreachable(", ".join(urls), exc) from exc
    for records in result:  # one list per (channel, platform) pair
        for rec in records:
            pkg = ChannelPackage(
                name=rec.name.normalized,
                version=str(rec.version),
                build=str(rec.build),
                channel=str(rec.channel).rstrip("/"),
                subdir=rec.subdir,
                file_name=rec.file_name,
                url=str(rec.url),
                sha256=rec.sha256.hex() if rec.sha256 else None,
                depends=tuple(rec.depends),
            )
            packages.setdefault(pkg.name, []).append(pkg)
    return Availability(tuple(urls), {k: tuple(v) for k, v in packages.items()})
