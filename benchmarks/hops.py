"""The per-hop breakdown of the local target's overhead: where the time between a job's
submission and the next state goes, from the execution history (Step Functions' side) and the
local AWS's job timeline (`/_mlharness/timeline`: harness/emulator/sagemaker/timeline.py)."""

from __future__ import annotations

import json
import statistics
import urllib.request

# (label, from, to): marks of the job timeline, or of the history ("scheduled": the Task asks
# for the job; "task succeeded": .sync saw it complete; "next state": the next state entered).
HOPS = (
    ("Task scheduled -> job created", "scheduled", "created"),
    ("job created -> container started (inputs staged)", "created", "container started"),
    ("container started -> its first line", "container started", "first line"),
    ("(the job's own work: first to last line)", "first line", "last line"),
    ("last line -> container exited", "last line", "container exited"),
    ("container exited -> Describe Completed (outputs uploaded)", "container exited", "completed"),
    ("Describe Completed -> .sync Task succeeded", "completed", "task succeeded"),
    ("Task succeeded -> next state entered", "task succeeded", "next state"),
)


def job_marks(sfn, endpoint_url: str, execution_arn: str, run_id: str) -> list[dict[str, float]]:
    """Every job of one execution: the timeline's marks and the history's, as epoch seconds."""
    with urllib.request.urlopen(f"{endpoint_url}/_mlharness/timeline?jobs={run_id}-", timeout=10) as answer:  # noqa: S310
        timeline = json.load(answer)["jobs"]
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    found, current = [], None
    for event in events:
        kind, stamp = event["type"], event["timestamp"].timestamp()
        if kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            parameters = json.loads(details.get("parameters") or "{}")
            names = [v for k, v in parameters.items() if k.endswith("JobName")]
            action = details.get("resource", "").removesuffix(".sync")
            if details.get("resourceType") == "sagemaker" and action.startswith("create") and names:
                current = {"job": names[0], "scheduled": stamp, **timeline.get(names[0], {})}
                found.append(current)
            else:
                current = None
        elif kind == "TaskSucceeded" and current is not None:
            current["task succeeded"] = stamp
        elif kind.endswith("StateEntered") and current is not None and "task succeeded" in current:
            current["next state"] = stamp
            current = None
    return found


def breakdown(jobs: list[dict[str, float]]) -> list[tuple[str, float, int]]:
    """(hop, median milliseconds over the jobs that have both marks, how many jobs)."""
    rows = []
    for label, start, end in HOPS:
        spans = [(job[end] - job[start]) * 1000 for job in jobs if start in job and end in job]
        if spans:
            rows.append((label, statistics.median(spans), len(spans)))
    return rows
