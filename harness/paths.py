"""Where the harness keeps local state: run records and generated data.

MLHARNESS_HOME (default: .mlharness in the project) so tests and several
checkouts do not share records.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    return Path(os.environ.get("MLHARNESS_HOME") or ROOT / ".mlharness")


def records_dir() -> Path:
    return home() / "runs"


def data_cache() -> Path:
    return home() / "data"


def write_atomically(path: Path, text: str) -> Path:
    """Replace `path` with `text` whole: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=f".{path.name}.") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return path
