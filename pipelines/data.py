"""The census pipelines' input `data`: a generated sample, or a user's CSV checked against the
schema (`inputs.data` in mlharness.yaml, or `--input data=PATH`).

The check reads the file a line at a time (memory is bounded by one row, and a row
longer than MAX_ROW_BYTES is refused), so any file, however large or malformed, is
judged in one pass before anything is uploaded: the header's columns, each row's
field count and encoding, the numeric and categorical values of every row up to
FULL_CHECK_ROWS and of a stride sample after, and the label's classes over the
whole file. A refusal is one line naming the row and the column.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections import Counter
from pathlib import Path

from mlharness import Input
from preprocessing import census

# The job code the census pipelines ship in their bundle: the job scripts and the feature module
# that training and inference share.
CODE = ("jobs", "preprocessing")
MAX_ROW_BYTES = 1 << 20
FULL_CHECK_ROWS = 100_000  # every row's values up to here, then every SAMPLE_STRIDE-th
SAMPLE_STRIDE = 10


class DataError(ValueError):
    pass


def generate(path: Path, rows: int, seed: int) -> Path:
    """Write the generated sample at path, atomically: commands generating the same sample at
    once each write a file of their own and rename it there (the samples are equal)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as out:
        tmp = Path(out.name)
    try:
        census.generate(rows, seed).to_csv(tmp, index=False)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def generate_sample(path: Path, rows: int, seed: int) -> None:
    if rows < 100:
        raise DataError(f"a generated sample needs at least 100 rows, not {rows}")
    generate(path, rows, seed)


def check_for_scoring(path: Path) -> None:
    """As check, for data that is scored: the label column may be absent, and of any classes."""
    check(path, with_label=False)


def check(path: Path, with_label: bool = True) -> None:
    """Refuse, in one line, a file the pipelines cannot train on (with_label) or score."""
    path = Path(path)
    where = f"data file {path}"
    if not path.exists():
        raise DataError(f"{where} does not exist")
    if not path.is_file():
        raise DataError(f"{where} is not a file")
    try:
        handle = open(path, "rb")  # noqa: SIM115  (closed below)
    except OSError as ex:
        raise DataError(f"{where} cannot be read: {ex.strerror}") from None
    with handle:
        header = _fields(_line(handle, 1, where), 1, where)
        wanted = [c for c in census.COLUMNS if with_label or c != census.LABEL]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise DataError(f"{where} lacks column(s) {', '.join(repr(c) for c in missing)}")
        index = {name: header.index(name) for name in wanted}
        classes: Counter = Counter()
        rows = 0
        while True:
            raw = _line(handle, rows + 2, where)
            if raw is None:
                break
            if not raw.strip():
                continue
            rows += 1
            number = rows + 1  # the file's line: the header is line 1
            fields = _fields(raw, number, where)
            if len(fields) != len(header):
                raise DataError(f"{where}: row {number} has {len(fields)} fields, the header {len(header)}")
            if rows <= FULL_CHECK_ROWS or rows % SAMPLE_STRIDE == 0:
                _check_values(fields, index, number, where)
            if with_label:
                classes[fields[index[census.LABEL]] == census.INCOME_HIGH] += 1
    if rows == 0:
        raise DataError(f"{where} has a header and no rows")
    for high, name in ((True, repr(census.INCOME_HIGH)), (False, f"other than {census.INCOME_HIGH!r}")):
        if with_label and classes[high] < 2:
            raise DataError(
                f"{where}: the label column {census.LABEL!r} is {name} in {classes[high]} of {rows} rows: "
                "training needs at least two rows of each class"
            )


def _line(handle, number: int, where: str) -> str | None:
    raw = handle.readline(MAX_ROW_BYTES + 1)
    if not raw:
        return None if number > 1 else _fail_empty(where)
    if len(raw) > MAX_ROW_BYTES:
        raise DataError(
            f"{where}: row {number} is longer than {MAX_ROW_BYTES // (1 << 20)} MiB: not a row of this schema"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise DataError(
            f"{where}: row {number} is not UTF-8 (byte 0x{raw[ex.start]:02x} at offset {ex.start})"
        ) from None


def _fail_empty(where: str):
    raise DataError(f"{where} is empty")


def _fields(line: str, number: int, where: str) -> list[str]:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration) as ex:
        raise DataError(f"{where}: row {number} is not CSV: {ex}") from None


def _check_values(fields: list[str], index: dict[str, int], number: int, where: str) -> None:
    for column in census.NUMERIC:
        value = fields[index[column]]
        try:
            parsed = float(value)
        except ValueError:
            raise DataError(f"{where}: row {number} column {column!r}: {value!r} is not a number") from None
        if math.isnan(parsed) or math.isinf(parsed):
            raise DataError(f"{where}: row {number} column {column!r}: {value!r} is not a finite number")
    for column in census.CATEGORICAL:
        if not fields[index[column]].strip():
            raise DataError(f"{where}: row {number} column {column!r} is empty")


# Training needs the label, of both classes; scoring does not. Given by `inputs.data`, else a
# generated sample (`inputs.data.generate.rows`, `.seed`).
TRAINING_DATA = Input(
    "data",
    description="census rows: the columns of preprocessing/census.py (CSV with a header)",
    check=check,
    generate=generate_sample,
    generate_options={"rows": 10000, "seed": 7},
    file_name="census.csv",
)
SCORING_DATA = Input(
    "data",
    description=TRAINING_DATA.description,
    check=check_for_scoring,
    generate=generate_sample,
    generate_options=TRAINING_DATA.generate_options,
    file_name="census.csv",
)
