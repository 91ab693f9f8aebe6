"""Patches to moto's IAM."""

from __future__ import annotations

import json


def load_aws_managed_policies() -> None:
    """AWS's managed policies (AmazonSageMakerFullAccess, AmazonS3FullAccess, ...) exist in every
    account; moto ships their documents but loads them only when asked, so attaching one failed
    with NoSuchEntity and a role that had one was evaluated without it."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True


def deploy_role_policies_as_aws() -> None:
    """CloudFormation's AWS::IAM::Role dropped ManagedPolicyArns, and an update kept the role's
    first trust policy, inline Policies and description whatever the template said. A stack's
    role now holds what its template says, created or updated; a policy that does not exist
    fails the resource with IAM's message."""
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

    upstream_create = Role.create_from_cloudformation_json.__func__
    upstream_update = Role.update_from_cloudformation_json.__func__
    if getattr(upstream_create, "__wrapped__", None) is not None:
        return  # already applied

    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        role = upstream_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_backends[account_id][get_partition(region_name)]
        properties = cloudformation_json["Properties"]
        _attach(backend, role, properties.get("ManagedPolicyArns") or [])
        return role

    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        backend = iam_backends[account_id][get_partition(region_name)]
        properties = cloudformation_json["Properties"]
        role = original_resource
        trust = properties["AssumeRolePolicyDocument"]
        backend.update_assume_role_policy(role.name, trust if isinstance(trust, str) else json.dumps(trust))
        role.description = properties.get("Description", "")
        role.max_session_duration = properties.get("MaxSessionDuration", 3600)
        wanted_inline = {
            policy["PolicyName"]: policy["PolicyDocument"] for policy in properties.get("Policies") or []
        }
        for name in set(role.policies) - set(wanted_inline):
            role.delete_policy(name)
        for name, document in wanted_inline.items():
            role.put_policy(name, document)  # kept as given, as upstream's create keeps it
        wanted_managed = list(properties.get("ManagedPolicyArns") or [])
        for arn in set(role.managed_policies) - set(wanted_managed):
            backend.detach_role_policy(arn, role.name)
        _attach(backend, role, [arn for arn in wanted_managed if arn not in role.managed_policies])
        return role

    create_from_cloudformation_json.__wrapped__ = upstream_create
    update_from_cloudformation_json.__wrapped__ = upstream_update
    Role.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    Role.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)


def _attach(backend, role, policy_arns: list[str]) -> None:
    for arn in policy_arns:
        backend.attach_role_policy(arn, role.name)


def add_policy_simulation() -> None:
    """moto has no SimulatePrincipalPolicy or SimulateCustomPolicy; SDKs call them (the SageMaker
    SDK v3 checks every role it is given with SimulatePrincipalPolicy). They answer from the local
    AWS's own evaluation (harness.emulator.iam.simulation)."""
    from moto.core.responses import ActionResult
    from moto.iam import exceptions
    from moto.iam.responses import IamResponse

    from harness.emulator.iam import simulation

    if "simulate_principal_policy" in vars(IamResponse):
        return  # already applied (or upstream has its own: then tests/unit/test_patches.py says so)

    def answer(response, identity, boundary):
        arguments = response._get_params()
        context = {
            entry["ContextKeyName"]: list(entry.get("ContextKeyValues") or [])
            for entry in response._get_param("ContextEntries", []) or []
        }
        caller = response._get_param("CallerArn") or response._get_param("PolicySourceArn") or ""
        results = simulation.simulate(
            identity,
            boundary,
            response._get_param("ActionNames", []),
            response._get_param("ResourceArns", []),
            caller,
            response._get_param("ResourcePolicy"),
            context,
        )
        start = int(arguments.get("Marker") or 0)
        size = int(response._get_param("MaxItems") or 1000)
        page = results[start : start + size]
        truncated = start + size < len(results)
        result = {"EvaluationResults": page, "IsTruncated": truncated}
        if truncated:
            result["Marker"] = str(start + size)
        return ActionResult(result)

    def simulate_principal_policy(response):
        try:
            identity, boundary = simulation.principal_policies(
                response.backend, response._get_param("PolicySourceArn")
            )
            identity += simulation.given(response._get_param("PolicyInputList", []) or [], "PolicyInputList")
            given_boundary = response._get_param("PermissionsBoundaryPolicyInputList", []) or []
            if given_boundary:
                boundary = simulation.given(given_boundary, "PermissionsBoundaryPolicyInputList")
            return answer(response, identity, boundary)
        except simulation.NoSuchEntity as ex:
            raise exceptions.NoSuchEntity(str(ex)) from None
        except simulation.InvalidInput as ex:
            raise exceptions.InvalidInput(str(ex)) from None

    def simulate_custom_policy(response):
        try:
            identity = simulation.given(response._get_param("PolicyInputList", []) or [], "PolicyInputList")
            given_boundary = response._get_param("PermissionsBoundaryPolicyInputList", []) or []
            boundary = simulation.given(given_boundary, "PermissionsBoundaryPolicyInputList")
            return answer(response, identity, boundary)
        except simulation.InvalidInput as ex:
            raise exceptions.InvalidInput(str(ex)) from None

    IamResponse.simulate_principal_policy = simulate_principal_policy
    IamResponse.simulate_custom_policy = simulate_custom_policy
