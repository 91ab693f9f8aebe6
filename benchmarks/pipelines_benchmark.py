"""Benchmark: the pipelines on the local target against two baselines, in one run.

  (a) local target: the training and inference state machines on the local AWS
      (local AWS up, image built, stack deployed beforehand; that set-up is
      timed separately), cold: every job runs (the run asks for no step cache);
  (a') the same run again, unchanged: every job served from the step cache;
  (a'') a re-run after changing one hyperparameter (a new value each time): the
      steps downstream of it run, the others are served from the cache;
  (b) floor: the same job scripts as plain processes on the same data;
  (c) SageMaker Pipelines local mode (LocalPipelineSession), the same steps with
      the same image and data, as a user would reach for today: the stock SDK,
      with only its telemetry call to AWS switched off.

For each size it prints the median wall time of N runs (variants interleaved, so
noise spreads evenly), each one's ratio to the floor, and the overhead per step.

    .venv/bin/python benchmarks/pipelines_benchmark.py [--sizes 10000 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import hops  # noqa: E402  (beside this script)

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

# Steps each variant runs: preprocess (fit), train, evaluate, create model,
# preprocess (transform), batch transform. (a) adds the quality gate (two cheap states).
STEPS = 6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from harness import config as harness_config
    from harness import images, inputs, runs, targets
    from harness.emulator import LocalAWS
    from pipelines import data as pipeline_data

    work = Path(tempfile.mkdtemp(prefix="mlharness-bench-"))
    os.environ["MLHARNESS_HOME"] = str(work / "home")
    setup = {}
    started = time.perf_counter()
    # as the local target runs it (mlharness.yaml's local environment): step cache on, IAM evaluated soft
    aws = LocalAWS(state_dir=work / "aws", cache=True, iam="soft").start()
    setup["start the local AWS"] = time.perf_counter() - started
    try:
        started = time.perf_counter()
        image = images.ensure_job_image(log=lambda line: None)
        setup["job image (built or reused)"] = time.perf_counter() - started
        port = aws.endpoint_url.rsplit(":", 1)[1]
        results: dict[int, dict[str, list[float]]] = {}
        breakdowns: dict[int, list] = {}
        for size in args.sizes:
            data_file = pipeline_data.generate(work / f"data-{size}" / "census.csv", size, seed=7)
            config = harness_config.load(
                "local", [f"emulator.port={port}", "stack_name=bench", "artifact_bucket=bench-artifacts"],
                project=ROOT, inputs={"data": data_file},
            )  # fmt: skip
            target = targets.LocalTarget(config, log=lambda line: None)
            target.prepare()
            started = time.perf_counter()
            given = inputs.checked(config, list(config.pipelines))
            deployment = runs.prepare(config, target, given, report=lambda line: None)
            setup[f"deploy + upload data ({size} rows)"] = time.perf_counter() - started
            sagemaker_pipeline = SageMakerPipeline(aws, image, deployment, size)
            times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
            jobs: list[dict[str, float]] = []
            try:
                measure(args.repeats, size, times, deployment, data_file, work, sagemaker_pipeline, jobs)
            finally:
                sagemaker_pipeline.cleanup()  # local mode leaves every container it made
            results[size] = times
            breakdowns[size] = hops.breakdown(jobs)
    finally:
        aws.stop()
    report(setup, results, args.repeats, breakdowns)
    return 0


VARIANTS = ("a", "a'", "a''", "b", "c")


def measure(repeats, size, times, deployment, data_file, work, sagemaker_pipeline, jobs) -> None:
    """Run every variant `repeats` times, rotating their order so noise spreads evenly."""
    cold = with_settings(deployment, cache_enabled=False)
    if not run_local_target(deployment):  # what (a') is served from
        raise SystemExit(f"the first cached run failed at {size} rows")
    for repeat in range(repeats):
        shift = repeat % len(VARIANTS)
        order = VARIANTS[shift:] + VARIANTS[:shift]
        for variant in order:
            started = time.perf_counter()
            if variant == "a":
                ok = run_local_target(cold, jobs)
            elif variant == "a'":
                ok = run_local_target(deployment)
            elif variant == "a''":  # a value no earlier run had
                ok = run_local_target(with_settings(deployment, C=round(0.5 + 0.01 * repeat, 4)))
            elif variant == "b":
                ok = run_floor(data_file.parent, work / f"floor-{size}-{repeat}")
            else:
                ok = sagemaker_pipeline.run()
            elapsed = time.perf_counter() - started
            if not ok:
                raise SystemExit(f"variant ({variant}) failed at {size} rows")
            times[variant].append(elapsed)
            print(f"  {size:>7} rows  ({variant}) run {repeat + 1}: {elapsed:6.1f} s", flush=True)


def with_settings(deployment, cache_enabled: bool = True, C: float | None = None):
    """The deployment with the step cache off for its runs, or another training C."""
    import dataclasses

    from harness import targets

    config = deployment.config
    settings = dict(config.settings)
    if C is not None:
        training = dict(settings["training"])
        training["hyperparameters"] = {**training["hyperparameters"], "C": C}
        settings["training"] = training
    config = dataclasses.replace(
        config, settings=settings, cache=dataclasses.replace(config.cache, enabled=cache_enabled)
    )
    target = targets.LocalTarget(config, log=lambda line: None)
    target.prepare()  # joins the running local AWS
    return dataclasses.replace(deployment, config=config, target=target)


def run_local_target(deployment, jobs: list | None = None) -> bool:
    """Both pipelines, training then inference; `jobs` gets each job's per-hop marks."""
    from harness import runs
    from harness.handover import Source

    quiet = lambda line: None  # noqa: E731
    config = deployment.config
    with contextlib.redirect_stdout(io.StringIO()):
        trained = runs.run_pipeline(deployment, config.pipeline("training"), {}, quiet)
        if trained.status != "SUCCEEDED":
            return False
        model = {"model": Source(trained.produced["model"], trained.run_id, "this invocation")}
        inferred = runs.run_pipeline(deployment, config.pipeline("inference"), model, quiet)
    if jobs is not None:
        sfn = deployment.target.clients().client("stepfunctions")
        for record in (trained, inferred):
            jobs += hops.job_marks(sfn, deployment.target.endpoint_url, record.execution_arn, record.run_id)
    return inferred.status == "SUCCEEDED"


def run_floor(data_dir: Path, out: Path) -> bool:
    """The job scripts as plain processes; predictions through the serving code, in process."""
    python = [sys.executable, "-m"]
    steps = [
        ["jobs.preprocess", "fit", "--data", str(data_dir), "--output", str(out / "pre")],
        ["jobs.train", "--train", str(out / "pre" / "train"), "--model-dir", str(out / "model")],
        ["jobs.evaluate", "--model", str(out / "model"), "--test", str(out / "pre" / "test"), "--output",
         str(out / "eval")],
        ["jobs.preprocess", "transform", "--data", str(data_dir), "--transformer", str(out / "pre" / "transformer"),
         "--output", str(out / "inf")],
    ]  # fmt: skip
    for step in steps:
        if subprocess.run(python + step, cwd=ROOT, capture_output=True).returncode != 0:
            return False
    predict = (
        "import joblib,sys,pathlib; from jobs.serve import predict_csv; "
        f"m=joblib.load('{out}/model/model.joblib'); "
        f"pathlib.Path('{out}/predictions.csv').write_bytes("
        f"predict_csv(m, pathlib.Path('{out}/inf/features/census.csv').read_bytes()))"
    )
    return subprocess.run([sys.executable, "-c", predict], cwd=ROOT).returncode == 0


class SageMakerPipeline:
    """(c): the same steps as a SageMaker Pipelines local-mode pipeline, stock SDK."""

    def __init__(self, aws, image: str, deployment, size: int):
        import boto3
        from sagemaker.telemetry import telemetry_logging
        from sagemaker.workflow.pipeline_context import LocalPipelineSession

        # Stock SDK otherwise, but it must not try to reach an AWS host (offline it would
        # only fail, after a DNS lookup that this benchmark has no business making).
        telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None

        self.image = image
        self.bucket = deployment.config.artifact_bucket
        self.code_uri = deployment.code.uri
        self.data_uri = deployment.inputs["data"].uri
        self.size = size
        # Local mode moves data on the host and the toolkit fetches code from inside the
        # container: both must reach the local AWS, so use the job network's gateway.
        self.endpoint = aws.info["container_endpoint_url"]
        boto_session = boto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        self.session = LocalPipelineSession(
            boto_session=boto_session, default_bucket=self.bucket, s3_endpoint_url=self.endpoint
        )
        self.session.config = {
            "local": {"local_code": True, "container_root": tempfile.mkdtemp(prefix="bench-c-")}
        }
        self._before = _containers()
        self.runs = 0

    def run(self) -> bool:
        self.runs += 1
        pipeline = self._pipeline(f"bench-c-{self.size}-{self.runs}-{int(time.time())}")
        with contextlib.redirect_stdout(io.StringIO()):
            pipeline.upsert(role_arn="arn:aws:iam::123456789012:role/bench")
            execution = pipeline.start()
        steps = execution.list_steps()
        if isinstance(steps, dict):  # the local execution answers with the API's envelope
            steps = steps["PipelineExecutionSteps"]
        failed = [s for s in steps if s["StepStatus"] != "Succeeded"]
        for step in failed:
            print(f"  (c) step {step['StepName']} {step['StepStatus']}: {step.get('FailureReason')}")
        return not failed and len(steps) == STEPS

    def cleanup(self) -> None:
        leftover = [c for c in _containers() if c not in self._before]
        if leftover:
            subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True)

    def _pipeline(self, name: str):
        from sagemaker.estimator import Estimator
        from sagemaker.inputs import TrainingInput
        from sagemaker.model import Model
        from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
        from sagemaker.transformer import Transformer
        from sagemaker.workflow.model_step import ModelStep
        from sagemaker.workflow.pipeline import Pipeline
        from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TransformStep

        role, session, prefix = (
            "arn:aws:iam::123456789012:role/bench",
            self.session,
            f"s3://{self.bucket}/{name}",
        )
        code = ProcessingInput(
            source=self.code_uri, destination="/opt/ml/processing/input/code", input_name="code"
        )

        def processor(*arguments: str) -> Processor:
            return Processor(
                role=role, image_uri=self.image, instance_count=1, instance_type="local", sagemaker_session=session,
                entrypoint=["run-bundle", "/opt/ml/processing/input/code", "jobs/preprocess.py", *arguments],
            )  # fmt: skip

        fit = ProcessingStep(
            "Preprocess",
            step_args=processor("fit").run(
                inputs=[code, ProcessingInput(source=self.data_uri, destination="/opt/ml/processing/input/data")],
                outputs=[
                    ProcessingOutput(output_name=o, source=f"/opt/ml/processing/output/{o}",
                                     destination=f"{prefix}/{o}")
                    for o in ("train", "test", "transformer")
                ],
            ),
        )  # fmt: skip
        estimator = Estimator(
            image_uri=self.image, role=role, instance_count=1, instance_type="local", sagemaker_session=session,
            output_path=f"{prefix}/model",
            hyperparameters={"C": "1.0", "max_iter": "200", "sagemaker_program": json.dumps("jobs/train.py"),
                             "sagemaker_submit_directory": json.dumps(self.code_uri)},
        )  # fmt: skip
        train = TrainingStep(
            "Train",
            step_args=estimator.fit(
                {
                    "train": TrainingInput(
                        fit.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri
                    )
                }
            ),
        )
        evaluate = ProcessingStep(
            "Evaluate",
            step_args=Processor(
                role=role, image_uri=self.image, instance_count=1, instance_type="local", sagemaker_session=session,
                entrypoint=["run-bundle", "/opt/ml/processing/input/code", "jobs/evaluate.py"],
            ).run(
                inputs=[
                    code,
                    ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                    destination="/opt/ml/processing/input/model"),
                    ProcessingInput(source=fit.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
                                    destination="/opt/ml/processing/input/test"),
                ],
                outputs=[ProcessingOutput(output_name="metrics", source="/opt/ml/processing/output",
                                          destination=f"{prefix}/evaluation")],
            ),
        )  # fmt: skip
        model = Model(
            image_uri=self.image, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=role,
            sagemaker_session=session,
            env={"SAGEMAKER_PROGRAM": "jobs/serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": self.code_uri,
                 "AWS_ENDPOINT_URL": self.endpoint},
        )  # fmt: skip
        create_model = ModelStep("CreateModel", step_args=model.create(instance_type="local"))
        transform_features = ProcessingStep(
            "PreprocessInference",
            step_args=processor("transform").run(
                inputs=[
                    code,
                    ProcessingInput(source=self.data_uri, destination="/opt/ml/processing/input/data"),
                    ProcessingInput(
                        source=fit.properties.ProcessingOutputConfig.Outputs["transformer"].S3Output.S3Uri,
                        destination="/opt/ml/processing/input/transformer",
                    ),
                ],
                outputs=[ProcessingOutput(output_name="features", source="/opt/ml/processing/output/features",
                                          destination=f"{prefix}/features")],
            ),
        )  # fmt: skip
        transformer = Transformer(
            model_name=create_model.properties.ModelName, instance_count=1, instance_type="local",
            output_path=f"{prefix}/predictions", accept="text/csv", assemble_with="Line", strategy="MultiRecord",
            sagemaker_session=session,
        )  # fmt: skip
        predict = TransformStep(
            "Predict",
            step_args=transformer.transform(
                data=transform_features.properties.ProcessingOutputConfig.Outputs["features"].S3Output.S3Uri,
                content_type="text/csv", split_type="Line",
            ),
        )  # fmt: skip
        return Pipeline(
            name=name,
            steps=[fit, train, evaluate, create_model, transform_features, predict],
            sagemaker_session=session,
        )


def _containers() -> set[str]:
    result = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True)
    return set(result.stdout.split())


def report(
    setup: dict[str, float], results: dict[int, dict[str, list[float]]], repeats: int, breakdowns: dict
) -> None:
    names = {
        "a": "(a) local target, cold (every job runs)",
        "a'": "(a') the same again: all served from the step cache",
        "a''": "(a'') one hyperparameter changed: downstream runs",
        "b": "(b) floor: job scripts as plain processes",
        "c": "(c) SageMaker Pipelines local mode (stock SDK)",
    }
    print("\nset-up (once, not in the times below):")
    for what, seconds in setup.items():
        print(f"  {what:38} {seconds:7.1f} s")
    print(f"\nmedian of {repeats} runs; {STEPS} steps per run")
    print(f"{'rows':>8}  {'variant':54} {'median':>8} {'vs floor':>9} {'overhead/step':>14}")
    for size, times in results.items():
        floor = statistics.median(times["b"])
        for variant in VARIANTS:
            median = statistics.median(times[variant])
            per_step = (median - floor) / STEPS
            print(f"{size:>8}  {names[variant]:54} {median:7.1f}s {median / floor:8.2f}x {per_step:12.2f} s")
        a, c = statistics.median(times["a"]), statistics.median(times["c"])
        comparison = f"{c / a:.2f}x faster" if a <= c else f"{a / c:.2f}x slower"
        print(f"{'':>8}  (a) is {comparison} than (c), which has no cache in local mode")
    for size, rows in breakdowns.items():
        print(
            f"\nper hop, (a) at {size} rows: median over its jobs (each run's processing, training, transform)"
        )
        for label, milliseconds, count in rows:
            print(f"  {label:60} {milliseconds:8.0f} ms  ({count} jobs)")


if __name__ == "__main__":
    sys.exit(main())
