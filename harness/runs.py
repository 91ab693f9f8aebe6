"""Run pipelines on a target: one sequence of steps for local and AWS alike.

prepare the target -> job image -> build -> bootstrap bucket -> package code and
data -> deploy the stack (change sets) -> for each pipeline: start, watch, record.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from harness import build, execute, package, paths, records, release
from harness.config import Config
from harness.errors import HarnessError


@dataclasses.dataclass
class Deployment:
    """What every run in one invocation shares."""

    config: Config
    target: object
    image: dict
    code: package.Uploaded
    git_revision: str | None
    data: package.Uploaded
    definitions: dict[str, str]
    state_machines: dict[str, str]
    detach: bool = False  # start the execution and return, without watching it


def run(
    config: Config,
    target,
    pipelines: list[str],
    training_run: str | None = None,
    report: Callable[[str], None] = print,
    detach: bool = False,
    as_scheduled: bool = False,
) -> int:
    """Run the pipelines in order; return 0 only if every execution succeeded (or, detached, started).
    as_scheduled: start the inference pipeline with the deployed schedule's input."""
    if detach and len(pipelines) != 1:
        raise HarnessError("--detach starts one pipeline: add --pipeline training or --pipeline inference")
    if as_scheduled and pipelines != ["inference"]:
        raise HarnessError("--as-scheduled starts the inference pipeline: add --pipeline inference")
    if as_scheduled and not config.schedule.inference:
        raise HarnessError(
            f"--as-scheduled needs a schedule: environment {config.env} has none (set schedule.inference)"
        )
    data_path = _checked_data_file(config)  # bad input fails before anything starts
    needs_model = "training" not in pipelines and not as_scheduled
    recorded = _training_record(config.env, training_run) if needs_model else None
    with target:
        config = target.resolve(config)
        # No training run here to take the model from: the published one, or fail before deploying.
        published = _published_model(target, config) if needs_model and not recorded else None
        deployment = prepare(config, target, data_path, report)
        deployment.detach = detach
        trained, finished = None, []
        for name in pipelines:
            if name == "training":
                trained = run_training(deployment, report)
                finished.append(trained)
            elif as_scheduled:
                schedule_input = release.schedule_input(config, target)
                finished.append(run_as_scheduled(deployment, schedule_input, report))
            else:
                source = trained or recorded
                model = model_of(source) if source else published
                finished.append(run_inference(deployment, model, report))
            if finished[-1].status not in ("SUCCEEDED", "RUNNING"):
                break
        _summary(finished, report)
    expected = "RUNNING" if detach else "SUCCEEDED"
    return 0 if all(r.status == expected for r in finished) else 1


def _summary(finished: list[records.RunRecord], report: Callable[[str], None]) -> None:
    """The results, last, where a reader looks: metrics, artifact, predictions, executions."""
    report("== summary")
    for record in finished:
        report(f"{record.pipeline} run {record.run_id}: {record.status}")
        if record.metrics:
            shown = ", ".join(f"{k}={v}" for k, v in record.metrics.items() if k != "confusion_matrix")
            report(f"  metrics: {shown}")
        shown_outputs = {
            "training": ("model_artifact_uri", "model artifact"),
            "inference": ("predictions_uri", "predictions"),
        }
        key, label = shown_outputs[record.pipeline]
        if key in record.outputs:
            report(f"  {label}: {record.outputs[key]}")
        report(f"  execution: {record.execution_arn}")


def prepare(config: Config, target, data_path: Path, report: Callable[[str], None]) -> Deployment:
    released = release.release(config, target, report)
    data = package.upload_data(target.clients().client("s3"), config.artifact_bucket, data_path)
    report(f"data {data.uri} (sha256 {data.sha256[:12]})")
    return Deployment(
        config=config,
        target=target,
        image=released.image,
        code=released.code,
        git_revision=package.git_revision(),
        data=data,
        definitions=released.definitions,
        state_machines=released.state_machines,
    )


def run_training(deployment: Deployment, report: Callable[[str], None]) -> records.RunRecord:
    from pipelines import training

    config = deployment.config
    run_id = records.new_run_id("training")
    execution_input = training.execution_input(_run_context(deployment, run_id), config.parameters())
    record = _new_record(deployment, run_id, "training", config.parameters())
    finished = _execute(deployment, record, execution_input, report)
    if finished is None:  # detached
        return record
    if finished.status == "SUCCEEDED":
        outputs = training.outputs(execution_input, finished.output)
        record.metrics = outputs.pop("metrics")
        record.outputs = outputs
    _finish(deployment, record, finished, report)
    if record.status == "SUCCEEDED":
        metrics = ", ".join(f"{k}={v}" for k, v in record.metrics.items() if k != "confusion_matrix")
        report(f"metrics: {metrics}")
        report(f"confusion matrix [[tn, fp], [fn, tp]]: {record.metrics.get('confusion_matrix')}")
        report(f"model artifact: {record.outputs['model_artifact_uri']}")
    return record


def run_inference(deployment: Deployment, model: dict, report: Callable[[str], None]) -> records.RunRecord:
    """model: the training run's id and recorded outputs (model_artifact_uri, transformer_uri)."""
    from pipelines import inference

    run_id = records.new_run_id("inference")
    report(f"inference uses the model of training run {model['training_run_id']}")
    execution_input = inference.execution_input(_run_context(deployment, run_id), model)
    record = _new_record(deployment, run_id, "inference", {"training_run_id": model["training_run_id"]})
    record.training_run_id = model["training_run_id"]
    return _run_inference(deployment, record, execution_input, report)


def run_as_scheduled(
    deployment: Deployment, schedule_input: dict, report: Callable[[str], None]
) -> records.RunRecord:
    """The inference pipeline started as the deployed schedule starts it: with the rule's input
    (the schedule's data, the deployed code), so it uses the published model."""
    run_id = records.new_run_id("inference")
    report(f"inference as scheduled: {schedule_input.get('DataUri')} with the published model")
    record = _new_record(deployment, run_id, "inference", {"as_scheduled": True})
    record.data = {"uri": schedule_input.get("DataUri"), "sha256": None}
    return _run_inference(deployment, record, schedule_input, report)


def _run_inference(
    deployment: Deployment, record: records.RunRecord, execution_input: dict, report: Callable[[str], None]
) -> records.RunRecord:
    from pipelines import inference

    finished = _execute(deployment, record, execution_input, report)
    if finished is None:  # detached
        return record
    if finished.status == "SUCCEEDED":
        record.outputs = inference.outputs(execution_input, finished.output)
        record.training_run_id = record.training_run_id or record.outputs.get("training_run_id")
    _finish(deployment, record, finished, report)
    if record.status == "SUCCEEDED":
        report(f"predictions: {record.outputs['predictions_uri']}")
    return record


def model_of(trained: records.RunRecord) -> dict:
    """The model a training run recorded, as run_inference takes it."""
    return {"training_run_id": trained.run_id, **trained.outputs}


def _published_model(target, config: Config) -> dict:
    """The model the last training run that passed its gate published (no run recorded here)."""
    from pipelines.tasks import PUBLISHED_MODEL_KEY

    s3 = target.clients().client("s3")
    bucket = config.artifact_bucket
    try:
        published = json.loads(s3.get_object(Bucket=bucket, Key=PUBLISHED_MODEL_KEY)["Body"].read())
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
        raise HarnessError(
            f"no successful training run recorded for environment {config.env} and no model "
            f"published at s3://{bucket}/{PUBLISHED_MODEL_KEY}: run --pipeline training first"
        ) from None
    return {
        "training_run_id": published["RunId"],
        "model_artifact_uri": published["ModelArtifactUri"],
        "transformer_uri": published["TransformerUri"],
    }


def _execute(deployment, record, execution_input, report) -> execute.ExecutionResult | None:
    from pipelines.tasks import execution_name

    clients = deployment.target.clients()
    sfn = clients.client("stepfunctions")
    report(f"{record.pipeline} run {record.run_id}")
    name = execution_name(record.run_id)
    record.execution_arn = execute.start(sfn, record.state_machine_arn, name, execution_input)
    _save(deployment, record)
    if deployment.detach:
        report(f"started {record.execution_arn} (detached: `status` lists it)")
        return None
    watcher = execute.Watcher(sfn, clients.client("logs"), report, poll_s=deployment.target.poll_s)
    try:
        return watcher.wait(record.execution_arn)
    except KeyboardInterrupt:
        if _stop_wanted(record):
            sfn.stop_execution(
                executionArn=record.execution_arn, error="Interrupted", cause="stopped from the CLI"
            )
            report(f"stopping {record.execution_arn}")
            return watcher.wait(record.execution_arn)
        report(f"left running: {record.execution_arn}")
        raise


def _stop_wanted(record: records.RunRecord) -> bool:
    """Ctrl-C while watching: ask whether to stop the execution too (no terminal: leave it)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"\nstop the {record.pipeline} execution too? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def _finish(
    deployment: Deployment, record: records.RunRecord, finished: execute.ExecutionResult, report
) -> None:
    record.status = finished.status
    record.ended_at = records.now()
    record.steps = [dataclasses.asdict(step) for step in finished.steps]
    record.error, record.cause = finished.error, finished.cause
    path = _save(deployment, record)
    outcome = finished.status if finished.status == "SUCCEEDED" else f"{finished.status}: {finished.error}"
    report_line = f"{record.pipeline} run {record.run_id} {outcome}"
    if finished.status != "SUCCEEDED":
        report_line += f": {execute.failure_text(finished.cause)}"
    report(report_line)
    report(f"execution: {record.execution_arn}")
    report(f"record: {record.prefix}/record.json and {path}")


def _save(deployment: Deployment, record: records.RunRecord) -> Path:
    s3 = deployment.target.clients().client("s3")
    return records.save(record, s3, deployment.config.artifact_bucket)


def _new_record(deployment: Deployment, run_id: str, pipeline: str, parameters: dict) -> records.RunRecord:
    config = deployment.config
    return records.RunRecord(
        run_id=run_id,
        pipeline=pipeline,
        env=config.env,
        target=config.target,
        status="RUNNING",
        started_at=records.now(),
        prefix=_prefix(config, run_id),
        data={"uri": deployment.data.uri, "sha256": deployment.data.sha256},
        code={
            "uri": deployment.code.uri,
            "sha256": deployment.code.sha256,
            "git_revision": deployment.git_revision,
        },
        image=deployment.image,
        parameters=parameters,
        definition_sha256=build.sha256(deployment.definitions[pipeline]),
        state_machine_arn=deployment.state_machines[pipeline],
    )


def _run_context(deployment: Deployment, run_id: str) -> dict:
    config = deployment.config
    return {
        "RunId": run_id,
        "ArtifactBucket": config.artifact_bucket,
        "Prefix": _prefix(config, run_id),
        "DataUri": deployment.data.uri,
        "CodeUri": deployment.code.uri,
    }


def _prefix(config: Config, run_id: str) -> str:
    return f"s3://{config.artifact_bucket}/runs/{run_id}"


def _checked_data_file(config: Config) -> Path:
    """The configured CSV, checked against the schema; or a generated sample (cached)."""
    from pipelines import data as pipeline_data

    if config.data.source != "generated":
        path = Path(config.data.source).expanduser()
        try:
            pipeline_data.check(path)
        except pipeline_data.DataError as ex:
            raise HarnessError(str(ex)) from None
        return path
    path = paths.data_cache() / f"census-{config.data.rows}-{config.data.seed}.csv"
    if not path.exists():
        pipeline_data.generate(path, config.data.rows, config.data.seed)
    return path


def _training_record(env: str, run_id: str | None) -> records.RunRecord | None:
    """The training run whose model an inference run uses: the one named, else the latest
    successful one recorded here, else None (the published model)."""
    if run_id:
        record = records.find(env, run_id)
        if record is None or record.pipeline != "training":
            raise HarnessError(f"no training run {run_id} recorded for environment {env}")
        if record.status != "SUCCEEDED":
            raise HarnessError(f"training run {run_id} did not succeed ({record.status})")
        return record
    return records.latest_successful(env, "training")
