"""The work root's layout: one place that knows where recipes, packages, logs and caches go.

``recipes-out/`` by default::

    recipes/<name>/recipe.yaml   generated recipes (what install, build and export use)
    channel/                     the local conda channel with every package built
    logs/<name>.log              one build log per package
    cache/                       PyPI JSON, sdists, grayskull results (safe to delete)
    seed/                        the offline seed channel (python, pip)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recipegen.errors import UsageError

DEFAULT_WORK_ROOT = Path("recipes-out")


@dataclass(frozen=True)
class WorkRoot:
    """The folder of recipes, local channel, logs and caches, and its layout."""

    root: Path

    @classmethod
    def at(cls, path: Path | str | None) -> WorkRoot:
        return cls(Path(os.path.abspath(path or DEFAULT_WORK_ROOT)))

    @property
    def recipes(self) -> Path:
        return self.root / "recipes"

    @property
    def channel(self) -> Path:
        return self.root / "channel"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def seed(self) -> Path:
        return self.root / "seed"

    @property
    def staging(self) -> Path:
        """Per-build scratch space; finished packages move from here into ``channel``."""
        return self.root / "staging"

    def recipe_dir(self, name: str) -> Path:
        return self.recipes / name

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def ensure_writable(self) -> None:
        """Create the root (and check it can be written) before any long work starts;
        remove the staging folders of builds whose process was killed."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UsageError(
                f"the work root {self.root} cannot be written: {exc.strerror or exc}",
                hint="pass --work-root with a writable directory",
            ) from exc
        self._remove_stale_staging()

    def _remove_stale_staging(self) -> None:
        """Staging folders are named ``<name>-<pid>-<thread>``; a dead pid's is left over."""
        if not self.staging.is_dir():
            return
        for folder in self.staging.iterdir():
            parts = folder.name.rsplit("-", 2)
            if len(parts) == 3 and parts[1].isdigit() and not _alive(int(parts[1])):
                import shutil  # rarely: only a killed build leaves a folder

                shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
