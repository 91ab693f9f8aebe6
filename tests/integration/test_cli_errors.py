"""Bad input: one clear line on stderr, a non-zero exit, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import boto3
import pytest

from tests import ROOT


def harness(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--target", "mars"], "error: unknown target 'mars': use --target local or --target aws ENV"),
        (["run", "--target", "aws"], "error: --target aws needs an environment name: --target aws dev"),
        (["run", "--target", "aws", "nowhere"], "no environment 'nowhere' under environments (known: dev,"),
        (
            ["run", "--set", "settings.training.threshold=7"],
            "settings.training.threshold: expected a number between 0 and 1",
        ),
        (["run", "--as-scheduled"], "error: --as-scheduled starts one pipeline: add --pipeline NAME"),
        (
            ["run", "--set", "settings.training.hyperparameters.C=-1"],
            "settings.training.hyperparameters.C: expected a number greater than 0.0, got -1",
        ),
        (
            ["run", "--as-scheduled", "--pipeline", "endpoint"],
            "error: --as-scheduled: pipeline endpoint declares no schedule",
        ),
        (
            ["run", "--pipeline", "endpoint", "--from-run", "training-20000101-000000-aaaaaa"],
            "error: no run training-20000101-000000-aaaaaa recorded for environment local",
        ),
        (
            ["run", "--input", "data=/no/such/file.csv"],
            "error: input data: /no/such/file.csv does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(args, message, tmp_path):
    result = harness(*args, MLHARNESS_HOME=str(tmp_path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_the_localstack_engine_without_its_environment_is_one_line_and_nothing_started(tmp_path):
    from tests.integration.helpers import free_port

    result = harness(
        "run", "--set", "emulator.engine=localstack", "--set", f"emulator.port={free_port()}",
        MLHARNESS_HOME=str(tmp_path), MLHARNESS_LOCALSTACK_PYTHON=str(tmp_path / "none" / "python"),
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: emulator.engine is localstack, but LocalStack's environment is not installed"
    ), result.stderr
    assert "scripts/setup.sh --localstack" in lines[0] and "started the local AWS" not in result.stdout


def test_an_unknown_pipeline_is_refused_naming_the_registered_ones():
    result = harness("run", "--pipeline", "everything")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown pipeline 'everything': choose from training, inference, endpoint, all"
    )


def test_a_data_file_without_the_columns_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("age,education\n30,x\n")
    result = harness("run", "--input", f"data={bad}", MLHARNESS_HOME=str(tmp_path))
    assert result.returncode == 1
    assert "lacks column(s) 'major industry code'" in result.stderr


@pytest.mark.docker
def test_inference_with_no_training_run_and_no_published_model_says_what_to_do(local_aws, tmp_path):
    fresh = f"nothing-{uuid.uuid4().hex[:6]}"
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    settings = [f"emulator.port={port}", f"artifact_bucket={fresh}", f"stack_name={fresh}"]
    overrides = [item for setting in settings for item in ("--set", setting)]

    result = harness("run", "--pipeline", "inference", *overrides, MLHARNESS_HOME=str(tmp_path))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no successful run that produced a model is recorded for environment local and none is "
        f"published at s3://{fresh}/models/latest.json: run --pipeline training first"
    ]
    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    assert fresh not in [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]  # nothing deployed


def test_no_docker_engine_is_one_line(tmp_path):
    result = harness(
        "run",
        "--set",
        "emulator.port=1",
        MLHARNESS_HOME=str(tmp_path),
        DOCKER_HOST="unix:///nonexistent.sock",
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: no Docker engine answers: start one (scripts/setup.sh installs and starts it)"
    )


BROKEN_PROJECTS = [
    # (files of the project, the command's arguments, exit code, what the one line says)
    ({}, ["run"], 2, "no mlharness.yaml in"),
    (
        {"mlharness.yaml": "project: team\n  pipelines: [\n"},
        ["run"],
        2,
        "mlharness.yaml: not valid YAML at line 2",
    ),
    (
        {"mlharness.yaml": "project: team\npipelines: [flows/a.py]\ncolour: blue\n", "flows/a.py": ""},
        ["run"],
        2,
        "mlharness.yaml: colour: unknown setting",
    ),
    (
        {
            "mlharness.yaml": "project: team\npipelines: [flows/a.py]\n",
            "flows/a.py": "import nowhere_at_all\n",
        },
        ["run"],
        2,
        "pipeline module 'flows.a' cannot be imported: ModuleNotFoundError: No module named 'nowhere_at_all'",
    ),
    (
        {"mlharness.yaml": "project: team\npipelines: [flows/a.py]\n", "flows/a.py": "def broken(:\n"},
        ["build"],
        2,
        "cannot be imported: SyntaxError: invalid syntax (a.py, line 1)",
    ),
    (
        {
            "mlharness.yaml": "project: team\npipelines: [flows/a.py]\n",
            "flows/a.py": "import dataclasses\nfrom pipelines import training\n"
            "PIPELINE = dataclasses.replace(training.PIPELINE, name='aa', prefix='aa',\n"
            "    definition=lambda build: 'not a definition')\n",
        },
        ["build"],
        1,
        "its definition() returned str, not an ASL mapping with States",
    ),
    (
        {
            "mlharness.yaml": "project: team\npipelines: [flows/a.py]\ninputs: {data: missing.csv}\n",
            "flows/a.py": "from pipelines.training import PIPELINE\n",
        },
        ["run"],
        1,
        "input data: ",
    ),
]


@pytest.mark.parametrize(
    "files, args, code, message", BROKEN_PROJECTS, ids=[m[:40] for _, _, _, m in BROKEN_PROJECTS]
)
def test_a_broken_project_is_refused_in_one_line_with_nothing_built_or_started(
    tmp_path, files, args, code, message
):
    project = tmp_path / "team"
    project.mkdir()
    for path, text in files.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLHARNESS_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*.json"))
    assert "started the local AWS" not in result.stdout


def test_init_into_a_folder_that_is_not_empty_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = harness("init", str(tmp_path))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"error: {tmp_path} is not empty (notes.txt): init writes a new project into an empty folder"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
