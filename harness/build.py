"""Build: pipelines -> build/<env>/<pipeline>.asl.json and template.yaml.

From sources alone, deterministic (the same sources give byte-identical files),
touching no network: deploy-time values stay ${...} placeholders in the template
and run-time values are read from the execution input.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.config import Config
from harness.paths import write_atomically

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build"
TEMPLATE_FILE = "template.yaml"


def render(config: Config) -> dict[str, str]:
    """File name -> content, for every build artifact."""
    from pipelines import PIPELINES
    from pipelines.tasks import with_kms_key
    from pipelines.template import template, to_yaml

    definitions = {
        name: module.definition(config.pipeline.quality_metric) for name, module in PIPELINES.items()
    }
    kms = config.aws.kms_key_id is not None
    if kms:
        definitions = {name: with_kms_key(definition) for name, definition in definitions.items()}
    files = {f"{name}.asl.json": json.dumps(d, indent=2) + "\n" for name, d in definitions.items()}
    files[TEMPLATE_FILE] = to_yaml(template(definitions, kms=kms))
    return files


def build(config: Config, build_dir: Path = BUILD_DIR) -> Path:
    """Write the artifacts under build/<env>/ (each file replaced atomically)."""
    out = Path(build_dir) / config.env
    for name, text in render(config).items():
        write_atomically(out / name, text)
    return out


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
