"""conda-meta/history: conda's block format, replayed the way conda replays it."""

from __future__ import annotations

from pathlib import Path

from recipegen.history import History, dist_str

IDNA = {"name": "idna", "version": "3.10", "build": "pyh0_0", "subdir": "noarch",
        "channel": "file:///w/channel/"}
PY = {"name": "python", "version": "3.11.7", "build": "0_cpython", "subdir": "linux-64",
      "channel": "file:///seed/"}


def test_dist_str_is_conda_s() -> None:
    assert dist_str(IDNA) == "file:///w/channel/noarch::idna-3.10-pyh0_0"
    # conda also accepts a channel URL that ends with the subdir
    assert dist_str({**PY, "channel": "file:///seed/linux-64"}) == \
        "file:///seed/linux-64::python-3.11.7-0_cpython"


def test_blocks_replay_to_the_current_state(tmp_path: Path) -> None:
    h = History(tmp_path)
    a, b = dist_str(PY), dist_str(IDNA)
    assert h.record_change(set(), {a, b}, cmd=["recipegen", "install", "idna==3.10"],
                           update_specs=["idna ==3.10"], tool_version="0.1.0")
    assert h.record_change({a, b}, {a}, cmd=["recipegen", "remove", "idna"],
                           remove_specs=["idna"])
    assert not h.record_change({a}, {a}, cmd=["recipegen", "install", "x"])  # no change
    text = h.path.read_text().splitlines()
    assert text[0].startswith("==> ") and text[0].endswith(" <==")
    assert text[1:5] == ["# cmd: recipegen install idna==3.10", "# recipegen version: 0.1.0",
                         f"+{a}", f"+{b}"]
    assert text[5] == "# update specs: ['idna ==3.10']"
    assert text[7:] == ["# cmd: recipegen remove idna", f"-{b}", "# remove specs: ['idna']"]
    assert h.state() == {a}
    requests = h.user_requests()
    assert [r["cmd"][1] for r in requests] == ["install", "remove"]
    assert requests[0]["update_specs"] == ["idna ==3.10"]
    assert requests[1]["remove_specs"] == ["idna"]


def test_an_env_without_history_gets_its_state_first(tmp_path: Path) -> None:
    """Made by a tool that wrote no history: the first block states what was there."""
    h = History(tmp_path)
    (tmp_path / "conda-meta").mkdir()
    h.path.write_text("")  # rattler leaves an empty file
    a, b = dist_str(PY), dist_str(IDNA)
    h.record_change({a}, {a, b}, cmd=["recipegen", "install", "idna"])
    blocks = h.parse()
    assert blocks[0][1] == {a}  # a full state, not a diff
    assert blocks[1][1] == {f"+{b}"}
    assert h.state() == {a, b}


def test_a_stale_history_catches_up_in_the_next_block(tmp_path: Path) -> None:
    """Another tool changed the env without writing history; the diff is against history."""
    h = History(tmp_path)
    a, b = dist_str(PY), dist_str(IDNA)
    h.record_change(set(), {a}, cmd=["recipegen", "install", "python"])
    h.record_change({a, "x/noarch::ghost-1-0"}, {a, b}, cmd=["recipegen", "install", "idna"])
    assert h.state() == {a, b}


def test_a_change_of_specs_alone_keeps_the_state(tmp_path: Path) -> None:
    """Asking again for what is installed changes no package: the block must not read as
    an empty env (conda takes a block without +/- lines for the whole state)."""
    h = History(tmp_path)
    a, b = dist_str(PY), dist_str(IDNA)
    h.record_change(set(), {a, b}, cmd=["recipegen", "install", "idna"], update_specs=["idna"])
    assert h.record_change({a, b}, {a, b}, cmd=["recipegen", "install", "idna==3.10"],
                           update_specs=["idna ==3.10"])
    assert h.state() == {a, b}
    assert h.user_requests()[-1]["update_specs"] == ["idna ==3.10"]
