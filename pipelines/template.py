"""The CloudFormation template of one environment: both state machines and their roles.

Deploy-time values are stack parameters; the artifact bucket comes from a bootstrap
step outside the stack (it outlives the stack), so the template only names it.
"""

from __future__ import annotations

import json

import yaml

from pipelines.tasks import DEPLOY_PARAMETERS, PUBLISHED_MODEL_KEY

SAGEMAKER_ACTIONS = {
    "jobs": [
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:AddTags",
    ],
    "models": ["sagemaker:CreateModel", "sagemaker:DescribeModel"],
}


CREATE_ROLE = "CreateSageMakerRole"
HAS_SCHEDULE = "HasInferenceSchedule"
# The jobs' role: the given one, or the one the stack creates.
SAGEMAKER_ROLE_ARN = {
    "Fn::If": [CREATE_ROLE, {"Fn::GetAtt": ["SageMakerRole", "Arn"]}, {"Ref": "SageMakerRoleArn"}]
}


def template(definitions: dict[str, dict], kms: bool = False) -> dict:
    """definitions: pipeline name -> ASL dict (with ${...} deploy-time placeholders).
    kms: the environment has a KMS key (the definitions encrypt jobs with it)."""
    parameters = {
        "ArtifactBucket": {
            "Type": "String",
            "Description": "Bucket for data, code and artifacts (bootstrapped)",
        },
        "JobImageUri": {"Type": "String", "Description": "Job image, by digest on AWS"},
        "ProcessingInstanceType": {"Type": "String", "Default": "ml.m5.large"},
        "TrainingInstanceType": {"Type": "String", "Default": "ml.m5.large"},
        "TransformInstanceType": {"Type": "String", "Default": "ml.m5.large"},
        "SageMakerRoleArn": {
            "Type": "String",
            "Default": "",
            "Description": "A role for the jobs; empty: the stack creates one",
        },
        "InferenceScheduleExpression": {
            "Type": "String",
            "Default": "",
            "Description": "cron(...) or rate(...) starting the inference pipeline; empty: no schedule",
        },
        "InferenceDataUri": {
            "Type": "String",
            "Default": "",
            "Description": "The data a scheduled inference run scores (an s3:// prefix)",
        },
        "CodeUri": {
            "Type": "String",
            "Default": "",
            "Description": "The code bundle a scheduled inference run uses (content-addressed in the bucket)",
        },
    }
    if kms:
        parameters["KmsKeyArn"] = {
            "Type": "String",
            "AllowedPattern": "arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+",
            "Description": "The KMS key for the bucket, job volumes and job outputs",
        }
    assert set(DEPLOY_PARAMETERS) <= set(parameters)
    resources = {"SageMakerRole": _sagemaker_role(kms), "StepFunctionsRole": _step_functions_role(kms)}
    outputs = {"SageMakerRoleArn": {"Value": SAGEMAKER_ROLE_ARN}}
    for name, definition in definitions.items():
        logical = f"{name.title()}StateMachine"
        resources[logical] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": {"Fn::Sub": f"${{AWS::StackName}}-{name}"},
                "RoleArn": {"Fn::GetAtt": ["StepFunctionsRole", "Arn"]},
                "DefinitionString": {
                    "Fn::Sub": [
                        json.dumps(definition, indent=2),
                        {"SageMakerRoleArn": SAGEMAKER_ROLE_ARN},
                    ]
                },
            },
        }
        outputs[f"{name.title()}StateMachineArn"] = {"Value": {"Ref": logical}}
    resources |= _inference_schedule("InferenceStateMachine")
    outputs["InferenceScheduleName"] = {"Condition": HAS_SCHEDULE, "Value": {"Ref": "InferenceSchedule"}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "mlharness pipelines: training and inference state machines and their roles",
        "Parameters": parameters,
        "Conditions": {
            CREATE_ROLE: {"Fn::Equals": [{"Ref": "SageMakerRoleArn"}, ""]},
            HAS_SCHEDULE: {"Fn::Not": [{"Fn::Equals": [{"Ref": "InferenceScheduleExpression"}, ""]}]},
        },
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


def _step_functions_role(kms: bool) -> dict:
    sagemaker_arn = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": _trust("states.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "pipelines",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": SAGEMAKER_ACTIONS["jobs"],
                                # Job names start with the pipeline's run ids (training-..., inference-...).
                                "Resource": [
                                    {"Fn::Sub": f"{sagemaker_arn}:processing-job/training-*"},
                                    {"Fn::Sub": f"{sagemaker_arn}:processing-job/inference-*"},
                                    {"Fn::Sub": f"{sagemaker_arn}:training-job/training-*"},
                                    {"Fn::Sub": f"{sagemaker_arn}:transform-job/inference-*"},
                                ],
                            },
                            {
                                "Effect": "Allow",
                                "Action": SAGEMAKER_ACTIONS["models"],
                                "Resource": [
                                    {"Fn::Sub": f"{sagemaker_arn}:model/training-*"},
                                    {"Fn::Sub": f"{sagemaker_arn}:model/inference-*"},
                                ],
                            },
                            {
                                "Effect": "Allow",
                                "Action": "iam:PassRole",
                                "Resource": SAGEMAKER_ROLE_ARN,
                                "Condition": {
                                    "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
                                },
                            },
                            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": _bucket_arns()[1]},
                            {
                                # without it S3 answers a missing key (no published model yet)
                                # with AccessDenied instead of NoSuchKey
                                "Effect": "Allow",
                                "Action": "s3:ListBucket",
                                "Resource": _bucket_arns()[0],
                            },
                            {
                                # the training pipeline publishes the model that passed its gate
                                "Effect": "Allow",
                                "Action": "s3:PutObject",
                                "Resource": {
                                    "Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}/"
                                    + PUBLISHED_MODEL_KEY
                                },
                            },
                            {
                                # .sync integrations watch jobs through these managed rules
                                "Effect": "Allow",
                                "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                                "Resource": {
                                    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
                                    ":rule/StepFunctionsGetEventsForSageMaker*"
                                },
                            },
                            # reading the metrics and publishing the model in the encrypted bucket;
                            # creating jobs whose volumes use the key
                            *_kms_statements(kms, ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"]),
                        ],
                    },
                }
            ],
        },
    }


def _inference_schedule(state_machine: str) -> dict:
    """An EventBridge rule starting the inference pipeline with a static input: the configured
    data and the deployed code bundle; the run uses the published model."""
    schedule_input = {"DataUri": "${InferenceDataUri}", "CodeUri": "${CodeUri}"}
    return {
        "InferenceScheduleRole": {
            "Type": "AWS::IAM::Role",
            "Condition": HAS_SCHEDULE,
            "Properties": {
                "AssumeRolePolicyDocument": _trust("events.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "start-inference",
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
        "InferenceSchedule": {
            "Type": "AWS::Events::Rule",
            "Condition": HAS_SCHEDULE,
            "Properties": {
                "Description": "Starts the inference pipeline with the published model",
                "ScheduleExpression": {"Ref": "InferenceScheduleExpression"},
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "inference-pipeline",
                        "Arn": {"Ref": state_machine},
                        "RoleArn": {"Fn::GetAtt": ["InferenceScheduleRole", "Arn"]},
                        "Input": {"Fn::Sub": json.dumps(schedule_input, sort_keys=True)},
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
