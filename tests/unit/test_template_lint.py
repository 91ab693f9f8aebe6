import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import build, config


@pytest.mark.parametrize(
    "env, overrides",
    [("local", []), ("prod", ["aws.kms_key_id=alias/pipelines", "aws.sagemaker_role_arn=null"])],
)
def test_cfn_lint_reports_nothing_on_the_built_template(tmp_path, env, overrides):
    folder = build.build(config.load(env, overrides), tmp_path)
    cfn_lint = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    result = subprocess.run(
        [cfn_lint, str(folder / "template.yaml")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
