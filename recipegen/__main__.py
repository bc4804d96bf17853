"""``python -m recipegen``."""

from recipegen.cli import run

run()
