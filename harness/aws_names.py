"""AWS's rules for the names and expressions a configuration gives, checked before anything is
pushed or deployed (AWS would refuse them late: after the image and code are uploaded).

Each check returns None when the value is valid, else what is wrong, in a few words.
"""

from __future__ import annotations

import ipaddress
import re

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_STACK = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_REPOSITORY = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_STATE_MACHINE_FORBIDDEN = set(' <>{}[]?*"#%\\^|~`$&,;:/') | {chr(c) for c in range(0x20)} | {chr(0x7F)}
STATE_MACHINE_MAX = 80
STACK_MAX = 128


def bucket_problem(name: str) -> str | None:
    """S3's rules for general purpose bucket names."""
    if not 3 <= len(name) <= 63:
        return "3 to 63 characters"
    if not _BUCKET.match(name):
        return "lower-case letters, digits, '.' and '-', beginning and ending with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "no two periods together, and no period beside a hyphen"
    try:
        ipaddress.IPv4Address(name)
        return "not an IP address"
    except ValueError:
        pass
    if name.startswith(_BUCKET_PREFIXES) or name.endswith(_BUCKET_SUFFIXES):
        return (
            f"not beginning with {', '.join(_BUCKET_PREFIXES)} nor ending with {', '.join(_BUCKET_SUFFIXES)}"
        )
    return None


def stack_problem(name: str) -> str | None:
    """CloudFormation's rule: a letter, then letters, digits and '-', 128 at most."""
    if not name or len(name) > STACK_MAX:
        return f"1 to {STACK_MAX} characters"
    if not _STACK.match(name):
        return "a letter first, then only letters, digits and '-'"
    return None


def state_machine_problem(name: str) -> str | None:
    """Step Functions' rule for state machine names."""
    if not 1 <= len(name) <= STATE_MACHINE_MAX:
        return f"1 to {STATE_MACHINE_MAX} characters"
    bad = sorted(set(name) & _STATE_MACHINE_FORBIDDEN)
    if bad:
        return f"none of {' '.join(repr(c) for c in bad)}"
    return None


def repository_problem(name: str) -> str | None:
    """ECR's rule for repository names."""
    if not 2 <= len(name) <= 256:
        return "2 to 256 characters"
    if not _REPOSITORY.match(name):
        return "lower-case letters and digits, separated by single '.', '_', '-' or '/'"
    return None


# -- EventBridge schedule expressions -------------------------------------------------
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
# field: (low, high, names, extra characters allowed)
_CRON_FIELDS = [
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
]


def schedule_problem(expression: str) -> str | None:
    """EventBridge's grammar: rate(N unit) or cron(minutes hours day-of-month month day-of-week year)."""
    if expression.startswith("rate("):
        matched = _RATE.match(expression)
        if not matched:
            return "rate(VALUE UNIT) with UNIT minute(s), hour(s) or day(s), e.g. rate(5 minutes)"
        value, unit = int(matched[1]), matched[2]
        if value < 1:
            return "a rate of at least 1"
        if (value == 1) != (not unit.endswith("s")):
            return f"rate({value} {unit}): the unit is singular for 1 and plural otherwise"
        return None
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return "cron(...) or rate(...)"
    fields = expression[5:-1].split()
    if len(fields) != 6:
        return "cron with six fields: minutes hours day-of-month month day-of-week year"
    for value, (name, low, high, names, extra) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(value, low, high, names, extra)
        if problem:
            return f"cron {name} {value!r}: {problem}"
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return "cron needs '?' in exactly one of day-of-month and day-of-week"
    return None


def _cron_field_problem(value: str, low: int, high: int, names: tuple, extra: str) -> str | None:
    if value in ("*", "?") and (value == "*" or "?" in extra):
        return None
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return "a step must be a positive number"
        if "L" in extra and re.fullmatch(r"\d*L|LW|\d+W", base):
            continue
        if "#" in extra and re.fullmatch(r"[1-7]#[1-5]|[A-Z]{3}#[1-5]", base):
            continue
        if base == "*":
            continue
        for end in base.split("-", 1):
            number = _cron_number(end, names)
            if number is None or not low <= number <= high:
                allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
                return f"values {allowed}"
    return None


def _cron_number(text: str, names: tuple) -> int | None:
    if text.isdigit():
        return int(text)
    if text.upper() in names:
        return names.index(text.upper()) + 1
    return None
