"""Projects the tests write: a folder with mlharness.yaml naming pipelines (modules on the path,
such as this repository's, or files of the folder) and whatever settings a test adds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests import ROOT

EXAMPLES = ("pipelines.training", "pipelines.inference", "pipelines.endpoint")


def write_project(folder: Path, body: str = "", pipelines=EXAMPLES, name: str = "test") -> Path:
    """mlharness.yaml in `folder`, with `body` (YAML) after the project's name and pipelines."""
    folder.mkdir(parents=True, exist_ok=True)
    header = f"project: {name}\npipelines: {json.dumps(list(pipelines))}\n"
    (folder / "mlharness.yaml").write_text(header + textwrap.dedent(body))
    return folder


def repository_config() -> str:
    """This repository's own mlharness.yaml."""
    return (ROOT / "mlharness.yaml").read_text()
