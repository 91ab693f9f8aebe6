"""SageMaker's Search expressions, evaluated on a resource's description (a dict, as Describe
answers it, with its Tags): Filters (a property by its dotted name, `Tags.<key>` for a tag,
with the operators AWS documents), NestedFilters, SubExpressions joined by Operator (And, Or)."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def matches(described: dict[str, Any], expression: dict[str, Any] | None) -> bool:
    if not expression:
        return True
    results = [_filter(described, f) for f in expression.get("Filters") or []]
    results += [_nested(described, n) for n in expression.get("NestedFilters") or []]
    results += [matches(described, sub) for sub in expression.get("SubExpressions") or []]
    if not results:
        return True
    return any(results) if expression.get("Operator") == "Or" else all(results)


def _filter(described: dict[str, Any], condition: dict[str, Any]) -> bool:
    value = _value(described, condition["Name"])
    operator = condition.get("Operator", "Equals")
    expected = condition.get("Value")
    if operator == "Exists":
        return value is not _MISSING
    if operator == "NotExists":
        return value is _MISSING
    if value is _MISSING:
        return False
    if operator == "In":
        return str(value) in [v.strip() for v in str(expected).split(",")]
    if operator == "Contains":
        return str(expected) in str(value)
    if operator in ("Equals", "NotEquals"):
        return (_comparable(value) == _comparable(expected, value)) == (operator == "Equals")
    left, right = _comparable(value), _comparable(expected, value)
    return {
        "GreaterThan": left > right,
        "GreaterThanOrEqualTo": left >= right,
        "LessThan": left < right,
        "LessThanOrEqualTo": left <= right,
    }.get(operator, False)


def _nested(described: dict[str, Any], nested: dict[str, Any]) -> bool:
    """Some item of the list property satisfies all the filters."""
    items = _value(described, nested["NestedPropertyName"])
    if not isinstance(items, list):
        return False
    return any(
        all(_filter(item, f) for f in nested.get("Filters") or []) for item in items if isinstance(item, dict)
    )


def _value(described: dict[str, Any], name: str) -> Any:
    if name.startswith("Tags."):
        key = name[len("Tags.") :]
        return next((t["Value"] for t in described.get("Tags") or [] if t.get("Key") == key), _MISSING)
    node: Any = described
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _comparable(value: Any, like: Any = None) -> Any:
    """A value as the property it is compared with is: numbers as numbers, times as times."""
    import datetime

    reference = value if like is None else like
    if isinstance(reference, bool):
        return str(value).lower() == "true"
    if isinstance(reference, int | float) and not isinstance(reference, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if isinstance(reference, datetime.datetime):
        if isinstance(value, datetime.datetime):
            return value
        try:
            return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return value
    return str(value)
