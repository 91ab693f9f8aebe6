"""The authoring API of mlharness: what a team's pipelines import, and nothing else.

A pipeline is a module that defines `PIPELINE = Pipeline(...)`; the project's
`mlharness.yaml` lists it. It builds its Step Functions definition from the state
builders of `mlharness.tasks` (or as plain ASL), names what it creates with its
prefix, and declares what it runs on (`Input`), what it hands to other pipelines
(`Artifact`, `MODEL`) and its settings. The harness (`mlharness` on the command
line) builds, deploys, runs and records it on the local AWS or on AWS; nothing here
knows about either.

    from mlharness import Input, Outputs, Pipeline, RunContext, tasks
"""

from mlharness.contract import (
    KINDS,
    MODEL,
    Artifact,
    BuildContext,
    ContractError,
    Input,
    Outputs,
    Pipeline,
    RunContext,
    Schedule,
)

__all__ = [
    "KINDS",
    "MODEL",
    "Artifact",
    "BuildContext",
    "ContractError",
    "Input",
    "Outputs",
    "Pipeline",
    "RunContext",
    "Schedule",
]
