"""Start an execution and watch it through the Step Functions API only.

Progress comes from the execution history (each state entered, succeeded or
failed; each job submitted and how it ended) and from CloudWatch Logs (each
job's container output), so the same code watches the local AWS and AWS.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from mlharness import kinds

POLL_S = 2.0  # AWS throttles GetExecutionHistory; a target may poll faster (the local one does)
# The jobs whose containers log: Step Functions action -> the kind.
LOGGING_JOBS = {kind.integration: kind for kind in kinds.JOBS if kind.containers}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclasses.dataclass
class StepTiming:
    name: str
    status: str
    started: str
    ended: str | None = None
    seconds: float | None = None


@dataclasses.dataclass
class ExecutionResult:
    arn: str
    status: str
    output: dict | None
    error: str | None
    cause: str | None
    steps: list[StepTiming]


def start(sfn, state_machine_arn: str, name: str, execution_input: dict) -> str:
    return sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]


class Watcher:
    """Polls history and job logs, reports progress lines, returns how the execution ended."""

    def __init__(
        self, sfn, logs, report: Callable[[str], None] = print, show_logs: bool = True, poll_s: float = POLL_S
    ):
        self.sfn = sfn
        self.poll_s = poll_s
        self.logs = logs
        self.report = report
        self.show_logs = show_logs
        self._last_event_id = 0
        self._steps: dict[str, StepTiming] = {}
        self._entered: dict[int, str] = {}
        self._tails: dict[str, _LogTail] = {}

    def skip_to(self, event_id: int) -> None:
        """Watch only the events after this one (a redriven execution's new attempt)."""
        self._last_event_id = event_id

    def wait(self, execution_arn: str, timeout: float | None = None) -> ExecutionResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            self._poll_history(execution_arn)
            self._poll_logs()
            if described["status"] in TERMINAL:
                self._poll_history(execution_arn)
                self._poll_logs()
                self._end_running_steps(described["status"], described.get("stopDate"))
                return ExecutionResult(
                    arn=execution_arn,
                    status=described["status"],
                    output=json.loads(described["output"]) if described.get("output") else None,
                    error=described.get("error"),
                    cause=described.get("cause"),
                    steps=list(self._steps.values()),
                )
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still running after {timeout} s")
            time.sleep(self.poll_s)

    # -- history ---------------------------------------------------------------
    def _poll_history(self, execution_arn: str) -> None:
        for event in _events_after(self.sfn, execution_arn, self._last_event_id):
            self._on_event(event)
            self._last_event_id = event["id"]

    def _on_event(self, event: dict) -> None:
        kind = event["type"]
        stamp = event["timestamp"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self._entered[event["id"]] = name
            self._steps[name] = StepTiming(name, "RUNNING", _iso(stamp))
            self.report(f"-> {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            step = self._steps.get(name)
            if step is not None and step.status == "RUNNING":
                step.status, step.ended = "SUCCEEDED", _iso(stamp)
                step.seconds = round((stamp - datetime.fromisoformat(step.started)).total_seconds(), 2)
                self.report(f"   {name} succeeded ({step.seconds:.1f} s)")
        elif kind == "TaskSubmitted":
            self._on_job_submitted(event["taskSubmittedEventDetails"])
        elif kind == "TaskSucceeded":
            self._on_job_ended(event["taskSucceededEventDetails"].get("output"))
        elif kind == "TaskFailed":  # the execution's own failure is reported by the caller
            details = event["taskFailedEventDetails"]
            self._fail_running_step(stamp)
            self.report(f"   failed: {details.get('error', '')}: {failure_text(details.get('cause', ''))}")

    def _end_running_steps(self, status: str, stamp) -> None:
        """An ended execution has no step that still runs: one it left running (stopped, timed
        out, failed elsewhere) ends as the execution did."""
        for step in self._steps.values():
            if step.status == "RUNNING":
                step.status = status
                if stamp is not None:
                    step.ended = _iso(stamp)
                    step.seconds = round((stamp - datetime.fromisoformat(step.started)).total_seconds(), 2)

    def _fail_running_step(self, stamp) -> None:
        for step in self._steps.values():
            if step.status == "RUNNING":
                step.status, step.ended = "FAILED", _iso(stamp)
                step.seconds = round((stamp - datetime.fromisoformat(step.started)).total_seconds(), 2)

    def _on_job_submitted(self, details: dict) -> None:
        action = details.get("resource", "").removesuffix(".sync")
        if details.get("resourceType") != "sagemaker" or action not in LOGGING_JOBS:
            return
        kind = LOGGING_JOBS[action]
        arn = str(_json_object(details.get("output")).get(kind.arn_member, ""))
        job = arn.rsplit("/", 1)[-1]
        if job:
            self.report(f"   job {job}: InProgress")
            self._tails[job] = _LogTail(kind.log_group, job)

    def _on_job_ended(self, output: str | None) -> None:
        description = _json_object(output)
        for kind in LOGGING_JOBS.values():
            name = description.get(kind.name_member)
            if name:
                self._poll_logs()
                self._tails.pop(name, None)
                self.report(f"   job {name}: {description.get(kind.status_member)}")

    # -- logs -----------------------------------------------------------------
    def _poll_logs(self) -> None:
        if not self.show_logs:
            return
        for tail in list(self._tails.values()):
            for line in tail.read(self.logs):
                self.report(f"   | {line}")


class _LogTail:
    def __init__(self, group: str, job: str):
        self.group = group
        self.job = job
        self._tokens: dict[str, str | None] = {}

    def read(self, logs) -> list[str]:
        try:
            streams = logs.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=f"{self.job}/")
        except logs.exceptions.ResourceNotFoundException:
            return []
        lines = []
        for stream in streams.get("logStreams", []):
            name = stream["logStreamName"]
            arguments = {"logGroupName": self.group, "logStreamName": name, "startFromHead": True}
            if self._tokens.get(name):
                arguments["nextToken"] = self._tokens[name]
            answer = logs.get_log_events(**arguments)
            lines.extend(e["message"] for e in answer.get("events", []))
            self._tokens[name] = answer.get("nextForwardToken")
        return lines


def run_logs(logs, run_id: str) -> dict[str, list[str]]:
    """Every job log of a run (its job names start with the run id), stream by stream."""
    found: dict[str, list[str]] = {}
    for group in (kind.log_group for kind in LOGGING_JOBS.values()):
        try:
            streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{run_id}-")[
                "logStreams"
            ]
        except logs.exceptions.ResourceNotFoundException:
            continue
        for stream in sorted(
            streams, key=lambda s: s.get("firstEventTimestamp") or s.get("creationTime") or 0
        ):
            tail = _LogTail(group, stream["logStreamName"].split("/", 1)[0])
            found[f"{group}/{stream['logStreamName']}"] = tail.read(logs)
    return found


def jobs_a_redrive_would_rename(sfn, execution_arn: str, top_level_states: set[str]) -> list[str]:
    """SageMaker jobs the state where a finished execution stopped created under names its
    input fixed: a redrive runs that state again with the same names, which SageMaker
    refuses (ResourceInUse), on AWS as here."""
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, reverseOrder=True)
    names = []
    for event in history["events"]:  # newest first, back to where that state was entered
        kind = event["type"]
        if kind.endswith("StateEntered") and event["stateEnteredEventDetails"]["name"] in top_level_states:
            break
        if kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            action = details.get("resource", "").removesuffix(".sync")
            if details.get("resourceType") == "sagemaker" and action.startswith("create"):
                parameters = _json_object(details.get("parameters"))
                names += [str(v) for k, v in parameters.items() if k.endswith("JobName")]
    return names


def last_event_id(sfn, execution_arn: str) -> int:
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1, reverseOrder=True)["events"]
    return events[0]["id"] if events else 0


def _events_after(sfn, execution_arn: str, last_id: int) -> list[dict]:
    """The events after `last_id`, oldest first. Read newest first and only back to the
    last one seen, so a poll of a long execution costs one call, not its whole history."""
    events, token = [], None
    while True:
        arguments = {"executionArn": execution_arn, "maxResults": 1000, "reverseOrder": True}
        if token:
            arguments["nextToken"] = token
        answer = sfn.get_execution_history(**arguments)
        fresh = [e for e in answer["events"] if e["id"] > last_id]
        events.extend(fresh)
        token = answer.get("nextToken")
        if not token or len(fresh) < len(answer["events"]):
            return events[::-1]


_ROOT_ERROR = re.compile(r"^(?:[\w.]+(?:Error|Exception|Exit|Interrupt)|[a-z_]+: )\S*.*$")
# A Python exception line, as a job's log ends with it: "RuntimeError: the data has no rows".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)(?::.*)?$")
# What the SageMaker training toolkit wraps a script's failure in: not the root.
_TOOLKIT_WRAPPER = re.compile(r"^(?:AlgorithmError: )?\w*(?:ExecuteUserScriptError|CalledProcessError)\b")


def failed_job(cause: str | None) -> str | None:
    """The name of the SageMaker job a failed task's cause describes, if it describes one."""
    described = _json_object(cause)
    return next(
        (described[k] for k in (kind.name_member for kind in LOGGING_JOBS.values()) if k in described),
        None,
    )


def root_error(cause: str | None, log_lines: Sequence[str] = ()) -> tuple[str | None, str]:
    """(the failed job's name, its own root error) from a failed task's cause: the exception
    line of its log, `exit code N`, or `killed: out of memory`; for other causes, their text.
    A toolkit's wrapper (`ExecuteUserScriptError`) is not a root: the exception line inside
    it, or else the last one of the job's log (`log_lines`), is."""
    described = _json_object(cause)
    job = failed_job(cause)
    reason = described.get("FailureReason") if described else None
    if not reason:
        return job, _short(cause or "", 300)
    body, _, code = reason.rpartition(", exit code: ")
    body = body.removeprefix("AlgorithmError: ") if code.strip().isdigit() else reason
    lines = [
        line.strip().removeprefix('ErrorMessage "').strip() for line in body.splitlines() if line.strip()
    ]
    exception = next((line for line in reversed(lines) if _ROOT_ERROR.match(line)), None)
    if exception is None or _TOOLKIT_WRAPPER.match(exception):
        logged = [line.strip() for line in log_lines]
        exception = next(
            (
                line
                for line in reversed(logged)
                if _EXCEPTION_LINE.match(line) and not _TOOLKIT_WRAPPER.match(line)
            ),
            exception,
        )
    if code.strip() == "137" and not exception:
        return job, "killed: out of memory or by a signal (exit code 137)"
    found = exception or (lines[-1] if lines else reason)
    return job, _short(found + (f" (exit code {code.strip()})" if code.strip().isdigit() else ""), 300)


def job_log_lines(logs, job: str) -> list[str]:
    """Every line a job logged (CloudWatch Logs, its kind's group), stream by stream."""
    lines: list[str] = []
    for group in dict.fromkeys(kind.log_group for kind in LOGGING_JOBS.values()):
        lines += _LogTail(group, job).read(logs)
    return lines


def _json_object(text: str | None) -> dict:
    """A task's output as an object ({} for none, or for output that is not an object)."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def failure_text(cause: str | None) -> str:
    """The useful part of a cause: a failed job's FailureReason rather than its whole description."""
    try:
        described = json.loads(cause or "")
    except ValueError:
        return _short(cause or "")
    if isinstance(described, dict) and described.get("FailureReason"):
        return _short(described["FailureReason"])
    return _short(cause or "")


def _iso(stamp: datetime) -> str:
    return stamp.isoformat()


def _short(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
