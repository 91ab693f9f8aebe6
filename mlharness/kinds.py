"""SageMaker's resource kinds: one table, one spelling each.

A kind is spelled as IAM's ARNs spell its resource type (`training-job`); every other
name SageMaker, Step Functions and CloudWatch give it is a function of that spelling
(`TrainingJob`, `CreateTrainingJob`, `TrainingJobName`, `createTrainingJob`,
`/aws/sagemaker/TrainingJobs`). What botocore's service model says of a kind (its
statuses, where its request takes KMS keys, a VPC, an instance type) is read from the
model; what the model does not say (where the request names the image a job runs, how
its containers are named, whether it reports secondary statuses) is declared here.

Adding a kind is one entry of KINDS. The local AWS, the build checks, the template's IAM
statements, the test kit and the harness's logs all read this table.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

_TRANSIENT_STATUSES = ("InProgress", "Stopping")


@dataclasses.dataclass(frozen=True)
class Kind:
    resource: str  # the one spelling: IAM's resource type, the ARN's (`training-job`)
    job: bool = False  # runs to an end: InProgress, then Completed, Failed or Stopped
    # Declared (SageMaker's documentation, not its service model):
    image: tuple[str, ...] = ()  # where the request names the image its containers run
    hosts: str = ""  # its containers' host names: algo-1, algo-2, ... or i-local (transform)
    secondary_statuses: bool = False  # it reports SecondaryStatus and its transitions
    containers: bool = False  # it runs containers of its own (a tuning job runs training jobs)
    list_order: str = "Ascending"  # its List operation's default SortOrder (the API reference's)

    # -- names, all from the one spelling ------------------------------------------------
    @property
    def noun(self) -> str:
        """`TrainingJob`."""
        return "".join(part.title() for part in self.resource.split("-"))

    def operation(self, verb: str) -> str:
        """`CreateTrainingJob` for verb `Create`."""
        return f"{verb}{self.noun}"

    @property
    def name_member(self) -> str:
        return f"{self.noun}Name"

    @property
    def arn_member(self) -> str:
        return f"{self.noun}Arn"

    @property
    def status_member(self) -> str:
        return f"{self.noun}Status"

    @property
    def integration(self) -> str:
        """Step Functions' optimised integration: `createTrainingJob`."""
        return f"create{self.noun}"

    @property
    def log_group(self) -> str:
        """Where CloudWatch keeps its containers' logs: `/aws/sagemaker/TrainingJobs`."""
        return f"/aws/sagemaker/{self.noun}s"

    @property
    def attribute(self) -> str:
        """As Python names it (moto's records, boto3's methods): `training_job`."""
        return self.resource.replace("-", "_")

    @property
    def first_host(self) -> str:
        """The host name of its first (or only) container: `algo-1`, or `i-local`."""
        return "algo-1" if self.hosts == "algo" else self.hosts

    @property
    def title(self) -> str:
        """As SageMaker's messages name it: `training job`, `hyperparameter tuning job`."""
        return self.resource.replace("-", " ").replace("hyper parameter", "hyperparameter")

    # -- what botocore's service model says ------------------------------------------------
    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(_describe_output(self.noun).members[self.status_member].enum)

    @property
    def terminal_statuses(self) -> tuple[str, ...]:
        """The statuses a job ends in (of those it reaches: not the deletions)."""
        return tuple(s for s in self.statuses if s not in _TRANSIENT_STATUSES and not s.startswith("Delet"))

    @property
    def volume_kms_key(self) -> tuple[str, ...]:
        """Where the request takes the key of its volumes: `("ResourceConfig", "VolumeKmsKeyId")`."""
        return _first_path(self.noun, "volume key")

    @property
    def output_kms_key(self) -> tuple[str, ...]:
        """Where the request takes the key of its outputs: `("OutputDataConfig", "KmsKeyId")`."""
        return _first_path(self.noun, "output key")

    @property
    def vpc_config(self) -> tuple[str, ...]:
        return _first_path(self.noun, "vpc")

    @property
    def instance_type(self) -> tuple[str, ...]:
        return _first_path(self.noun, "instance type")

    @property
    def instance_type_enum(self) -> str:
        """The service model's enum of its instance types: `TrainingInstanceType`."""
        return _member_shape(self.noun, self.instance_type).name if self.instance_type else ""

    @property
    def traffic_encryption(self) -> tuple[str, ...]:
        return _first_path(self.noun, "traffic encryption")

    @property
    def role(self) -> tuple[str, ...]:
        """Where its request passes a role to SageMaker (`RoleArn`, a model's `ExecutionRoleArn`):
        creating one needs iam:PassRole on it; () when it passes none."""
        return _first_path(self.noun, "role")


PROCESSING = Kind(
    "processing-job", job=True, image=("AppSpecification", "ImageUri"), hosts="algo", containers=True
)
TRAINING = Kind(
    "training-job",
    job=True,
    image=("AlgorithmSpecification", "TrainingImage"),
    hosts="algo",
    secondary_statuses=True,
    containers=True,
)
# A transform job's model names its image.
TRANSFORM = Kind("transform-job", job=True, hosts="i-local", containers=True, list_order="Descending")
TUNING = Kind(
    "hyper-parameter-tuning-job",
    job=True,
    image=("TrainingJobDefinition", "AlgorithmSpecification", "TrainingImage"),
)
MODEL = Kind("model")
ENDPOINT_CONFIG = Kind("endpoint-config")
ENDPOINT = Kind("endpoint", hosts="i-local")

KINDS = {
    kind.resource: kind
    for kind in (PROCESSING, TRAINING, TUNING, TRANSFORM, MODEL, ENDPOINT_CONFIG, ENDPOINT)
}
JOBS = tuple(kind for kind in KINDS.values() if kind.job)


def by_name_member(member: str) -> Kind | None:
    """The kind whose name member this is (`TrainingJobName` -> TRAINING)."""
    return next((kind for kind in KINDS.values() if kind.name_member == member), None)


def by_integration(action: str) -> Kind | None:
    """The job kind of a Step Functions SageMaker action (`createTrainingJob`, case as given)."""
    return next((kind for kind in JOBS if kind.integration.lower() == action.lower()), None)


def at(document: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` of a request or answer, or None."""
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


@functools.cache
def _model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _describe_output(noun: str):
    return _model().operation_model(f"Describe{noun}").output_shape


# What each member path is, told by the member's name, its parent's, and its shape's.
_MEMBERS = {
    "volume key": lambda name, parent, shape: name == "VolumeKmsKeyId",
    "output key": lambda name, parent, shape: name == "KmsKeyId" and "Output" in parent,
    "vpc": lambda name, parent, shape: name == "VpcConfig",
    "instance type": lambda name, parent, shape: (
        name == "InstanceType" and shape.name.endswith("InstanceType")
    ),
    "role": lambda name, parent, shape: name in ("RoleArn", "ExecutionRoleArn"),
    "traffic encryption": lambda name, parent, shape: name == "EnableInterContainerTrafficEncryption",
}


def _member_shape(noun: str, path: tuple[str, ...]):
    shape = _model().operation_model(f"Create{noun}").input_shape
    for name in path:
        shape = shape.members[name]
    return shape


@functools.cache
def _first_path(noun: str, what: str) -> tuple[str, ...]:
    """The shallowest member of the Create request that is `what` (breadth first, in the model's
    order, not through lists); () when the request has none."""
    wanted = _MEMBERS[what]
    queue: list[tuple[tuple[str, ...], Any]] = [((), _model().operation_model(f"Create{noun}").input_shape)]
    while queue:
        path, shape = queue.pop(0)
        for name, member in shape.members.items():
            if wanted(name, path[-1] if path else "", member):
                return (*path, name)
        queue += [
            ((*path, n), m) for n, m in shape.members.items() if m.type_name == "structure" and len(path) < 4
        ]
    return ()
