"""An index or a channel that is away, slow or failing: bounded retries with a timeout,
then one clear error that names it; ``--offline`` works from cached repodata.

``RECIPEGEN_HTTP_TIMEOUT=3`` and ``RECIPEGEN_HTTP_TRIES=2`` (``hostile.HTTP_ENV``) bound
both recipegen's own PyPI client and the pip it runs; the hit counts prove the bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import snapshot
from fakeindex import Project, closed_port_url
from hostile import HTTP_ENV, Scene, assert_failed_clearly, assert_unchanged, events

pytestmark = pytest.mark.e2e

TRIES = int(HTTP_ENV["RECIPEGEN_HTTP_TRIES"])


@pytest.fixture(autouse=True)
def projects(fake_index_server) -> None:
    if "net-wheel" not in fake_index_server.projects:
        fake_index_server.add(Project("net-sdist"))
        fake_index_server.add(Project("net-wheel", wheel=True))


def _requests_only(status: int | str):
    """Misbehave for recipegen's own client (python-requests), not for pip."""
    return lambda req, _n: status if "python-requests" in req.headers.get("User-Agent", "") \
        else None


# -- the package index, as pip sees it -----------------------------------------------------


def test_an_unreachable_index(scene: Scene) -> None:
    url = closed_port_url()
    scene.extra_env = {"PIP_INDEX_URL": f"{url}/simple/", "RECIPEGEN_PYPI_URL": f"{url}/pypi/"}
    before = snapshot(scene.env)
    proc = scene.install("net-sdist")
    assert_failed_clearly(proc, f"the package index {url}/simple/ cannot be reached",
                          "ConnectionError", "net-sdist", "PIP_INDEX_URL", code=1)
    assert_unchanged(scene.env, before, scene.work)


@pytest.mark.parametrize("behaviour", [503, "hang"])
def test_an_index_that_fails_or_hangs(scene: Scene, behaviour: int | str) -> None:
    scene.index.behave["/simple/net-sdist/"] = behaviour
    before = snapshot(scene.env)
    proc = scene.install("net-sdist")
    said = "answers HTTP 503" if behaviour == 503 else "cannot be reached (ReadTimeout"
    assert_failed_clearly(proc, f"the package index {scene.index.url}/simple/ {said}",
                          "net-sdist", code=1)
    # pip's tries, then recipegen's one look to say why: bounded.
    assert TRIES <= scene.index.hits["/simple/net-sdist/"] <= TRIES + 1
    assert_unchanged(scene.env, before, scene.work)


# -- PyPI's JSON API and files, as recipegen's own client sees them -------------------------


@pytest.mark.parametrize("behaviour", [503, "hang"])
def test_a_json_api_that_fails_or_hangs(scene: Scene, behaviour: int | str) -> None:
    scene.index.behave["/pypi/net-sdist/json"] = behaviour
    before = snapshot(scene.env)
    proc = scene.install("net-sdist")
    said = "HTTP 503" if behaviour == 503 else "ReadTimeout"
    assert_failed_clearly(proc, f"PyPI is not answering at {scene.index.url}/pypi/net-sdist/json",
                          said, f"tried {TRIES} times", "for net-sdist", "RECIPEGEN_PYPI_URL",
                          code=1)
    assert scene.index.hits["/pypi/net-sdist/json"] == TRIES
    assert_unchanged(scene.env, before, scene.work)


@pytest.mark.parametrize("behaviour", [503, "stall"])
def test_a_source_download_that_fails_or_stalls(scene: Scene, behaviour: int | str) -> None:
    """pip resolves from the wheel; recipegen's download of the sdist fails."""
    path = "/files/net-wheel-1.0.tar.gz"
    scene.index.behave[path] = _requests_only(behaviour)
    before = snapshot(scene.env)
    proc = scene.install("net-wheel")
    if behaviour == 503:
        assert_failed_clearly(proc, f"PyPI is not answering at {scene.index.url}{path}",
                              "HTTP 503", f"tried {TRIES} times", code=1)
    else:
        assert_failed_clearly(proc, f"downloading {scene.index.url}{path} failed",
                              f"tried {TRIES} times", code=1)
    assert scene.index.hits[path] == TRIES
    assert not list((scene.work / "cache" / "sdists").rglob("net-wheel*"))
    assert_unchanged(scene.env, before, scene.work)


# -- a conda channel -------------------------------------------------------------------------


def test_an_unreachable_channel_is_named_and_offline_uses_the_cache(
        scene: Scene, seed_channel: Path, tmp_path: Path) -> None:
    scene.index.static = seed_channel.parent
    channel = f"{scene.index.url}/static/{seed_channel.name}"
    scene.seed = channel  # the only channel: python comes over HTTP
    scene.env, scene.work = tmp_path / "first-env", tmp_path / "work"
    first = scene.install("net-sdist==1.0")
    assert first.returncode == 0, first.stderr
    assert (scene.work / "cache" / "repodata").is_dir()

    scene.index.behave["/static/"] = 503
    scene.env = tmp_path / "second-env"
    proc = scene.install("net-sdist==1.0")
    assert_failed_clearly(proc, f"conda channel {channel} cannot be read", "--offline", code=1)
    assert not scene.env.exists()

    offline = scene.install("net-sdist==1.0", "--offline", "--json")
    assert offline.returncode == 0, offline.stderr
    statuses = {e["package"]: e["status"] for e in events(offline.stdout)
                if e.get("event") == "package" and e["status"] in ("built", "cached")}
    assert statuses == {"net-sdist": "cached"}
    assert (scene.env / "conda-meta").is_dir()
    assert {p.name.rsplit("-", 2)[0] for p in (scene.env / "conda-meta").glob("*.json")} \
        == {"net-sdist", "python"}


def test_an_unreachable_channel_without_a_cache(scene: Scene) -> None:
    url = closed_port_url() + "/some-channel"
    before = snapshot(scene.env)
    scene.seed = url
    for offline in ((), ("--offline",)):
        proc = scene.install("net-sdist", *offline)
        assert_failed_clearly(proc, f"conda channel {url} cannot be read", code=1)
    assert_unchanged(scene.env, before, scene.work)
