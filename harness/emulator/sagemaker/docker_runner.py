"""The project's own job runner: SageMaker's container contract through the Docker API.

For each job: a folder per host laid out as contract.py says, the inputs staged from the
local AWS's S3 (channels.py), one container per instance (hostnames algo-1 ... algo-N on
a network of the job's own when there are several; a single host starts in a network
namespace made ahead, network_sandboxes.py), each host's output in its own log
stream, CPU and memory limits from the instance type (instances.py), then the outcome
as AWS reports it: the exit code, /opt/ml/output/failure, an out-of-memory kill; and the
outputs uploaded (model.tar.gz and output.tar.gz, processing outputs), a stopped training
job's model included. Checkpoints are restored at start and synced while the job runs.
"""

from __future__ import annotations

import collections
import logging
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from harness.emulator import containers
from harness.emulator.fidelity import JOURNAL
from harness.emulator.iam import principals
from harness.emulator.iam.actions import Authorization
from harness.emulator.sagemaker import (
    channels,
    contract,
    instances,
    job_fidelity,
    network_sandboxes,
    serving,
    transform,
)
from harness.emulator.sagemaker.runner import (
    HostedModel,
    HostingFailed,
    JobOutcome,
    JobRunner,
    JobSpec,
    LogFactory,
    LogSink,
    ModelHost,
    StopSignal,
)
from harness.emulator.sagemaker.timeline import TIMELINE
from mlharness.kinds import PROCESSING, TRAINING, TRANSFORM

log = logging.getLogger(__name__)

FAILURE_TAIL_LINES = 10
FAILURE_FILE_LIMIT = 1024  # AWS keeps the first KiB of /opt/ml/output/failure
STOP_GRACE_S = 10  # SIGTERM, then this long before SIGKILL (AWS waits 120 s)
SYNC_INTERVAL_S = 2.0
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def key_uses(spec: JobSpec) -> list[Authorization]:
    """The KMS permissions the job's role needs for the keys its request names: a data key to
    encrypt its outputs, a grant for its volumes."""
    region, account = spec.arn.split(":")[3:5]
    uses = []
    for where, key in job_fidelity.kms_keys(spec.kind, spec.request):
        arn = (
            key
            if key.startswith("arn:")
            else f"arn:aws:kms:{region}:{account}:{'' if key.startswith('alias/') else 'key/'}{key}"
        )
        action = "kms:CreateGrant" if where.endswith("VolumeKmsKeyId") else "kms:GenerateDataKey"
        uses.append(Authorization(action, arn, {}))
    return uses


def job_credentials(spec: JobSpec) -> dict[str, str]:
    """Credentials of the job's own, for its role (IAM evaluation attributes its calls to the
    role); a job without a role gets the user's."""
    if not spec.role_arn:
        return dict(FAKE_CREDENTIALS)
    return principals.credentials_for(spec.role_arn, spec.name, of_job=True)


OUT_OF_MEMORY = (
    "OutOfMemoryError: Please use an instance type with more memory, or reduce the size of job data "
    "processed on an instance."
)


class JobFailed(Exception):
    """The job ends Failed; the message is its FailureReason."""


class DockerRunner(JobRunner, ModelHost):
    def __init__(
        self,
        endpoint_url: str,
        work_dir: str,
        keep_containers: bool = False,
        serving_by_network: bool = False,
        authorize=None,
    ):
        """endpoint_url: the local AWS as seen from job containers. serving_by_network: the local
        AWS is itself on the job network, so it calls serving containers at their address there.
        authorize(role_arn, job, region, authorizations): what SageMaker does as the job's role
        outside any request (using its KMS keys), judged by IAM: a denial message, or None."""
        self.authorize = authorize
        self.endpoint_url = endpoint_url
        self.work_dir = Path(work_dir)
        self.keep_containers = keep_containers
        self.serving_by_network = serving_by_network
        self._machine: tuple[int, int] | None = None
        self._stopping: set[str] = set()  # containers already sent SIGTERM
        self._lock = threading.Lock()
        # A single-host job's and a serving container's network namespace, made ahead (kept
        # containers are left as they ran, so they keep networks of their own).
        self.sandboxes = self.serving_sandboxes = None
        if not keep_containers:
            self.sandboxes = network_sandboxes.NetworkSandboxes("job", hostname=contract.hosts(1)[0])
            self.serving_sandboxes = network_sandboxes.NetworkSandboxes(
                "serving", published_port=None if serving_by_network else contract.SERVING_PORT
            )

    def run(self, spec: JobSpec, logs: LogFactory, stop: StopSignal) -> JobOutcome:
        if self.authorize is not None:
            denied = self.authorize(spec.role_arn, spec.name, spec.region, key_uses(spec))
            if denied:
                return JobOutcome("Failed", f"ClientError: KMS key access failed (AccessDenied): {denied}")
        job = _Job(self, spec, logs, stop)
        try:
            outcome = job.run()
            outcome.outputs = list(job.data.written)
            return outcome
        except (JobFailed, channels.DataError, serving.ServingError, transform.TransformError) as ex:
            return JobOutcome("Stopped") if stop.is_set() else JobOutcome("Failed", str(ex))
        except botocore.exceptions.ClientError as ex:  # the role may not read or write its data
            if stop.is_set():
                return JobOutcome("Stopped")
            error = ex.response.get("Error", {})
            if error.get("Code") not in ("AccessDenied", "AccessDeniedException"):
                return JobOutcome("Failed", f"InternalServerError: {_one_line(ex)}")
            return JobOutcome(
                "Failed", f"ClientError: Data access failed (AccessDenied): {error.get('Message')}"
            )
        except Exception as ex:  # the job fails; the local AWS carries on
            log.debug("job %s failed", spec.name, exc_info=True)
            if stop.is_set():
                return JobOutcome("Stopped")
            return JobOutcome("Failed", f"InternalServerError: {_one_line(ex)}")
        finally:
            job.clean_up()

    def stop(self, spec: JobSpec) -> None:
        """Ask the job's containers to end: SIGTERM now, SIGKILL after the grace period."""
        for listed in containers.job_containers(spec.arn):
            with self._lock:
                if listed["Id"] in self._stopping:
                    continue
                self._stopping.add(listed["Id"])
            threading.Thread(target=_stop_container, args=(listed["Id"],), daemon=True).start()

    def shutdown(self) -> None:
        for pool in (self.sandboxes, self.serving_sandboxes):
            if pool is not None:
                pool.close()
        containers.remove_own_containers()
        containers.remove_own_networks()

    # -- ModelHost -------------------------------------------------------------------
    def host(self, spec: JobSpec, log: LogSink) -> HostedModel:
        container = spec.model_container or {}
        folder = Path(tempfile.mkdtemp(prefix=_folder_prefix(spec.name), dir=self.work_dir))
        try:
            self.s3(spec).unpack_model(container.get("ModelDataUrl") or "", folder / "model")
            environment = {**self.aws_environment(spec), **(container.get("Environment") or {})}
            labels = containers.labels_for(spec.arn)
            return serving.serve(
                container["Image"],
                folder,
                environment,
                labels,
                log,
                keep=self.keep_containers,
                by_network=self.serving_by_network,
                sandboxes=self.serving_sandboxes,
            )
        except (channels.DataError, serving.ServingError) as ex:
            shutil.rmtree(folder, ignore_errors=True)
            raise HostingFailed(str(ex)) from None
        except BaseException:  # a full disk mid-extraction included: its scratch is freed all the same
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def unhost(self, hosted: HostedModel) -> None:
        assert isinstance(hosted, serving.ServedModel)
        hosted.stop()

    # -- shared by jobs ---------------------------------------------------------------
    def s3(self, spec: JobSpec) -> channels.S3Data:
        """S3 as the job's role: SageMaker stages a job's data with the role's permissions."""
        credentials = job_credentials(spec)
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=spec.region,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
        )
        return channels.S3Data(client, spec.region)

    def image_id(self, image: str) -> str | None:
        """The engine's id of the image, pulled first from the local ECR as the job would be."""
        return containers.image_id(image)

    def aws_environment(self, spec: JobSpec) -> dict[str, str]:
        """What a job container gets so its own AWS calls reach the local AWS, as the job's role."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            **job_credentials(spec),
        }

    def limits(self, instance_type: str | None, job: str) -> instances.Limits:
        """The container limits for the instance type; what differs from AWS is noted for the job."""
        if self._machine is None:
            info = containers.docker_client().info()
            self._machine = (int(info.get("NCPU") or 1), int(info.get("MemTotal") or 0))
        cpus, memory = self._machine
        limits = instances.limits_for(instance_type, cpus, memory)
        if limits.note:
            kind = (
                "gpu" if (instances.on_aws(instance_type) or instances.Instance(0, 0)).gpus else "instances"
            )
            JOURNAL.note(job, kind, limits.note.removeprefix("local AWS: "))
        return limits


@dataclass
class _Synced:
    """A folder a running job writes, uploaded to `uri` as its files appear or change."""

    path: Path
    uri: str
    seen: dict = field(default_factory=dict)

    def upload_changes(self, data: channels.S3Data) -> None:
        changed = channels.changed_since(self.path, self.seen)
        if changed:
            data.upload_folder(self.path, self.uri, only=changed)


@dataclass
class _Host:
    name: str
    root: Path
    sink: Any
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=FAILURE_TAIL_LINES))
    container: Any = None
    sandbox: network_sandboxes.Sandbox | None = None  # the network namespace its container joined


class _Job:
    """One job's run: folders, containers, the outcome, clean-up."""

    def __init__(self, runner: DockerRunner, spec: JobSpec, logs: LogFactory, stop: StopSignal):
        self.runner, self.spec, self.logs, self.stop = runner, spec, logs, stop
        self.request = spec.request
        self.folder = Path(tempfile.mkdtemp(prefix=_folder_prefix(spec.name), dir=runner.work_dir))
        self.network: str | None = None
        self.hosts: list[_Host] = []
        self.data = runner.s3(spec)

    # -- the run ---------------------------------------------------------------------
    def run(self) -> JobOutcome:
        runs = {TRAINING: self._train, PROCESSING: self._process, TRANSFORM: self._transform}
        if self.spec.kind not in runs:
            raise ValueError(f"no such kind of job: {self.spec.kind.resource}")
        return runs[self.spec.kind]()

    def _train(self) -> JobOutcome:
        request = self.request
        resources = request.get("ResourceConfig") or {}
        image = request["AlgorithmSpecification"]["TrainingImage"]
        self._check_image(image)
        names = contract.hosts(int(resources.get("InstanceCount") or 1))
        self._make_hosts(names)
        for index, host in enumerate(self.hosts):
            config = host.root / "input" / "config"
            config.mkdir(parents=True)
            for file_name, body in contract.training_files(request, host.name, names).items():
                (config / file_name).write_bytes(body)
            for sub in ("model", "output/data"):
                (host.root / sub).mkdir(parents=True)
            self._stage_channels(host, index, len(names))
        checkpoint = request.get("CheckpointConfig")
        synced: list[_Synced] = []
        if checkpoint:
            for host in self.hosts:
                folder = _Synced(host.root / "checkpoints", checkpoint["S3Uri"])
                folder.path.mkdir()
                restored = self.data.download_prefix(checkpoint["S3Uri"], folder.path)
                channels.changed_since(folder.path, folder.seen)  # restored files are not new
                synced.append(folder)
                if restored:
                    host.sink(f"local AWS: restored {restored} checkpoint file(s) from {checkpoint['S3Uri']}")
        environment = contract.training_environment(request, self.spec.arn)
        entrypoint, command = contract.training_command(request)
        for host in self.hosts:
            mounts = {
                host.root / "input": contract.INPUT,
                host.root / "model": contract.MODEL,
                host.root / "output": contract.OUTPUT,
            }
            if checkpoint:
                mounts[host.root / "checkpoints"] = contract.checkpoint_path(request)
            self._create_container(
                host, image, entrypoint, command, environment, mounts, resources.get("InstanceType")
            )
        exit_codes = self._start_and_wait(synced)
        outcome = self._outcome(exit_codes)
        if outcome.status in ("Completed", "Stopped"):
            outcome.model_artifacts = self._upload_training_outputs()
        return outcome

    def _process(self) -> JobOutcome:
        request = self.request
        cluster = request["ProcessingResources"]["ClusterConfig"]
        image = request["AppSpecification"]["ImageUri"]
        self._check_image(image)
        names = contract.hosts(int(cluster.get("InstanceCount") or 1))
        self._make_hosts(names)
        entrypoint, command = contract.processing_command(request)
        outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        synced: list[_Synced] = []  # Continuous outputs
        for index, host in enumerate(self.hosts):
            config = host.root / "config"
            config.mkdir(parents=True)
            for file_name, body in contract.processing_files(
                request, self.spec.arn, host.name, names
            ).items():
                (config / file_name).write_bytes(body)
            mounts = {config: contract.PROCESSING_CONFIG}
            for number, item in enumerate(request.get("ProcessingInputs") or []):
                source = item.get("S3Input")
                if not source:
                    raise JobFailed(
                        f"ClientError: input {item.get('InputName')}: only S3Input is supported locally"
                    )
                folder = host.root / "inputs" / str(number)
                folder.mkdir(parents=True)
                found = self.data.objects(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
                mine = channels.shard(
                    found, source.get("S3DataDistributionType", "FullyReplicated"), index, len(names)
                )
                self.data.download(mine, folder, gunzip=source.get("S3CompressionType") == "Gzip")
                mounts[folder] = source["LocalPath"]
            for number, item in enumerate(outputs):
                folder = host.root / "outputs" / str(number)
                folder.mkdir(parents=True)
                mounts[folder] = item["S3Output"]["LocalPath"]
                if item["S3Output"].get("S3UploadMode") == "Continuous":
                    synced.append(_Synced(folder, item["S3Output"]["S3Uri"]))
            environment = dict(request.get("Environment") or {})
            self._create_container(
                host, image, entrypoint, command, environment, mounts, cluster.get("InstanceType")
            )
        exit_codes = self._start_and_wait(synced)
        outcome = self._outcome(exit_codes)
        if outcome.status == "Completed":
            for host in self.hosts:
                for number, item in enumerate(outputs):
                    self.data.upload_folder(host.root / "outputs" / str(number), item["S3Output"]["S3Uri"])
        return outcome

    def _transform(self) -> JobOutcome:
        request, container = self.request, self.spec.model_container or {}
        resources = request.get("TransformResources") or {}
        count = int(resources.get("InstanceCount") or 1)
        names = ["i-local"] if count == 1 else [f"i-local-{n}" for n in range(1, count + 1)]
        environment = {
            **self.runner.aws_environment(self.spec),
            **(container.get("Environment") or {}),
            **transform.serving_environment(request),
        }
        limits = self.runner.limits(resources.get("InstanceType"), self.spec.name)
        models, sinks = [], []
        try:
            for name in names:
                sink = _marking(self.spec.name, self.logs(name))
                if limits.note:
                    sink(limits.note)
                folder = self.folder / name
                self.data.unpack_model(container.get("ModelDataUrl") or "", folder / "model")
                labels = containers.labels_for(self.spec.arn)
                TIMELINE.mark(self.spec.name, "staged")
                TIMELINE.mark(self.spec.name, "container started")
                models.append(
                    serving.serve(
                        container["Image"],
                        folder,
                        environment,
                        labels,
                        sink,
                        limits,
                        self.runner.keep_containers,
                        self.runner.serving_by_network,
                        self.runner.serving_sandboxes,
                    )
                )
                sinks.append(sink)
            transform.transform_all(request, self.data, models, sinks)
        finally:
            for model in models:
                model.stop()
            TIMELINE.mark(self.spec.name, "container exited")
        return JobOutcome("Stopped") if self.stop.is_set() else JobOutcome("Completed")

    # -- steps -------------------------------------------------------------------------
    def _check_image(self, image: str) -> None:
        if not containers.image_exists(image):
            raise JobFailed(f"ClientError: Requested image {image} not found.")

    def _make_hosts(self, names: list[str]) -> None:
        for name in names:
            root = self.folder / name
            root.mkdir()
            sink = self.logs(name)
            self.hosts.append(_Host(name, root, sink))
        for host in self.hosts:
            host_sink = _marking(self.spec.name, host.sink)

            def sink(line: str, host=host, write=host_sink) -> None:
                host.tail.append(line)
                write(line)

            host.sink = sink

    def _stage_channels(self, host: _Host, index: int, count: int) -> None:
        data = host.root / "input" / "data"
        data.mkdir(parents=True)
        for channel in self.request.get("InputDataConfig") or []:
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if source is None:
                name = channel["ChannelName"]
                raise JobFailed(f"ClientError: channel {name}: only S3 data sources are supported locally")
            found = self.data.objects(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
            mine = channels.shard(
                found, source.get("S3DataDistributionType", "FullyReplicated"), index, count
            )
            folder = data / channel["ChannelName"]
            folder.mkdir()
            self.data.download(mine, folder)

    def _create_container(
        self,
        host: _Host,
        image: str,
        entrypoint: list[str] | None,
        command: list[str] | None,
        environment: dict[str, str],
        mounts: dict[Path, str],
        instance_type: str | None,
    ) -> None:
        client = containers.docker_client()
        isolated = bool(
            self.request.get("EnableNetworkIsolation")
            or (self.request.get("NetworkConfig") or {}).get("EnableNetworkIsolation")
        )
        limits = self.runner.limits(instance_type, self.spec.name)
        if limits.note:
            host.sink(limits.note)
        env = dict(environment) if isolated else {**self.runner.aws_environment(self.spec), **environment}
        network = None if isolated else self._network()
        if network == containers.JOB_NETWORK and self.runner.sandboxes is not None:
            host.sandbox = self.runner.sandboxes.take(image)
        created = client.api.create_container(
            image,
            command=command,
            entrypoint=entrypoint,
            hostname=None if host.sandbox else host.name,  # the sandbox's, which is host.name
            environment=env,
            labels=containers.labels_for(self.spec.arn),
            host_config=client.api.create_host_config(
                binds={
                    str(path): {"bind": target, "mode": "rw"}
                    for path, target in sorted(mounts.items(), key=lambda m: m[1])
                },
                network_mode=(
                    "none" if isolated else f"container:{host.sandbox.id}" if host.sandbox else network
                ),
                mem_limit=limits.mem_bytes,
                nano_cpus=limits.nano_cpus,
            ),
            networking_config=(
                client.api.create_networking_config(
                    {network: client.api.create_endpoint_config(aliases=[host.name])}
                )
                if network and not host.sandbox
                else None
            ),
        )
        host.container = created["Id"]
        if network and network != containers.JOB_NETWORK:
            client.api.connect_container_to_network(host.container, containers.JOB_NETWORK)  # the local AWS

    def _network(self) -> str:
        """One host: the job network the local AWS listens on; several: a network of the job's own,
        where each host is found by its name."""
        if len(self.hosts) == 1:
            return containers.JOB_NETWORK
        if self.network is None:
            self.network = containers.create_job_network(self.spec.arn)
        return self.network

    def _start_and_wait(self, synced: list[_Synced]) -> dict[str, int]:
        """Start every host, wait for all to exit; `synced` folders go to S3 while they run."""
        client = containers.docker_client()
        readers = []
        TIMELINE.mark(self.spec.name, "staged")
        for host in self.hosts:
            TIMELINE.mark(self.spec.name, "container started")
            client.api.start(host.container)
            reader = threading.Thread(
                target=_stream_output, args=(host,), name=f"log-{host.name}", daemon=True
            )
            reader.start()
            readers.append(reader)
        done = threading.Event()
        syncer = threading.Thread(target=self._sync, args=(synced, done), daemon=True) if synced else None
        if syncer is not None:
            syncer.start()
        codes = {}
        for host in self.hosts:
            codes[host.name] = int(client.api.wait(host.container)["StatusCode"])
        TIMELINE.mark(self.spec.name, "container exited")
        for reader in readers:
            reader.join(timeout=10)
        if syncer is not None:
            done.set()
            syncer.join()
            for folder in synced:  # what changed after the last round
                folder.upload_changes(self.data)
        return codes

    def _sync(self, synced: list[_Synced], done: threading.Event) -> None:
        while not done.wait(SYNC_INTERVAL_S):
            for folder in synced:
                try:
                    folder.upload_changes(self.data)
                except Exception:  # a file written while read: the next round takes it
                    log.debug("sync of %s to %s failed", folder.path, folder.uri, exc_info=True)

    def _outcome(self, exit_codes: dict[str, int]) -> JobOutcome:
        client = containers.docker_client()
        if self.stop.is_set():
            return JobOutcome("Stopped")
        for host in self.hosts:
            code = exit_codes[host.name]
            if code == 0:
                continue
            state = client.api.inspect_container(host.container)["State"]
            if state.get("OOMKilled"):
                return JobOutcome("Failed", OUT_OF_MEMORY)
            failure = self._failure_file(host)
            if failure:
                return JobOutcome("Failed", f"AlgorithmError: {failure}")
            text = "\n".join(line for line in host.tail if line.strip())
            return JobOutcome("Failed", f"AlgorithmError: {text}, exit code: {code}")
        return JobOutcome("Completed")

    def _failure_file(self, host: _Host) -> str | None:
        path = host.root / "output" / "failure"
        if self.spec.kind is not TRAINING or path.is_symlink() or not path.is_file():
            return None  # a link is not followed: it could name a file of the host's
        return path.read_text(errors="replace")[:FAILURE_FILE_LIMIT].strip() or None

    def _upload_training_outputs(self) -> str:
        output = f"{self.request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{self.spec.name}/output"
        first = self.hosts[0].root  # the model and output data come from the first host, as on AWS
        model_uri = f"{output}/model.tar.gz"
        self.data.put(channels.pack(first / "model"), model_uri)
        if any((first / "output" / "data").iterdir()):
            self.data.put(channels.pack(first / "output" / "data"), f"{output}/output.tar.gz")
        return model_uri

    def clean_up(self) -> None:
        if not self.runner.keep_containers:
            containers.remove_job_containers(self.spec.arn)
        for host in self.hosts:
            if host.sandbox:
                self.runner.sandboxes.discard(host.sandbox)
        if self.network:
            containers.remove_network(self.network)
        shutil.rmtree(self.folder, ignore_errors=True)


def _folder_prefix(name: str) -> str:
    """A job's folder's name: its name, as a plain file name whatever the request held."""
    return re.sub(r"[^A-Za-z0-9-]", "_", name)[:63] + "-"


def _marking(job: str, sink: LogSink) -> LogSink:
    """The sink, marking the job's first and last line of output on its timeline."""

    def write(line: str) -> None:
        TIMELINE.mark(job, "first line")
        TIMELINE.mark(job, "last line", keep_first=False)
        sink(line)

    return write


def _stream_output(host: _Host) -> None:
    """The container's output, line by line, into its host's log."""
    for line in containers.output_lines(host.container):
        host.sink(line)


def _stop_container(container_id: str) -> None:
    try:
        containers.docker_client().api.stop(container_id, timeout=STOP_GRACE_S)
    except Exception:  # already ended
        pass


def _one_line(ex: BaseException) -> str:
    return " ".join(str(ex).split()) or type(ex).__name__
