"""Build: deterministic, from sources alone, no network."""

import json
import socket

import pytest
import yaml

from harness import build, config


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("build tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_two_builds_are_byte_identical_and_touch_no_network(tmp_path, no_network):
    settings = config.load("local")
    first = build.build(settings, tmp_path / "a")
    second = build.build(settings, tmp_path / "b")
    names = sorted(p.name for p in first.iterdir())
    assert names == ["endpoint.asl.json", "inference.asl.json", "template.yaml", "training.asl.json"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_definitions_leave_deploy_and_run_time_values_open():
    files = build.render(config.load("local"))
    training = files["training.asl.json"]
    assert "${JobImageUri}" in training and "${SageMakerRoleArn}" in training
    assert "$$.Execution.Input['TrainingJobName']" in training
    assert "mlharness/job" not in training  # no image reference frozen in at build time
    template = yaml.safe_load(files["template.yaml"])
    assert set(template["Parameters"]) >= {"ArtifactBucket", "JobImageUri", "TrainingInstanceType"}
    assert set(template["Outputs"]) >= {
        "TrainingStateMachineArn",
        "InferenceStateMachineArn",
        "EndpointStateMachineArn",
    }
    assert "AWS::S3::Bucket" not in {r["Type"] for r in template["Resources"].values()}


def test_the_quality_gate_compares_the_configured_metric():
    definition = json.loads(
        build.render(config.load("local", ["pipelines.training.quality_metric=f1"]))["training.asl.json"]
    )
    rule = definition["States"]["QualityGate"]["Choices"][0]
    assert rule["Variable"] == "$.evaluation.metrics.f1"
    assert rule["NumericGreaterThanEqualsPath"] == "$.evaluation.threshold"
    tasks = [s for s in definition["States"].values() if s["Type"] == "Task"]
    assert all(t["Catch"][0]["Next"] == "PipelineFailed" for t in tasks)


SAGEMAKER_JOBS = ("createProcessingJob", "createTrainingJob", "createTransformJob")


def _job_states(definition: dict) -> list[dict]:
    return [
        s for s in definition["States"].values() if any(j in s.get("Resource", "") for j in SAGEMAKER_JOBS)
    ]


def test_a_kms_key_encrypts_every_job_volume_and_output_and_only_then():
    plain = build.render(config.load("dev"))
    encrypted = build.render(config.load("dev", ["aws.kms_key_id=alias/pipelines"]))
    assert not any("Kms" in text for text in plain.values())
    for name in ("training", "inference"):
        states = _job_states(json.loads(encrypted[f"{name}.asl.json"]))
        assert states
        for state in states:
            text = json.dumps(state["Parameters"])
            assert text.count('"VolumeKmsKeyId": "${KmsKeyArn}"') == 1, state
            assert text.count('"KmsKeyId": "${KmsKeyArn}"') == 1, state
    template = yaml.safe_load(encrypted["template.yaml"])
    assert "KmsKeyArn" in template["Parameters"]
    roles = ["SageMakerRole"] + [f"{p}StateMachineRole" for p in ("Training", "Inference", "Endpoint")]
    for role in roles:
        statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
        assert kms and all(s["Resource"] == {"Ref": "KmsKeyArn"} for s in kms), role


def test_the_schedule_starts_inference_with_a_fixed_input_and_may_only_start_it():
    template = yaml.safe_load(build.render(config.load("local"))["template.yaml"])
    rule = template["Resources"]["InferenceSchedule"]
    assert rule["Condition"] == "HasInferenceSchedule"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "InferenceStateMachine"}
    text, variables = target["Input"]["Fn::Sub"]
    assert json.loads(text) == {"CodeUri": "${CodeUri}", "DataUri": "${ScheduleDataUri}"}
    assert variables == {"ScheduleDataUri": {"Ref": "InferenceScheduleDataUri"}}
    role = template["Resources"]["InferenceScheduleRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "events.amazonaws.com"
    }
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": {"Ref": "InferenceStateMachine"},
    }


def test_inference_names_everything_from_the_execution_name():
    definition = json.loads(build.render(config.load("local"))["inference.asl.json"])
    names = definition["States"]["NameRun"]["Parameters"]
    assert all(
        v.startswith("States.Format('") and v.endswith("', $$.Execution.Name)") for v in names.values()
    )
    assert all("inference-{}" in v for v in names.values())  # the prefix the IAM policies allow
    for state in _job_states(definition):
        name_key = next(k for k in state["Parameters"] if k.endswith("JobName.$"))
        assert state["Parameters"][name_key].startswith("$.run.")
