"""Build: the registered pipelines -> build/<env>/<pipeline>.asl.json and template.yaml.

From sources alone, deterministic (the same sources give byte-identical files),
touching no network: deploy-time values stay ${...} placeholders in the template
and run-time values are read from the execution input. Each definition is checked
first, offline: against its pipeline's declaration (kinds, name prefix) and with the
grammar and graph checks of ValidateStateMachineDefinition.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.config import Config
from harness.errors import HarnessError
from harness.paths import write_atomically

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build"
TEMPLATE_FILE = "template.yaml"


def definition_file(name: str) -> str:
    return f"{name}.asl.json"


def render(config: Config) -> dict[str, str]:
    """File name -> content, for every build artifact; raises HarnessError for a pipeline
    that breaks its contract."""
    from harness.template import template, to_yaml
    from pipelines.tasks import with_kms_key

    definitions = {p.name: checked_definition(config, p) for p in config.pipelines}
    kms = config.aws.kms_key_id is not None
    if kms:
        definitions = {name: with_kms_key(definition) for name, definition in definitions.items()}
    files = {definition_file(name): json.dumps(d, indent=2) + "\n" for name, d in definitions.items()}
    files[TEMPLATE_FILE] = to_yaml(template(config.pipelines, definitions, kms=kms))
    return files


def checked_definition(config: Config, pipeline) -> dict:
    from harness.emulator import asl_validation
    from pipelines.checks import check_definition
    from pipelines.contract import BuildContext, ContractError, sample_context

    settings = config.settings[pipeline.name]
    try:
        definition = pipeline.definition(BuildContext(settings=settings, prefix=pipeline.prefix))
        check_definition(pipeline, definition, sample_context(pipeline, settings))
    except ContractError as ex:
        raise HarnessError(str(ex)) from None
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


def build(config: Config, build_dir: Path = BUILD_DIR) -> Path:
    """Write the artifacts under build/<env>/ (each file replaced atomically)."""
    out = Path(build_dir) / config.env
    for name, text in render(config).items():
        write_atomically(out / name, text)
    return out


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
