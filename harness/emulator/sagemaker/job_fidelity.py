"""What a SageMaker job or endpoint request asks for that the local AWS does not reproduce,
read from the request alone (the runner notes what it caps when it applies the instance
limits). Each finding is (kind, sentence); harness.emulator.fidelity keeps them."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from mlharness.kinds import ENDPOINT, TRAINING, Kind, at

# Where SageMaker pulls job and serving images from: an ECR repository (any account and region).
ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")

# An endpoint configuration names the key of its instances' volumes here.
ENDPOINT_KMS_KEY = ("KmsKeyId",)


def job_findings(
    kind: Kind, request: dict[str, Any], model: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """kind: PROCESSING, TRAINING or TRANSFORM; model: a transform's model (its VpcConfig)."""
    findings = []
    if kind is TRAINING and request.get("EnableManagedSpotTraining"):
        findings.append(
            (
                "spot",
                "managed spot training ran on demand: never interrupted, no checkpoint restore after one",
            )
        )
    keep_alive = at(request, ("ResourceConfig", "KeepAlivePeriodInSeconds"))
    if kind is TRAINING and keep_alive:
        findings.append(
            (
                "warm-pool",
                f"warm pool (KeepAlivePeriodInSeconds {keep_alive}) not kept: "
                "each job starts its own containers",
            )
        )
    vpc = at(request, kind.vpc_config) if kind.vpc_config else (model or {}).get("VpcConfig")
    if vpc:
        subnets = ", ".join(vpc.get("Subnets") or []) or "none"
        groups = ", ".join(vpc.get("SecurityGroupIds") or []) or "none"
        findings.append(
            (
                "network",
                f"VpcConfig (subnets {subnets}; security groups {groups}) not applied: "
                "the containers ran on the local job network",
            )
        )
    if kind.traffic_encryption and at(request, kind.traffic_encryption):
        findings.append(("network", "inter-container traffic encryption not applied"))
    findings += _kms(kind, request)
    return findings


def endpoint_findings(config: dict[str, Any]) -> list[tuple[str, str]]:
    """An endpoint configuration: its variants, instance counts and KMS key."""
    findings = []
    variants = config.get("ProductionVariants") or []
    if len(variants) > 1:
        rest = ", ".join(v.get("VariantName", "?") for v in variants[1:])
        findings.append(
            (
                "endpoint",
                f"{len(variants)} production variants: only the first ({variants[0].get('VariantName')}) "
                f"is served; {rest} get no traffic",
            )  # fmt: skip
        )
    if variants:
        count = variants[0].get("InitialInstanceCount") or 1
        if count > 1:
            findings.append(
                (
                    "instances",
                    f"variant {variants[0].get('VariantName')} asks {count} instances: "
                    "one container serves it",
                )
            )
        instance_type = variants[0].get("InstanceType")
        if instance_type:
            findings.append(
                ("instances", f"the serving container has no {instance_type} CPU or memory limits")
            )
        if variants[0].get("ServerlessConfig"):
            findings.append(
                ("instances", "a serverless variant is served by one container that is always on")
            )
    findings += _kms(ENDPOINT, config)
    return findings


def image_findings(image: str | None, local_registries: Collection[str]) -> list[tuple[str, str]]:
    """An image SageMaker could not pull: not in ECR (the local AWS's ECR counts as ECR)."""
    if not image or ECR_IMAGE.match(image) or image.split("/", 1)[0] in local_registries:
        return []
    return [
        (
            "image",
            f"image {image} is not in ECR: SageMaker runs images from ECR repositories only "
            "(push it to ECR; the harness's deploy does so with the project's images)",
        )
    ]


def kms_keys(kind: Kind, request: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, key) for each KMS key the request names."""
    paths = (ENDPOINT_KMS_KEY,) if kind is ENDPOINT else (kind.output_kms_key, kind.volume_kms_key)
    return [(".".join(path), at(request, path)) for path in paths if path and at(request, path)]


def _kms(kind: Kind, request: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("kms", f"KMS key {key} ({where}) accepted; nothing was encrypted with it")
        for where, key in kms_keys(kind, request)
    ]
