"""ValidateStateMachineDefinition for the local AWS: the diagnostics AWS would give.

The grammar comes from moto's ASL parser (LocalStack's); it does not check the
graph, so transitions are checked here: StartAt and every Next, Default and
Catch target name a state of the same scope (top level, a Parallel branch, a Map
processor), every state that is not terminal says Next or End, and each scope
has a way to end.
"""

from __future__ import annotations

import json

TERMINAL_TYPES = ("Succeed", "Fail")
ENDLESS_TYPES = ("Choice", "Succeed", "Fail")  # states that take no Next/End


def validate(definition: str | None, machine_type: str = "STANDARD") -> list[dict]:
    """Diagnostics (severity, code, message, location); none means the definition is valid."""
    if not definition or not definition.strip():
        return [_error("MISSING_DESCRIPTION", "The definition is empty", "")]
    try:
        document = json.loads(definition)
    except ValueError as ex:
        return [_error("INVALID_JSON_DESCRIPTION", f"Invalid JSON: {ex}", "")]
    if not isinstance(document, dict):
        return [_error("SCHEMA_VALIDATION_FAILED", "The definition must be a JSON object", "")]
    problems = _grammar(definition, machine_type)
    if not problems:
        problems = _graph(document, "")
    return problems


def _grammar(definition: str, machine_type: str) -> list[dict]:
    from moto.stepfunctions.parser.asl.static_analyser.express_static_analyser import ExpressStaticAnalyser
    from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

    analyser = ExpressStaticAnalyser() if machine_type == "EXPRESS" else StaticAnalyser()
    try:
        analyser.analyse(definition)
    except Exception as ex:  # the parser raises ASLParserException; analysers raise others
        return [_error("SCHEMA_VALIDATION_FAILED", " ".join(str(ex).split()), "")]
    return []


def _graph(scope: dict, at: str) -> list[dict]:
    states = scope.get("States")
    if not isinstance(states, dict) or not states:
        return [_error("SCHEMA_VALIDATION_FAILED", "States must be a non-empty object", f"{at}/States")]
    problems = []
    if scope.get("StartAt") not in states:
        problems.append(
            _error(
                "SCHEMA_VALIDATION_FAILED",
                f"Missing 'StartAt' target: {scope.get('StartAt')}",
                f"{at}/StartAt",
            )
        )
    for name, state in states.items():
        where = f"{at}/States/{name}"
        for field, target in _transitions(state):
            if target not in states:
                problems.append(
                    _error("SCHEMA_VALIDATION_FAILED", f"Missing 'Next' target: {target}", f"{where}/{field}")
                )
        if state.get("Type") not in ENDLESS_TYPES and "Next" not in state and not state.get("End"):
            problems.append(
                _error("SCHEMA_VALIDATION_FAILED", "A state must have either 'Next' or 'End': true", where)
            )
        for index, branch in enumerate(state.get("Branches") or []):
            problems += _graph(branch, f"{where}/Branches[{index}]")
        for processor in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(processor), dict):
                problems += _graph(state[processor], f"{where}/{processor}")
    if not any(s.get("Type") in TERMINAL_TYPES or s.get("End") for s in states.values()):
        problems.append(_error("MISSING_END_STATE", "The workflow does not have a terminal state", at or "/"))
    return problems


def _transitions(state: dict):
    if "Next" in state:
        yield "Next", state["Next"]
    if "Default" in state:
        yield "Default", state["Default"]
    for index, choice in enumerate(state.get("Choices") or []):
        if "Next" in choice:
            yield f"Choices[{index}]/Next", choice["Next"]
    for index, catcher in enumerate(state.get("Catch") or []):
        if "Next" in catcher:
            yield f"Catch[{index}]/Next", catcher["Next"]


def _error(code: str, message: str, location: str) -> dict:
    return {"severity": "ERROR", "code": code, "message": message, "location": location}
