"""The mock configuration loader: Step Functions Local's format, checked with one-line errors."""

from __future__ import annotations

import json

import pytest

from harness.emulator.sfn_mocking import MockConfig, MockConfigError, state_names
from tests import ROOT


def config_of(tmp_path, document) -> MockConfig:
    path = tmp_path / "mocks.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return MockConfig(path)


GOOD = {
    "StateMachines": {"m": {"TestCases": {"T": {"A": "Twice"}}}},
    "MockedResponses": {
        "Twice": {"0": {"Throw": {"Error": "X.Y", "Cause": "c"}}, "1-2": {"Return": {"ok": 1}}}
    },
}


def test_attempts_are_expanded_in_order(tmp_path):
    case = config_of(tmp_path, GOOD).test_case("m", "T", {"A", "B"})
    responses = case.state_mocked_responses["A"].mocked_responses
    assert [type(r).__name__ for r in responses] == [
        "MockedResponseThrow",
        "MockedResponseReturn",
        "MockedResponseReturn",
    ]


@pytest.mark.parametrize(
    "document, message",
    [
        ("{nope", "is not JSON"),
        ({"StateMachines": {}}, "MockedResponses must be an object"),
        ({**GOOD, "MockedResponses": {"Twice": {"zero": {"Return": 1}}}}, "attempts must be a number"),
        (
            {**GOOD, "MockedResponses": {"Twice": {"0": {"Return": 1, "Throw": {}}}}},
            "exactly one of Return or Throw",
        ),
        ({**GOOD, "MockedResponses": {"Twice": {"0": {"Throw": {"Cause": "c"}}}}}, "Throw needs an Error"),
        (
            {**GOOD, "MockedResponses": {"Twice": {"1": {"Return": 1}}}},
            "Mock responses must be consecutively",
        ),
        ({**GOOD, "MockedResponses": {}}, "names no entry of MockedResponses ('Twice')"),
    ],
)
def test_a_broken_file_is_refused_in_one_line(tmp_path, document, message):
    with pytest.raises(MockConfigError) as refused:
        config_of(tmp_path, document).check()
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_test_case_must_name_states_of_the_definition(tmp_path):
    config = config_of(tmp_path, GOOD)
    with pytest.raises(MockConfigError, match="mocks 'A', which its definition does not have"):
        config.test_case("m", "T", {"B"})
    with pytest.raises(MockConfigError, match="has no test case 'U'"):
        config.test_case("m", "U", {"A"})
    with pytest.raises(MockConfigError, match="has no state machine 'n'"):
        config.test_case("n", "T", {"A"})


def test_state_names_include_branches_and_map_processors():
    definition = {
        "States": {
            "P": {"Type": "Parallel", "Branches": [{"States": {"B1": {}}}]},
            "M": {"Type": "Map", "ItemProcessor": {"States": {"I1": {}}}},
        }
    }
    assert state_names(definition) == {"P", "B1", "M", "I1"}


def test_the_shipped_mock_configuration_of_the_projects_pipelines_is_valid():
    MockConfig(ROOT / "tests" / "sfn-mocks.json").check()


def test_the_shipped_test_cases_mock_states_the_pipelines_have():
    from harness import build, config

    settings = config.load("local")
    config_file = MockConfig(ROOT / "tests" / "sfn-mocks.json")
    document = json.loads(config_file.path.read_text())
    for machine, body in document["StateMachines"].items():
        pipeline = machine.removeprefix(f"{settings.stack_name}-")
        definition = json.loads(build.render(settings)[build.definition_file(pipeline)])
        for case in body["TestCases"]:
            config_file.test_case(machine, case, state_names(definition))
