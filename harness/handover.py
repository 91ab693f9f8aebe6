"""What a pipeline consumes, found from the declarations alone.

For each artifact a selected pipeline consumes (a model, say), in this order: the run
of this invocation that produced one; the run `--from-run` names; the latest
successful run recorded here that produced one; the one a producing pipeline
publishes in the bucket. Everything that can be settled before anything is deployed
is settled then, so a run that cannot get its input fails in one line up front.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from harness import records
from harness.config import Config
from harness.errors import HarnessError
from mlharness.contract import Artifact, Pipeline


@dataclasses.dataclass(frozen=True)
class Source:
    record: Mapping  # the artifact record, as its producer handed it on
    run_id: str
    how: str  # "this invocation" | "named" | "recorded" | "published at s3://..."


class Handover:
    def __init__(self, config: Config, selected: Sequence[Pipeline], from_run: str | None = None):
        self.config = config
        self.selected = list(selected)
        self._produced: dict[str, Source] = {}
        self._resolved: dict[str, Source] = {}
        self._unresolved: list[Artifact] = []
        wanted = self._wanted_from_outside()
        named = _named_run(config, from_run) if from_run else None
        if named is not None:
            usable = [a for a in wanted if a.kind in named.produced]
            if not usable:
                needs = ", ".join(a.kind for a in wanted) or "nothing from another run"
                raise HarnessError(
                    f"--from-run {from_run}: that run produced {', '.join(named.produced) or 'nothing'}; "
                    f"the selected pipelines need {needs}"
                )
        for artifact in wanted:
            if named is not None and artifact.kind in named.produced:
                self._resolved[artifact.kind] = self._checked(artifact, named, "named")
                continue
            recorded = records.latest_producing(config.records_dir, artifact.kind)
            if recorded is not None:
                self._resolved[artifact.kind] = self._checked(artifact, recorded, "recorded")
            else:
                self._unresolved.append(artifact)

    def _wanted_from_outside(self) -> list[Artifact]:
        """Artifacts consumed by a selected pipeline and not produced by one selected before it."""
        wanted: dict[str, Artifact] = {}
        produced: set[str] = set()
        for pipeline in self.selected:
            for artifact in pipeline.consumes:
                if artifact.kind not in produced:
                    wanted.setdefault(artifact.kind, artifact)
            produced |= {a.kind for a in pipeline.produces}
        return list(wanted.values())

    def _checked(self, artifact: Artifact, run: records.RunRecord, how: str) -> Source:
        record = run.produced[artifact.kind]
        missing = artifact.missing(record)
        if missing:
            raise HarnessError(
                f"the {artifact.kind} of run {run.run_id} lacks {', '.join(missing)} (recorded by an older "
                f"version): run --pipeline {self._producer(artifact).name} again"
            )
        return Source(record, run.run_id, how)

    def resolve_published(self, s3, bucket: str) -> None:
        """Read what producers publish for the artifacts no run here provides; fail in one line
        when there is none (before anything is deployed)."""
        for artifact in self._unresolved:
            producer = self._producer(artifact)
            key = producer.publishes.get(artifact.kind)
            where = f"s3://{bucket}/{key}" if key else None
            record = _read_json(s3, bucket, key) if key else None
            if record is None:
                published = f" and none is published at {where}" if where else ""
                raise HarnessError(
                    f"no successful run that produced a {artifact.kind} is recorded for environment "
                    f"{self.config.env}{published}: run --pipeline {producer.name} first"
                )
            missing = artifact.missing(record)
            if missing:
                raise HarnessError(
                    f"the {artifact.kind} published at {where} lacks {', '.join(missing)} (published by an "
                    f"older version): run --pipeline {producer.name} again"
                )
            self._resolved[artifact.kind] = Source(
                record, str(record.get("RunId", "?")), f"published at {where}"
            )
        self._unresolved = []

    def consumed_by(self, pipeline: Pipeline) -> dict[str, Source]:
        found = {}
        for artifact in pipeline.consumes:
            source = self._produced.get(artifact.kind) or self._resolved.get(artifact.kind)
            if source is None:
                raise HarnessError(f"pipeline {pipeline.name}: no {artifact.kind} to consume")
            found[artifact.kind] = source
        return found

    def add(self, run: records.RunRecord) -> None:
        """A run of this invocation finished: what it produced goes to the pipelines after it."""
        if run.status == "SUCCEEDED":
            for kind, record in run.produced.items():
                self._produced[kind] = Source(record, run.run_id, "this invocation")

    def _producer(self, artifact: Artifact) -> Pipeline:
        producers = [p for p in self.config.pipelines if artifact.kind in {a.kind for a in p.produces}]
        return next((p for p in producers if artifact.kind in p.publishes), producers[0])


def _named_run(config: Config, run_id: str) -> records.RunRecord:
    record = records.find(config.records_dir, run_id)
    if record is None:
        raise HarnessError(f"no run {run_id} recorded for environment {config.env}")
    if record.status != "SUCCEEDED":
        raise HarnessError(f"run {run_id} did not succeed ({record.status})")
    return record


def _read_json(s3, bucket: str, key: str) -> dict | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
        return None
    try:
        found = json.loads(body)
    except ValueError:
        raise HarnessError(f"s3://{bucket}/{key} is not JSON: publish it again") from None
    return found if isinstance(found, dict) else None
