"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) on the local AWS's
own evaluation (harness.emulator.iam.policy), so that what the simulator answers is what a
job's or state machine's calls meet.

Each action is simulated against each resource ("*" when none is named): the principal's
identity-based policies (a role's or group's inline and attached policies; a user's and its
groups'), those given in PolicyInputList, a resource-based policy when one is given, and a
permissions boundary (given, or the principal's own) that must allow as well. The answer
names each deciding statement by its policy, as IAM does; statement positions in the
document are not given (they are optional in IAM's answer).
"""

from __future__ import annotations

import dataclasses

from harness.emulator.iam import policy

DECISIONS = {
    policy.ALLOW: "allowed",
    policy.EXPLICIT_DENY: "explicitDeny",
    policy.IMPLICIT_DENY: "implicitDeny",
}


class InvalidInput(ValueError):
    """IAM's InvalidInput: a policy that is not JSON, an ARN that names no principal."""


class NoSuchEntity(LookupError):
    """IAM's NoSuchEntity: the principal does not exist."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One policy taking part, named as IAM names it in MatchedStatements."""

    policy_id: str
    policy_type: str  # user | group | role | aws-managed | user-managed | resource | IAM Policy
    document: dict


def principal_policies(backend, source_arn: str) -> tuple[list[Source], list[Source]]:
    """The identity-based policies and the permissions boundary of a user, group or role."""
    kind, _, name = source_arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "role":
        entity = _role(backend, name)
        if entity is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        groups = []
    elif kind == "user":
        entity = backend.users.get(name)
        if entity is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        groups = [group for group in backend.groups.values() if entity in group.users]
    elif kind == "group":
        entity = backend.groups.get(name)
        if entity is None:
            raise NoSuchEntity(f"The group with name {name} cannot be found.")
        groups = []
    else:
        raise InvalidInput(f"Invalid ARN: {source_arn} is not the ARN of a user, group or role.")
    sources = _own(entity, kind)
    for group in groups:
        sources += _own(group, "group")
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    boundary = []
    if boundary_arn:
        managed = backend.managed_policies.get(boundary_arn)
        if managed is not None:
            document = _parsed(_default_document(managed))
            boundary = [Source(managed.name, _managed_type(boundary_arn), document)]
    return sources, boundary


def given(documents: list[str], prefix: str) -> list[Source]:
    """Policies given in the request (PolicyInputList.1, ...)."""
    return [Source(f"{prefix}.{n}", "IAM Policy", _parsed(text)) for n, text in enumerate(documents, 1)]


def simulate(
    identity: list[Source],
    boundary: list[Source],
    actions: list[str],
    resources: list[str],
    caller: str,
    resource_policy: str | None = None,
    context: dict[str, list[str]] | None = None,
) -> list[dict]:
    """One EvaluationResult per action and resource, in the order given."""
    resource_sources = []
    if resource_policy:
        resource_sources = [Source("ResourcePolicy", "resource", _parsed(resource_policy))]
    results = []
    for action in actions:
        for resource in resources or ["*"]:
            request = policy.Request(caller, action, resource, context or {})
            decision = policy.evaluate(
                request, [s.document for s in identity], [s.document for s in resource_sources]
            )
            result = {
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": DECISIONS[decision.outcome],
                "MatchedStatements": _matched(decision, identity + resource_sources),
                "MissingContextValues": [],
            }
            if boundary:
                bounded = policy.evaluate(request, [s.document for s in boundary])
                detail = {"AllowedByPermissionsBoundary": bounded.allowed}
                result["PermissionsBoundaryDecisionDetail"] = detail
                if decision.allowed and not bounded.allowed:
                    result["EvalDecision"] = DECISIONS[bounded.outcome]
                    result["MatchedStatements"] = _matched(bounded, boundary)
            if resource_sources:
                result["EvalDecisionDetails"] = {"resource": DECISIONS[decision.outcome]}
            results.append(result)
    return results


def _matched(decision: policy.Decision, sources: list[Source]) -> list[dict]:
    if decision.statement is None:
        return []
    for source in sources:
        statements = source.document.get("Statement", [])
        if any(statement is decision.statement for statement in _listed(statements)):
            return [{"SourcePolicyId": source.policy_id, "SourcePolicyType": source.policy_type}]
    return []


def _role(backend, name: str):
    for role in backend.roles.values():
        if role.name == name:
            return role
    return None


def _own(entity, kind: str) -> list[Source]:
    sources = [Source(name, kind, _parsed(document)) for name, document in entity.policies.items()]
    for arn, managed in entity.managed_policies.items():
        sources.append(Source(managed.name, _managed_type(arn), _parsed(_default_document(managed))))
    return sources


def _default_document(managed):
    return next(v.document for v in managed.versions if v.is_default)


def _managed_type(arn: str) -> str:
    return "aws-managed" if ":iam::aws:policy/" in arn else "user-managed"


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _parsed(document) -> dict:
    try:
        return policy.parse_document(document)
    except ValueError:
        raise InvalidInput("The policy document is not valid JSON.") from None
