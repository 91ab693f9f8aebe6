"""The SageMaker jobs the local AWS owns: one model for processing, training and transform jobs
(tuning.TuningRun builds on it).

A job is the request as received, a status that moves only along the transitions declared
here, its times, and what its run produced. Its Describe answer is built from botocore's
output shape of Describe<Kind>: each member the request has is the request's; the others
are the job's own (its ARN, status, times, failure reason, secondary statuses, and the
members its run set: the model artifacts, the final metrics, a processing job's exit
message). moto keeps the jobs in its dicts, so tags by ARN work on them as on the rest.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Final

from mlharness.kinds import TRAINING, Kind

# The statuses a job moves to from each; the terminal ones (Completed, Failed, Stopped) to none.
TRANSITIONS: Final = {
    "InProgress": frozenset({"Stopping", "Completed", "Failed", "Stopped"}),
    "Stopping": frozenset({"Completed", "Failed", "Stopped"}),
}
# What Describe answers for members a request may leave out, as AWS answers them (the SDK's
# Estimator.attach reads OutputDataConfig.KmsKeyId, "" when no key was given).
DESCRIBE_DEFAULTS: Final = {
    TRAINING: {
        "HyperParameters": {},
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": False,
    },
}
NESTED_DEFAULTS: Final = {TRAINING: {"OutputDataConfig": {"KmsKeyId": ""}}}
# The secondary status a training job ends in, and its message, as AWS reports them.
TRAINING_ENDS: Final = {
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped by user",
    "MaxRuntimeExceeded": "Training job runtime exceeded MaxRuntimeInSeconds provided",
    "MaxWaitTimeExceeded": "Training job exceeded MaxWaitTimeInSeconds provided",
}


class InvalidTransition(RuntimeError):
    """A status change the job's lifecycle does not have (a bug of the local AWS, never a user's)."""


class Job:
    def __init__(self, kind: Kind, arn: str, request: dict[str, Any], created: datetime):
        self.kind = kind
        self.arn = arn
        self.request = request
        self.name: str = request[kind.name_member]
        self.status = "InProgress"
        self.creation_time = self.last_modified_time = created
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.failure_reason: str | None = None
        self.secondary_status: str | None = None
        self.transitions: list[dict[str, Any]] = []  # SecondaryStatusTransitions
        self.produced: dict[str, Any] = {}  # members its run set (ModelArtifacts, FinalMetricDataList, ...)
        self.tags: list[dict[str, str]] = list(request.get("Tags") or [])
        if kind.secondary_statuses:
            self.secondary(created, "Starting", "Launching requested ML instances")

    @property
    def ended(self) -> bool:
        return self.status in self.kind.terminal_statuses

    def move(self, status: str, now: datetime) -> None:
        """To `status`, along a declared transition."""
        if status != self.status and status not in TRANSITIONS.get(self.status, ()):
            raise InvalidTransition(f"{self.kind.title} {self.name}: {self.status} -> {status}")
        self.status = status
        self.last_modified_time = now

    def secondary(self, now: datetime, status: str, message: str) -> None:
        """A secondary status (training jobs), ending the one before."""
        if self.transitions and "EndTime" not in self.transitions[-1]:
            self.transitions[-1]["EndTime"] = now
        entry = {"Status": status, "StartTime": now, "StatusMessage": message}
        if status in TRAINING_ENDS:
            entry["EndTime"] = now
        self.transitions.append(entry)
        self.secondary_status = status
        self.last_modified_time = now

    def started(self, now: datetime) -> None:
        self.start_time = now
        self.last_modified_time = now
        if self.kind.secondary_statuses:
            self.secondary(now, "Downloading", "Downloading input data")
            self.secondary(now, "Training", "Training image download completed. Training in progress.")

    def finished(
        self,
        now: datetime,
        status: str,
        failure_reason: str | None = None,
        stop_reason: str | None = None,
        served_from: str | None = None,
    ) -> None:
        """Its end: the status it ended in, why (a failure; what stopped it), and, for a job the
        step cache served, which job's outputs it got."""
        self.end_time = now
        if failure_reason:
            self.failure_reason = failure_reason
        if self.kind.secondary_statuses:
            self._training_end(now, status, stop_reason, served_from)
        elif stop_reason == "MaxRuntimeExceeded":
            self.produced["ExitMessage"] = "Processing job runtime exceeded MaxRuntimeInSeconds provided"
        if served_from and not self.kind.secondary_statuses:
            self.produced["ExitMessage"] = served(served_from)
        self.move(status, now)

    def _training_end(self, now: datetime, status: str, stop_reason: str | None, served_from: str | None):
        if status == "Completed" and served_from:
            self.secondary(now, "Completed", f"{TRAINING_ENDS['Completed']}: {served(served_from)}")
        else:
            if status == "Completed":
                self.secondary(now, "Uploading", "Uploading generated training model")
            # a stop by one of the job's own limits is named by the limit
            ending = stop_reason if status == "Stopped" and stop_reason in TRAINING_ENDS else status
            self.secondary(now, ending, TRAINING_ENDS[ending])
        elapsed = int((now - self.start_time).total_seconds()) if self.start_time else 0
        self.produced["TrainingTimeInSeconds"] = self.produced["BillableTimeInSeconds"] = elapsed

    # -- what clients read -----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Describe<Kind>'s answer: the members of its output shape, from the request and the job."""
        members = _describe_members(self.kind.noun)
        times = self.kind.noun.removesuffix("Job")  # TrainingStartTime, HyperParameterTuningEndTime
        own = {
            self.kind.name_member: self.name,
            self.kind.arn_member: self.arn,
            self.kind.status_member: self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            f"{times}StartTime": self.start_time,
            f"{times}EndTime": self.end_time,
            "FailureReason": self.failure_reason,
            "SecondaryStatus": self.secondary_status,
            "SecondaryStatusTransitions": [dict(t) for t in self.transitions] or None,
            **self.produced,
        }
        answer = dict(DESCRIBE_DEFAULTS.get(self.kind, {}))
        answer |= {member: value for member, value in self.request.items() if member in members}
        for member, defaults in NESTED_DEFAULTS.get(self.kind, {}).items():
            if isinstance(answer.get(member), dict):
                answer[member] = {**defaults, **answer[member]}
        answer |= {member: value for member, value in own.items() if member in members and value is not None}
        return answer

    def summary(self, members: list[str]) -> dict[str, Any]:
        """Its entry in List<Kind>s: the summary shape's members of its Describe answer."""
        described = self.describe()
        return {member: described[member] for member in members if described.get(member) is not None}

    def gen_response_object(self) -> dict[str, Any]:
        """moto's name for a resource's description (its Search results)."""
        return self.describe()


def served(job: str) -> str:
    """What a job's description says of a job served from the step cache."""
    return f"served from the local AWS's step cache (the outputs of job {job})"


@functools.cache
def _describe_members(noun: str) -> frozenset[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.operation_model(f"Describe{noun}").output_shape.members)
