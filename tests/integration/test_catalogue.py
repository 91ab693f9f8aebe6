"""A catalogue of bad input and faults, as a careless user and a hostile world would try them.

Each bad input: a non-zero exit, exactly one `error:` line on stderr naming what is wrong,
no run record, no stack, no bucket and no container left. Each fault: what is known is
recorded, nothing is orphaned. Last, a normal run succeeds on the same local AWS and the
artifacts of earlier runs are intact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from preprocessing import census
from tests import ROOT
from tests.conftest import own_containers
from tests.integration.helpers import census_csv, emulators_on, free_port

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def world(local_aws, tmp_path_factory):
    """A fresh stack and bucket name on the session's local AWS, a scratch home, data files."""
    folder = tmp_path_factory.mktemp("catalogue")
    name = f"cat-{uuid.uuid4().hex[:6]}"
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    header, *rows = census_csv(400).decode().splitlines()
    files = {
        "header_only.csv": header + "\n",
        "long_row.csv": header + "\n" + "x," * 15_000_000 + "\n",
        "one_class.csv": "\n".join([header] + [r for r in rows if not r.endswith(census.INCOME_HIGH)]) + "\n",
        "wrong_type.csv": "\n".join([header, *rows[:8], "abc" + rows[8][rows[8].index(",") :], *rows[9:]])
        + "\n",
        "nan.csv": "\n".join([header, "nan" + rows[0][rows[0].index(",") :], *rows[1:]]) + "\n",
        "no_age.csv": header.replace("age,", "", 1) + "\n",
        "short_row.csv": header + "\n" + rows[0].rsplit(",", 1)[0] + "\n",
        "empty.csv": "",
    }
    for file_name, text in files.items():
        (folder / file_name).write_text(text)
    (folder / "latin1.csv").write_bytes((header + "\n" + rows[0]).encode() + b"\xe9\n")
    (folder / "a_folder.csv").mkdir()
    world = {
        "folder": folder,
        "home": folder / "home",
        "settings": [
            f"emulator.port={port}",
            f"stack_name={name}",
            f"artifact_bucket={name}",
            "inputs.data.generate.rows=500",
        ],
        "name": name,
        "endpoint": local_aws.endpoint_url,
        "instance": local_aws.info["instance"],  # the containers it counts are this local AWS's
    }
    return world


def harness(world, command: str, *args: str, env: dict | None = None, timeout: float = 600):
    """The CLI with the world's settings first, so the test's own (later) win."""
    overrides = [x for s in world["settings"] for x in ("--set", s)]
    environment = {**os.environ, "MLHARNESS_HOME": str(world["home"]), **(env or {})}
    command_line = [sys.executable, "-m", "harness", command, *overrides, *args]
    return subprocess.run(
        command_line, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=environment
    )


def client(world, service: str):
    return boto3.client(
        service,
        endpoint_url=world["endpoint"],
        region_name="us-east-1",
        config=Config(inject_host_prefix=False),
    )


TUNING = '{{"strategy": "Random", "objective": {{"metric": "train:log_loss", "type": "Minimize"}}, '
TUNING += '"ranges": {{"C": {{{}}}}}}}'
BAD_INPUTS = [
    # the command line
    (["run", "--target", "mars"], 2, "unknown target 'mars': use --target local or --target aws ENV"),
    (["run", "--target", "aws"], 2, "--target aws needs an environment name"),
    (["run", "--target", "aws", "nowhere"], 2, "no environment 'nowhere' under environments"),
    (["run", "--target", "aws", "local"], 2, "'local' is the local target's environment"),
    (["run", "--project", "DIR/no_project"], 2, "no_project is not a folder"),
    (["run", "--input", "data"], 2, "--input 'data': expected NAME=PATH"),
    (["run", "--input", "customers=DIR/empty.csv"], 2, "--input customers: expected an input a pipeline"),
    (["run", "--pipeline", "everything"], 2, "unknown pipeline 'everything': choose from training"),
    (["run", "--detach"], 1, "--detach starts one pipeline: add --pipeline NAME"),
    (["run", "--as-scheduled"], 1, "--as-scheduled starts one pipeline"),
    (["run", "--as-scheduled", "--pipeline", "endpoint"], 1, "pipeline endpoint declares no schedule"),
    (["run", "--pipeline", "endpoint", "--from-run", "training-x"], 1, "no run training-x recorded"),
    (["run", "--set", "justaword"], 2, "--set 'justaword': expected KEY=VALUE"),
    (["status", "--pipeline", "nope"], 2, "unknown pipeline 'nope'"),
    # the configuration
    (
        ["run", "--set", "settings.training.threshold=7"],
        2,
        "settings.training.threshold: expected a number between",
    ),
    (
        ["run", "--set", "settings.training.quality_metric=speed"],
        2,
        "quality_metric: expected one of accuracy",
    ),
    (
        ["run", "--set", "settings.training.hyperparameters.C=-1"],
        2,
        "hyperparameters.C: expected a number greater",
    ),
    (
        ["run", "--set", "settings.training.hyperparameters.max_iter=0.5"],
        2,
        "hyperparameters.max_iter: expected a int",
    ),
    *(
        (
            ["run", "--set", "settings.training.tuning=" + TUNING.format(bounds)],
            2,
            f"settings.training.tuning.ranges.C.{bad}: expected a number, got",
        )
        for bounds, bad in (('"min": 1, "max": "x"', "max"), ('"min": "a", "max": "b"', "min"))
    ),
    (
        ["run", "--set", "settings.training.seeds=3"],
        2,
        "settings.training.seeds: expected one of its settings",
    ),
    (
        ["run", "--set", "settings.scoring.x=1"],
        2,
        "--set settings.scoring: expected a pipeline of the project",
    ),
    (["run", "--set", "settings.training=3"], 2, "--set settings.training: expected a mapping of settings"),
    (["run", "--set", "pipelines.training.x=3"], 2, "--set pipelines: is set once, at the top of mlharness"),
    (
        ["run", "--set", "artifact_bucket=my..bucket"],
        2,
        "artifact_bucket: expected an S3 bucket name: no two periods",
    ),
    (
        ["run", "--set", "artifact_bucket=192.168.10.20"],
        2,
        "artifact_bucket: expected an S3 bucket name: not an IP",
    ),
    (["run", "--set", "artifact_bucket=Upper"], 2, "artifact_bucket: expected an S3 bucket name: lower-case"),
    (["run", "--set", "stack_name=bad_stack!name"], 2, "stack_name: expected a CloudFormation stack name"),
    (
        ["run", "--set", "stack_name=1-starts-with-digit"],
        2,
        "stack_name: expected a CloudFormation stack name",
    ),
    (["run", "--set", "stack_name=" + "s" * 76], 2, "stack_name: expected a shorter name: state machine"),
    (["run", "--set", "schedules.inference.expression=cron(every day at six)"], 2, "cron with six fields"),
    (
        ["run", "--set", "schedules.inference.expression=cron(0 6 * * * *)"],
        2,
        "'?' in exactly one of day-of-month",
    ),
    (["run", "--set", "schedules.inference.expression=rate(0 minutes)"], 2, "a rate of at least 1"),
    (
        ["run", "--set", "schedules.endpoint.expression=rate(1 day)"],
        2,
        "pipeline 'endpoint' declares no schedule",
    ),
    (
        ["run", "--set", "instances.training=ml.m5.huge"],
        2,
        "instances.training: expected a SageMaker training instance",
    ),
    (
        ["run", "--set", "instances.endpoint=huge"],
        2,
        "instances.endpoint: expected a SageMaker endpoint instance",
    ),
    (["run", "--set", "inputs.data.generate.rows=10"], 1, "a generated sample needs at least 100 rows"),
    (["run", "--set", "emulator.port=70000"], 2, "emulator.port: expected a port number"),
    (
        ["run", "--set", "aws.image_repository=Bad Repo"],
        2,
        "aws.image_repository: expected a prefix of ECR repository names",
    ),
    (["run", "--set", "pipeline_modules=[x]"], 2, "--set pipeline_modules: moved to the top-level pipelines"),
    (["run", "--set", "pipeline.threshold=0.5"], 2, "--set pipeline: moved to settings.<pipeline>"),
    (["run", "--set", "data.source=x.csv"], 2, "--set data: moved to inputs.<name>"),
    # the data
    (["run", "--input", "data=DIR/nowhere.csv"], 1, "nowhere.csv does not exist"),
    (["run", "--input", "data=DIR/a_folder.csv"], 1, "a_folder.csv is not a file"),
    (["run", "--input", "data=DIR/empty.csv"], 1, "empty.csv is empty"),
    (["run", "--input", "data=DIR/header_only.csv"], 1, "header_only.csv has a header and no rows"),
    (["run", "--input", "data=DIR/long_row.csv"], 1, "long_row.csv: row 2 is longer than 1 MiB"),
    (["run", "--input", "data=DIR/one_class.csv"], 1, "the label column 'income' is ' 50000+.' in 0 of"),
    (
        ["run", "--input", "data=DIR/wrong_type.csv"],
        1,
        "wrong_type.csv: row 10 column 'age': 'abc' is not a number",
    ),
    (
        ["run", "--input", "data=DIR/nan.csv"],
        1,
        "nan.csv: row 2 column 'age': 'nan' is not a finite number",
    ),
    (["run", "--input", "data=DIR/no_age.csv"], 1, "no_age.csv lacks column(s) 'age'"),
    (["run", "--input", "data=DIR/short_row.csv"], 1, "short_row.csv: row 2 has 8 fields, the header 9"),
    (["run", "--input", "data=DIR/latin1.csv"], 1, "latin1.csv: row 2 is not UTF-8 (byte 0xe9"),
    (
        ["run", "--pipeline", "inference", "--input", "data=DIR/no_age.csv"],
        1,
        "no_age.csv lacks column(s) 'age'",
    ),
]


@pytest.mark.parametrize("args, code, message", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _, _ in BAD_INPUTS])
def test_bad_input_is_refused_up_front_in_one_line(world, docker_client, args, code, message):
    args = [a.replace("DIR", str(world["folder"])) for a in args]
    before = {c["Id"] for c in own_containers(docker_client, world["instance"])}

    result = harness(world, *args, timeout=120)

    assert result.returncode == code, result.stdout[-1500:] + result.stderr[-1500:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr[-1500:]
    assert not list(world["home"].glob("runs/*/*.json"))  # no record
    stacks = client(world, "cloudformation").list_stacks()["StackSummaries"]
    assert world["name"] not in [s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    assert world["name"] not in [b["Name"] for b in client(world, "s3").list_buckets()["Buckets"]]
    assert {c["Id"] for c in own_containers(docker_client, world["instance"])} <= before


# -- the local AWS's API: malformed or refused requests get AWS's error, never a 500 ---------
def test_a_test_case_the_mock_configuration_lacks_is_invalid_name(world):
    sfn = client(world, "stepfunctions")
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(
        name=f"{world['name']}-m", definition=definition, roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    with pytest.raises(sfn.exceptions.InvalidName):
        sfn.start_execution(stateMachineArn=f"{arn}#Nope")


def test_test_state_of_a_broken_definition_is_invalid_definition(world):
    sfn = client(world, "stepfunctions")
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition='{"Type": "Pass", "Next":')


def test_a_second_stack_of_one_name_is_refused(world):
    cfn = client(world, "cloudformation")
    template = json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    name = f"{world['name']}-dup"
    cfn.create_stack(StackName=name, TemplateBody=template)
    with pytest.raises(cfn.exceptions.AlreadyExistsException):
        cfn.create_stack(StackName=name, TemplateBody=template)
    with pytest.raises(
        cfn.exceptions.ClientError, match=r"Stack \[.*-dup\] already exists and cannot be created"
    ):
        cfn.create_change_set(
            StackName=name, ChangeSetName="again", TemplateBody=template, ChangeSetType="CREATE"
        )
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]].count(name) == 1
    cfn.delete_stack(StackName=name)


def test_a_training_job_on_an_unknown_instance_type_is_a_validation_error(world, tiny_image):
    from tests.integration.helpers import training_request

    sagemaker = client(world, "sagemaker")
    with pytest.raises(sagemaker.exceptions.ClientError) as refused:
        sagemaker.create_training_job(
            **training_request(
                f"{world['name']}-bad", tiny_image, "any-bucket",
                ResourceConfig={"InstanceType": "ml.huge", "InstanceCount": 1, "VolumeSizeInGB": 1},
            )
        )  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "ValidationException"


# -- faults ------------------------------------------------------------------------
def test_a_port_taken_by_another_program_is_one_line(world, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "harness", "emulator", "--port", str(port), "--state-dir", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"cannot listen on 127.0.0.1:{port}")


def test_a_killed_job_container_fails_its_run_in_one_line_and_nothing_is_left(
    world, docker_client, job_image
):
    run = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--target", "local", "--pipeline", "training",
         *[x for s in world["settings"] for x in ("--set", s)]],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MLHARNESS_HOME": str(world["home"])},
    )  # fmt: skip
    for line in run.stdout:
        if "job training-" in line and "-train: InProgress" in line:
            break
    job = line.split("job ", 1)[1].split(":", 1)[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = [
            c
            for c in own_containers(docker_client)
            if c["State"] == "running" and job in json.dumps(c["Labels"])
        ]
        if live:
            docker_client.api.kill(live[0]["Id"])
            break
        time.sleep(0.1)
    out, err = run.communicate(timeout=300)

    assert run.returncode == 1
    (line,) = err.strip().splitlines()
    assert (
        line.startswith("error: training run training-")
        and "FAILED: States.TaskFailed" in line
        and job in line
    )
    assert not [c for c in own_containers(docker_client) if job in json.dumps(c["Labels"])]
    (record,) = [json.loads(p.read_text()) for p in world["home"].glob("runs/local/*.json")]
    assert record["status"] == "FAILED"


def test_a_damaged_state_file_is_quarantined_and_the_local_aws_starts(tmp_path):
    from harness.emulator import LocalAWS

    stacks = tmp_path / "state" / "stacks" / "123456789012" / "us-east-1"
    stacks.mkdir(parents=True)
    (stacks / "broken.json").write_text('{"account": "1234')
    with LocalAWS(state_dir=tmp_path / "state", docker_gateway=False) as aws:
        cfn = boto3.client("cloudformation", endpoint_url=aws.endpoint_url, region_name="us-east-1")
        assert cfn.describe_stacks()["Stacks"] == []
    assert list(stacks.glob("broken.json.damaged-*"))
    assert "broken.json is damaged" in (tmp_path / "state" / "emulator.log").read_text()


def test_the_aws_target_with_only_aws_endpoint_url_does_not_lock_itself_out(world, job_image):
    name = f"{world['name']}-aws"
    env = {
        "AWS_ENDPOINT_URL": world["endpoint"],
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MLHARNESS_STACK_NAME": name,
        "MLHARNESS_ARTIFACT_BUCKET": f"{name}-{{account_id}}",
        "MLHARNESS_AWS_ENDPOINT_URL": "",
    }
    deployed = harness(world, "deploy", "--target", "aws", "dev", env=env)
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    assert f"through {world['endpoint']}" in deployed.stdout
    with pytest.raises(client(world, "s3").exceptions.ClientError):
        client(world, "s3").get_bucket_policy(Bucket=f"{name}-123456789012")  # no TLS-only policy over HTTP

    locked = f"{name}-locked"
    s3 = client(world, "s3")
    s3.create_bucket(Bucket=f"{locked}-123456789012")
    arn = f"arn:aws:s3:::{locked}-123456789012"
    plain_http = {"Bool": {"aws:SecureTransport": "false"}}
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Condition": plain_http,
        "Resource": [arn, f"{arn}/*"],
    }
    s3.put_bucket_policy(
        Bucket=f"{locked}-123456789012", Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )
    refused = harness(
        world,
        "deploy",
        "--target",
        "aws",
        "dev",
        env={**env, "MLHARNESS_ARTIFACT_BUCKET": f"{locked}-{{account_id}}"},
    )
    if refused.returncode == 0:
        pytest.skip("this local AWS does not enforce bucket policies on its own requests")
    (line,) = refused.stderr.strip().splitlines()
    assert "refuses requests over plain HTTP" in line and "delete-bucket-policy" in line


def test_a_killed_local_aws_loses_the_run_in_one_line_and_the_next_run_succeeds(world, tmp_path, job_image):
    """Last: the run's own local AWS is killed mid-run; then a normal run, and earlier artifacts."""
    port, state = free_port(), tmp_path / "state"
    own = [*world["settings"], f"emulator.port={port}", f"emulator.state_dir={state}"]
    home = tmp_path / "home"
    command = [sys.executable, "-m", "harness", "run", "--target", "local", "--pipeline", "training",
               *[x for s in own for x in ("--set", s)]]  # fmt: skip
    env = {**os.environ, "MLHARNESS_HOME": str(home)}
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    (kept,) = [json.loads(p.read_text()) for p in home.glob("runs/local/*.json")]

    run = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    for line in run.stdout:
        if line.startswith("-> Train"):
            break
    for pid in emulators_on(state):
        os.kill(pid, signal.SIGKILL)
    _, err = run.communicate(timeout=300)

    assert run.returncode == 1, err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ")
    records = {r["run_id"]: r for r in (json.loads(p.read_text()) for p in home.glob("runs/local/*.json"))}
    lost = [r for r in records.values() if r["run_id"] != kept["run_id"]]
    assert [r["status"] for r in lost] == ["LOST"]

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert emulators_on(state) == [] or time.sleep(3) or emulators_on(state) == []  # it stopped after the run
    from harness.emulator import LocalAWS

    with LocalAWS(state_dir=state, docker_gateway=False) as restarted:  # what the state dir kept
        s3 = boto3.client("s3", endpoint_url=restarted.endpoint_url, region_name="us-east-1")
        prefix = f"runs/{kept['run_id']}/"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=world["name"], Prefix=prefix)["Contents"]]
    assert f"{prefix}record.json" in keys and any("/model/" in k for k in keys)
