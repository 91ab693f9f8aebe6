#!/usr/bin/env bash
# The main job: provision what is missing, then train and run inference on the
# local target, printing the metrics and where the predictions are.
#   usage: scripts/run-local.sh [python -m harness run options]   e.g. --set inputs.data.generate.rows=200000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m harness run --target local "$@"
