"""Example customers: a seeded, churn-like sample (python -m data.generate OUT.csv [ROWS])."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

COLUMNS = ("customer_id", "tenure_months", "monthly_charges", "support_calls", "contract", "churned")
CONTRACTS = ("monthly", "yearly", "two-year")


def generate(path: Path, rows: int = 2000, seed: int = 7) -> None:
    """Write `rows` customers to `path`; the same rows and seed give the same file."""
    if rows < 100:
        raise ValueError(f"rows: at least 100 are needed to train and test, not {rows}")
    randomness = random.Random(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for number in range(rows):
            tenure = randomness.randint(1, 72)
            charges = round(randomness.uniform(20, 120), 2)
            calls = randomness.randint(0, 8)
            contract = randomness.choice(CONTRACTS)
            risk = 0.9 * calls - 0.05 * tenure + 0.02 * charges + (1.2 if contract == "monthly" else -0.8)
            churned = int(risk + randomness.gauss(0, 1) > 1.0)
            writer.writerow((f"c{number:06d}", tenure, charges, calls, contract, churned))


def check(path: Path) -> None:
    """Refuse, in one line, a file the pipeline cannot train on."""
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), [])
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(missing)}")
        if next(handle, None) is None:
            raise ValueError(f"{path} has a header and no rows")


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
