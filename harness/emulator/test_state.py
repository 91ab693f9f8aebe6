"""TestState for the local AWS: one state run on a given input, answered as AWS answers.

moto's engine (LocalStack's) carries a TestState program that records the inspection
data (input, after InputPath, after Parameters, result, after ResultSelector, after
ResultPath); this module gives it today's API around it:
- `stateName` picks one state of a whole state machine (else the definition is one state);
- a state that errs is FAILED, or RETRIABLE when one of its retriers would retry
  (`stateConfiguration.retrierRetryCount` says how many retries were made), or
  CAUGHT_ERROR when a catcher takes it, with `nextState` and the output the catcher's
  ResultPath gives; the state's Retry and Catch are not run, as on AWS;
- `mock` answers a Task with `result` or `errorOutput` instead of calling its service;
- `variables` are the workflow variables in scope; `inspectionData` at DEBUG and TRACE.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

from moto.core.exceptions import AWSError

RETRIABLE_DEFAULT_ATTEMPTS = 3
BACKOFF_DEFAULT = 2.0
INTERVAL_DEFAULT = 1
INSPECTION_KEYS = (
    "input",
    "afterInputPath",
    "afterParameters",
    "result",
    "afterResultSelector",
    "afterResultPath",
)


class InvalidDefinition(AWSError):
    TYPE = "InvalidDefinition"
    STATUS = 400


class ValidationException(AWSError):
    TYPE = "ValidationException"
    STATUS = 400


def test_state(
    definition: str,
    account_id: str,
    region: str,
    role_arn: str | None = None,
    state_input: str | None = None,
    inspection_level: str | None = None,
    variables: str | None = None,
    state_name: str | None = None,
    mock: dict | None = None,
    state_configuration: dict | None = None,
) -> dict:
    level = inspection_level or "INFO"
    if level not in ("INFO", "DEBUG", "TRACE"):
        raise ValidationException(
            f"1 validation error detected: Value '{level}' at 'inspectionLevel' failed to satisfy "
            "constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"
        )
    state = _the_state(definition, state_name)
    given_input = _json_argument(state_input or "{}", "input")
    retry, catch = state.pop("Retry", None), state.pop("Catch", None)
    result = _run(state, given_input, account_id, region, role_arn, variables, mock)
    answer: dict[str, Any] = {"status": result["status"]}
    if result["status"] == "SUCCEEDED":
        answer["output"] = result["output"]
        next_state = result.get("nextState") or state.get("Next")
        if next_state:
            answer["nextState"] = next_state
    else:
        answer["error"], answer["cause"] = result["error"], result["cause"]
        _apply_error_handling(answer, state, given_input, retry, catch, state_configuration or {})
    if level in ("DEBUG", "TRACE"):
        inspection = {k: v for k, v in result["inspection"].items() if k in INSPECTION_KEYS}
        if "errorDetails" in answer:
            inspection["errorDetails"] = answer.pop("errorDetails")
        answer["inspectionData"] = inspection
    answer.pop("errorDetails", None)
    return answer


def _the_state(definition: str, state_name: str | None) -> dict:
    document = _json_argument(definition, "definition", InvalidDefinition)
    if not isinstance(document, dict):
        raise InvalidDefinition("Invalid State Machine Definition: the definition must be a JSON object")
    if state_name is None:
        if "States" in document and "Type" not in document:
            raise ValidationException("stateName is required when the definition is a state machine")
        return copy.deepcopy(document)
    found = _find_state(document, state_name)
    if found is None:
        raise ValidationException(f"State '{state_name}' does not exist in the state machine definition")
    state = copy.deepcopy(found)
    if document.get("QueryLanguage") and "QueryLanguage" not in state:
        state["QueryLanguage"] = document["QueryLanguage"]  # the machine's default applies
    return state


def _find_state(scope: dict, name: str) -> dict | None:
    states = scope.get("States") or {}
    if name in states:
        return states[name]
    for state in states.values():
        for inner in [*(state.get("Branches") or []), state.get("ItemProcessor"), state.get("Iterator")]:
            if isinstance(inner, dict):
                found = _find_state(inner, name)
                if found is not None:
                    return found
    return None


def _json_argument(text: str, field: str, error=ValidationException) -> Any:
    try:
        return json.loads(text)
    except ValueError as ex:
        raise error(f"Invalid JSON in '{field}': {ex}") from None


def _run(state: dict, given_input: Any, account_id, region, role_arn, variables, mock) -> dict:
    """One run of the state in moto's TestState program: status, output or error, inspection."""
    from moto.stepfunctions.parser.asl.static_analyser.test_state.test_state_analyser import (
        TestStateStaticAnalyser,
    )
    from moto.stepfunctions.parser.backend.state_machine import TestStateMachine

    text = json.dumps(state)
    try:
        TestStateStaticAnalyser().analyse(text)
    except Exception as ex:  # the parser raises its own kinds
        message = " ".join(str(ex).split())
        if not (mock and "Service integration patterns are not supported" in message):
            raise InvalidDefinition(f"Invalid State Machine Definition: {message}") from None
    name = "TestState"
    arn = f"arn:aws:states:{region}:{account_id}:stateMachine:{name}"
    machine = TestStateMachine(name=name, arn=arn, definition=text, role_arn=role_arn)
    execution = _MockedTestStateExecution(
        name=name,
        role_arn=role_arn,
        exec_arn=f"arn:aws:states:{region}:{account_id}:execution:{name}:{name}",
        account_id=account_id,
        region_name=region,
        state_machine=machine,
        start_date=datetime.datetime.now(tz=datetime.UTC),
        activity_store={},
        input_data=json.dumps(given_input),  # moto's Execution takes JSON text
    )
    execution.mock = mock
    execution.variables = _json_argument(variables, "variables") if variables else None
    execution.start()
    return execution.outcome()


def _mocked_test_state_execution():
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramTimedOut
    from moto.stepfunctions.parser.asl.eval.test_state.program_state import ProgramChoiceSelected
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
    from moto.stepfunctions.parser.backend.test_state.execution import TestStateExecution
    from moto.stepfunctions.parser.mocking.mock_config import (
        MockedResponseReturn,
        MockedResponseThrow,
        MockTestCase,
        StateMockedResponses,
    )

    class MockedTestStateExecution(TestStateExecution):
        """A TestState run whose Task answers from `mock`, with `variables` in scope."""

        mock: dict | None = None
        variables: dict | None = None

        class Communication(TestStateExecution.TestCaseExecutionWorkerCommunication):
            def terminated(self) -> None:
                pass  # the outcome is read from the program state (it may still say "running": see below)

        def _get_start_execution_worker_comm(self):
            return self.Communication(self)

        def outcome(self) -> dict:
            """A state that moved on (Next) leaves the program running; one that ended, chose or
            failed leaves it so."""
            env = self.exec_worker.env
            state = env.program_state()
            inspection = dict(env.inspection_data)
            if isinstance(state, ProgramError):
                error = state.error or {}
                return {"status": "FAILED", "error": error.get("error"), "cause": error.get("cause"),
                        "inspection": inspection}  # fmt: skip
            if isinstance(state, ProgramTimedOut):
                cause = "the state did not end in time"
                return {
                    "status": "FAILED",
                    "error": "States.Timeout",
                    "cause": cause,
                    "inspection": inspection,
                }
            chosen = state.next_state_name if isinstance(state, ProgramChoiceSelected) else None
            return {"status": "SUCCEEDED", "output": to_json_str(env.states.get_input()), "nextState": chosen,
                    "inspection": inspection}  # fmt: skip

        def _get_start_execution_worker(self):
            worker = super()._get_start_execution_worker()
            case = self._mock_test_case()
            variables = self.variables or {}
            original = worker._get_evaluation_environment

            def environment():
                env = original()  # TestState's environment takes no test case: set it here
                env.mock_test_case = case
                for key, value in variables.items():
                    env.variable_store.set(key, value)
                env.variable_store.reset_tracing()  # in scope before the state, not assigned by it
                return env

            worker._get_evaluation_environment = environment
            return worker

        def _mock_test_case(self):
            if not self.mock:
                return None
            if "errorOutput" in self.mock:
                thrown = self.mock["errorOutput"] or {}
                response = MockedResponseThrow(0, 0, thrown.get("error", ""), thrown.get("cause", ""))
            else:
                response = MockedResponseReturn(
                    0, 0, _json_argument(self.mock.get("result", "null"), "mock.result")
                )
            return MockTestCase("TestState", "mock", [StateMockedResponses("TestState", "mock", [response])])

    return MockedTestStateExecution


class _Lazy:
    """The execution class, made at first use (moto's engine is imported lazily)."""

    cls = None

    def __call__(self, **kwargs):
        if _Lazy.cls is None:
            _Lazy.cls = _mocked_test_state_execution()
        return _Lazy.cls(**kwargs)


_MockedTestStateExecution = _Lazy()


# -- Retry and Catch, evaluated as AWS's TestState does (without running them) ---------------
def _matches(error: str, error_equals: list[str]) -> bool:
    if error in error_equals or "States.ALL" in error_equals:
        return True
    # States.TaskFailed stands for every error but States.Timeout
    return "States.TaskFailed" in error_equals and error != "States.Timeout"


def _apply_error_handling(
    answer: dict, state: dict, given_input: Any, retry, catch, configuration: dict
) -> None:
    error = answer["error"]
    retried = int(configuration.get("retrierRetryCount") or 0)
    for index, retrier in enumerate(retry or []):
        if _matches(error, retrier.get("ErrorEquals", [])):
            if retried < retrier.get("MaxAttempts", RETRIABLE_DEFAULT_ATTEMPTS):
                interval = retrier.get("IntervalSeconds", INTERVAL_DEFAULT)
                backoff = retrier.get("BackoffRate", BACKOFF_DEFAULT)
                seconds = interval * backoff**retried
                if retrier.get("MaxDelaySeconds"):
                    seconds = min(seconds, retrier["MaxDelaySeconds"])
                answer["status"] = "RETRIABLE"
                answer["errorDetails"] = {"retryIndex": index, "retryBackoffIntervalSeconds": int(seconds)}
                return
            break  # this retrier is spent; catchers decide
    for index, catcher in enumerate(catch or []):
        if _matches(error, catcher.get("ErrorEquals", [])):
            answer["status"] = "CAUGHT_ERROR"
            answer["nextState"] = catcher["Next"]
            caught = {"Error": error, "Cause": answer["cause"]}
            answer["output"] = json.dumps(_result_path(given_input, caught, catcher.get("ResultPath", "$")))
            answer["errorDetails"] = {"catchIndex": index}
            return
    answer["status"] = "FAILED"


def _result_path(document: Any, value: Any, path: str | None) -> Any:
    if path is None:
        return document
    if path == "$":
        return value
    merged = copy.deepcopy(document) if isinstance(document, dict) else {}
    node = merged
    *parents, leaf = path.removeprefix("$.").split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return merged
