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
    assert names == ["inference.asl.json", "template.yaml", "training.asl.json"]
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
    assert set(template["Outputs"]) >= {"TrainingStateMachineArn", "InferenceStateMachineArn"}
    assert "AWS::S3::Bucket" not in {r["Type"] for r in template["Resources"].values()}


def test_the_quality_gate_compares_the_configured_metric():
    definition = json.loads(
        build.render(config.load("local", ["pipeline.quality_metric=f1"]))["training.asl.json"]
    )
    rule = definition["States"]["QualityGate"]["Choices"][0]
    assert rule["Variable"] == "$.evaluation.metrics.f1"
    assert rule["NumericGreaterThanEqualsPath"] == "$.evaluation.threshold"
    tasks = [s for s in definition["States"].values() if s["Type"] == "Task"]
    assert all(t["Catch"][0]["Next"] == "PipelineFailed" for t in tasks)
