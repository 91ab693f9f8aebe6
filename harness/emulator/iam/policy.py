"""IAM policy evaluation as AWS documents it for a request within one account: an explicit
Deny in any applicable policy wins; else an Allow in an identity-based or a resource-based
policy allows; else the request is implicitly denied.

A statement applies when its Action (or NotAction) matches the action (case-insensitive, `*`
and `?` wildcards), its Resource (or NotResource) matches the resource ARN (case-sensitive;
policy variables such as `${aws:username}` resolved from the request context), its Principal
(or NotPrincipal; resource-based policies only) names the caller, and every condition holds.
Conditions follow AWS's rules: operators in one block, keys in one operator and the policy's
values for one key combine as AND, AND and OR; `...IfExists` holds when the key is absent;
negated operators hold when it is absent; `Null`; `ForAnyValue:` and `ForAllValues:` over
multivalued keys. Condition keys are case-insensitive; their values are lists of strings.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"


@dataclasses.dataclass(frozen=True)
class Request:
    """One authorization: the caller, the action, the resource ARN ("*" for actions without
    resource-level permissions), and the request's condition keys."""

    principal: str  # the caller's ARN (an assumed-role session or a role)
    action: str  # "sagemaker:CreateTrainingJob"
    resource: str
    context: Mapping[str, list[str]] = dataclasses.field(default_factory=dict)

    def values(self, key: str) -> list[str] | None:
        lowered = key.lower()
        for name, values in self.context.items():
            if name.lower() == lowered:
                return values
        return None


@dataclasses.dataclass(frozen=True)
class Decision:
    outcome: str  # ALLOW | EXPLICIT_DENY | IMPLICIT_DENY
    statement: dict | None = None  # the deciding statement (a Deny, or an Allow)
    source: str = ""  # "identity-based" | "resource-based"

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW


def evaluate(
    request: Request,
    identity_policies: Iterable[dict],
    resource_policies: Iterable[dict] = (),
    principal_aliases: Iterable[str] = (),
) -> Decision:
    """principal_aliases: other ARNs the caller is known by (its role's ARN, the account root)
    for resource-based policies' Principal elements."""
    names = {request.principal, *principal_aliases}
    allow: Decision | None = None
    for source, policies, with_principal in (
        ("identity-based", identity_policies, False),
        ("resource-based", resource_policies, True),
    ):
        for policy in policies:
            for statement in _statements(policy):
                if not _applies(statement, request, names if with_principal else None):
                    continue
                if statement.get("Effect") == "Deny":
                    return Decision(EXPLICIT_DENY, statement, source)
                if statement.get("Effect") == "Allow" and allow is None:
                    allow = Decision(ALLOW, statement, source)
    return allow or Decision(IMPLICIT_DENY)


def parse_document(document) -> dict:
    """A policy document as IAM keeps it (JSON text, URL-encoded as the query protocol sends it,
    bytes, or already parsed); ValueError when it is no JSON object."""
    if isinstance(document, bytes):
        document = document.decode()
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(urllib.parse.unquote(document))
    if not isinstance(document, dict):
        raise ValueError("a policy document is a JSON object")
    return document


def _statements(policy: dict) -> list[dict]:
    statements = policy.get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def _listed(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _applies(statement: dict, request: Request, principals: set[str] | None) -> bool:
    if "Action" in statement:
        if not any(_matches_action(p, request.action) for p in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_matches_action(p, request.action) for p in _listed(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(_matches_resource(p, request) for p in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_matches_resource(p, request) for p in _listed(statement["NotResource"])):
            return False
    elif principals is None:  # an identity-based statement names its resources
        return False
    if principals is not None:
        if "Principal" in statement and not _names_principal(statement["Principal"], principals):
            return False
        if "NotPrincipal" in statement and _names_principal(statement["NotPrincipal"], principals):
            return False
    return all(
        _condition_holds(op, block, request) for op, block in (statement.get("Condition") or {}).items()
    )


def _matches_action(pattern: str, action: str) -> bool:
    return _wildcard(pattern.lower(), action.lower())


def _wildcard(pattern: str, value: str) -> bool:
    """`*` any run of characters, `?` one character; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _matches_resource(pattern: str, request: Request) -> bool:
    if pattern == "*":
        return True
    resolved = _resolve_variables(pattern, request)
    return resolved is not None and _wildcard(resolved, request.resource)


def _resolve_variables(text: str, request: Request) -> str | None:
    """Policy variables from the request context; None when one has no value (no match)."""
    missing = False

    def value(match: re.Match) -> str:
        nonlocal missing
        name, _, default = match.group(1).partition(", ")
        if name in ("*", "?", "$"):  # AWS's escapes; here `${*}` and `${?}` still match as wildcards
            return name
        values = request.values(name)
        if values:
            return values[0]
        if default:
            return default.strip("'")
        missing = True
        return ""

    resolved = _VARIABLE.sub(value, text)
    return None if missing else resolved


def _names_principal(element, principals: set[str]) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict):
        return False
    for kind, values in element.items():
        for value in _listed(values):
            if value == "*" and kind == "AWS":
                return True
            if kind == "AWS":
                account = value if value.isdigit() else None
                if value in principals or (account and f"arn:aws:iam::{account}:root" in principals):
                    return True
    return False


# -- conditions ---------------------------------------------------------------------------
def _condition_holds(operator: str, block: dict, request: Request) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    for key, wanted in block.items():
        wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(wanted)]
        present = request.values(key)
        if name == "Null":
            if not any((present is None) == (w.lower() == "true") for w in wanted):
                return False
            continue
        if not _key_holds(qualifier, name, if_exists, present, wanted, request):
            return False
    return True


def _key_holds(qualifier, name, if_exists, present, wanted, request) -> bool:
    test = _OPERATORS.get(name)
    if test is None:  # an operator AWS does not have: the statement cannot hold
        return False
    negated = name in _NEGATED
    if qualifier == "ForAllValues":
        return all(_one(test, negated, value, wanted, request) for value in present or [])
    if present is None:
        return if_exists or negated
    if qualifier == "ForAnyValue":
        return any(_one(test, negated, value, wanted, request) for value in present)
    if negated:  # a negated operator: no value of the request matches any value of the policy
        return all(_one(test, negated, value, wanted, request) for value in present)
    return any(_one(test, negated, value, wanted, request) for value in present)


def _one(test, negated: bool, value: str, wanted: list[str], request: Request) -> bool:
    matched = any(test(value, _resolve_variables(w, request) or w) for w in wanted)
    return not matched if negated else matched


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime.datetime | None:
    try:
        if text.isdigit():
            return datetime.datetime.fromtimestamp(int(text), datetime.UTC)
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def _compare(parse, check):
    def test(value: str, wanted: str) -> bool:
        a, b = parse(value), parse(wanted)
        return a is not None and b is not None and check(a, b)

    return test


def _in_network(value: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _arn_like(value: str, wanted: str) -> bool:
    """ARN operators compare each of the six colon-separated parts, with wildcards."""
    have, want = value.split(":", 5), wanted.split(":", 5)
    return len(have) == len(want) == 6 and all(_wildcard(w, h) for w, h in zip(want, have, strict=True))


_OPERATORS = {
    "StringEquals": lambda v, w: v == w,
    "StringNotEquals": lambda v, w: v == w,
    "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringNotEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringLike": lambda v, w: _wildcard(w, v),
    "StringNotLike": lambda v, w: _wildcard(w, v),
    "NumericEquals": _compare(_number, lambda a, b: a == b),
    "NumericNotEquals": _compare(_number, lambda a, b: a == b),
    "NumericLessThan": _compare(_number, lambda a, b: a < b),
    "NumericLessThanEquals": _compare(_number, lambda a, b: a <= b),
    "NumericGreaterThan": _compare(_number, lambda a, b: a > b),
    "NumericGreaterThanEquals": _compare(_number, lambda a, b: a >= b),
    "DateEquals": _compare(_date, lambda a, b: a == b),
    "DateNotEquals": _compare(_date, lambda a, b: a == b),
    "DateLessThan": _compare(_date, lambda a, b: a < b),
    "DateLessThanEquals": _compare(_date, lambda a, b: a <= b),
    "DateGreaterThan": _compare(_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _compare(_date, lambda a, b: a >= b),
    "Bool": lambda v, w: v.lower() == w.lower(),
    "BinaryEquals": lambda v, w: v == w,
    "IpAddress": _in_network,
    "NotIpAddress": _in_network,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": _arn_like,
    "ArnNotLike": _arn_like,
}
_NEGATED = {
    "StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "DateNotEquals",
    "NotIpAddress", "ArnNotEquals", "ArnNotLike",
}  # fmt: skip
