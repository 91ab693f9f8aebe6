"""Fn::GetAtt as AWS documents it, for the resource types the local AWS creates.

The attributes each resource type has come from the CloudFormation resource schemas
that cfn-lint ships (the registry's own `readOnlyProperties`). moto resolves most of
them; `SUPPLIED` adds the ones users' templates need that it lacks (a state machine's
Arn, a rule's RuleName, the SageMaker ARNs, ...). An attribute the type does not
have is refused as AWS refuses it; one it has that the local AWS cannot resolve is
refused by name at CreateStack/CreateChangeSet, never left to fail every later
DescribeStacks.
"""

from __future__ import annotations

import functools
import re


def _state_machine_revision(machine) -> str:
    return getattr(machine, "revision_id", None) or machine.arn


# type -> attribute -> how to read it from moto's resource object
SUPPLIED = {
    "AWS::StepFunctions::StateMachine": {
        "Arn": lambda m: m.arn,
        "Name": lambda m: m.name,
        "StateMachineRevisionId": _state_machine_revision,
    },
    "AWS::Events::Rule": {"RuleName": lambda r: r.name},
    "AWS::KMS::Key": {"KeyId": lambda k: k.id},
    "AWS::IAM::AccessKey": {"Id": lambda k: k.access_key_id},
    "AWS::SageMaker::Model": {"ModelArn": lambda m: m.arn},
    "AWS::SageMaker::EndpointConfig": {"EndpointConfigArn": lambda c: c.arn},
    "AWS::SageMaker::Endpoint": {"EndpointArn": lambda e: e.arn},
    "AWS::SageMaker::NotebookInstance": {"NotebookInstanceArn": lambda n: n.arn},
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": {
        "NotebookInstanceLifecycleConfigArn": lambda c: c.arn
    },
    "AWS::SNS::Topic": {"TopicArn": lambda t: t.arn, "TopicName": lambda t: t.name},
}


@functools.cache
def documented(resource_type: str, region: str = "us-east-1") -> tuple[str, ...] | None:
    """The attribute names (regular expressions) AWS documents for the type, or None when
    the schemas do not know the type."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region.replace("_", "-"), resource_type)
    except Exception:  # an unknown type or region: nothing to check against
        return None
    return tuple(schema.get_atts)


def problem(resource_type: str, logical_id: str, attribute: str, region: str) -> str | None:
    """Why `Fn::GetAtt [logical_id, attribute]` cannot be deployed, or None when it can."""
    from moto.cloudformation.parsing import get_model_map

    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return None  # a custom resource's attributes are whatever it returns
    names = documented(resource_type, region)
    if names is None:
        return None
    if not any(re.fullmatch(name, attribute) for name in names):
        return (
            f"Template error: resource {logical_id} does not support attribute type {attribute} in Fn::GetAtt"
        )
    model = get_model_map().get(resource_type)
    if model is None or attribute in SUPPLIED.get(resource_type, {}) or model.has_cfn_attr(attribute):
        return None
    return (
        f"Template error: the local AWS does not resolve Fn::GetAtt {logical_id}.{attribute} "
        f"(attribute {attribute} of {resource_type})"
    )


def supply_missing_attributes() -> None:
    """Give moto's resource classes the documented attributes in SUPPLIED."""
    from moto.cloudformation.parsing import get_model_map

    models = get_model_map()
    for resource_type, table in SUPPLIED.items():
        model = models.get(resource_type)
        if model is None:
            continue
        _extend(model, table)


def _extend(model: type, table: dict) -> None:
    original_get = model.get_cfn_attribute
    original_has = model.has_cfn_attr.__func__

    def get_cfn_attribute(resource, attribute_name):
        if attribute_name in table:
            return table[attribute_name](resource)
        return original_get(resource, attribute_name)

    def has_cfn_attr(cls, attribute_name):
        return attribute_name in table or original_has(cls, attribute_name)

    get_cfn_attribute.__wrapped__ = original_get
    model.get_cfn_attribute = get_cfn_attribute
    model.has_cfn_attr = classmethod(has_cfn_attr)
