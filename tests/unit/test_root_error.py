"""The failed job's own root error, as the one line a failed run prints."""

from __future__ import annotations

import json

from harness import execute, records, runs

TOOLKIT_EMPTY = (
    "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
    'ErrorMessage ""\nCommand "/usr/bin/python3 train.py"'
)
TOOLKIT_CAPTURED = (
    "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
    'ErrorMessage "Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n'
    'RuntimeError: the data has no rows\n"\nCommand "/usr/bin/python3 train.py"'
)
LOG = [
    "Invoking script with the following command:",
    "Traceback (most recent call last):",
    '  File "/opt/ml/code/train.py", line 3, in <module>',
    "    raise RuntimeError('the data has no rows')",
    "RuntimeError: the data has no rows",
    "ExecuteUserScriptError:",
    "ExitCode 1",
]


def _cause(reason: str, job: str = "run-1-train") -> str:
    return json.dumps({"TrainingJobName": job, "FailureReason": reason})


def test_a_plain_job_failure_is_its_exception_line_and_exit_code():
    reason = "AlgorithmError: Traceback...\nValueError: bad input, exit code: 1"
    assert execute.root_error(_cause(reason)) == ("run-1-train", "ValueError: bad input (exit code 1)")
    killed = "AlgorithmError: , exit code: 137"
    assert execute.root_error(_cause(killed))[1] == "killed: out of memory or by a signal (exit code 137)"


def test_the_toolkits_wrapper_is_not_the_root_the_exception_inside_it_is():
    assert execute.root_error(_cause(TOOLKIT_CAPTURED))[1] == "RuntimeError: the data has no rows"


def test_with_nothing_inside_the_wrapper_the_root_comes_from_the_jobs_log():
    assert execute.root_error(_cause(TOOLKIT_EMPTY), LOG)[1] == "RuntimeError: the data has no rows"
    assert execute.root_error(_cause(TOOLKIT_EMPTY))[1].startswith("AlgorithmError: ExecuteUserScriptError")


class Logs:
    """The Logs client's two calls the log reader makes, over one job's lines."""

    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def describe_log_streams(self, logGroupName, logStreamNamePrefix):
        if logGroupName != "/aws/sagemaker/TrainingJobs":
            raise self.exceptions.ResourceNotFoundException()
        return {"logStreams": [{"logStreamName": f"{logStreamNamePrefix}algo-1-1"}]}

    def get_log_events(self, **arguments):
        return {"events": [{"message": line} for line in LOG], "nextForwardToken": "t"}


def test_the_failure_line_reads_the_jobs_log_for_the_root():
    record = records.RunRecord(
        run_id="run-1", pipeline="training", env="local", target="local", status="FAILED", started_at="",
        prefix="s3://b/runs/run-1", project={}, inputs={}, code={}, images={}, parameters={},
        definition_sha256="", state_machine_arn="", error="States.TaskFailed", cause=_cause(TOOLKIT_EMPTY),
    )  # fmt: skip
    line = runs.failure_line(record, Logs())
    assert "FAILED: States.TaskFailed: RuntimeError: the data has no rows (job run-1-train;" in line
    assert "RuntimeError" not in runs.failure_line(record, None)  # no log: the wrapper, as it is
