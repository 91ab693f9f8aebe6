"""The SageMaker Python SDK v3 (what `pip install sagemaker` gives) runs unchanged against the
local AWS, in an environment of its own (.sdk3-venv: scripts/setup.sh --sdk3), with only the
environment `mlharness emulator env` prints: a v3 user's first notebook."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import ROOT
from tests.integration.helpers import emulator_env, exported

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SDK3_PYTHON = ROOT / ".sdk3-venv" / "bin" / "python"
NOTEBOOK = Path(__file__).parent / "notebooks" / "sdk_v3_first_notebook.py"


def test_a_v3_users_first_notebook_trains_with_source_code_and_serves_the_model(
    local_aws, tiny_image, tmp_path
):
    if not SDK3_PYTHON.exists():
        pytest.skip("the SDK v3's environment is missing: run scripts/setup.sh --sdk3")
    printed = emulator_env(local_aws, tmp_path / "config")
    assert printed.returncode == 0, printed.stderr
    user = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_", "PYTHON"))}
    notebook = subprocess.run(
        [str(SDK3_PYTHON), str(NOTEBOOK), tiny_image],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**user, **exported(printed.stdout)},
    )  # fmt: skip
    assert notebook.returncode == 0, notebook.stderr[-4000:]
    said = dict(line.split(" ", 1) for line in notebook.stdout.splitlines() if " " in line)
    assert said["role"] == "arn:aws:iam::123456789012:role/mlharness-sagemaker-execution"
    assert said["account"] == "123456789012"
    assert said["training"] == 'Completed {"epochs": "2"}'
    assert said["tuning"] == "Completed True"  # the v3 tuner's best job is one of its own
    # three rows trained on, then each CSV line answered with them: resources and ModelBuilder alike
    assert (said["resources-answer"], said["builder-answer"]) == ("3,7", "3,5")
