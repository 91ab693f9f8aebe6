"""Build: the project's pipelines -> .mlharness/build/<env>/<pipeline>.asl.json and template.yaml.

From sources alone, deterministic (the same sources give byte-identical files),
touching no network: deploy-time values stay ${...} placeholders in the template
and run-time values are read from the execution input. Each definition is checked
first, offline: against its pipeline's declaration (kinds, name prefix), each SageMaker
request against botocore's service model, the images it names against the project's,
and with the grammar and graph checks of ValidateStateMachineDefinition.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.config import Config
from harness.errors import HarnessError, one_line
from harness.paths import write_atomically

TEMPLATE_FILE = "template.yaml"


def definition_file(name: str) -> str:
    return f"{name}.asl.json"


def render(config: Config) -> dict[str, str]:
    """File name -> content, for every build artifact; raises HarnessError for a pipeline
    that breaks its contract."""
    from harness.template import template, to_yaml
    from mlharness.contract import ContractError
    from mlharness.tasks import with_kms_key

    definitions = {p.name: checked_definition(config, p) for p in config.pipelines}
    kms = config.aws.kms_key_id is not None
    if kms:
        try:
            definitions = {name: with_kms_key(definition) for name, definition in definitions.items()}
        except ContractError as ex:
            raise HarnessError(f"aws.kms_key_id is set: {ex}") from None
    files = {definition_file(name): json.dumps(d, indent=2) + "\n" for name, d in definitions.items()}
    files[TEMPLATE_FILE] = to_yaml(
        template(config.pipelines, definitions, kms=kms, images=list(config.images))
    )
    return files


def checked_definition(config: Config, pipeline) -> dict:
    from harness.emulator import asl_validation
    from mlharness.checks import check_definition, check_images
    from mlharness.contract import BuildContext, ContractError, sample_context
    from mlharness.requests import check_requests

    settings = config.settings[pipeline.name]
    try:
        definition = pipeline.definition(BuildContext(settings=settings, prefix=pipeline.prefix))
    except Exception as ex:  # noqa: BLE001  (a user's definition that raises is one line)
        raise HarnessError(f"pipeline {pipeline.name!r}: its definition() raised {one_line(ex)}") from None
    if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict):
        raise HarnessError(
            f"pipeline {pipeline.name!r}: its definition() returned {type(definition).__name__}, not an ASL "
            "mapping with States (e.g. steps.Graph(...).to_dict())"
        )
    try:
        check_definition(pipeline, definition, sample_context(pipeline, settings))
        check_requests(pipeline, definition)
        check_images(pipeline, definition, set(config.images))
    except ContractError as ex:
        raise HarnessError(str(ex)) from None
    except Exception as ex:  # noqa: BLE001  (its execution_input() on a sample run, say)
        raise HarnessError(
            f"pipeline {pipeline.name!r}: checking its definition raised {one_line(ex)}"
        ) from None
    problems = asl_validation.validate(json.dumps(definition), "STANDARD")
    if problems:
        raise HarnessError(invalid_definition(pipeline.name, problems))
    return definition


def invalid_definition(name: str, diagnostics: list[dict]) -> str:
    """One line for ValidateStateMachineDefinition's diagnostics: the first error, and how many more."""
    errors = [d for d in diagnostics if d["severity"] == "ERROR"] or diagnostics
    first = errors[0]
    where = f" at {first['location']}" if first.get("location") else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (
        f"the {name} state machine definition does not validate: "
        f"{first['code']}{where}: {first['message']}{more}"
    )


def build(config: Config, build_dir: Path | None = None) -> Path:
    """Write the artifacts under <project>/.mlharness/build/<env>/ (or build_dir/<env>; each file
    replaced atomically)."""
    out = Path(build_dir) / config.env if build_dir is not None else config.build_dir
    for name, text in render(config).items():
        write_atomically(out / name, text)
    return out


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
