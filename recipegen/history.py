"""``conda-meta/history``, written the way conda writes it and read the way conda reads it.

conda replays this file to know what the user asked for (``get_requested_specs_map``) and
to show revisions. Each change is a block::

    ==> 2026-01-31 12:00:00 <==
    # cmd: recipegen install idna==3.10 -p /env
    -file:///work/channel/noarch::idna-3.9-pyh0_0
    +file:///work/channel/noarch::idna-3.10-pyh0_0
    # update specs: ['idna ==3.10']

The ``+``/``-`` lines are conda's ``dist_str`` of each record (``canonical channel/subdir::
name-version-build``) and are computed against the state the file itself describes, as
conda's ``History.update`` does, so a history that missed a change catches up. There is no
``# conda version:`` line: conda refuses envs "operated on by a newer conda" by that line.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

_HEAD = re.compile(r"==>\s*(.+?)\s*<==")
_SPECS = re.compile(r"#\s*(\w+)\s*specs:\s*(.+)?")
_CMD = re.compile(r"#\s*cmd:\s*(.+)")


def canonical_channel(channel: str) -> str:
    """conda's ``Channel.canonical_name`` for the URL channels recipegen records."""
    return channel.rstrip("/")


def dist_str(record: Mapping) -> str:
    """conda's ``PackageRecord.dist_str()``: ``channel/subdir::name-version-build``."""
    name = f"{record['name']}-{record['version']}-{record['build']}"
    channel = canonical_channel(record.get("channel") or "")
    subdir = record.get("subdir") or ""
    if channel.endswith("/" + subdir):  # conda also accepts a channel URL with its subdir
        channel = channel[: -len(subdir) - 1]
    return f"{channel}/{subdir}::{name}" if channel else name


class History:
    """The history file of one prefix."""

    def __init__(self, prefix: Path) -> None:
        self.path = Path(prefix) / "conda-meta" / "history"

    def parse(self) -> list[tuple[str, set[str], list[str]]]:
        """(date, dist lines, comment lines) per block, like conda's ``History.parse``."""
        blocks: list[tuple[str, set[str], list[str]]] = []
        if not self.path.is_file():
            return blocks
        for raw in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = raw.strip()
            if not line:
                continue
            head = _HEAD.match(line)
            if head:
                blocks.append((head.group(1), set(), []))
            elif not blocks:
                continue  # text before any head: conda would fail; ignore it
            elif line.startswith("#"):
                blocks[-1][2].append(line)
            else:
                blocks[-1][1].add(line)
        return blocks

    def state(self) -> set[str]:
        """The set of dists the file says the prefix holds now (conda's ``get_state``)."""
        current: set[str] = set()
        for _date, lines, _comments in self.parse():
            if not any(s.startswith(("+", "-")) for s in lines):
                current = set(lines)
                continue
            for s in lines:
                if s.startswith("-"):
                    current.discard(s[1:])
                elif s.startswith("+"):
                    current.add(s[1:])
        return current

    def user_requests(self) -> list[dict]:
        """Blocks with a ``# cmd:`` line: date, cmd, and their update/remove specs."""
        out = []
        for date, _lines, comments in self.parse():
            item: dict = {"date": date}
            for line in comments:
                m = _CMD.match(line)
                if m:
                    item["cmd"] = m.group(1).split()
                m = _SPECS.match(line)
                if m:
                    action, text = m.group(1), (m.group(2) or "").strip()
                    specs = ast.literal_eval(text) if text.startswith("[") else []
                    item[f"{action}_specs"] = list(specs)
            if "cmd" in item:
                out.append(item)
        return out

    def record_change(self, before: Iterable[str], after: Iterable[str], *, cmd: list[str],
                      update_specs: Iterable[str] = (), remove_specs: Iterable[str] = (),
                      tool_version: str | None = None) -> bool:
        """Append one block for a change; nothing if neither packages nor specs changed.

        ``before`` is what the prefix held before the change; a history that disagrees with
        it (another tool changed the env without writing history) is first brought up to
        date in the same block, which is what conda's own ``update`` does.
        """
        last = self.state() if self.path.is_file() and self.path.stat().st_size else set(before)
        current = set(after)
        removed, added = sorted(last - current), sorted(current - last)
        update, remove = list(update_specs), list(remove_specs)
        if not (removed or added or update or remove):
            return False
        lines = [f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==",
                 "# cmd: " + " ".join(cmd)]
        if tool_version:
            lines.append(f"# recipegen version: {tool_version}")
        lines += [f"-{d}" for d in removed] + [f"+{d}" for d in added]
        if not (removed or added):
            # Only specs changed. conda reads a block without +/- lines as the whole state,
            # so an empty one would say the env is empty: state it in full.
            lines += sorted(current)
        if remove:
            lines.append(f"# remove specs: {remove!r}")
        if update:
            lines.append(f"# update specs: {update!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.path.is_file() and self.path.stat().st_size) and last:
            # A first block that is not a diff: the full state before, as conda's
            # ``init_log_file`` writes it, so replaying the file gives the truth.
            lines = [f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==",
                     *sorted(last), *lines]
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        return True
