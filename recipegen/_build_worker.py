"""Runs one rattler-build build in its own process (``python -m recipegen._build_worker``).

A process per build keeps rattler-build's output in the package's log, lets builds run in
parallel without sharing the interpreter, and lets an interrupt kill a build outright.
Reads a JSON request from argv[1]; writes a JSON answer to the path it names.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

#: rattler-build's log line that starts the test phase (it reports no build steps).
_TESTS_START = "Collecting tests from"


class _LogToFile:
    """rattler-build progress callback: every log line and build step into the log.

    ``status`` (a file opened on the fd the parent passed) gets one line per phase change
    ("testing"), so the parent can show it without reading the log.
    """

    def __init__(self, stream, status=None) -> None:
        self.stream = stream
        self.status = status
        self.testing = False

    def _write(self, text: str) -> None:
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def on_download_start(self, event) -> None:
        self._write(f"download {event.url}")

    def on_download_progress(self, event) -> None:
        pass

    def on_download_complete(self, event) -> None:
        pass

    def on_build_step(self, event) -> None:
        self._write(f"== {event.step_name}: {event.message}")

    def on_log(self, event) -> None:
        self._write(f"[{event.level}] {event.message}")
        if not self.testing and str(event.message).startswith(_TESTS_START):
            self.testing = True
            self._status("testing")

    def _status(self, word: str) -> None:
        if self.status is not None:
            try:
                self.status.write(word + "\n")
                self.status.flush()
            except OSError:  # the parent stopped listening; the build goes on
                self.status = None


def build(request: dict) -> dict:
    from rattler_build import Stage0Recipe, ToolConfiguration, VariantConfig

    from recipegen.reproducible import normalize

    # Tools that honour it (py_compile: hash-based .pyc; wheel builders) stop using the clock.
    os.environ["SOURCE_DATE_EPOCH"] = str(request["timestamp"])
    recipe = Stage0Recipe.from_file(request["recipe"])
    tool_config = ToolConfiguration(
        test_strategy="skip" if request["skip_tests"] else "native",
        compression_threads=1,
        use_sharded=False,
    )
    variants = VariantConfig.from_yaml(request["variant"]) if request.get("variant") else \
        VariantConfig()
    status = None
    if request.get("status_fd") is not None:
        # Not for the build's own processes: the parent reads until the last writer ends.
        os.set_inheritable(request["status_fd"], False)
        status = os.fdopen(request["status_fd"], "w", buffering=1)
    callback = _LogToFile(sys.stdout, status)
    packages: list[str] = []
    for variant in recipe.render(variants):
        result = variant.run_build(
            tool_config=tool_config,
            output_dir=request["output_dir"],
            channels=request["channels"],
            progress_callback=callback,
            no_build_id=True,
            package_format="conda",
        )
        packages.extend(str(p) for p in result.packages)
    for package in packages:
        # rattler-build stamps the build time and build paths in; rewrite them away.
        leaks = normalize(Path(package), timestamp=request["timestamp"],
                          build_paths=(request["output_dir"],))
        for member in leaks:
            print(f"[warning] {Path(package).name}: {member} contains the build directory; "
                  "this package will not be the same bytes when built elsewhere")
    return {"ok": True, "packages": packages}


def main() -> int:
    request = json.loads(sys.argv[1])
    answer_path = Path(request["answer"])
    try:
        answer = build(request)
    except BaseException as exc:  # report every failure, including rattler-build's own
        traceback.print_exc(file=sys.stdout)
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    sys.stdout.flush()
    answer_path.write_text(json.dumps(answer))
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
