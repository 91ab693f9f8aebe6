"""The engines of the local AWS, as test contexts: one row each (as Metaflow's test contexts
are), so the same tests run on both. A context that cannot run here says why in one line."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from harness.emulator import localstack_engine


def _localstack_missing() -> str | None:
    try:
        localstack_engine.require()
    except localstack_engine.LocalStackUnavailable as ex:
        return str(ex)
    return None


@dataclasses.dataclass(frozen=True)
class EngineContext:
    name: str
    account: str  # the account the engine gives the harness's test credentials
    fires_schedules: bool
    missing: Callable[[], str | None]  # why the context cannot run on this machine, or None
    # conformance cases (ids without the snapshot key) where the engine's interpreter differs from
    # AWS, measured: the default engine patches them; LocalStack's own engine does not
    conformance_differences: frozenset[str] = frozenset()


_LOCALSTACK_DIFFERENCES = frozenset(
    [f"assign/test_assign_reference_variables.py::TestAssignReferenceVariables::test_undefined_reference[{case}]"
     for case in ("BASE_UNDEFINED_ASSIGN", "BASE_UNDEFINED_OUTPUT", "BASE_UNDEFINED_OUTPUT_FIELD",
                  "BASE_UNDEFINED_OUTPUT_MULTIPLE_STATES")]
    + ["base/test_base.py::TestSnfBase::test_query_context_object_values",
       "context_object/test_context_object.py::TestSnfBase::test_input_path[$$]",
       "context_object/test_context_object.py::TestSnfBase::test_output_path[$$]",
       "outputdecl/test_output.py::TestArgumentsBase::test_base_cases[BASE_EXPR]",
       "scenarios/test_base_scenarios.py::TestBaseScenarios::test_map_state_items_eval_jsonata_fail[function]",
       "documented/json_paths.py::test_a_filter_path_gives_a_list_of_its_one_match"]
    + [f"scenarios/test_base_scenarios.py::TestBaseScenarios::test_map_state_items_input_types[{kind}]"
       for kind in ("boolean", "null", "number", "object", "string")]
    + [f"scenarios/test_base_scenarios.py::TestBaseScenarios::test_wait_timestamp_jsonata[{case}]"
       for case in ("INVALID_DATE", "INVALID_ISO", "INVALID_TIME", "NO_T", "NO_Z")]
)  # fmt: skip

ENGINES = [
    EngineContext("moto", "123456789012", fires_schedules=False, missing=lambda: None),
    EngineContext(
        "localstack",
        "000000000000",
        fires_schedules=True,
        missing=_localstack_missing,
        conformance_differences=_LOCALSTACK_DIFFERENCES,
    ),
]
ENGINE_IDS = [engine.name for engine in ENGINES]
