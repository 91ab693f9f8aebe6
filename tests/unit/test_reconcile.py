"""Records reconcile with executions: none stays RUNNING for an execution that is not."""

from __future__ import annotations

import dataclasses
import datetime
import json

from botocore.exceptions import ClientError, EndpointConnectionError

from harness import config, reconcile, records
from harness.reconcile import Terminated

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)


class FakeSfn:
    """describe_execution and get_execution_history as Step Functions answers them."""

    def __init__(self, executions: dict[str, dict]):
        self.executions = executions

    def describe_execution(self, executionArn):
        if executionArn not in self.executions:
            raise ClientError(
                {"Error": {"Code": "ExecutionDoesNotExist", "Message": "no"}}, "DescribeExecution"
            )
        return {"startDate": NOW, **self.executions[executionArn]}

    def get_execution_history(self, **kwargs):
        return {"events": []}


def record(run_id: str, status: str, pipeline: str = "inference", **extra) -> records.RunRecord:
    return records.RunRecord(
        run_id=run_id, pipeline=pipeline, env="test", target="local", status=status, started_at="2026-12-01",
        prefix="s3://b/runs/x", project={}, inputs={}, code={}, images={},
        parameters={}, definition_sha256="x",
        state_machine_arn="arn:sm", execution_arn=f"arn:exec:{run_id}", **extra,
    )  # fmt: skip


def test_each_unfinished_record_takes_its_executions_state():
    settings = config.load("local")
    output = {
        "run": {"PredictionsUri": "s3://b/p", "ModelName": "m"},
        "model_source": {"ModelArtifactUri": "s3://m", "RunId": "training-1"},
    }
    sfn = FakeSfn(
        {
            "arn:exec:a": {"status": "RUNNING"},
            "arn:exec:b": {"status": "SUCCEEDED", "output": json.dumps(output)},
            "arn:exec:c": {"status": "FAILED", "error": "States.TaskFailed", "cause": "boom"},
        }
    )
    saved = []
    unfinished = [
        record("a", "INTERRUPTED"),
        record("b", "RUNNING"),
        record("c", "INTERRUPTED"),
        record("d", "RUNNING"),
    ]

    changed = reconcile.reconcile(settings, sfn, logs=None, unfinished=unfinished, save=saved.append)

    by_id = {r.run_id: r for r in changed}
    assert by_id["a"].status == "RUNNING" and by_id["a"].error is None
    assert by_id["b"].status == "SUCCEEDED" and by_id["b"].outputs["predictions_uri"] == "s3://b/p"
    assert by_id["b"].consumed == {"model": "training-1"}
    assert (by_id["c"].status, by_id["c"].error) == ("FAILED", "States.TaskFailed")
    assert by_id["d"].status == "LOST" and "did not keep what became of it" in by_id["d"].cause
    assert saved == changed


def test_finished_records_are_left_alone():
    settings = config.load("local")
    done = record("e", "SUCCEEDED")
    assert reconcile.reconcile(settings, FakeSfn({}), None, [done], save=lambda r: None) == []


def test_the_ways_out_of_watching_say_what_is_known():
    for reason, status, error in [
        (KeyboardInterrupt(), "INTERRUPTED", "Interrupted"),
        (Terminated(), "INTERRUPTED", "Interrupted"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:4566"), "LOST", "TargetUnreachable"),
        (RuntimeError("odd"), "INTERRUPTED", "RuntimeError"),
    ]:
        unfinished = record("f", "RUNNING")
        reconcile.mark_unfinished(unfinished, reason)
        assert (unfinished.status, unfinished.error) == (status, error), reason
        assert unfinished.ended_at and unfinished.cause


def test_what_the_local_aws_kept_of_ended_executions_settles_runs_it_no_longer_serves(tmp_path):
    from harness.emulator.execution_store import ExecutionStore, StoredExecutions

    settings = config.load("local")
    output = {
        "run": {"PredictionsUri": "s3://b/p", "ModelName": "m"},
        "model_source": {"ModelArtifactUri": "s3://m", "RunId": "training-1"},
    }
    entered = {
        "id": 1,
        "type": "TaskStateEntered",
        "timestamp": NOW,
        "stateEnteredEventDetails": {"name": "T"},
    }
    ExecutionStore(tmp_path).record(
        {"executionArn": "arn:exec:g", "status": "SUCCEEDED", "startDate": NOW, "stopDate": NOW,
         "output": json.dumps(output)},
        [entered],
    )  # fmt: skip
    unfinished = [record("g", "RUNNING"), record("h", "INTERRUPTED"), record("i", "SUCCEEDED")]
    # the local AWS restarted (it serves none of them), or is not running at all (no client)
    for sfn in (FakeSfn({}), None):
        kept = [dataclasses.replace(r) for r in unfinished]
        changed = reconcile.reconcile(
            settings, sfn, None, kept, save=lambda r: None, kept=StoredExecutions(tmp_path)
        )
        by_id = {r.run_id: r for r in changed}
        assert by_id["g"].status == "SUCCEEDED" and by_id["g"].outputs["predictions_uri"] == "s3://b/p"
        assert by_id["g"].steps[0]["name"] == "T" and by_id["g"].steps[0]["status"] == "SUCCEEDED"
        assert by_id["h"].status == "LOST" and "i" not in by_id
