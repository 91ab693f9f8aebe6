"""Tests against a real AWS account: opt-in (tox -e aws, or MLHARNESS_AWS_TESTS=1) and
skipped, with one line, when no credentials are configured."""

import os

import boto3
import pytest


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.environ.get("MLHARNESS_AWS_TESTS") != "1":
        reason = "real-AWS tests are opt-in: run tox -e aws (sets MLHARNESS_AWS_TESTS=1)"
    elif boto3.Session().get_credentials() is None:
        reason = "no AWS credentials configured: real-AWS tests skipped"
    if reason:
        for item in items:
            if "tests/aws/" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))
