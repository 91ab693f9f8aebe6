"""Mocked service integrations, in the mock configuration format AWS documents for Step
Functions Local (and LocalStack reads):

    {"StateMachines": {"<machine>": {"TestCases": {"<test case>": {"<state>": "<response>"}}}},
     "MockedResponses": {"<response>": {"0": {"Return": ...},
                                        "1-2": {"Throw": {"Error": ..., "Cause": ...}}}}}

`StartExecution` on `<state machine ARN>#<test case>` runs that test case: a mocked
state answers with its canned response for the attempt it is on (0 first, then each
retry), without calling the service; every other state runs for real. moto's engine
(LocalStack's) already evaluates a test case; it lacks the loader, which is this.
The file is read at each StartExecution, so an edit applies without a restart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)

_ATTEMPTS = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


class MockConfigError(ValueError):
    """The mock configuration, or a test case asked of it, is not usable; one line."""


class MockConfig:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def check(self) -> None:
        """Read and check the whole file (at start-up: refuse a broken file before serving)."""
        document = self._read()
        for name in document["MockedResponses"]:
            _responses_of(document, name, name)
        for machine, test_cases in _test_cases(document):
            for test_case in test_cases:
                self._test_case_from(document, machine, test_case)

    def test_case(self, state_machine_name: str, test_case_name: str, state_names: set[str]) -> MockTestCase:
        document = self._read()
        machines = document["StateMachines"]
        if state_machine_name not in machines:
            raise MockConfigError(
                f"the mock configuration {self.path} has no state machine {state_machine_name!r} "
                f"(it has {', '.join(sorted(machines)) or 'none'})"
            )
        cases = machines[state_machine_name]["TestCases"]
        if test_case_name not in cases:
            raise MockConfigError(
                f"state machine {state_machine_name!r} has no test case {test_case_name!r} in {self.path} "
                f"(it has {', '.join(sorted(cases)) or 'none'})"
            )
        unknown = sorted(set(cases[test_case_name]) - state_names)
        if unknown:
            raise MockConfigError(
                f"test case {test_case_name!r} of state machine {state_machine_name!r} mocks "
                f"{', '.join(repr(s) for s in unknown)}, which its definition does not have"
            )
        return self._test_case_from(document, state_machine_name, test_case_name)

    def _read(self) -> dict:
        try:
            document = json.loads(self.path.read_text())
        except OSError as ex:
            raise MockConfigError(f"cannot read the mock configuration {self.path}: {ex.strerror}") from None
        except ValueError as ex:
            raise MockConfigError(f"the mock configuration {self.path} is not JSON: {ex}") from None
        _check_shape(document, self.path)
        return document

    def _test_case_from(self, document: dict, machine: str, test_case: str) -> MockTestCase:
        states = []
        for state, response_name in document["StateMachines"][machine]["TestCases"][test_case].items():
            where = f"test case {test_case!r} of {machine!r}, state {state!r}"
            if not isinstance(response_name, str) or response_name not in document["MockedResponses"]:
                raise MockConfigError(f"{where}: names no entry of MockedResponses ({response_name!r})")
            states.append(_responses_of(document, response_name, state))
        return MockTestCase(machine, test_case, states)


def _check_shape(document: object, path: Path) -> None:
    def fail(what: str) -> MockConfigError:
        return MockConfigError(f"the mock configuration {path}: {what}")

    if not isinstance(document, dict):
        raise fail("expected an object with StateMachines and MockedResponses")
    for key in ("StateMachines", "MockedResponses"):
        if not isinstance(document.get(key), dict):
            raise fail(f"{key} must be an object")
    for machine, body in document["StateMachines"].items():
        if not isinstance(body, dict) or not isinstance(body.get("TestCases"), dict):
            raise fail(f"StateMachines.{machine} must be an object with TestCases")
        for case, states in body["TestCases"].items():
            if not isinstance(states, dict):
                raise fail(f"StateMachines.{machine}.TestCases.{case} must map state names to responses")
    for name, attempts in document["MockedResponses"].items():
        if not isinstance(attempts, dict) or not attempts:
            raise fail(f'MockedResponses.{name} must map attempts ("0", "1-2") to Return or Throw')


def _responses_of(document: dict, response_name: str, state: str) -> StateMockedResponses:
    responses = [
        _response(attempts, answer, f"MockedResponses.{response_name}.{attempts}")
        for attempts, answer in document["MockedResponses"][response_name].items()
    ]
    try:
        return StateMockedResponses(state, response_name, responses)
    except RuntimeError as ex:  # attempts not numbered 0, 1, ... without gaps
        raise MockConfigError(f"MockedResponses.{response_name}: {ex}") from None


def _test_cases(document: dict) -> Iterator[tuple[str, list[str]]]:
    for machine, body in document["StateMachines"].items():
        yield machine, list(body["TestCases"])


def _response(attempts: str, answer: object, where: str) -> MockedResponse:
    matched = _ATTEMPTS.match(attempts)
    if not matched:
        raise MockConfigError(f'{where}: attempts must be a number ("0") or a range ("1-2")')
    start = int(matched[1])
    end = int(matched[2]) if matched[2] is not None else start
    if end < start:
        raise MockConfigError(f"{where}: the range ends before it starts")
    if not isinstance(answer, dict) or len(set(answer) & {"Return", "Throw"}) != 1 or len(answer) != 1:
        raise MockConfigError(f"{where}: expected exactly one of Return or Throw")
    if "Return" in answer:
        return MockedResponseReturn(start, end, answer["Return"])
    thrown = answer["Throw"]
    if not isinstance(thrown, dict) or not isinstance(thrown.get("Error"), str):
        raise MockConfigError(f"{where}: Throw needs an Error (and may give a Cause)")
    return MockedResponseThrow(start, end, thrown["Error"], str(thrown.get("Cause", "")))


def state_names(definition: dict) -> set[str]:
    """Every state's name, in branches and Map processors too."""
    names = set()
    for name, state in (definition.get("States") or {}).items():
        names.add(name)
        for branch in state.get("Branches") or []:
            names |= state_names(branch)
        for processor in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(processor), dict):
                names |= state_names(state[processor])
    return names


# The mock configuration of this emulator process (--mock-config or SFN_MOCK_CONFIG), if any.
configured: MockConfig | None = None


def configure(path: str | Path | None) -> MockConfig | None:
    """Use the file at `path` for `#<test case>` executions; it is checked now, so a broken file
    stops the local AWS at start rather than at the first test."""
    global configured
    configured = MockConfig(path) if path else None
    if configured is not None:
        configured.check()
    return configured
