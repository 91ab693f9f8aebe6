"""A SageMaker backend whose jobs really run.

Extends moto's backend: moto keeps the resource shapes, ARNs, List* and models;
this class replaces the job lifecycle. Create*Job returns at once with the job
InProgress, a thread runs it through the configured `JobRunner` (docker_runner.py:
containers, as SageMaker's contract says), and Describe*Job reports InProgress, then
Completed, Failed (with the FailureReason AWS would give) or Stopped.
Stop*Job stops the job's containers; StoppingCondition.MaxRuntimeInSeconds is
enforced the way AWS does it (Stopped, secondary status MaxRuntimeExceeded), and so is
a managed spot job's MaxWaitTimeInSeconds (MaxWaitTimeExceeded).
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import uuid
from typing import Any

from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend

from harness.emulator import containers, job_events
from harness.emulator.fidelity import JOURNAL
from harness.emulator.sagemaker import contract, job_fidelity, tuning
from harness.emulator.sagemaker import search as search_expressions
from harness.emulator.sagemaker.jobs import Job
from harness.emulator.sagemaker.logs import JobLog
from harness.emulator.sagemaker.metrics import MetricsRecorder
from harness.emulator.sagemaker.runner import (
    HostedModel,
    HostingFailed,
    JobOutcome,
    JobRunner,
    JobSpec,
    ModelHost,
    StopSignal,
)
from harness.emulator.sagemaker.timeline import TIMELINE
from mlharness.kinds import ENDPOINT, PROCESSING, TRAINING, TRANSFORM, TUNING, Kind, at

log = logging.getLogger(__name__)

STOP_POLL_S = 0.5


class _ActiveJob:
    def __init__(self, spec: JobSpec, job: Job):
        self.spec = spec
        self.job = job
        self.stop = StopSignal()
        self.thread: threading.Thread | None = None


class LocalSageMakerBackend(SageMakerModelBackend):
    """SageMaker with jobs that really run (see the module docstring)."""

    # What every backend of the process runs jobs and serves models with: the emulator server
    # configures them (`configure`) before it serves requests; `use_runner` gives one backend
    # its own (a test's ScriptedRunner).
    runner: JobRunner | None = None
    model_host: ModelHost | None = None

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self._active: dict[str, _ActiveJob] = {}
        self._hosted: dict[str, HostedModel] = {}  # endpoint name -> model in service
        self._deployments = 0
        self._lock = threading.Lock()

    @classmethod
    def configure(cls, runner: JobRunner, model_host: ModelHost) -> None:
        cls.runner = runner
        cls.model_host = model_host

    def use_runner(self, runner: JobRunner, model_host: ModelHost | None = None) -> None:
        """This backend's jobs run with `runner` (and its models are served by `model_host`)."""
        self.runner = runner
        if model_host is not None:
            self.model_host = model_host

    # -- jobs: processing, training, transform --------------------------------
    def create_processing_job_from_request(self, request: dict[str, Any]) -> Job:
        self._refuse(PROCESSING, request)
        if not at(request, PROCESSING.image):
            raise ValidationError("AppSpecification.ImageUri must be specified.")
        job = self._new_job(PROCESSING, request)
        self._launch(
            JobSpec(
                PROCESSING, job.name, job.arn, self.region_name, request, role_arn=request.get("RoleArn")
            ),
            job,
        )
        return job

    def create_training_job_from_request(self, request: dict[str, Any]) -> Job:
        self._refuse(TRAINING, request)
        if not at(request, TRAINING.image):
            raise ValidationError("AlgorithmSpecification.TrainingImage must be specified.")
        for definition in at(request, ("AlgorithmSpecification", "MetricDefinitions")) or []:
            try:
                re.compile(definition["Regex"])
            except re.error as ex:
                raise ValidationError(
                    f"Invalid MetricDefinitions: the regex of {definition['Name']!r} does not compile ({ex})."
                ) from None
        job = self._new_job(TRAINING, request)
        self._launch(
            JobSpec(TRAINING, job.name, job.arn, self.region_name, request, role_arn=request.get("RoleArn")),
            job,
        )
        return job

    def create_transform_job_from_request(self, request: dict[str, Any]) -> Job:
        self._refuse(TRANSFORM, request)
        model = self.describe_model(request["ModelName"])  # raises when unknown
        container = self.serving_container(model)
        job = self._new_job(TRANSFORM, request)
        role = getattr(model, "execution_role_arn", None)
        spec = JobSpec(
            TRANSFORM, job.name, job.arn, self.region_name, request, model_container=container, role_arn=role
        )
        self._launch(spec, job)
        return job

    def describe_processing_job(self, processing_job_name: str) -> dict[str, Any]:
        return self._job(PROCESSING, processing_job_name).describe()

    def describe_training_job(self, training_job_name: str) -> dict[str, Any]:
        return self._job(TRAINING, training_job_name).describe()

    def describe_transform_job(self, transform_job_name: str) -> dict[str, Any]:
        return self._job(TRANSFORM, transform_job_name).describe()

    def stop_processing_job(self, processing_job_name: str) -> None:
        self._stop(PROCESSING, processing_job_name)

    def stop_training_job(self, training_job_name: str) -> None:
        self._stop(TRAINING, training_job_name)

    def stop_transform_job(self, transform_job_name: str) -> None:
        self._stop(TRANSFORM, transform_job_name)

    def search(self, resource: Any = None, search_expression: Any = None) -> Any:
        """Search: training jobs are the local AWS's own (searched by their Describe answers and
        tags); every other resource is moto's."""
        if resource != TRAINING.noun:
            return super().search(resource=resource, search_expression=search_expression)
        found = [
            {TRAINING.noun: {**job.describe(), "Tags": list(job.tags)}}
            for job in self._jobs(TRAINING).values()
            if search_expressions.matches({**job.describe(), "Tags": job.tags}, search_expression)
        ]
        return {"Results": found}

    def _refuse(self, kind: Kind, request: dict[str, Any]) -> None:
        """What AWS refuses of a Create<Kind> request (a name in use), and what the local AWS
        does not run, before anything is made."""
        name = request[kind.name_member]
        jobs = self._jobs(kind)
        if name in jobs:
            raise ResourceInUseException(
                f"{kind.title.capitalize()} names must be unique within an AWS account and region, "
                f"and a {kind.title} with this name already exists ({jobs[name].arn})"
            )
        why = contract.refusal(kind, request)
        if why:
            raise ValidationError(why)

    def _new_job(self, kind: Kind, request: dict[str, Any]) -> Job:
        from moto.sagemaker.utils import arn_formatter

        name = request[kind.name_member]
        job = Job(
            kind,
            arn_formatter(kind.resource, name, self.account_id, self.region_name),
            copy.deepcopy(request),
            utcnow(),
        )
        self._jobs(kind)[name] = job
        return job

    def _job(self, kind: Kind, name: str) -> Job:
        job = self._jobs(kind).get(name)
        if job is None:
            from moto.sagemaker.utils import arn_formatter

            arn = arn_formatter(kind.resource, name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find {kind.title} '{arn}'.")
        return job

    def _stop(self, kind: Kind, name: str) -> None:
        job = self._job(kind, name)
        if job.ended:
            raise ValidationError(
                f"The request was rejected because the {kind.title} is in status {job.status}."
            )
        self._request_stop(job.arn, kind.operation("Stop"))

    def _jobs(self, kind: Kind) -> dict[str, Job]:
        """The kind's jobs, by name, where moto keeps them (its tags by ARN find them there)."""
        return getattr(self, f"{kind.attribute}s")

    # -- tuning --------------------------------------------------------------
    def create_hyper_parameter_tuning_job_from_request(self, request: dict[str, Any]) -> tuning.TuningRun:
        from moto.sagemaker.utils import arn_formatter

        name = request["HyperParameterTuningJobName"]
        if name in self._jobs(TUNING):
            raise ResourceInUseException(f"Hyperparameter tuning job {name} already exists.")
        try:
            tuning.check(request)
        except tuning.TuningError as ex:
            raise ValidationError(str(ex)) from None
        why = contract.refusal(TRAINING, request["TrainingJobDefinition"])
        if why:
            raise ValidationError(why)
        arn = arn_formatter(TUNING.resource, name.lower(), self.account_id, self.region_name)
        request = copy.deepcopy(request)
        tuning.settle_resource_config(request["TrainingJobDefinition"])
        objective = request["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective")
        if objective:  # SageMaker passes the objective to every job under this reserved name
            static = request["TrainingJobDefinition"].setdefault("StaticHyperParameters", {})
            static["_tuning_objective_metric"] = objective["MetricName"]
        run = tuning.TuningRun(arn, request, utcnow(), self.describe_training_job)
        self._jobs(TUNING)[name] = run
        threading.Thread(target=self._tune, args=(run,), name=f"tuning-{name}", daemon=True).start()
        return run

    def describe_hyper_parameter_tuning_job_answer(self, name: str) -> dict[str, Any]:
        return self._tuning_run(name).describe()

    def list_tuning_runs(self, filters: dict[str, Any]) -> tuple[list, str | None]:
        runs = [run.describe() for run in self._jobs(TUNING).values()]
        checks = {
            "NameContains": lambda d, v: v in d["HyperParameterTuningJobName"],
            "StatusEquals": lambda d, v: d["HyperParameterTuningJobStatus"] == v,
            "CreationTimeAfter": lambda d, v: _time(d["CreationTime"]) > _time(v),
            "CreationTimeBefore": lambda d, v: _time(d["CreationTime"]) < _time(v),
            "LastModifiedTimeAfter": lambda d, v: _time(d.get("LastModifiedTime")) > _time(v),
            "LastModifiedTimeBefore": lambda d, v: _time(d.get("LastModifiedTime")) < _time(v),
        }
        for field, check in checks.items():
            if filters.get(field) is not None:
                runs = [d for d in runs if check(d, filters[field])]
        keys = {"Name": "HyperParameterTuningJobName", "Status": "HyperParameterTuningJobStatus"}
        by = keys.get(filters.get("SortBy") or "", None)
        runs.sort(key=(lambda d: d[by]) if by else (lambda d: _time(d["CreationTime"])),
                  reverse=(filters.get("SortOrder") or "Ascending") == "Descending")  # fmt: skip
        page, token = _page(runs, filters)
        return [
            {
                "HyperParameterTuningJobName": d["HyperParameterTuningJobName"],
                "HyperParameterTuningJobArn": d["HyperParameterTuningJobArn"],
                "HyperParameterTuningJobStatus": d["HyperParameterTuningJobStatus"],
                "Strategy": d["HyperParameterTuningJobConfig"]["Strategy"],
                "CreationTime": d["CreationTime"],
                "HyperParameterTuningEndTime": d.get("HyperParameterTuningEndTime"),
                "LastModifiedTime": d.get("LastModifiedTime"),
                "TrainingJobStatusCounters": d["TrainingJobStatusCounters"],
                "ObjectiveStatusCounters": d["ObjectiveStatusCounters"],
                "ResourceLimits": d["HyperParameterTuningJobConfig"]["ResourceLimits"],
            }
            for d in page
        ], token

    def list_training_jobs_of_tuning_run(self, name: str, filters: dict[str, Any]) -> tuple[list, str | None]:
        """ListTrainingJobsForHyperParameterTuningJob."""
        summaries = self._tuning_run(name).summaries()
        if filters.get("StatusEquals"):
            summaries = [s for s in summaries if s["TrainingJobStatus"] == filters["StatusEquals"]]
        sort_by = filters.get("SortBy") or "Name"
        if sort_by == "FinalObjectiveMetricValue":
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            key = lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]  # noqa: E731
        else:
            field = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(sort_by)
            key = (lambda s: s[field]) if field else (lambda s: _time(s["CreationTime"]))  # noqa: E731
        summaries.sort(key=key, reverse=(filters.get("SortOrder") or "Descending") == "Descending")
        return _page(summaries, filters)

    def stop_hyper_parameter_tuning_job(self, name: str) -> None:
        run = self._tuning_run(name)
        if run.status != "InProgress":
            raise ValidationError(
                f"The request was rejected because the {TUNING.title} is in status {run.status}."
            )
        run.move("Stopping", utcnow())
        run.stop.set()

    def _tuning_run(self, name: str) -> tuning.TuningRun:
        from moto.sagemaker.utils import arn_formatter

        if name not in self._jobs(TUNING):
            arn = arn_formatter(TUNING.resource, name.lower(), self.account_id, self.region_name)
            raise ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name} ({arn}).")
        return self._jobs(TUNING)[name]

    def _tune(self, run: tuning.TuningRun) -> None:
        """Start the jobs the search proposes, never more than MaxParallelTrainingJobs at once."""
        limits = run.config["ResourceLimits"]
        parallel = max(1, int(limits.get("MaxParallelTrainingJobs") or 1))
        maximize = (run.objective or {}).get("Type") == "Maximize"
        search = tuning.Search(run.config, run.config.get("RandomSeed"))
        running: list[str] = []
        try:
            while not run.stop.is_set():
                running = [name for name in running if not self._ended(name)]
                if len(running) >= parallel:
                    run.stop.wait(0.2)
                    continue
                point = search.next(self._tuned_results(run), maximize)
                if point is None:
                    break
                name = f"{run.name}-{len(run.jobs) + 1:03d}-{uuid.uuid4().hex[:8]}"
                run.jobs.append((name, point))
                running.append(name)
                job = self.create_training_job_from_request(tuning.training_request(run.request, name, point))
                job.produced["TuningJobArn"] = run.arn
            while running:
                if run.stop.is_set():
                    for name in running:
                        self._request_stop(self.training_jobs[name].arn, "StopHyperParameterTuningJob")
                running = [name for name in running if not self._ended(name)]
                if running:
                    job_events.wait(0.2)  # until one of them ends
            self._settle(run)
        except Exception as ex:  # the tuning job fails; the local AWS carries on
            run.failure_reason = f"InternalServerError: {ex}"
            run.end_time = utcnow()
            run.move("Failed", run.end_time)
        job_events.job_ended()

    def _settle(self, run: tuning.TuningRun) -> None:
        summaries = run.summaries()
        run.end_time = utcnow()
        if run.stop.is_set():
            run.move("Stopped", run.end_time)
        elif summaries and all(s["TrainingJobStatus"] == "Failed" for s in summaries):
            run.failure_reason = "All training jobs failed."
            run.move("Failed", run.end_time)
        else:
            run.move("Completed", run.end_time)

    def _tuned_results(self, run: tuning.TuningRun) -> list[tuple[dict[str, str], float]]:
        return [
            (s["TunedHyperParameters"], s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
            for s in run.summaries()
            if "FinalHyperParameterTuningJobObjectiveMetric" in s
        ]

    def _ended(self, name: str) -> bool:
        return self.training_jobs[name].ended

    # -- endpoints -------------------------------------------------------------
    def create_endpoint(self, endpoint_name: str, endpoint_config_name: str, tags):
        if endpoint_name in self.endpoints:
            raise ResourceInUseException(
                f'Cannot create already existing endpoint "{self.endpoints[endpoint_name].arn}".'
            )
        endpoint = super().create_endpoint(endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        self._deploy(endpoint, endpoint_config_name)
        return endpoint

    def update_endpoint(self, endpoint_name: str, endpoint_config_name: str):
        """Serve the new config beside the old one, then switch over, as AWS does."""
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            self.describe_endpoint(endpoint_name)  # raises the API's error
        if endpoint.endpoint_status not in ("InService", "Failed"):
            raise ValidationError(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        self.describe_endpoint_config(endpoint_config_name)
        endpoint.endpoint_status = "Updating"
        endpoint.last_modified_time = utcnow()
        self._deploy(endpoint, endpoint_config_name)
        return endpoint

    def delete_endpoint(self, endpoint_name: str) -> None:
        super().delete_endpoint(endpoint_name)
        with self._lock:
            hosted = self._hosted.pop(endpoint_name, None)
        if hosted is not None:
            threading.Thread(target=self.model_host.unhost, args=(hosted,), daemon=True).start()

    def invoke_endpoint(self, endpoint_name: str, body: bytes, content_type: str | None, accept: str | None):
        endpoint = self.endpoints.get(endpoint_name)
        hosted = self._hosted.get(endpoint_name)
        if endpoint is None:
            raise ValidationError(f"Endpoint {endpoint_name} of account {self.account_id} not found.")
        if hosted is None:
            raise ValidationError(
                f"Endpoint {endpoint.arn} is not in service (status {endpoint.endpoint_status})."
            )
        return hosted.invoke(body, content_type, accept)

    def _deploy(self, endpoint: Any, config_name: str) -> None:
        config = self.endpoint_configs[config_name]
        variant = config.production_variants[0]
        model = self.describe_model(variant["ModelName"])
        container = self.serving_container(model)
        with self._lock:
            self._deployments += 1
            spec = JobSpec(
                ENDPOINT,
                endpoint.endpoint_name,
                f"{endpoint.arn}#{self._deployments}",
                self.region_name,
                {"EndpointConfigName": config_name},
                model_container=container,
                role_arn=getattr(model, "execution_role_arn", None),
            )
        threading.Thread(
            target=self._bring_into_service,
            args=(endpoint, config, variant, spec),
            name=f"endpoint-{endpoint.endpoint_name}",
            daemon=True,
        ).start()

    def _bring_into_service(self, endpoint: Any, config: Any, variant: dict, spec: JobSpec) -> None:
        described = {"ProductionVariants": config.production_variants, "KmsKeyId": config.kms_key_id}
        image = (spec.model_container or {}).get("Image")
        findings = job_fidelity.endpoint_findings(described)
        findings += job_fidelity.image_findings(image, containers.local_registries())
        for kind, message in findings:
            JOURNAL.note(spec.name, kind, message, of_job=False)
        stream = f"{variant['VariantName']}/i-local-{int(utcnow().timestamp())}"
        log = JobLog(self.account_id, self.region_name, ENDPOINT, spec.name, stream=stream)
        try:
            hosted = self.model_host.host(spec, log)
        except Exception as ex:  # noqa: BLE001  (whatever stops it, the endpoint must not stay Creating)
            # A failed update leaves the previous model in service, as on AWS.
            reason = str(ex) if isinstance(ex, HostingFailed) else f"the model could not be served: {ex!r}"
            log(reason)
            endpoint.failure_reason = reason
            endpoint.endpoint_status = "InService" if spec.name in self._hosted else "Failed"
            endpoint.last_modified_time = utcnow()
            return
        with self._lock:
            previous = self._hosted.get(spec.name)
            if self.endpoints.get(spec.name) is not endpoint:  # deleted meanwhile
                previous, hosted = hosted, None
            else:
                self._hosted[spec.name] = hosted
        if hosted is not None:
            endpoint.endpoint_config_name = config.endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.failure_reason = None
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = utcnow()
        if previous is not None:
            self.model_host.unhost(previous)

    def serving_container(self, model: Any) -> dict:
        """The container a model serves: its own, or its model package's (a model made by
        `ModelPackage.deploy()` names only the package)."""
        container = dict(model.primary_container or (model.containers or [{}])[0])
        package_name = container.pop("ModelPackageName", None)
        if package_name and not container.get("Image"):
            package = self.describe_model_package(package_name)
            packaged = dict(((package.inference_specification or {}).get("Containers") or [{}])[0])
            environment = {**(packaged.get("Environment") or {}), **(container.get("Environment") or {})}
            container = {**packaged, **container, "Environment": environment}
        return container

    def list_jobs_of_kind(
        self, kind: Kind, filters: dict[str, Any], members: list[str]
    ) -> tuple[list, str | None]:
        """List*Jobs as AWS answers them: filtered, then sorted (SortBy CreationTime, Name or
        Status; SortOrder), then paged (MaxResults, default 10; NextToken)."""
        described = [job.describe() for job in self._jobs(kind).values()]
        name_key, status_key = kind.name_member, kind.status_member
        checks = {
            "NameContains": lambda d, v: v in d[name_key],
            "StatusEquals": lambda d, v: d[status_key] == v,
            "CreationTimeAfter": lambda d, v: _time(d["CreationTime"]) > _time(v),
            "CreationTimeBefore": lambda d, v: _time(d["CreationTime"]) < _time(v),
            "LastModifiedTimeAfter": lambda d, v: _time(d.get("LastModifiedTime")) > _time(v),
            "LastModifiedTimeBefore": lambda d, v: _time(d.get("LastModifiedTime")) < _time(v),
        }
        for field, check in checks.items():
            if filters.get(field) is not None:
                described = [d for d in described if check(d, filters[field])]
        sort_key = {"Name": lambda d: d[name_key], "Status": lambda d: d[status_key]}.get(
            filters.get("SortBy") or "CreationTime", lambda d: _time(d["CreationTime"])
        )
        order = filters.get("SortOrder") or kind.list_order
        described.sort(key=sort_key, reverse=order == "Descending")
        page, next_token = _page(described, filters)
        return [{k: d[k] for k in members if d.get(k) is not None} for d in page], next_token

    # -- lifecycle -------------------------------------------------------------
    def running_count(self) -> int:
        """Jobs in progress (what keeps a managed local AWS up)."""
        return len(self._active)

    def stop_all_jobs(self) -> None:
        for active in list(self._active.values()):
            self._request_stop(active.spec.arn, "the emulator is shutting down")
        for active in list(self._active.values()):
            if active.thread is not None:
                active.thread.join(timeout=30)

    def stop_all_endpoints(self) -> None:
        with self._lock:
            hosted, self._hosted = list(self._hosted.values()), {}
        for model in hosted:
            self.model_host.unhost(model)

    def reset(self) -> None:
        self.stop_all_jobs()
        self.stop_all_endpoints()
        super().reset()

    def _launch(self, spec: JobSpec, job: Job) -> None:
        if self.runner is None:
            raise RuntimeError("LocalSageMakerBackend.configure(runner) was not called")
        active = _ActiveJob(spec, job)
        with self._lock:
            self._active[spec.arn] = active
        active.thread = threading.Thread(
            target=self._run, args=(active,), name=f"sagemaker-{spec.kind}-{spec.name}", daemon=True
        )
        active.thread.start()

    def _run(self, active: _ActiveJob) -> None:
        spec, job = active.spec, active.job
        stopping = spec.request.get("StoppingCondition") or {}
        limits = [(stopping.get("MaxRuntimeInSeconds"), "MaxRuntimeExceeded")]
        if spec.request.get("EnableManagedSpotTraining"):  # the spot wait counts from the start too
            limits.append((stopping.get("MaxWaitTimeInSeconds"), "MaxWaitTimeExceeded"))
        timers = []
        for seconds, reason in limits:
            if seconds:
                timer = threading.Timer(float(seconds), self._request_stop, args=(spec.arn, reason))
                timer.daemon = True
                timer.start()
                timers.append(timer)
        TIMELINE.mark(spec.name, "created")
        self._note_fidelity(spec)
        job.started(utcnow())
        try:
            recorder = None
            if spec.kind is TRAINING:
                definitions = (spec.request.get("AlgorithmSpecification") or {}).get("MetricDefinitions")
                recorder = MetricsRecorder(definitions, job, self.account_id, self.region_name)

            def logs(host: str):
                sink = JobLog(self.account_id, self.region_name, spec.kind, spec.name, host=host)
                return recorder.watching(sink) if recorder else sink

            outcome = self.runner.run(spec, logs, active.stop)
            if recorder is not None and outcome.metrics:  # served from the step cache: no log lines
                recorder.record(outcome.metrics)
        except Exception as ex:  # a runner must not raise; if one does, the job fails
            outcome = JobOutcome("Failed", f"InternalServerError: {ex}")
        finally:
            for timer in timers:
                timer.cancel()
        if active.stop.is_set() and outcome.status != "Failed":
            outcome = JobOutcome("Stopped", model_artifacts=outcome.model_artifacts, outputs=outcome.outputs)
        if outcome.model_artifacts:  # a stopped job's model is uploaded too, as on AWS
            job.produced["ModelArtifacts"] = {"S3ModelArtifacts": outcome.model_artifacts}
        job.finished(
            utcnow(), outcome.status, outcome.failure_reason, active.stop.reason, outcome.served_from
        )
        TIMELINE.mark(spec.name, "completed")
        job_events.job_ended()
        with self._lock:
            self._active.pop(spec.arn, None)

    def _note_fidelity(self, spec: JobSpec) -> None:
        """What the job asks that does not run here, for the fidelity report; never fails the job."""
        try:
            model = self._models.get(spec.request.get("ModelName", "")) if spec.kind is TRANSFORM else None
            vpc = {"VpcConfig": getattr(model, "vpc_config", None)}
            findings = job_fidelity.job_findings(spec.kind, spec.request, vpc)
            findings += job_fidelity.image_findings(_image_of(spec), containers.local_registries())
            for kind, message in findings:
                JOURNAL.note(spec.name, kind, message)
        except Exception:  # a gap in the report, not a job that hangs
            log.exception("the fidelity findings of job %s could not be noted", spec.name)
            JOURNAL.note(spec.name, "unknown", "what this job asked that does not run here could not be read")

    def _request_stop(self, arn: str, reason: str) -> None:
        with self._lock:
            active = self._active.get(arn)
        if active is None or active.stop.is_set():
            return  # already ended or stopping: StopXJob is idempotent on AWS too
        active.stop.set(reason)
        active.job.move("Stopping", utcnow())

        def keep_killing() -> None:
            # Containers may not exist yet (inputs still downloading): retry until the job ends.
            while active.thread is not None and active.thread.is_alive():
                self.runner.stop(active.spec)
                active.thread.join(STOP_POLL_S)

        threading.Thread(target=keep_killing, name=f"stop-{active.spec.name}", daemon=True).start()


def _image_of(spec: JobSpec) -> str | None:
    """The image a job runs: its request's, or (a transform job) its model's."""
    if spec.kind.image:
        return at(spec.request, spec.kind.image)
    return (spec.model_container or {}).get("Image")


def _time(value: Any) -> float:
    """A timestamp as seconds: a datetime, an ISO string or epoch seconds (None sorts first)."""
    import datetime

    if value is None:
        return float("-inf")
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _page(items: list, filters: dict[str, Any]) -> tuple[list, str | None]:
    """One page (MaxResults, default 10) from NextToken on, and the token of the next."""
    token = filters.get("NextToken")
    if token and (not str(token).isdigit() or int(token) > len(items)):
        raise ValidationError(f'Invalid pagination token because "{token}".')
    start = int(token or 0)
    size = int(filters.get("MaxResults") or 10)
    return items[start : start + size], (str(start + size) if start + size < len(items) else None)
