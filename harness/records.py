"""Run records: what every execution used and produced (traceability).

Written as JSON to s3://<bucket>/runs/<run id>/record.json and to
$MLHARNESS_HOME/runs/<env>/<run id>.json, so `status` works without the target and the
local AWS's S3 keeps them across restarts.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from harness.paths import records_dir as default_records_dir
from harness.paths import write_atomically

SCHEMA_VERSION = 1


@dataclasses.dataclass
class RunRecord:
    run_id: str
    pipeline: str
    env: str
    target: str
    status: str  # RUNNING | SUCCEEDED | FAILED | ABORTED | TIMED_OUT
    started_at: str
    prefix: str  # s3://bucket/runs/<run id>: every artifact of the run lives under it
    data: dict  # uri, sha256
    code: dict  # uri, sha256, git_revision
    image: dict  # reference, id
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
    training_run_id: str | None = None  # inference: the training run whose artifacts it used
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=str)


def new_run_id(pipeline: str) -> str:
    """Unique, sortable, and short enough for SageMaker job names (63 characters)."""
    return f"{pipeline}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


# A run id without its pipeline prefix: the name of the execution the harness started for it.
_RUN_SUFFIX = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def started_by_harness(execution_name: str) -> bool:
    """Whether an execution was named by new_run_id (not, say, started by a schedule)."""
    return bool(_RUN_SUFFIX.match(execution_name))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save(record: RunRecord, s3=None, bucket: str | None = None, records_dir: Path | None = None) -> Path:
    """Write the record locally (atomically) and, when given a client, to S3."""
    text = record.to_json()
    folder = Path(records_dir or default_records_dir()) / record.env
    path = write_atomically(folder / f"{record.run_id}.json", text)
    if s3 is not None and bucket:
        s3.put_object(
            Bucket=bucket,
            Key=f"runs/{record.run_id}/record.json",
            Body=text.encode(),
            ContentType="application/json",
        )
    return path


def load_all(env: str, records_dir: Path | None = None) -> list[RunRecord]:
    folder = Path(records_dir or default_records_dir()) / env
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(RunRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue  # a foreign or damaged file is skipped, not fatal
    return sorted(records, key=lambda r: r.started_at)


def find(env: str, run_id: str, records_dir: Path | None = None) -> RunRecord | None:
    return next((r for r in load_all(env, records_dir) if r.run_id == run_id), None)


def latest_successful(env: str, pipeline: str, records_dir: Path | None = None) -> RunRecord | None:
    done = [r for r in load_all(env, records_dir) if r.pipeline == pipeline and r.status == "SUCCEEDED"]
    return done[-1] if done else None
