"""IAM evaluation of every request a role makes on the local AWS (`--iam off|soft|strict`).

A request signed with credentials the local AWS handed out (a job container's, the Step
Functions engine's: harness.emulator.iam.principals) is evaluated as AWS would evaluate it:
each authorization it needs (harness.emulator.iam.actions) against the role's identity-based
policies (inline and attached, as IAM or CloudFormation made them) and the resource's policy
(an S3 bucket policy). `soft` notes each would-be denial in the fidelity journal and lets the
request through; `strict` answers AccessDenied worded as AWS words it, so that a `Catch`
sees what it would see on AWS. Requests signed otherwise (or with the user's shell's
session, principals.SHELL_SESSION) are the user's: not evaluated, except from a job or
serving container: code there that signs with keys it was not given
(the well-known `test` keys) would be refused on AWS as an invalid key, so `strict` refuses
it so, and `soft` notes it; it never acts as the user.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid

from harness.emulator import containers, host_only
from harness.emulator.fidelity import JOURNAL
from harness.emulator.iam import actions, policy, principals, simulation

OFF, SOFT, STRICT = "off", "soft", "strict"
MODES = (OFF, SOFT, STRICT)

log = logging.getLogger(__name__)


class Enforcer:
    """One mode for the whole local AWS: its requests (`wsgi`) and what SageMaker does for a job
    with the job's role, outside any request (`job_may`: using its KMS keys)."""

    def __init__(self, mode: str, container_addresses=containers.container_addresses):
        self.mode = mode
        self._container_addresses = container_addresses  # who runs in a job or serving container

    def wsgi(self, app):
        """The WSGI app with IAM evaluated in front of it (unchanged when the mode is off)."""
        if self.mode == OFF:
            return app

        def application(environ, start_response):
            signed = actions.signature_of(environ)
            principal = principals.of_access_key(signed.access_key) if signed else None
            if principal is None or principal.of_owner:
                if signed and self._from_a_container(environ):
                    return self._foreign_key(app, environ, start_response, signed)
                return app(environ, start_response)
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))

            def wanted():
                return actions.authorizations(environ, body, signed, principal.account)

            message = self._judge(principal, wanted, signed.region)
            if message is None:
                return app(environ, start_response)
            return _access_denied(start_response, signed.service, environ, message)

        return application

    def _from_a_container(self, environ) -> bool:
        return host_only.from_a_container(environ, self._container_addresses)

    def _foreign_key(self, app, environ, start_response, signed):
        """A container's call signed with keys the local AWS did not give it."""
        message = (
            f"a job or serving container called {signed.service} with the access key {signed.access_key!r}, "
            "which the local AWS did not give it; AWS refuses it as an invalid key"
        )
        JOURNAL.note("", "iam", f"on AWS this call would be refused: {message}", of_job=False)
        if self.mode != STRICT:
            return app(environ, start_response)
        return _invalid_key(start_response, signed.service, environ)

    def job_may(
        self, role_arn: str | None, job: str, region: str, wanted: list[actions.Authorization]
    ) -> str | None:
        """What the job's role must be allowed for SageMaker to run the job (its KMS keys): the
        denial message under strict, None when allowed (or noted, under soft)."""
        if self.mode == OFF or not role_arn or not wanted:
            return None
        return self._judge(principals.Principal(role_arn, job, of_job=True), wanted, region)

    def _judge(self, principal, wanted, region: str) -> str | None:
        """wanted: the authorizations, or a callable that reads them from the request."""
        try:
            denied = first_denial(principal, wanted() if callable(wanted) else wanted, region)
        except Exception:  # a gap in the evaluation must not break the request: it is reported instead
            log.exception("IAM evaluation of a call by %s failed", principal.arn)
            unknown = f"a call by {principal.arn} could not be evaluated: whether AWS allows it is unknown"
            JOURNAL.note(
                principal.session if principal.of_job else "", "unknown", unknown, of_job=principal.of_job
            )
            return None
        if denied is None:
            return None
        message = denial_message(principal, *denied)
        if self.mode == STRICT:
            return message
        subject = principal.session if principal.of_job else ""
        role = None if principal.of_job else principal.role_arn
        JOURNAL.note(subject, "iam", f"on AWS this call would be denied: {message}", principal.of_job, role)
        log.info("iam (soft): %s", message)
        return None


def first_denial(
    principal: principals.Principal, wanted: list[actions.Authorization], region: str
) -> tuple[actions.Authorization, policy.Decision] | None:
    identity = identity_policies(principal.role_arn)
    for authorization in wanted:
        if authorization.action == "sts:GetCallerIdentity":  # AWS never denies it
            continue
        request = policy.Request(
            principal.arn,
            authorization.action,
            authorization.resource,
            _context(principal, authorization, region),
        )
        if authorization.action.startswith("kms:"):
            decision = _key_decision(request, identity, principal)
        else:
            decision = policy.evaluate(
                request, identity, resource_policies(authorization), principal_aliases=(principal.role_arn,)
            )
        if not decision.allowed:
            return authorization, decision
    return None


def _key_decision(request: policy.Request, identity: list[dict], principal) -> policy.Decision:
    """KMS: the key policy decides. It allows the role itself, or, by allowing the account (its
    root), lets the role's identity-based policies decide; a key that is not there is not judged."""
    key = _key(request.resource)
    if key is None:
        return policy.Decision(policy.ALLOW)
    key_policy = [policy.parse_document(key.policy)]
    aliases = (principal.role_arn,)
    direct = policy.evaluate(request, [], key_policy, principal_aliases=aliases)
    if direct.outcome == policy.EXPLICIT_DENY:
        return direct
    root = f"arn:aws:iam::{principal.account}:root"
    as_account = policy.Request(root, request.action, request.resource, request.context)
    if policy.evaluate(as_account, [], key_policy).allowed:  # the key delegates to IAM
        return policy.evaluate(request, identity, key_policy, principal_aliases=aliases)
    return direct


def _key(key_arn: str):
    from moto.kms.models import kms_backends

    parts = key_arn.split(":")
    if len(parts) < 6:
        return None
    try:
        backend = kms_backends[parts[4]][parts[3]]
        return backend.describe_key(
            parts[5].removeprefix("key/") if parts[5].startswith("key/") else parts[5]
        )
    except Exception:  # moto raises its NotFoundException: a key the local AWS does not have
        return None


def _context(principal, authorization: actions.Authorization, region: str) -> dict:
    """The global condition keys AWS sets on every request, then the request's own."""
    return {
        "aws:PrincipalArn": [principal.role_arn],
        "aws:PrincipalAccount": [principal.account],
        "aws:PrincipalType": ["AssumedRole"],
        "aws:RequestedRegion": [region],
        "aws:SecureTransport": ["true"],  # AWS's endpoints are TLS; this one is loopback HTTP
        "aws:CurrentTime": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())],
        "aws:EpochTime": [str(int(time.time()))],
        **authorization.context,
    }


def identity_policies(role_arn: str) -> list[dict]:
    """The role's inline and attached policies; none when the role does not exist (AWS could not
    have given the caller its credentials: every call is denied)."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6 or ":role/" not in role_arn:  # not a role ARN: no role has it
        return []
    try:
        sources, _ = simulation.principal_policies(iam_backends[parts[4]][parts[1]], role_arn)
    except simulation.NoSuchEntity:
        return []
    return [source.document for source in sources]


def resource_policies(authorization: actions.Authorization) -> list[dict]:
    """An S3 bucket's policy, for S3 actions."""
    if not authorization.action.startswith("s3:") or not authorization.resource.startswith("arn:aws:s3:::"):
        return []
    from moto.s3.models import s3_backends

    bucket_name = authorization.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
    for account in list(s3_backends.values()):
        for backend in list(account.values()):
            bucket = backend.buckets.get(bucket_name)
            if bucket is not None and bucket.policy:
                return [policy.parse_document(bucket.policy)]
    return []


def denial_message(principal, wanted: actions.Authorization, decision: policy.Decision) -> str:
    """AWS's wording of an AccessDenied."""
    if decision.outcome == policy.EXPLICIT_DENY:
        why = f"with an explicit deny in an {decision.source} policy"
    else:
        why = f"because no identity-based policy allows the {wanted.action} action"
    what = f"{wanted.action} on resource: {wanted.resource}"
    return f"User: {principal.arn} is not authorized to perform: {what} {why}"


def _access_denied(start_response, service: str, environ, message: str):
    return _refused(start_response, service, environ, ("AccessDenied", "AccessDeniedException", 403), message)


def _invalid_key(start_response, service: str, environ):
    """What AWS answers a request signed with an access key it does not know."""
    if service == "s3":
        message = "The AWS Access Key Id you provided does not exist in our records."
        return _refused(start_response, service, environ, ("InvalidAccessKeyId", "", 403), message)
    message = "The security token included in the request is invalid."
    codes = ("InvalidClientTokenId", "UnrecognizedClientException", 400)
    return _refused(start_response, service, environ, codes, message)


def _refused(start_response, service: str, environ, codes: tuple[str, str, int], message: str):
    """In the protocol of the service called: S3's XML, the query services' XML, else JSON.
    codes: (the XML code, the JSON type, the JSON protocol's status); XML answers are 403."""
    xml_code, json_type, json_status = codes
    request_id = uuid.uuid4().hex.upper()[:16]
    status = "403 Forbidden"
    if service == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{xml_code}</Code>'
            f"<Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    elif not environ.get("HTTP_X_AMZ_TARGET") and service in ("iam", "sts", "cloudformation", "monitoring"):
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{xml_code}</Code>"
            f"<Message>{_xml(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:
        body = json.dumps({"__type": json_type, "Message": message, "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", json_type),
            ("x-amzn-RequestId", request_id),
        ]
        status = "403 Forbidden" if json_status == 403 else "400 Bad Request"
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
