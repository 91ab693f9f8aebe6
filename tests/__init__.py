"""The project's tests: unit (no Docker), integration (the local AWS, real containers), aws (opt-in)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: a project of its own (mlharness.yaml)
