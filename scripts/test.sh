#!/usr/bin/env bash
# Run the whole test suite (unit and end-to-end, with real containers).
#   usage: scripts/test.sh [pytest args]     e.g. scripts/test.sh -m "not docker"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
