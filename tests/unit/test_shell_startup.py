"""The sitecustomize `emulator env` puts first on a shell's PYTHONPATH: clients made for an AWS
address reach the local AWS while the process points at it, and nothing changes otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.emulator import user_env

LOCAL = "http://127.0.0.1:4999"
PROBE = """
import boto3, botocore.session
sts = boto3.client("sts", region_name="us-east-1", endpoint_url="https://sts.us-east-1.amazonaws.com")
own = boto3.client("s3", region_name="us-east-1", endpoint_url="http://other.example:9000")
positional = botocore.session.get_session().create_client(
    "sts", "us-east-1", None, True, None, "https://sts.amazonaws.com")
print(sts.meta.endpoint_url, own.meta.endpoint_url, positional.meta.endpoint_url)
import sitecustomize_chained
"""


def _run(tmp_path, **environment) -> subprocess.CompletedProcess:
    chained = tmp_path / "chained"  # a sitecustomize of the user's own, further down the path
    chained.mkdir(exist_ok=True)
    (chained / "sitecustomize.py").write_text("import sys; sys.modules['sitecustomize_chained'] = sys\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLHARNESS_"))}
    python_path = os.pathsep.join([str(user_env.STARTUP_FOLDER), str(chained)])
    env = {
        **clean,
        "PYTHONPATH": python_path,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        **environment,
    }
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env)


def test_aws_addresses_reach_the_local_aws_while_the_process_points_at_it(tmp_path):
    ran = _run(tmp_path, AWS_ENDPOINT_URL=LOCAL, MLHARNESS_LOCAL_AWS=LOCAL)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [LOCAL, "http://other.example:9000", LOCAL]


def test_a_process_pointed_elsewhere_is_left_alone(tmp_path):
    for environment in ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "MLHARNESS_LOCAL_AWS": LOCAL}, {}):
        ran = _run(tmp_path, **environment)
        assert ran.returncode == 0, ran.stderr
        sts, _, positional = ran.stdout.split()
        assert sts == "https://sts.us-east-1.amazonaws.com" and positional == "https://sts.amazonaws.com"


def test_the_startup_folder_is_put_first_once():
    folder = str(user_env.STARTUP_FOLDER)
    assert user_env._python_path("") == folder
    assert user_env._python_path(os.pathsep.join([folder, "/a"])) == os.pathsep.join([folder, "/a"])
    assert user_env._python_path("/a") == os.pathsep.join([folder, "/a"])


def test_an_aws_cli_that_predates_the_endpoint_variable_is_named(tmp_path, monkeypatch):
    versions = {"2.9.19": True, "2.13.0": False, "1.27.1": True, "1.46.3": False}
    for version, noted in versions.items():
        fake = tmp_path / "aws"
        fake.write_text(f"#!/bin/sh\necho 'aws-cli/{version} Python/3.11 Linux'\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))
        note = user_env.aws_cli_note()
        assert (note is not None) == noted, version
        if noted:
            assert "ignores AWS_ENDPOINT_URL" in note and "\n" not in note
