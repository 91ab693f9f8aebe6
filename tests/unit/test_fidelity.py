"""The fidelity report: what a job or endpoint request asks that the local AWS does not
reproduce, the journal that keeps the findings, and the run's report and --strict-fidelity."""

from __future__ import annotations

import io
import json

import pytest

from harness import runs
from harness.emulator import fidelity
from harness.emulator.sagemaker.job_fidelity import endpoint_findings, job_findings
from mlharness.kinds import PROCESSING, TRAINING, TRANSFORM
from tests.unit.test_records import make

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VPC = {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}


def test_a_plain_job_has_nothing_to_report():
    request = {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
    assert job_findings(TRAINING, request) == []
    assert job_findings(PROCESSING, {"ProcessingResources": {"ClusterConfig": {}}}) == []


def test_a_training_job_names_spot_warm_pool_vpc_traffic_encryption_and_each_kms_key():
    request = {
        "EnableManagedSpotTraining": True,
        "ResourceConfig": {
            "InstanceType": "ml.m5.large",
            "KeepAlivePeriodInSeconds": 600,
            "VolumeKmsKeyId": KEY,
        },
        "VpcConfig": VPC,
        "EnableInterContainerTrafficEncryption": True,
        "OutputDataConfig": {"S3OutputPath": "s3://b/o", "KmsKeyId": "alias/models"},
    }
    found = job_findings(TRAINING, request)
    assert [kind for kind, _ in found] == ["spot", "warm-pool", "network", "network", "kms", "kms"]
    messages = dict(reversed(found))  # the first of each kind
    assert "ran on demand" in messages["spot"]
    assert "KeepAlivePeriodInSeconds 600" in messages["warm-pool"]
    network = [m for k, m in found if k == "network"]
    assert network == [
        "VpcConfig (subnets subnet-1, subnet-2; security groups sg-1) not applied: "
        "the containers ran on the local job network",
        "inter-container traffic encryption not applied",
    ]
    kms = [m for k, m in found if k == "kms"]
    assert kms == [
        "KMS key alias/models (OutputDataConfig.KmsKeyId) accepted; nothing was encrypted with it",
        f"KMS key {KEY} (ResourceConfig.VolumeKmsKeyId) accepted; nothing was encrypted with it",
    ]


def test_processing_and_transform_read_their_own_fields():
    processing = {
        "NetworkConfig": {"VpcConfig": VPC, "EnableInterContainerTrafficEncryption": True},
        "ProcessingOutputConfig": {"Outputs": [], "KmsKeyId": "alias/out"},
        "ProcessingResources": {"ClusterConfig": {"VolumeKmsKeyId": "alias/volume"}},
    }
    assert [k for k, _ in job_findings(PROCESSING, processing)] == ["network", "network", "kms", "kms"]
    transform = {"TransformOutput": {"S3OutputPath": "s3://b/p", "KmsKeyId": "alias/out"}}
    assert [k for k, _ in job_findings(TRANSFORM, transform, {"VpcConfig": VPC})] == ["network", "kms"]
    assert job_findings(TRANSFORM, {}, {"VpcConfig": None}) == []


def test_an_endpoint_config_names_variants_counts_limits_and_its_key():
    config = {
        "ProductionVariants": [
            {"VariantName": "blue", "InstanceType": "ml.m5.large", "InitialInstanceCount": 3},
            {"VariantName": "green", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
        ],
        "KmsKeyId": "alias/endpoint",
    }
    found = endpoint_findings(config)
    assert found[0] == (
        "endpoint",
        "2 production variants: only the first (blue) is served; green get no traffic",
    )
    assert ("instances", "variant blue asks 3 instances: one container serves it") in found
    assert ("instances", "the serving container has no ml.m5.large CPU or memory limits") in found
    assert found[-1][0] == "kms"


def test_the_journal_keeps_a_jobs_finding_once_and_finds_the_rest_by_time(monkeypatch):
    clock = iter([10.0, 11.0, 12.0, 13.0, 14.0])
    monkeypatch.setattr(fidelity.time, "time", lambda: next(clock))
    journal = fidelity.Journal()
    journal.note("run-1-train", "gpu", "no GPU here")
    journal.note("run-1-train", "gpu", "no GPU here")  # the second host of the same job
    journal.note("endpoint-x", "instances", "one container", of_job=False)  # at 11
    journal.note("", "unsupported", "sagemaker:CreateCompilationJob was refused", of_job=False)  # at 12
    journal.note("run-2-train", "kms", "key accepted")
    assert journal.of("run-1-") == [{"subject": "run-1-train", "kind": "gpu", "message": "no GPU here"}]
    assert [f["subject"] for f in journal.of("run-1-", since=11.5)] == ["run-1-train", ""]
    assert [f["subject"] for f in journal.of("run-9-", since=0)] == ["endpoint-x", ""]


def test_the_journal_drops_its_oldest_beyond_its_size(monkeypatch):
    monkeypatch.setattr(fidelity, "KEPT", 2)
    journal = fidelity.Journal()
    for number in range(3):
        journal.note(f"job-{number}", "gpu", "no GPU here")
    journal.note("job-0", "gpu", "no GPU here")  # dropped, so noted again
    assert [f["subject"] for f in journal.of("job-")] == ["job-2", "job-0"]


def test_the_endpoint_answers_by_prefix_and_refuses_a_bad_since():
    fidelity.JOURNAL.note("fidelity-endpoint-test-job", "spot", "ran on demand")
    app = fidelity.serving(lambda environ, start_response: [b"the rest"])
    answered = []

    def call(query: str):
        environ = {"PATH_INFO": fidelity.FIDELITY_PATH, "QUERY_STRING": query, "wsgi.input": io.BytesIO()}
        body = b"".join(app(environ, lambda status, headers: answered.append(status)))
        return answered[-1], json.loads(body)

    status, body = call("jobs=fidelity-endpoint-test-")
    assert status == "200 OK"
    assert body["findings"] == [
        {"subject": "fidelity-endpoint-test-job", "kind": "spot", "message": "ran on demand"}
    ]
    assert call("jobs=x&since=yesterday")[0] == "400 Bad Request"


def test_the_run_report_says_nothing_to_report_and_is_absent_on_aws():
    record = make("training-1", "SUCCEEDED")
    assert runs.fidelity_lines(record) == [
        "fidelity: nothing to report: the local AWS reproduced what this run asked of it"
    ]
    record.fidelity = [{"subject": "training-1-train", "kind": "gpu", "message": "no GPU here"}]
    assert runs.fidelity_lines(record) == [
        "fidelity: 1 thing(s) the local AWS did not reproduce as AWS would:",
        "  [gpu] training-1-train: no GPU here",
    ]
    on_aws = make("training-2", "SUCCEEDED")
    on_aws.target = "aws"
    assert runs.fidelity_lines(on_aws) == []


@pytest.mark.parametrize(
    ("kind", "fails"),
    [("gpu", False), ("cache", False), ("unsupported", True), ("iam", True), ("unknown", True)],
)
def test_strict_fidelity_fails_a_run_only_for_what_would_differ_on_aws(kind, fails):
    record = make("training-1", "SUCCEEDED")
    record.fidelity = [{"subject": "", "kind": kind, "message": "what happened"}]
    said = []
    assert runs._faithful([record], said.append) is not fails
    assert said == (["--strict-fidelity: training run training-1: what happened"] if fails else [])


def test_a_state_machines_findings_reach_only_the_runs_of_its_role():
    journal = fidelity.Journal()
    journal.note("", "iam", "training's role denied", of_job=False, role="arn:aws:iam::1:role/training")
    journal.note("", "iam", "another stack's role denied", of_job=False, role="arn:aws:iam::1:role/other")
    journal.note("", "unsupported", "refused", of_job=False)
    found = journal.of("run-1-", since=0, role="arn:aws:iam::1:role/training")
    assert [f["message"] for f in found] == ["training's role denied", "refused"]
