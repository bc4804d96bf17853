#!/usr/bin/env bash
# The benchmark from a fresh clone, in one command: bash benchmarks/run.sh [run.py options]
# Makes .venv (as the README's set-up does) if it is missing, byte-compiles recipegen (as
# pip does for an installed package), then runs benchmarks/run.py, which writes
# benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import recipegen" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet -e .
fi
.venv/bin/python -m compileall -q recipegen >/dev/null
exec .venv/bin/python benchmarks/run.py "$@"
