"""Records in line with their executions.

`apply_outcome` writes how an execution ended into its record (status, timings, error,
and the pipeline's outputs); the run loop uses it when a watched execution ends.
`mark_unfinished` says what is known when the harness stops watching early: the
execution may run on (INTERRUPTED), or the target no longer answers (LOST).
`reconcile` brings every record still RUNNING, INTERRUPTED or LOST up to date from
the target, or from what the local AWS kept of executions that ended (it may have stopped
since): `status` and `run` call it, so no record keeps saying RUNNING for an execution
that is not, and LOST means that nothing knows what became of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from harness import execute, records
from harness.config import Config

UNFINISHED = ("RUNNING", "INTERRUPTED", "LOST")


class Terminated(BaseException):
    """SIGTERM: unwinds like KeyboardInterrupt, so every record says what is known."""


def apply_outcome(record: records.RunRecord, pipeline, finished: execute.ExecutionResult) -> None:
    record.status = finished.status
    record.ended_at = records.now()
    record.steps = [dataclasses.asdict(step) for step in finished.steps]
    record.error, record.cause = finished.error, finished.cause
    if finished.status == "SUCCEEDED" and pipeline is not None:
        try:
            outputs = pipeline.outputs(record.execution_input, finished.output)
        except (KeyError, TypeError, ValueError) as ex:
            record.error = "OutputsUnreadable"
            record.cause = f"the {record.pipeline} pipeline could not read its execution's output: {ex!r}"
            return
        record.outputs = dict(outputs.values)
        record.metrics = dict(outputs.metrics)
        record.produced = {kind: dict(value) for kind, value in outputs.produced.items()}
        record.consumed = {**record.consumed, **outputs.consumed}
        record.summary = [list(line) for line in outputs.summary]
        record.headline = outputs.headline
        record.resources = dict(outputs.resources)


def mark_unfinished(record: records.RunRecord, reason: BaseException) -> None:
    """The harness stopped watching before the execution ended: say why, and what is known."""
    record.ended_at = records.now()
    if isinstance(reason, (KeyboardInterrupt, Terminated)):
        signal = "SIGTERM" if isinstance(reason, Terminated) else "Ctrl-C"
        record.status, record.error = "INTERRUPTED", "Interrupted"
        record.cause = f"the harness stopped watching ({signal}); `status` reads how the execution went on"
    elif isinstance(reason, (BotoCoreError, ConnectionError)):
        record.status, record.error = "LOST", "TargetUnreachable"
        record.cause = (
            f"the target stopped answering while the run was watched: {' '.join(str(reason).split())}"
        )
    else:
        record.status, record.error = "INTERRUPTED", type(reason).__name__
        record.cause = f"the harness stopped watching: {' '.join(str(reason).split())}"


def reconcile(
    config: Config,
    sfn,
    logs,
    unfinished: Iterable[records.RunRecord],
    save: Callable[[records.RunRecord], None],
    kept=None,
) -> list[records.RunRecord]:
    """Read each unfinished record's execution from the target (`sfn`; None when the local AWS
    is not running) or, when the target no longer knows it, from what it kept of ended
    executions (`kept`: the local AWS's state dir); return the records changed."""
    by_name = {p.name: p for p in config.pipelines}
    changed = []
    for record in unfinished:
        if record.status not in UNFINISHED or not record.execution_arn:
            continue
        source, described = _source_of(record.execution_arn, sfn, kept)
        if source is None:
            if record.status != "LOST":
                record.status, record.error = "LOST", "ExecutionDoesNotExist"
                record.cause = f"the {config.target} target no longer knows the execution" + (
                    " (the local AWS did not keep what became of it)" if config.target == "local" else ""
                )
                changed.append(record)
                save(record)
            continue
        if described["status"] == "RUNNING":
            if record.status != "RUNNING":
                record.status, record.error, record.cause, record.ended_at = "RUNNING", None, None, None
                changed.append(record)
                save(record)
            continue
        finished = execute.Watcher(source, logs, report=lambda line: None, show_logs=False).wait(
            record.execution_arn
        )
        apply_outcome(record, by_name.get(record.pipeline), finished)
        changed.append(record)
        save(record)
    return changed


def _source_of(execution_arn: str, *sources) -> tuple[object, dict] | tuple[None, None]:
    """The first of the sources (Step Functions clients, or stores with their two calls) that
    knows the execution, and its description; (None, None) when none does."""
    for source in sources:
        if source is None:
            continue
        try:
            return source, source.describe_execution(executionArn=execution_arn)
        except ClientError as ex:
            if ex.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "StateMachineDoesNotExist"):
                raise
    return None, None
