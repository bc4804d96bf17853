"""Child processes that run a package's own code (pip's metadata step, grayskull's
``setup.py``): in a process group of their own, with a deadline and a cap on their output,
and killed as a whole group, so nothing they started outlives them.

Such a child does not get the terminal's Ctrl-C (it has its own session), so every running
one is registered, and :func:`kill_all` (called on SIGINT) ends them at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: Output a child may write before it is taken to be flooding and killed.
MAX_OUTPUT = 64 << 20

_ACTIVE: set[int] = set()
_LOCK = threading.Lock()
_KILLS = 0  # how many times kill_all ran: a child starting meanwhile is killed on arrival


@dataclass(frozen=True)
class Finished:
    """How a child ended: ``returncode`` is None when recipegen killed it."""

    returncode: int | None
    seconds: float
    timed_out: bool = False
    flooded: bool = False  # its output passed ``max_output`` bytes


def run(args: list[str], *, timeout: float, log: Path, stdout: IO | None = None,
        stdin: IO | int = subprocess.DEVNULL, env: dict[str, str] | None = None,
        cwd: Path | str | None = None, max_output: int = MAX_OUTPUT) -> Finished:
    """Run ``args`` with stderr (and stdout, unless given) appended to ``log``.

    The child is killed with its whole group at ``timeout`` seconds, when ``log`` grows
    past ``max_output`` bytes, when recipegen is interrupted, and after it exits (whatever
    it left running in the background goes too).
    """
    start = time.monotonic()
    with _LOCK:
        kills = _KILLS
    with open(log, "ab") as log_fh:
        proc = subprocess.Popen(args, stdin=stdin, stdout=stdout or log_fh, stderr=log_fh,
                                env=env, cwd=cwd, start_new_session=True)
    with _LOCK:
        _ACTIVE.add(proc.pid)
        late = kills != _KILLS  # Ctrl-C came while it was starting: kill_all missed it
    why = ""
    try:
        if late:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        status, why = _wait(proc.pid, log, timeout, max_output)
    finally:
        # Killed before it is reaped: its pid (the group id) cannot have been reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        with _LOCK:
            _ACTIVE.discard(proc.pid)
    if why == "flood":  # it wrote on while it was being noticed: keep the cap
        with contextlib.suppress(OSError):
            os.truncate(log, max_output)
    return Finished(status, time.monotonic() - start, timed_out=why == "timeout",
                    flooded=why == "flood")


def kill_all() -> None:
    """Kill every running child group (on Ctrl-C); their waits then return at once."""
    global _KILLS
    with _LOCK:
        _KILLS += 1
        pids = list(_ACTIVE)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _wait(pid: int, log: Path, timeout: float, max_output: int) -> tuple[int | None, str]:
    """Poll until ``pid`` exits (left a zombie), times out or floods ``log``."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            exited = info.si_code == os.CLD_EXITED
            return (info.si_status if exited else -info.si_status), ""
        try:
            if log.stat().st_size > max_output:
                return None, "flood"
        except OSError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "timeout"
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.025)  # cheap; keeps the added latency under 25 ms


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, read without loading a flood into memory."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - chars * 4))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return text if len(text) <= chars else "…" + text[-chars:]
