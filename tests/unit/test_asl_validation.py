"""The local AWS's ValidateStateMachineDefinition: grammar from moto's parser, graph here."""

import json

import pytest

from harness.emulator import asl_validation


def problems(definition) -> list[tuple[str, str]]:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return [(d["code"], d["location"]) for d in asl_validation.validate(text)]


def pass_to(target: str) -> dict:
    return {"Type": "Pass", "Next": target}


def test_a_valid_definition_has_no_diagnostics():
    assert problems({"StartAt": "A", "States": {"A": pass_to("B"), "B": {"Type": "Succeed"}}}) == []


@pytest.mark.parametrize(
    "definition, expected",
    [
        ("", [("MISSING_DESCRIPTION", "")]),
        ('{"StartAt": ', [("INVALID_JSON_DESCRIPTION", "")]),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": True}}},
            [("SCHEMA_VALIDATION_FAILED", "")],
        ),
        (
            {"StartAt": "A", "States": {"A": pass_to("Nowhere"), "B": {"Type": "Succeed"}}},
            [("SCHEMA_VALIDATION_FAILED", "/States/A/Next")],
        ),
        ({"StartAt": "Z", "States": {"A": {"Type": "Succeed"}}}, [("SCHEMA_VALIDATION_FAILED", "/StartAt")]),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass"}}},
            [("SCHEMA_VALIDATION_FAILED", "/States/A"), ("MISSING_END_STATE", "/")],
        ),
    ],
)
def test_each_kind_of_fault_gets_its_code_and_location(definition, expected):
    assert problems(definition) == expected


def test_choices_catchers_and_nested_scopes_are_checked():
    definition = {
        "StartAt": "Branch",
        "States": {
            "Branch": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "X", "States": {"X": pass_to("Gone")}}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Missing"}],
                "Next": "Pick",
            },
            "Pick": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "Lost"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    assert problems(definition) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/Branch/Catch[0]/Next"),
        ("SCHEMA_VALIDATION_FAILED", "/States/Branch/Branches[0]/States/X/Next"),
        ("MISSING_END_STATE", "/States/Branch/Branches[0]"),
        ("SCHEMA_VALIDATION_FAILED", "/States/Pick/Choices[0]/Next"),
    ]


def test_the_pipelines_validate():
    from harness import build, config

    for name, text in build.render(config.load("prod", ["aws.kms_key_id=alias/x"])).items():
        if name.endswith(".asl.json"):
            assert asl_validation.validate(text) == [], name
