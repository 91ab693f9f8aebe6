"""The CloudFormation template of one environment, generated from the registered pipelines.

Per pipeline: one state machine (`<stack>-<name>`), its own role, allowed SageMaker
actions only on the kinds its definition uses (of those it declares: a tuning stage
that is off grants no tuning) and only on names carrying its prefix, and,
when it declares a schedule input, an EventBridge rule (on when the environment
gives an expression). The SageMaker role the jobs run with is shared. Deploy-time
values are stack parameters; the artifact bucket comes from a bootstrap step outside
the stack (it outlives the stack), so the template only names it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import yaml

from mlharness import kinds
from mlharness.checks import KIND_ACTIONS, used_kinds
from mlharness.contract import INSTANCE_KINDS, Pipeline
from mlharness.tasks import image_logical_id, image_placeholders

CREATE_ROLE = "CreateSageMakerRole"
# The jobs' role: the given one, or the one the stack creates.
SAGEMAKER_ROLE_ARN = {
    "Fn::If": [CREATE_ROLE, {"Fn::GetAtt": ["SageMakerRole", "Arn"]}, {"Ref": "SageMakerRoleArn"}]
}
# Kinds whose create call passes the jobs' role to SageMaker; kinds that run as jobs (.sync).
PASSES_ROLE = {kind.resource for kind in kinds.KINDS.values() if kind.role}
JOB_KINDS = {kind.resource for kind in kinds.JOBS}
SAGEMAKER_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"


def state_machine_output(pipeline: Pipeline) -> str:
    return f"{pipeline.logical_id}StateMachineArn"


def schedule_output(pipeline: Pipeline) -> str:
    return f"{pipeline.logical_id}ScheduleName"


def schedule_parameters(pipeline: Pipeline) -> tuple[str, str]:
    """(expression, data URI) parameter names of a schedulable pipeline."""
    return f"{pipeline.logical_id}ScheduleExpression", f"{pipeline.logical_id}ScheduleDataUri"


def instance_parameter(kind: str) -> str:
    return f"{INSTANCE_KINDS[kind]}InstanceType"


def image_parameter(image: str) -> str:
    """The stack parameter an image's URI is given in: job -> JobImageUri."""
    return f"{image_logical_id(image)}ImageUri"


def used_images(definitions: Mapping[str, dict], images: Sequence[str]) -> list[str]:
    """The images (of those named) the definitions run, in the order named."""
    used = set().union(*(image_placeholders(json.dumps(d)) for d in definitions.values()))
    return [image for image in images if image_logical_id(image) in used]


def template(
    pipelines: Sequence[Pipeline],
    definitions: Mapping[str, dict],
    kms: bool = False,
    images: Sequence[str] = ("job",),
) -> dict:
    """definitions: pipeline name -> ASL dict (with ${...} deploy-time placeholders).
    kms: the environment has a KMS key (the definitions encrypt jobs with it).
    images: the images the project names; those the definitions run become parameters."""
    granted = {p.name: used_kinds(definitions[p.name]) & set(p.kinds) for p in pipelines}
    kinds = set().union(*granted.values())
    parameters = {
        "ArtifactBucket": {
            "Type": "String",
            "Description": "Bucket for data, code and artifacts (bootstrapped)",
        },
        **{
            image_parameter(image): {"Type": "String", "Description": f"Image {image}, by digest"}
            for image in used_images(definitions, images)
        },
        "SageMakerRoleArn": {
            "Type": "String",
            "Default": "",
            "Description": "A role for the jobs; empty: the stack creates one",
        },
        "CodeUri": {
            "Type": "String",
            "Default": "",
            "Description": "The deployed code bundle (content-addressed in the bucket), for scheduled runs",
        },
    }
    for kind in INSTANCE_KINDS:
        if kind in kinds:
            parameters[instance_parameter(kind)] = {"Type": "String", "Default": "ml.m5.large"}
    if kms:
        parameters["KmsKeyArn"] = {
            "Type": "String",
            "AllowedPattern": "arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+",
            "Description": "The KMS key for the bucket, job volumes and job outputs",
        }
    conditions = {CREATE_ROLE: {"Fn::Equals": [{"Ref": "SageMakerRoleArn"}, ""]}}
    resources = {"SageMakerRole": _sagemaker_role(kms)}
    outputs = {"SageMakerRoleArn": {"Value": SAGEMAKER_ROLE_ARN}}
    for pipeline in pipelines:
        logical = f"{pipeline.logical_id}StateMachine"
        resources[f"{logical}Role"] = _state_machine_role(pipeline, granted[pipeline.name], kms)
        resources[logical] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": {"Fn::Sub": f"${{AWS::StackName}}-{pipeline.name}"},
                "RoleArn": {"Fn::GetAtt": [f"{logical}Role", "Arn"]},
                "DefinitionString": {
                    "Fn::Sub": [
                        json.dumps(definitions[pipeline.name], indent=2),
                        {"SageMakerRoleArn": SAGEMAKER_ROLE_ARN},
                    ]
                },
            },
        }
        outputs[state_machine_output(pipeline)] = {"Value": {"Ref": logical}}
        if pipeline.schedule is not None:
            expression, data_uri = schedule_parameters(pipeline)
            parameters[expression] = {
                "Type": "String",
                "Default": "",
                "Description": f"cron(...) or rate(...) starting {pipeline.name}; empty: no schedule",
            }
            parameters[data_uri] = {
                "Type": "String",
                "Default": "",
                "Description": f"The data a scheduled {pipeline.name} run takes (an s3:// prefix)",
            }
            condition = f"Has{pipeline.logical_id}Schedule"
            conditions[condition] = {"Fn::Not": [{"Fn::Equals": [{"Ref": expression}, ""]}]}
            resources |= _schedule(pipeline, logical, condition)
            outputs[schedule_output(pipeline)] = {
                "Condition": condition,
                "Value": {"Ref": f"{pipeline.logical_id}Schedule"},
            }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "mlharness pipelines ({}): state machines, their roles and schedules".format(
            ", ".join(p.name for p in pipelines)
        ),
        "Parameters": parameters,
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": outputs,
    }


def to_yaml(document: dict) -> str:
    """Deterministic YAML; multi-line strings (the definitions) as literal blocks."""

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:  # CloudFormation rejects YAML anchors
            return True

    def text(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, width=120, allow_unicode=True)


def _bucket_arns() -> list:
    return [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}"},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}/*"},
    ]


def _kms_statements(kms: bool, actions: list[str]) -> list[dict]:
    return [{"Effect": "Allow", "Action": actions, "Resource": {"Ref": "KmsKeyArn"}}] if kms else []


def _sagemaker_role(kms: bool) -> dict:
    return {
        "Type": "AWS::IAM::Role",
        "Condition": CREATE_ROLE,
        "Properties": {
            "AssumeRolePolicyDocument": _trust("sagemaker.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "jobs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                "Resource": _bucket_arns(),
                            },
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogGroup",
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                ],
                                "Resource": {
                                    "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                                    ":log-group:/aws/sagemaker/*"
                                },
                            },
                            {
                                "Effect": "Allow",
                                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                                "Resource": {
                                    "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}"
                                    ":repository/*"
                                },
                            },
                            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                            # jobs read and write the encrypted bucket and encrypt their volumes
                            *_kms_statements(
                                kms, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant"]
                            ),
                        ],
                    },
                }
            ],
        },
    }


def _state_machine_role(pipeline: Pipeline, kinds: set[str], kms: bool) -> dict:
    """What this pipeline's state machine may do: `kinds` on its prefix, the bucket, no more."""
    statements = [
        {
            "Sid": _sid(kind),
            "Effect": "Allow",
            "Action": [f"sagemaker:{action}" for action in (*KIND_ACTIONS[kind], "AddTags")],
            "Resource": {"Fn::Sub": f"{SAGEMAKER_ARN}:{kind}/{pipeline.prefix}-*"},
        }
        for kind in sorted(kinds)
    ]
    if kinds & PASSES_ROLE:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": SAGEMAKER_ROLE_ARN,
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            }
        )
    statements += [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": _bucket_arns()[1]},
        # without it S3 answers a missing key (nothing published yet) with AccessDenied, not NoSuchKey
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": _bucket_arns()[0]},
    ]
    if pipeline.writes:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [
                    {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{ArtifactBucket}}/{key}"}
                    for key in pipeline.writes
                ],
            }
        )
    if kinds & JOB_KINDS:
        statements.append(
            {
                # .sync integrations watch jobs through these managed rules
                "Effect": "Allow",
                "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                "Resource": {
                    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
                    ":rule/StepFunctionsGetEventsForSageMaker*"
                },
            }
        )
    # reading and writing the encrypted bucket; creating jobs whose volumes use the key
    statements += _kms_statements(kms, ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"])
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": _trust("states.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": pipeline.name,
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _sid(kind: str) -> str:
    return "".join(part.title() for part in kind.split("-")) + "s"


def _schedule(pipeline: Pipeline, state_machine: str, condition: str) -> dict:
    """An EventBridge rule starting the pipeline with its declared fixed input."""
    expression, data_uri = schedule_parameters(pipeline)
    logical = f"{pipeline.logical_id}Schedule"
    return {
        f"{logical}Role": {
            "Type": "AWS::IAM::Role",
            "Condition": condition,
            "Properties": {
                "AssumeRolePolicyDocument": _trust("events.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": f"start-{pipeline.name}",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "states:StartExecution",
                                    "Resource": {"Ref": state_machine},
                                }
                            ],
                        },
                    }
                ],
            },
        },
        logical: {
            "Type": "AWS::Events::Rule",
            "Condition": condition,
            "Properties": {
                "Description": f"Starts the {pipeline.name} pipeline with the schedule's input",
                "ScheduleExpression": {"Ref": expression},
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": f"{pipeline.name}-pipeline",
                        "Arn": {"Ref": state_machine},
                        "RoleArn": {"Fn::GetAtt": [f"{logical}Role", "Arn"]},
                        "Input": {
                            "Fn::Sub": [
                                json.dumps(dict(pipeline.schedule.input), sort_keys=True),
                                {"ScheduleDataUri": {"Ref": data_uri}},
                            ]
                        },
                    }
                ],
            },
        },
    }


def _trust(service: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
