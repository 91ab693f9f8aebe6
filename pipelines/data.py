"""The pipelines' input data: a generated sample, or a user's CSV checked against the schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from preprocessing import census


class DataError(ValueError):
    pass


def generate(path: Path, rows: int, seed: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    census.generate(rows, seed).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def check(path: Path) -> None:
    """Refuse, in one line, a file that is missing or lacks a column the pipelines need."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    try:
        head = pd.read_csv(path, nrows=5)
    except (ValueError, pd.errors.ParserError) as ex:
        raise DataError(f"data file {path} is not a readable CSV: {' '.join(str(ex).split())}") from None
    missing = census.missing_columns(head, with_label=True)
    if missing:
        raise DataError(f"data file {path} lacks column(s) {', '.join(repr(c) for c in missing)}")
