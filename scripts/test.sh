#!/usr/bin/env bash
# Run the whole test suite (unit and end-to-end, with real containers), then checkov on the
# built templates. With pytest arguments, only pytest runs.
#   usage: scripts/test.sh [pytest args]     e.g. scripts/test.sh -m "not docker"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python -m pytest "$@"
if [ $# -eq 0 ]; then
    scripts/check-templates.sh
fi
