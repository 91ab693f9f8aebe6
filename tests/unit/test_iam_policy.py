"""IAM policy evaluation (harness.emulator.iam.policy) and what a request is authorized for
(harness.emulator.iam.actions), case by case against AWS's documented rules."""

from __future__ import annotations

import io
import json
import time

import pytest

from harness.emulator import fidelity
from harness.emulator.iam import actions, enforcement, policy, principals
from harness.emulator.iam.policy import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request

ROLE = "arn:aws:iam::123456789012:role/pipeline"
SESSION = "arn:aws:sts::123456789012:assumed-role/pipeline/job"
JOB = "arn:aws:sagemaker:us-east-1:123456789012:training-job/training-20261204-x-train"


def allow(action, resource, **extra) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}],
    }


def decide(identity, action="sagemaker:CreateTrainingJob", resource=JOB, context=None, resource_policies=()):
    request = Request(SESSION, action, resource, context or {})
    return policy.evaluate(request, identity, resource_policies, principal_aliases=(ROLE,)).outcome


def test_nothing_allows_is_an_implicit_deny_and_a_deny_wins_over_an_allow():
    assert decide([]) == IMPLICIT_DENY
    granted = allow("sagemaker:*", "*")
    assert decide([granted]) == ALLOW
    denied = {"Statement": {"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"}}
    assert decide([granted, denied]) == EXPLICIT_DENY


@pytest.mark.parametrize(
    ("resource", "outcome"),
    [
        ("arn:aws:sagemaker:*:*:training-job/training-*", ALLOW),
        ("arn:aws:sagemaker:us-east-1:123456789012:training-job/inference-*", IMPLICIT_DENY),
        ("arn:aws:sagemaker:us-east-1:123456789012:training-job/TRAINING-*", IMPLICIT_DENY),  # case-sensitive
        ("arn:aws:sagemaker:us-east-1:123456789012:training-job/training-2026120?-x-train", ALLOW),
    ],
)
def test_resources_match_with_wildcards_case_sensitively(resource, outcome):
    assert decide([allow("sagemaker:CreateTrainingJob", resource)]) == outcome


def test_actions_match_case_insensitively_and_not_action_and_not_resource_invert():
    assert decide([allow("SageMaker:createtrainingjob", "*")]) == ALLOW
    assert decide([allow("sagemaker:Create*", "*")]) == ALLOW
    everything_but = {"Statement": [{"Effect": "Allow", "NotAction": "sagemaker:Create*", "Resource": "*"}]}
    assert decide([everything_but]) == IMPLICIT_DENY
    assert decide([everything_but], action="sagemaker:DescribeTrainingJob") == ALLOW
    not_here = {
        "Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:sagemaker:*:*:model/*"}]
    }
    assert decide([not_here]) == ALLOW
    assert decide([not_here], resource="arn:aws:sagemaker:us-east-1:123456789012:model/m") == IMPLICIT_DENY


def test_pass_role_with_the_service_condition_of_the_projects_templates():
    statement = allow(
        "iam:PassRole",
        "arn:aws:iam::123456789012:role/sagemaker-jobs",
        Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )
    passed = {"iam:PassedToService": ["sagemaker.amazonaws.com"]}
    other_role = "arn:aws:iam::123456789012:role/admin"
    assert (
        decide([statement], "iam:PassRole", "arn:aws:iam::123456789012:role/sagemaker-jobs", passed) == ALLOW
    )
    assert decide([statement], "iam:PassRole", other_role, passed) == IMPLICIT_DENY
    glue = {"iam:PassedToService": ["glue.amazonaws.com"]}
    assert (
        decide([statement], "iam:PassRole", "arn:aws:iam::123456789012:role/sagemaker-jobs", glue)
        == IMPLICIT_DENY
    )


def test_condition_operators_if_exists_negation_null_and_sets():
    def check(condition, context):
        return decide([allow("sagemaker:*", "*", Condition=condition)], context=context)

    types = {"sagemaker:InstanceTypes": ["ml.m5.large"]}
    assert check({"StringLike": {"sagemaker:InstanceTypes": "ml.m5.*"}}, types) == ALLOW
    assert check({"StringLike": {"sagemaker:InstanceTypes": "ml.p3.*"}}, types) == IMPLICIT_DENY
    assert check({"StringLike": {"sagemaker:InstanceTypes": "ml.p3.*"}}, {}) == IMPLICIT_DENY  # key absent
    assert check({"StringLikeIfExists": {"sagemaker:InstanceTypes": "ml.p3.*"}}, {}) == ALLOW
    assert (
        check({"StringNotEquals": {"sagemaker:InstanceTypes": "ml.p3.2xlarge"}}, {}) == ALLOW
    )  # negated, absent
    assert check({"Null": {"sagemaker:VolumeKmsKey": "true"}}, {}) == ALLOW
    assert check({"Null": {"sagemaker:VolumeKmsKey": "false"}}, {}) == IMPLICIT_DENY
    assert check({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": ["true"]}) == ALLOW
    assert (
        check({"bool": {"AWS:SECURETRANSPORT": "false"}}, {"aws:SecureTransport": ["true"]}) == IMPLICIT_DENY
    )
    assert check({"NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": "3600"}},
                 {"sagemaker:MaxRuntimeInSeconds": ["600"]}) == ALLOW  # fmt: skip
    subnets = {"sagemaker:VpcSubnets": ["subnet-a", "subnet-b"]}
    assert (
        check(
            {"ForAllValues:StringEquals": {"sagemaker:VpcSubnets": ["subnet-a", "subnet-b", "subnet-c"]}},
            subnets,
        )
        == ALLOW
    )
    assert (
        check({"ForAllValues:StringEquals": {"sagemaker:VpcSubnets": ["subnet-a"]}}, subnets) == IMPLICIT_DENY
    )
    assert check({"ForAnyValue:StringEquals": {"sagemaker:VpcSubnets": ["subnet-b"]}}, subnets) == ALLOW
    assert check({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["10.1.2.3"]}) == ALLOW
    assert (
        check({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/pipe*"}}, {"aws:PrincipalArn": [ROLE]})
        == ALLOW
    )
    assert (
        check({"NoSuchOperator": {"aws:PrincipalArn": ROLE}}, {"aws:PrincipalArn": [ROLE]}) == IMPLICIT_DENY
    )


def test_a_deny_unless_secure_transport_does_not_fire_for_a_tls_request():
    deny_plain = {
        "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    }  # fmt: skip
    granted = allow("s3:GetObject", "arn:aws:s3:::bucket/*")
    context = {"aws:SecureTransport": ["true"]}
    assert decide([granted], "s3:GetObject", "arn:aws:s3:::bucket/k", context, [deny_plain]) == ALLOW


def test_a_bucket_policy_allows_or_denies_by_principal():
    by_role = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject",
                              "Resource": "arn:aws:s3:::shared/*"}]}  # fmt: skip
    assert decide([], "s3:GetObject", "arn:aws:s3:::shared/k", resource_policies=[by_role]) == ALLOW
    someone_else = json.loads(json.dumps(by_role).replace(ROLE, "arn:aws:iam::123456789012:role/other"))
    assert (
        decide([], "s3:GetObject", "arn:aws:s3:::shared/k", resource_policies=[someone_else]) == IMPLICIT_DENY
    )
    deny_all = {
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::shared/*"}
        ]
    }
    granted = allow("s3:*", "*")
    assert (
        decide([granted], "s3:GetObject", "arn:aws:s3:::shared/k", resource_policies=[deny_all])
        == EXPLICIT_DENY
    )


def test_policy_variables_resolve_from_the_request_and_a_missing_one_matches_nothing():
    own = allow("s3:GetObject", "arn:aws:s3:::home/${aws:PrincipalAccount}/*")
    context = {"aws:PrincipalAccount": ["123456789012"]}
    assert decide([own], "s3:GetObject", "arn:aws:s3:::home/123456789012/k", context) == ALLOW
    assert decide([own], "s3:GetObject", "arn:aws:s3:::home/999/k", context) == IMPLICIT_DENY
    assert decide([own], "s3:GetObject", "arn:aws:s3:::home/123456789012/k", {}) == IMPLICIT_DENY


def _environ(method="POST", path="/", target=None, body=b"", query="", host="127.0.0.1:4566",
             service="sagemaker", key="ASIAEXAMPLE", headers=None):  # fmt: skip
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": host,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/20261204/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=x",
        **(headers or {}),
    }  # fmt: skip
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    return environ


def _wanted(environ, body=b""):
    signed = actions.signature_of(environ)
    return [(a.action, a.resource) for a in actions.authorizations(environ, body, signed, "123456789012")]


def test_sagemaker_requests_are_authorized_against_the_resource_they_name_and_the_role_they_pass():
    body = json.dumps(
        {"TrainingJobName": "training-1-train", "RoleArn": "arn:aws:iam::123456789012:role/jobs"}
    ).encode()
    assert _wanted(_environ(target="SageMaker.CreateTrainingJob", body=body), body) == [
        (
            "sagemaker:CreateTrainingJob",
            "arn:aws:sagemaker:us-east-1:123456789012:training-job/training-1-train",
        ),
        ("iam:PassRole", "arn:aws:iam::123456789012:role/jobs"),
    ]
    body = json.dumps({"EndpointName": "e", "EndpointConfigName": "c"}).encode()
    assert _wanted(_environ(target="SageMaker.CreateEndpoint", body=body), body) == [
        ("sagemaker:CreateEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e")
    ]
    assert _wanted(_environ(target="SageMaker.ListTrainingJobs", body=b"{}"), b"{}") == [
        ("sagemaker:ListTrainingJobs", "*")
    ]
    runtime = _environ(path="/endpoints/e/invocations")
    assert _wanted(runtime) == [
        ("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e")
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "wanted"),
    [
        ("GET", "/b/k/x.csv", "", {}, [("s3:GetObject", "arn:aws:s3:::b/k/x.csv")]),
        ("HEAD", "/b/k", "", {}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        ("PUT", "/b/k", "", {}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("DELETE", "/b/k", "uploadId=u", {}, [("s3:AbortMultipartUpload", "arn:aws:s3:::b/k")]),
        ("GET", "/b", "list-type=2&prefix=runs%2F", {}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("GET", "/b", "location", {}, [("s3:GetBucketLocation", "arn:aws:s3:::b")]),
        ("PUT", "/b", "", {}, [("s3:CreateBucket", "arn:aws:s3:::b")]),
        ("GET", "/", "", {}, [("s3:ListAllMyBuckets", "*")]),
        ("PUT", "/b/copy", "", {"HTTP_X_AMZ_COPY_SOURCE": "/src/a%20b"},
         [("s3:PutObject", "arn:aws:s3:::b/copy"), ("s3:GetObject", "arn:aws:s3:::src/a b")]),
    ],
)  # fmt: skip
def test_s3_requests_map_to_the_actions_and_arns_aws_authorizes(method, path, query, headers, wanted):
    assert _wanted(_environ(method, path, query=query, service="s3", headers=headers)) == wanted


def test_virtual_host_style_s3_names_the_bucket_by_host_and_list_carries_its_prefix():
    environ = _environ(
        "GET", "/", query="prefix=runs%2F&delimiter=%2F", host="b.s3.localhost:4566", service="s3"
    )
    (found,) = actions.authorizations(environ, b"", actions.signature_of(environ), "123456789012")
    assert (found.action, found.resource) == ("s3:ListBucket", "arn:aws:s3:::b")
    assert found.context == {"s3:prefix": ["runs/"], "s3:delimiter": ["/"]}


def test_step_functions_logs_and_events_requests_name_their_arns():
    body = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sm"}).encode()
    assert _wanted(_environ(target="AWSStepFunctions.StartExecution", body=body, service="states"), body) == [
        ("states:StartExecution", "arn:aws:states:us-east-1:123456789012:stateMachine:sm")
    ]
    body = json.dumps({"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "j/algo-1"}).encode()
    assert _wanted(_environ(target="Logs_20140328.PutLogEvents", body=body, service="logs"), body) == [
        (
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:log-stream:j/algo-1",
        )
    ]
    body = json.dumps({"Name": "StepFunctionsGetEventsForSageMakerTrainingJobsRule"}).encode()
    assert _wanted(_environ(target="AWSEvents.PutRule", body=body, service="events"), body) == [
        (
            "events:PutRule",
            "arn:aws:events:us-east-1:123456789012:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule",
        )
    ]


def test_credentials_handed_out_name_their_role_session_and_others_are_the_user():
    credentials = principals.credentials_for(ROLE, "training-1-train", of_job=True)
    assert credentials["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert credentials == principals.credentials_for(ROLE, "training-1-train", of_job=True)  # stable
    found = principals.of_access_key(credentials["AWS_ACCESS_KEY_ID"])
    assert found.arn == "arn:aws:sts::123456789012:assumed-role/pipeline/training-1-train" and found.of_job
    assert principals.of_access_key("test") is None


def test_the_denial_is_worded_as_aws_words_it():
    principal = principals.Principal(ROLE, "StepFunctions", of_job=False)
    wanted = actions.Authorization(
        "sagemaker:CreateProcessingJob", "arn:aws:sagemaker:us-east-1:123456789012:processing-job/x", {}
    )
    assert enforcement.denial_message(principal, wanted, policy.Decision(IMPLICIT_DENY)) == (
        "User: arn:aws:sts::123456789012:assumed-role/pipeline/StepFunctions is not authorized to perform: "
        "sagemaker:CreateProcessingJob on resource: "
        "arn:aws:sagemaker:us-east-1:123456789012:processing-job/x "
        "because no identity-based policy allows the sagemaker:CreateProcessingJob action"
    )
    explicit = policy.Decision(EXPLICIT_DENY, {}, "identity-based")
    assert enforcement.denial_message(principal, wanted, explicit).endswith(
        "with an explicit deny in an identity-based policy"
    )


def test_a_kms_key_policy_decides_alone_or_lets_the_roles_policies_decide(monkeypatch):
    from moto.kms.models import kms_backends

    backend = kms_backends["123456789012"]["us-east-1"]
    delegating = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "", None)  # default policy
    to_role = {
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": "kms:GenerateDataKey",
        "Resource": "*",
    }
    own_only = {"Version": "2012-10-17", "Statement": [to_role]}
    direct = backend.create_key(json.dumps(own_only), "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "", None)
    principal = principals.Principal(ROLE, "job", of_job=True)
    granted = allow("kms:GenerateDataKey", "*")

    def denied(key, identity) -> bool:
        monkeypatch.setattr(enforcement, "identity_policies", lambda role_arn: identity)
        wanted = [actions.Authorization("kms:GenerateDataKey", key.arn, {})]
        return enforcement.first_denial(principal, wanted, "us-east-1") is not None

    assert denied(delegating, []) and not denied(delegating, [granted])  # the account's IAM decides
    assert not denied(direct, [])  # the key policy names the role itself
    other = principals.Principal("arn:aws:iam::123456789012:role/other", "job", of_job=True)
    monkeypatch.setattr(enforcement, "identity_policies", lambda role_arn: [granted])
    wanted = [actions.Authorization("kms:GenerateDataKey", direct.arn, {})]
    assert enforcement.first_denial(other, wanted, "us-east-1") is not None  # no delegation to IAM


def test_an_evaluation_that_fails_lets_the_call_through_and_reports_it_unknown():
    from harness.emulator import fidelity

    def unreadable():
        raise ValueError("a request the mapping cannot read")

    principal = principals.Principal(ROLE, "evaluation-fails-job", of_job=True)
    assert enforcement.Enforcer("strict")._judge(principal, unreadable, "us-east-1") is None
    (finding,) = fidelity.JOURNAL.of("evaluation-fails-")
    assert finding["kind"] == "unknown" and "could not be evaluated" in finding["message"]


def test_a_role_arn_that_is_not_one_has_no_policies_and_still_names_a_principal():
    odd = principals.Principal("not-an-arn", "job", of_job=True)
    assert odd.account == "" and odd.arn.startswith("arn:aws:sts:::assumed-role/")
    assert enforcement.identity_policies("not-an-arn") == []


def _signed_call(mode: str, caller: str, service: str, access_key: str = "test", target: str = ""):
    """A request through the enforcer; (the status, the body) it answers, or None when it went on."""
    went_on = []

    def app(environ, start_response):
        went_on.append(True)
        start_response("200 OK", [])
        return [b""]

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "REMOTE_ADDR": caller,
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={access_key}/20261207/us-east-1/{service}/"
        "aws4_request, SignedHeaders=host, Signature=0",
        "wsgi.input": io.BytesIO(b"{}"),
        "CONTENT_LENGTH": "2",
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    statuses = []
    enforcer = enforcement.Enforcer(mode, container_addresses=lambda: {"172.30.0.7"})
    body = b"".join(enforcer.wsgi(app)(environ, lambda status, headers: statuses.append(status)))
    return None if went_on else (statuses[0], body.decode())


def test_a_container_signing_with_the_test_keys_is_refused_under_strict_as_aws_refuses_unknown_keys():
    status, body = _signed_call("strict", "172.30.0.7", "s3")
    assert status == "403 Forbidden" and "<Code>InvalidAccessKeyId</Code>" in body
    status, body = _signed_call("strict", "172.30.0.7", "sagemaker", target="SageMaker.ListModels")
    assert status == "400 Bad Request" and json.loads(body)["__type"] == "UnrecognizedClientException"
    status, body = _signed_call("strict", "172.30.0.7", "sts")
    assert "<Code>InvalidClientTokenId</Code>" in body


def test_the_test_keys_stay_the_users_on_the_host_and_are_noted_under_soft():
    assert _signed_call("strict", "127.0.0.1", "s3") is None  # the user, on the host
    assert _signed_call("strict", "172.30.0.1", "s3") is None  # the host, by the job network's gateway
    since = time.time()
    assert _signed_call("soft", "172.30.0.7", "s3") is None
    assert any("the access key 'test'" in f["message"] for f in fidelity.JOURNAL.of("", since=since))
    assert _signed_call("off", "172.30.0.7", "s3") is None


@pytest.mark.parametrize(
    ("path", "query", "wanted"),
    [
        ("/2015-03-31/functions/f/invocations", "", "arn:aws:lambda:us-east-1:123456789012:function:f"),
        ("/2015-03-31/functions/f/invocations", "Qualifier=live",
         "arn:aws:lambda:us-east-1:123456789012:function:f:live"),
        ("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ag/invocations", "",
         "arn:aws:lambda:us-east-1:123456789012:function:g"),
    ],
)  # fmt: skip
def test_a_lambda_invocation_is_authorized_against_the_function(path, query, wanted):
    assert _wanted(_environ("POST", path, query=query, service="lambda")) == [
        ("lambda:InvokeFunction", wanted)
    ]
    assert _wanted(_environ("GET", "/2015-03-31/functions/f", service="lambda")) == []
