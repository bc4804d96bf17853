"""Progress for long work: human lines on stderr, JSON events on stdout, or silence.

Stages report through one :class:`Reporter`; the CLI picks how it is shown. Human output
goes to stderr so that stdout stays clean for results. On a terminal, packages being
worked on are shown in a live table under the log (each with how long it has been at
it); without a terminal every status change is a plain line. ``--json`` gives one event
per change, with the package's elapsed seconds on every finishing status.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

STATUS_WORDS = {
    "resolving": "resolve",
    "resolved": "resolved",
    "generating": "generate",
    "generated": "recipe",
    "building": "build",
    "testing": "test",
    "built": "built",
    "cached": "cached",
    "failed": "FAILED",
    "skipped": "skipped",
    "installing": "install",
}
#: Statuses that mean work on the package is going on (shown in the live table).
ACTIVE = frozenset({"resolving", "generating", "building", "testing", "installing"})
#: How often the live table's clocks are redrawn.
TICK_SECONDS = 0.5


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Reporter:
    """Collects events; ``mode`` is ``human``, ``json`` or ``quiet``.

    ``live`` (default: human mode on a terminal) keeps a table of the packages at work at
    the bottom of the output and redraws it; finished work scrolls up as plain lines.
    """

    def __init__(self, mode: str = "human", stream: TextIO | None = None,
                 out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.mode = mode
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.start = time.monotonic()
        self.current_phase: str | None = None
        self.live = (mode == "human" and _is_tty(self.stream)) if live is None else live
        self._lock = threading.RLock()
        self._active: dict[str, tuple[str, float]] = {}  # package → (status, since)
        self._since: dict[str, float] = {}  # package → when its current work began
        self._drawn = 0  # lines of the live table on screen now
        self._ticker: threading.Thread | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self.mode == "json":
                event = {"elapsed": round(self.elapsed(), 2), **event}
                self.out.write(json.dumps(event, default=str) + "\n")
                self.out.flush()

    def phase(self, name: str, detail: str = "") -> None:
        """A pipeline phase starts (resolve, map, generate, build, install)."""
        self.current_phase = name
        self._emit({"event": "phase", "phase": name, "detail": detail})
        if self.mode == "human":
            self._line(f"{name}{': ' + detail if detail else ''}")

    def package(self, status: str, name: str, details: dict | None = None) -> None:
        """One package changes status (generating, building, testing, built, failed, ...).

        A finishing status gets ``seconds``: how long the package's work took, unless the
        stage measured it itself.
        """
        now = time.monotonic()
        details = {k: v for k, v in (details or {}).items() if v not in (None, "", False)}
        with self._lock:
            if status in ACTIVE:
                if status != "testing" or name not in self._since:
                    self._since[name] = now  # testing continues the build's clock
                self._active[name] = (status, self._since[name])
            else:
                began = self._since.pop(name, None)
                self._active.pop(name, None)
                if began is not None and "seconds" not in details and status != "skipped":
                    details["seconds"] = round(now - began, 1)
        self._emit({"event": "package", "status": status, "package": name, **details})
        if self.mode != "human":
            return
        if self.live and status in ACTIVE:
            self._redraw()
            self._ensure_ticker()
            return
        word = STATUS_WORDS.get(status, status)
        extra = ""
        if "seconds" in details:
            extra += f" ({details['seconds']} s)"
        if status == "failed" and details.get("log"):
            extra += f" — log: {details['log']}"
        if details.get("skip_tests"):
            extra += " (tests skipped: dependency cycle)"
        self._line(f"  {word:<9} {name}{extra}")

    def cache(self, kind: str, hit: bool, detail: str = "") -> None:
        """A cache (``plan``, ...) answered, or could not, and why."""
        self._emit({"event": "cache", "cache": kind, "hit": hit, "detail": detail})
        if self.mode == "human":
            self._line(f"{kind} cache: {'hit' if hit else 'miss'}"
                       f"{' (' + detail + ')' if detail else ''}")

    def info(self, message: str) -> None:
        self._emit({"event": "info", "message": message})
        if self.mode == "human":
            self._line(message)

    def warn(self, message: str) -> None:
        self._emit({"event": "warning", "message": message})
        if self.mode != "json":
            self._line(f"warning: {message}", force=True)

    def result(self, data: dict[str, Any]) -> None:
        """The command's answer: the last JSON line in ``--json`` mode."""
        self._emit({"event": "result", **data})

    def _line(self, text: str, force: bool = False) -> None:
        if self.mode == "quiet" and not force:
            return
        with self._lock:
            self._clear()
            self.stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
            self._draw()
            self.stream.flush()

    # -- the live table (terminals only) ------------------------------------------------

    def _table(self) -> list[str]:
        now = time.monotonic()
        rows = sorted(self._active.items(), key=lambda item: item[1][1])
        return [f"  {'…':>7} {STATUS_WORDS.get(status, status):<9} {name} "
                f"({now - since:.0f} s)" for name, (status, since) in rows]

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")  # up N lines, erase below
            self._drawn = 0

    def _draw(self) -> None:
        if not self.live:
            return
        rows = self._table()
        for row in rows:
            self.stream.write(row + "\n")
        self._drawn = len(rows)

    def _redraw(self) -> None:
        with self._lock:
            self._clear()
            self._draw()
            self.stream.flush()

    def _ensure_ticker(self) -> None:
        if self._ticker is not None:
            return

        def tick() -> None:
            while True:
                time.sleep(TICK_SECONDS)
                with self._lock:
                    if self._active or self._drawn:
                        self._redraw()

        self._ticker = threading.Thread(target=tick, name="recipegen-progress", daemon=True)
        self._ticker.start()
