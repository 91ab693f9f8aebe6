"""Run records: what every execution used and produced (traceability).

Written as JSON to s3://<bucket>/runs/<run id>/record.json and to
<project>/.mlharness/runs/<env>/<run id>.json (MLHARNESS_HOME moves it), so `status` works
without the target and the local AWS's S3 keeps them across restarts.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from harness.emulator.state_files import quarantine
from harness.paths import write_atomically

SCHEMA_VERSION = 3


@dataclasses.dataclass
class RunRecord:
    run_id: str
    pipeline: str
    env: str
    target: str
    # RUNNING | SUCCEEDED | FAILED | ABORTED | TIMED_OUT, as the execution says; INTERRUPTED: the
    # harness stopped watching (the execution may go on); LOST: the target no longer knows it.
    status: str
    started_at: str
    prefix: str  # s3://bucket/runs/<run id>: every artifact of the run lives under it
    project: dict  # name, git_revision (of the project's repository), git_dirty
    inputs: dict  # input name -> {path, uri, sha256}
    code: dict  # uri, sha256 (the code bundle)
    images: dict  # image name -> {reference (by digest in ECR), id, tag} of each image its jobs ran
    parameters: dict
    definition_sha256: str
    state_machine_arn: str
    execution_arn: str | None = None
    ended_at: str | None = None
    outputs: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    steps: list = dataclasses.field(default_factory=list)
    error: str | None = None
    cause: str | None = None
    produced: dict = dataclasses.field(default_factory=dict)  # artifact kind -> record it handed on
    consumed: dict = dataclasses.field(default_factory=dict)  # artifact kind -> run id whose it used
    summary: list = dataclasses.field(default_factory=list)  # [label, value] lines
    headline: str = ""  # what `status` shows for it
    resources: dict = dataclasses.field(default_factory=dict)  # SageMaker kind -> name, shown live
    execution_input: dict = dataclasses.field(default_factory=dict)  # as started
    # What the local AWS's step cache did with each job: {job, kind, outcome (hit, miss, not
    # cached), detail (the job served from, or why not)}. Empty on AWS.
    cache: list = dataclasses.field(default_factory=list)
    # What the local target did not reproduce or did differently from AWS: {subject (a job, an
    # endpoint, a schedule; "" for none), kind, message}. Empty on AWS.
    fidelity: list = dataclasses.field(default_factory=list)
    # Resuming: each earlier attempt of this run's execution (its status, error and when it
    # ended) before a redrive; the run this one resumes, and the run that resumed it.
    attempts: list = dataclasses.field(default_factory=list)
    resumes: str | None = None
    resumed_by: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=str)


def new_run_id(prefix: str) -> str:
    """Unique, sortable, short enough for SageMaker names (63 characters), and carrying the
    pipeline's prefix, so every name derived from it does too."""
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


# A run id without its pipeline prefix: the name of the execution the harness started for it.
_RUN_SUFFIX = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def started_by_harness(execution_name: str) -> bool:
    """Whether an execution was named by new_run_id (not, say, started by a schedule)."""
    return bool(_RUN_SUFFIX.match(execution_name))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save(record: RunRecord, records_dir: Path, s3=None, bucket: str | None = None, best_effort=False) -> Path:
    """Write the record into records_dir (atomically) and, when given a client, to S3. best_effort:
    a target that cannot take it (stopped, full) leaves the local copy; reconciling writes it again."""
    text = record.to_json()
    path = write_atomically(Path(records_dir) / f"{record.run_id}.json", text)
    if s3 is not None and bucket:
        try:
            s3.put_object(
                Bucket=bucket,
                Key=f"runs/{record.run_id}/record.json",
                Body=text.encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError):
            if not best_effort:
                raise
    return path


def load_all(records_dir: Path) -> list[RunRecord]:
    """The records of one environment (its folder), oldest first."""
    records = []
    for path in sorted(Path(records_dir).glob("*.json")):
        try:
            record = RunRecord(**_current(json.loads(path.read_text())))
        except (ValueError, TypeError, KeyError, AttributeError) as ex:
            quarantine(path, f"not a run record: {type(ex).__name__}: {ex}")  # moved aside, named
            continue
        wrong = [name for name in _TEXT_FIELDS if not isinstance(getattr(record, name), str)]
        if wrong:
            quarantine(path, f"not a run record: {', '.join(wrong)} not text")
            continue
        records.append(record)
    return sorted(records, key=lambda r: r.started_at)


_TEXT_FIELDS = ("run_id", "pipeline", "env", "target", "status", "started_at")


def _current(fields: dict) -> dict:
    """A record in today's schema: version 1 named the model's training run and kept the
    model's URIs among the outputs; version 2 had one data file, one image and the git revision
    among the code's fields."""
    if fields.get("schema_version", 1) >= SCHEMA_VERSION:
        return fields
    fields = dict(fields)
    data = fields.pop("data", None)
    fields.setdefault("inputs", {"data": data} if data else {})
    image = fields.pop("image", None)
    fields.setdefault("images", {"job": image} if image else {})
    code = dict(fields.get("code") or {})
    revision = code.pop("git_revision", None)
    fields["code"] = code
    fields.setdefault(
        "project",
        {
            "name": None,
            "git_revision": (revision or "").removesuffix("+dirty") or None,
            "git_dirty": bool(revision and revision.endswith("+dirty")),
        },
    )
    used = fields.pop("training_run_id", None)
    if used:
        fields["consumed"] = {"model": used}
    outputs = fields.get("outputs") or {}
    if fields.get("status") == "SUCCEEDED" and "model_artifact_uri" in outputs and not used:
        fields["produced"] = {
            "model": {
                "RunId": fields["run_id"],
                "ModelArtifactUri": outputs["model_artifact_uri"],
                "TransformerUri": outputs.get("transformer_uri"),
                "Metrics": fields.get("metrics") or {},
            }
        }
    fields["schema_version"] = SCHEMA_VERSION
    return fields


def find(records_dir: Path, run_id: str) -> RunRecord | None:
    return next((r for r in load_all(records_dir) if r.run_id == run_id), None)


def latest_producing(records_dir: Path, kind: str) -> RunRecord | None:
    """The latest successful run that produced an artifact of `kind`."""
    done = [r for r in load_all(records_dir) if r.status == "SUCCEEDED" and kind in r.produced]
    return done[-1] if done else None
