"""What an ML instance type gives a job on AWS (vCPUs, memory, GPUs), and what a container
gets here: the same, capped by what this machine has.

Sizes follow AWS's published instance specifications: within a family the vCPU count
follows the size name (large 2, xlarge 4, 2xlarge 8, ...) and the memory is a fixed
amount per vCPU; GPU types are listed one by one.
"""

from __future__ import annotations

import dataclasses
import re

# size name -> vCPUs, for the families below
SIZES = {
    "large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "9xlarge": 36,
    "12xlarge": 48, "16xlarge": 64, "18xlarge": 72, "24xlarge": 96, "32xlarge": 128, "48xlarge": 192,
}  # fmt: skip
# family -> GiB of memory per vCPU
GIB_PER_VCPU = {
    "m4": 4, "m5": 4, "m5d": 4, "m6i": 4, "m6id": 4, "m7i": 4,
    "c4": 1.875, "c5": 2, "c5d": 2, "c5n": 2.625, "c6i": 2, "c7i": 2,
    "r5": 8, "r5d": 8, "r6i": 8, "r7i": 8,
}  # fmt: skip
# instance types outside the rule: (vCPUs, GiB, GPUs)
LISTED = {
    "ml.t2.medium": (2, 4, 0),
    "ml.t2.large": (2, 8, 0),
    "ml.t2.xlarge": (4, 16, 0),
    "ml.t2.2xlarge": (8, 32, 0),
    "ml.t3.medium": (2, 4, 0),
    "ml.t3.large": (2, 8, 0),
    "ml.t3.xlarge": (4, 16, 0),
    "ml.t3.2xlarge": (8, 32, 0),
    "ml.p2.xlarge": (4, 61, 1),
    "ml.p2.8xlarge": (32, 488, 8),
    "ml.p2.16xlarge": (64, 732, 16),
    "ml.p3.2xlarge": (8, 61, 1),
    "ml.p3.8xlarge": (32, 244, 4),
    "ml.p3.16xlarge": (64, 488, 8),
    "ml.p3dn.24xlarge": (96, 768, 8),
    "ml.p4d.24xlarge": (96, 1152, 8),
    "ml.p5.48xlarge": (192, 2048, 8),
    "ml.g4dn.xlarge": (4, 16, 1),
    "ml.g4dn.2xlarge": (8, 32, 1),
    "ml.g4dn.4xlarge": (16, 64, 1),
    "ml.g4dn.8xlarge": (32, 128, 1),
    "ml.g4dn.12xlarge": (48, 192, 4),
    "ml.g4dn.16xlarge": (64, 256, 1),
    "ml.g5.xlarge": (4, 16, 1),
    "ml.g5.2xlarge": (8, 32, 1),
    "ml.g5.4xlarge": (16, 64, 1),
    "ml.g5.8xlarge": (32, 128, 1),
    "ml.g5.12xlarge": (48, 192, 4),
    "ml.g5.16xlarge": (64, 256, 1),
    "ml.g5.24xlarge": (96, 384, 4),
    "ml.g5.48xlarge": (192, 768, 8),
}
_TYPE = re.compile(r"^ml\.(?P<family>[a-z0-9]+)\.(?P<size>[a-z0-9]+)$")


@dataclasses.dataclass(frozen=True)
class Instance:
    vcpus: int
    memory_gib: float
    gpus: int = 0


def on_aws(instance_type: str | None) -> Instance | None:
    """What the type gives on AWS, or None when this table does not know it."""
    if not instance_type:
        return None
    if instance_type in LISTED:
        return Instance(*LISTED[instance_type])
    match = _TYPE.match(instance_type)
    if match and match["family"] in GIB_PER_VCPU and match["size"] in SIZES:
        vcpus = SIZES[match["size"]]
        return Instance(vcpus, vcpus * GIB_PER_VCPU[match["family"]])
    return None


@dataclasses.dataclass(frozen=True)
class Limits:
    """What each container of a job gets here, and the sentence that says so in its log."""

    nano_cpus: int | None
    mem_bytes: int | None
    note: str | None  # None when the container gets what the instance has on AWS


def limits_for(instance_type: str | None, machine_cpus: int, machine_memory: int) -> Limits:
    """The container limits for `instance_type` on a machine with `machine_cpus` CPUs and
    `machine_memory` bytes: AWS's size, capped by the machine. The note says what differs."""
    aws = on_aws(instance_type)
    if aws is None:
        note = f"local AWS: {instance_type} is not in the instance table: no CPU or memory limit"
        return Limits(None, None, note)
    cpus = min(aws.vcpus, machine_cpus)
    memory = min(int(aws.memory_gib * 2**30), machine_memory)
    capped = []
    if aws.vcpus > machine_cpus:
        capped.append(f"{cpus} CPUs (this machine has {machine_cpus})")
    if aws.memory_gib * 2**30 > machine_memory:
        capped.append(f"{memory / 2**30:.1f} GiB (this machine has {machine_memory / 2**30:.1f} GiB)")
    note = None
    if capped or aws.gpus:
        gpus = f" and {aws.gpus} GPU(s), which it does not have here" if aws.gpus else ""
        here = f"; here capped to {', '.join(capped)}" if capped else ""
        note = (
            f"local AWS: {instance_type} has {aws.vcpus} vCPUs and {aws.memory_gib:g} GiB on AWS{gpus}{here}"
        )
    return Limits(int(cpus * 1e9), memory, note)
