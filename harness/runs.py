"""Run pipelines on a target: one sequence of steps for local and AWS alike, for whatever
pipelines are registered.

check the named inputs -> settle what each pipeline consumes -> prepare the target ->
reconcile earlier records -> build -> bootstrap the bucket -> images (built, pushed to the
target's ECR) -> package the code -> deploy the stack (change sets) -> upload the inputs
-> for each pipeline, in order: build its execution input, start, watch, record; hand
what it produced to the pipelines after it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import ClientError

from harness import build, deployed, execute, inputs, package, reconcile, records, release
from harness.config import Config
from harness.errors import HarnessError
from harness.handover import Handover, Source
from mlharness.contract import Pipeline, RunContext


@dataclasses.dataclass
class Deployment:
    """What every run in one invocation shares."""

    config: Config
    target: object
    images: dict[str, dict]  # image name -> {reference, id, tag}
    code: package.Uploaded
    revision: package.Revision  # of the project's repository
    inputs: dict[str, inputs.Uploaded]  # input name -> where it was uploaded
    definitions: dict[str, str]
    state_machines: dict[str, str]
    detach: bool = False  # start the execution and return, without watching it
    ask: Callable[[str], bool | None] | None = None  # a yes/no question to the user; None: nobody to ask


def select(config: Config, names: Sequence[str] | None) -> list[Pipeline]:
    """The pipelines to run, in run order: those named (or all), else those that run by default."""
    if not names:
        return [p for p in config.pipelines if p.runs_by_default]
    if "all" in names:
        return list(config.pipelines)
    wanted = {config.pipeline(name).name for name in names}  # raises for an unknown name
    return [p for p in config.pipelines if p.name in wanted]


def run(
    config: Config,
    target,
    names: Sequence[str] | None = None,
    from_run: str | None = None,
    report: Callable[[str], None] = print,
    detach: bool = False,
    as_scheduled: bool = False,
    ask: Callable[[str], bool | None] | None = None,
    fail: Callable[[str], None] | None = None,
    strict_fidelity: bool = False,
) -> int:
    """Run the pipelines in order; return 0 only if every execution succeeded (or, detached, started)
    and, with strict_fidelity, no run has a finding that would make it differ on AWS.
    as_scheduled: start the one pipeline with its deployed schedule's input.
    ask: puts a yes/no question to the user (Ctrl-C while watching); None when nobody can answer.
    fail: takes one line for each run that did not succeed (its job's root error, where its log is)."""
    pipelines = select(config, names)
    if detach and len(pipelines) != 1:
        raise HarnessError("--detach starts one pipeline: add --pipeline NAME")
    if as_scheduled:
        _check_schedulable(config, pipelines)
    given = inputs.checked(config, pipelines)  # bad input fails before anything starts
    handover = None if as_scheduled else Handover(config, pipelines, from_run)
    with target:
        config = target.resolve(config)
        reconcile_records(config, target, report)
        if handover is not None:  # nothing to consume: fail before deploying anything
            handover.resolve_published(target.clients().client("s3"), config.artifact_bucket)
        deployment = prepare(config, target, given, report)
        deployment.detach, deployment.ask = detach, ask
        finished = []
        for pipeline in pipelines:
            if as_scheduled:
                record = run_as_scheduled(deployment, pipeline, report)
            else:
                record = run_pipeline(deployment, pipeline, handover.consumed_by(pipeline), report)
                handover.add(record)
            finished.append(record)
            if record.status not in ("SUCCEEDED", "RUNNING"):
                break
        _summary(finished, report)
        # while the local AWS is still held: the failed job's log is read for its root error
        failures = [
            failure_line(r, _logs(target)) for r in finished if r.status not in ("SUCCEEDED", "RUNNING")
        ]
    for line in failures:
        if fail is not None:
            fail(line)
    expected = "RUNNING" if detach else "SUCCEEDED"
    faithful = not strict_fidelity or _faithful(finished, fail)
    return 0 if faithful and all(r.status == expected for r in finished) else 1


def _faithful(finished: list[records.RunRecord], fail: Callable[[str], None] | None) -> bool:
    """--strict-fidelity: no run has a finding that would make it differ on AWS (each one said)."""
    faithful = True
    for record in finished:
        for finding in strict_fidelity_failures(record):
            faithful = False
            if fail is not None:
                subject = f" ({finding['subject']})" if finding["subject"] else ""
                fail(
                    f"--strict-fidelity: {record.pipeline} run {record.run_id}{subject}: {finding['message']}"
                )
    return faithful


RESUMABLE = ("FAILED", "ABORTED", "TIMED_OUT")


def resume(
    config: Config,
    target,
    run_id: str,
    report: Callable[[str], None] = print,
    ask: Callable[[str], bool | None] | None = None,
    fail: Callable[[str], None] | None = None,
    strict_fidelity: bool = False,
) -> int:
    """Continue a failed, aborted or timed-out run. With its code, definition and image as they
    were, its execution is redriven (RedriveExecution: from the states that failed, with its own
    input, on either target). When they changed (the failing step was fixed), a redrive would
    run the old ones, so a new run of the pipeline starts, linked to it: on the local target the
    step cache serves the steps before the fix. Returns 0 when the run then succeeds."""
    record = records.find(config.records_dir, run_id)
    if record is None:
        raise HarnessError(f"no run {run_id} recorded for environment {config.env} (`status` lists them)")
    pipeline = config.pipeline(record.pipeline)
    with target:
        config = target.resolve(config)
        reconcile_records(config, target, report)
        record = records.find(config.records_dir, run_id)
        if record.status not in RESUMABLE:
            raise HarnessError(
                f"run {run_id} is {record.status}: only a failed, aborted or timed-out run can be resumed"
            )
        given = inputs.checked(config, [pipeline])
        deployment = prepare(config, target, given, report)
        deployment.ask = ask
        changed = _changed_since(deployment, pipeline, record)
        renamed = [] if changed else _jobs_a_redrive_would_rename(deployment, pipeline, record)
        if renamed:
            report(
                f"resuming run {run_id} as a new run: a redrive would submit job {renamed[0]} again, "
                "and SageMaker refuses a job name twice"
            )
            finished = _run_again(deployment, pipeline, record, report)
        elif changed:
            report(
                f"resuming run {run_id} as a new run: its {changed} changed, and a redrive would run the old"
            )
            finished = _run_again(deployment, pipeline, record, report)
        else:
            report(f"resuming run {run_id}: redriving its execution from the states that did not succeed")
            finished = _redrive(deployment, pipeline, record, report)
        _summary([finished], report)
        failure = failure_line(finished, _logs(target)) if finished.status != "SUCCEEDED" else None
    if fail is not None and failure is not None:
        fail(failure)
    faithful = not strict_fidelity or _faithful([finished], fail)
    return 0 if faithful and finished.status == "SUCCEEDED" else 1


def _changed_since(deployment: Deployment, pipeline: Pipeline, record: records.RunRecord) -> str:
    """What of code, definition and image differs from what the run ran ("" when nothing)."""
    changed = []
    if record.code.get("sha256") != deployment.code.sha256:
        changed.append("code")
    if record.definition_sha256 != build.sha256(deployment.definitions[pipeline.name]):
        changed.append("definition")
    ran = {name: image.get("id") for name, image in record.images.items()}
    if ran != {name: image.get("id") for name, image in deployment.images.items() if name in ran}:
        changed.append("image")
    return " and ".join(changed)


def _jobs_a_redrive_would_rename(deployment: Deployment, pipeline: Pipeline, record) -> list[str]:
    sfn = deployment.target.clients().client("stepfunctions")
    states = set(json.loads(deployment.definitions[pipeline.name])["States"])
    try:
        return execute.jobs_a_redrive_would_rename(sfn, record.execution_arn, states)
    except sfn.exceptions.ExecutionDoesNotExist:
        return []  # _redrive resumes it as a new run, saying so


def _run_again(
    deployment: Deployment, pipeline: Pipeline, earlier: records.RunRecord, report: Callable[[str], None]
) -> records.RunRecord:
    """A new run of the pipeline, consuming what the earlier one consumed, linked to it."""
    handover = Handover(deployment.config, [pipeline], next(iter(earlier.consumed.values()), None))
    consumed = handover.consumed_by(pipeline)
    for kind, source in consumed.items():
        report(f"{pipeline.name} uses the {kind} of run {source.run_id} ({source.how})")
    run_id, execution_input = new_execution_input(deployment, pipeline, consumed)
    record = _new_record(deployment, pipeline, run_id, dict(deployment.config.settings[pipeline.name]))
    record.consumed = {kind: source.run_id for kind, source in consumed.items()}
    record.resumes = earlier.run_id
    earlier.resumed_by = run_id
    _save(deployment, earlier)
    return _run(deployment, pipeline, record, execution_input, report)


def _redrive(
    deployment: Deployment, pipeline: Pipeline, record: records.RunRecord, report: Callable[[str], None]
) -> records.RunRecord:
    """RedriveExecution of the run's own execution, watched from where its history stood."""
    clients = deployment.target.clients()
    sfn = clients.client("stepfunctions")
    deployment.target.before_execution(record.run_id)
    redriven_at = time.time()
    try:
        seen = execute.last_event_id(sfn, record.execution_arn)
        sfn.redrive_execution(executionArn=record.execution_arn)
    except sfn.exceptions.ExecutionDoesNotExist:  # a local AWS restarted since: it serves none of before
        report(f"resuming run {record.run_id} as a new run: its execution is gone from the target")
        return _run_again(deployment, pipeline, record, report)
    except ClientError as ex:
        raise HarnessError(f"cannot resume run {record.run_id}: {ex.response['Error']['Message']}") from None
    record.attempts.append(
        {"status": record.status, "error": record.error, "cause": record.cause, "ended_at": record.ended_at}
    )
    record.status, record.ended_at, record.error, record.cause = "RUNNING", None, None, None
    _save(deployment, record)
    report(f"{record.pipeline} run {record.run_id} (attempt {len(record.attempts) + 1})")
    watcher = execute.Watcher(sfn, clients.client("logs"), report, poll_s=deployment.target.poll_s)
    watcher.skip_to(seen)  # the earlier attempts' events were shown then
    try:
        finished = watcher.wait(record.execution_arn)
    except BaseException as ex:
        if record.status == "RUNNING":
            reconcile.mark_unfinished(record, ex)
            _save(deployment, record, best_effort=True)
        raise
    steps_before = list(record.steps)
    reconcile.apply_outcome(record, pipeline, finished)
    record.steps = _merged_steps(steps_before, record.steps)
    record.cache = deployment.target.cache_report(record.run_id, since=redriven_at)
    for line in cache_lines(record.cache):
        report(line)
    record.fidelity = _fidelity(deployment, pipeline, record, since=redriven_at)
    _finish(deployment, record, finished, report)
    return record


def _merged_steps(before: list[dict], after: list[dict]) -> list[dict]:
    """The steps of every attempt: a step run again replaces its earlier timing."""
    by_name = {step["name"]: step for step in before}
    by_name.update({step["name"]: step for step in after})
    return list(by_name.values())


def _check_schedulable(config: Config, pipelines: list[Pipeline]) -> None:
    if len(pipelines) != 1:
        raise HarnessError("--as-scheduled starts one pipeline: add --pipeline NAME")
    pipeline = pipelines[0]
    if pipeline.schedule is None:
        raise HarnessError(f"--as-scheduled: pipeline {pipeline.name} declares no schedule")
    if not config.schedule(pipeline.name).expression:
        raise HarnessError(
            f"--as-scheduled needs a schedule: environment {config.env} has none for {pipeline.name} "
            f"(set schedules.{pipeline.name}.expression)"
        )


def _summary(finished: list[records.RunRecord], report: Callable[[str], None]) -> None:
    """The results, last, where a reader looks."""
    report("== summary")
    for record in finished:
        report(f"{record.pipeline} run {record.run_id}: {record.status}")
        for label, value in record.summary:
            report(f"  {label}: {value}")
        if record.cache:
            served = sum(1 for e in record.cache if e["outcome"] == "hit")
            report(f"  step cache: {served} of {len(record.cache)} jobs served from it")
        if record.error:
            report(f"  error: {record.error}: {execute.failure_text(record.cause)}")
        report(f"  execution: {record.execution_arn}")
        for line in fidelity_lines(record):
            report(f"  {line}")


def _fidelity(
    deployment: Deployment, pipeline: Pipeline, record: records.RunRecord, since: float
) -> list[dict]:
    schedule = deployment.config.schedule(pipeline.name).expression if pipeline.schedule else None
    return deployment.target.fidelity_report(
        record.run_id, schedule, since=since, state_machine_arn=record.state_machine_arn
    )


# Findings that make a run fail under --strict-fidelity: on AWS the run would not do the same.
STRICT_FIDELITY_KINDS = ("iam", "unsupported", "unknown")


def fidelity_lines(record: records.RunRecord) -> list[str]:
    """The run's fidelity report: what the local target did not reproduce, one line each."""
    if record.target != "local":
        return []
    if not record.fidelity:
        return ["fidelity: nothing to report: the local AWS reproduced what this run asked of it"]
    lines = [f"fidelity: {len(record.fidelity)} thing(s) the local AWS did not reproduce as AWS would:"]
    for finding in record.fidelity:
        subject = f"{finding['subject']}: " if finding["subject"] else ""
        lines.append(f"  [{finding['kind']}] {subject}{finding['message']}")
    return lines


def strict_fidelity_failures(record: records.RunRecord) -> list[dict]:
    return [f for f in record.fidelity if f["kind"] in STRICT_FIDELITY_KINDS]


def cache_lines(events: list[dict]) -> list[str]:
    """What the step cache did with each job of a run: served from which job, or why it ran."""
    if events and all(e["detail"] == "the run asked for no cache" for e in events):
        return ["step cache: off for this run (--no-cache)"]
    lines = []
    for event in events:
        if event["outcome"] == "hit":
            lines.append(f"step cache: job {event['job']} served from job {event['detail']}")
        else:
            lines.append(f"step cache: job {event['job']} ran ({event['outcome']}: {event['detail']})")
    return lines


def _logs(target):
    """The target's Logs client, or None when it cannot be had."""
    try:
        return target.clients().client("logs")
    except Exception:  # noqa: BLE001  (the log only helps the failure line)
        return None


def failure_line(record: records.RunRecord, logs=None) -> str:
    """One line for a run that did not succeed: its error, the failed job's own root error and
    name, and where the job's whole log is. With a Logs client, the job's log is read for the
    root error when its FailureReason holds only a wrapper of it."""
    job = execute.failed_job(record.cause)
    try:
        logged = execute.job_log_lines(logs, job) if logs is not None and job else []
    except Exception:  # noqa: BLE001  (the log is a help to the line, never its failure)
        logged = []
    job, root = execute.root_error(record.cause, logged)
    line = f"{record.pipeline} run {record.run_id} {record.status}: {record.error}: {root}"
    if job:
        line += f" (job {job}; its log: python -m harness logs --run {record.run_id})"
    return line


def prepare(
    config: Config, target, given: dict[str, inputs.Given], report: Callable[[str], None]
) -> Deployment:
    """Release the pipelines (images, code, stack), then upload the checked inputs."""
    released = release.release(config, target, report)
    s3 = target.clients().client("s3")
    uploaded = {}
    for name, item in given.items():
        uploaded[name] = inputs.upload(s3, config.artifact_bucket, item)
        shown = config.project.relative(item.path)
        report(f"input {name}: {shown} -> {uploaded[name].uri} (sha256 {uploaded[name].sha256[:12]})")
    return Deployment(
        config=config,
        target=target,
        images=released.images,
        code=released.code,
        revision=package.revision(config.project.root),
        inputs=uploaded,
        definitions=released.definitions,
        state_machines=released.state_machines,
    )


def run_pipeline(
    deployment: Deployment, pipeline: Pipeline, consumed: dict[str, Source], report: Callable[[str], None]
) -> records.RunRecord:
    """One execution of `pipeline`, with what it consumes; watched (unless detached) and recorded."""
    config = deployment.config
    for kind, source in consumed.items():
        report(f"{pipeline.name} uses the {kind} of run {source.run_id} ({source.how})")
    run_id, execution_input = new_execution_input(deployment, pipeline, consumed)
    record = _new_record(deployment, pipeline, run_id, dict(config.settings[pipeline.name]))
    record.consumed = {kind: source.run_id for kind, source in consumed.items()}
    return _run(deployment, pipeline, record, execution_input, report)


def new_execution_input(
    deployment: Deployment,
    pipeline: Pipeline,
    consumed: dict[str, Source],
    uploaded: dict[str, inputs.Uploaded] | None = None,
) -> tuple[str, dict]:
    """A new run id, and the execution input the pipeline builds for it (with the inputs
    uploaded for this invocation, or those `uploaded` gives)."""
    config = deployment.config
    given = {**deployment.inputs, **(uploaded or {})}
    missing = [item.name for item in pipeline.inputs if item.name not in given]
    if missing:
        raise HarnessError(f"pipeline {pipeline.name}: input {missing[0]!r} was not given")
    run_id = records.new_run_id(pipeline.prefix)
    context = RunContext(
        run_id=run_id,
        execution_name=pipeline.execution_name(run_id),
        artifact_bucket=config.artifact_bucket,
        prefix_uri=_prefix(config, run_id),
        inputs={item.name: given[item.name].uri for item in pipeline.inputs},
        code_uri=deployment.code.uri,
        stack_name=config.stack_name,
        settings=config.settings[pipeline.name],
        consumed={kind: source.record for kind, source in consumed.items()},
    )
    try:
        return run_id, pipeline.execution_input(context)
    except (KeyError, ValueError) as ex:
        raise HarnessError(f"pipeline {pipeline.name}: cannot build its execution input: {ex}") from None


def run_as_scheduled(
    deployment: Deployment, pipeline: Pipeline, report: Callable[[str], None]
) -> records.RunRecord:
    """The pipeline started as its deployed schedule starts it: with the rule's own input."""
    schedule_input = deployed.schedule_input(deployment.config, deployment.target, pipeline)
    run_id = records.new_run_id(pipeline.prefix)
    shown = pipeline.schedule.description.format_map({k: v for k, v in schedule_input.items()})
    report(f"{pipeline.name} as scheduled: {shown}")
    record = _new_record(deployment, pipeline, run_id, {"as_scheduled": True})
    record.inputs = {"schedule": {"uri": schedule_input.get("DataUri"), "sha256": None}}
    return _run(deployment, pipeline, record, schedule_input, report)


def _run(
    deployment: Deployment,
    pipeline: Pipeline,
    record: records.RunRecord,
    execution_input: dict,
    report: Callable[[str], None],
) -> records.RunRecord:
    record.execution_input = execution_input
    started = time.time()
    try:
        finished = _execute(deployment, pipeline, record, execution_input, report)
    except BaseException as ex:  # every way out says what is known (Ctrl-C, SIGTERM, a dead target)
        if record.status == "RUNNING" and record.execution_arn:
            if isinstance(ex, reconcile.Terminated) and deployment.target.name == "local":
                _stop_for_sigterm(deployment, record)
            else:
                reconcile.mark_unfinished(record, ex)
            _save(deployment, record, best_effort=True)
        raise
    if finished is None:  # detached
        return record
    reconcile.apply_outcome(record, pipeline, finished)
    record.cache = deployment.target.cache_report(record.run_id)
    for line in cache_lines(record.cache):
        report(line)
    record.fidelity = _fidelity(deployment, pipeline, record, since=started)
    _finish(deployment, record, finished, report)
    if record.status == "SUCCEEDED":
        for label, value in record.summary:
            report(f"{label}: {value}")
    return record


def _execute(deployment, pipeline, record, execution_input, report) -> execute.ExecutionResult | None:
    clients = deployment.target.clients()
    sfn = clients.client("stepfunctions")
    report(f"{record.pipeline} run {record.run_id}")
    name = pipeline.execution_name(record.run_id)
    deployment.target.before_execution(record.run_id)
    record.execution_arn = execute.start(sfn, record.state_machine_arn, name, execution_input)
    _save(deployment, record)
    if deployment.detach:
        report(f"started {record.execution_arn} (detached: `status` lists it)")
        return None
    watcher = execute.Watcher(sfn, clients.client("logs"), report, poll_s=deployment.target.poll_s)
    try:
        return watcher.wait(record.execution_arn)
    except KeyboardInterrupt:
        if _stop_wanted(deployment, record):
            sfn.stop_execution(
                executionArn=record.execution_arn, error="Interrupted", cause="stopped from the CLI"
            )
            report(f"stopping {record.execution_arn}")
            return watcher.wait(record.execution_arn)
        report(f"left running: {record.execution_arn}")
        raise


def _stop_for_sigterm(deployment: Deployment, record: records.RunRecord) -> None:
    """SIGTERM ends a local run's work with it: its execution is stopped and recorded ABORTED."""
    clients = deployment.target.clients()
    sfn = clients.client("stepfunctions")
    error, cause = "Terminated", "the harness got SIGTERM"
    try:
        sfn.stop_execution(executionArn=record.execution_arn, error=error, cause=cause)
        reconcile.reconcile(deployment.config, sfn, clients.client("logs"), [record], save=lambda r: None)
    except Exception as ex:  # the local AWS is gone too: say so
        reconcile.mark_unfinished(record, ex)
        return
    if record.status == "ABORTED":  # what stopped it, whether or not the target says
        record.error, record.cause = record.error or error, record.cause or cause


def _stop_wanted(deployment: Deployment, record: records.RunRecord) -> bool:
    """Ctrl-C while watching: ask whether to stop the execution too (nobody to ask: leave it)."""
    if deployment.ask is None:
        return False
    return bool(deployment.ask(f"\nstop the {record.pipeline} execution too? [y/N] "))


def _finish(
    deployment: Deployment, record: records.RunRecord, finished: execute.ExecutionResult, report
) -> None:
    path = _save(deployment, record)
    outcome = finished.status if finished.status == "SUCCEEDED" else f"{finished.status}: {finished.error}"
    report_line = f"{record.pipeline} run {record.run_id} {outcome}"
    if finished.status != "SUCCEEDED":
        report_line += f": {execute.failure_text(finished.cause)}"
    report(report_line)
    report(f"execution: {record.execution_arn}")
    report(f"record: {record.prefix}/record.json and {path}")


def _save(deployment: Deployment, record: records.RunRecord, best_effort: bool = False) -> Path:
    s3 = deployment.target.clients().client("s3")
    return records.save(
        record, deployment.config.records_dir, s3, deployment.config.artifact_bucket, best_effort=best_effort
    )


def reconcile_records(config: Config, target, report: Callable[[str], None]) -> None:
    """Bring this environment's unfinished records up to date from the prepared target."""
    unfinished = [r for r in records.load_all(config.records_dir) if r.status in reconcile.UNFINISHED]
    if not unfinished:
        return
    clients = target.clients()
    s3 = clients.client("s3")

    def save(record: records.RunRecord) -> None:
        records.save(record, config.records_dir, s3, config.artifact_bucket, best_effort=True)

    for record in reconcile.reconcile(
        config,
        clients.client("stepfunctions"),
        clients.client("logs"),
        unfinished,
        save,
        kept=target.kept_executions(),
    ):
        report(f"record of {record.pipeline} run {record.run_id} brought up to date: {record.status}")


def _new_record(
    deployment: Deployment, pipeline: Pipeline, run_id: str, parameters: dict
) -> records.RunRecord:
    config = deployment.config
    used = json.loads(deployment.definitions[pipeline.name])
    return records.RunRecord(
        run_id=run_id,
        pipeline=pipeline.name,
        env=config.env,
        target=config.target,
        status="RUNNING",
        started_at=records.now(),
        prefix=_prefix(config, run_id),
        project={
            "name": config.project.name,
            "git_revision": deployment.revision.commit,
            "git_dirty": deployment.revision.dirty,
        },
        inputs={
            item.name: deployment.inputs[item.name].recorded()
            for item in pipeline.inputs
            if item.name in deployment.inputs
        },
        code={"uri": deployment.code.uri, "sha256": deployment.code.sha256},
        images={name: image for name, image in deployment.images.items() if _runs_image(used, name)},
        parameters=parameters,
        definition_sha256=build.sha256(deployment.definitions[pipeline.name]),
        state_machine_arn=deployment.state_machines[pipeline.name],
    )


def _prefix(config: Config, run_id: str) -> str:
    return f"s3://{config.artifact_bucket}/runs/{run_id}"


def _runs_image(definition: dict, image: str) -> bool:
    from mlharness.tasks import image_logical_id, image_placeholders

    return image_logical_id(image) in image_placeholders(json.dumps(definition))
