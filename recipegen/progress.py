"""Progress for long work: human lines on stderr, JSON events on stdout, or silence.

Stages report through one :class:`Reporter`; the CLI picks how it is shown. Human output
goes to stderr so that stdout stays clean for results.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

STATUS_WORDS = {
    "resolving": "resolve",
    "generating": "generate",
    "generated": "recipe",
    "building": "build",
    "built": "built",
    "cached": "cached",
    "failed": "FAILED",
    "skipped": "skipped",
    "installing": "install",
}


class Reporter:
    """Collects events; ``mode`` is ``human``, ``json`` or ``quiet``."""

    def __init__(self, mode: str = "human", stream: TextIO | None = None,
                 out: TextIO | None = None) -> None:
        self.mode = mode
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.start = time.monotonic()
        self._lock = threading.Lock()

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
        self._emit({"event": "phase", "phase": name, "detail": detail})
        if self.mode == "human":
            self._line(f"{name}{': ' + detail if detail else ''}")

    def package(self, status: str, name: str, details: dict | None = None) -> None:
        """One package changes status (generating, building, built, failed, ...)."""
        details = {k: v for k, v in (details or {}).items() if v not in (None, "", False)}
        self._emit({"event": "package", "status": status, "package": name, **details})
        if self.mode == "human":
            word = STATUS_WORDS.get(status, status)
            extra = ""
            if "seconds" in details:
                extra += f" ({details['seconds']} s)"
            if status == "failed" and details.get("log"):
                extra += f" — log: {details['log']}"
            if details.get("skip_tests"):
                extra += " (tests skipped: dependency cycle)"
            self._line(f"  {word:<9} {name}{extra}")

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
            self.stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
            self.stream.flush()
