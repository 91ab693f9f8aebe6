#!/usr/bin/env bash
# Build the templates of the local target and of prod with a KMS key (the variant with the
# most resources and policies), then run checkov on them in its own environment (its pins
# clash with the project's). cfn-lint runs in the unit tests.
#   usage: scripts/check-templates.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .mlharness/build
.venv/bin/python -m harness build --env local >/dev/null
.venv/bin/python -m harness build --env prod --set aws.kms_key_id=alias/mlharness >/dev/null
.venv/bin/tox -e checkov
